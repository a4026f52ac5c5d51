"""The route map: every route -> (resource, action) per HTTP method -> the scopes it needs.

Two tables, both pure data:

* :data:`RESOURCE_SCOPES` says what a *(resource, action)* needs. The resource names are
  jupyter_server's own ``auth_resource`` values (``contents``, ``kernels``, ``sessions``...) where
  one exists, so the same table answers jupyter_server's ``Authorizer.is_authorized(handler, user,
  action, resource)`` (the ``@authorized`` decorator) and the route map in ``prepare()``: the two
  cannot disagree. A few resources are ours, for routes jupyter_server never authorizes
  (JupyterLab's ``/lab/api/*``, the front-end pages, the redirects).
* :data:`BUILTIN_HANDLERS` says which *(resource, action)* each method of each known handler
  class is (the class as written, ``module.qualname``: what the start-up check and
  ``audit --routes`` print). Keyed by handler rather than by pattern so that a route keeps its
  meaning when jupyter_server changes a regular expression, and so that an extension which reuses
  a known handler at a new URL (a ``FileFindHandler`` for its assets) gets that handler's meaning.
  A subclass is *not* covered: it may do anything (fail closed).

A route that neither table nor the policy key ``scopes.routes`` (patterns, as registered, for
extension routes) maps is refused for everyone but nobody else's fault: the refusal names the key
to set. Lookups are compiled once per policy and per route (:meth:`RouteMap.lookup`); a request
only does a dictionary look-up and a subset test.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hardened_server.policy.decisions import Decision, Rule
from hardened_server.policy.scopes import ADMIN, KNOWN_SCOPES

NONE: frozenset[str] = frozenset()  # any authenticated principal, no scope

# Methods a requirement may name. OPTIONS is a CORS preflight: answered before any
# authentication, never scope-checked. "*" in a table: every method not listed.
METHODS: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
ANY_METHOD = "*"


def _s(*names: str) -> frozenset[str]:
    unknown = set(names) - KNOWN_SCOPES
    if unknown:  # a typo in the tables below: fail at import, not at request time
        raise ValueError(f"unknown scope(s) {sorted(unknown)}")
    return frozenset(names)


#: (resource, action) -> the scopes it needs (all of them; admin implies every scope).
RESOURCE_SCOPES: Mapping[tuple[str, str], frozenset[str]] = MappingProxyType(
    {
        # Files: the contents API, /files, /view, checkpoints, trust, resolvePath.
        ("contents", "read"): _s("contents:read"),
        ("contents", "write"): _s("contents:write"),
        # nbconvert renders a file (GET) or a posted notebook (POST); it writes nothing.
        ("nbconvert", "read"): _s("contents:read"),
        ("nbconvert", "write"): _s("contents:read"),
        # Kernels: listing is read; starting, restarting, interrupting, shutting down and the
        # channels websocket all run or stop code.
        ("kernels", "read"): _s("kernels:read"),
        ("kernels", "write"): _s("kernels:execute"),
        ("kernels", "execute"): _s("kernels:execute"),
        ("kernelspecs", "read"): _s("kernels:read"),
        # A session write starts, swaps or stops its kernel: it needs kernels:execute too.
        ("sessions", "read"): _s("sessions:read"),
        ("sessions", "write"): _s("sessions:write", "kernels:execute"),
        ("terminals", "read"): _s("terminals"),
        ("terminals", "write"): _s("terminals"),
        ("terminals", "execute"): _s("terminals"),
        # jupyter_lsp: a language server is a process started for the user, like a kernel.
        ("lsp", "read"): _s("kernels:read"),
        ("lsp", "execute"): _s("kernels:execute"),
        # POST /api/events emits (client schemas only, see scopes.client_event_schemas);
        # /api/events/subscribe ("execute" in jupyter_server) reads the server's event bus.
        ("events", "write"): _s("events:write"),
        ("events", "read"): _s("events:read"),
        ("events", "execute"): _s("events:read"),
        ("metrics", "read"): _s("metrics:read"),
        # Front-end: pages, their assets, JupyterLab settings, workspaces, translations,
        # listings, licenses, themes, news; jupyter_server's frontend config sections.
        ("frontend", "read"): _s("frontend:read"),
        ("frontend", "write"): _s("frontend:write"),
        ("config", "read"): _s("frontend:read"),
        ("config", "write"): _s("frontend:write"),
        ("identity", "write"): _s("frontend:write"),  # PATCH /api/me: own display name
        # JupyterLab's build, extension manager (installs packages: code execution) and plugin
        # manager (locks/unlocks plugins for every session): listing is front-end, change admin.
        ("extensions", "read"): _s("frontend:read"),
        ("extensions", "write"): _s(ADMIN),
        ("server", "write"): _s(ADMIN),  # POST /api/shutdown
        # Any authenticated principal: who am I (/api/me), the API's own description and
        # status (/api, /api/status, /api/spec.yaml), CSP reports the browser sends, and routes
        # that only redirect or say "not found" (the target is checked when it is requested).
        ("identity", "read"): NONE,
        ("api", "read"): NONE,
        ("csp", "write"): NONE,
        ("navigation", "read"): NONE,
    }
)

Requirement = tuple[str, str]  # (resource, action)

#: The *(resource, action)* pairs an extension's own ``@authorized`` may claim (jupyter_server's
#: ``auth_resource`` on the handler class, the action from the decorator or from the HTTP method as
#: jupyter_server's ``HTTP_METHOD_TO_AUTH_ACTION`` derives it). A route whose every implemented
#: method claims one of these needs no hand mapping: it needs what :data:`RESOURCE_SCOPES` says
#: (source ``authorized``), exactly what jupyter_server's own authorizer would be asked. Reviewed:
#:
#: * only jupyter_server's resource names (and jupyter_lsp's), each with a non-empty scope set:
#:   ``api``, ``csp`` and ``identity`` (any logged-in principal) and our own resource names
#:   (``frontend``, ``navigation``, ``extensions``, ``metrics``) are *not* claimable, so no
#:   extension gets "any principal" or a front-end scope by naming a resource;
#: * a websocket's ``GET`` claims ``execute`` (jupyter_server's ``WEBSOCKET`` action), not
#:   ``read``: the channel carries writes. ``("contents", "execute")`` is not listed, so a
#:   document websocket (jupyter-collaboration's room) stays refused until a reviewed extension
#:   profile or ``scopes.routes`` says what it needs;
#: * an unknown resource (jupyterlab-git's ``ssh``) or a method without ``@authorized`` is not
#:   mapped: refused until ``scopes.routes`` (or a profile) maps the route.
AUTHORIZED_CLAIMS: frozenset[Requirement] = frozenset(
    {
        ("contents", "read"),
        ("contents", "write"),
        ("nbconvert", "read"),
        ("nbconvert", "write"),
        ("kernels", "read"),
        ("kernels", "write"),
        ("kernels", "execute"),
        ("kernelspecs", "read"),
        ("sessions", "read"),
        ("sessions", "write"),
        ("terminals", "read"),
        ("terminals", "write"),
        ("terminals", "execute"),
        ("lsp", "read"),
        ("lsp", "execute"),
        ("events", "write"),
        ("events", "read"),
        ("events", "execute"),
        ("config", "read"),
        ("config", "write"),
        ("server", "write"),
    }
)

_R = ("contents", "read")
_W = ("contents", "write")
_FR = ("frontend", "read")
_FW = ("frontend", "write")
_NAV = {ANY_METHOD: ("navigation", "read")}

#: handler (module.qualname of the class as written) -> method -> (resource, action).
#: HEAD falls back to GET's entry.
BUILTIN_HANDLERS: Mapping[str, Mapping[str, Requirement]] = MappingProxyType(
    {
        # -- jupyter_server core -----------------------------------------------------------
        "jupyter_server.services.contents.handlers.ContentsHandler": {
            "GET": _R,
            "POST": _W,
            "PUT": _W,
            "PATCH": _W,
            "DELETE": _W,
        },
        "jupyter_server.services.contents.handlers.CheckpointsHandler": {"GET": _R, "POST": _W},
        "jupyter_server.services.contents.handlers.ModifyCheckpointsHandler": {
            "POST": _W,
            "DELETE": _W,
        },
        "jupyter_server.services.contents.handlers.TrustNotebooksHandler": {"POST": _W},
        "jupyter_server.services.contents.handlers.NotebooksRedirectHandler": _NAV,
        "jupyter_server.files.handlers.FilesHandler": {"GET": _R},
        "jupyter_server.base.handlers.AuthenticatedFileHandler": {"GET": _R},
        "hardened_server.enforcement.files.HardenedFileHandler": {"GET": _R},
        "jupyter_server.view.handlers.ViewHandler": {"GET": _R},
        "jupyter_server.services.api.handlers.PathResolverHandler": {"GET": _R},
        "jupyter_server.nbconvert.handlers.NbconvertFileHandler": {"GET": ("nbconvert", "read")},
        "jupyter_server.nbconvert.handlers.NbconvertPostHandler": {"POST": ("nbconvert", "write")},
        "jupyter_server.services.nbconvert.handlers.NbconvertRootHandler": {
            "GET": ("nbconvert", "read")
        },
        "jupyter_server.services.kernels.handlers.MainKernelHandler": {
            "GET": ("kernels", "read"),
            "POST": ("kernels", "write"),
        },
        "jupyter_server.services.kernels.handlers.KernelHandler": {
            "GET": ("kernels", "read"),
            "DELETE": ("kernels", "write"),
        },
        "jupyter_server.services.kernels.handlers.KernelActionHandler": {
            "POST": ("kernels", "write")
        },
        "jupyter_server.services.kernels.websocket.KernelWebsocketHandler": {
            "GET": ("kernels", "execute")
        },
        "jupyter_server.services.kernelspecs.handlers.MainKernelSpecHandler": {
            "GET": ("kernelspecs", "read")
        },
        "jupyter_server.services.kernelspecs.handlers.KernelSpecHandler": {
            "GET": ("kernelspecs", "read")
        },
        "jupyter_server.kernelspecs.handlers.KernelSpecResourceHandler": {
            "GET": ("kernelspecs", "read")
        },
        "jupyter_server.services.sessions.handlers.SessionRootHandler": {
            "GET": ("sessions", "read"),
            "POST": ("sessions", "write"),
        },
        "jupyter_server.services.sessions.handlers.SessionHandler": {
            "GET": ("sessions", "read"),
            "PATCH": ("sessions", "write"),
            "DELETE": ("sessions", "write"),
        },
        "jupyter_server.services.config.handlers.ConfigHandler": {
            "GET": ("config", "read"),
            "PUT": ("config", "write"),
            "PATCH": ("config", "write"),
        },
        "jupyter_server.services.events.handlers.EventHandler": {"POST": ("events", "write")},
        "jupyter_server.services.events.handlers.SubscribeWebsocket": {
            "GET": ("events", "execute")
        },
        "jupyter_server.base.handlers.PrometheusMetricsHandler": {"GET": ("metrics", "read")},
        "jupyter_server.services.shutdown.ShutdownHandler": {"POST": ("server", "write")},
        "jupyter_server.services.api.handlers.APIStatusHandler": {"GET": ("api", "read")},
        "jupyter_server.services.api.handlers.APISpecHandler": {"GET": ("api", "read")},
        "jupyter_server.base.handlers.APIVersionHandler": {"GET": ("api", "read")},
        "jupyter_server.services.api.handlers.IdentityHandler": {
            "GET": ("identity", "read"),
            "PATCH": ("identity", "write"),
        },
        "jupyter_server.services.security.handlers.CSPReportHandler": {"POST": ("csp", "write")},
        "hardened_server.enforcement.cspreport.HardenedCSPReportHandler": {
            "POST": ("csp", "write")
        },
        "jupyter_server.base.handlers.FileFindHandler": {"GET": _FR},
        "jupyter_server.base.handlers.PublicStaticFileHandler": {"GET": _FR},
        "jupyter_server.auth.login.LoginFormHandler": _NAV,
        "jupyter_server.auth.login.LoginHandler": _NAV,
        "jupyter_server.auth.logout.LogoutHandler": _NAV,
        # public by default; if a policy takes /login off routes.public, it still only logs in
        "hardened_server.enforcement.identity.provider.HardenedLoginHandler": _NAV,
        "jupyter_server.base.handlers.TrailingSlashHandler": _NAV,
        "jupyter_server.base.handlers.RedirectWithParams": _NAV,
        "jupyter_server.base.handlers.Template404": _NAV,
        # `/` when default_url is `/` (no JupyterLab): stock's "a server is running" page
        "jupyter_server.base.handlers.MainHandler": {"GET": ("navigation", "read")},
        # -- jupyter_server_terminals (routed only when terminals.enabled) -------------------
        "jupyter_server_terminals.api_handlers.TerminalRootHandler": {
            "GET": ("terminals", "read"),
            "POST": ("terminals", "write"),
        },
        "jupyter_server_terminals.api_handlers.TerminalHandler": {
            "GET": ("terminals", "read"),
            "DELETE": ("terminals", "write"),
        },
        "jupyter_server_terminals.handlers.TermSocket": {"GET": ("terminals", "execute")},
        # -- jupyterlab_server and jupyterlab: /lab, /lab/api/* ------------------------------
        "jupyterlab_server.handlers.LabHandler": {"GET": _FR},
        "jupyterlab_server.handlers.NotFoundHandler": _NAV,
        "jupyterlab_server.settings_handler.SettingsHandler": {"GET": _FR, "PUT": _FW},
        "jupyterlab_server.workspaces_handler.WorkspacesHandler": {
            "GET": _FR,
            "PUT": _FW,
            "DELETE": _FW,
        },
        "jupyterlab_server.translations_handler.TranslationsHandler": {"GET": _FR},
        "jupyterlab_server.listings_handler.ListingsHandler": {"GET": _FR},
        "jupyterlab_server.themes_handler.ThemesHandler": {"GET": _FR},
        "jupyterlab_server.licenses_handler.LicensesHandler": {"GET": _FR},
        "jupyterlab.handlers.announcements.CheckForUpdateHandler": {"GET": _FR},
        "jupyterlab.handlers.announcements.NewsHandler": {"GET": _FR},
        "jupyterlab.handlers.build_handler.BuildHandler": {
            "GET": ("extensions", "read"),
            "POST": ("extensions", "write"),
            "DELETE": ("extensions", "write"),
        },
        "jupyterlab.handlers.extension_manager_handler.ExtensionHandler": {
            "GET": ("extensions", "read"),
            "POST": ("extensions", "write"),
        },
        "jupyterlab.handlers.plugin_manager_handler.PluginHandler": {
            "GET": ("extensions", "read"),
            "POST": ("extensions", "write"),
        },
        # -- notebook 7 pages ----------------------------------------------------------------
        "notebook.app.TreeHandler": {"GET": _FR},
        "notebook.app.NotebookHandler": {"GET": _FR},
        "notebook.app.FileHandler": {"GET": _FR},
        "notebook.app.ConsoleHandler": {"GET": _FR},
        "notebook.app.TerminalHandler": {"GET": _FR},
        "notebook.app.CustomCssHandler": {"GET": _FR},
        # -- jupyter_lsp ---------------------------------------------------------------------
        "jupyter_lsp.handlers.LanguageServersHandler": {"GET": ("lsp", "read")},
        "jupyter_lsp.handlers.LanguageServerWebSocketHandler": {"GET": ("lsp", "execute")},
        # -- JupyterHub single-user (the callback is public; logout only redirects) ----------
        "jupyterhub.singleuser.extension.JupyterHubLogoutHandler": _NAV,
        "jupyterhub.singleuser.extension.JupyterHubOAuthCallbackHandler": _NAV,
    }
)

#: Routes known by pattern whatever handler serves them (hardened-server replaces some handlers).
BUILTIN_PATTERNS: Mapping[str, Mapping[str, Requirement]] = MappingProxyType(
    {
        "/metrics": {"GET": ("metrics", "read")},
        "/api/events": {"POST": ("events", "write")},
        "/api/events/subscribe": {"GET": ("events", "execute")},
    }
)

SOURCE_BUILTIN = "builtin"
SOURCE_POLICY = "policy"  # scopes.routes
SOURCE_DECLARED = "declared"  # a hardened_server handler's own hs_route_scopes
SOURCE_AUTHORIZED = "authorized"  # the handler's auth_resource + @authorized (AUTHORIZED_CLAIMS)
SOURCE_UNMAPPED = "unmapped"


@dataclass(frozen=True, slots=True)
class MethodRule:
    """What one method of one route needs."""

    resource: str
    action: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class RouteScopes:
    """The compiled requirements of one route (one pattern served by one handler class)."""

    pattern: str
    handler: str
    source: str  # builtin | policy | declared | authorized | unmapped
    methods: Mapping[str, MethodRule]  # every method of METHODS the route maps
    implemented: frozenset[str]  # methods the handler class implements

    @property
    def mapped(self) -> bool:
        return self.source != SOURCE_UNMAPPED

    def rule_for(self, method: str) -> MethodRule | None:
        return self.methods.get(method)


def _expand(
    table: Mapping[str, Requirement], resolve: Mapping[tuple[str, str], frozenset[str]]
) -> dict[str, MethodRule]:
    out: dict[str, MethodRule] = {}
    default = table.get(ANY_METHOD)
    for method in METHODS:
        req = table.get(method)
        if req is None and method == "HEAD":
            req = table.get("GET")
        if req is None:
            req = default
        if req is None:
            continue
        resource, action = req
        out[method] = MethodRule(resource, action, resolve[(resource, action)])
    return out


def _expand_authorized(claims: Mapping[str, Requirement]) -> dict[str, MethodRule]:
    """The methods whose ``@authorized`` claim is reviewed (:data:`AUTHORIZED_CLAIMS`); HEAD
    follows GET as tornado serves it. Nothing else: an implemented method left out is refused."""
    out: dict[str, MethodRule] = {}
    for method in METHODS:
        req = claims.get(method)
        if req is None and method == "HEAD":
            req = claims.get("GET")
        if req is None or req not in AUTHORIZED_CLAIMS:
            continue
        resource, action = req
        out[method] = MethodRule(resource, action, RESOURCE_SCOPES[req])
    return out


def _expand_policy(table: Mapping[str, tuple[str, ...]]) -> dict[str, MethodRule]:
    out: dict[str, MethodRule] = {}
    default = table.get(ANY_METHOD)
    for method in METHODS:
        scopes = table.get(method)
        if scopes is None and method == "HEAD":
            scopes = table.get("GET")
        if scopes is None:
            scopes = default
        if scopes is None:
            continue
        out[method] = MethodRule("policy", method.lower(), frozenset(scopes))
    return out


class RouteMap:
    """The built-in tables and the policy's ``scopes.routes``, compiled for look-ups."""

    def __init__(self, policy_routes: Mapping[str, Mapping[str, Iterable[str]]]) -> None:
        self.policy_routes: dict[str, dict[str, MethodRule]] = {
            pattern: _expand_policy({m: tuple(s) for m, s in methods.items()})
            for pattern, methods in policy_routes.items()
        }
        self._cache: dict[tuple[str, str, frozenset[str]], RouteScopes] = {}

    def lookup(
        self,
        pattern: str,
        handler: str,
        implemented: frozenset[str] = frozenset(METHODS),
        declared: Mapping[str, Requirement] | None = None,
        authorized: Mapping[str, Requirement] | None = None,
    ) -> RouteScopes:
        """The requirements of ``pattern`` served by ``handler`` (module.qualname), in order:
        the policy's entry for the pattern (``scopes.routes`` and the extension profiles), the
        handler's own declaration (hardened-server's handlers only), the built-in entry for the
        handler, the built-in entry for the pattern, then the handler's own ``@authorized``
        claims (``authorized``: method -> (resource, action), read off the class by the
        enforcement layer) when at least one is in :data:`AUTHORIZED_CLAIMS`.
        Cached: a route is compiled once per policy."""
        key = (pattern, handler, implemented)
        found = self._cache.get(key)
        if found is not None:
            return found
        if pattern in self.policy_routes:
            source, methods = SOURCE_POLICY, self.policy_routes[pattern]
        elif declared is not None and handler.startswith("hardened_server."):
            source, methods = SOURCE_DECLARED, _expand(declared, RESOURCE_SCOPES)
        elif handler in BUILTIN_HANDLERS:
            source, methods = SOURCE_BUILTIN, _expand(BUILTIN_HANDLERS[handler], RESOURCE_SCOPES)
        elif pattern in BUILTIN_PATTERNS:
            source, methods = SOURCE_BUILTIN, _expand(BUILTIN_PATTERNS[pattern], RESOURCE_SCOPES)
        elif authorized and (claimed := _expand_authorized(authorized)):
            source, methods = SOURCE_AUTHORIZED, claimed
        else:
            source, methods = SOURCE_UNMAPPED, {}
        found = RouteScopes(pattern, handler, source, MappingProxyType(methods), implemented)
        self._cache[key] = found
        return found


