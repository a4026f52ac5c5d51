"""Per-response nonces as data: policy/csp.py's ``nonce_source``, ``with_nonce`` and
``mark_scripts`` (issue #16: Voila's inline scripts carry per-cell values, so no hash can allow
them; a nonce drawn for each response can)."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardened_server.policy import csp
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.headers import csp_directives_for
from hardened_server.policy.loader import shipped_policy
from hardened_server.policy.routeclass import KIND_STATIC, route_info

NONCE = secrets.token_urlsafe(18)


@pytest.mark.parametrize(
    "value",
    ["", "short", "a" * 21, "a" * 20 + "==", "a b" * 10, "a'" * 12, 'a"' * 12, "a;" * 12, "é" * 24],
)
def test_a_short_or_malformed_nonce_is_refused(value):
    with pytest.raises(csp.CSPError):
        csp.nonce_source(value)


@pytest.mark.parametrize("value", [NONCE, "A" * 22, "ab+/" * 6 + "==", "ab-_" * 6])
def test_a_nonce_of_128_bits_in_base64_or_base64url_is_a_source(value):
    source = csp.nonce_source(value)
    assert source == f"'nonce-{value}'"
    assert csp.validate_source("script-src", source) == source


def test_with_nonce_adds_the_nonce_to_script_src_and_nothing_else():
    page = shipped_policy().csp["page"]
    out = csp.with_nonce(page, NONCE)
    assert out["script-src"] == (*page["script-src"], f"'nonce-{NONCE}'")
    assert {k: v for k, v in out.items() if k != "script-src"} == {
        k: v for k, v in page.items() if k != "script-src"
    }
    # styles keep 'unsafe-inline' working: a nonce in style-src would switch it off
    assert "'nonce-" not in " ".join(out["style-src"])
    assert "'nonce-" not in csp.serialize(page)  # the built policy itself is untouched


def test_with_nonce_covers_script_src_elem_never_script_src_attr():
    d = csp.make_policy(
        {
            "default-src": ["'none'"],
            "script-src": ["'self'"],
            "script-src-elem": ["'self'"],
            "script-src-attr": ["'none'"],
        }
    )
    out = csp.with_nonce(d, NONCE)
    assert out["script-src-elem"] == ("'self'", f"'nonce-{NONCE}'")
    assert out["script-src"] == ("'self'", f"'nonce-{NONCE}'")
    assert out["script-src-attr"] == ("'none'",)


def test_with_nonce_replaces_none_and_derives_script_src_from_default_src():
    d = csp.make_policy({"default-src": ["'self'"], "script-src": ["'none'"]})
    assert csp.with_nonce(d, NONCE)["script-src"] == (f"'nonce-{NONCE}'",)
    d = csp.make_policy({"default-src": ["'self'"], "style-src": ["'self'"]})
    out = csp.with_nonce(d, NONCE)
    assert out["script-src"] == ("'self'", f"'nonce-{NONCE}'")
    assert out["default-src"] == ("'self'",)  # a nonce in default-src would reach styles


def test_with_nonce_refuses_a_bad_nonce():
    with pytest.raises(csp.CSPError):
        csp.with_nonce(shipped_policy().csp["page"], "x'; script-src *")


_nonces = st.binary(min_size=16, max_size=48).map(
    lambda b: __import__("base64").urlsafe_b64encode(b).decode().rstrip("=")
)


@given(rc=st.sampled_from(ROUTE_CLASSES), nonce=_nonces)
def test_a_nonce_never_loosens_anything_but_the_nonced_script(rc, nonce):
    """Whatever the class: the floors still hold, the only new source is the nonce, and no
    inline or broad source appears."""
    before = shipped_policy().csp[rc]
    after = csp.with_nonce(before, nonce)
    assert csp.floor_problems(rc, after) == []
    added = {
        token
        for name in after
        for token in after[name]
        if token not in (csp.effective(before, name) or ())
    }
    assert added <= {f"'nonce-{nonce}'", csp.CSP.SELF}
    for name in csp.SCRIPT_DIRECTIVES:
        sources = csp.effective(after, name) or ()
        assert csp.CSP.UNSAFE_INLINE not in sources
        assert csp.CSP.STRICT_DYNAMIC not in sources


def test_mark_scripts_marks_every_script_start_tag_of_trusted_text():
    html = '<script>a()</script>\n<SCRIPT src="/x.js"></SCRIPT><script\ttype="module">b()</script>'
    out = csp.mark_scripts(html, NONCE)
    assert out.count(f'nonce="{NONCE}"') == 3
    assert "a()" in out
    assert 'src="/x.js"' in out


def test_mark_scripts_leaves_lookalike_tags_and_refuses_a_bad_nonce():
    html = "<scripts></scripts><scriptx>"
    assert csp.mark_scripts(html, NONCE) == html
    with pytest.raises(csp.CSPError):
        csp.mark_scripts("<script>", 'x" onload="alert(1)')


def test_only_a_listed_page_route_gets_a_nonce():
    listed = frozenset({"/voila/render/(.*)"})
    page = route_info("/voila/render/(.*)", frozenset(), frozenset(), script_nonce=listed)
    assert page.script_nonce
    static = route_info(
        "/voila/render/(.*)", frozenset({KIND_STATIC}), frozenset(), script_nonce=listed
    )
    assert not static.script_nonce  # a static asset is not a page: no inline scripts to allow
    other = route_info("/lab", frozenset(), frozenset(), script_nonce=listed)
    assert not other.script_nonce


def test_the_shipped_default_lists_no_nonce_route():
    policy = shipped_policy()
    assert policy.routes.script_nonce == ()
    assert "'nonce-" not in csp.serialize(csp_directives_for(policy, "page", "/"))
