"""CSP per route class: built as data, parsed back exactly, never below the class's floor.

Stock Jupyter concatenates CSP strings, so a user CSP plus the API's appended
``default-src 'none'`` repeats a directive, and browsers ignore the repeat (CSP3 §2.2.1). Here a
policy file may tighten or loosen each class, but never below its floor: the loader refuses it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardened_server.policy import csp
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.headers import csp_for
from hardened_server.policy.loader import build_policy, default_layer, load_policy, parse_layer

SOURCES = (
    "'none'", "'self'", "'unsafe-inline'", "'unsafe-eval'", "data:", "blob:", "https:", "*",
    "https://cdn.example.com", "'sha256-AbC123+/='", "'nonce-abc123'", "'strict-dynamic'",
)
SANDBOX = ("allow-scripts", "allow-same-origin", "allow-forms", "allow-popups")
FLOOR_DIRECTIVES = ("default-src", "script-src", "object-src", "base-uri", "frame-ancestors")


@st.composite
def directive_value(draw: st.DrawFn, name: str) -> Any:
    if draw(st.booleans()) and draw(st.booleans()):
        return False  # remove it
    if name == "sandbox":
        return draw(st.lists(st.sampled_from(SANDBOX), unique=True, max_size=3))
    values = draw(st.lists(st.sampled_from(SOURCES), unique=True, min_size=1, max_size=4))
    if "'none'" in values and len(values) > 1:
        values = ["'none'"]
    return values


@st.composite
def csp_overlay(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    route_class = draw(st.sampled_from(ROUTE_CLASSES))
    names = draw(
        st.lists(st.sampled_from((*FLOOR_DIRECTIVES, "sandbox", "img-src")), unique=True,
                 min_size=1, max_size=4)
    )
    return route_class, {name: draw(directive_value(name)) for name in names}


@given(csp_overlay())
def test_any_policy_emits_a_header_that_parses_back_and_keeps_the_floor(
    overlay: tuple[str, dict[str, Any]],
) -> None:
    route_class, directives = overlay
    layer = parse_layer("user.toml", {"csp": {route_class: directives}})
    try:
        policy = build_policy([default_layer(), layer])
    except PolicyError as exc:
        refused: PolicyError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.problem.startswith(f"below the floor of the '{route_class}' route class")
        assert refused.key.startswith(f"csp.{route_class}.")
        assert refused.source == "user.toml" or refused.key.rsplit(".", 1)[1] not in directives
        return
    for rc in ROUTE_CLASSES:
        header = csp_for(policy, rc, "/")
        names = [part.split()[0] for part in header.split(";") if part.strip()]
        assert len(names) == len(set(names)), header  # no directive twice
        parsed = csp.parse(header)
        expected = dict(policy.csp[rc])
        expected["report-uri"] = ("/api/security/csp-report",)
        assert parsed == expected
        assert csp.floor_problems(rc, policy.csp[rc]) == []


@pytest.mark.parametrize("route_class", ROUTE_CLASSES)
def test_shipped_default_meets_every_floor(route_class: str) -> None:
    assert csp.floor_problems(route_class, load_policy().csp[route_class]) == []


@pytest.mark.parametrize(
    ("route_class", "directive", "value", "why"),
    [
        ("page", "script-src", ["'self'", "'unsafe-inline'"], "'unsafe-inline'"),
        ("page", "script-src", ["*"], "*"),
        ("page", "object-src", ["'self'"], "object-src"),
        ("page", "frame-ancestors", False, "frame-ancestors"),
        ("page", "base-uri", ["https://cdn.example.com"], "base-uri"),
        ("api", "default-src", ["'self'"], "default-src"),
        ("files", "sandbox", ["allow-scripts", "allow-same-origin"], "allow-same-origin"),
        ("nbconvert", "sandbox", False, "sandbox"),
        ("kernelspec", "sandbox", False, "sandbox"),
    ],
)
def test_a_loosening_below_the_floor_is_refused_naming_key_and_fix(
    route_class: str, directive: str, value: Any, why: str
) -> None:
    layer = parse_layer("team.toml", {"csp": {route_class: {directive: value}}})
    with pytest.raises(PolicyError) as info:
        build_policy([default_layer(), layer])
    err = info.value
    assert err.key == f"csp.{route_class}.{directive}"
    assert why in err.problem
    assert "floor" in err.fix


def test_a_loosening_above_the_floor_is_accepted_and_reported() -> None:
    from hardened_server.policy.loader import loosenings

    layer = parse_layer("team.toml", {"csp": {"page": {"img-src": ["'self'", "https:"]}}})
    policy = build_policy([default_layer(), layer])
    assert any(key == "csp.page.img-src" for key, *_ in loosenings(policy))


def test_inline_script_hashes_skip_data_blocks_sources_and_template_code() -> None:
    html = (
        '<script id="cfg" type="application/json">{"a": 1}</script>'
        '<script src="/static/x.js"></script>'
        "<script>var t = {{ token }};</script>"
        "<script>console.log(1)</script>"
    )
    hashes = csp.inline_script_hashes(html)
    assert len(hashes) == 1
    assert hashes[0].startswith("'sha256-")
    csp.validate_source("script-src", hashes[0])


def test_page_csp_adds_unsafe_eval_only_for_listed_routes() -> None:
    policy = load_policy()
    plain = csp.parse(csp_for(policy, "page", "/"))
    evaluating = csp.parse(csp_for(policy, "page", "/", unsafe_eval=True))
    assert "'unsafe-eval'" not in plain["script-src"]
    assert "'unsafe-eval'" in evaluating["script-src"]
    for rc in ROUTE_CLASSES:
        if rc != "page":
            assert "'unsafe-eval'" not in csp_for(policy, rc, "/", unsafe_eval=True)


def test_no_page_route_of_the_default_gets_an_unsafe_script_source() -> None:
    """#21: the shipped default grants 'unsafe-eval' to no route (routes.unsafe_eval is empty),
    and the script-src of every route class, the page class included, carries no 'unsafe-*'
    keyword; the front-end page routes classify without the eval flag."""
    from hardened_server.policy.routeclass import route_info

    policy = load_policy()
    assert policy.routes.unsafe_eval == ()
    for rc in ROUTE_CLASSES:
        sources = csp.parse(csp_for(policy, rc, "/")).get("script-src", ())
        assert not [s for s in sources if s.startswith("'unsafe-")], (rc, sources)
    for pattern in (
        "/(?P<mode>lab|doc)(?P<workspace>/workspaces/[a-zA-Z0-9\\-\\_]+)?(?P<tree>/tree/.*)?",
        "/tree(.*)", "/notebooks(.*)", "/edit(.*)", "/consoles/(.*)", "/terminals/(.*)",
    ):
        info = route_info(pattern, frozenset(), frozenset(), frozenset(policy.routes.unsafe_eval))
        assert info.route_class == "page"
        assert info.unsafe_eval is False
