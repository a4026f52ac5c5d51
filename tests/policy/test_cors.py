"""CORS: an exact allow-list, nothing reflected, ``Vary: Origin`` always (JS-10).

JS-10 / CVE-2026-40110: jupyter_server's ``allow_origin_pat`` was applied with ``re.match`` and
accepted ``https://trusted.example.com.evil.com``; with ``allow_credentials`` the attacker read
cookie-authenticated API responses. Stock also reflected any Origin for token requests.
"""

from __future__ import annotations

import pytest

from hardened_server.policy.cors import (
    compile_cors,
    cors_decision,
    cors_headers,
    is_allowed_origin,
    listed_origin_set,
)
from hardened_server.policy.decisions import Rule

TRUSTED = "https://trusted.example.com"
ALLOW = compile_cors([TRUSTED])
ALLOW_CREDS = compile_cors([TRUSTED, "null"], allow_credentials=True)


def _names(headers: tuple[tuple[str, str], ...]) -> list[str]:
    return [name for name, _ in headers]


# -- the examples from the issue -------------------------------------------------------------


def test_listed_origin_in_another_spelling_is_accepted() -> None:
    decision = is_allowed_origin("https://TRUSTED.example.com:443", ALLOW)
    assert decision.allowed
    assert decision.rule_id == Rule.CORS_LISTED


@pytest.mark.parametrize(
    "origin",
    [
        "https://trusted.example.com.evil.com",  # suffix (JS-10)
        "https://trusted.example.comevil.com",  # concatenation
        "https://trusted.example.comedy",  # upstream BYPASS_ORIGINS
        "https://trusted.example.com:9999",
        "https://evil.com\\@trusted.example.com",  # backslash/userinfo differential
        "https://trusted.example.com@evil.com",
        "null",
        "http://trusted.example.com",  # another scheme is another origin
        "https://trusted.example.com.",
        "https://\uff54rusted.example.com",
    ],
)
def test_confusable_origins_are_refused(origin: str) -> None:
    decision = is_allowed_origin(origin, ALLOW)
    assert not decision.allowed
    assert decision.rule_id == Rule.CORS_NOT_LISTED
    assert cors_headers(ALLOW, origin=origin, method="GET") == (("Vary", "Origin"),)


@pytest.mark.parametrize("origin", [None, ""])
def test_absent_origin_is_not_a_cors_request(origin: str | None) -> None:
    assert is_allowed_origin(origin, ALLOW).rule_id == Rule.ORIGIN_ABSENT
    assert cors_headers(ALLOW, origin=origin, method="GET") == (("Vary", "Origin"),)


# -- response headers ------------------------------------------------------------------------


def test_listed_origin_gets_the_canonical_origin_not_the_request_bytes() -> None:
    headers = cors_headers(ALLOW, origin="https://TRUSTED.example.com:443", method="GET")
    assert ("Access-Control-Allow-Origin", TRUSTED) in headers
    assert ("Vary", "Origin") in headers
    assert "Access-Control-Allow-Credentials" not in _names(headers)


def test_credentials_only_when_allowed_and_never_for_null() -> None:
    headers = cors_headers(ALLOW_CREDS, origin=TRUSTED, method="GET")
    assert ("Access-Control-Allow-Credentials", "true") in headers
    null_headers = cors_headers(ALLOW_CREDS, origin="null", method="GET")
    assert ("Access-Control-Allow-Origin", "null") in null_headers
    assert "Access-Control-Allow-Credentials" not in _names(null_headers)


def test_null_is_refused_unless_listed() -> None:
    assert not is_allowed_origin("null", ALLOW)
    assert is_allowed_origin("null", ALLOW_CREDS)


def test_preflight_names_configured_methods_and_headers() -> None:
    headers = dict(
        cors_headers(
            ALLOW,
            origin=TRUSTED,
            method="OPTIONS",
            request_method="PUT",
            request_headers="Content-Type, X-XSRFToken, accept",
        )
    )
    assert headers["Access-Control-Allow-Origin"] == TRUSTED
    assert headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE"
    assert headers["Access-Control-Allow-Headers"] == "authorization, content-type, x-xsrftoken"
    assert headers["Access-Control-Max-Age"] == "600"
    assert headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    ("request_method", "request_headers"),
    [
        ("TRACE", None),
        ("patch", None),  # Access-Control-Request-Method is case-sensitive (Fetch)
        ("PUT", "x-evil"),  # asked-for headers are never reflected
        ("PUT", "content-type, x-evil"),
        ("PUT", "bad header"),
    ],
)
def test_preflight_outside_the_allow_list_gets_nothing(
    request_method: str, request_headers: str | None
) -> None:
    kwargs = {"request_method": request_method, "request_headers": request_headers}
    assert cors_headers(ALLOW, origin=TRUSTED, method="OPTIONS", **kwargs) == (("Vary", "Origin"),)
    assert cors_decision(ALLOW, origin=TRUSTED, method="OPTIONS", **kwargs).rule_id == (
        Rule.CORS_NOT_LISTED
    )


