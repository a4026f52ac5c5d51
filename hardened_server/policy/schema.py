"""Every policy key: its type, what values it accepts, what it means, which way loosens it, and
whether a reload can apply it. This module is the one place a key is declared.

Each ``[section]`` of a policy file is a frozen dataclass below (``ServerPolicy`` ...
``AuditPolicy``), and each of its attributes *is* the declaration of one key: the annotation is
the type the rest of the code reads (``policy.server.public_hostnames``), the :func:`key` call
says everything else. From these classes come, with nothing to keep in step by hand:

- :data:`FIELDS` (``"section.key"`` -> :class:`Field`): validation in the loader, the JSON Schema
  export (``policy schema``), the generated reference (``policy reference`` ->
  ``docs/policy-reference.md``) and ``policy explain``;
- the typed model (:class:`hardened_server.policy.model.Policy` holds one instance per section;
  the loader builds every section from :data:`SCHEMA` generically);
- the keys a live reload cannot apply (:attr:`Schema.restart_only`, read by
  :mod:`hardened_server.policy.reload`).

Adding a key: one attribute here, its value in ``policies/default.toml`` (which sets every key,
so what a server does with no ``--policy`` is reviewable as a file), the code that reads it and
its test; then regenerate the reference. ``tests/policy/test_schema.py`` adds a key in-test and
follows it through the loader, the model, the reference and the restart-only set.

Values themselves are not here: the shipped default profile holds them, and code that needs a
default with no policy at hand asks :func:`hardened_server.policy.loader.shipped_policy`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from hardened_server.policy import csp
from hardened_server.policy.activity import TEXT_MODES
from hardened_server.policy.cors import DEFAULT_ALLOW_METHODS, compile_cors
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.fsync import FsyncPolicy
from hardened_server.policy.origins import normalize_hostname, normalize_origin
from hardened_server.policy.rules import Rule
from hardened_server.policy.scopemap import ANY_METHOD, METHODS
from hardened_server.policy.scopes import KNOWN_SCOPES, SCOPES


class Kind(StrEnum):
    """What a key's value is (and how the loader validates it)."""

    BOOL = "bool"
    INT = "int"
    STR = "str"  # free text, checked by the key's item validator
    ENUM = "enum"  # one of Field.choices
    LIST = "list"  # of strings, each checked (and normalised) by the item validator
    DIRECTIVE = "directive"  # a CSP directive: a list of sources, or false to remove it
    ROUTEMAP = "routemap"  # scopes.routes: {pattern = {METHOD = scope | [scopes]}}
    SCOPETABLE = "scopetable"  # identity.users / identity.groups: {name = [scopes]}


class Loosen(StrEnum):
    """How a change of value relates to the shipped default (rule 5: every loosening is
    visible in ``policy explain`` and the audit)."""

    IF_TRUE = "true"  # bool: true is looser
    IF_FALSE = "false"  # bool: false is looser
    IF_GROWS = "grows"  # list: an added entry is looser
    IF_SHRINKS = "shrinks"  # list: a removed entry is looser
    IF_HIGHER = "higher"  # int: a higher number is looser
    IF_LOWER = "lower"  # int: a lower number is looser
    IF_CHANGED = "changed"  # anything else: any change may loosen; review it
    NEVER = "never"  # a switch that can only take something away (an extension profile off)
    # scopes.routes: every entry opens a route the default refuses (a change to review); an
    # entry that needs no scope at all for some method is a loosening.
    IF_UNSCOPED = "unscoped"


class ItemError(ValueError):
    """An item of a value is not acceptable; the message says why."""


@dataclass(frozen=True)
class Field:
    """One key of the table, as :data:`FIELDS` lists it."""

    key: str
    kind: Kind
    doc: str
    loosen: Loosen = Loosen.IF_CHANGED
    allowed: str = ""  # human description of the allowed values
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    item: Callable[[str], str] | None = None  # validates (and may normalise) one string
    json_pattern: str | None = None
    group: str = ""  # fields documented together in the reference (csp directives)
    restart: str = ""  # non-empty: a reload cannot apply a change (this says why)


@dataclass(frozen=True)
class _Spec:
    """What :func:`key` records on a section attribute (its ``dataclasses.Field`` metadata)."""

    kind: Kind
    doc: str
    loosen: Loosen
    allowed: str
    choices: tuple[str, ...]
    minimum: int | None
    maximum: int | None
    item: Callable[[str], str] | None
    restart: str
    per_route_class: bool


_SPEC = "hardened_server.policy.schema"


def key(
    kind: Kind,
    doc: str,
    loosen: Loosen = Loosen.IF_CHANGED,
    allowed: str = "",
    *,
    choices: tuple[str, ...] = (),
    minimum: int | None = None,
    maximum: int | None = None,
    item: Callable[[str], str] | None = None,
    restart: str = "",
    per_route_class: bool = False,
) -> Any:
    """Declare the section attribute it is assigned to as a policy key.

    ``restart``: why a reload cannot apply a change (the reload is then refused as a whole).
    ``per_route_class``: one key per route class (``section.name.<class>``, documented as one
    group; ``{route_class}`` in ``doc`` names the class), read as a mapping class -> value.

    Returns a ``dataclasses.field`` with no default (every key is set by the default profile):
    typed ``Any`` so that the attribute keeps its annotation for a type checker.
    """
    spec = _Spec(
        kind, doc, loosen, allowed, choices, minimum, maximum, item, restart, per_route_class
    )
    return dataclasses.field(metadata={_SPEC: spec})


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


def _extension_name(value: str) -> str:
    # A server extension's module name as ServerApp.jpserver_extensions lists it.
    if not value or not all(part.isidentifier() for part in value.split(".")):
        raise ItemError("a server extension module name such as jupyter_server_proxy")
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


def _scope_table(value: Any) -> dict[str, tuple[str, ...]]:
    """identity.users / identity.groups: ``{name = ["scope", ...]}``, normalised to sorted
    tuples (an empty list grants nothing, like a name not listed)."""
    if not isinstance(value, dict):
        raise ItemError(
            f"expected a table of names, got {type(value).__name__}; "
            'e.g. identity.users = { alice = ["contents:read", "kernels:execute"] }'
        )
    out: dict[str, tuple[str, ...]] = {}
    for name in sorted(value):
        if not name or not name.isprintable() or len(name) > 256:
            raise ItemError(f"name {name!r}: a printable name of 1 to 256 characters")
        scopes = value[name]
        # a tuple too: an effective value (already normalised) may be layered again
        if not isinstance(scopes, list | tuple) or not all(isinstance(i, str) for i in scopes):
            raise ItemError(f"{name!r}: expected a list of scope names")
        unknown = [i for i in scopes if i not in KNOWN_SCOPES]
        if unknown:
            raise ItemError(
                f"{name!r}: unknown scope {unknown[0]!r} (one of " + ", ".join(SCOPES) + ")"
            )
        out[name] = tuple(sorted(set(scopes)))
    return out


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


