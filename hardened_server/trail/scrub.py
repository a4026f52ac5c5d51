"""Log hygiene: no token, password or cookie reaches a log line, and no client input forges one.

Two failures this module handles (research notes §2.9 and §2.8):

* **Token disclosure through logs.** jupyter_server's ``_scrub_uri`` only rewrites the value of a
  query parameter whose *name* contains ``token/auth/key/…``. It never parses the values of other
  parameters, so ``GET /login?next=/tree%3Ftoken%3Dx`` was logged verbatim at INFO; fragments,
  ``Authorization`` headers, cookies and any place where the server token appears literally are
  not touched at all. Logs are shipped to collectors and read by people who must not get a
  working credential out of them. :func:`scrub` removes every such value, including parameters
  nested (and percent-encoded once, twice or more) inside the values of other parameters.
* **Log injection.** ``CSPReportHandler`` logs the raw request body at WARNING; a body of
  ``forged\\n[E 2026 ServerApp] fake log line`` produced a forged log line. :func:`escape_log_value`
  escapes every control character (and the Unicode line/paragraph separators and bidi controls)
  so client input can never start a new line or visually rewrite one; :class:`ScrubLogFilter`
  applies it to the *arguments* of every log call, where client input lives, while keeping the
  server's own multi-line messages readable.

Everything here over-scrubs rather than under-scrubs: a log line that says ``key=[secret]`` where
the value was harmless costs nothing, a token left in a log is a credential leak.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

__all__ = [
    "REDACTED",
    "SENSITIVE_NAME_MARKERS",
    "ScrubLogFilter",
    "escape_log_value",
    "install_log_scrubbing",
    "is_sensitive_name",
    "scrub",
]

REDACTED = "[secret]"

#: A parameter, JSON key or header whose (lower-cased, percent-decoded) name *contains* one of
#: these is treated as a credential. The first seven are the ones the issue names (a superset
#: of jupyter_server's ``_DEFAULT_SCRUB_PARAM_KEYS``); the rest are common spellings of the same
#: thing (OAuth ``access_token`` and ``id_token`` are covered by ``token``).
SENSITIVE_NAME_MARKERS: tuple[str, ...] = (
    "token",
    "auth",
    "key",
    "code",
    "state",
    "xsrf",
    "password",
    "csrf",
    "passwd",
    "pwd",
    "secret",
    "session",
    "signature",
    "jwt",
    "credential",
    "cookie",
)

# How many layers of percent-encoding we peel off. Each layer is one more round of
# ``encodeURIComponent`` by a redirect chain (``next=`` inside ``next=``); beyond this we give up
# on precision and redact the whole value.
_MAX_DECODE_DEPTH = 5

# Secrets shorter than this are not searched for literally: a one-letter "secret" would shred
# every log line, and such a value is not a credential anyone should be relying on.
_MIN_LITERAL_SECRET = 4

# ``name=value`` anywhere in free text: after a URL/query/fragment separator, whitespace, a
# quote, a bracket or at the start. The value stops at the next separator, so ``next=/lab?t=1``
# yields two pairs, ``next=/lab`` and ``t=1``.
_PAIR = re.compile(
    r"(?P<lead>^|[?&;#\s,'\"(\[{<|])"
    r"(?P<name>[^\s=&;#?'\"<>(){}\[\],|/:]{1,128})"
    r"=(?P<value>[^\s&;#?'\"<>|]*)"
)

# ``Authorization: token abc`` / ``Bearer abc`` / ``Basic abc`` as a header line, in a dict repr
# (``'Authorization': 'token abc'``) or as ``authorization=…``.
_AUTH_HEADER = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization\b['\"]?\s*[:=]\s*['\"]?)"
    r"(?P<scheme>(?:token|bearer|basic|digest|negotiate|ntlm)[ \t]+)?+"
    r"(?!\[secret\])(?P<cred>[^\s'\",;}\]]+)",
    re.IGNORECASE,
)

# ``Cookie: a=b; c=d`` and ``Set-Cookie: name=value; Path=/; HttpOnly`` (header line or dict
# repr). Every value in the header is a credential or may be one (jupyter's user cookie, _xsrf).
_COOKIE_HEADER = re.compile(
    r"(?P<head>\b(?:set-)?cookie\b['\"]?\s*:\s*['\"]?)(?P<val>[^\r\n'\"]*)",
    re.IGNORECASE,
)
_COOKIE_PAIR = re.compile(r"(?P<name>[^=;,\s]+)=(?P<value>[^;,\s]*)")
_COOKIE_ATTRIBUTES = frozenset(
    {"path", "domain", "expires", "max-age", "samesite", "secure", "httponly", "priority"}
)

# JSON / Python-repr key-value pairs: ``"password": "hunter2"``, ``'token': 'abc'``,
# ``"code": 123456``.
_QUOTED_KV = re.compile(
    r"(?P<head>(?P<q>[\"'])(?P<name>[^\"'\r\n]{1,128})(?P=q)\s*:\s*)"
    r"(?P<val>\"(?:\\.|[^\"\\]){0,8192}\"|'(?:\\.|[^'\\]){0,8192}'|[^\s,}\]]+)"
)

# Header lines with a credential-bearing name: ``X-XSRFToken: abc``, ``X-Api-Key: abc``.
_HEADER_LINE = re.compile(
    r"(?P<head>(?:^|(?<=[\s,{]))(?P<name>[A-Za-z][A-Za-z_-]{0,63}):[ \t]*)"
    r"(?P<val>[^\r\n]+)",
    re.MULTILINE,
)
_BARE_HEADER_NAMES = frozenset(
    {"token", "password", "passwd", "secret", "apikey", "api_key", "access_token", "_xsrf"}
)

# A credential after an auth scheme word outside a header: "using Bearer abc.def".
_BEARER_WORD = re.compile(r"(?P<head>\bbearer\s+)(?P<cred>[A-Za-z0-9._~+/=-]{8,})", re.I)
# "token 6c1f…": the jupyter Authorization scheme; require a digit so prose ("token
# authentication_disabled") survives.
_TOKEN_WORD = re.compile(
    r"(?P<head>\btoken\s+)(?P<cred>(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{16,})", re.I
)

# A run of non-space characters carrying percent-escapes: a URL or path that may hide
# ``?token=`` behind ``%3F…%3D``.
# (Matched as whole runs and filtered in Python: a pattern anchored on the ``%`` would rescan
# a long run from every start position, quadratic on a large logged body.)
_WORD_RUN = re.compile(r"[^\s'\"<>]+")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def is_sensitive_name(name: str) -> bool:
    """True if a parameter/key/header *name* marks a credential (after percent-decoding, so
    ``%74oken`` is ``token``)."""
    decoded = _decode_fully(name)[-1].lower()
    return any(marker in decoded for marker in SENSITIVE_NAME_MARKERS)


def _decode_fully(text: str) -> list[str]:
    """``[text, unquote(text), unquote(unquote(text)), …]`` until stable (at most
    ``_MAX_DECODE_DEPTH`` layers)."""
    levels = [text]
    for _ in range(_MAX_DECODE_DEPTH):
        decoded = unquote(levels[-1])
        if decoded == levels[-1]:
            break
        levels.append(decoded)
    return levels


def _is_unstable(levels: list[str]) -> bool:
    """Still changing after the maximum number of layers: an attacker-sized encoding tower."""
    return len(levels) > _MAX_DECODE_DEPTH and unquote(levels[-1]) != levels[-1]


def _hex_byte(byte: int) -> str:
    return "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")


@functools.lru_cache(maxsize=32)
def _literal_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching each secret raw *or* with any of its characters percent-encoded once
    or many times (``%2F``, ``%2f``, ``%252F``): the token survives encodeURIComponent."""
    alternatives: list[str] = []
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) < _MIN_LITERAL_SECRET:
            continue
        parts = []
        for ch in secret:
            encoded = "".join("%(?:25)*" + _hex_byte(b) for b in ch.encode("utf-8"))
            parts.append(f"(?:{re.escape(ch)}|{encoded})")
        alternatives.append("".join(parts))
    if not alternatives:
        return None
    return re.compile("|".join(alternatives))


