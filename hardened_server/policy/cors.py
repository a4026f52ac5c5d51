"""The CORS allow-list and the CORS response headers, compiled once, decided per request.

What stock jupyter_server got wrong, and what each rule here stops:

- JS-10 / CVE-2026-40110: ``allow_origin_pat`` was applied with ``re.match``, a prefix match, so
  ``https://trusted.example.com.evil.com`` passed a pattern written for
  ``https://trusted.example.com`` and got ``Access-Control-Allow-Origin`` (with credentials: the
  attacker reads cookie-authenticated API responses). Here listed origins are compared on their
  normalised forms with ``==``, and the optional patterns are applied with ``re.fullmatch`` to
  the *normalised* origin only, after being validated when the policy loads.
- Token-authenticated requests got ``Access-Control-Allow-Origin: <whatever Origin was sent>``
  (proxy_multiuser §2.3). Here nothing is ever reflected for an origin that is not listed; for a
  listed one the canonical string from the allow-list is sent, never the request's bytes.
- ``Origin: null`` is sent by every sandboxed iframe, ``data:`` and ``file:`` page on the
  internet. It is allowed only if listed, and never with credentials: ``null`` plus
  ``Access-Control-Allow-Credentials`` would equal ``*`` with credentials.
- ``Vary: Origin`` is on every response that went through CORS, allowed or not, so that no cache
  serves one origin's answer to another.
- Chrome's Private Network Access preflight (``Access-Control-Request-Private-Network``) is never
  answered with ``Access-Control-Allow-Private-Network``: a public site may not reach a
  notebook server on a private address through CORS.

Starlette style: :func:`compile_cors` parses and validates everything; the request-time
functions are a length check, one normalisation and set look-ups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hardened_server.policy.decisions import Decision, Rule, allow, deny
from hardened_server.policy.origins import MAX_ORIGIN_LENGTH, normalize_origin

#: Methods a listed origin may use unless the policy says otherwise.
DEFAULT_ALLOW_METHODS: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: Request headers a listed origin may send (lower-case) unless the policy says otherwise:
#: what a Jupyter API client needs (token auth, JSON bodies, the XSRF header).
DEFAULT_ALLOW_HEADERS: tuple[str, ...] = ("authorization", "content-type", "x-xsrftoken")
#: CORS-safelisted request headers (Fetch §2.2.2); a preflight may list them without our consent.
#: ``content-type`` is not among them: a browser only lists it in a preflight for a
#: non-safelisted value such as ``application/json``, which must be allowed explicitly.
SAFELISTED_HEADERS: frozenset[str] = frozenset({"accept", "accept-language", "content-language"})
DEFAULT_MAX_AGE = 600

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token
_PATTERN_PREFIXES = ("https://", "http://", "https?://")
# Origins no sane pattern may match: a pattern that does is too broad (".*", "https?://.+").
_CANARY_ORIGINS = (
    "null",
    "http://hardened-server-canary.invalid",
    "https://hardened-server-canary.invalid",
    "https://hardened-server-canary.invalid:8443",
)
_MAX_PATTERN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class CorsAllowList:
    """A compiled CORS policy. Build it with :func:`compile_cors`, never by hand."""

    origins: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]
    allow_credentials: bool
    allow_methods: frozenset[str]
    allow_headers: frozenset[str]
    preflight_headers: frozenset[str]  # allow_headers plus the CORS-safelisted ones
    # Header values, joined once at compile time.
    methods_value: str
    headers_value: str
    expose_value: str
    max_age_value: str


def _tokens(values: Iterable[str], what: str, *, upper: bool) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not _TOKEN.match(value):
            raise ValueError(f"not an HTTP token in cors {what}: {value!r}")
        value = value.upper() if upper else value.lower()
        if value not in out:
            out.append(value)
    return tuple(out)


def _compile_pattern(source: str) -> re.Pattern[str]:
    """Validate one origin pattern: anchored scheme, compiles, does not match the canaries."""
    if not isinstance(source, str) or not source or len(source) > _MAX_PATTERN_LENGTH:
        raise ValueError(f"origin pattern must be 1-{_MAX_PATTERN_LENGTH} characters")
    if not source.startswith(_PATTERN_PREFIXES):
        raise ValueError(
            f"origin pattern must start with a literal scheme (https:// or http://): {source!r}"
        )
    try:
        pattern = re.compile(source)
    except (re.error, OverflowError, RecursionError) as exc:  # OverflowError: "a{4294967296}"
        raise ValueError(f"origin pattern {source!r} does not compile: {exc}") from None
    for canary in _CANARY_ORIGINS:
        if pattern.fullmatch(canary):
            raise ValueError(f"origin pattern {source!r} is too broad: it matches {canary!r}")
    return pattern


def compile_cors(
    allow_origins: Iterable[str],
    *,
    allow_origin_patterns: Iterable[str] = (),
    allow_credentials: bool = False,
    allow_methods: Iterable[str] = DEFAULT_ALLOW_METHODS,
    allow_headers: Iterable[str] = DEFAULT_ALLOW_HEADERS,
    expose_headers: Iterable[str] = (),
    max_age: int = DEFAULT_MAX_AGE,
) -> CorsAllowList:
    """Validate and compile the CORS policy once, when the policy loads.

    ``allow_origins`` are exact origins (normalised here; ``*`` is refused: a wildcard is how
    stock deployments turn every check off). ``allow_origin_patterns`` are regular expressions
    matched in full against the normalised origin; each must start with a literal scheme and
    must not match a canary origin. Raises ``ValueError`` naming the bad item.
    """
    origins: set[str] = set()
    for item in allow_origins:
        if not isinstance(item, str) or "*" in item:
            raise ValueError(f"wildcards are never allowed in cors.allow_origins: {item!r}")
        norm = normalize_origin(item)
        if norm is None:
            raise ValueError(f"not an origin (scheme://host[:port], http or https): {item!r}")
        origins.add(norm)
    patterns = tuple(_compile_pattern(p) for p in allow_origin_patterns)
    methods = _tokens(allow_methods, "allow_methods", upper=True)
    headers = _tokens(allow_headers, "allow_headers", upper=False)
    exposed = _tokens(expose_headers, "expose_headers", upper=False)
    if not isinstance(max_age, int) or isinstance(max_age, bool) or not 0 <= max_age <= 86400:
        raise ValueError("cors max_age must be an integer between 0 and 86400 seconds")
    return CorsAllowList(
        origins=frozenset(origins),
        patterns=patterns,
        allow_credentials=bool(allow_credentials),
        allow_methods=frozenset(methods),
        allow_headers=frozenset(headers),
        preflight_headers=frozenset(headers) | SAFELISTED_HEADERS,
        methods_value=", ".join(methods),
        headers_value=", ".join(headers),
        expose_value=", ".join(exposed),
        max_age_value=str(max_age),
    )


def _listed(origin: str | None, allowlist: CorsAllowList) -> str | None:
    """The canonical listed origin this request origin stands for, or ``None``."""
    if not origin or len(origin) > MAX_ORIGIN_LENGTH:
        return None
    norm = normalize_origin(origin)
    if norm is None:
        return None
    if norm in allowlist.origins:
        return norm
    if norm != "null" and any(p.fullmatch(norm) for p in allowlist.patterns):
        return norm
    return None


def is_allowed_origin(origin: str | None, allowlist: CorsAllowList) -> Decision:
    """Is this ``Origin`` header value on the CORS allow-list?

    True iff its normalised form equals a listed normalised origin (or, if the policy lists
    patterns, fully matches one). ``https://TRUSTED.example.com:443`` is
    ``https://trusted.example.com``; ``https://trusted.example.com.evil.com``,
    ``https://trusted.example.comevil.com`` (JS-10) and ``https://evil.com\\@trusted.example.com``
    (parser differential) are not.
    """
    if not origin:
        return deny(Rule.ORIGIN_ABSENT, "no Origin header")
    if _listed(origin, allowlist) is not None:
        return allow(Rule.CORS_LISTED, "origin is listed in cors.allow_origins")
    return deny(Rule.CORS_NOT_LISTED, "origin is not listed in cors.allow_origins")


def listed_origin_set(allowlist: CorsAllowList, origin: str | None) -> frozenset[str]:
    """The normalised listed origins, plus this request's own ``origin`` when a pattern lists
    it: the set :func:`hardened_server.policy.fetchmeta.cross_site_decision` looks origins up
    in (patterns cannot be looked up; the one origin a request carries can)."""
    if origin and allowlist.patterns:
        listed = _listed(origin, allowlist)
        if listed is not None:
            return allowlist.origins | {listed}
    return allowlist.origins


VARY_ORIGIN: tuple[str, str] = ("Vary", "Origin")
_Headers = tuple[tuple[str, str], ...]


def _split_header_list(value: str) -> list[str] | None:
    items = [item.strip().lower() for item in value.split(",")]
    items = [item for item in items if item]
    if any(not _TOKEN.match(item) for item in items):
        return None
    return items


def _evaluate(
    allowlist: CorsAllowList,
    origin: str | None,
    method: str,
    request_method: str | None,
    request_headers: str | None,
) -> tuple[Decision, _Headers]:
    listed = _listed(origin, allowlist)
    if listed is None:
        if not origin:
            return deny(Rule.ORIGIN_ABSENT, "no Origin header: not a CORS request"), (VARY_ORIGIN,)
        return deny(Rule.CORS_NOT_LISTED, "origin is not listed"), (VARY_ORIGIN,)
    credentials = allowlist.allow_credentials and listed != "null"
    common: list[tuple[str, str]] = [VARY_ORIGIN, ("Access-Control-Allow-Origin", listed)]
    if credentials:
        common.append(("Access-Control-Allow-Credentials", "true"))

    if method.upper() == "OPTIONS" and request_method is not None:  # a preflight
        # Access-Control-Request-Method is case-sensitive (Fetch): "patch" is not "PATCH".
        if request_method not in allowlist.allow_methods:
            return deny(Rule.CORS_NOT_LISTED, "preflight method not allowed"), (VARY_ORIGIN,)
        wanted = _split_header_list(request_headers or "")
        if wanted is None:
            return deny(Rule.CORS_NOT_LISTED, "malformed preflight header list"), (VARY_ORIGIN,)
        refused = [h for h in wanted if h not in allowlist.preflight_headers]
        if refused:
            return deny(Rule.CORS_NOT_LISTED, "preflight header not allowed"), (VARY_ORIGIN,)
        common.append(("Access-Control-Allow-Methods", allowlist.methods_value))
        if allowlist.headers_value:
            common.append(("Access-Control-Allow-Headers", allowlist.headers_value))
        common.append(("Access-Control-Max-Age", allowlist.max_age_value))
        return allow(Rule.CORS_LISTED, "preflight from a listed origin"), tuple(common)

    if method.upper() not in allowlist.allow_methods and method.upper() != "OPTIONS":
        return deny(Rule.CORS_NOT_LISTED, "method not allowed for CORS"), (VARY_ORIGIN,)
    if allowlist.expose_value:
        common.append(("Access-Control-Expose-Headers", allowlist.expose_value))
    return allow(Rule.CORS_LISTED, "request from a listed origin"), tuple(common)


def cors_headers(
    allowlist: CorsAllowList,
    *,
    origin: str | None,
    method: str,
    request_method: str | None = None,
    request_headers: str | None = None,
) -> tuple[tuple[str, str], ...]:
    """The CORS response headers for one request, as ``(name, value)`` pairs.

    ``request_method`` and ``request_headers`` are the preflight's
    ``Access-Control-Request-Method`` and ``Access-Control-Request-Headers``; a request is a
    preflight when ``method`` is OPTIONS and ``request_method`` is given. Always contains
    ``Vary: Origin``; contains ``Access-Control-*`` headers only for a listed origin and an
    allowed method/header set; ``Access-Control-Allow-Credentials`` only when the policy allows
    credentials and the origin is not ``null``. Preflight answers name the configured methods
    and headers, never the ones the request asked for.
    """
    return _evaluate(allowlist, origin, method, request_method, request_headers)[1]


def cors_decision(
    allowlist: CorsAllowList,
    *,
    origin: str | None,
    method: str,
    request_method: str | None = None,
    request_headers: str | None = None,
) -> Decision:
    """The decision behind :func:`cors_headers` (for the audit trail and ``policy explain``)."""
    return _evaluate(allowlist, origin, method, request_method, request_headers)[0]