#: The audit sinks ``audit.require`` may name (trail/writer.py, trail/syslog.py).
AUDIT_SINKS: tuple[str, ...] = ("file", "stdout", "syslog")


def _audit_sink(value: str) -> str:
    if value not in AUDIT_SINKS:
        raise ItemError("one of " + ", ".join(AUDIT_SINKS))
    return value


def _syslog_address(value: str) -> str:
    """``host:port`` or ``[v6]:port`` of a syslog collector (TCP), or "" for none."""
    if value == "":
        return value
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if (
        not sep
        or not host
        or not port.isdigit()
        or not 0 < int(port) < 65536
        or not host.isascii()
        or any(ch.isspace() or ch in "/@?#" for ch in host)
    ):
        raise ItemError('host:port of a syslog collector (TCP), e.g. "127.0.0.1:6514"')
    return value


def _fsync_spec(value: str) -> str:
    try:
        FsyncPolicy.parse(value)
    except ValueError:
        raise ItemError("'always', 'never' or 'interval:<seconds>' (e.g. interval:1)") from None
    return value


# ---------------------------------------------------------------------------------------------
# The sections: one attribute per key.

_REFERRER = (
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
)


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    """The ``[server]`` table."""

    public_hostnames: tuple[str, ...] = key(
        Kind.LIST,
        "Host names (besides loopback names and addresses) that may appear in the Host header. "
        "Always checked, whatever address the server binds to: a foreign Host gets 403 "
        "(DNS rebinding).",
        Loosen.IF_GROWS,
        "DNS names or IP addresses, no scheme, port or wildcard",
        item=_hostname,
    )

    trusted_proxies: tuple[str, ...] = key(
        Kind.LIST,
        "Networks of reverse proxies whose X-Forwarded-*/Forwarded headers are believed. From "
        "any other peer those headers are ignored.",
        Loosen.IF_GROWS,
        "CIDR networks such as 10.0.0.0/8 or 127.0.0.1/32",
        item=_cidr,
    )

    client_header: str = key(
        Kind.ENUM,
        "The one forwarding header that names the client when the peer is a trusted proxy: "
        "'x-forwarded-for' (nginx, configurable-http-proxy, Caddy, Traefik; walked from the "
        "right, the right-most untrusted hop is the client), 'forwarded' (RFC 7239, walked the "
        "same way) or 'x-real-ip' (only if every trusted proxy overwrites it: CHP and Caddy "
        "pass a client's X-Real-IP through). The others are never read. Scheme and host come "
        "from the same hop (X-Forwarded-Proto/-Host, or proto=/host= of Forwarded).",
        Loosen.IF_CHANGED,
        choices=("x-forwarded-for", "forwarded", "x-real-ip"),
    )

    allow_insecure_remote: bool = key(
        Kind.BOOL,
        "Allow binding to a non-loopback address with neither TLS (--certfile/--keyfile) nor "
        "server.trusted_proxies. Off: such a start-up is refused, because tokens and cookies "
        "would cross the network in clear.",
        Loosen.IF_TRUE,
        "true or false",
    )


@dataclass(frozen=True, slots=True)
class RoutesPolicy:
    """The ``[routes]`` table."""

    public: tuple[str, ...] = key(
        Kind.LIST,
        "Route patterns (tornado regular expressions as registered, relative to base_url) that "
        "may be reached without authentication. Every other route requires a logged-in user, "
        "whatever its handler's decorators say; an undecorated handler method on a route not "
        "listed here stops the server at start-up.",
        Loosen.IF_GROWS,
        'regular expressions starting with \'/\', e.g. "/login" or "/static/(.*)"',
        item=_route_pattern,
    )

    accept_undecorated: tuple[str, ...] = key(
        Kind.LIST,
        "Route patterns whose handler methods carry no authentication decorator but were "
        "reviewed and authenticate in their own code. The start-up check accepts them; the "
        "policy's login gate still applies (they are not public unless routes.public lists "
        "them).",
        Loosen.IF_GROWS,
        "regular expressions starting with '/', exactly as the start-up error prints them",
        item=_route_pattern,
    )

    unsafe_eval: tuple[str, ...] = key(
        Kind.LIST,
        "Page routes (patterns as registered) that get 'unsafe-eval' in script-src, for a "
        "front-end that turns strings into code (eval, new Function). A loosening: the shipped "
        "default lists none, since JupyterLab 4 and Notebook 7 run without it (the package's "
        "labextension validates settings without code generation); the audit reports every "
        "route listed (HS-CSP-103, HS-CSP-204). Every page not listed gets the page CSP "
        "without it.",
        Loosen.IF_GROWS,
        "regular expressions starting with '/', exactly as `hardened-server audit --routes` "
        "prints them",
        item=_route_pattern,
    )

    script_nonce: tuple[str, ...] = key(
        Kind.LIST,
        "Page routes (patterns as registered) whose responses carry a fresh, unguessable nonce "
        "in script-src (a new one for every response, in that response's header only). The "
        "inline scripts the server's own templates mark with it run; every other inline "
        "script, a notebook output's or an injected one, stays blocked. For front-ends whose "
        "inline scripts carry per-request values, so that no hash can allow them (Voila: "
        "policies/voila.toml). Empty: no page gets a nonce.",
        Loosen.IF_GROWS,
        "regular expressions starting with '/', exactly as `hardened-server audit --routes` "
        "prints them",
        item=_route_pattern,
    )