def describe(route: RouteScopes, methods: Iterable[str]) -> dict[str, str]:
    """What each of ``methods`` needs, for people (``audit --routes``): ``contents:read``,
    ``sessions:write+kernels:execute``, ``none`` (any logged-in principal), ``refused`` (a method
    the map does not list), or ``{"*": "unmapped"}`` for a route the map does not know."""
    if not route.mapped:
        return {ANY_METHOD: "unmapped"}
    out = {}
    for method in methods:
        if method not in METHODS:
            continue
        rule = route.methods.get(method)
        if rule is None:
            out[method] = "refused" if method in route.implemented else "n/a"
        else:
            out[method] = "+".join(sorted(rule.scopes)) or "none"
    return out


def scope_allows(route: RouteScopes, method: str, granted: frozenset[str]) -> bool:
    """The hot path of :func:`scope_decision`: one dictionary look-up and a subset test."""
    rule = route.methods.get(method)
    if rule is None:
        return route.mapped and method not in route.implemented
    return not rule.scopes or rule.scopes <= granted or ADMIN in granted


def refusal_message(decision: Decision, route: RouteScopes, method: str) -> str:
    """What the 403 says to the (authenticated) caller, after the rule id: which scope is
    missing, as RFC 6750's ``insufficient_scope`` does, or which policy key the operator must
    set. No client input, no route pattern (tornado formats messages with ``%``)."""
    if decision.rule_id == Rule.SCOPE_MISSING:
        rule = route.methods[method]
        needed = ", ".join(sorted(rule.scopes))
        return f"Forbidden ({Rule.SCOPE_MISSING}): this request needs the scope(s) {needed}"
    if decision.rule_id == Rule.SCOPE_EVENT_SCHEMA:
        return (
            f"Forbidden ({Rule.SCOPE_EVENT_SCHEMA}): event schema not listed in the policy key "
            "scopes.client_event_schemas"
        )
    return (
        f"Forbidden ({Rule.SCOPE_UNMAPPED}): route not in the route map; the operator must map "
        "it in scopes.routes"
    )