def test_preflight_from_unlisted_origin_gets_nothing() -> None:
    headers = cors_headers(
        ALLOW, origin="https://evil.example", method="OPTIONS", request_method="GET"
    )
    assert headers == (("Vary", "Origin"),)


def test_private_network_access_is_never_granted() -> None:
    headers = cors_headers(ALLOW, origin=TRUSTED, method="OPTIONS", request_method="GET")
    assert "Access-Control-Allow-Private-Network" not in _names(headers)


def test_actual_request_with_a_method_not_allowed_gets_no_cors_headers() -> None:
    allow_get = compile_cors([TRUSTED], allow_methods=["GET"])
    assert cors_headers(allow_get, origin=TRUSTED, method="DELETE") == (("Vary", "Origin"),)
    assert ("Access-Control-Allow-Origin", TRUSTED) in cors_headers(
        allow_get, origin=TRUSTED, method="get"
    )


def test_expose_headers() -> None:
    allowlist = compile_cors([TRUSTED], expose_headers=["X-Total-Count"])
    headers = dict(cors_headers(allowlist, origin=TRUSTED, method="GET"))
    assert headers["Access-Control-Expose-Headers"] == "x-total-count"


# -- patterns: full match on the normalised origin (JS-10) ------------------------------------


def test_patterns_match_in_full_only() -> None:
    allowlist = compile_cors([], allow_origin_patterns=[r"https://[a-z0-9-]+\.trusted\.example"])
    assert is_allowed_origin("https://a-1.trusted.example", allowlist)
    assert is_allowed_origin("HTTPS://A-1.TRUSTED.EXAMPLE:443", allowlist)  # normalised first
    for bypass in (
        "https://a.trusted.example.evil.com",
        "https://a.trusted.exampleevil.com",
        "https://a.trusted.example:9999",
        "https://evil.com\\@a.trusted.example",
        "https://a.trusted.example.",
    ):
        assert not is_allowed_origin(bypass, allowlist), bypass


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (".*", "literal scheme"),
        ("trusted\\.example\\.com", "literal scheme"),
        ("https?://.*", "too broad"),
        ("https://.+", "too broad"),
        ("https://(", "does not compile"),
        ("", "1-256 characters"),
    ],
)
def test_unsafe_patterns_are_refused_at_compile_time(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_cors([], allow_origin_patterns=[pattern])


@pytest.mark.parametrize("origin", ["*", "https://*.example.com", "https://a.example.com/", "x"])
def test_wildcards_and_non_origins_are_refused_at_compile_time(origin: str) -> None:
    with pytest.raises(ValueError, match=r"wildcard|not an origin"):
        compile_cors([origin])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"allow_methods": ["GET POST"]},
        {"allow_headers": ["x-a\r\nx-b"]},
        {"expose_headers": [""]},
        {"max_age": -1},
        {"max_age": True},
    ],
)
def test_invalid_settings_are_refused_at_compile_time(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="cors"):
        compile_cors([TRUSTED], **kwargs)  # type: ignore[arg-type]


def test_listed_origin_set_adds_the_requests_origin_only_when_a_pattern_lists_it() -> None:
    """What the cross-site decision looks origins up in (policy/fetchmeta.py)."""
    assert listed_origin_set(ALLOW, TRUSTED) == frozenset({TRUSTED})
    assert listed_origin_set(ALLOW, "https://other.example") == frozenset({TRUSTED})
    patterned = compile_cors([TRUSTED], allow_origin_patterns=[r"https://[a-z]+\.example\.org"])
    assert listed_origin_set(patterned, "https://A.example.org:443") == frozenset(
        {TRUSTED, "https://a.example.org"}
    )
    assert listed_origin_set(patterned, "https://a.example.org.evil.com") == frozenset({TRUSTED})
    assert listed_origin_set(patterned, None) == frozenset({TRUSTED})


def test_constructor_defaults_are_the_shipped_profiles() -> None:
    """compile_cors keeps Starlette-style safe constructor defaults for callers with no policy
    (tests, the schema's item checks); they must be the shipped profile's values, never a second
    opinion (the runtime always passes the policy's)."""
    from hardened_server.policy.cors import DEFAULT_ALLOW_HEADERS, DEFAULT_MAX_AGE
    from hardened_server.policy.loader import shipped_policy

    shipped = shipped_policy().cors
    assert tuple(shipped.allow_headers) == DEFAULT_ALLOW_HEADERS
    assert shipped.max_age == DEFAULT_MAX_AGE