def _scrub_literals(text: str, secrets: tuple[str, ...]) -> str:
    pattern = _literal_pattern(secrets)
    return pattern.sub(REDACTED, text) if pattern else text


def _value_is_sensitive(value: str, secrets: tuple[str, ...], depth: int) -> bool:
    """Does this value, at any percent-decoding layer, contain a credential?"""
    if not value:
        return False
    levels = _decode_fully(value)
    if _is_unstable(levels):
        return True
    pattern = _literal_pattern(secrets)
    for level in levels:
        if pattern is not None and pattern.search(level):
            return True
        # ``level`` is a strict substring of the text being scrubbed (or a decoding of one, which
        # is shorter), so this recursion terminates; ``depth`` bounds it regardless.
        if depth >= _MAX_DECODE_DEPTH or _scrub_structured(level, secrets, depth + 1) != level:
            return True
    return False


def _scrub_pairs(text: str, secrets: tuple[str, ...], depth: int) -> str:
    def repl(m: re.Match[str]) -> str:
        name, value = m.group("name"), m.group("value")
        if value and (is_sensitive_name(name) or _value_is_sensitive(value, secrets, depth)):
            value = REDACTED
        return f"{m.group('lead')}{name}={value}"

    return _PAIR.sub(repl, text)


def _scrub_cookie_value(m: re.Match[str]) -> str:
    val = m.group("val")

    def pair(p: re.Match[str]) -> str:
        if p.group("name").strip().lower() in _COOKIE_ATTRIBUTES:
            return p.group(0)
        return f"{p.group('name')}={REDACTED}" if p.group("value") else p.group(0)

    scrubbed = _COOKIE_PAIR.sub(pair, val)
    if not _COOKIE_PAIR.search(val) and val.strip() and val.strip() != REDACTED:
        # No name=value structure: the whole value may be a bare credential.
        scrubbed = REDACTED
    return m.group("head") + scrubbed