@dataclass(frozen=True, slots=True)
class ScopesPolicy:
    """The ``[scopes]`` table."""

    routes: Mapping[str, Mapping[str, tuple[str, ...]]] = key(
        Kind.ROUTEMAP,
        "Scopes required by routes the built-in route map does not know (extension routes), "
        "or a stricter requirement for one it does. Keys are route patterns as registered "
        "(relative to base_url, exactly as the start-up warning and `hardened-server audit "
        '--routes` print them); values map an HTTP method (or "*" for every method not '
        "listed; HEAD follows GET) to a scope or a list of scopes that are all needed. A route "
        f"no table maps is refused (403, {Rule.SCOPE_UNMAPPED}) for every user. An empty list "
        "lets any logged-in user through with no scope: a loosening. For handlers that also call "
        "jupyter_server's Authorizer (@authorized), both checks apply, so an entry can only "
        "tighten those.",
        Loosen.IF_UNSCOPED,
        'a table such as { "/hello/(.*)" = { GET = "contents:read", POST = '
        '["contents:write", "kernels:execute"] } }; scopes: ' + ", ".join(SCOPES),
    )

    client_event_schemas: tuple[str, ...] = key(
        Kind.LIST,
        "Event schema ids a client may emit with POST /api/events (with the events:write "
        "scope). Any other schema id, the server's own (contents, kernel actions, the audit "
        f"trail) included, is refused with 403 ({Rule.SCOPE_EVENT_SCHEMA}). JupyterLab and "
        "Notebook 7 emit none by themselves.",
        Loosen.IF_GROWS,
        'schema id URIs, e.g. "https://events.example.org/my-extension/click/v1"',
        item=_event_schema_id,
    )

    disabled_extension_profiles: tuple[str, ...] = key(
        Kind.LIST,
        "Server extensions whose shipped extension profile is not applied. A profile "
        "(policies/extensions/<extension>.toml in the package) is a reviewed policy layer that "
        "maps exactly the routes that extension registers to the scopes they need and accepts "
        "its reviewed self-authenticating handlers; it is applied, between the default profile "
        "and the --policy files, when the extension is installed and enabled as a server "
        "extension. It only declares what routes need: turning one off only leaves those "
        f"routes refused ({Rule.SCOPE_UNMAPPED}) until scopes.routes maps them, never loosens "
        "anything.",
        Loosen.NEVER,
        "server extension module names with a shipped profile, as `hardened-server policy "
        "show` lists them (e.g. jupyter_server_proxy)",
        item=_extension_name,
    )


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """The ``[cors]`` table."""

    allow_origins: tuple[str, ...] = key(
        Kind.LIST,
        "Origins allowed to make cross-origin requests (Access-Control-Allow-Origin is sent "
        "only for these, compared exactly after normalisation). Never '*'. 'null' only if "
        "listed.",
        Loosen.IF_GROWS,
        "origins of the form https://host[:port] or http://host[:port], or null",
        item=_origin,
    )

    allow_credentials: bool = key(
        Kind.BOOL,
        "Send Access-Control-Allow-Credentials: true to listed origins (cookies cross origins).",
        Loosen.IF_TRUE,
        "true or false",
    )

    allow_origin_patterns: tuple[str, ...] = key(
        Kind.LIST,
        "Regular expressions an origin must match in full (after normalisation, so "
        "https://A.example.com:443 is matched as https://a.example.com) to be treated like a "
        "listed origin. Each must start with a literal https:// or http:// and must not match "
        "a canary origin (too broad). Every entry is a loosening; prefer cors.allow_origins.",
        Loosen.IF_GROWS,
        "full-match regular expressions starting with https:// or http://, "
        'e.g. "https://[a-z0-9-]+\\\\.dashboards\\\\.example\\\\.org"',
        item=_origin_pattern,
    )

    allow_methods: tuple[str, ...] = key(
        Kind.LIST,
        "Methods a listed origin may use cross-origin (Access-Control-Allow-Methods of a "
        "preflight answer; other methods get no CORS headers).",
        Loosen.IF_GROWS,
        "any of " + ", ".join(DEFAULT_ALLOW_METHODS),
        item=_cors_method,
    )

    allow_headers: tuple[str, ...] = key(
        Kind.LIST,
        "Request headers a listed origin may send (Access-Control-Allow-Headers of a preflight "
        "answer, lower-case); the CORS-safelisted ones are always allowed. Never '*'.",
        Loosen.IF_GROWS,
        'HTTP header names, e.g. "authorization", "content-type", "x-xsrftoken"',
        item=_cors_header,
    )

    max_age: int = key(
        Kind.INT,
        "Seconds a browser may cache a preflight answer (Access-Control-Max-Age). A longer "
        "cache keeps a removed origin's access alive longer.",
        Loosen.IF_HIGHER,
        "an integer from 0 to 86400",
        minimum=0,
        maximum=86400,
    )


@dataclass(frozen=True, slots=True)
class PathsPolicy:
    """The ``[paths]`` table."""

    allow_hidden: bool = key(
        Kind.BOOL,
        "Allow access to hidden files and directories (names starting with '.'). paths.deny "
        "holds even when this is true.",
        Loosen.IF_TRUE,
        "true or false",
    )

    deny: tuple[str, ...] = key(
        Kind.LIST,
        "Globs (relative to the served root, '**' for any depth) that are never served, listed, "
        "written or renamed, hidden files allowed or not.",
        Loosen.IF_SHRINKS,
        "globs with '/' separators, relative to the root",
        item=_path_glob,
    )

    protected: tuple[str, ...] = key(
        Kind.LIST,
        "Globs of execution-persistence and secret paths (IPython profiles, Jupyter config, data "
        "and runtime folders, shell and Python start-up files, git hooks and config, .ssh, "
        "autostart folders): never served, listed, written or renamed through the contents "
        "API, whatever paths.allow_hidden and paths.allow say. Extend it; `audit` reports a "
        "removed shipped entry as an error (HS-PATH-108).",
        Loosen.IF_SHRINKS,
        "globs with '/' separators, relative to the root",
        item=_path_glob,
    )

    allow: tuple[str, ...] = key(
        Kind.LIST,
        'Exceptions to the hidden-file rule (never to paths.deny), e.g. ".jupyter/lab/**".',
        Loosen.IF_GROWS,
        "globs with '/' separators, relative to the root",
        item=_path_glob,
    )


