"""Start-up refusals as pure functions (``policy/startup.py``) and token strength (``tokens.py``).

Each refusal must fire on exactly its fact and stay quiet otherwise: a check that never fires
protects nothing, and one that fires on a safe configuration teaches operators to turn checks
off. The live refusals (a real server exiting) are tested elsewhere; here only the decisions.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import pytest

from hardened_server.policy.decisions import Rule
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.loader import build_policy, default_layer, parse_layer
from hardened_server.policy.model import Policy
from hardened_server.policy.startup import (
    SECURITY_SETTINGS,
    RouteFact,
    StartupFacts,
    check_configuration,
    check_contents_manager,
    check_drift,
    check_routes,
    same_setting,
)
from hardened_server.policy.tokens import estimate_entropy_bits, is_strong_token

# 32 lower-case hex characters, no repetition: exactly 128 bits by the estimate.
HEX32 = "3f9a1c7e5b2d4086e1f7a9c3b5d20846"


def policy_with(doc: dict[str, Any] | None = None) -> Policy:
    layers = [default_layer()]
    if doc:
        layers.append(parse_layer("test.toml", doc))
    return build_policy(layers)


DEFAULT = policy_with()

SAFE = StartupFacts(
    ip="127.0.0.1",
    has_tls=False,
    user_tornado_settings=frozenset(),
    allow_origin="",
    allow_origin_pat="",
    allow_credentials=False,
    disable_check_xsrf=False,
    allow_unauthenticated_access=False,
    token=HEX32,
    token_generated=False,
    has_password=False,
    terminals_enabled=False,
)


def facts(**changes: Any) -> StartupFacts:
    return dataclasses.replace(SAFE, **changes)


def rules(problems: list[UnsafeStartup]) -> list[str]:
    return [p.rule_id for p in problems]


def only(problems: list[UnsafeStartup], rule: Rule) -> UnsafeStartup:
    assert rules(problems) == [rule], [str(p) for p in problems]
    return problems[0]


# --- check_configuration ------------------------------------------------------------------------


def test_safe_loopback_configuration_passes() -> None:
    assert check_configuration(SAFE, DEFAULT) == []


@pytest.mark.parametrize("setting", SECURITY_SETTINGS)
def test_tornado_settings_overriding_a_security_setting_is_refused(setting: str) -> None:
    """``ServerApp.tornado_settings`` is merged over ours: a ``headers`` or ``xsrf_cookies`` entry
    there would silently replace what the policy set."""
    problem = only(
        check_configuration(facts(user_tornado_settings=frozenset({setting})), DEFAULT),
        Rule.START_SETTING_OVERRIDE,
    )
    assert repr(setting) in str(problem)
    assert problem.fix


def test_tornado_settings_without_security_keys_pass() -> None:
    user = frozenset({"compress_response", "static_url_prefix"})
    assert check_configuration(facts(user_tornado_settings=user), DEFAULT) == []


def test_each_overridden_security_setting_is_reported() -> None:
    user = frozenset({"headers", "xsrf_cookies", "compress_response"})
    problems = check_configuration(facts(user_tornado_settings=user), DEFAULT)
    assert rules(problems) == [Rule.START_SETTING_OVERRIDE] * 2


def test_allow_origin_star_is_refused_pointing_at_cors_allow_origins() -> None:
    """``allow_origin='*'`` in jupyter_server skips the origin check altogether; the allow-list
    lives in the policy, and the refusal says which key."""
    problem = only(check_configuration(facts(allow_origin="*"), DEFAULT), Rule.START_ALLOW_ORIGIN)
    assert "cors.allow_origins" in str(problem)
    assert "ServerApp.allow_origin" in str(problem)
    assert problem.setting == "ServerApp.allow_origin"


def test_exact_allow_origin_is_refused_too() -> None:
    """Even an exact origin bypasses normalisation and provenance: it belongs in the policy."""
    problem = only(
        check_configuration(facts(allow_origin="https://trusted.example.com"), DEFAULT),
        Rule.START_ALLOW_ORIGIN,
    )
    assert "cors.allow_origins" in problem.fix


def test_allow_origin_pat_is_refused() -> None:
    """A regular expression allow-list is the classic bypass: ``https://trusted.example.com.evil``
    matches an unanchored pattern (CVE-2026-40110, GHSA-24qx-w28j-9m6p)."""
    problem = only(
        check_configuration(facts(allow_origin_pat=r"https://.*\.example\.com"), DEFAULT),
        Rule.START_ALLOW_ORIGIN,
    )
    assert problem.setting == "ServerApp.allow_origin_pat"
    assert "cors.allow_origins" in str(problem)


def test_allow_credentials_setting_is_refused() -> None:
    problem = only(
        check_configuration(facts(allow_credentials=True), DEFAULT), Rule.START_ALLOW_ORIGIN
    )
    assert "cors.allow_credentials" in problem.fix


def test_disable_check_xsrf_is_refused() -> None:
    problem = only(
        check_configuration(facts(disable_check_xsrf=True), DEFAULT), Rule.START_DISABLE_XSRF
    )
    assert problem.setting == "ServerApp.disable_check_xsrf"


def test_allow_unauthenticated_access_is_refused() -> None:
    problem = only(
        check_configuration(facts(allow_unauthenticated_access=True), DEFAULT),
        Rule.START_UNAUTHENTICATED_ACCESS,
    )
    assert "routes.public" in problem.fix


def test_empty_token_without_password_is_refused() -> None:
    """``--IdentityProvider.token=''`` with no password: anyone reaching the port runs code."""
    only(check_configuration(facts(token=""), DEFAULT), Rule.START_NO_AUTH)


def test_empty_token_with_a_password_passes() -> None:
    assert check_configuration(facts(token="", has_password=True), DEFAULT) == []


@pytest.mark.parametrize(
    "token",
    [
        "huggingface",  # the JUPYTER_TOKEN of a well-known hosted image
        HEX32[:31],  # 124 bits
        "a" * 64,
        "abcd" * 16,
        "password1234567890",
        "0123456789" * 4,  # digits only, repeated
    ],
)
def test_weak_configured_token_is_refused(token: str) -> None:
    problem = only(check_configuration(facts(token=token), DEFAULT), Rule.START_WEAK_TOKEN)
    assert "tokens.min_entropy_bits" in problem.fix
    assert token not in str(problem)  # the message must not leak the token


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_hex(16),
        lambda: secrets.token_hex(32),
        lambda: secrets.token_urlsafe(32),
    ],
    ids=["token_hex(16)", "token_hex(32)", "token_urlsafe(32)"],
)
def test_strong_configured_token_passes(make: Any) -> None:
    assert check_configuration(facts(token=make()), DEFAULT) == []


def test_weak_token_passes_when_the_server_generated_it() -> None:
    """The check is about tokens an operator typed; generated ones come from ``secrets``."""
    assert check_configuration(facts(token="huggingface", token_generated=True), DEFAULT) == []


def test_token_threshold_follows_the_policy() -> None:
    strict = policy_with({"tokens": {"min_entropy_bits": 256}})
    only(check_configuration(facts(token=HEX32), strict), Rule.START_WEAK_TOKEN)
    assert check_configuration(facts(token=secrets.token_hex(32)), strict) == []


def test_terminals_enabled_against_the_policy_is_refused() -> None:
    only(check_configuration(facts(terminals_enabled=True), DEFAULT), Rule.START_TERMINALS)


def test_terminals_enabled_with_the_policy_allowing_them_passes() -> None:
    allowed = policy_with({"terminals": {"enabled": True}})
    assert check_configuration(facts(terminals_enabled=True), allowed) == []


@pytest.mark.parametrize("ip", ["0.0.0.0", "", "10.1.2.3", "::", "jupyter.example.org"])
def test_non_loopback_bind_without_tls_or_proxy_is_refused(ip: str) -> None:
    """Tokens and session cookies would cross the network in clear."""
    problem = only(check_configuration(facts(ip=ip), DEFAULT), Rule.START_INSECURE_REMOTE)
    assert "server.trusted_proxies" in problem.fix
    assert "server.allow_insecure_remote" in problem.fix


@pytest.mark.parametrize("ip", ["0.0.0.0", "", "10.1.2.3"])
def test_non_loopback_bind_with_tls_passes(ip: str) -> None:
    assert check_configuration(facts(ip=ip, has_tls=True), DEFAULT) == []


def test_non_loopback_bind_behind_a_trusted_proxy_passes() -> None:
    behind = policy_with({"server": {"trusted_proxies": ["10.0.0.0/8"]}})
    assert check_configuration(facts(ip="0.0.0.0"), behind) == []


def test_non_loopback_bind_with_insecure_remote_accepted_passes() -> None:
    accepted = policy_with({"server": {"allow_insecure_remote": True}})
    assert check_configuration(facts(ip="10.1.2.3"), accepted) == []


def test_unix_socket_is_not_a_remote_bind() -> None:
    assert check_configuration(facts(ip="0.0.0.0", sock="/run/hs.sock"), DEFAULT) == []


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_bind_passes(ip: str) -> None:
    assert check_configuration(facts(ip=ip), DEFAULT) == []


def test_every_fact_is_reported_at_once() -> None:
    """An operator fixes all problems in one round, not one per restart."""
    everything = facts(
        ip="0.0.0.0",
        user_tornado_settings=frozenset({"headers"}),
        allow_origin="*",
        disable_check_xsrf=True,
        allow_unauthenticated_access=True,
        token="",
        terminals_enabled=True,
    )
    assert sorted(rules(check_configuration(everything, DEFAULT))) == sorted(
        [
            Rule.START_SETTING_OVERRIDE,
            Rule.START_ALLOW_ORIGIN,
            Rule.START_DISABLE_XSRF,
            Rule.START_UNAUTHENTICATED_ACCESS,
            Rule.START_NO_AUTH,
            Rule.START_TERMINALS,
            Rule.START_INSECURE_REMOTE,
        ]
    )


def test_refusal_message_carries_rule_id_setting_and_fix() -> None:
    problem = only(
        check_configuration(facts(disable_check_xsrf=True), DEFAULT), Rule.START_DISABLE_XSRF
    )
    text = str(problem)
    assert text.startswith(f"[{Rule.START_DISABLE_XSRF}] refusing to start: ")
    assert f"setting: {problem.setting}" in text
    assert f"fix: {problem.fix}" in text


# --- check_routes -------------------------------------------------------------------------------


def test_undecorated_route_not_public_is_refused_naming_the_fix() -> None:
    """An extension handler without ``@web.authenticated`` answers anonymous requests in stock
    jupyter_server (jupyter-lsp's CVE-2024-22415, GHSA-4qhp-652w-c22x); here the server does not
    start."""
    route = RouteFact("/myext/data", "myext.handlers.DataHandler", ("GET", "POST"))
    problem = only(check_routes([route], DEFAULT), Rule.START_UNAUTHENTICATED_ROUTE)
    text = str(problem)
    assert "GET, POST" in text
    assert "myext.handlers.DataHandler" in text
    assert "'/myext/data'" in text
    assert "@tornado.web.authenticated" in problem.fix
    assert "routes.public" in problem.fix


def test_undecorated_route_listed_as_public_passes() -> None:
    public = policy_with({"routes": {"public": ["/login", "/myext/data"]}})
    route = RouteFact("/myext/data", "myext.handlers.DataHandler", ("GET",))
    assert check_routes([route], public) == []


def test_undecorated_route_accepted_as_reviewed_passes() -> None:
    reviewed = policy_with({"routes": {"accept_undecorated": ["/myext/ws"]}})
    route = RouteFact("/myext/ws", "myext.handlers.WS", ("GET",))
    assert check_routes([route], reviewed) == []


def test_decorated_route_passes() -> None:
    route = RouteFact("/myext/data", "myext.handlers.DataHandler", ())
    assert check_routes([route], DEFAULT) == []


def test_route_exemption_is_an_exact_pattern_match() -> None:
    """Listing ``/login`` must not exempt ``/login/extra`` or ``/login2``."""
    routes = [
        RouteFact("/login/extra", "x.A", ("GET",)),
        RouteFact("/login2", "x.B", ("GET",)),
    ]
    assert rules(check_routes(routes, DEFAULT)) == [Rule.START_UNAUTHENTICATED_ROUTE] * 2


def test_each_undecorated_route_is_reported() -> None:
    routes = [
        RouteFact("/a", "x.A", ("GET",)),
        RouteFact("/login", "x.Login", ("GET", "POST")),
        RouteFact("/b", "x.B", ("DELETE",)),
    ]
    problems = check_routes(routes, DEFAULT)
    assert [p.setting for p in problems] == ["route '/a'", "route '/b'"]


def test_route_dropped_from_accept_undecorated_by_a_layer_names_the_layer_and_extend() -> None:
    """A layer that writes routes.accept_undecorated as a list replaces the shipped one: the
    route it lost stops the start-up, naming that layer and the `extend` form."""
    policy = build_policy([
        default_layer(),
        parse_layer("team.toml", {"routes": {"accept_undecorated": ["/myext/ws"]}}),
    ])
    lsp = RouteFact("/lsp/ws/(?P<language_server>.*)", "jupyter_lsp.LanguageServerWebSocketHandler",
                    ("GET",))
    problem = only(check_routes([lsp], policy), Rule.START_UNAUTHENTICATED_ROUTE)
    assert "team.toml replaced routes.accept_undecorated and dropped it" in str(problem)
    assert problem.setting == "routes.accept_undecorated in team.toml"
    assert "accept_undecorated = { extend = [" in (problem.fix or "")
    extended = build_policy([
        default_layer(),
        parse_layer("team.toml", {"routes": {"accept_undecorated": {"extend": ["/myext/ws"]}}}),
    ])
    assert check_routes([lsp], extended) == []


# --- check_drift --------------------------------------------------------------------------------

SNAPSHOT = {
    "xsrf_cookies": True,
    "headers": {"Content-Security-Policy": "default-src 'none'"},
    "allow_origin": "",
    "compress_response": True,
}


def test_unchanged_settings_have_no_drift() -> None:
    assert check_drift(SNAPSHOT, dict(SNAPSHOT)) == []


def test_equal_but_not_identical_values_are_no_drift() -> None:
    copy = {**SNAPSHOT, "headers": dict(SNAPSHOT["headers"])}
    assert check_drift(SNAPSHOT, copy) == []


def test_changed_security_setting_is_drift() -> None:
    """An extension's settings merge replacing our headers must not go unnoticed."""
    after = {**SNAPSHOT, "headers": {"Content-Security-Policy": "default-src *"}}
    problem = only(check_drift(SNAPSHOT, after, who="myext"), Rule.START_SETTINGS_DRIFT)
    assert "myext" in str(problem)
    assert "'headers'" in str(problem)


def test_added_security_setting_is_drift() -> None:
    after = {**SNAPSHOT, "disable_check_xsrf": True}
    problem = only(check_drift(SNAPSHOT, after), Rule.START_SETTINGS_DRIFT)
    assert "'disable_check_xsrf'" in str(problem)


def test_removed_security_setting_is_drift() -> None:
    after = {k: v for k, v in SNAPSHOT.items() if k != "xsrf_cookies"}
    problem = only(check_drift(SNAPSHOT, after), Rule.START_SETTINGS_DRIFT)
    assert "'xsrf_cookies'" in str(problem)


def test_changed_non_security_setting_is_no_drift() -> None:
    assert check_drift(SNAPSHOT, {**SNAPSHOT, "compress_response": False}) == []


class RaisingEq:
    """Stands for jupytext's contents manager: its ``__eq__`` reads attributes only its own
    class has and raises AttributeError against anything else (a traceback, exit 1)."""

    def __eq__(self, other: object) -> bool:
        raise AttributeError("cell_markers")

    __hash__ = object.__hash__


class EqualsEverything(RaisingEq):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_drift_never_calls_a_foreign_eq() -> None:
    """An object is compared by identity: its ``__eq__`` is extension code that may raise, or
    claim equality with anything."""
    ours, theirs = RaisingEq(), RaisingEq()
    problem = only(
        check_drift({"contents_manager": ours}, {"contents_manager": theirs}),
        Rule.START_SETTINGS_DRIFT,
    )
    assert "'contents_manager'" in str(problem)
    assert check_drift({"contents_manager": ours}, {"contents_manager": ours}) == []
    assert check_drift({"contents_manager": ours}, {"contents_manager": EqualsEverything()})
    # inside plain containers too
    assert check_drift({"headers": {"x": ours}}, {"headers": {"x": theirs}})
    assert check_drift({"headers": [EqualsEverything()]}, {"headers": [1]})


def test_same_setting_compares_plain_data_by_value() -> None:
    assert same_setting({"a": [1, "x", None, (2.0, b"y")]}, {"a": [1, "x", None, (2.0, b"y")]})
    assert not same_setting({"a": [1]}, {"a": [2]})
    assert not same_setting({"a": 1}, {"a": 1, "b": 2})
    assert not same_setting([1], (1,))
    assert not same_setting({1: "int key"}, {1: "int key"})  # settings keys are strings
    assert same_setting(True, True)
    assert not same_setting(True, False)


def test_contents_manager_not_built_on_ours_is_refused() -> None:
    problem = only(check_contents_manager("jupytext.TextFileContentsManager", False),
                   Rule.START_CONTENTS_MANAGER)
    assert problem.setting == "ServerApp.contents_manager_class"
    assert "HardenedContentsManager" in (problem.fix or "")
    assert check_contents_manager("x.Composed", True) == []
    by_extension = only(check_contents_manager("x.M", False, who="a server extension"),
                        Rule.START_CONTENTS_MANAGER)
    assert "replaced by a server extension" in by_extension.setting


def test_configured_foreign_contents_manager_refuses_start() -> None:
    problems = check_configuration(
        facts(contents_manager="jupyter_server.services.contents.largefilemanager."
              "AsyncLargeFileManager", contents_manager_composed=False), DEFAULT)
    assert [p.rule_id for p in problems] == [Rule.START_CONTENTS_MANAGER]


# --- tokens.estimate_entropy_bits ---------------------------------------------------------------


def test_32_hex_characters_are_128_bits() -> None:
    assert estimate_entropy_bits(HEX32) == pytest.approx(128)
    assert estimate_entropy_bits(HEX32.upper()) == pytest.approx(128)


def test_token_hex_16_is_strong_enough_for_the_default_policy() -> None:
    # Retry a few draws: a draw of only decimal digits (p ~ 3e-7) is rightly rated lower.
    assert any(is_strong_token(secrets.token_hex(16), 128) for _ in range(3))


def test_token_urlsafe_32_is_well_above_128_bits() -> None:
    assert estimate_entropy_bits(secrets.token_urlsafe(32)) > 200


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a" * 64,
        "ab" * 32,
        "abcabcabcabc",
        "aabbccdd" * 8,
        "1234567" * 9,
        " " + HEX32,
        HEX32 + "\n",
    ],
)
def test_obvious_patterns_and_malformed_tokens_are_zero_bits(token: str) -> None:
    assert estimate_entropy_bits(token) == 0.0


