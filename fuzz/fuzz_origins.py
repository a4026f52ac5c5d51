#!/usr/bin/env python3
"""atheris harness for origins, hosts and CORS: :mod:`hardened_server.policy.origins`,
:mod:`~hardened_server.policy.hosts` and :mod:`~hardened_server.policy.cors`.

The input is one header value (UTF-8; bytes that are not UTF-8 become lone surrogates), used as
an ``Origin``, a ``Host``, a ``Referer`` and a preflight header list at once, so seed files and
dictionary tokens are plain text.

Invariants (an AssertionError is a finding, exit code 77 under atheris):

* normalisation is idempotent (``f(f(x)) == f(x)``) for origins, host names and Host values,
  and its output is lower-case ASCII with no userinfo, backslash, path or default port;
* an origin is allowed iff its normalised form equals a listed normalised origin, computed here
  independently of the allow-list object (no prefix or suffix match: JS-10 / CVE-2026-40110);
* ``Access-Control-Allow-Origin`` appears only for an allowed origin and carries the listed
  canonical string; ``Vary: Origin`` is always there; credentials never go to ``null``; no
  response header carries bytes of the request that are not on the allow-list (nothing
  reflected, even from ``Access-Control-Request-Headers``);
* an allowed Host is loopback or on the Host allow-list (DNS rebinding);
* ``referer_origin`` yields a normalised, non-null origin.

Run: ``./fuzz/fuzz_origins.py -dict=fuzz/dicts/origins.dict -max_total_time=60 SCRATCH
fuzz/corpus/origins``. Replayed without atheris by
``tests/policy/test_gate_properties.py::test_fuzz_corpus_replay``.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as ./fuzz/fuzz_origins.py from a checkout
    sys.path.insert(0, str(_REPO))

if __name__ == "__main__":
    import atheris

    with atheris.instrument_imports(include=["hardened_server"]):
        from hardened_server.policy import cors, hosts, origins
else:  # imported by the test suite: no atheris needed
    from hardened_server.policy import cors, hosts, origins

LISTED = (
    "https://trusted.example.com",
    "http://localhost:8888",
    "http://[::1]:8888",
    "https://xn--bcher-kva.example",
    "null",
)
# The canonical forms, written out by hand rather than computed by the code under test.
CANONICAL = frozenset(
    {
        "https://trusted.example.com",
        "http://localhost:8888",
        "http://[::1]:8888",
        "https://xn--bcher-kva.example",
        "null",
    }
)
ALLOW = cors.compile_cors(LISTED, allow_credentials=True, expose_headers=("x-total",))
PUBLIC_HOSTS = ("jupyter.example.org", "10.1.2.3")
HOST_ALLOWED = hosts.compile_host_allowlist(PUBLIC_HOSTS)
CONFIGURED_VALUES = frozenset(
    {"Origin", "true", ALLOW.methods_value, ALLOW.headers_value, ALLOW.max_age_value, "x-total"}
)


def _canonical_shape(origin: str) -> None:
    assert origin.isascii(), origin
    assert origin == origin.lower(), origin
    scheme, sep, rest = origin.partition("://")
    assert sep, origin
    assert scheme in ("http", "https"), origin
    assert not any(c in rest for c in "@\\/?#% "), origin
    assert not rest.endswith(":443" if scheme == "https" else ":80"), origin


def check_origin_value(text: str) -> None:
    norm = origins.normalize_origin(text)
    if norm is not None:
        assert origins.normalize_origin(norm) == norm, (text, norm)
        if norm != "null":
            _canonical_shape(norm)

    decision = cors.is_allowed_origin(text, ALLOW)
    assert decision.allowed == (norm is not None and norm in CANONICAL), (text, decision)

    for method, request_method in (("GET", None), ("OPTIONS", "PUT"), ("OPTIONS", "patch")):
        headers = cors.cors_headers(
            ALLOW, origin=text, method=method, request_method=request_method, request_headers=text
        )
        assert ("Vary", "Origin") in headers, headers
        acao = [v for k, v in headers if k == "Access-Control-Allow-Origin"]
        if not decision.allowed:
            assert headers == (("Vary", "Origin"),), (text, headers)
            continue
        assert acao in ([], [norm]), (text, headers)
        if norm == "null":
            assert ("Access-Control-Allow-Credentials", "true") not in headers, headers
        for _, value in headers:
            assert value == norm or value in CONFIGURED_VALUES, (text, value)


def _reference_loopback(host: str) -> bool:
    if host == "[::1]":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host_value(text: str) -> None:
    name = origins.normalize_hostname(text)
    if name is not None:
        assert origins.normalize_hostname(name) == name, (text, name)
        assert name.isascii(), name
        assert name == name.lower(), name
        assert not name.endswith("."), name

    split = hosts.split_host_header(text)
    if split is not None:
        host, port = split
        rejoined = host if port is None else f"{host}:{port}"
        assert hosts.split_host_header(rejoined) == split, (text, split)
        assert text.isascii(), text

    decision = hosts.is_allowed_host(text, HOST_ALLOWED)
    if decision.allowed:
        assert split is not None, text
        assert split[0] in HOST_ALLOWED or _reference_loopback(split[0]), (text, split)


def check_referer_value(text: str) -> None:
    ref = origins.referer_origin(text)
    if ref is not None:
        assert ref != "null", text
        assert origins.normalize_origin(ref) == ref, (text, ref)
        _canonical_shape(ref)


def TestOneInput(data: bytes) -> None:  # the name atheris and OSS-Fuzz expect
    text = data.decode("utf-8", "surrogateescape")
    check_origin_value(text)
    check_host_value(text)
    check_referer_value(text)


def main() -> None:
    atheris.enabled_hooks.add("str")
    atheris.enabled_hooks.add("RegEx")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
