"""The one redirect validator: every published open-redirect payload lands on the default.

JS-1 (CVE-2020-26232), JS-2 (CVE-2020-26275), JS-6 (CVE-2023-39968), JS-12 (CVE-2025-61669,
mapping unverified) and JupyterHub CVE-2026-33709; plus the WHATWG preprocessing browsers apply
(leading/trailing C0 and space stripped, tab/CR/LF deleted anywhere).
"""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardened_server.policy.redirects import (
    redirect_decision,
    safe_redirect,
    strip_token_params,
)
from hardened_server.policy.rules import Rule

DEFAULT = "/jp/tree"

PAYLOADS = [
    "//evil.example",  # JS-1, JS-2
    "///evil.example",  # JS-12
    "////evil.example/path",
    "/\\evil.example",  # JS-2: browsers read "\" as "/"
    "\\\\evil.example",
    "\\/evil.example",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/\t/evil.example",  # browsers delete tabs and newlines before parsing
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",  # leading space is stripped by the URL parser
    "\x00//evil.example",
    "\x1f//evil.example",
    "https:evil.example",  # JS-6
    "https:/evil.example",
    "https:///evil.example",
    "HTTPS://evil.example",
    "http:evil.example",
    "http:\\\\evil.example",
    "javascript:alert(document.domain)",
    "data:text/html,<script>alert(1)</script>",
    "//a@evil.example",  # userinfo
    "/hub/../..//evil.example",  # CVE-2026-33709
    "%2F%2E%2E%2F%2Fevil.example",
    "/%2e%2e//evil.example",
    "/./..//evil.example",
    "/jp/..//evil.example",
    "/jp/%2e%2e//evil.example",
    "/jp/.%2e/.%2E//evil.example",
    "/jp/..%2F..%2F%2Fevil.example",
    "/jp/%252e%252e/%252f%252fevil.example",  # double encoding
    "/jp/a//evil.example",
    "",
    "jp/tree",  # relative references are not accepted
    "?next=//evil.example",
]


@pytest.mark.parametrize("base_url", ["/", "/jp/"])
@pytest.mark.parametrize("target", PAYLOADS)
def test_open_redirect_payloads_get_the_default(target: str, base_url: str) -> None:
    assert safe_redirect(target, base_url=base_url, default=DEFAULT) == DEFAULT
    assert not redirect_decision(target, base_url=base_url).allowed


@pytest.mark.parametrize(
    ("target", "base_url", "result"),
    [
        ("/lab", "/", "/lab"),
        ("/lab/tree/Untitled.ipynb?reset#cell", "/", "/lab/tree/Untitled.ipynb?reset#cell"),
        ("/jp/lab", "/jp/", "/jp/lab"),
        ("/jp/", "/jp/", "/jp/"),
        ("/jp/a/../tree", "/jp/", "/jp/tree"),  # dot segments resolved as a browser does
        ("/jp/a/./b/%2e%2E", "/jp/", "/jp/a/"),
        ("/jp/tree/My Notebook.ipynb", "/jp/", "/jp/tree/My%20Notebook.ipynb"),
        ("/jp/tree/\u6570.ipynb", "/jp/", "/jp/tree/%E6%95%B0.ipynb"),
        ("/jp/tree/100%25.ipynb", "/jp/", "/jp/tree/100%25.ipynb"),
        ("/jp/tree/50%.ipynb", "/jp/", "/jp/tree/50%25.ipynb"),
        ("/jp/lab?next=//evil.example", "/jp/", "/jp/lab?next=//evil.example"),  # query only
        ("/a%40b/lab", "/a%40b/", "/a%40b/lab"),
        ("/jp/lab", "jp", "/jp/lab"),  # base_url spelt without slashes
    ],
)
def test_same_origin_paths_under_base_url_are_kept(target: str, base_url: str, result: str) -> None:
    assert safe_redirect(target, base_url=base_url, default=DEFAULT) == result
    assert redirect_decision(target, base_url=base_url).rule_id == Rule.REDIRECT_ALLOWED