def scope_decision(route: RouteScopes, method: str, granted: frozenset[str]) -> Decision:
    """May a principal holding ``granted`` make a ``method`` request on ``route``?

    * a route nobody mapped: refused (HS-SCOPE-002), whatever the principal holds;
    * a method the handler does not implement: allowed here (tornado answers 405 itself, and a
      handler's own ``prepare`` may answer 404); nothing runs;
    * a method the handler implements but the map does not list: refused (fail closed);
    * otherwise all the listed scopes are needed; ``admin`` holds every scope.
    """
    if not route.mapped:
        return Decision(
            False,
            Rule.SCOPE_UNMAPPED,
            f"route {route.pattern!r} ({route.handler}) is not in the route map; "
            "map it in the policy key scopes.routes",
        )
    rule = route.methods.get(method)
    if rule is None:
        if method not in route.implemented:
            return Decision(True, Rule.SCOPE_GRANTED, f"{method} is not implemented here")
        return Decision(
            False,
            Rule.SCOPE_UNMAPPED,
            f"{method} of route {route.pattern!r} ({route.handler}) is not in the route map; "
            "map it in the policy key scopes.routes",
        )
    if not rule.scopes or ADMIN in granted or rule.scopes <= granted:
        return Decision(True, Rule.SCOPE_GRANTED, f"{rule.resource}:{rule.action}")
    missing = ", ".join(sorted(rule.scopes - granted))
    return Decision(
        False,
        Rule.SCOPE_MISSING,
        f"{method} {rule.resource}:{rule.action} needs scope {missing}",
    )


