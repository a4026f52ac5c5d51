"""Content-Security-Policy as data.

Stock Jupyter builds its CSP by string concatenation, so a user CSP plus the API's appended
``default-src 'none'`` yields a header with the same directive twice, and browsers ignore the
second one (CSP3 §2.2.1: "duplicate directives are ignored"). Here a policy is a mapping from
directive name to a tuple of source tokens; it is validated token by token when the policy file is
loaded and serialised once, in a canonical order, so the emitted header can never repeat a
directive or smuggle a second one through a ``;`` or a newline inside a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType


class CSP:
    """Typed constants for the keyword sources (Django's ``django.utils.csp.CSP`` style)."""

    NONE = "'none'"
    SELF = "'self'"
    UNSAFE_INLINE = "'unsafe-inline'"
    UNSAFE_EVAL = "'unsafe-eval'"
    WASM_UNSAFE_EVAL = "'wasm-unsafe-eval'"
    UNSAFE_HASHES = "'unsafe-hashes'"
    STRICT_DYNAMIC = "'strict-dynamic'"
    REPORT_SAMPLE = "'report-sample'"
    INLINE_SPECULATION_RULES = "'inline-speculation-rules'"


KEYWORDS = frozenset(v for k, v in vars(CSP).items() if k.isupper())

# Canonical emission order: the fallback first, then fetch directives, then document and
# navigation directives. Anything a browser knows and we accept is listed here; a policy file
# naming any other directive is rejected at load time.
DIRECTIVES: tuple[str, ...] = (
    "default-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "style-src",
    "style-src-elem",
    "style-src-attr",
    "img-src",
    "font-src",
    "connect-src",
    "media-src",
    "object-src",
    "frame-src",
    "child-src",
    "worker-src",
    "manifest-src",
    "base-uri",
    "form-action",
    "frame-ancestors",
    "sandbox",
    "upgrade-insecure-requests",
    "report-uri",
    "report-to",
)
_ORDER = {name: i for i, name in enumerate(DIRECTIVES)}

# Directives whose value is not a source list.
VALUELESS = frozenset({"upgrade-insecure-requests"})
SANDBOX_FLAGS = frozenset(
    {
        "allow-downloads",
        "allow-forms",
        "allow-modals",
        "allow-orientation-lock",
        "allow-pointer-lock",
        "allow-popups",
        "allow-popups-to-escape-sandbox",
        "allow-presentation",
        "allow-same-origin",
        "allow-scripts",
        "allow-top-navigation",
        "allow-top-navigation-by-user-activation",
        "allow-top-navigation-to-custom-protocols",
    }
)

# A scheme source (``data:``), a host source (``https://*.example.com:443/path``), a nonce or hash
# source, or a keyword. Everything is printable ASCII without whitespace, ``;`` or ``,``: those
# three would let one value end the directive (or the header) and start another.
_SCHEME_SOURCE = re.compile(r"[a-z][a-z0-9+.-]*:\Z")
_HOST_SOURCE = re.compile(
    r"(?:[a-z][a-z0-9+.-]*://)?"  # optional scheme
    r"(?:\*|(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::(?:\d{1,5}|\*))?"  # optional port
    r"(?:/[!$&'()*+\-.0-9:=@A-Z_a-z~%/]*)?\Z"  # optional path (no ; , or whitespace)
)
_HASH_SOURCE = re.compile(r"'(?:sha256|sha384|sha512)-[A-Za-z0-9+/]+={0,2}'\Z")
_NONCE_SOURCE = re.compile(r"'nonce-[A-Za-z0-9+/_-]+={0,2}'\Z")
_REPORT_URI = re.compile(r"[!#$&'()*+\-./0-9:=?@A-Z_a-z~%]+\Z")


class CSPError(ValueError):
    """A directive or source token that cannot appear in a header we emit."""


def validate_source(directive: str, token: str) -> str:
    """Return ``token`` if it may appear in ``directive``; raise :class:`CSPError` otherwise."""
    if not isinstance(token, str) or not token:
        raise CSPError("a source must be a non-empty string")
    if not token.isascii() or not token.isprintable() or any(c in token for c in " \t;,\r\n"):
        raise CSPError(
            f"{token!r} contains whitespace, ';', ',', a control or a non-ASCII character"
        )
    if directive == "sandbox":
        if token not in SANDBOX_FLAGS:
            raise CSPError(f"{token!r} is not a sandbox flag")
        return token
    if directive == "report-uri":
        if not _REPORT_URI.match(token):
            raise CSPError(f"{token!r} is not a URI reference")
        return token
    if directive == "report-to":
        if not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise CSPError(f"{token!r} is not a reporting group name")
        return token
    if token.startswith("'"):
        if token in KEYWORDS or _HASH_SOURCE.match(token) or _NONCE_SOURCE.match(token):
            return token
        raise CSPError(f"{token!r} is not a CSP keyword, hash or nonce source")
    if "'" in token or '"' in token:
        raise CSPError(f"{token!r} has a quote out of place")
    low = token.lower()
    if _SCHEME_SOURCE.match(low) or _HOST_SOURCE.match(low):
        return token
    raise CSPError(f"{token!r} is not a scheme, host, keyword, hash or nonce source")


Directives = Mapping[str, tuple[str, ...]]


def make_policy(directives: Mapping[str, Iterable[str]]) -> Directives:
    """Validate and freeze a directive map (directive -> source tokens)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, sources in directives.items():
        if name not in _ORDER:
            raise CSPError(f"unknown directive {name!r}")
        values = tuple(sources)
        if name in VALUELESS and values:
            raise CSPError(f"{name} takes no value")
        if name not in VALUELESS and name != "sandbox" and not values:
            raise CSPError(f"{name} needs at least one source (use \"'none'\" to block all)")
        if CSP.NONE in values and len(values) > 1:
            raise CSPError(f"{name}: \"'none'\" cannot be combined with other sources")
        seen: list[str] = []
        for token in values:
            validate_source(name, token)
            if token not in seen:
                seen.append(token)
        out[name] = tuple(seen)
    return MappingProxyType(dict(sorted(out.items(), key=lambda kv: _ORDER[kv[0]])))


def merge(base: Directives, override: Mapping[str, Iterable[str] | None]) -> Directives:
    """Directive-by-directive merge: each directive in ``override`` replaces the base one;
    ``None`` removes it. Never concatenates strings."""
    merged: dict[str, Iterable[str]] = dict(base)
    for name, sources in override.items():
        if sources is None:
            merged.pop(name, None)
        else:
            merged[name] = sources
    return make_policy(merged)


def serialize(directives: Directives) -> str:
    """The header value: one occurrence of each directive, in canonical order."""
    parts = []
    for name in sorted(directives, key=_ORDER.__getitem__):
        sources = directives[name]
        parts.append(" ".join((name, *sources)) if sources else name)
    return "; ".join(parts)


def parse(header: str) -> dict[str, tuple[str, ...]]:
    """Parse a header value the way a browser does: split on ``;``, lower-case the names, keep
    the *first* occurrence of a repeated directive (CSP3 §2.2.1)."""
    out: dict[str, tuple[str, ...]] = {}
    for part in header.split(";"):
        tokens = part.split()
        if not tokens:
            continue
        name = tokens[0].lower()
        if name not in out:
            out[name] = tuple(tokens[1:])
    return out


# -- per-response nonces -------------------------------------------------------------------------

#: A nonce carries at least 128 bits (CSP3 §7.1 "Nonce Reuse": unguessable, fresh per response);
#: 16 random bytes are 22 characters of base64url, 24 of padded base64.
NONCE_MIN_CHARS = 22
# CSP3's base64-value: base64 or base64url characters, at most two "=" of padding.
_NONCE_VALUE = re.compile(r"[A-Za-z0-9+/_-]+={0,2}\Z")
#: The directives an element's nonce is checked against. Never ``script-src-attr``: event
#: handler attributes cannot carry a nonce, so one there would only switch off
#: ``'unsafe-inline'`` for them.
NONCE_DIRECTIVES: tuple[str, ...] = ("script-src", "script-src-elem")


def nonce_source(nonce: str) -> str:
    """``'nonce-<nonce>'``; :class:`CSPError` unless ``nonce`` is base64(url) of at least 128
    bits (a short or malformed nonce would be guessable or break the header)."""
    if (
        not isinstance(nonce, str)
        or len(nonce.rstrip("=")) < NONCE_MIN_CHARS
        or not _NONCE_VALUE.match(nonce)
    ):
        raise CSPError("a nonce is at least 22 base64 or base64url characters (128 bits)")
    return f"'nonce-{nonce}'"


def with_nonce(directives: Directives, nonce: str) -> Directives:
    """The policy ``directives`` with ``'nonce-<nonce>'`` added where a ``<script>`` element is
    checked: ``script-src`` and, if set, ``script-src-elem``. Where neither is set the script
    rule is ``default-src``'s, so ``script-src`` is made from its sources plus the nonce (adding
    the nonce to ``default-src`` would not do: a nonce there would reach styles too). Nothing
    else changes: ``'none'`` gives way to the nonce, every other source stays.

    Only scripts carrying this nonce gain anything: an inline script without it (an injected
    one, a notebook output's) is refused as before. Pure: the caller draws the nonce, fresh
    for every response (``enforcement``), and serialises the result for that response only.
    """
    source = nonce_source(nonce)
    update: dict[str, tuple[str, ...]] = {}
    for name in NONCE_DIRECTIVES:
        if name in directives:
            update[name] = directives[name]
    if "script-src" not in update:
        fallback = effective(directives, "script-src")
        update["script-src"] = fallback if fallback is not None else (CSP.SELF,)
    # A policy without any script rule restricts nothing; it gets 'self' plus the nonce
    # rather than an opening wider than it had.
    added = {
        name: (*(s for s in sources if s != CSP.NONE), source)
        for name, sources in update.items()
    }
    return merge(directives, added)


_SCRIPT_START_TAG = re.compile(r"<script(?=[\s>/])", re.IGNORECASE)


def mark_scripts(trusted_html: str, nonce: str) -> str:
    """``trusted_html`` with ``nonce="<nonce>"`` on every ``<script`` start tag.

    Only for text the server's own templates produced (a macro of an installed front-end
    template, a fixed line of ours): marking text that holds a notebook's content would hand
    the nonce to whatever script that content carries. The caller chooses the text; this
    function cannot tell.
    """
    nonce_source(nonce)  # validates: the value goes into an attribute unquoted by nothing else
    return _SCRIPT_START_TAG.sub(f'<script nonce="{nonce}"', trusted_html)


# -- hashes of trusted inline scripts ---------------------------------------------------------

_INLINE_SCRIPT = re.compile(
    r"<script(?P<attrs>(?:\s[^>]*)?)>(?P<body>.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_SCRIPT_TYPE = re.compile(r"""\btype\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
