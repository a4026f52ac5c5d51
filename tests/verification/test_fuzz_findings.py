"""Every crash or invariant violation the fuzz harnesses found, as a regression test.

Each test names the harness that found it; the minimised input is also a seed in
``fuzz/corpus/<harness>/`` (replayed by ``test_fuzz_corpus.py``), so the harness's own
invariants keep checking it too.
"""

from __future__ import annotations

import json

import pytest

from hardened_server.policy import csp
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import build_policy, default_layer, layer_from_bytes
from hardened_server.policy.tokens import parse_authorization

# -- fuzz_csp: the CSP floor held for script-src only --------------------------------------------

FLOOR_BYPASSES = [
    # script-src-elem and script-src-attr win over script-src in browsers (CSP3 §6.8.3)
    ("kernelspec", "script-src-elem", ["'unsafe-inline'"], "corpus/csp/script_elem_*"),
    ("page", "script-src-attr", ["'self'", "'unsafe-inline'"], "corpus/csp/script_attr_*"),
    ("files", "script-src-elem", ["https:"], "script-src-elem with a broad scheme"),
    # schemes are case-insensitive: HTTPS: is https:
    ("files", "script-src", ["HTTPS:"], "corpus/csp/scheme_upper"),
    ("page", "script-src", ["Data:"], "data: in another case"),
    # a host source whose host is "*" is any host
    ("page", "script-src", ["https://*"], "corpus/csp/wildcard_host"),
    ("page", "script-src", ["*:*"], "corpus/csp/wildcard_star_port"),
    ("static", "script-src", ["http://*:8080/js/"], "wildcard host with a port and path"),
    # a wildcard over a whole top-level domain
    ("kernelspec", "script-src", ["*.com"], "corpus/csp/wildcard_tld"),
]


@pytest.mark.parametrize(("route_class", "directive", "sources", "why"), FLOOR_BYPASSES)
def test_a_script_source_loosening_below_the_floor_is_refused(
    route_class: str, directive: str, sources: list[str], why: str
) -> None:
    toml = f"[csp.{route_class}]\n{directive} = {json.dumps(sources)}\n"
    layer = layer_from_bytes("user.toml", toml.encode())
    with pytest.raises(PolicyError) as caught:
        build_policy([default_layer(), layer])
    assert caught.value.source == "user.toml"
    assert caught.value.key == f"csp.{route_class}.{directive}", why
    assert "below the floor" in caught.value.problem
    assert caught.value.fix


@pytest.mark.parametrize(
    "source",
    ["'self'", "https://cdn.example.com", "https://*.example.com", "'sha256-AbC='"],
)
def test_specific_script_sources_stay_allowed(source: str) -> None:
    assert not csp.is_broad_script_source(source)


# -- fuzz_loader: exceptions that escaped the loader ----------------------------------------------


@pytest.mark.parametrize(
    "document",
    ["x = " + "[" * 3000 + "]" * 3000, "x = " + "{a=" * 3000 + "1" + "}" * 3000],
    ids=["deep_array", "deep_inline_table"],
)
def test_deeply_nested_toml_is_a_policy_error(document: str) -> None:
    """tomllib recurses on nesting: a RecursionError escaped the loader (corpus/loader/deep_*)."""
    with pytest.raises(PolicyError) as caught:
        layer_from_bytes("user.toml", document.encode())
    assert str(caught.value).startswith("user.toml: is nested too deeply")
    assert caught.value.fix


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[routes]\npublic = ["/a{99999999999}"]\n', "routes.public"),
        ('[routes]\naccept_undecorated = ["/a{4294967296}"]\n', "routes.accept_undecorated"),
        (
            '[cors]\nallow_origin_patterns = ["https://a{4294967296}"]\n',
            "cors.allow_origin_patterns",
        ),
    ],
)
def test_a_regex_repeat_count_past_the_limit_names_the_key(toml: str, key: str) -> None:
    """re.compile raised OverflowError, which escaped as a traceback (corpus/loader/*overflow)."""
    with pytest.raises(PolicyError) as caught:
        layer_from_bytes("user.toml", toml.encode())
    assert caught.value.key == key
    assert "regular expression" in caught.value.problem or "compile" in caught.value.problem


# -- fuzz_tokens: the Authorization header ---------------------------------------------------------

TOKEN = "8f3c0e1d6b2a4f5e9c7d1b3a5e7f9c2d"


@pytest.mark.parametrize(
    "value",
    [
        f"token {TOKEN}\nX-Evil: 1",  # stock: "(.+)" stops at the newline -> authenticated
        f"token {TOKEN}\x00garbage",
        f"token {TOKEN}\r",
        f"Bearer {TOKEN}\x7f",
        "token  ",  # a first draft of the fix returned " " (corpus/tokens/auth_only_spaces)
        "token \t ",
        f"token{TOKEN}",
        f"Basic {TOKEN}",
    ],
)
def test_an_authorization_value_with_anything_after_the_token_is_not_that_token(
    value: str,
) -> None:
    assert parse_authorization(value) != TOKEN
    assert parse_authorization(value) is None


@pytest.mark.parametrize(
    "value",
    [f"token {TOKEN}", f"Bearer {TOKEN}", f"TOKEN\t{TOKEN}\t", f"bearer   {TOKEN}   "],
)
def test_the_token_schemes_still_parse(value: str) -> None:
    assert parse_authorization(value) == TOKEN