@pytest.mark.parametrize(
    ("target", "rule"),
    [
        ("//evil.example", Rule.REDIRECT_NOT_A_PATH),
        ("https:evil.example", Rule.REDIRECT_NOT_A_PATH),
        ("/\tx", Rule.REDIRECT_UNSAFE_CHARS),
        ("/jp/x ", Rule.REDIRECT_UNSAFE_CHARS),
        ("/\\evil", Rule.REDIRECT_UNSAFE_CHARS),
        ("/jp/" + "a" * 5000, Rule.REDIRECT_UNSAFE_CHARS),
        ("/jp/\udc80", Rule.REDIRECT_UNSAFE_CHARS),
        ("/jp/a%2Fb", Rule.REDIRECT_ENCODED_SYNTAX),
        ("/jp/%3F", Rule.REDIRECT_ENCODED_SYNTAX),
        ("/jp/%252e", Rule.REDIRECT_ENCODED_SYNTAX),
        ("/other", Rule.REDIRECT_OUTSIDE_BASE),
        ("/jp", Rule.REDIRECT_OUTSIDE_BASE),
        ("/jp/../other", Rule.REDIRECT_OUTSIDE_BASE),
        ("/jp//x", Rule.REDIRECT_OUTSIDE_BASE),
    ],
)
def test_refusals_name_their_rule(target: str, rule: str) -> None:
    decision = redirect_decision(target, base_url="/jp/")
    assert not decision.allowed
    assert decision.rule_id == rule


def test_not_text_gets_the_default() -> None:
    assert safe_redirect(None, base_url="/", default="/") == "/"  # type: ignore[arg-type]


# -- no token in any Location (issue #18) ------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "stripped"),
    [
        ("/view/a.txt?token=abc", "/view/a.txt"),
        ("/view/a.txt?keep=1&token=abc&also=2", "/view/a.txt?keep=1&also=2"),
        ("/login?next=%2Fview%2Fa.txt%3Ftoken%3Dabc", "/login?next=/view/a.txt"),
        (
            "/login?next=%2Flab%3Fa%3D1%26token%3Dabc%23frag",
            "/login?next=/lab%3Fa%3D1%23frag",
        ),
        ("/login?next=/login%3Fnext%3D/lab%253Ftoken%253Dabc", "/login?next=/login%3Fnext%3D/lab"),
        ("/x?TOKEN=abc#token=frag-only", "/x#token=frag-only"),
    ],
)
def test_token_params_are_stripped_at_any_depth(target: str, stripped: str) -> None:
    assert strip_token_params(target) == stripped


@pytest.mark.parametrize(
    "target", ["/lab", "/lab?next=%2Ftree", "/view/tokenizer.py?x=%2F", "/a?tokens=1", "/#token"]
)
def test_targets_without_a_token_param_are_unchanged_byte_for_byte(target: str) -> None:
    assert strip_token_params(target) == target


_names = st.sampled_from(["token", "Token", "next", "a", "tokens"])


@given(
    st.lists(st.tuples(_names, st.text(max_size=12)), max_size=4),
    st.lists(st.tuples(_names, st.text(max_size=12)), max_size=4),
)
def test_no_token_survives_in_a_nested_target(
    outer: list[tuple[str, str]], inner: list[tuple[str, str]]
) -> None:
    nested = "/lab?" + urllib.parse.urlencode(inner)
    target = "/login?" + urllib.parse.urlencode([*outer, ("next", nested)])

    def params(url: str, depth: int = 0) -> list[str]:
        if depth > 3 or "?" not in url:
            return []
        query = url.split("#", 1)[0].split("?", 1)[1]
        names = []
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            names.append(name.lower())
            names += params(value, depth + 1)
        return names

    assert "token" not in params(strip_token_params(target))
