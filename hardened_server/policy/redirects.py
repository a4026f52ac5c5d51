"""The one redirect validator: ``next=`` and every other server-side redirect target.

Open redirect is the most frequent bug class in Jupyter's history, and every variant was chained
into token theft (research §3.7). Each was a gap between what the check parsed and what the
browser parsed:

- JS-1 / CVE-2020-26232: ``//evil.example/`` (protocol-relative) from the trailing-slash handler;
- JS-2 / CVE-2020-26275: ``/\\evil.example`` and ``\\\\evil`` (browsers read ``\\`` as ``/`` in
  http(s) URLs) and ``//evil.example``;
- JS-6 / CVE-2023-39968: ``https:///evil.example``, ``https:/evil``, ``https:evil`` (``urlparse``
  finds no netloc, the browser finds the host ``evil``);
- JS-12 (CVE-2025-61669, mapping unverified): ``///evil.example``;
- JupyterHub CVE-2026-33709: ``/hub/../..//evil`` and ``%2F%2E%2E%2F%2Fevil`` (dot segments
  and encodings that resolve to ``//evil`` after the check);
- WHATWG preprocessing: browsers strip leading/trailing C0 controls and spaces and delete every
  tab, CR and LF *before* parsing, so ``\\t//evil`` or ``/\\n/evil`` is ``//evil`` to them.

So this module does not try to parse URLs the way a browser might. It accepts one narrow shape,
an absolute path under ``base_url``, and re-serialises it:

- HS-REDIRECT-002: not a path (a scheme, ``//`` authority, a relative reference, empty);
- HS-REDIRECT-003: C0 controls, DEL, tab/CR/LF anywhere, leading or trailing space, any
  backslash, unencodable text, or longer than :data:`MAX_TARGET_LENGTH`;
- HS-REDIRECT-004: percent-encoded path syntax in the path (``%2F``, ``%5C``, ``%3F``, ``%23``)
  or double-encoded syntax (``%252e``…), which a later decoding step would turn into structure;
- HS-REDIRECT-005: after resolving dot segments exactly as a browser does (``..``, ``.%2e``,
  ``%2E%2E`` …) the path is outside ``base_url`` or contains an empty segment (``//``);
- HS-REDIRECT-001: allowed; the result is the *resolved* path (no dot segments, unsafe
  characters percent-encoded) plus the original query and fragment, so what was checked is
  exactly what is sent in ``Location``.

Any refusal yields the caller's ``default``. The property tests resolve every result against
``http://127.0.0.1:8888<base_url>`` with a WHATWG-style resolver and assert it stays in that
origin under ``base_url``.
"""

from __future__ import annotations

import re
import urllib.parse

from hardened_server.policy.decisions import Decision, allow, deny
from hardened_server.policy.rules import Rule

MAX_TARGET_LENGTH = 4096

# C0 controls (tab, CR, LF included), DEL, backslash: never in a target we accept.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")
# Encoded "/", "\", "?", "#" in a path, or any double-encoded "%", ".", "/", "\", "?", "#".
_ENCODED_SYNTAX = re.compile(r"%(?:2f|5c|3f|23)|%25(?:2e|2f|5c|3f|23|25)", re.IGNORECASE)
# WHATWG single- and double-dot path segments ("%2e" counts as ".", any case).
_SINGLE_DOT = frozenset({".", "%2e"})
_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})
_HEX = frozenset("0123456789abcdefABCDEF")
# RFC 3986 pchar without "%" (handled separately); "/", "?" and "#" added for query/fragment.
_PCHAR = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"
)
_QCHAR = _PCHAR | frozenset("/?#")