def test_non_ascii_token_is_zero_bits() -> None:
    assert estimate_entropy_bits(HEX32[:-1] + "\u00e9") == 0.0


def test_estimate_never_credits_more_than_the_smallest_alphabet() -> None:
    """Digits only: log2(10) per character, even though they are also hex or base64."""
    digits = "31415926535897932384626433832795"
    assert estimate_entropy_bits(digits) == pytest.approx(32 * 3.3219, rel=1e-3)
    assert not is_strong_token(digits, 128)


def test_huggingface_is_far_below_the_threshold() -> None:
    """The default token of a popular hosted image is refused (about 57 bits at most)."""
    assert estimate_entropy_bits("huggingface") < 64


def test_dictionary_made_tokens_are_not_credited_as_random() -> None:
    """Words and repeated words are not random draws: letters-only tokens are credited as
    letters, and a long run that repeats an earlier one counts once."""
    from hardened_server.policy.tokens import estimate_entropy_bits

    assert estimate_entropy_bits("correcthorsebatterystaple") < 128
    assert estimate_entropy_bits("huggingfacehuggingface12345") < 128


def test_nbclassic_is_refused_with_the_way_to_notebook_7():
    """Issue #16: nbclassic cannot work under the page CSP; refused, naming the replacement."""
    from hardened_server.policy.rules import Rule
    from hardened_server.policy.startup import check_extensions

    (problem,) = check_extensions(["jupyterlab", "nbclassic", "notebook"])
    assert problem.rule_id == Rule.START_REFUSED_EXTENSION == "HS-START-012"
    assert "Notebook 7" in problem.fix
    assert "nbclassic" in problem.setting
    assert check_extensions(["jupyterlab", "notebook", "voila.server_extension"]) == []
