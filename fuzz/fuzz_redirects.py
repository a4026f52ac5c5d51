#!/usr/bin/env python3
"""atheris harness for :mod:`hardened_server.policy.redirects`: the open-redirect gate.

The input is the redirect target itself (UTF-8; bytes that are not UTF-8 become lone
surrogates, which the validator must refuse), so seed files and dictionary tokens are plain
text. Every input is checked against each base URL in :data:`BASE_URLS`.

The oracle is :func:`browser_resolve`, a small re-implementation of the parts of the WHATWG URL
parser that decide where a relative ``Location`` takes a browser (preprocessing, scheme state,
the special relative / authority / ignore-slashes states, host and port parsing, path
dot-segments). It is written from the specification, independently of the code under test, and
the test suite checks it against known browser results (and against Node's WHATWG ``URL`` where
``node`` is installed).

Invariants (an AssertionError is a finding, exit code 77 under atheris):

* ``safe_redirect`` never raises and returns either ``default`` or an accepted target;
* resolved by a browser against ``http://127.0.0.1:8888<base_url>``, the result stays in that
  origin, its path starts with ``base_url`` and contains no empty segment (``//``, the seed of
  a second-stage open redirect, JS-1);
* the result is printable ASCII without spaces (safe to put in a ``Location`` header);
* the validator is idempotent on what it accepts and agrees with ``redirect_decision``.

Run: ``./fuzz/fuzz_redirects.py -dict=fuzz/dicts/origins.dict -max_total_time=60 SCRATCH
fuzz/corpus/redirects``. Replayed without atheris by
``tests/policy/test_gate_properties.py::test_fuzz_corpus_replay``.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as ./fuzz/fuzz_redirects.py from a checkout
    sys.path.insert(0, str(_REPO))

if __name__ == "__main__":
    import atheris

    with atheris.instrument_imports(include=["hardened_server"]):
        from hardened_server.policy.redirects import redirect_decision, safe_redirect
else:  # imported by the test suite: no atheris needed
    from hardened_server.policy.redirects import redirect_decision, safe_redirect

SERVER_ORIGIN = "http://127.0.0.1:8888"
BASE_URLS = ("/", "/jp/", "/user/alice/", "/a%40b/")
_SENTINEL = "/\x00refused"  # never a valid result, so a refusal is unambiguous

# --------------------------------------------------------------------------------------------
# A WHATWG-style resolver (https://url.spec.whatwg.org/#concept-basic-url-parser), the subset
# that decides origin and path of a reference resolved against an http base URL.

_C0_OR_SPACE = "".join(chr(i) for i in range(0x21))
_SPECIAL = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "file": None}
_FORBIDDEN_HOST = set("\x00\t\n\r #/:<>?@[\\]^|%")
_SINGLE_DOT = {".", "%2e"}
_DOUBLE_DOT = {"..", ".%2e", "%2e.", "%2e%2e"}


class Resolved(NamedTuple):
    origin: str  # "scheme://host[:port]", "opaque" or "failure" (no navigation at all)
    path: str


_FAILURE = Resolved("failure", "")


def _encode_path_char(c: str) -> str:
    if 0x20 < ord(c) < 0x7F and c not in '"#<>?`{}':
        return c
    return "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))


def _parse_host(raw: str) -> str | None:
    """Host parser for special URLs; ``None`` is failure (the browser refuses the URL)."""
    if raw.startswith("["):
        if not raw.endswith("]"):
            return None
        try:
            return f"[{ipaddress.IPv6Address(raw[1:-1]).compressed}]"
        except ValueError:
            return None
    try:
        host = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeError:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = host.lower()
    if not host or any(c in _FORBIDDEN_HOST or ord(c) < 0x20 or c == "\x7f" for c in host):
        return None
    labels = host.rstrip(".").split(".") if host != "." else [host]
    last = labels[-1]
    if last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])):
        return _parse_ipv4(host)
    return host


def _parse_ipv4(host: str) -> str | None:
    parts = host.split(".")
    if parts[-1] == "":
        parts.pop()
    if not 0 < len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        base = 10
        if part[:2] in ("0x", "0X"):
            part, base = part[2:], 16
        elif len(part) > 1 and part.startswith("0"):
            part, base = part[1:], 8
        try:
            numbers.append(int(part, base) if part else 0)
        except ValueError:
            return None
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n * 256 ** (3 - i)
    return str(ipaddress.IPv4Address(value))


def _authority(rest: str, scheme: str) -> Resolved:
    """Authority state onwards: ``rest`` starts right after the ignored slashes."""
    end = len(rest)
    for i, c in enumerate(rest):
        if c in "/?#" or (c == "\\" and scheme in _SPECIAL):
            end = i
            break
    authority = rest[:end]
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    if authority.startswith("["):
        close = authority.find("]")
        host_raw, port_raw = (
            (authority[: close + 1], authority[close + 1 :]) if close >= 0 else (authority, "")
        )
        if port_raw and not port_raw.startswith(":"):
            return _FAILURE
        port_raw = port_raw[1:]
    else:
        host_raw, _, port_raw = authority.partition(":")
    host = _parse_host(host_raw)
    if host is None:
        return _FAILURE
    if port_raw and not (port_raw.isascii() and port_raw.isdigit()):
        return _FAILURE
    port = int(port_raw) if port_raw else None
    if port is not None and port > 65535:
        return _FAILURE
    if scheme == "file":
        return Resolved("opaque", "")
    after = rest[end:]
    segments = _path(after[1:], []) if after[:1] in ("/", "\\") else [""]
    path = "/" + "/".join(segments)
    if port is None or port == _SPECIAL.get(scheme):
        return Resolved(f"{scheme}://{host}", path)
    return Resolved(f"{scheme}://{host}:{port}", path)


def _path(rest: str, segments: list[str]) -> list[str]:
    """Path state: ``rest`` is what follows the path's leading slash (or a relative path)."""
    buffer = ""
    i = 0
    while True:
        c = rest[i] if i < len(rest) else ""
        if c in ("", "/", "\\", "?", "#"):
            lowered = buffer.lower()
            if lowered in _DOUBLE_DOT:
                if segments:
                    segments.pop()
                if c not in ("/", "\\"):
                    segments.append("")
            elif lowered in _SINGLE_DOT:
                if c not in ("/", "\\"):
                    segments.append("")
            else:
                segments.append(buffer)
            buffer = ""
            if c in ("", "?", "#"):
                return segments
        else:
            buffer += _encode_path_char(c)
        i += 1