def _encode(text: str, allowed: frozenset[str]) -> str:
    """Percent-encode what is not ``allowed``; keep valid ``%XX`` escapes as they are."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in allowed:
            out.append(ch)
        elif ch == "%" and text[i + 1 : i + 2] in _HEX and text[i + 2 : i + 3] in _HEX:
            out.append(text[i : i + 3])
            i += 3
            continue
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        i += 1
    return "".join(out)


def _resolve_dots(path: str) -> list[str]:
    """WHATWG path-state dot-segment handling for an absolute path; returns the segments."""
    segments = path[1:].split("/")
    out: list[str] = []
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        lowered = segment.lower()
        if lowered in _DOUBLE_DOT:
            if out:
                out.pop()
            if i == last:
                out.append("")
        elif lowered in _SINGLE_DOT:
            if i == last:
                out.append("")
        else:
            out.append(segment)
    return out or [""]


def _normalize_base(base_url: str) -> str:
    """``jp``, ``/jp`` and ``/jp/`` all mean ``/jp/``; an empty base is ``/``."""
    inner = base_url.strip("/")
    return f"/{inner}/" if inner else "/"


def _validate(target: object, base_url: str) -> tuple[Decision, str | None]:
    if not isinstance(target, str) or not target:
        return deny(Rule.REDIRECT_NOT_A_PATH, "empty or not text"), None
    if len(target) > MAX_TARGET_LENGTH:
        return deny(Rule.REDIRECT_UNSAFE_CHARS, "target too long"), None
    if _UNSAFE.search(target) or target != target.strip(" "):
        return deny(Rule.REDIRECT_UNSAFE_CHARS, "control character, space or backslash"), None
    if not target.startswith("/") or target.startswith("//"):
        return deny(Rule.REDIRECT_NOT_A_PATH, "not an absolute path on this origin"), None
    try:
        target.encode("utf-8")
    except UnicodeEncodeError:
        return deny(Rule.REDIRECT_UNSAFE_CHARS, "not encodable as UTF-8"), None

    cut = min((i for i in (target.find("?"), target.find("#")) if i >= 0), default=len(target))
    path, tail = target[:cut], target[cut:]
    # Query and fragment cannot move the origin or the path; only the path is checked.
    if _ENCODED_SYNTAX.search(path):
        return deny(Rule.REDIRECT_ENCODED_SYNTAX, "encoded or double-encoded path syntax"), None

    segments = _resolve_dots(path)
    if "" in segments[:-1]:
        return deny(Rule.REDIRECT_OUTSIDE_BASE, "empty path segment ('//') after resolution"), None
    resolved = "/" + "/".join(_encode(s, _PCHAR) for s in segments)
    base = _normalize_base(base_url)
    if not resolved.startswith(base):
        reason = "outside base_url after resolving dot segments"
        return deny(Rule.REDIRECT_OUTSIDE_BASE, reason), None
    if tail:
        tail = tail[0] + _encode(tail[1:], _QCHAR)
    return allow(Rule.REDIRECT_ALLOWED, "same-origin path under base_url"), resolved + tail


def redirect_decision(target: str, *, base_url: str) -> Decision:
    """Why :func:`safe_redirect` accepts or refuses ``target`` (audit trail, ``policy explain``)."""
    return _validate(target, base_url)[0]


def safe_redirect(target: str, *, base_url: str, default: str) -> str:
    """``target`` as a same-origin path under ``base_url``, or ``default``.

    ``target`` is the *decoded* value of the parameter (what ``get_argument("next")`` returns).
    ``base_url`` is the server's base URL (``/`` or ``/user/alice/``); ``default`` is returned
    unchanged on any refusal and should itself be a path under ``base_url``. See the module
    docstring for the rules and the advisories they stop.
    """
    result = _validate(target, base_url)[1]
    return default if result is None else result


#: The query parameter that carries a Jupyter token in a URL.
TOKEN_PARAM = "token"  # noqa: S105 - a parameter name, not a secret
#: How deep nested targets (``next=/login?next=/lab%3Ftoken%3D...``) are followed.
_MAX_NESTING = 4


def strip_token_params(target: str, _depth: int = 0) -> str:
    """``target`` with every ``token=`` query parameter removed, also from inside parameter
    values that are themselves URLs (``next=/lab%3Ftoken%3D...``): a ``Location`` never
    carries a token (issue #18: a refused URL token was copied into
    ``Location: /login?next=...token=...``, so it went on into the login page's URL, the
    history and the next Referer). Unchanged, byte for byte, when there is no token in it."""
    if TOKEN_PARAM not in target.lower() or _depth > _MAX_NESTING:
        return target
    hash_at = target.find("#")
    head, fragment = (target, "") if hash_at < 0 else (target[:hash_at], target[hash_at:])
    query_at = head.find("?")
    if query_at < 0:
        return target
    path, query = head[:query_at], head[query_at + 1 :]
    kept = []
    changed = False
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name.lower() == TOKEN_PARAM:
            changed = True
            continue
        inner = strip_token_params(value, _depth + 1)
        changed = changed or inner != value
        kept.append((name, inner))
    if not changed:
        return target
    rebuilt = urllib.parse.urlencode(kept, quote_via=urllib.parse.quote, safe="/")
    return path + ("?" + rebuilt if rebuilt else "") + fragment