@dataclass(frozen=True, slots=True)
class TokensPolicy:
    """The ``[tokens]`` table."""

    url_tokens: str = key(
        Kind.ENUM,
        "Whether a ?token= in a URL is accepted: 'navigation-exchange' accepts it only on a "
        "top-level page navigation, exchanges it for a session and redirects to the same URL "
        "without it; 'never' refuses URL tokens entirely.",
        Loosen.IF_CHANGED,
        choices=("navigation-exchange", "never"),
    )

    websocket_url_tokens: str = key(
        Kind.ENUM,
        "Whether a websocket handshake may carry its token in the URL (?token=), as "
        "jupyter_kernel_client and @jupyterlab/services in Node send it: 'never' refuses it "
        "(the 403 says to send 'Authorization: token ...'); 'stored-scoped' accepts a stored, "
        "scoped token (hst_...) there, on websocket handshakes only, never the owner's "
        "start-up token. A URL ends up in proxy and server logs: prefer the header.",
        Loosen.IF_CHANGED,
        choices=("never", "stored-scoped"),
    )

    min_entropy_bits: int = key(
        Kind.INT,
        "Least estimated entropy of a configured token (JUPYTER_TOKEN, token file or config); "
        "a weaker token stops the server at start-up.",
        Loosen.IF_LOWER,
        "an integer from 128 to 512",
        minimum=128,
        maximum=512,
    )

    owner_scopes: tuple[str, ...] = key(
        Kind.LIST,
        "Scopes of the server's owner: whoever holds the start-up token (JUPYTER_TOKEN, the "
        "token file or the generated one in the login URL) or the password, and their "
        "sessions. 'admin' implies every scope but 'audit:read'. Stored tokens "
        "(`hardened-server token create`) carry their own scopes.",
        Loosen.IF_GROWS,
        "scope names: " + ", ".join(SCOPES),
        item=_scope,
    )

    store_file: str = key(
        Kind.STR,
        "The token store (hashes of the tokens `hardened-server token create` makes, mode "
        "0600). Empty: hardened-server-tokens.json in the Jupyter runtime directory. The "
        "contents API must not reach it: outside the served root or under a paths.deny glob "
        "(refused at start-up otherwise). The serve option "
        "--token-store and the token commands' --store override it.",
        Loosen.IF_CHANGED,
        'an absolute path (printable ASCII), or ""',
        item=_abs_path_or_empty,
    )


#: identity.site_provider's values.
SITE_PROVIDER_REFUSE = "refuse"
SITE_PROVIDER_OWNER = "owner"
SITE_PROVIDER_MAPPED = "mapped"


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """The ``[identity]`` table: scopes of users authenticated by a site's own identity provider
    (``ServerApp.identity_provider_class`` other than hardened-server's)."""

    site_provider: str = key(
        Kind.ENUM,
        "What users authenticated by a site's own identity provider (ServerApp."
        "identity_provider_class, e.g. stock PasswordIdentityProvider or one that trusts an "
        "authenticating proxy) may do. 'refuse': such a provider stops the server at start-up "
        "(a start-up refusal), since the policy would give its users no scope and every request "
        "would be a 403. 'owner': a single-user provider; whoever it authenticates gets "
        "tokens.owner_scopes. 'mapped': a multi-user provider; a user gets the scopes "
        "identity.users lists for its name plus those identity.groups lists for each of its "
        "groups (the User's `groups` attribute, if the provider sets one), like JupyterHub's "
        "roles; a user in neither gets none (403 on every scoped route, each recorded).",
        Loosen.IF_CHANGED,
        choices=(SITE_PROVIDER_REFUSE, SITE_PROVIDER_OWNER, SITE_PROVIDER_MAPPED),
        restart="the identity provider is built at start-up",
    )

    users: Mapping[str, tuple[str, ...]] = key(
        Kind.SCOPETABLE,
        "With identity.site_provider = 'mapped': user name -> the scopes that user gets. A "
        "later policy layer replaces the whole table.",
        Loosen.IF_GROWS,
        'a table such as { alice = ["contents:read", "kernels:execute"] }; scopes: '
        + ", ".join(SCOPES),
    )

    groups: Mapping[str, tuple[str, ...]] = key(
        Kind.SCOPETABLE,
        "With identity.site_provider = 'mapped': group name -> the scopes every member gets "
        "(added to the user's own). A later policy layer replaces the whole table.",
        Loosen.IF_GROWS,
        'a table such as { analysts = ["contents:read"] }; scopes: ' + ", ".join(SCOPES),
    )


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """The ``[login]`` table."""

    free_attempts: int = key(
        Kind.INT,
        "Login attempts a client (and, separately, the account) may make without delay. Every "
        "attempt is counted before the password is checked and forgiven on success; after "
        "these, attempt n waits 2^(n - free_attempts) seconds after the previous one (capped "
        "by login.max_delay_seconds): a throttled client is answered 429 at once, before any "
        "hashing; a throttled account's attempts are held (asyncio sleep) until their turn. "
        "Counts are forgotten after 15 minutes without an attempt.",
        Loosen.IF_HIGHER,
        "an integer from 1 to 100",
        minimum=1,
        maximum=100,
    )

    max_delay_seconds: int = key(
        Kind.INT,
        "Longest delay login throttling imposes between two attempts of one client or on the "
        "account.",
        Loosen.IF_LOWER,
        "an integer from 1 to 3600",
        minimum=1,
        maximum=3600,
    )


@dataclass(frozen=True, slots=True)
class SessionsPolicy:
    """The ``[sessions]`` table."""

    idle_minutes: int = key(
        Kind.INT,
        "A login session (the cookie of a browser that logged in) ends after this many minutes "
        "without a request. JupyterLab polls the server while a tab is open, so this counts "
        "closed tabs and sleeping laptops.",
        Loosen.IF_HIGHER,
        "an integer from 1 to 10080",
        minimum=1,
        maximum=10080,
    )

    lifetime_minutes: int = key(
        Kind.INT,
        "A login session ends this many minutes after the login, however active it is "
        "(absolute lifetime).",
        Loosen.IF_HIGHER,
        "an integer from 5 to 43200",
        minimum=5,
        maximum=43200,
    )

    samesite: str = key(
        Kind.ENUM,
        "SameSite of the session cookie. 'Lax' sends it on top-level navigations from other "
        "sites (a link to /lab works); 'Strict' never sends it cross-site (such a link lands "
        "on the login page).",
        Loosen.IF_CHANGED,
        choices=("Lax", "Strict"),
    )


@dataclass(frozen=True, slots=True)
class NbconvertPolicy:
    """The ``[nbconvert]`` table."""

    sanitize_html: bool = key(
        Kind.BOOL,
        "Convert notebooks to HTML (GET and POST /nbconvert/..., slides included) with "
        "nbconvert's sanitize_html on: scripts, event handlers and javascript: URLs of the "
        "notebook's outputs and Markdown are removed from the document, for untrusted "
        "notebooks too. The nbconvert route class's sandbox CSP holds scripts in the browser "
        "either way; sanitising also covers a downloaded file opened from disk, where no CSP "
        "applies. Sets HTMLExporter.sanitize_html (a Jupyter config value that disagrees is "
        "overridden, with a warning). Applied at start-up.",
        Loosen.IF_FALSE,
        "true or false",
        restart="the exporters' configuration is set at start-up",
    )