_JS_TYPES = frozenset({"text/javascript", "application/javascript", "module"})
_TEMPLATE_SYNTAX = ("{{", "{%", "{#")


def inline_script_hashes(html: str) -> tuple[str, ...]:
    """``'sha256-…'`` sources for the static inline scripts of a trusted template.

    A script whose body contains template syntax is skipped: its rendered text depends on the
    request, so no hash computed from the file could match it (and it must not be allowed by
    any other means). Scripts with ``src`` and data blocks (``type="application/json"``) are not
    inline code and need no hash.
    """
    import base64
    import hashlib

    out: list[str] = []
    for match in _INLINE_SCRIPT.finditer(html):
        attrs, body = match.group("attrs"), match.group("body")
        if re.search(r"\bsrc\s*=", attrs, re.IGNORECASE) or not body.strip():
            continue
        type_match = _SCRIPT_TYPE.search(attrs)
        if type_match and type_match.group(1).lower() not in _JS_TYPES:
            continue
        if any(marker in body for marker in _TEMPLATE_SYNTAX):
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        source = f"'sha256-{digest}'"
        if source not in out:
            out.append(source)
    return tuple(out)


# -- floors: how loose a route class's CSP may ever get ------------------------------------------

#: Classes whose responses are documents a browser renders (``base-uri`` matters there).
DOCUMENT_CLASSES = frozenset({"page", "files", "nbconvert", "kernelspec", "static", "error"})
#: Classes that serve user content: always sandboxed into an opaque origin.
USER_CONTENT_CLASSES = frozenset({"files", "nbconvert", "kernelspec"})
#: CSP3 "directive fallback list" (https://www.w3.org/TR/CSP3/#directive-fallback-list): the
#: directives a browser consults, in order, when a fetch directive is absent. The one home of
#: this list: the loader's floors, the static audit and the live probes all read it through
#: :func:`effective_directive` (a copy that knew only ``default-src`` once sat next to a copy
#: that knew the whole list).
FALLBACK: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "script-src-elem": ("script-src", "default-src"),
        "script-src-attr": ("script-src", "default-src"),
        "script-src": ("default-src",),
        "style-src-elem": ("style-src", "default-src"),
        "style-src-attr": ("style-src", "default-src"),
        "style-src": ("default-src",),
        "object-src": ("default-src",),
        "img-src": ("default-src",),
        "font-src": ("default-src",),
        "connect-src": ("default-src",),
        "media-src": ("default-src",),
        "frame-src": ("child-src", "default-src"),
        "worker-src": ("child-src", "script-src", "default-src"),
        "manifest-src": ("default-src",),
        "child-src": ("default-src",),
    }
)
#: Every fetch directive: those that fall back, and ``default-src`` itself.
FETCH_DIRECTIVES: tuple[str, ...] = (*FALLBACK, "default-src")
#: The directives that govern script execution (CSP3: an element's script uses
#: ``script-src-elem``, an event handler ``script-src-attr``, both falling back to ``script-src``).
SCRIPT_DIRECTIVES: tuple[str, ...] = ("script-src", "script-src-elem", "script-src-attr")