def _scrub_quoted_kv(m: re.Match[str]) -> str:
    if not is_sensitive_name(m.group("name")):
        return m.group(0)
    val = m.group("val")
    quote = val[0] if val[:1] in ("'", '"') else ""
    return f"{m.group('head')}{quote}{REDACTED}{quote}"


def _scrub_header_line(m: re.Match[str]) -> str:
    name = m.group("name")
    lowered = name.lower()
    header_like = "-" in name or lowered in _BARE_HEADER_NAMES
    if lowered in ("authorization", "cookie", "set-cookie") or not header_like:
        return m.group(0)
    if not is_sensitive_name(name):
        return m.group(0)
    return m.group("head") + REDACTED


def _scrub_structured(text: str, secrets: tuple[str, ...], depth: int = 0) -> str:
    """Every structural pass except the percent-run pass (which calls back into this one)."""
    text = _AUTH_HEADER.sub(lambda m: f"{m.group('head')}{m.group('scheme') or ''}{REDACTED}", text)
    text = _COOKIE_HEADER.sub(_scrub_cookie_value, text)
    text = _QUOTED_KV.sub(_scrub_quoted_kv, text)
    text = _HEADER_LINE.sub(_scrub_header_line, text)
    text = _scrub_pairs(text, secrets, depth)
    text = _BEARER_WORD.sub(lambda m: m.group("head") + REDACTED, text)
    return _TOKEN_WORD.sub(lambda m: m.group("head") + REDACTED, text)


def _scrub_percent_runs(text: str, secrets: tuple[str, ...]) -> str:
    """``/lab%3Ftoken%3Dabc`` as a bare path or word: decode, and if any layer hides a credential,
    replace the run by its decoded, scrubbed form (or by ``[secret]`` if that is not clean)."""

    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        if not _PERCENT_ESCAPE.search(run):
            return run
        levels = _decode_fully(run)
        if _is_unstable(levels):
            return REDACTED
        if not any(_scrub_structured(level, secrets) != level for level in levels[1:]):
            return run
        candidate = _scrub_literals(_scrub_structured(levels[-1], secrets), secrets)
        check = _decode_fully(candidate)
        if _is_unstable(check) or any(_scrub_structured(c, secrets) != c for c in check):
            return REDACTED
        return candidate

    return _WORD_RUN.sub(repl, text)


