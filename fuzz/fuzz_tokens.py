#!/usr/bin/env python3
"""atheris harness for token and cookie parsing: the ``Authorization`` header
(:func:`hardened_server.policy.tokens.parse_authorization` through
``HardenedIdentityProvider.get_token``/``get_user_token``), the ``?token=`` navigation rule, the
signed login cookie as tornado parses and verifies it, the session-bound XSRF token
(:mod:`hardened_server.enforcement.gate`) and the token-strength estimate.

The input is one header value (UTF-8; bytes that are not UTF-8 become lone surrogates; as
latin-1, the way tornado decodes header lines, for the ``Cookie`` header), used as an
``Authorization`` value, a ``Cookie`` header, an ``X-XSRFToken`` value, a ``?token=`` value
and a configured token at once, so seed files and dictionary tokens are plain text. The last
byte picks the request shape for the URL-token rule (method, route class, ``Sec-Fetch-Dest``).

Invariants (an AssertionError is a finding, exit code 77 under atheris):

* a token taken from the header is the *whole* credential: the value is exactly
  ``token|bearer`` (any case), spaces or tabs, the token, optional spaces or tabs; the token has
  no control character and no surrounding blank (never a truncated or different token);
* ``get_user_token`` authenticates iff the credential equals the configured token or a live
  stored token (``hst_<id>_<secret>``, never an expired one, never from the URL), and a stored
  token's user carries that token's scopes; ``parse_token_id`` accepts the documented format as
  a whole value only;
* a URL token is read only on a GET/HEAD of a page route whose ``Sec-Fetch-Dest`` is absent or
  ``document``, and never when an Authorization header matched;
* ``parse_cookie`` never raises; our signed cookie decodes only to a value the harness itself
  signed under that cookie name (no forgery, no cross-name replay of the ``_xsrf`` cookie or of
  another server's cookie), and appending any text after our cookie leaves it readable unless
  that text sets the same name again;
* ``decode_xsrf`` never raises; ``xsrf_decision`` allows iff the decoded token equals the
  session's, and any raw token survives ``encode_xsrf``/``decode_xsrf``;
* the entropy estimate is deterministic, within ``[0, length * log2(94)]``, and 0 for anything
  that is not printable ASCII without surrounding blanks.

Run: ``./fuzz/fuzz_tokens.py -dict=fuzz/dicts/tokens.dict -max_total_time=60 SCRATCH
fuzz/corpus/tokens``. Replayed without atheris by ``tests/verification/test_fuzz_corpus.py``.
"""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as ./fuzz/fuzz_tokens.py from a checkout
    sys.path.insert(0, str(_REPO))

if __name__ == "__main__":
    import atheris

    with atheris.instrument_imports(include=["hardened_server", "tornado.httputil"]):
        from tornado.httputil import parse_cookie
        from tornado.web import create_signed_value, decode_signed_value

        from hardened_server.enforcement import gate
        from hardened_server.enforcement.identity.provider import HardenedIdentityProvider
        from hardened_server.enforcement.identity.tokenstore import (
            FORMAT_VERSION,
            TokenStore,
            hash_token,
            parse_token_id,
        )
        from hardened_server.policy.decisions import RouteClass
        from hardened_server.policy.tokens import estimate_entropy_bits, parse_authorization
else:  # imported by the test suite: no atheris needed
    from tornado.httputil import parse_cookie
    from tornado.web import create_signed_value, decode_signed_value

    from hardened_server.enforcement import gate
    from hardened_server.enforcement.identity.provider import HardenedIdentityProvider
    from hardened_server.enforcement.identity.tokenstore import (
        FORMAT_VERSION,
        TokenStore,
        hash_token,
        parse_token_id,
    )
    from hardened_server.policy.decisions import RouteClass
    from hardened_server.policy.tokens import estimate_entropy_bits, parse_authorization

