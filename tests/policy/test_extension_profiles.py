"""The shipped extension profiles (policies/extensions/<server extension>.toml) and how the
loader layers them: between the default profile and the --policy files, only for the
extensions the caller found installed and enabled, never a loosening, one key to switch one off.

The real-route match (every route an installed extension registers is mapped by its profile,
and nothing else) runs in the ecosystem venv: tests/e2e/ecosystem/test_profiles.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hardened_server.policy import loader
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import (
    DISABLED_PROFILES_KEY,
    PROFILE_KEYS,
    baseline_policy,
    extension_profiles,
    load_policy,
    loosenings,
    read_extension_profile,
    shipped_policy,
)
from hardened_server.policy.scopemap import BUILTIN_PATTERNS, METHODS, RouteMap, scope_allows
from hardened_server.policy.scopes import ADMIN, KNOWN_SCOPES

PROFILES = sorted(extension_profiles())
PROXY = "jupyter_server_proxy"
YDOC = "jupyter_server_ydoc"
USAGE = "jupyter_resource_usage"


def test_the_reviewed_profiles_are_shipped() -> None:
    assert {PROXY, YDOC, USAGE, "nbdime"} <= set(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_profile_loads_and_its_shape_is_valid(name: str) -> None:
    layer = read_extension_profile(name)
    assert layer.profile == name
    assert f"extension profile for {name}" in layer.source
    assert set(layer.values) <= PROFILE_KEYS
    routes = layer.values.get("scopes.routes", {})
    accepted = layer.values.get("routes.accept_undecorated", ())
    assert routes, "a profile maps the routes of its extension"
    for pattern, methods in routes.items():
        re.compile(pattern)
        assert pattern.startswith("/")
        assert pattern not in BUILTIN_PATTERNS
        for method, scopes in methods.items():
            assert method in (*METHODS, "*"), (pattern, method)
            assert scopes, f"{pattern} {method}: a profile never opens a route without a scope"
            assert set(scopes) <= KNOWN_SCOPES
    for pattern in accepted:
        re.compile(pattern)
        assert pattern in routes, f"{pattern}: an accepted handler is also mapped"


@pytest.mark.parametrize("name", PROFILES)
def test_applying_a_profile_changes_only_route_declarations(name: str) -> None:
    """Never CSP, hosts, CORS, tokens ... : everything but the two route keys is the default."""
    policy = load_policy(extensions=[name])
    default = shipped_policy()
    assert policy.csp == default.csp
    for key, value in policy.values.items():
        if key not in PROFILE_KEYS:
            assert value == default.values[key], key
    assert loosenings(policy) == []


def test_proxying_needs_admin_for_every_method() -> None:
    policy = load_policy(extensions=[PROXY])
    rmap = RouteMap(policy.scopes.routes)
    proxies = [p for p in policy.scopes.routes if p.startswith("/proxy/")]
    assert len(proxies) == 4
    everything_but_admin = frozenset(KNOWN_SCOPES - {ADMIN})
    for pattern in proxies:
        route = rmap.lookup(pattern, "jupyter_server_proxy.handlers.LocalProxyHandler")
        for method in METHODS:
            assert route.rule_for(method).scopes == {ADMIN}  # type: ignore[union-attr]
            assert not scope_allows(route, method, everything_but_admin)
    assert set(proxies) <= set(policy.routes.accept_undecorated)


def test_nbdime_apis_that_read_past_the_path_policy_need_admin() -> None:
    routes = load_policy(extensions=["nbdime"]).scopes.routes
    for api in ("/nbdime/api/diff", "/nbdime/api/gitdiff", "/nbdime/api/isgit"):
        assert routes[api] == {"POST": (ADMIN,)}
    assert routes["/nbdime/difftool"] == {"GET": ("frontend:read",)}


def test_resource_usage_metrics_need_a_read_scope() -> None:
    routes = load_policy(extensions=[USAGE]).scopes.routes
    assert routes["/api/metrics/v1"] == {"GET": ("metrics:read",)}


def test_collaboration_session_and_room_need_what_editing_a_notebook_needs() -> None:
    routes = load_policy(extensions=[YDOC]).scopes.routes
    both = ("contents:read", "contents:write")
    assert routes["/api/collaboration/session/(.*)"] == {"PUT": both}
    assert routes["/api/collaboration/room/(.*)"] == {"GET": both}


def test_profiles_apply_only_for_the_extensions_given() -> None:
    assert load_policy().profiles == ()
    assert "/api/metrics/v1" not in load_policy().scopes.routes
    assert load_policy(extensions=["not_an_extension", USAGE]).profiles == (USAGE,)


def test_profiles_sit_between_the_default_and_the_files(tmp_path: Path) -> None:
    """A file that maps a route of its own keeps every profiled route; a file's entry for a
    profiled pattern wins; the files a reload re-reads are only the default and the files."""
    user = tmp_path / "team.toml"
    user.write_text(
        '[scopes.routes]\n"/mine" = { GET = "contents:read" }\n'
        '"/api/metrics/v1" = { GET = "admin" }\n'
        '[routes]\naccept_undecorated = []\n'
    )
    policy = load_policy([user], extensions=[USAGE, PROXY])
    routes = policy.scopes.routes
    assert routes["/mine"] == {"GET": ("contents:read",)}
    assert routes["/api/metrics/v1"] == {"GET": ("admin",)}  # the file wins
    assert routes["/api/metrics/v1/kernel_usage/get_usage/(.+)"]  # the profile's survives
    assert "/proxy/(\\d+)(/.*|)" in policy.routes.accept_undecorated
    assert policy.sources == (str(loader.profiles_dir() / "default.toml"), str(user))
    assert policy.profiles == (USAGE, PROXY)  # sorted by name
    prov = policy.entry_provenance
    assert "extension profile for jupyter_resource_usage" in prov[
        "scopes.routes /api/metrics/v1/kernel_usage/get_usage/(.+)"
    ]
    assert "scopes.routes /api/metrics/v1" not in prov  # the file's entry is the file's
    assert policy.provenance["scopes.routes"] == str(user)
    # only the file's own entries are shown as changes to review
    changed = {key for key, *_ in loosenings(policy)}
    assert changed == {"scopes.routes"}


def test_one_policy_line_switches_a_profile_off(tmp_path: Path) -> None:
    user = tmp_path / "off.toml"
    user.write_text(f'[scopes]\ndisabled_extension_profiles = ["{PROXY}"]\n')
    policy = load_policy([user], extensions=[PROXY, USAGE])
    assert policy.profiles == (USAGE,)
    assert not any(p.startswith("/proxy/") for p in policy.scopes.routes)
    assert not any(p.startswith("/proxy/") for p in policy.routes.accept_undecorated)
    assert DISABLED_PROFILES_KEY not in {key for key, *_ in loosenings(policy)}


def test_switching_off_a_profile_that_does_not_exist_names_the_key(tmp_path: Path) -> None:
    user = tmp_path / "typo.toml"
    user.write_text('[scopes]\ndisabled_extension_profiles = ["jupyter_server_proxi"]\n')
    with pytest.raises(PolicyError) as caught:
        load_policy([user], extensions=[PROXY])
    assert caught.value.key == DISABLED_PROFILES_KEY
    assert str(user) in str(caught.value)
    assert PROXY in str(caught.value)


def test_a_profile_that_sets_anything_else_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "extensions").mkdir()
    (tmp_path / "extensions" / "evil.toml").write_text(
        '[cors]\nallow_origins = ["https://evil.example"]\n'
    )
    monkeypatch.setattr(loader, "profiles_dir", lambda: tmp_path)
    with pytest.raises(PolicyError) as caught:
        read_extension_profile("evil")
    assert caught.value.key == "cors.allow_origins"
    assert "extension profile for evil" in str(caught.value)


def test_the_baseline_of_a_profiled_policy_includes_its_profiles() -> None:
    base = baseline_policy((USAGE,))
    assert "/api/metrics/v1" in base.scopes.routes
    assert baseline_policy(()) is shipped_policy()