def _as_secret_tuple(secrets: Iterable[str]) -> tuple[str, ...]:
    return tuple(s for s in secrets if isinstance(s, str) and s)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove every credential from ``text`` (a log message, a URL, a header dump).

    Handled, each with a test in ``tests/trail/test_scrub.py``:

    * query/fragment parameters whose name contains a :data:`SENSITIVE_NAME_MARKERS` entry,
      case-insensitively and after percent-decoding the name (``?TOKEN=``, ``#access_token=``,
      ``;jsessionid=``, form bodies ``password=…``);
    * such parameters *nested* in the value of any other parameter, percent-encoded any number of
      times (``next=/lab%3Ftoken%3Dabc``, ``next=%252Flab%253Ftoken%253Dabc``): the whole outer
      value is redacted;
    * the same inside a bare percent-encoded path or word (``/lab%3Ftoken%3Dabc``);
    * ``Authorization``/``Proxy-Authorization`` values (``token``, ``Bearer``, ``Basic``…) as
      header lines, dict reprs or JSON; ``Bearer <cred>`` and ``token <cred>`` in prose;
    * every value of ``Cookie:`` and ``Set-Cookie:`` strings;
    * JSON / repr key-value pairs with a sensitive key (``"password": "…"``) and header lines
      with a sensitive header name (``X-XSRFToken: …``);
    * every literal occurrence of a known secret in ``secrets`` (the server token, a password),
      raw or percent-encoded with any mix of upper/lower hex, any number of times.

    The function is idempotent and never raises on odd input.
    """
    if not text:
        return text
    secret_tuple = _as_secret_tuple(secrets)
    text = _scrub_literals(text, secret_tuple)
    text = _scrub_structured(text, secret_tuple)
    text = _scrub_percent_runs(text, secret_tuple)
    # The percent pass may have put decoded text into the line: look for literal secrets again.
    return _scrub_literals(text, secret_tuple)


_ESCAPE_CANDIDATE = re.compile(r"[\\]|[^\x20-\x7e]")
_ESCAPE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch == "\\":
        return "\\\\"
    if unicodedata.category(ch) not in _ESCAPE_CATEGORIES:
        return ch  # printable non-ASCII (letters, symbols, emoji) stays readable
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_log_value(value: object, limit: int | None = None) -> str:
    """Render ``value`` so that it occupies exactly one line and cannot forge another.

    Escaped: every C0/C1 control (``\\n``, ``\\r``, ESC for terminal escape sequences, NUL…),
    DEL, the Unicode line and paragraph separators, format characters (bidi overrides that
    visually reorder a line, zero-width characters), lone surrogates and unassigned code
    points, and the backslash itself (so an attacker cannot write a literal ``\\n`` that reads
    like one of our escapes). ``limit`` truncates long client input (a 512 MiB CSP report body)
    before escaping.
    """
    text = value if isinstance(value, str) else str(value)
    truncated = False
    if limit is not None and len(text) > limit:
        text, truncated = text[:limit], True
    if _ESCAPE_CANDIDATE.search(text):
        text = _ESCAPE_CANDIDATE.sub(_escape_char, text)
    return text + "...[truncated]" if truncated else text


SecretSource = Iterable[str] | Callable[[], Iterable[str]]


# Slack scrubbed beyond a truncation point, so a secret straddling the cut is still whole when
# it is searched for (a half-redacted token is a half-leaked token).
_TRUNCATION_SLACK = 1024


def _scrub_capped(text: str, secrets: tuple[str, ...], limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return escape_log_value(scrub(text, secrets))
    scrubbed = scrub(text[: limit + _TRUNCATION_SLACK], secrets)
    return escape_log_value(scrubbed, limit=limit)


class _SafeArg:
    """Stands in for a log argument: formats as the scrubbed, escaped text of the original."""

    __slots__ = ("_limit", "_obj", "_secrets")

    def __init__(self, obj: object, secrets: tuple[str, ...], limit: int | None) -> None:
        self._obj = obj
        self._secrets = secrets
        self._limit = limit

    def __str__(self) -> str:
        return _scrub_capped(str(self._obj), self._secrets, self._limit)

    def __repr__(self) -> str:
        return _scrub_capped(repr(self._obj), self._secrets, self._limit)


def _safe_arg(arg: object, secrets: tuple[str, ...], limit: int | None) -> object:
    # Numbers keep their type so ``%d``/``%.2f`` still format; they carry no text to inject.
    if arg is None or isinstance(arg, int | float):
        return arg
    return _SafeArg(arg, secrets, limit)


def _scrub_structure(value: Any, secrets: tuple[str, ...]) -> Any:
    """Strings scrubbed at any depth of a JSON-like value; keys and other values kept (the
    JSON encoder escapes control characters, so no line can be forged through a field)."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        return {k: _scrub_structure(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_structure(v, secrets) for v in value]
    return value