TOKEN = "8f3c0e1d6b2a4f5e9c7d1b3a5e7f9c2d4b6a8e0f1c3d5b7a"  # the configured server token
SECRET = b"hardened-server fuzz cookie secret, not a real one!"
OTHER_SECRET = b"another server's cookie secret, also not a real one"
COOKIE = "username-127-0-0-1-8888"
XSRF_COOKIE = "_xsrf"
USER = (
    '{"username": "a1b2", "name": "Anonymous Io", "display_name": "Anonymous Io", '
    '"initials": "AI", "avatar_url": null, "color": null}'
)
MINTED_AT = 1_700_000_000  # a fixed clock: the same bytes on every run (the seeds hold them)
# Signed values minted once: (name they were signed for, secret, value); the seeds hold them.
MINTED: dict[str, tuple[str, bytes]] = {}
for _name, _secret, _value in (
    (COOKIE, SECRET, USER),
    (XSRF_COOKIE, SECRET, "2|00000000|" + "ab" * 32 + "|1700000000"),
    (COOKIE, OTHER_SECRET, USER),
    ("username-127-0-0-1-9999", SECRET, USER),
):
    _signed = create_signed_value(
        _secret, _name, _value, version=2, clock=lambda: MINTED_AT
    ).decode("ascii")
    MINTED[_signed] = (_name, _secret)
OURS = {v for v, (n, s) in MINTED.items() if n == COOKIE and s == SECRET}
OUR_COOKIE = next(iter(OURS))

EXPECTED_XSRF = gate.bound_xsrf_raw(SECRET, "user:a1b2")

