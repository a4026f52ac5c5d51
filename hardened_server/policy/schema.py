"""Every policy key: its type, what values it accepts, what it means, and which way loosens it.

This table is the single source for validation, the JSON Schema export (``policy schema``), the
generated reference (``docs/policy-reference.md``) and ``policy explain``. Values themselves are
not here: the shipped default profile (``policies/default.toml``) sets every key, so what a
server does with no ``--policy`` is reviewable as a file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardened_server.policy import csp
from hardened_server.policy.cors import DEFAULT_ALLOW_METHODS, compile_cors
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.fsync import FsyncPolicy
from hardened_server.policy.origins import normalize_hostname, normalize_origin
from hardened_server.policy.scopemap import ANY_METHOD, METHODS
from hardened_server.policy.scopes import KNOWN_SCOPES, SCOPES

# How a change of value relates to the shipped default (rule 5: every loosening is visible).
LOOSEN_IF_TRUE = "true"  # bool: true is looser
LOOSEN_IF_FALSE = "false"  # bool: false is looser
LOOSEN_IF_GROWS = "grows"  # list: an added entry is looser
LOOSEN_IF_SHRINKS = "shrinks"  # list: a removed entry is looser
LOOSEN_IF_HIGHER = "higher"  # int: a higher number is looser
LOOSEN_IF_LOWER = "lower"  # int: a lower number is looser
LOOSEN_IF_CHANGED = "changed"  # anything else: any change may loosen; review it
# scopes.routes: every entry opens a route the default refuses (a change to review); an entry
# that needs no scope at all for some method is a loosening.
LOOSEN_IF_UNSCOPED = "unscoped"


class ItemError(ValueError):
    """An item of a value is not acceptable; the message says why."""


@dataclass(frozen=True)
class Field:
    key: str
    kind: str  # bool | int | str | enum | list | directive | routemap
    doc: str
    loosen: str = LOOSEN_IF_CHANGED
    allowed: str = ""  # human description of the allowed values
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    item: Callable[[str], str] | None = None  # validates (and may normalise) one string
    json_pattern: str | None = None
    group: str = ""  # fields documented together in the reference (csp directives)


# ---------------------------------------------------------------------------------------------
# Item validators: return the (normalised) item or raise ItemError with the reason.


def _hostname(value: str) -> str:
    host = normalize_hostname(value)
    if host is None or "*" in value:
        raise ItemError("not a DNS host name or IP address (no scheme, port, path or wildcard)")
    return host


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ItemError(f"not a network in CIDR form ({exc})") from None


def _origin(value: str) -> str:
    if "*" in value:
        raise ItemError("wildcards are never allowed in an origin allow-list")
    origin = normalize_origin(value)
    if origin is None:
        raise ItemError("not an origin of the form scheme://host[:port] (http or https)")
    return origin


def _origin_pattern(value: str) -> str:
    try:
        compile_cors((), allow_origin_patterns=(value,))
    except ValueError as exc:
        raise ItemError(str(exc)) from None
    return value


def _cors_method(value: str) -> str:
    method = value.upper()
    if method not in DEFAULT_ALLOW_METHODS:
        raise ItemError("not one of " + ", ".join(DEFAULT_ALLOW_METHODS))
    return method


def _cors_header(value: str) -> str:
    if value.strip() == "*":
        raise ItemError("'*' would allow every request header; list the names")
    try:
        compile_cors((), allow_headers=(value,))
    except ValueError:
        raise ItemError("not an HTTP header name (an RFC 9110 token)") from None
    return value.lower()


def _route_pattern(value: str) -> str:
    if not value.startswith("/"):
        raise ItemError("a route pattern starts with '/' (relative to base_url)")
    if value.endswith("$"):
        raise ItemError("leave out the trailing '$': patterns always match the whole path")
    try:
        re.compile(value)
    except (re.error, OverflowError, RecursionError) as exc:
        # OverflowError: "/a{99999999999}" (a repeat count past sre's limit), found by
        # fuzz/fuzz_loader.py; it escaped the loader instead of naming the key.
        raise ItemError(f"not a valid regular expression ({exc})") from None
    return value


def _event_schema_id(value: str) -> str:
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise ItemError("an event schema id (a URI such as https://events.jupyter.org/...)")
    return value


def _route_scopes(value: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    """scopes.routes: ``{pattern = {METHOD = "scope" | ["scope", ...]}}``, normalised to sorted
    tuples (an empty list: any authenticated user, no scope)."""
    if not isinstance(value, dict):
        raise ItemError(
            f"expected a table of route patterns, got {type(value).__name__}; "
            'e.g. scopes.routes = { "/hello/(.*)" = { GET = "contents:read" } }'
        )
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for pattern in sorted(value):
        try:
            _route_pattern(pattern)
        except ItemError as exc:
            raise ItemError(f"route {pattern!r}: {exc}") from None
        methods = value[pattern]
        if not isinstance(methods, dict) or not methods:
            raise ItemError(
                f"route {pattern!r}: expected a table of methods, e.g. "
                '{ GET = "contents:read", PUT = "contents:write" }'
            )
        entry: dict[str, tuple[str, ...]] = {}
        for method, scopes in methods.items():
            name = method.upper()
            if name not in (*METHODS, ANY_METHOD):
                raise ItemError(
                    f"route {pattern!r}: method {method!r} is not one of "
                    + ", ".join((*METHODS, ANY_METHOD))
                )
            items = [scopes] if isinstance(scopes, str) else scopes
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ItemError(
                    f"route {pattern!r} {name}: expected a scope name or a list of scope names"
                )
            unknown = [i for i in items if i not in SCOPES]
            if unknown:
                raise ItemError(
                    f"route {pattern!r} {name}: unknown scope {unknown[0]!r} (one of "
                    + ", ".join(SCOPES)
                    + "; [] for no scope)"
                )
            if name in entry:
                raise ItemError(f"route {pattern!r}: method {name} given twice")
            entry[name] = tuple(sorted(set(items)))
        out[pattern] = entry
    return out


def _path_glob(value: str) -> str:
    if not value or value.startswith("/") or "\\" in value or "\x00" in value:
        raise ItemError("a glob relative to the served root, with '/' separators")
    if any(part == ".." for part in value.split("/")):
        raise ItemError("'..' has no meaning in a path rule")
    return value


def _scope(value: str) -> str:
    if value not in KNOWN_SCOPES:
        raise ItemError("not a scope; known scopes: " + ", ".join(SCOPES))
    return value


def _abs_path_or_empty(value: str) -> str:
    if value and (not value.startswith("/") or not value.isascii() or not value.isprintable()):
        raise ItemError('an absolute path (printable ASCII), or "" for the default')
    return value


def _header_text(value: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise ItemError("header values are printable ASCII without CR or LF")
    return value


def _audit_file(value: str) -> str:
    if value == "":
        return value
    if not value.isascii() or not value.isprintable():
        raise ItemError("a file path in printable ASCII (no control characters)")
    if not (value.startswith("/") or value.startswith("~")):
        raise ItemError('an absolute path (or starting with ~), or "" for the default')
    return value


def _fsync_spec(value: str) -> str:
    try:
        FsyncPolicy.parse(value)
    except ValueError:
        raise ItemError("'always', 'never' or 'interval:<seconds>' (e.g. interval:1)") from None
    return value


# ---------------------------------------------------------------------------------------------

_REFERRER = (
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
)

FIELDS_LIST: list[Field] = [
    # [server]
    Field(
        "server.public_hostnames",
        "list",
        "Host names (besides loopback names and addresses) that may appear in the Host header. "
        "Always checked, whatever address the server binds to: a foreign Host gets 403 "
        "(DNS rebinding).",
        LOOSEN_IF_GROWS,
        "DNS names or IP addresses, no scheme, port or wildcard",
        item=_hostname,
    ),
    Field(
        "server.trusted_proxies",
        "list",
        "Networks of reverse proxies whose X-Forwarded-*/Forwarded headers are believed. From "
        "any other peer those headers are ignored.",
        LOOSEN_IF_GROWS,
        "CIDR networks such as 10.0.0.0/8 or 127.0.0.1/32",
        item=_cidr,
    ),
    Field(
        "server.client_header",
        "enum",
        "The one forwarding header that names the client when the peer is a trusted proxy: "
        "'x-forwarded-for' (nginx, configurable-http-proxy, Caddy, Traefik; walked from the "
        "right, the right-most untrusted hop is the client), 'forwarded' (RFC 7239, walked the "
        "same way) or 'x-real-ip' (only if every trusted proxy overwrites it: CHP and Caddy "
        "pass a client's X-Real-IP through). The others are never read. Scheme and host come "
        "from the same hop (X-Forwarded-Proto/-Host, or proto=/host= of Forwarded).",
        LOOSEN_IF_CHANGED,
        choices=("x-forwarded-for", "forwarded", "x-real-ip"),
    ),
    Field(
        "server.allow_insecure_remote",
        "bool",
        "Allow binding to a non-loopback address with neither TLS (--certfile/--keyfile) nor "
        "server.trusted_proxies. Off: such a start-up is refused, because tokens and cookies "
        "would cross the network in clear.",
        LOOSEN_IF_TRUE,
        "true or false",
    ),
    # [routes]
    Field(
        "routes.public",
        "list",
        "Route patterns (tornado regular expressions as registered, relative to base_url) that "
        "may be reached without authentication. Every other route requires a logged-in user, "
        "whatever its handler's decorators say; an undecorated handler method on a route not "
        "listed here stops the server at start-up.",
        LOOSEN_IF_GROWS,
        'regular expressions starting with \'/\', e.g. "/login" or "/static/(.*)"',
        item=_route_pattern,
    ),
    Field(
        "routes.accept_undecorated",
        "list",
        "Route patterns whose handler methods carry no authentication decorator but were "
        "reviewed and authenticate in their own code. The start-up check accepts them; the "
        "policy's login gate still applies (they are not public unless routes.public lists "
        "them).",
        LOOSEN_IF_GROWS,
        "regular expressions starting with '/', exactly as the start-up error prints them",
        item=_route_pattern,
    ),
    Field(
        "routes.unsafe_eval",
        "list",
        "Page routes (patterns as registered) whose front-end needs 'unsafe-eval' in "
        "script-src: JupyterLab 4 and Notebook 7 compile JSON schemas with new Function. Every "
        "other page (the login page included) gets the page CSP without it. Empty: no route "
        "may evaluate strings as code (those front-ends then lose their settings-dependent "
        "plugins).",
        LOOSEN_IF_GROWS,
        "regular expressions starting with '/', exactly as `hardened-server audit --routes` "
        "prints them",
        item=_route_pattern,
    ),
    # [scopes]
    Field(
        "scopes.routes",
        "routemap",
        "Scopes required by routes the built-in route map does not know (extension routes), "
        "or a stricter requirement for one it does. Keys are route patterns as registered "
        "(relative to base_url, exactly as the start-up warning and `hardened-server audit "
        "--routes` print them); values map an HTTP method (or \"*\" for every method not "
        "listed; HEAD follows GET) to a scope or a list of scopes that are all needed. A route "
        "no table maps is refused (403, HS-SCOPE-002) for every user. An empty list lets any "
        "logged-in user through with no scope: a loosening. For handlers that also call "
        "jupyter_server's Authorizer (@authorized), both checks apply, so an entry can only "
        "tighten those.",
        LOOSEN_IF_UNSCOPED,
        'a table such as { "/hello/(.*)" = { GET = "contents:read", POST = '
        '["contents:write", "kernels:execute"] } }; scopes: ' + ", ".join(SCOPES),
    ),
    Field(
        "scopes.client_event_schemas",
        "list",
        "Event schema ids a client may emit with POST /api/events (with the events:write "
        "scope). Any other schema id, the server's own (contents, kernel actions, the audit "
        "trail) included, is refused with 403 (HS-SCOPE-003). JupyterLab and Notebook 7 emit "
        "none by themselves.",
        LOOSEN_IF_GROWS,
        "schema id URIs, e.g. \"https://events.example.org/my-extension/click/v1\"",
        item=_event_schema_id,
    ),
    # [cors]
    Field(
        "cors.allow_origins",
        "list",
        "Origins allowed to make cross-origin requests (Access-Control-Allow-Origin is sent "
        "only for these, compared exactly after normalisation). Never '*'. 'null' only if "
        "listed.",
        LOOSEN_IF_GROWS,
        "origins of the form https://host[:port] or http://host[:port], or null",
        item=_origin,
    ),
    Field(
        "cors.allow_credentials",
        "bool",
        "Send Access-Control-Allow-Credentials: true to listed origins (cookies cross origins).",
        LOOSEN_IF_TRUE,
        "true or false",
    ),
    Field(
        "cors.allow_origin_patterns",
        "list",
        "Regular expressions an origin must match in full (after normalisation, so "
        "https://A.example.com:443 is matched as https://a.example.com) to be treated like a "
        "listed origin. Each must start with a literal https:// or http:// and must not match "
        "a canary origin (too broad). Every entry is a loosening; prefer cors.allow_origins.",
        LOOSEN_IF_GROWS,
        "full-match regular expressions starting with https:// or http://, "
        'e.g. "https://[a-z0-9-]+\\\\.dashboards\\\\.example\\\\.org"',
        item=_origin_pattern,
    ),
    Field(
        "cors.allow_methods",
        "list",
        "Methods a listed origin may use cross-origin (Access-Control-Allow-Methods of a "
        "preflight answer; other methods get no CORS headers).",
        LOOSEN_IF_GROWS,
        "any of " + ", ".join(DEFAULT_ALLOW_METHODS),
        item=_cors_method,
    ),
    Field(
        "cors.allow_headers",
        "list",
        "Request headers a listed origin may send (Access-Control-Allow-Headers of a preflight "
        "answer, lower-case); the CORS-safelisted ones are always allowed. Never '*'.",
        LOOSEN_IF_GROWS,
        'HTTP header names, e.g. "authorization", "content-type", "x-xsrftoken"',
        item=_cors_header,
    ),
    Field(
        "cors.max_age",
        "int",
        "Seconds a browser may cache a preflight answer (Access-Control-Max-Age). A longer "
        "cache keeps a removed origin's access alive longer.",
        LOOSEN_IF_HIGHER,
        "an integer from 0 to 86400",
        minimum=0,
        maximum=86400,
    ),
    # [paths]
    Field(
        "paths.allow_hidden",
        "bool",
        "Allow access to hidden files and directories (names starting with '.'). paths.deny "
        "holds even when this is true.",
        LOOSEN_IF_TRUE,
        "true or false",
    ),
    Field(
        "paths.deny",
        "list",
        "Globs (relative to the served root, '**' for any depth) that are never served, listed, "
        "written or renamed, hidden files allowed or not.",
        LOOSEN_IF_SHRINKS,
        "globs with '/' separators, relative to the root",
        item=_path_glob,
    ),
    Field(
        "paths.allow",
        "list",
        'Exceptions to the hidden-file rule (never to paths.deny), e.g. ".jupyter/lab/**".',
        LOOSEN_IF_GROWS,
        "globs with '/' separators, relative to the root",
        item=_path_glob,
    ),
    # [tokens]
    Field(
        "tokens.url_tokens",
        "enum",
        "Whether a ?token= in a URL is accepted: 'navigation-exchange' accepts it only on a "
        "top-level page navigation, exchanges it for a session and redirects to the same URL "
        "without it; 'never' refuses URL tokens entirely.",
        LOOSEN_IF_CHANGED,
        choices=("navigation-exchange", "never"),
    ),
    Field(
        "tokens.min_entropy_bits",
        "int",
        "Least estimated entropy of a configured token (JUPYTER_TOKEN, token file or config); "
        "a weaker token stops the server at start-up.",
        LOOSEN_IF_LOWER,
        "an integer from 128 to 512",
        minimum=128,
        maximum=512,
    ),
    Field(
        "tokens.owner_scopes",
        "list",
        "Scopes of the server's owner: whoever holds the start-up token (JUPYTER_TOKEN, the "
        "token file or the generated one in the login URL) or the password, and their "
        "sessions. 'admin' implies every scope. Stored tokens (`hardened-server token "
        "create`) carry their own scopes.",
        LOOSEN_IF_GROWS,
        "scope names: " + ", ".join(SCOPES),
        item=_scope,
    ),
    Field(
        "tokens.store_file",
        "str",
        "The token store (hashes of the tokens `hardened-server token create` makes, mode "
        "0600). Empty: hardened-server-tokens.json in the Jupyter runtime directory. The "
        "contents API must not reach it: outside the served root or under a paths.deny glob "
        "(refused at start-up otherwise). The serve option "
        "--token-store and the token commands' --store override it.",
        LOOSEN_IF_CHANGED,
        'an absolute path (printable ASCII), or ""',
        item=_abs_path_or_empty,
    ),
    # [login]
    Field(
        "login.free_attempts",
        "int",
        "Login attempts a client (and, separately, the account) may make without delay. Every "
        "attempt is counted before the password is checked and forgiven on success; after "
        "these, attempt n waits 2^(n - free_attempts) seconds after the previous one (capped "
        "by login.max_delay_seconds): a throttled client is answered 429 at once, before any "
        "hashing; a throttled account's attempts are held (asyncio sleep) until their turn. "
        "Counts are forgotten after 15 minutes without an attempt.",
        LOOSEN_IF_HIGHER,
        "an integer from 1 to 100",
        minimum=1,
        maximum=100,
    ),
    Field(
        "login.max_delay_seconds",
        "int",
        "Longest delay login throttling imposes between two attempts of one client or on the "
        "account.",
        LOOSEN_IF_LOWER,
        "an integer from 1 to 3600",
        minimum=1,
        maximum=3600,
    ),
    # [sessions]
    Field(
        "sessions.idle_minutes",
        "int",
        "A login session (the cookie of a browser that logged in) ends after this many minutes "
        "without a request. JupyterLab polls the server while a tab is open, so this counts "
        "closed tabs and sleeping laptops.",
        LOOSEN_IF_HIGHER,
        "an integer from 1 to 10080",
        minimum=1,
        maximum=10080,
    ),
    Field(
        "sessions.lifetime_minutes",
        "int",
        "A login session ends this many minutes after the login, however active it is "
        "(absolute lifetime).",
        LOOSEN_IF_HIGHER,
        "an integer from 5 to 43200",
        minimum=5,
        maximum=43200,
    ),
    Field(
        "sessions.samesite",
        "enum",
        "SameSite of the session cookie. 'Lax' sends it on top-level navigations from other "
        "sites (a link to /lab works); 'Strict' never sends it cross-site (such a link lands "
        "on the login page).",
        LOOSEN_IF_CHANGED,
        choices=("Lax", "Strict"),
    ),
    # [nbconvert]
    Field(
        "nbconvert.sanitize_html",
        "bool",
        "Convert notebooks to HTML (GET and POST /nbconvert/..., slides included) with "
        "nbconvert's sanitize_html on: scripts, event handlers and javascript: URLs of the "
        "notebook's outputs and Markdown are removed from the document, for untrusted "
        "notebooks too. The nbconvert route class's sandbox CSP holds scripts in the browser "
        "either way; sanitising also covers a downloaded file opened from disk, where no CSP "
        "applies. Sets HTMLExporter.sanitize_html (a Jupyter config value that disagrees is "
        "overridden, with a warning). Applied at start-up.",
        LOOSEN_IF_FALSE,
        "true or false",
    ),
    # [terminals]
    Field(
        "terminals.enabled",
        "bool",
        "Allow terminals (a shell as the server's user over a websocket). Off: the terminal "
        "extension is not enabled and --ServerApp.terminals_enabled=True is refused.",
        LOOSEN_IF_TRUE,
        "true or false",
    ),
    # [limits]
    Field(
        "limits.max_body_bytes",
        "int",
        "Largest request body accepted, in bytes. A Content-Length above it is answered 413 "
        "as soon as the headers arrive, before any of the body is read; a chunked body is cut "
        "off when it grows past it. Stock jupyter_server buffers up to 512 MiB before "
        "authentication. Uploads through the contents API are chunked by JupyterLab (one "
        "request per chunk), so large files still upload.",
        LOOSEN_IF_HIGHER,
        "an integer from 65536 to 536870912",
        minimum=65536,
        maximum=536870912,
    ),
    Field(
        "limits.max_header_bytes",
        "int",
        "Largest total size of the request header fields, in bytes; more is answered 431. "
        "Header blocks beyond twice this size (plus limits.max_url_bytes) are not read at all: "
        "the connection is closed.",
        LOOSEN_IF_HIGHER,
        "an integer from 4096 to 1048576",
        minimum=4096,
        maximum=1048576,
    ),
    Field(
        "limits.max_url_bytes",
        "int",
        "Longest request target (path and query), in bytes; longer is answered 414.",
        LOOSEN_IF_HIGHER,
        "an integer from 1024 to 1048576",
        minimum=1024,
        maximum=1048576,
    ),
    Field(
        "limits.websocket_max_message_bytes",
        "int",
        "Largest websocket message a client may send (kernel channels, terminals, extension "
        "websockets); a larger one closes the connection.",
        LOOSEN_IF_HIGHER,
        "an integer from 65536 to 1073741824",
        minimum=65536,
        maximum=1073741824,
    ),
    Field(
        "limits.websocket_ping_interval_seconds",
        "int",
        "Seconds between the server's websocket pings; a peer that stops answering is "
        "closed (see limits.websocket_ping_timeout_seconds), so dead connections do not keep "
        "kernels' channels open.",
        LOOSEN_IF_HIGHER,
        "an integer from 1 to 3600",
        minimum=1,
        maximum=3600,
    ),
    Field(
        "limits.websocket_ping_timeout_seconds",
        "int",
        "Seconds without an answer to pings after which a websocket is closed.",
        LOOSEN_IF_HIGHER,
        "an integer from 1 to 86400",
        minimum=1,
        maximum=86400,
    ),
    Field(
        "limits.unauthenticated_requests_per_minute",
        "int",
        "Sustained rate of unauthenticated requests one client may make (a token bucket in "
        "memory, keyed by the client address the trusted-proxy rules believe; IPv6 clients by "
        "their /64). A request that presented credentials which failed (a wrong token or "
        "password, an invalid login cookie) costs 10. Over the limit: 429 with Retry-After. "
        "Authenticated requests are never limited.",
        LOOSEN_IF_HIGHER,
        "an integer from 1 to 1000000",
        minimum=1,
        maximum=1000000,
    ),
    Field(
        "limits.unauthenticated_burst",
        "int",
        "How many unauthenticated requests one client may make at once before "
        "limits.unauthenticated_requests_per_minute applies (the bucket's size).",
        LOOSEN_IF_HIGHER,
        "an integer from 10 to 1000000",
        minimum=10,
        maximum=1000000,
    ),
    # [headers]
    Field(
        "headers.referrer_policy",
        "enum",
        "Referrer-Policy on every response.",
        LOOSEN_IF_CHANGED,
        choices=_REFERRER,
    ),
    Field(
        "headers.x_frame_options",
        "enum",
        "X-Frame-Options for browsers that ignore CSP frame-ancestors.",
        LOOSEN_IF_CHANGED,
        choices=("DENY", "SAMEORIGIN"),
    ),
    Field(
        "headers.cross_origin_opener_policy",
        "enum",
        "Cross-Origin-Opener-Policy on every response.",
        LOOSEN_IF_CHANGED,
        choices=("same-origin", "same-origin-allow-popups", "unsafe-none"),
    ),
    Field(
        "headers.cross_origin_resource_policy",
        "enum",
        "Cross-Origin-Resource-Policy on every response (stops cross-site <script>/<img> "
        "inclusion of our responses).",
        LOOSEN_IF_CHANGED,
        choices=("same-origin", "same-site", "cross-origin"),
    ),
    Field(
        "headers.permissions_policy",
        "str",
        "Permissions-Policy on every response: powerful browser features denied.",
        LOOSEN_IF_CHANGED,
        "a Permissions-Policy header value",
        item=_header_text,
    ),
    Field(
        "headers.hsts_max_age",
        "int",
        "Strict-Transport-Security max-age in seconds, sent when the request arrived over TLS "
        "(directly or through a trusted proxy). 0 sends no HSTS.",
        LOOSEN_IF_LOWER,
        "an integer from 0 to 63072000",
        minimum=0,
        maximum=63072000,
    ),
    Field(
        "headers.hsts_include_subdomains",
        "bool",
        "Add includeSubDomains to Strict-Transport-Security.",
        LOOSEN_IF_FALSE,
        "true or false",
    ),
    Field(
        "headers.csp_template_hashes",
        "bool",
        "Allow the inline scripts of the installed front-end templates (jupyter_server, "
        "JupyterLab, Notebook 7) by their SHA-256 hash, computed at start-up from the template "
        "files: the one inline script of those pages runs, an injected one does not. Off: "
        "those scripts are blocked (they only remove ?token= from the address bar, which the "
        "server already does with a redirect).",
        LOOSEN_IF_TRUE,
        "true or false",
    ),
    Field(
        "headers.csp_report",
        "bool",
        "Add report-uri <base_url>api/security/csp-report to every CSP.",
        LOOSEN_IF_CHANGED,
        "true or false",
    ),
    # [audit]
    Field(
        "audit.enabled",
        "bool",
        "Write the audit trail: one hash-chained JSON-lines record per policy denial and per "
        "sensitive allow (log-in, token, file write/rename/delete, kernel start, terminal, "
        "policy load). Off: no audit file (records still go to the log line, the EventLogger "
        "and /metrics), so nothing tamper-evident is left behind.",
        LOOSEN_IF_FALSE,
        "true or false",
    ),
    Field(
        "audit.file",
        "str",
        'The audit file (rotated files get .000001, .000002, ... appended). "": '
        "hardened-server-audit-<port>.jsonl in the Jupyter runtime directory. A file the "
        "contents API could reach (inside the served root, under no paths.deny glob) is "
        "refused at start-up.",
        LOOSEN_IF_CHANGED,
        'an absolute path (or starting with ~), or "" for the default',
        item=_audit_file,
    ),
    Field(
        "audit.fsync",
        "str",
        "When the audit file is fsynced: 'always' (after every record: survives power loss), "
        "'interval:<seconds>' (at most that many seconds of records lost on power loss), "
        "'never' (the kernel decides). A killed process loses no written record in any mode: "
        "each record is one write on an O_APPEND descriptor.",
        LOOSEN_IF_CHANGED,
        "'always', 'never' or 'interval:<seconds>'",
        item=_fsync_spec,
    ),
    Field(
        "audit.max_bytes",
        "int",
        "Size at which the audit file is rotated (renamed with a numeric suffix); the chain "
        "continues across files (the first record of a new file names the last one's hash).",
        LOOSEN_IF_CHANGED,
        "an integer from 65536 to 1099511627776",
        minimum=65536,
        maximum=1 << 40,
    ),
    Field(
        "audit.signing_key",
        "str",
        "Ed25519 private key (PEM, PKCS#8, unencrypted, readable by the server only) for signed "
        "checkpoints: without it, whoever can write the audit file can rewrite its tail "
        'undetected. "": no signatures.',
        LOOSEN_IF_CHANGED,
        'an absolute path (or starting with ~), or "" for none',
        item=_audit_file,
    ),
    Field(
        "audit.checkpoint_every",
        "int",
        "Records between two signed checkpoints (with audit.signing_key); a checkpoint is also "
        "written at rotation and at shutdown.",
        LOOSEN_IF_HIGHER,
        "an integer from 1 to 1000000",
        minimum=1,
        maximum=1000000,
    ),
    Field(
        "audit.stdout",
        "bool",
        "Also write every chain line to standard output (one JSON object per line) for a "
        "container log collector: an off-host copy of every record's hash.",
        LOOSEN_IF_CHANGED,
        "true or false",
    ),
    Field(
        "audit.fail_closed",
        "bool",
        "When an audit record cannot be written (disk full, file removed), refuse the request "
        "that needed it with 503 instead of carrying on unrecorded. Denials stay denials "
        "either way.",
        LOOSEN_IF_FALSE,
        "true or false",
    ),
]

for _rc in ROUTE_CLASSES:
    FIELDS_LIST.append(
        Field(
            f"headers.cache_control.{_rc}",
            "str",
            f"Cache-Control forced on responses of the '{_rc}' route class; an empty string "
            "leaves the handler's own value.",
            LOOSEN_IF_CHANGED,
            'a Cache-Control header value, or ""',
            item=_header_text,
            group="headers.cache_control",
        )
    )

for _rc in ROUTE_CLASSES:
    for _directive in csp.DIRECTIVES:
        FIELDS_LIST.append(
            Field(
                f"csp.{_rc}.{_directive}",
                "directive",
                f"CSP directive {_directive} for the '{_rc}' route class.",
                LOOSEN_IF_CHANGED,
                "a list of CSP source tokens; false removes the directive; "
                "true only for upgrade-insecure-requests",
                group=f"csp.{_rc}",
            )
        )

FIELDS: dict[str, Field] = {f.key: f for f in FIELDS_LIST}
# Every table a policy file may contain (so that "csp" and "csp.page" are walked, not rejected).
TABLES: frozenset[str] = frozenset(
    ".".join(key.split(".")[:i]) for key in FIELDS for i in range(1, key.count(".") + 1)
)


def validate_value(field: Field, value: Any) -> Any:
    """Return the normalised value for ``field`` or raise ``ItemError`` saying what is wrong."""
    kind = field.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ItemError(f"expected true or false, got {type(value).__name__}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ItemError(f"expected an integer, got {type(value).__name__}")
        if field.minimum is not None and value < field.minimum:
            raise ItemError(f"{value} is below the minimum {field.minimum}")
        if field.maximum is not None and value > field.maximum:
            raise ItemError(f"{value} is above the maximum {field.maximum}")
        return value
    if kind == "enum":
        if value not in field.choices:
            raise ItemError("not one of the allowed values")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ItemError(f"expected a string, got {type(value).__name__}")
        return field.item(value) if field.item else value
    if kind == "list":
        if not isinstance(value, list):
            raise ItemError(f"expected a list of strings, got {type(value).__name__}")
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ItemError(f"item [{i}] is {type(item).__name__}, expected a string")
            try:
                norm = field.item(item) if field.item else item
            except ItemError as exc:
                raise ItemError(f"item [{i}] {item!r}: {exc}") from None
            if norm not in out:
                out.append(norm)
        return tuple(out)
    if kind == "routemap":
        return _route_scopes(value)
    if kind == "directive":
        directive = field.key.rsplit(".", 1)[1]
        if value is False:
            return None
        if value is True:
            if directive not in csp.VALUELESS:
                raise ItemError("true is only meaningful for upgrade-insecure-requests")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ItemError("expected a list of source strings, or false to remove it")
        try:
            csp.make_policy({directive: value})
        except csp.CSPError as exc:
            raise ItemError(str(exc)) from None
        return tuple(dict.fromkeys(value))
    raise AssertionError(f"unknown field kind {kind}")  # pragma: no cover


def describe_allowed(field: Field) -> str:
    if field.choices:
        return ", ".join(repr(c) for c in field.choices)
    return field.allowed


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a policy *file*: every key optional, none unknown."""

    def leaf(field: Field) -> dict[str, Any]:
        doc = {"description": field.doc}
        if field.kind == "bool":
            return {**doc, "type": "boolean"}
        if field.kind == "int":
            out: dict[str, Any] = {**doc, "type": "integer"}
            if field.minimum is not None:
                out["minimum"] = field.minimum
            if field.maximum is not None:
                out["maximum"] = field.maximum
            return out
        if field.kind == "enum":
            return {**doc, "enum": list(field.choices)}
        if field.kind == "str":
            return {**doc, "type": "string"}
        if field.kind == "list":
            # no uniqueItems: the loader folds duplicates (after normalisation) instead
            return {**doc, "type": "array", "items": {"type": "string"}}
        if field.kind == "directive":
            sources = {"type": "array", "items": {"type": "string"}}
            return {**doc, "oneOf": [{"type": "boolean"}, sources]}
        if field.kind == "routemap":
            scope = {"enum": list(SCOPES)}
            methods = {
                "type": "object",
                "propertyNames": {"enum": [*METHODS, ANY_METHOD]},
                "additionalProperties": {
                    "oneOf": [scope, {"type": "array", "items": scope}]
                },
            }
            return {**doc, "type": "object", "additionalProperties": methods}
        raise AssertionError(field.kind)  # pragma: no cover

    root: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    for field in FIELDS_LIST:
        node = root
        *tables, name = field.key.split(".")
        for table in tables:
            node = node["properties"].setdefault(
                table, {"type": "object", "properties": {}, "additionalProperties": False}
            )
        node["properties"][name] = leaf(field)
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    root["$id"] = "https://hardened-server.invalid/schema/policy/v1"
    root["title"] = "hardened-server policy file"
    return root