# -- a site's own identity provider (issue #17) -----------------------------------------------

SITE = "site_auth.ForwardedUserIdentityProvider"


def test_a_site_identity_provider_is_refused_until_the_policy_gives_its_users_scopes() -> None:
    """Stock: a site's identity_provider_class starts and every user gets 403 (no scopes):
    a silent lock-out. Here start-up says which setting and which policy key."""
    problems = check_configuration(facts(site_identity_provider=SITE), DEFAULT)
    assert [p.rule_id for p in problems] == [Rule.START_SITE_PROVIDER]
    text = str(problems[0])
    assert SITE in text
    assert "ServerApp.identity_provider_class" in problems[0].setting
    assert "identity.site_provider" in problems[0].setting


@pytest.mark.parametrize(
    "identity",
    [
        {"site_provider": "owner"},
        {"site_provider": "mapped", "users": {"alice": ["contents:read"]}},
        {"site_provider": "mapped", "groups": {"staff": ["contents:read"]}},
    ],
)
def test_a_site_identity_provider_starts_once_the_policy_says_what_its_users_may_do(
    identity: dict[str, Any],
) -> None:
    policy = policy_with({"identity": identity})
    assert check_configuration(facts(site_identity_provider=SITE), policy) == []


def test_mapped_with_empty_tables_is_a_lock_out_and_refused() -> None:
    policy = policy_with({"identity": {"site_provider": "mapped"}})
    problems = check_configuration(facts(site_identity_provider=SITE), policy)
    assert [p.rule_id for p in problems] == [Rule.START_SITE_PROVIDER]
    assert "identity.users" in problems[0].setting


def test_hardened_servers_own_provider_needs_no_identity_policy() -> None:
    assert check_configuration(facts(site_identity_provider=""), DEFAULT) == []


def test_an_unused_legacy_login_handler_is_refused_not_ignored() -> None:
    problems = check_configuration(facts(legacy_login_handler="site_auth.MyLogin"), DEFAULT)
    assert [p.rule_id for p in problems] == [Rule.START_LEGACY_LOGIN_HANDLER]
    assert "ServerApp.login_handler_class" in problems[0].setting
    assert "site_auth.MyLogin" in str(problems[0])