# A token store (hst_<id>_<secret>) with fixed entries: one live, one expired; the seeds hold
# their secrets. The clock is fixed, so expiry is deterministic.
NOW = 1_800_000_000.0
LIVE = "hst_0123456789ab_" + "A" * 20 + "-_" + "z" * 21
EXPIRED = "hst_ba9876543210_" + "Q" * 43
STORED = {
    LIVE: ("0123456789ab", ("contents:read",), None),
    EXPIRED: ("ba9876543210", ("admin",), NOW - 1),
}
_STORE_DIR = tempfile.mkdtemp(prefix="fuzz-tokens-")
_STORE_FILE = Path(_STORE_DIR) / "tokens.json"
_STORE_FILE.write_text(
    json.dumps(
        {
            "version": FORMAT_VERSION,
            "tokens": [
                {
                    "id": token_id,
                    "name": f"fuzz {token_id}",
                    "scopes": list(scopes),
                    "created": NOW - 100,
                    "expires": expires,
                    "last_used": NOW,  # no last-use write-back in the loop
                    "sha256": hash_token(secret),
                }
                for secret, (token_id, scopes, expires) in STORED.items()
            ],
        }
    )
)
PROVIDER = HardenedIdentityProvider(token=TOKEN)
PROVIDER._token_store = TokenStore(_STORE_FILE, clock=lambda: NOW)
_STORED_ID = re.compile(r"hst_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_CREDENTIALS = re.compile(r"(?:token|bearer)[ \t]+(.*?)[ \t]*", re.IGNORECASE | re.DOTALL)
_MAX_BITS_PER_CHAR = math.log2(94)

SHAPES = (  # (method, route class, Sec-Fetch-Dest)
    ("GET", RouteClass.PAGE, None),
    ("GET", RouteClass.PAGE, "document"),
    ("GET", RouteClass.PAGE, "iframe"),
    ("HEAD", RouteClass.PAGE, None),
    ("POST", RouteClass.PAGE, "document"),
    ("GET", RouteClass.API, None),
    ("GET", RouteClass.FILES, "document"),
    ("PUT", RouteClass.API, None),
)


class FakeRequest:
    def __init__(self, method: str, headers: dict[str, str], query: dict[str, list[bytes]]):
        self.method = method
        self.headers = headers
        self.query_arguments = query
        self.host = "127.0.0.1:8888"
        self.path = "/api/status"
        self.remote_ip = "127.0.0.1"


class FakeHandler:
    """What the identity provider reads off a handler, and nothing else."""

    log = SimpleNamespace(debug=lambda *a, **k: None)

    def __init__(self, request: FakeRequest, route_class: str) -> None:
        self.request = request
        self._hs_route = SimpleNamespace(route_class=route_class)

    def get_secure_cookie(self, name: str, **kwargs: Any) -> None:
        return None


def _run(coro: Any) -> Any:
    """Drive a coroutine that never really waits (no I/O in the fakes)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("get_user_token awaited something")


def check_authorization(text: str) -> None:
    parsed = parse_authorization(text)
    reference = _CREDENTIALS.fullmatch(text)
    if parsed is not None:
        assert reference is not None, (text, parsed)
        assert reference.group(1) == parsed, (text, parsed)
        assert parsed, text
        assert parsed == parsed.strip(" \t"), (text, parsed)
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in parsed), (text, parsed)
    elif reference is not None and reference.group(1):
        cred = reference.group(1)
        assert any(ord(c) < 0x20 or ord(c) == 0x7F for c in cred), (text, cred)

    handler = FakeHandler(FakeRequest("GET", {"Authorization": text}, {}), RouteClass.API)
    got = PROVIDER.get_token(handler)
    assert got == (parsed if parsed is not None else ""), (text, got)
    user = _run(PROVIDER.get_user_token(handler))
    assert (user is not None) == (parsed in (TOKEN, LIVE)), (text, parsed, user)
    if parsed == LIVE:
        assert user.hs_scopes == frozenset(STORED[LIVE][1]), user
    # the stored-token id parser agrees with the documented format, whole value only
    match = _STORED_ID.fullmatch(text)
    assert parse_token_id(text) == (match.group(1) if match else None), text


def check_url_token(text: str, data: bytes, shape: int) -> None:
    method, route_class, dest = SHAPES[shape % len(SHAPES)]
    headers = {} if dest is None else {"Sec-Fetch-Dest": dest}
    if shape & 8:
        headers["Authorization"] = f"token {text}"
    handler = FakeHandler(FakeRequest(method, headers, {"token": [b"x", data]}), route_class)
    got = PROVIDER.get_token(handler)
    header = parse_authorization(headers.get("Authorization"))
    if header is not None:
        assert got == header, (text, got)
        return
    navigation = method in ("GET", "HEAD") and route_class == RouteClass.PAGE
    if navigation and dest in (None, "document"):
        assert got == data.decode("utf-8", "replace"), (text, got)  # the last ?token= wins
    else:
        assert got == "", (method, route_class, dest, got)
    user = _run(PROVIDER.get_user_token(handler))
    if got.startswith("hst_"):
        assert user is None, (got, user)  # a stored token is accepted in the header only


def check_cookie(text: str) -> None:
    jar = parse_cookie(text)
    assert isinstance(jar, dict)
    for name in (COOKIE, XSRF_COOKIE):
        value = jar.get(name)
        if value is None:
            continue
        decoded = decode_signed_value(SECRET, name, value, max_age_days=10_000)
        if decoded is not None:
            assert MINTED.get(value) == (name, SECRET), (text, name, value)
    combined = parse_cookie(f"{COOKIE}={OUR_COOKIE}; {text}")
    if COOKIE not in jar:
        assert combined.get(COOKIE) == OUR_COOKIE, (text, combined.get(COOKIE))


def check_xsrf(text: str, data: bytes) -> None:
    raw = gate.decode_xsrf(text)
    assert raw is None or isinstance(raw, bytes)
    assert gate.decode_xsrf(data) == gate.decode_xsrf(data.decode("latin-1"))
    decision = gate.xsrf_decision(text, EXPECTED_XSRF)
    assert decision.allowed == (bool(text) and raw == EXPECTED_XSRF), (text, decision)
    chunk = data[:128]
    if chunk:
        assert gate.decode_xsrf(gate.encode_xsrf(chunk)) == chunk


def check_entropy(text: str) -> None:
    token = text[:256]
    bits = estimate_entropy_bits(token)
    assert bits == estimate_entropy_bits(token)
    assert 0.0 <= bits <= len(token) * _MAX_BITS_PER_CHAR + 1e-9, (token, bits)
    if not (token.isascii() and token.isprintable() and token == token.strip()):
        assert bits == 0.0, (token, bits)


def TestOneInput(data: bytes) -> None:  # the name atheris and OSS-Fuzz expect
    text = data.decode("utf-8", "surrogateescape")
    check_authorization(text)
    check_url_token(text, data, data[-1] if data else 0)
    check_cookie(data.decode("latin-1"))  # tornado decodes header lines as latin-1
    check_xsrf(text, data)
    check_entropy(text)


def main() -> None:
    import logging

    logging.getLogger("tornado.general").setLevel(logging.CRITICAL)  # "Invalid cookie signature"
    atheris.enabled_hooks.add("str")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