def authorizer_scopes(
    resource: str, action: str, route: RouteScopes | None, method: str
) -> frozenset[str] | None:
    """What jupyter_server's ``is_authorized(handler, user, action, resource)`` needs: the
    resource table first (the same one the route map resolves through); for a resource it does
    not know, the route's own policy mapping (an extension's ``@authorized`` with its own
    resource name, on a route the operator mapped); else ``None``: refuse."""
    scopes = RESOURCE_SCOPES.get((resource, action))
    if scopes is not None:
        return scopes
    if route is not None and route.source == SOURCE_POLICY:
        rule = route.methods.get(method)
        if rule is not None:
            return rule.scopes
    return None


def client_event_decision(body: bytes, client_schemas: frozenset[str]) -> Decision:
    """POST /api/events emits an event on the server's bus, which the audit trail and every
    subscriber trust. Stock jupyter_server lets any authenticated client emit any registered
    schema, the server's own included (a forged ``contents_service`` delete, a forged audit
    record). Only the schemas the policy lists for clients pass."""
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        payload = None
    schema_id = payload.get("schema_id") if isinstance(payload, dict) else None
    if not isinstance(schema_id, str):
        return Decision(False, Rule.SCOPE_EVENT_SCHEMA, "no schema_id in the event body")
    if schema_id not in client_schemas:
        shown = json.dumps(schema_id[:120])
        return Decision(
            False,
            Rule.SCOPE_EVENT_SCHEMA,
            f"event schema {shown} is not listed in scopes.client_event_schemas",
        )
    return Decision(True, Rule.SCOPE_EVENT_SCHEMA, "a client event schema")
