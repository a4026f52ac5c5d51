"""Every rule id of the running server, declared once: its family and what it means.

A rule id names the rule that decided a request, a start-up refusal, a reload or an event in the
audit trail (``HS-<FAMILY>-0NN``). Ids are stable API: audit records, metrics labels,
``policy explain`` and the log lines operators grep refer to them, so the strings never change and
are never renumbered; a new rule takes the next free number of its family. Every module imports
its ids from here (``Rule.PATH_DENIED``), and ``tests/policy/test_rules.py`` fails when an id
string is written anywhere else in the package or no test exercises it.

The checks of the ``hardened-server audit`` command have ids of their own (``HS-<FAMILY>-1NN``
static, ``2NN`` live, ``3NN`` environment) declared with their check in
:mod:`hardened_server.audit.checks`.

Pure: no imports beyond the standard library, like the rest of :mod:`hardened_server.policy`.
"""

from __future__ import annotations

from enum import StrEnum, unique

__all__ = ["RULE_ID_PATTERN", "Family", "Rule"]

#: The shape of every rule id (the audit command's check ids share it).
RULE_ID_PATTERN = r"HS-[A-Z]+-[0-9]{3}"


class Family(StrEnum):
    """The families of rule ids: the middle part of ``HS-<FAMILY>-0NN``."""

    HOST = "HOST"  # Host header allow-list (policy/hosts.py)
    AUTH = "AUTH"  # authentication required / public routes (enforcement/handlers.py)
    ORIGIN = "ORIGIN"  # Origin / Referer checks (policy/origins.py, policy/fetchmeta.py)
    CORS = "CORS"  # the CORS allow-list (policy/cors.py)
    START = "START"  # start-up refusals of unsafe settings (policy/startup.py)
    SCOPE = "SCOPE"  # route -> scopes authorization (policy/scopemap.py)
    ID = "ID"  # tokens, passwords, logins, sessions (enforcement/identity/)
    PATH = "PATH"  # hidden, denied and escaping paths (policy/paths.py, enforcement/gate.py)
    PROXY = "PROXY"  # forwarding headers and trusted proxies (policy/proxies.py)
    XSITE = "XSITE"  # cross-site requests by Fetch Metadata (policy/fetchmeta.py)
    REDIRECT = "REDIRECT"  # redirect targets (policy/redirects.py, enforcement/gate.py)
    LIMIT = "LIMIT"  # request size and rate limits (enforcement/gate.py)
    XSRF = "XSRF"  # the XSRF double-submit token (enforcement/gate.py)
    CONTENTS = "CONTENTS"  # file changes through the contents API (enforcement/contents.py)
    EVENTS = "EVENTS"  # server event schemas (enforcement/events.py)
    AUDIT = "AUDIT"  # the audit trail itself (enforcement/auditfile.py, enforcement/recorder.py)
    CSP = "CSP"  # CSP violation reports (enforcement/recorder.py)
    HUB = "HUB"  # JupyterHub single-user server (policy/hub.py, hub.py)
    POLICY = "POLICY"  # policy load and live reload (policy/reload.py, app.py)
    KERNEL = "KERNEL"  # kernels and their sessions (app.py, enforcement/kernelsessions.py)
    TERM = "TERM"  # terminal opens and closes (app.py)
    SERVER = "SERVER"  # server-wide state: a stop asked for, frontend config sections (app.py)
    # what users did: executed code, terminal input, file reads (enforcement/activity.py)
    ACCT = "ACCT"