@dataclass(frozen=True, slots=True)
class TerminalsPolicy:
    """The ``[terminals]`` table."""

    enabled: bool = key(
        Kind.BOOL,
        "Allow terminals (a shell as the server's user over a websocket). Off: the terminal "
        "extension is not enabled and --ServerApp.terminals_enabled=True is refused.",
        Loosen.IF_TRUE,
        "true or false",
        restart="the terminal routes are registered (or not) at start-up",
    )


@dataclass(frozen=True, slots=True)
class LimitsPolicy:
    """The ``[limits]`` table."""

    max_body_bytes: int = key(
        Kind.INT,
        "Largest request body accepted, in bytes. A Content-Length above it is answered 413 "
        "as soon as the headers arrive, before any of the body is read; a chunked body is cut "
        "off when it grows past it. Stock jupyter_server buffers up to 512 MiB before "
        "authentication. Uploads through the contents API are chunked by JupyterLab (one "
        "request per chunk), so large files still upload.",
        Loosen.IF_HIGHER,
        "an integer from 65536 to 536870912",
        restart="tornado's connection body limit is set when the server starts",
        minimum=65536,
        maximum=536870912,
    )

    anonymous_body_bytes: int = key(
        Kind.INT,
        "Largest request body accepted from a request that carries no credential (no "
        "Authorization header, no signed login cookie), and from every login form POST, in "
        "bytes. A Content-Length above it is answered 413 as soon as the headers "
        "arrive, before any of the body is read; a chunked body is cut off (400) when it grows "
        "past it. Anonymous bodies are read into memory before authentication decides: "
        "limits.max_body_bytes for them would let any client make the server buffer 64 MiB "
        "per request. Capped by limits.max_body_bytes.",
        Loosen.IF_HIGHER,
        "an integer from 4096 to 536870912",
        minimum=4096,
        maximum=536870912,
    )

    max_header_bytes: int = key(
        Kind.INT,
        "Largest total size of the request header fields, in bytes; more is answered 431. "
        "Header blocks beyond twice this size (plus limits.max_url_bytes) are not read at all: "
        "the connection is closed.",
        Loosen.IF_HIGHER,
        "an integer from 4096 to 1048576",
        restart="tornado's header buffer is sized when the server starts",
        minimum=4096,
        maximum=1048576,
    )

    max_url_bytes: int = key(
        Kind.INT,
        "Longest request target (path and query), in bytes; longer is answered 414.",
        Loosen.IF_HIGHER,
        "an integer from 1024 to 1048576",
        restart="tornado's header buffer is sized when the server starts",
        minimum=1024,
        maximum=1048576,
    )

    websocket_max_message_bytes: int = key(
        Kind.INT,
        "Largest websocket message a client may send (kernel channels, terminals, extension "
        "websockets); a larger one closes the connection.",
        Loosen.IF_HIGHER,
        "an integer from 65536 to 1073741824",
        restart="a security setting of the web application",
        minimum=65536,
        maximum=1073741824,
    )

    websocket_ping_interval_seconds: int = key(
        Kind.INT,
        "Seconds between the server's websocket pings; a peer that stops answering is "
        "closed (see limits.websocket_ping_timeout_seconds), so dead connections do not keep "
        "kernels' channels open.",
        Loosen.IF_HIGHER,
        "an integer from 1 to 3600",
        restart="a security setting of the web application",
        minimum=1,
        maximum=3600,
    )

    websocket_ping_timeout_seconds: int = key(
        Kind.INT,
        "Seconds without an answer to a ping after which a websocket is closed; at most "
        "limits.websocket_ping_interval_seconds applies (tornado waits for a pong until the "
        "next ping at most), so a larger value means the interval.",
        Loosen.IF_HIGHER,
        "an integer from 1 to 86400",
        restart="a security setting of the web application",
        minimum=1,
        maximum=86400,
    )

    unauthenticated_requests_per_minute: int = key(
        Kind.INT,
        "Sustained rate of unauthenticated requests one client may make (a token bucket in "
        "memory, keyed by the client address the trusted-proxy rules believe; IPv6 clients by "
        "their /64). A request that presented credentials which failed (a wrong token or "
        "password, an invalid login cookie) costs 10. Over the limit: 429 with Retry-After. "
        "Authenticated requests are never limited.",
        Loosen.IF_HIGHER,
        "an integer from 1 to 1000000",
        minimum=1,
        maximum=1000000,
    )

    unauthenticated_burst: int = key(
        Kind.INT,
        "How many unauthenticated requests one client may make at once before "
        "limits.unauthenticated_requests_per_minute applies (the bucket's size).",
        Loosen.IF_HIGHER,
        "an integer from 10 to 1000000",
        minimum=10,
        maximum=1000000,
    )

    header_timeout_seconds: int = key(
        Kind.INT,
        "Seconds a connection has to send a complete request head (request line and header "
        "fields): counted from the accept for its first request, from the first byte for a "
        "later one on a kept-alive connection. Past it the connection is closed unanswered "
        f"({Rule.LIMIT_HEADER_TIMEOUT}): the slowloris defence (a client that sends one "
        "header byte every few seconds holds a connection, and a file descriptor, for as long "
        "as it likes; stock tornado waits an hour).",
        Loosen.IF_HIGHER,
        "an integer from 1 to 300",
        minimum=1,
        maximum=300,
    )

    idle_timeout_seconds: int = key(
        Kind.INT,
        "Seconds a kept-alive HTTP connection may wait, idle, for its next request; then it "
        "is closed (a client opens a new one). Upgraded websockets are not HTTP connections: "
        "limits.websocket_ping_timeout_seconds closes the dead ones.",
        Loosen.IF_HIGHER,
        "an integer from 1 to 3600",
        minimum=1,
        maximum=3600,
    )

    connections_per_client: int = key(
        Kind.INT,
        "Most HTTP connections one client address (the TCP peer; IPv6 by its /64) may hold "
        "open at once; a further one is closed at accept, unread "
        f"({Rule.LIMIT_CONNECTIONS_PER_CLIENT}). A peer in server.trusted_proxies is exempt "
        "(every connection through nginx comes from nginx: limit clients there, e.g. nginx's "
        "limit_conn), and so are Unix-socket connections. A websocket that completed its "
        "handshake (which the policy authenticated) leaves the count; it stays in "
        "limits.max_connections.",
        Loosen.IF_HIGHER,
        "an integer from 8 to 65536",
        minimum=8,
        maximum=65536,
    )

    max_connections: int = key(
        Kind.INT,
        "Most connections (HTTP and websockets) the server holds open at once; 0: derived "
        "from the file-descriptor limit (RLIMIT_NOFILE's soft limit minus a quarter of it, at "
        "least 64, for kernels, files and the audit trail), so that connections can never "
        "exhaust the descriptors the server needs (stock: the accept loop fails with EMFILE "
        "and logs a traceback per attempt). At the limit, the connection that has waited "
        "longest for a request head is closed to make room "
        f"({Rule.LIMIT_CONNECTION_EVICTED}); when none is waiting, the new connection is "
        f"closed at accept ({Rule.LIMIT_CONNECTIONS_TOTAL}). A value above what the "
        f"file-descriptor limit leaves refuses the start ({Rule.START_CONNECTION_BUDGET}), so "
        "a number set here can only be stricter than 0.",
        Loosen.NEVER,
        "0 (derived from the file-descriptor limit), or an integer from 1 to 1048576",
        restart="checked against the file-descriptor limit when the server starts",
        minimum=0,
        maximum=1048576,
    )