def browser_resolve(reference: str, base_url: str) -> Resolved:
    """Where a browser goes for ``Location: reference`` on a page at SERVER_ORIGIN+base_url."""
    s = reference.strip(_C0_OR_SPACE)
    s = s.replace("\t", "").replace("\n", "").replace("\r", "")
    base_segments = base_url[1:].split("/")

    # scheme state
    scheme = ""
    if s[:1].isascii() and s[:1].isalpha():
        i = 0
        while i < len(s) and s[i].isascii() and (s[i].isalnum() or s[i] in "+-."):
            i += 1
        if i < len(s) and s[i] == ":":
            scheme, s = s[:i].lower(), s[i + 1 :]
    if scheme and scheme != "http":
        if scheme not in _SPECIAL:
            return Resolved("opaque", "")
        # special authority slashes, then special authority ignore slashes state
        return _authority(s.lstrip("/\\"), scheme)
    if scheme == "http" and s.startswith("//"):
        # special relative or authority state: only "//" (two forward slashes) goes here
        return _authority(s.lstrip("/\\"), "http")
    # relative state (no scheme, or "http:" + something else)
    if s[:1] in ("/", "\\"):
        if s[1:2] in ("/", "\\"):  # relative slash state -> special authority ignore slashes
            return _authority(s.lstrip("/\\"), "http")
        segments = _path(s[1:], [])
    elif s == "" or s[:1] in ("?", "#"):
        segments = list(base_segments)
    else:
        segments = _path(s, base_segments[:-1])
    return Resolved(SERVER_ORIGIN, "/" + "/".join(segments))


# --------------------------------------------------------------------------------------------


def check_target(target: str, base_url: str) -> None:
    """Assert every invariant for one target and one base URL."""
    default = base_url
    result = safe_redirect(target, base_url=base_url, default=default)
    refused = safe_redirect(target, base_url=base_url, default=_SENTINEL) == _SENTINEL
    decision = redirect_decision(target, base_url=base_url)
    assert decision.allowed == (not refused), (target, decision)
    assert decision.rule_id.startswith("HS-REDIRECT-"), decision
    if refused:
        assert result == default, (target, result)
        return
    assert result.isascii(), (target, result)
    assert result.isprintable(), (target, result)
    assert " " not in result, (target, result)
    where = browser_resolve(result, base_url)
    assert where.origin == SERVER_ORIGIN, (target, result, where)
    assert where.path.startswith(base_url), (target, result, where)
    assert "//" not in where.path, (target, result, where)
    again = safe_redirect(result, base_url=base_url, default=_SENTINEL)
    assert again == result, (target, result, again)


def TestOneInput(data: bytes) -> None:  # the name atheris and OSS-Fuzz expect
    text = data.decode("utf-8", "surrogateescape")
    for base_url in BASE_URLS:
        check_target(text, base_url)


def main() -> None:
    atheris.enabled_hooks.add("str")
    atheris.enabled_hooks.add("RegEx")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