class ScrubLogFilter(logging.Filter):
    """A ``logging.Filter`` that scrubs credentials from, and neutralises injection in, every
    record it sees. It never drops a record.

    * The arguments of the log call (where client input lives: a request body, a header, a URI)
      are scrubbed and control-escaped *before* formatting, so ``log.warning("CSP: %s", body)``
      can no longer produce a forged second line.
    * The formatted message is then scrubbed as a whole, and stored back with ``args = ()``:
      handlers and formatters further down never see the raw arguments.
    * A traceback (``exc_info``) and ``stack_info`` are formatted and scrubbed here too (the
      formatter reuses the cached ``exc_text``), since exception messages often quote URLs.
    * String attributes added with ``extra=`` are scrubbed for structured (JSON) formatters.

    ``max_arg_chars`` truncates each argument (a CSP report body may be 512 MiB).
    With ``escape_message=True`` the format string itself is escaped too (for handlers that feed
    line-oriented collectors); by default the server's own multi-line messages stay readable.

    ``secrets`` is an iterable or a zero-argument callable returning one, so a token that is
    rotated at run time is picked up on the next record.

    Attach it to *handlers* (a logger's filters do not run for records propagated from child
    loggers); :func:`install_log_scrubbing` does that.
    """

    _STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def __init__(
        self,
        secrets: SecretSource = (),
        *,
        escape_message: bool = False,
        max_arg_chars: int | None = 65536,
    ) -> None:
        super().__init__()
        self._secrets = secrets
        self.escape_message = escape_message
        self.max_arg_chars = max_arg_chars

    def current_secrets(self) -> tuple[str, ...]:
        source = self._secrets() if callable(self._secrets) else self._secrets
        return _as_secret_tuple(source)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hs_scrubbed", False):
            return True
        secrets = self.current_secrets()
        limit = self.max_arg_chars
        if isinstance(record.msg, Mapping) and not record.args:
            # A structured event (jupyter_events hands its JSON formatter a dict): scrub the
            # values, keep the structure, or the formatter loses every field.
            record.msg = _scrub_structure(record.msg, secrets)
            record._hs_scrubbed = True
            return True
        msg = record.msg if isinstance(record.msg, str) else str(record.msg)
        args = record.args
        try:
            if isinstance(args, Mapping):
                safe: Any = {k: _safe_arg(v, secrets, limit) for k, v in args.items()}
                formatted = msg % safe
            elif args:
                formatted = msg % tuple(_safe_arg(a, secrets, limit) for a in args)
            else:
                formatted = msg
        except (TypeError, ValueError, KeyError):
            # A broken format string: keep everything, but as escaped text.
            formatted = f"{msg} {_scrub_capped(repr(args), secrets, limit)}"
        if self.escape_message:
            formatted = escape_log_value(formatted)
        record.msg = scrub(formatted, secrets)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, secrets)
        for key, value in list(record.__dict__.items()):
            if key not in self._STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, escape_log_value(scrub(value, secrets)))
        record._hs_scrubbed = True
        return True


def _reaches_a_handler(record: logging.LogRecord, logger: logging.Logger | None = None) -> bool:
    """Would ``logging`` hand ``record`` to any handler (its logger's, or a propagating
    ancestor's, whose level lets it through; or ``lastResort`` when there is none)? ``logger``:
    the record's own logger when the caller has it (no ``getLogger``, whose module lock a debug
    record per kernel message paid for), else it is looked up by name."""
    if logger is None:
        logger = logging.getLogger(record.name) if record.name != "root" else logging.getLogger()
    found = False
    while logger is not None:
        for handler in logger.handlers:
            found = True
            if record.levelno >= handler.level:
                return True
        if not logger.propagate:
            break
        logger = logger.parent
    last = logging.lastResort
    return not found and last is not None and record.levelno >= last.level


class _LoggerScrub(logging.Filter):
    """``log_filter`` on a logger: there it sees every record the logger's *level* lets
    through, most of which no handler writes (a server logger at DEBUG, its handler at INFO:
    two debug records per request). Those are left alone, since nobody ever formats them;
    every record that reaches a handler is scrubbed as before. Compares equal to the filter it
    wraps, so ``removeFilter(log_filter)`` and ``log_filter in logger.filters`` still work.
    ``logging`` consults a logger's filters only for records created on that logger (never for
    a descendant's, which propagate to handlers alone): the record's logger is the one this
    filter sits on, kept here, with a look-up by name for anything else."""

    def __init__(self, inner: ScrubLogFilter, logger: logging.Logger | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        own = self.logger
        if _reaches_a_handler(record, own if own is not None and own.name == record.name else None):
            return self.inner.filter(record)
        return True

    def __eq__(self, other: object) -> bool:
        return other is self or other is self.inner

    def __hash__(self) -> int:
        return hash(self.inner)


def install_log_scrubbing(
    log_filter: ScrubLogFilter, logger_names: Iterable[str] = ("",)
) -> list[logging.Handler]:
    """Attach ``log_filter`` to every handler of the named loggers (``""`` is the root) and to
    the loggers themselves (for handlers added later; there it skips the records that no
    handler will write). Returns the handlers it was attached to. Idempotent."""
    touched: list[logging.Handler] = []
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(f == log_filter for f in logger.filters):
            logger.addFilter(_LoggerScrub(log_filter, logger))
        for handler in logger.handlers:
            if log_filter not in handler.filters:
                handler.addFilter(log_filter)
            touched.append(handler)
    return touched