@dataclass(frozen=True, slots=True)
class HeadersPolicy:
    """The ``[headers]`` table."""

    referrer_policy: str = key(
        Kind.ENUM,
        "Referrer-Policy on every response.",
        Loosen.IF_CHANGED,
        choices=_REFERRER,
    )

    x_frame_options: str = key(
        Kind.ENUM,
        "X-Frame-Options for browsers that ignore CSP frame-ancestors.",
        Loosen.IF_CHANGED,
        choices=("DENY", "SAMEORIGIN"),
    )

    cross_origin_opener_policy: str = key(
        Kind.ENUM,
        "Cross-Origin-Opener-Policy on every response.",
        Loosen.IF_CHANGED,
        choices=("same-origin", "same-origin-allow-popups", "unsafe-none"),
    )

    cross_origin_resource_policy: str = key(
        Kind.ENUM,
        "Cross-Origin-Resource-Policy on every response (stops cross-site <script>/<img> "
        "inclusion of our responses).",
        Loosen.IF_CHANGED,
        choices=("same-origin", "same-site", "cross-origin"),
    )

    permissions_policy: str = key(
        Kind.STR,
        "Permissions-Policy on every response: powerful browser features denied.",
        Loosen.IF_CHANGED,
        "a Permissions-Policy header value",
        item=_header_text,
    )

    hsts_max_age: int = key(
        Kind.INT,
        "Strict-Transport-Security max-age in seconds, sent when the request arrived over TLS "
        "(directly or through a trusted proxy). 0 sends no HSTS.",
        Loosen.IF_LOWER,
        "an integer from 0 to 63072000",
        minimum=0,
        maximum=63072000,
    )

    hsts_include_subdomains: bool = key(
        Kind.BOOL,
        "Add includeSubDomains to Strict-Transport-Security.",
        Loosen.IF_FALSE,
        "true or false",
    )

    csp_template_hashes: bool = key(
        Kind.BOOL,
        "Allow the inline scripts of the installed front-end templates (jupyter_server, "
        "JupyterLab, Notebook 7) by their SHA-256 hash, computed at start-up from the template "
        "files: the one inline script of those pages runs, an injected one does not. Off: "
        "those scripts are blocked (they only remove ?token= from the address bar, which the "
        "server already does with a redirect).",
        Loosen.IF_TRUE,
        "true or false",
    )

    csp_report: bool = key(
        Kind.BOOL,
        "Add report-uri <base_url>api/security/csp-report to every CSP.",
        Loosen.IF_CHANGED,
        "true or false",
    )

    cache_control: Mapping[str, str] = key(
        Kind.STR,
        "Cache-Control forced on responses of the '{route_class}' route class; an empty "
        "string leaves the handler's own value.",
        Loosen.IF_CHANGED,
        'a Cache-Control header value, or ""',
        item=_header_text,
        per_route_class=True,
    )


