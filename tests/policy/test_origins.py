"""Origin and host-name normalisation: the canonical forms every allow-list compares with ``==``.

Each refused spelling is a parser confusion from research fuzz_and_style §3.2 or an advisory
(JS-10 / CVE-2026-40110 for prefix and suffix matches).
"""

from __future__ import annotations

import pytest

from hardened_server.policy.origins import normalize_hostname, normalize_origin, referer_origin


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("https://trusted.example.com", "https://trusted.example.com"),
        ("https://TRUSTED.example.com:443", "https://trusted.example.com"),
        ("HTTPS://Trusted.Example.Com", "https://trusted.example.com"),
        ("http://localhost:80", "http://localhost"),
        ("http://localhost:8888", "http://localhost:8888"),
        ("https://trusted.example.com:0443", "https://trusted.example.com"),
        ("http://127.0.0.1:8888", "http://127.0.0.1:8888"),
        ("http://[0:0:0:0:0:0:0:1]:8888", "http://[::1]:8888"),
        ("http://[::FFFF:127.0.0.1]", "http://[::ffff:7f00:1]"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("null", "null"),
    ],
)
def test_equivalent_spellings_normalise_to_one_origin(raw: str, canonical: str) -> None:
    assert normalize_origin(raw) == canonical
    assert normalize_origin(canonical) == canonical  # idempotent


@pytest.mark.parametrize(
    "raw",
    [
        "https://evil.com\\@trusted.example.com",  # urlsplit sees trusted, a browser sees evil
        "https://trusted.example.com@evil.com",  # userinfo
        "https://evil.com#@trusted.example.com",
        "https://evil.com?@trusted.example.com",
        "https://trusted.example.com/",  # a path is never part of an Origin
        "https:///trusted.example.com",
        "https:\\\\trusted.example.com",
        "javascript://trusted.example.com/%0aalert(1)",
        "file://trusted.example.com",
        "https://trusted.example.com:",
        "https://trusted.example.com:+443",
        "https://trusted.example.com:0",
        "https://trusted.example.com:65536",
        "https://trusted.example.com:123456",
        "http://localhost:\u00b2",  # str.isdigit() is True, int() raises: must not crash
        "http://localhost:\u0668\u0668",  # Arabic-Indic digits
        "https://[::1]evil",
        "http://[fe80::1%eth0]",  # zone ids have no meaning in a URL
        "http://[::1",
        "https://\uff54\uff52\uff55\uff53\uff54\uff45\uff44.example.com",  # full-width letters
        "https://trusted\u3002example\u3002com",  # ideographic full stop
        "https://b\u00fccher.example",  # browsers send punycode
        "https://127.1",
        "https://2130706433",
        "https://0x7f.0.0.1",
        "https://a.0x10",
        "https://*.example.com",
        "https://trusted..example.com",
        "https://-trusted.example.com",
        " https://trusted.example.com",
        "https://trusted.example.com\x00",
        "https://trusted.example.com%00",
        "NULL",
        "",
        "https://" + "a" * 64 + ".example.com",  # label too long
    ],
)
def test_confusable_or_malformed_origins_are_refused(raw: str) -> None:
    assert normalize_origin(raw) is None


def test_trailing_dot_is_a_different_origin_but_the_same_hostname() -> None:
    """A browser treats ``https://trusted.example.com.`` as another origin (and a virtual host
    may serve other content for it); DNS resolves both names alike, so Host drops the dot."""
    assert normalize_origin("https://trusted.example.com.") == "https://trusted.example.com."
    assert normalize_origin("https://trusted.example.com.") != normalize_origin(
        "https://trusted.example.com"
    )
    assert normalize_hostname("trusted.example.com.") == "trusted.example.com"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Jupyter.Example.ORG", "jupyter.example.org"),
        ("localhost.", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("[0::1]", "[::1]"),
        ("b\u00fccher.example", "xn--bcher-kva.example"),  # configuration may be written in IDN
    ],
)
def test_hostnames_normalise(raw: str, canonical: str) -> None:
    assert normalize_hostname(raw) == canonical
    assert normalize_hostname(canonical) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "localhost:8888",
        "user@localhost",
        "evil.com\\localhost",
        "*.example.com",
        "127.1",
        "127.000.0.1",
        "2130706433",
        "::1",
        "[::1]x",
        "[fe80::1%eth0]",
        "a..b",
        "a" * 300,
        "local host",
    ],
)
def test_malformed_hostnames_are_refused(raw: str) -> None:
    assert normalize_hostname(raw) is None


@pytest.mark.parametrize(
    ("referer", "origin"),
    [
        ("http://localhost:8888/lab?token=x", "http://localhost:8888"),
        ("HTTP://LOCALHOST:8888", "http://localhost:8888"),
        ("https://jupyter.example.org:443/files/a.txt#x", "https://jupyter.example.org"),
        ("http://localhost:8888.evil.com/", None),  # not a host name: "8888.evil.com" port
        ("http://localhost:8888@evil.com/", None),  # userinfo: browsers strip it from Referer
        ("http://evil.com\\@localhost:8888/", None),  # backslash differential
        ("http://localhost.evil.com:8888/", "http://localhost.evil.com:8888"),  # foreign
        ("null", None),
        ("/lab", None),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)
def test_referer_origin(referer: str, origin: str | None) -> None:
    assert referer_origin(referer) == origin