def effective_directive(
    directives: Mapping[str, Iterable[str]], name: str
) -> tuple[str | None, tuple[str, ...] | None]:
    """``(the directive a browser applies for name, its sources)``, following the CSP3 fallback
    list (:data:`FALLBACK`); ``(None, None)`` when neither it nor any fallback is set (nothing
    restricts that kind of fetch). A directive that does not fall back (``base-uri``,
    ``form-action``, ``frame-ancestors``) applies only when set."""
    if name in directives:
        return name, tuple(directives[name])
    for fallback in FALLBACK.get(name, ()):
        if fallback in directives:
            return fallback, tuple(directives[fallback])
    return None, None


def effective(directives: Mapping[str, Iterable[str]], name: str) -> tuple[str, ...] | None:
    """The sources a browser applies for ``name`` (:func:`effective_directive`), or ``None``."""
    return effective_directive(directives, name)[1]


_NONCE_OR_HASH_PREFIXES = ("'nonce-", "'sha256-", "'sha384-", "'sha512-")


def is_nonce_or_hash(token: str) -> bool:
    """A nonce or hash source. CSP3's grammar (``nonce-source``, ``hash-source``) is ABNF, whose
    literals are case-insensitive (RFC 5234 §2.3), so ``'NONCE-…'`` counts: a header read from
    a live server is matched the way a browser parses it."""
    return token.lower().startswith(_NONCE_OR_HASH_PREFIXES)