@dataclass(frozen=True, slots=True)
class AuditPolicy:
    """The ``[audit]`` table."""

    enabled: bool = key(
        Kind.BOOL,
        "Write the audit trail: one hash-chained JSON-lines record per policy denial and per "
        "sensitive allow (log-in, token, file write/rename/delete, upload, checkpoint, kernel "
        "start/restart/interrupt/shutdown, session, terminal, config write, requested stop, "
        "policy load). Off: no audit file (records still go to the log "
        "line, the EventLogger and /metrics), so nothing tamper-evident is left behind.",
        Loosen.IF_FALSE,
        "true or false",
    )

    file: str = key(
        Kind.STR,
        'The audit file (rotated files get .000001, .000002, ... appended). "": '
        "hardened-server-audit-<port>.jsonl in the Jupyter runtime directory. A file the "
        "contents API could reach (inside the served root, under no paths.deny glob) is "
        "refused at start-up.",
        Loosen.IF_CHANGED,
        'an absolute path (or starting with ~), or "" for the default',
        item=_audit_file,
    )

    fsync: str = key(
        Kind.STR,
        "When the audit file is fsynced: 'always' (after every record: survives power loss), "
        "'interval:<seconds>' (at most that many seconds of records lost on power loss), "
        "'never' (the kernel decides). A killed process loses no written record in any mode: "
        "each record is one write on an O_APPEND descriptor.",
        Loosen.IF_CHANGED,
        "'always', 'never' or 'interval:<seconds>'",
        item=_fsync_spec,
    )

    max_bytes: int = key(
        Kind.INT,
        "Size at which the audit file is rotated (renamed with a numeric suffix); the chain "
        "continues across files (the first record of a new file names the last one's hash).",
        Loosen.IF_CHANGED,
        "an integer from 65536 to 1099511627776",
        minimum=65536,
        maximum=1 << 40,
    )

    signing_key: str = key(
        Kind.STR,
        "Ed25519 private key (PEM, PKCS#8, unencrypted, readable by the server only) for signed "
        "checkpoints: without it, whoever can write the audit file can rewrite its tail "
        'undetected. "": no signatures.',
        Loosen.IF_CHANGED,
        'an absolute path (or starting with ~), or "" for none',
        item=_audit_file,
    )

    checkpoint_every: int = key(
        Kind.INT,
        "Records between two signed checkpoints (with audit.signing_key); a checkpoint is also "
        "written at rotation and at shutdown.",
        Loosen.IF_HIGHER,
        "an integer from 1 to 1000000",
        minimum=1,
        maximum=1000000,
    )

    stdout: bool = key(
        Kind.BOOL,
        "Also write every chain line to standard output (one JSON object per line, genesis and "
        "close included, each naming its server and chain) for a container log collector: an "
        "off-host copy that `hardened-server audit verify-log --stream` verifies.",
        Loosen.IF_CHANGED,
        "true or false",
    )

    syslog: str = key(
        Kind.STR,
        "A syslog collector (rsyslog, syslog-ng, a SIEM) that receives every chain line as an "
        "RFC 5424 message over TCP with octet-counting framing (RFC 6587), facility 13 (log "
        'audit): a copy out of the server user\'s reach. "": none. Lines the collector '
        "could not take are kept (up to 10000) and sent first when it is back.",
        Loosen.IF_CHANGED,
        'host:port, or "" for none',
        item=_syslog_address,
    )

    syslog_tls: bool = key(
        Kind.BOOL,
        "Speak TLS to audit.syslog (RFC 5425 framing), verifying its certificate and host name "
        "against audit.syslog_ca or the system's CAs.",
        Loosen.IF_CHANGED,
        "true or false",
    )

    syslog_ca: str = key(
        Kind.STR,
        'CA bundle (PEM) that audit.syslog\'s certificate must chain to; "": the system\'s.',
        Loosen.IF_CHANGED,
        'an absolute path (or starting with ~), or "" for the system\'s CAs',
        item=_audit_file,
    )

    require: tuple[str, ...] = key(
        Kind.LIST,
        "The sinks that must accept a record before the request is answered (HashiCorp "
        "Vault's rule for audit devices): a required sink that fails makes the request fail "
        f"as audit.fail_closed says (503 naming {Rule.AUDIT_WRITE_FAILED} or "
        f"{Rule.AUDIT_SINK_REQUIRED}). A sink not listed may fail: it is logged (syslog keeps "
        "the lines and sends them later). Every sink listed must be configured "
        "(audit.enabled for file, audit.stdout, audit.syslog).",
        Loosen.IF_SHRINKS,
        "sink names: " + ", ".join(AUDIT_SINKS),
        item=_audit_sink,
    )

    fail_closed: bool = key(
        Kind.BOOL,
        "When an audit record cannot be written (disk full, file removed), refuse the request "
        "that needed it with 503 instead of carrying on unrecorded. Denials stay denials "
        "either way.",
        Loosen.IF_FALSE,
        "true or false",
    )

    activity: bool = key(
        Kind.BOOL,
        "Record what users do, in the same chain (issue #20): every execute_request a client "
        f"sends to a kernel ({Rule.ACCT_CODE_EXECUTED}), every line typed into a terminal "
        f"({Rule.ACCT_TERMINAL_INPUT}) and every file read or download through /files, a "
        f"contents GET with content or /nbconvert ({Rule.ACCT_FILE_READ}). Off: nobody can "
        "later tell who ran which code or read which file. Widget and comm messages are never "
        "recorded.",
        Loosen.IF_FALSE,
        "true or false",
    )

    code: str = key(
        Kind.ENUM,
        "What an execute_request record keeps of the code: 'hmac' (HMAC-SHA256 under "
        "audit.hmac_key, with its key id: an auditor who has the code checks it with "
        "`hardened-server audit hash`, a reader of the trail learns nothing), 'full' (the "
        "code itself: secrets typed into a cell end up in the trail and every sink), 'off' "
        "(size only). User, kernel, session, notebook path and message id are kept in every "
        "mode.",
        Loosen.IF_CHANGED,
        choices=TEXT_MODES,
    )

    terminal_input: str = key(
        Kind.ENUM,
        "What a terminal-input record keeps of the line typed (up to Enter): 'hmac', 'full' "
        "or 'off', as audit.code. 'full' records passwords typed at a prompt that does not "
        "echo.",
        Loosen.IF_CHANGED,
        choices=TEXT_MODES,
    )

    hmac_key: str = key(
        Kind.STR,
        "The deployment's key for 'hmac' records: a file of at least 32 bytes, readable by the "
        "server's user only (no group or world bit), outside the served root (refused at "
        f"start-up otherwise, {Rule.ACCT_KEY_IN_ROOT}/{Rule.ACCT_KEY_UNUSABLE}). "
        '"": a key generated on first start in the '
        "Jupyter data directory (hardened-server-audit-hmac.key, mode 0600). Never written "
        "to a record; records carry its key id (hmac-sha256:<16 hex>) so an auditor knows "
        "which key to use after a rotation.",
        Loosen.IF_CHANGED,
        'an absolute path (or starting with ~), or "" for the generated key',
        item=_audit_file,
    )

    max_text_bytes: int = key(
        Kind.INT,
        "Code or a terminal line larger than this (bytes of UTF-8) is kept as its HMAC and "
        "size only, whatever audit.code says: a pasted data blob must not bloat the trail. "
        "At most 128 KiB, so that a 'full' record stays one line the chain writer accepts "
        "(1 MiB, JSON escaping included).",
        Loosen.IF_CHANGED,
        "an integer from 256 to 131072",
        minimum=256,
        maximum=128 << 10,
    )


# ---------------------------------------------------------------------------------------------
# The table: the sections in the order the reference documents them, then the CSP directives.


@dataclass(frozen=True)
class Section:
    """A ``[name]`` table of a policy file and the dataclass its keys are declared on (the type
    of :class:`hardened_server.policy.model.Policy`'s attribute of the same name)."""

    name: str
    model: type[Any]
    restart: str = ""  # non-empty: no key of the section can follow a reload (this says why)


SECTIONS: tuple[Section, ...] = (
    Section("server", ServerPolicy),
    Section("routes", RoutesPolicy),
    Section("scopes", ScopesPolicy),
    Section("cors", CorsPolicy),
    Section("paths", PathsPolicy),
    Section("tokens", TokensPolicy),
    Section("identity", IdentityPolicy),
    Section("login", LoginPolicy),
    Section("sessions", SessionsPolicy),
    Section("nbconvert", NbconvertPolicy),
    Section("terminals", TerminalsPolicy),
    Section("limits", LimitsPolicy),
    Section("headers", HeadersPolicy),
    Section(
        "audit",
        AuditPolicy,
        restart="the audit trail (file, fsync, rotation, signing, fail-closed) is opened at "
        "start-up",
    ),
)