@unique  # a second member with the same id string is an import error
class Rule(StrEnum):
    """Stable rule ids. Never renumber; add new ones at the end of their family.

    Each member is the id string itself (a ``str``: records, labels and f-strings show the id)
    and carries its :class:`Family`, a one-line ``meaning`` and ``reserved``.

    ``reserved``: the id is declared (and so taken: never reused for another meaning) but no code
    emits it today. ``tests/policy/test_rules.py`` requires a test for every id that is not
    reserved; a reserved id that starts being emitted drops the flag and gets its test.
    """

    family: Family
    meaning: str
    reserved: bool

    def __new__(cls, value: str, family: Family, meaning: str, reserved: bool = False) -> Rule:
        member = str.__new__(cls, value)
        member._value_ = value
        member.family = family
        member.meaning = meaning
        member.reserved = reserved
        return member

    # --- HOST ---------------------------------------------------------------------------------
    HOST_ALLOWED = "HS-HOST-001", Family.HOST, "the Host header names an allowed host"
    HOST_FOREIGN = "HS-HOST-002", Family.HOST, "the Host header names a host not allowed"
    # The liveness probe (policy/health.py): answered, never recorded, counted on /metrics.
    HOST_PROBE_LISTED = (
        "HS-HOST-003",
        Family.HOST,
        "liveness probe answered: its Host is on the allow-list",
    )
    HOST_PROBE_OWN_ADDRESS = (
        "HS-HOST-004",
        Family.HOST,
        "liveness probe answered: its Host is the address the connection arrived on",
    )
    HOST_UNIX_SOCKET = (
        "HS-HOST-005",
        Family.HOST,
        "a request over the server's Unix socket names that socket as its Host",
    )
    # --- AUTH ---------------------------------------------------------------------------------
    AUTH_REQUIRED = "HS-AUTH-001", Family.AUTH, "the route is not public and nobody is logged in"
    # Reserved: an anonymous request on a ``routes.public`` route simply goes on
    # (enforcement/handlers.py); no Decision is made and nothing is recorded for it.
    AUTH_PUBLIC_ROUTE = (
        "HS-AUTH-002",
        Family.AUTH,
        "the route is public: no login needed",
        True,
    )
    # --- ORIGIN -------------------------------------------------------------------------------
    ORIGIN_SAME = "HS-ORIGIN-001", Family.ORIGIN, "Origin/Referer is this server"
    ORIGIN_LISTED = "HS-ORIGIN-002", Family.ORIGIN, "Origin/Referer is on the CORS allow-list"
    ORIGIN_FOREIGN = "HS-ORIGIN-003", Family.ORIGIN, "Origin/Referer is a foreign site"
    ORIGIN_ABSENT = "HS-ORIGIN-004", Family.ORIGIN, "neither Origin nor Referer where one is needed"
    # --- CORS ---------------------------------------------------------------------------------
    CORS_LISTED = "HS-CORS-001", Family.CORS, "the Origin is on the CORS allow-list"
    CORS_NOT_LISTED = "HS-CORS-002", Family.CORS, "the Origin is not on the CORS allow-list"
    # --- START --------------------------------------------------------------------------------
    START_UNAUTHENTICATED_ROUTE = (
        "HS-START-001",
        Family.START,
        "a route handler method has no authentication decorator",
    )
    START_SETTING_OVERRIDE = (
        "HS-START-002",
        Family.START,
        "a server or tornado setting overrides what the policy decides",
    )
    START_ALLOW_ORIGIN = (
        "HS-START-003",
        Family.START,
        "allow_origin(_pat) would bypass the CORS list",
    )
    START_DISABLE_XSRF = "HS-START-004", Family.START, "XSRF protection switched off"
    START_NO_AUTH = "HS-START-005", Family.START, "no token and no password: anyone may log in"
    START_TERMINALS = (
        "HS-START-006",
        Family.START,
        "terminals on, the policy forbids them",
    )
    START_INSECURE_REMOTE = (
        "HS-START-007",
        Family.START,
        "remote access without TLS or a trusted TLS proxy",
    )
    START_SETTINGS_DRIFT = (
        "HS-START-008",
        Family.START,
        "a security setting changed after start-up (extension or settings merge)",
    )
    START_WEAK_TOKEN = "HS-START-009", Family.START, "the configured token is too weak"
    START_UNAUTHENTICATED_ACCESS = (
        "HS-START-010",
        Family.START,
        "allow_unauthenticated_access lets undecorated handlers answer",
    )
    START_CONTENTS_MANAGER = (
        "HS-START-011",
        Family.START,
        "the contents manager is not built on HardenedContentsManager",
    )
    START_REFUSED_EXTENSION = (
        "HS-START-012",
        Family.START,
        "a server extension that cannot work under the strict policy is enabled",
    )
    START_SITE_PROVIDER = (
        "HS-START-013",
        Family.START,
        "a site identity provider whose users the policy gives no scopes (identity.*)",
    )
    START_LEGACY_LOGIN_HANDLER = (
        "HS-START-014",
        Family.START,
        "ServerApp.login_handler_class is set but no identity provider would run it",
    )
    START_CONNECTION_BUDGET = (
        "HS-START-015",
        Family.START,
        "limits.max_connections is above what the file-descriptor limit leaves for connections",
    )
    # --- SCOPE --------------------------------------------------------------------------------
    SCOPE_MISSING = "HS-SCOPE-001", Family.SCOPE, "the principal lacks a scope the route requires"
    SCOPE_UNMAPPED = "HS-SCOPE-002", Family.SCOPE, "a route (or method) the route map does not know"
    SCOPE_EVENT_SCHEMA = (
        "HS-SCOPE-003",
        Family.SCOPE,
        "POST /api/events with a schema not listed for clients",
    )
    SCOPE_GRANTED = (
        "HS-SCOPE-004",
        Family.SCOPE,
        "the scopes allow it (for explain and tests; not recorded per request)",
    )
    SCOPE_CONNECTION_LOST = (
        "HS-SCOPE-005",
        Family.SCOPE,
        "an open websocket was closed: the policy in force no longer grants its route's scopes",
    )
    # --- ID -----------------------------------------------------------------------------------
    ID_TOKEN_USED = "HS-ID-001", Family.ID, "a valid token authenticated the request"
    ID_TOKEN_REFUSED = "HS-ID-002", Family.ID, "a token was presented and refused"
    ID_TOKEN_MISPLACED = (
        "HS-ID-003",
        Family.ID,
        "a token where none is accepted (URL, form)",
    )
    ID_LOGIN_OK = "HS-ID-010", Family.ID, "password login succeeded"
    ID_LOGIN_FAILED = "HS-ID-011", Family.ID, "password login failed"
    ID_LOGIN_THROTTLED = "HS-ID-012", Family.ID, "login refused: too many failures"
    ID_PASSWORD_REHASHED = (
        "HS-ID-013",
        Family.ID,
        "a password hash was upgraded at login",
    )
    ID_LOGOUT = "HS-ID-020", Family.ID, "logout: the session is revoked"
    ID_LOGOUT_EVERYWHERE = "HS-ID-021", Family.ID, "logout everywhere: all the user's sessions"
    ID_SESSION_REFUSED = "HS-ID-022", Family.ID, "expired, revoked or unknown session cookie"
    ID_CONNECTION_SESSION_ENDED = (
        "HS-ID-023",
        Family.ID,
        "an open websocket was closed: its session ended (logout, everywhere, idle, lifetime)",
    )
    ID_TOKEN_CREATED = "HS-ID-030", Family.ID, "a token was created"
    ID_TOKEN_REVOKED = "HS-ID-031", Family.ID, "a token was revoked"
    ID_TOKEN_ROTATED = "HS-ID-032", Family.ID, "a token was rotated"
    ID_CONNECTION_TOKEN_ENDED = (
        "HS-ID-033",
        Family.ID,
        "an open websocket was closed: its stored token was revoked, rotated or expired",
    )
    ID_TOKEN_STORE_SERVED = (
        "HS-ID-040",
        Family.ID,
        "start-up refused: the contents API could reach the token store",
    )
    # --- PATH ---------------------------------------------------------------------------------
    PATH_ALLOWED = "HS-PATH-001", Family.PATH, "path allowed"
    PATH_HIDDEN = (
        "HS-PATH-002",
        Family.PATH,
        "hidden component (name starting with '.') and paths.allow_hidden is false",
    )
    PATH_DENIED = (
        "HS-PATH-003",
        Family.PATH,
        "matches a paths.deny glob (holds even with paths.allow_hidden = true)",
    )
    PATH_ESCAPES_ROOT = "HS-PATH-004", Family.PATH, "not strictly inside the served root"
    PATH_MALFORMED = (
        "HS-PATH-005",
        Family.PATH,
        "malformed or ambiguous path refused before any rule ran",
    )
    PATH_SYMLINK = (
        "HS-PATH-006",
        Family.PATH,
        "the symlink-resolved path leaves the root, is hidden or denied",
    )
    PATH_RAW = "HS-PATH-007", Family.PATH, "the raw request target is malformed or ambiguous"
    PATH_PROTECTED = (
        "HS-PATH-008",
        Family.PATH,
        "matches a paths.protected glob: a file that runs later as the owner, or a secret",
    )
    # --- PROXY --------------------------------------------------------------------------------
    PROXY_HONOURED = (
        "HS-PROXY-001",
        Family.PROXY,
        "forwarding headers from trusted proxies honoured",
    )
    PROXY_IGNORED = (
        "HS-PROXY-002",
        Family.PROXY,
        "forwarding headers from an untrusted peer were ignored",
    )
    PROXY_MALFORMED = (
        "HS-PROXY-003",
        Family.PROXY,
        "a trusted proxy sent a malformed forwarding entry",
    )
    PROXY_DIRECT = "HS-PROXY-004", Family.PROXY, "no forwarding headers: the peer is the client"
    # --- XSITE --------------------------------------------------------------------------------
    XSITE_SAME_ORIGIN = (
        "HS-XSITE-001",
        Family.XSITE,
        "Sec-Fetch-Site same-origin (or none on GET/HEAD)",
    )
    XSITE_NAVIGATION = "HS-XSITE-002", Family.XSITE, "cross-site top-level navigation to a page"
    XSITE_REFUSED = "HS-XSITE-003", Family.XSITE, "cross-site request refused"
    XSITE_CORS_LISTED = (
        "HS-XSITE-004",
        Family.XSITE,
        "cross-site cors/websocket request from a listed origin",
    )
    XSITE_UNKNOWN_SITE = "HS-XSITE-005", Family.XSITE, "unknown Sec-Fetch-Site value refused"
    XSITE_NON_BROWSER_API = (
        "HS-XSITE-006",
        Family.XSITE,
        "API GET/HEAD with no Origin, Referer or Sec-Fetch-*: a non-browser client",
    )
    XSITE_UNRESTRICTED = (
        "HS-XSITE-007",
        Family.XSITE,
        "GET/HEAD on page, static and error routes is not restricted",
    )
    # --- REDIRECT -----------------------------------------------------------------------------
    REDIRECT_ALLOWED = "HS-REDIRECT-001", Family.REDIRECT, "redirect target is a local path"
    REDIRECT_NOT_A_PATH = (
        "HS-REDIRECT-002",
        Family.REDIRECT,
        "redirect target is not a path (scheme, host or //)",
    )
    REDIRECT_UNSAFE_CHARS = (
        "HS-REDIRECT-003",
        Family.REDIRECT,
        "redirect target has control, space or backslash characters",
    )
    REDIRECT_ENCODED_SYNTAX = (
        "HS-REDIRECT-004",
        Family.REDIRECT,
        "redirect target hides URL syntax in percent-encoding",
    )
    REDIRECT_OUTSIDE_BASE = (
        "HS-REDIRECT-005",
        Family.REDIRECT,
        "redirect target is outside the server's base URL",
    )
    REDIRECT_EXTERNAL = (
        "HS-REDIRECT-006",
        Family.REDIRECT,
        "redirect to the identity provider's own login endpoint (JupyterHub OAuth)",
    )
    # --- LIMIT --------------------------------------------------------------------------------
    LIMIT_BODY = "HS-LIMIT-001", Family.LIMIT, "request body larger than the limit"
    LIMIT_HEADERS = "HS-LIMIT-002", Family.LIMIT, "header fields larger than the limit"
    LIMIT_URL = "HS-LIMIT-003", Family.LIMIT, "request target longer than the limit"
    LIMIT_RATE = "HS-LIMIT-004", Family.LIMIT, "unauthenticated request budget spent"
    LIMIT_ANONYMOUS_BODY = (
        "HS-LIMIT-005",
        Family.LIMIT,
        "request body without a credential (or a login form) larger than the anonymous limit",
    )
    # Connection limits (enforcement/httpserver.py): no request exists yet, so one summary
    # record per interval with the count, never one per connection.
    LIMIT_HEADER_TIMEOUT = (
        "HS-LIMIT-006",
        Family.LIMIT,
        "connection closed: its request head did not arrive within the header timeout",
    )
    LIMIT_CONNECTIONS_PER_CLIENT = (
        "HS-LIMIT-007",
        Family.LIMIT,
        "connection closed at accept: its client address holds the most connections allowed",
    )
    LIMIT_CONNECTIONS_TOTAL = (
        "HS-LIMIT-008",
        Family.LIMIT,
        "connection closed at accept: the server holds the most connections allowed",
    )
    LIMIT_CONNECTION_EVICTED = (
        "HS-LIMIT-009",
        Family.LIMIT,
        "connection waiting longest for a request head closed to make room for a new one",
    )
    # --- XSRF ---------------------------------------------------------------------------------
    XSRF_MISSING = "HS-XSRF-001", Family.XSRF, "no XSRF token on a state-changing request"
    XSRF_MISMATCH = "HS-XSRF-002", Family.XSRF, "the XSRF token does not match"
    XSRF_BOUND = "HS-XSRF-003", Family.XSRF, "the XSRF token is valid (bound to the session)"
    # --- CONTENTS -----------------------------------------------------------------------------
    CONTENTS_FILE_WRITTEN = "HS-CONTENTS-001", Family.CONTENTS, "a file was written"
    CONTENTS_FILE_RENAMED = "HS-CONTENTS-002", Family.CONTENTS, "a file was renamed"
    CONTENTS_FILE_DELETED = "HS-CONTENTS-003", Family.CONTENTS, "a file was deleted"
    CONTENTS_UPLOAD_STARTED = (
        "HS-CONTENTS-004",
        Family.CONTENTS,
        "the first chunk of a chunked upload was written (the last one is HS-CONTENTS-001)",
    )
    CONTENTS_CHECKPOINT_CREATED = "HS-CONTENTS-005", Family.CONTENTS, "a checkpoint was created"
    CONTENTS_CHECKPOINT_DELETED = "HS-CONTENTS-006", Family.CONTENTS, "a checkpoint was deleted"
    # --- EVENTS -------------------------------------------------------------------------------
    EVENTS_SERVER_SCHEMA = (
        "HS-EVENTS-001",
        Family.EVENTS,
        "a server-only event schema, refused to clients and below the trail's floor",
    )
    # --- AUDIT --------------------------------------------------------------------------------
    AUDIT_FILE_IN_ROOT = (
        "HS-AUDIT-001",
        Family.AUDIT,
        "start-up refused: the contents API could reach the audit file",
    )
    AUDIT_OPEN_FAILED = (
        "HS-AUDIT-002",
        Family.AUDIT,
        "start-up refused: the audit file cannot open",
    )
    AUDIT_WRITE_FAILED = (
        "HS-AUDIT-003",
        Family.AUDIT,
        "request refused: its record could not be written (fail closed)",
    )
    AUDIT_FILE_LOST = (
        "HS-AUDIT-004",
        Family.AUDIT,
        "the audit file was removed, moved or replaced while open; a new file continues the chain",
    )
    AUDIT_SINK_REQUIRED = (
        "HS-AUDIT-005",
        Family.AUDIT,
        "request refused: a sink audit.require names did not accept its record (fail closed)",
    )
    # --- CSP ----------------------------------------------------------------------------------
    CSP_VIOLATION = "HS-CSP-001", Family.CSP, "a browser reported a CSP violation"
    # --- HUB ----------------------------------------------------------------------------------
    HUB_LOGIN = "HS-HUB-001", Family.HUB, "hub OAuth login"
    HUB_NOT_ALLOWED = "HS-HUB-002", Family.HUB, "hub user without access to this server"
    HUB_LOGOUT = "HS-HUB-003", Family.HUB, "logout, continued at the hub"
    # Every request let through for someone other than the server's owner: a hub admin's
    # "access server", a user it is shared with, a service's token (hub.py, issue #19 item 8).
    HUB_NON_OWNER_ACCESS = (
        "HS-HUB-004",
        Family.HUB,
        "a request by a hub user or service other than the server's owner was let through",
    )
    HUB_ENV_MISSING = (
        "HS-HUB-010",
        Family.HUB,
        "start-up refused: a JUPYTERHUB_* variable is missing",
    )
    HUB_ENV_MALFORMED = (
        "HS-HUB-011",
        Family.HUB,
        "start-up refused: a JUPYTERHUB_* variable is malformed",
    )
    HUB_EXTENSION = (
        "HS-HUB-012",
        Family.HUB,
        "start-up refused: the hub's extension or identity provider is not in place",
    )
    HUB_CALLBACK_NOT_PUBLIC = (
        "HS-HUB-013",
        Family.HUB,
        "start-up refused: the OAuth callback route is not public",
    )
    # --- POLICY -------------------------------------------------------------------------------
    POLICY_LOADED = "HS-POLICY-001", Family.POLICY, "the policy was loaded at start-up"
    POLICY_RELOAD_APPLIED = "HS-POLICY-002", Family.POLICY, "a live policy reload was applied"
    POLICY_RELOAD_REFUSED = (
        "HS-POLICY-003",
        Family.POLICY,
        "a live policy reload was refused as a whole",
    )
    # --- KERNEL, TERM -------------------------------------------------------------------------
    KERNEL_STARTED = "HS-KERNEL-001", Family.KERNEL, "a kernel was started"
    KERNEL_RESTARTED = "HS-KERNEL-002", Family.KERNEL, "a kernel was restarted"
    KERNEL_INTERRUPTED = "HS-KERNEL-003", Family.KERNEL, "a kernel was interrupted"
    KERNEL_SHUTDOWN = "HS-KERNEL-004", Family.KERNEL, "a kernel was shut down"
    KERNEL_SESSION_CREATED = (
        "HS-KERNEL-005",
        Family.KERNEL,
        "a session was created (with the kernel it started, if any)",
    )
    KERNEL_SESSION_CHANGED = (
        "HS-KERNEL-006",
        Family.KERNEL,
        "a session was changed (with the kernel it started and the one it replaced, if any)",
    )
    KERNEL_SESSION_DELETED = (
        "HS-KERNEL-007",
        Family.KERNEL,
        "a session was deleted (with the kernel it shut down)",
    )
    TERM_OPENED = "HS-TERM-001", Family.TERM, "a terminal was opened"
    TERM_CLOSED = "HS-TERM-002", Family.TERM, "a terminal was closed"
    # --- SERVER -------------------------------------------------------------------------------
    SERVER_STOP_REQUESTED = (
        "HS-SERVER-001",
        Family.SERVER,
        "a client asked the server to stop (POST /api/shutdown)",
    )
    SERVER_CONFIG_CHANGED = (
        "HS-SERVER-002",
        Family.SERVER,
        "a frontend config section was written (/api/config)",
    )
    # --- ACCT (issue #20) -----------------------------------------------------------------
    ACCT_CODE_EXECUTED = (
        "HS-ACCT-001",
        Family.ACCT,
        "a client sent an execute_request to a kernel (code kept as audit.code says)",
    )
    ACCT_TERMINAL_INPUT = (
        "HS-ACCT-002",
        Family.ACCT,
        "a line was typed into a terminal (kept as audit.terminal_input says)",
    )
    ACCT_FILE_READ = (
        "HS-ACCT-003",
        Family.ACCT,
        "a file was read or downloaded (/files, contents GET with content, nbconvert)",
    )
    ACCT_KEY_IN_ROOT = (
        "HS-ACCT-010",
        Family.ACCT,
        "start-up refused: the contents API could reach the audit HMAC key",
    )
    ACCT_KEY_UNUSABLE = (
        "HS-ACCT-011",
        Family.ACCT,
        "start-up refused: the audit HMAC key is unreadable, too short or readable by others",
    )