def has_nonce_or_hash(sources: Iterable[str]) -> bool:
    """Whether a source list holds a nonce or hash source. If it does, a CSP3 browser ignores
    ``'unsafe-inline'`` in it ("Does a source list allow all inline behavior for type?",
    https://www.w3.org/TR/CSP3/#allow-all-inline), so ``'unsafe-inline'`` is then a fallback for
    CSP1 browsers, not an opening."""
    return any(is_nonce_or_hash(s) for s in sources)


#: Bare schemes that let a script come from any host or from content an attacker makes.
BROAD_SCRIPT_SCHEMES = frozenset({"http", "https", "data", "blob", "filesystem", "ws", "wss"})


def is_broad_script_source(token: str) -> bool:
    """A script source that lets scripts come from anywhere, or from content anyone can make.

    The one answer for the loader's floor (:func:`floor_problems`) and the audit (HS-CSP-109):

    * ``*`` and a host source whose host is ``*`` (``https://*``, ``*:*``, ``http://*:80/x``):
      CSP3 host-part matching lets ``*`` match every host; Google's CSP Evaluator rates it HIGH
      (``PLAIN_WILDCARD``, ``checkWildcards`` in ``csp_evaluator/dist/checks/
      security_checks.js``).
    * a bare scheme: ``http:``, ``https:``, ``data:`` are the Evaluator's
      ``URL_SCHEMES_CAUSING_XSS`` (HIGH, ``PLAIN_URL_SCHEMES``): any site, or a ``data:`` URL the
      injection writes itself. ``ws:`` and ``wss:`` are as broad in ``script-src``: CSP3's
      scheme-part matching (https://www.w3.org/TR/CSP3/#match-schemes) lets ``wss:`` match every
      ``https:`` URL and ``ws:`` every ``wss:``, ``http:`` and ``https:`` one, so
      ``script-src wss:`` loads script from any HTTPS host (the Evaluator's list misses this).
      ``blob:`` and ``filesystem:`` hold content any script of the origin can mint, so they
      turn one injected string into script. Schemes are matched in any case
      (browsers compare them case-insensitively: ``HTTPS:`` is ``https:``).
    * a wildcard over one label (``*.com``): every host under a top-level domain.

    Not broad: a wildcard over a named domain (``https://*.example.com``). It is limited to one
    owner's hosts and the Evaluator does not flag it either; whether every subdomain deserves
    that trust is the deployer's call. (A multi-label public suffix such as ``*.co.uk`` is not
    recognised: that would need the public-suffix list.) Keywords, nonces and hashes are judged
    elsewhere (``'unsafe-inline'``, ``'unsafe-eval'``).
    """
    low = token.lower()
    if low == "*":
        return True
    if _SCHEME_SOURCE.match(low):
        return low[:-1] in BROAD_SCRIPT_SCHEMES
    if low.startswith("'"):
        return False  # keywords, hashes and nonces
    rest = low.split("://", 1)[1] if "://" in low else low
    host = rest.split("/", 1)[0].split(":", 1)[0]
    return host == "*" or (host.startswith("*.") and "." not in host[2:])