def _csp_fields() -> list[Field]:
    """``csp.<route class>.<directive>``: compiled by the loader into ``Policy.csp`` (with the
    floors of :mod:`hardened_server.policy.csp`), not read key by key."""
    return [
        Field(
            f"csp.{rc}.{directive}",
            Kind.DIRECTIVE,
            f"CSP directive {directive} for the '{rc}' route class.",
            Loosen.IF_CHANGED,
            "a list of CSP source tokens; false removes the directive; "
            "true only for upgrade-insecure-requests",
            group=f"csp.{rc}",
        )
        for rc in ROUTE_CLASSES
        for directive in csp.DIRECTIVES
    ]


def _section_fields(section: Section) -> list[Field]:
    out: list[Field] = []
    for attr in dataclasses.fields(section.model):
        spec = attr.metadata.get(_SPEC)
        if not isinstance(spec, _Spec):
            raise TypeError(f"{section.model.__name__}.{attr.name} is not declared with key()")
        name = f"{section.name}.{attr.name}"
        restart = spec.restart or section.restart

        def make(
            key: str, doc: str, group: str = "", spec: _Spec = spec, restart: str = restart
        ) -> Field:
            return Field(
                key,
                spec.kind,
                doc,
                spec.loosen,
                spec.allowed,
                spec.choices,
                spec.minimum,
                spec.maximum,
                spec.item,
                group=group,
                restart=restart,
            )

        if spec.per_route_class:
            out.extend(
                make(f"{name}.{rc}", spec.doc.format(route_class=rc), group=name)
                for rc in ROUTE_CLASSES
            )
        else:
            out.append(make(name, spec.doc))
    return out


@dataclass(frozen=True)
class Schema:
    """The table derived from the sections: what the loader, the reference, ``policy explain``
    and the reload read. Built once (:data:`SCHEMA`); a test builds one with an extra key."""

    sections: tuple[Section, ...]
    fields: Mapping[str, Field]
    # Every table a policy file may contain (so that "csp" and "csp.page" are walked, not
    # rejected).
    tables: frozenset[str]

    @classmethod
    def of(cls, sections: tuple[Section, ...]) -> Schema:
        listed = [f for s in sections for f in _section_fields(s)] + _csp_fields()
        fields = {f.key: f for f in listed}
        if len(fields) != len(listed):
            raise ValueError("a policy key is declared twice")
        tables = frozenset(
            ".".join(k.split(".")[:i]) for k in fields for i in range(1, k.count(".") + 1)
        )
        return cls(sections, MappingProxyType(fields), tables)

    @property
    def restart_only(self) -> Mapping[str, str]:
        """Keys applied at start-up only, and why (a reload that changes one is refused)."""
        return {k: f.restart for k, f in self.fields.items() if f.restart}

    def build_sections(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Section name -> its frozen dataclass, from the flat effective values (every key
        set). A mapping (scopes.routes, a per-route-class key) is made read-only."""
        out: dict[str, Any] = {}
        for section in self.sections:
            kwargs: dict[str, Any] = {}
            for attr in dataclasses.fields(section.model):
                name = f"{section.name}.{attr.name}"
                spec = attr.metadata[_SPEC]
                if spec.per_route_class:
                    value: Any = MappingProxyType(
                        {rc: values[f"{name}.{rc}"] for rc in ROUTE_CLASSES}
                    )
                else:
                    value = values[name]
                    if isinstance(value, Mapping):
                        value = MappingProxyType(dict(value))
                kwargs[attr.name] = value
            out[section.name] = section.model(**kwargs)
        return out


SCHEMA: Schema = Schema.of(SECTIONS)
FIELDS: Mapping[str, Field] = SCHEMA.fields
FIELDS_LIST: list[Field] = list(FIELDS.values())
TABLES: frozenset[str] = SCHEMA.tables


def validate_value(field: Field, value: Any) -> Any:
    """Return the normalised value for ``field`` or raise ``ItemError`` saying what is wrong."""
    kind = field.kind
    if kind == Kind.BOOL:
        if not isinstance(value, bool):
            raise ItemError(f"expected true or false, got {type(value).__name__}")
        return value
    if kind == Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ItemError(f"expected an integer, got {type(value).__name__}")
        if field.minimum is not None and value < field.minimum:
            raise ItemError(f"{value} is below the minimum {field.minimum}")
        if field.maximum is not None and value > field.maximum:
            raise ItemError(f"{value} is above the maximum {field.maximum}")
        return value
    if kind == Kind.ENUM:
        if value not in field.choices:
            raise ItemError("not one of the allowed values")
        return value
    if kind == Kind.STR:
        if not isinstance(value, str):
            raise ItemError(f"expected a string, got {type(value).__name__}")
        return field.item(value) if field.item else value
    if kind == Kind.LIST:
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
    if kind == Kind.ROUTEMAP:
        return _route_scopes(value)
    if kind == Kind.SCOPETABLE:
        return _scope_table(value)
    if kind == Kind.DIRECTIVE:
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
        if field.kind == Kind.BOOL:
            return {**doc, "type": "boolean"}
        if field.kind == Kind.INT:
            out: dict[str, Any] = {**doc, "type": "integer"}
            if field.minimum is not None:
                out["minimum"] = field.minimum
            if field.maximum is not None:
                out["maximum"] = field.maximum
            return out
        if field.kind == Kind.ENUM:
            return {**doc, "enum": list(field.choices)}
        if field.kind == Kind.STR:
            return {**doc, "type": "string"}
        if field.kind == Kind.LIST:
            # no uniqueItems: the loader folds duplicates (after normalisation) instead
            items = {"type": "array", "items": {"type": "string"}}
            extend = {  # key = { extend = [...] }: appended to the layers before (loader.py)
                "type": "object",
                "properties": {"extend": items},
                "required": ["extend"],
                "additionalProperties": False,
            }
            return {**doc, "oneOf": [items, extend]}
        if field.kind == Kind.DIRECTIVE:
            sources = {"type": "array", "items": {"type": "string"}}
            return {**doc, "oneOf": [{"type": "boolean"}, sources]}
        if field.kind == Kind.ROUTEMAP:
            scope = {"enum": list(SCOPES)}
            methods = {
                "type": "object",
                "propertyNames": {"enum": [*METHODS, ANY_METHOD]},
                "additionalProperties": {"oneOf": [scope, {"type": "array", "items": scope}]},
            }
            return {**doc, "type": "object", "additionalProperties": methods}
        if field.kind == Kind.SCOPETABLE:
            scopes = {"type": "array", "items": {"enum": list(SCOPES)}}
            return {**doc, "type": "object", "additionalProperties": scopes}
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