def floor_problems(route_class: str, directives: Directives) -> list[tuple[str, str]]:
    """``(directive, problem)`` for every way ``directives`` is looser than the floor of
    ``route_class``. A policy file may tighten or loosen a class, never below its floor."""
    problems: list[tuple[str, str]] = []
    ancestors = directives.get("frame-ancestors")
    if ancestors is None:
        problems.append(("frame-ancestors", "must be set (clickjacking)"))
    elif not set(ancestors) <= {CSP.NONE, CSP.SELF}:
        problems.append(("frame-ancestors", "may only be 'none' or 'self'"))
    objects = effective(directives, "object-src")
    if objects != (CSP.NONE,):
        problems.append(("object-src", "must be 'none' (directly or through default-src)"))
    for name in SCRIPT_DIRECTIVES:
        # script-src-elem and script-src-attr win over script-src where a browser uses them:
        # a floor on script-src alone let "script-src-elem 'unsafe-inline'" through.
        scripts = effective(directives, name)
        if scripts is None:
            problems.append((name, "must be restricted (directly or through default-src)"))
            continue
        if CSP.UNSAFE_INLINE in scripts:
            problems.append((name, "must not allow 'unsafe-inline'"))
        broad = [s for s in scripts if is_broad_script_source(s)]
        if broad:
            problems.append((name, f"must not allow {', '.join(broad)}"))
    if route_class in DOCUMENT_CLASSES:
        base = directives.get("base-uri")
        if base is None or not set(base) <= {CSP.NONE, CSP.SELF}:
            problems.append(("base-uri", "must be 'none' or 'self' (<base> hijacking)"))
    if route_class in ("api", "error") and directives.get("default-src") != (CSP.NONE,):
        problems.append(("default-src", "must be 'none' on this class"))
    if route_class in USER_CONTENT_CLASSES:
        sandbox = directives.get("sandbox")
        if sandbox is None:
            problems.append(("sandbox", "must be set: user content runs in an opaque origin"))
        elif "allow-same-origin" in sandbox:
            problems.append(("sandbox", "must not allow-same-origin (user content in our origin)"))
    return problems
