"""The enforcement layer over every route, keeping jupyter_server's hook names.

Every rule of the application is re-pointed at a per-route subclass of its handler with a
hardened mixin first in the MRO, so

* a wrapped handler is still a subclass of the original (``isinstance`` checks, extension code and
  jupyter_server's own ``super()`` chains keep working);
* jupyter_server's hooks keep their names and meaning (``content_security_policy``,
  ``check_host``, ``check_origin``, ``skip_check_origin``, ``set_cors_headers``, ``prepare``) but
  answer from the policy;
* plain ``tornado.web.RequestHandler`` routes (``TrailingSlashHandler``, ``RedirectWithParams``,
  ``PublicStaticFileHandler``, an extension's bare handler), which never run JupyterHandler code,
  get the Host check and the authentication gate too. Their headers come from the output
  transform (:mod:`hardened_server.enforcement.transform`), like everyone else's.

The authentication gate is the policy's, not the decorators': a route not listed in
``routes.public`` needs a logged-in user whatever its methods are decorated with
(``@allow_unauthenticated`` included), and a route whose methods carry no decorator at all stops
the server at start-up (:func:`hardened_server.policy.startup.check_routes`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import pwd
import signal
import socket
import urllib.parse
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_client.kernelspec import NoSuchKernel
from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import (
    APIHandler,
    AuthenticatedFileHandler,
    JupyterHandler,
    PrometheusMetricsHandler,
)
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.kernelspecs.handlers import KernelSpecResourceHandler
from jupyter_server.services.events.handlers import EventHandler
from jupyter_server.services.security.handlers import CSPReportHandler
from tornado import httputil, web
from tornado.log import app_log
from tornado.routing import PathMatches, Rule, RuleRouter
from tornado.websocket import WebSocketHandler

from hardened_server.enforcement import gate, localpeer
from hardened_server.enforcement.activity import activity_mixins
from hardened_server.enforcement.bodies import PARSED_ATTR, check_json_body
from hardened_server.enforcement.connections import (
    POLICY_VIOLATION,
    Binding,
    binding_of,
    close_reason,
    credential_decision,
    record_close,
    scopes_decision,
)
from hardened_server.enforcement.context import (
    enter_request_context,
    non_owner_of,
    set_context_user,
)
from hardened_server.enforcement.events import event_mixins, server_schema_decision
from hardened_server.enforcement.files import path_guard_mixins
from hardened_server.enforcement.identity.provider import WEBSOCKET_URL
from hardened_server.enforcement.marks import mark
from hardened_server.enforcement.nonce import NONCE_ATTR, new_nonce, nonce_of
from hardened_server.enforcement.recorder import record_denial, record_event
from hardened_server.enforcement.runtime import SETTINGS_KEY, Compiled, PolicyRuntime, client_key
from hardened_server.policy.bodies import NOT_PARSED
from hardened_server.policy.decisions import Decision, RouteClass
from hardened_server.policy.decisions import Rule as RuleId
from hardened_server.policy.headers import PAGE_EVAL
from hardened_server.policy.routeclass import (
    KIND_API,
    KIND_FILES,
    KIND_KERNELSPEC,
    KIND_NBCONVERT,
    KIND_PLAIN,
    KIND_STATIC,
    KIND_WEBSOCKET,
    RouteInfo,
    relative_pattern,
)
from hardened_server.policy.scopemap import (
    METHODS,
    Requirement,
    RouteScopes,
    client_event_decision,
    refusal_message,
    scope_allows,
    scope_decision,
)
from hardened_server.policy.scopes import scopes_of
from hardened_server.policy.startup import RouteFact
from hardened_server.policy.tokens import is_blank_token_scheme, parse_authorization
from hardened_server.trail.record import EventKind

UNREGISTERED = "<unregistered>"

#: The 403 message (JSON ``message`` on API and websocket routes) when the refused request
#: carried its token in the URL.
URL_TOKEN_REFUSED = (
    f"A token in the URL (?token=) is not accepted here ({RuleId.ID_TOKEN_MISPLACED}). Send it "
    "in the header 'Authorization: token <token>' instead."
)

#: Handlers whose state-changing requests are made by the browser itself, which cannot add an
#: XSRF token: CSP violation reports (``report-uri``, which the policy turns on). The cross-site
#: decision still applies to them; only the token is not asked for. Nothing else is exempt, and
#: a handler's own ``check_xsrf_cookie`` (an extension switching the check off) is not honoured:
#: the mixin's runs first.
XSRF_EXEMPT: tuple[type, ...] = (CSPReportHandler,)


def handler_kinds(cls: type) -> frozenset[str]:
    kinds: set[str] = set()
    if issubclass(cls, APIHandler | PrometheusMetricsHandler):
        kinds.add(KIND_API)
    if issubclass(cls, WebSocketHandler):
        kinds.add(KIND_WEBSOCKET)
    if issubclass(cls, AuthenticatedFileHandler | FilesHandler):
        kinds.add(KIND_FILES)
    elif issubclass(cls, KernelSpecResourceHandler):
        kinds.add(KIND_KERNELSPEC)
    elif issubclass(cls, web.StaticFileHandler):
        kinds.add(KIND_STATIC)
    if cls.__module__.startswith("jupyter_server.nbconvert"):
        kinds.add(KIND_NBCONVERT)
    if not issubclass(cls, JupyterHandler):
        kinds.add(KIND_PLAIN)
    return frozenset(kinds)


def _has_auth_decorator(method: Any) -> bool:
    """``@web.authenticated``, ``@ws_authenticated`` or the explicit opt-out
    ``@allow_unauthenticated`` (both jupyter_server decorators set ``__allow_unauthenticated``;
    for the opt-out, the policy's public list then decides), on the method or on any function
    it wraps: ``functools.wraps`` keeps the chain in ``__wrapped__``, and jupyterlab-git's
    ``SshHostHandler`` puts ``@authorized`` *around* ``@tornado.web.authenticated``, which
    jupyter_server's own check (``_has_tornado_web_authenticated``, looking at the outermost
    function only) calls undecorated. The order does not weaken anything here: every
    non-public route needs a logged-in user in ``prepare()``, before any method runs."""
    from jupyter_server.serverapp import _has_tornado_web_authenticated

    for _ in range(_MAX_WRAPPERS):  # a cycle ends there, as undecorated
        if hasattr(method, "__allow_unauthenticated") or _has_tornado_web_authenticated(method):
            return True
        method = getattr(method, "__wrapped__", None)
        if method is None:
            return False
    return False


def implemented_methods(cls: type) -> frozenset[str]:
    """The methods of :data:`METHODS` the handler class implements (others are tornado's 405)."""
    return frozenset(
        m
        for m in METHODS
        if getattr(cls, m.lower(), web.RequestHandler._unimplemented_method)
        is not web.RequestHandler._unimplemented_method
    )


def undecorated_methods(cls: type[web.RequestHandler]) -> tuple[str, ...]:
    missing = []
    for name in cls.SUPPORTED_METHODS:
        method = getattr(cls, name.lower(), None)
        if method is None or method is web.RequestHandler._unimplemented_method:
            continue
        if name == "OPTIONS":  # CORS preflights carry no credentials by design
            continue
        if not _has_auth_decorator(method):
            missing.append(name)
    return tuple(missing)


# The mixins go first in the MRO of a subclass of the handler they harden (wrap_handler), so
# their super() calls reach that handler. At run time they derive from object; to the type
# checker they derive from the class they are mixed into.
if TYPE_CHECKING:
    _RequestHandlerBase = web.RequestHandler
    _JupyterHandlerBase = JupyterHandler
    _WebSocketHandlerBase = WebSocketHandler
else:
    _RequestHandlerBase = _JupyterHandlerBase = _WebSocketHandlerBase = object


class _Hardened(_RequestHandlerBase):
    """What the Jupyter and the plain mixins share: the login gate, the rate limit, the
    cross-site and origin checks, the session-bound XSRF token and the redirect validator.
    The rules themselves live in :mod:`hardened_server.enforcement.gate` and the pure policy
    modules; this is the tornado plumbing."""

    _hs_wrapped: ClassVar[bool] = True
    _hs_pattern: ClassVar[str] = UNREGISTERED
    _hs_kinds: ClassVar[frozenset[str]] = frozenset()
    _hs_original: ClassVar[type]
    _hs_xsrf_exempt: ClassVar[bool] = False
    _hs_handler: ClassVar[str] = UNREGISTERED
    _hs_methods: ClassVar[frozenset[str]] = frozenset(METHODS)
    _hs_declared: ClassVar[dict[str, Requirement] | None] = None
    _hs_authorized: ClassVar[dict[str, Requirement] | None] = None
    _hs_client_events: ClassVar[bool] = False

    def __init__(self, application: Any, request: Any, **kwargs: Any) -> None:
        runtime: PolicyRuntime = application.settings[SETTINGS_KEY]
        compiled = runtime.current
        self._hs_runtime = runtime
        self._hs_compiled = compiled
        self._hs_route = compiled.route(self._hs_pattern, self._hs_kinds)
        self._hs_scopes: RouteScopes = self._hs_scopes_under(compiled)
        self._hs_user_known = False
        self._hs_xsite: Decision | None = None
        self._hs_retry_after: int | None = None
        # The output transform reads the route class off the request (it never sees us).
        mark(
            request,
            hs_route_class=self._hs_route.route_class,
            hs_unsafe_eval=self._hs_route.unsafe_eval,
        )
        if self._hs_route.script_nonce:
            # routes.script_nonce: a fresh nonce for this response (enforcement/nonce.py).
            mark(request, **{NONCE_ATTR: new_nonce()})
        super().__init__(application, request, **kwargs)

    def _hs_scopes_under(self, compiled: Compiled) -> RouteScopes:
        """What this route's methods need under ``compiled`` (at the request, and again for an
        open websocket after a policy reload)."""
        return compiled.route_scopes(
            self._hs_pattern,
            self._hs_handler,
            self._hs_methods,
            self._hs_declared,
            self._hs_authorized,
        )

    # -- decisions -----------------------------------------------------------------------------

    def _hs_host_decision(self) -> Decision:
        return gate.host_decision(self.request, self._hs_compiled, self._hs_runtime)

    def _hs_deny(self, decision: Decision) -> None:
        record_denial(self.request, decision, self._hs_route.route_class)

    def _hs_refuse(self, decision: Decision, status: int = 403) -> None:
        """Record and raise: a short message, the same for every reason (the record has it)."""
        self._hs_deny(decision)
        raise web.HTTPError(status, gate.MESSAGES.get(status))

    def _hs_check_host(self) -> bool:
        decision = self._hs_host_decision()
        if not decision:
            self._hs_deny(decision)
        return decision.allowed

    def _hs_needs_login(self) -> bool:
        return not self._hs_route.public

    def _hs_answers_preflight(self) -> bool:
        """The mixin itself answers an anonymous ``OPTIONS`` here (a CORS preflight on an API
        route, from the ``cors.*`` policy alone) and no handler code runs for it. Anywhere
        else an anonymous ``OPTIONS`` would run the handler's (an extension's) own
        ``options()``, which carries no authentication decorator by convention: refused."""
        return False

    def _hs_refuse_unauthenticated(self) -> None:
        """Send an anonymous request on a non-public route away: a page navigation to the
        login page (with ``next``), anything else 403."""
        route: RouteInfo = self._hs_route
        self._hs_deny(
            Decision(False, RuleId.AUTH_REQUIRED, "route is not public and no user is logged in")
        )
        is_upgrade = self.request.headers.get("Upgrade", "").lower() == "websocket"
        if (
            self.request.method in ("GET", "HEAD")
            and route.route_class == RouteClass.PAGE
            and not is_upgrade
        ):
            provider = self.application.settings.get("identity_provider")
            outside_login = getattr(provider, "hs_login_redirect", None)
            if outside_login is not None:
                # A login run elsewhere (JupyterHub OAuth): the provider builds the whole URL,
                # its state included; the runtime's ``external_redirects`` let it through.
                self.redirect(outside_login(self))
                return
            login_url = self.application.settings.get("login_url", "/login")
            next_url = self.request.uri or "/"
            sep = "&" if "?" in login_url else "?"
            self.redirect(login_url + sep + urllib.parse.urlencode({"next": next_url}))
            return
        if "token" in self.request.query_arguments:
            # A client that put its token in the URL (jupyter_kernel_client and
            # @jupyterlab/services in Node do, for websockets) learns what to do instead
            # (issue #16), and the record says a token was misplaced, not merely missing.
            self._hs_deny(
                Decision(
                    False,
                    RuleId.ID_TOKEN_MISPLACED,
                    "token in the URL where only the Authorization header is accepted",
                )
            )
            raise web.HTTPError(403, URL_TOKEN_REFUSED)
        if self._hs_is_stock_stop():
            self._hs_answer_stock_stop()
        raise web.HTTPError(403)

    def _hs_is_stock_stop(self) -> bool:
        """Stock ``jupyter server stop PORT``: ``POST <base_url>api/shutdown`` with the empty
        token of our ``jpserver-<pid>.json`` (which never holds a credential). For a server on
        a Unix socket (``jupyter server stop SOCKET``) stock cannot join ``api/shutdown`` to
        its ``http+unix://`` URL and POSTs the URL itself, ``<base_url>``: that shape counts
        on the server's Unix socket only."""
        request = self.request
        if request.method != "POST" or not is_blank_token_scheme(
            request.headers.get("Authorization")
        ):
            return False
        base_url = self._hs_compiled.base_url
        if request.path == base_url + "api/shutdown":
            return True
        context = getattr(request.connection, "context", None)
        return request.path == base_url and (
            getattr(context, "address_family", None) == socket.AF_UNIX
        )

    async def _hs_stop_by_peer(self) -> bool:
        """Stock ``jupyter server stop`` on this machine, as this server's user: the operating
        system says which process is at the other end of the connection, and that process
        could send the server ``SIGTERM`` (same user, same PID namespace), which is what stock's
        stop does itself five seconds later. Accepted then: one HS-SERVER-001 record naming the
        process, ``202 Accepted``, and the graceful shutdown ``SIGTERM`` starts. Anything else
        (another user, a forwarder such as a tunnel agent or a proxy, a remote peer): False,
        and the request is refused as before (SECURITY.md, "Stopping a server")."""
        stream = getattr(self.request.connection, "stream", None)
        sock = getattr(stream, "socket", None)
        if sock is None:
            return False
        loop = asyncio.get_running_loop()
        peer = await loop.run_in_executor(None, localpeer.peer_process, sock)
        allowed, why = localpeer.may_stop_this_server(peer)
        if not allowed:
            app_log.info(
                "stock `jupyter server stop` not accepted: %s%s",
                why, f" ({peer.describe()})" if peer is not None and peer.pid else "",
            )
            return False
        if peer is None:  # may_stop_this_server refuses None; for the type checker
            return False
        try:
            name = pwd.getpwuid(peer.uid).pw_name
        except KeyError:
            name = f"uid {peer.uid}"
        record_event(
            self.request,
            EventKind.SERVER_STOP_REQUESTED,
            rule_id=RuleId.SERVER_STOP_REQUESTED,
            allowed=True,
            reason=f"server stop requested by `jupyter server stop` ({peer.describe()}); {why}",
            user=f"local user {name}",
        )
        self.set_status(202)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        done = self.finish(
            json.dumps({"message": "stopping: the graceful shutdown (SIGTERM) has started"})
        )
        # The same path as Control-C, ``hardened-server stop`` and stock's own fallback, in
        # no request's context (the stop's record is the one above; the trail ends ``close``).
        done.add_done_callback(lambda _: os.kill(os.getpid(), signal.SIGTERM))
        return True

    def _hs_answer_stock_stop(self) -> None:
        """Stock's stop from anyone the operating system does not vouch for (see
        :meth:`_hs_stop_by_peer`): refused like any anonymous request (HS-AUTH-001 recorded),
        with the way to stop the server in the status line's reason phrase: stock's
        ``shutdown_server`` raises on any status but 2xx and the user sees only the
        exception's last line, ``HTTPClientError: HTTP 403: <reason>``."""
        serverapp = self.application.settings.get("serverapp")
        where = getattr(serverapp, "sock", None) or getattr(serverapp, "port", None) or "PORT"
        reason = (
            f"Forbidden ({RuleId.AUTH_REQUIRED}): jpserver-*.json holds no credential; stop "
            f"this server with: hardened-server stop {where}"
        )
        raise web.HTTPError(403, reason, reason=reason)

    def _hs_token_authenticated(self) -> bool:
        return bool(getattr(self, "_token_authenticated", False))

    def _hs_header_token(self) -> bool:
        """Authenticated by a token in the Authorization header: a browser cannot attach one
        cross-site without a CORS preflight (which the allow-list answers), so such a request
        is not a cross-site request forgery, and needs neither the cross-site check nor an
        XSRF token (stock behaviour for token requests, kept). The token's source is where the
        provider *read* it: a URL token stays a URL token when the request also carries some
        other ``Authorization`` (``Basic``, which browsers send on every request behind an
        HTTP-Basic proxy; issue #18)."""
        if not self._hs_token_authenticated():
            return False
        source = getattr(self, "_hs_token_source", None)
        if source is None:
            # A provider that does not say where it read the token (JupyterHub's): a token
            # or Bearer header is the only place it reads one from there.
            header = self.request.headers.get("Authorization")
            return parse_authorization(header) is not None
        # A stored token from a websocket handshake's URL (tokens.websocket_url_tokens =
        # "stored-scoped") is no ambient credential either; the origin check still runs.
        return source in ("header", WEBSOCKET_URL)

    def _hs_presented_credentials(self) -> bool:
        request = self.request
        if "Authorization" in request.headers or "token" in request.query_arguments:
            return True
        if "password" in request.body_arguments:
            return True
        provider = self.application.settings.get("identity_provider")
        name = provider.get_cookie_name(self) if provider is not None else None
        return name in request.cookies if name else bool(request.cookies)

    def _hs_rate_limit(self) -> None:
        """Charge an unauthenticated request to its client's bucket; 429 when it is empty."""
        cost = gate.FAILED_CREDENTIAL_COST if self._hs_presented_credentials() else 1
        wait = self._hs_runtime.limiter.charge(client_key(self.request.remote_ip or ""), cost)
        if wait is not None:
            self._hs_retry_after = wait
            self._hs_refuse(
                Decision(False, RuleId.LIMIT_RATE, "unauthenticated request budget is spent"), 429
            )

    def _hs_cross_site(self) -> Decision:
        """Fetch Metadata, then Origin, then Referer (policy/fetchmeta.py). A request with none
        of them (a non-browser client holding a login cookie) may instead prove with the
        session-bound XSRF token that it got it from our own page."""
        if self._hs_xsite is None:
            decision = gate.request_cross_site_decision(
                self.request, self._hs_route.route_class, self._hs_compiled
            )
            if (
                decision.rule_id == RuleId.ORIGIN_ABSENT
                and "Sec-Fetch-Site" not in self.request.headers
            ):
                rescued = self._hs_xsrf_decision()
                if rescued:
                    decision = rescued
            self._hs_xsite = decision
        return self._hs_xsite

    async def _hs_gate(self) -> bool:
        """The per-route gate, run first in ``prepare``. False: the request was answered
        (a redirect to the login page)."""
        # OPTIONS goes through the same gate (issue #18): the user is resolved (a wrong token
        # is refused and recorded), an anonymous one is charged to the rate limit (a wrong
        # token costs as much as on any method), and only the mixin's own preflight answer is
        # open to anonymous clients.
        user = await self._hs_current_user()
        self._hs_set_user(user)
        self._hs_user_known = True
        preflight = self.request.method == "OPTIONS"
        if user is None:
            self._hs_rate_limit()
            if self._hs_needs_login() and not (preflight and self._hs_answers_preflight()):
                if self._hs_is_stock_stop() and await self._hs_stop_by_peer():
                    return False
                self._hs_refuse_unauthenticated()
                return False
            return True
        if self._hs_route.public or preflight:
            # A logged-in OPTIONS: a preflight carries no cookie, so this is a non-browser
            # client that already proved who it is; the CORS answer does not depend on it.
            return True
        if not self._hs_header_token():
            decision = self._hs_cross_site()
            if not decision:
                self._hs_refuse(decision)
        origin = gate.origin_decision(self.request, self._hs_compiled)
        if not origin:
            self._hs_refuse(origin)
        self._hs_check_scopes(user)
        self._hs_record_non_owner(user)
        return True

    def _hs_record_non_owner(self, user: Any) -> None:
        """Every request let through for someone other than the server's owner leaves a record
        (HS-HUB-004), reads as much as writes: the owner's trail shows who else looked at the
        files, the kernels and the terminals, not only who was refused (issue #19 item 8). One
        per request (a websocket: one for its handshake, none per message). The owner's own
        requests are not recorded here (their writes, kernel starts, ... are, as always)."""
        kind = non_owner_of(user)
        if kind is None:
            return
        owner = getattr(user, "hs_owner_name", None) or "?"
        record_event(
            self.request,
            EventKind.NON_OWNER_ACCESS,
            rule_id=RuleId.HUB_NON_OWNER_ACCESS,
            allowed=True,
            reason=f"request by hub {kind} {getattr(user, 'username', '?')!r}, "
            f"not the server's owner {owner!r}",
            user=user,
            route_class=self._hs_route.route_class,
            owner=owner,
        )

    # -- scopes --------------------------------------------------------------------------------

    def _hs_check_scopes(self, user: Any) -> None:
        """The route map: this route and method need these scopes, and the user has them or
        gets 403 (HS-SCOPE-001), before any handler code runs, websocket upgrades included.
        A route the map does not know is refused for everyone (HS-SCOPE-002). The message
        names the missing scope: the caller is authenticated, and RFC 6750's
        ``insufficient_scope`` does the same. POST /api/events also needs a client schema."""
        method = self.request.method or ""
        if self._hs_client_events and method == "POST":
            # The floor, before any policy-dependent answer: a server schema (the audit
            # trail's, jupyter_server's own) is never a client's to emit, whatever
            # scopes.client_event_schemas lists and whichever scopes the caller holds.
            floor = server_schema_decision(self.request.body)
            if not floor:
                self._hs_deny(floor)
                raise web.HTTPError(403, floor.reason)
        granted = scopes_of(user)
        if not scope_allows(self._hs_scopes, method, granted):
            decision = scope_decision(self._hs_scopes, method, granted)
            self._hs_deny(decision)
            raise web.HTTPError(403, refusal_message(decision, self._hs_scopes, method))
        if self._hs_client_events and method == "POST":
            decision = client_event_decision(
                self.request.body, self._hs_compiled.client_event_schemas
            )
            if not decision:
                self._hs_deny(decision)
                raise web.HTTPError(403, refusal_message(decision, self._hs_scopes, method))

    def _hs_set_user(self, user: Any) -> None:
        self.current_user = user
        set_context_user(self.request, user)

    # -- XSRF ----------------------------------------------------------------------------------

    def _hs_user(self) -> Any:
        # tornado's current_user property would call get_current_user, which jupyter_server
        # refuses before prepare; read what prepare stored.
        return self.__dict__.get("_current_user")

    def _hs_expected_xsrf(self) -> bytes | None:
        identity = gate.session_identity(self._hs_user())
        if identity is None:
            return None
        return gate.bound_xsrf_raw(self.application.settings["cookie_secret"], identity)

    def _hs_supplied_xsrf(self) -> str | None:
        return (
            self.get_argument("_xsrf", None)
            or self.request.headers.get("X-Xsrftoken")
            or self.request.headers.get("X-Csrftoken")
        )

    def _hs_xsrf_decision(self) -> Decision:
        expected = self._hs_expected_xsrf()
        supplied = self._hs_supplied_xsrf()
        if expected is not None:
            return gate.xsrf_decision(supplied, expected)
        # Anonymous (the login form): tornado's double submit; nothing to bind it to yet.
        if not supplied:
            return Decision(False, RuleId.XSRF_MISSING, "no _xsrf argument or X-XSRFToken header")
        try:
            web.RequestHandler.check_xsrf_cookie(self)
        except web.HTTPError:
            return Decision(False, RuleId.XSRF_MISMATCH, "XSRF token does not match its cookie")
        return Decision(True, RuleId.XSRF_BOUND, "anonymous double-submit token")

    @property
    def xsrf_token(self) -> bytes:
        """For a logged-in user, HMAC(cookie secret, session identity) in tornado's masked
        format, and the ``_xsrf`` cookie set to carry it whenever the browser's cookie does
        not (a tossed or stale one is overwritten on the next page). Anonymous: tornado's."""
        expected = self._hs_expected_xsrf()
        if expected is None:
            anonymous: bytes = super().xsrf_token
            self._hs_harden_xsrf_cookie()
            return anonymous
        token: bytes | None = getattr(self, "_hs_xsrf_token", None)
        if token is None:
            token = gate.encode_xsrf(expected)
            self._hs_xsrf_token = token
            name = self.settings.get("xsrf_cookie_name", "_xsrf")
            if gate.decode_xsrf(self.get_cookie(name)) != expected:
                kwargs = dict(self.settings.get("xsrf_cookie_kwargs") or {})
                kwargs.setdefault("samesite", "Strict")
                if self.request.protocol == "https":
                    kwargs.setdefault("secure", True)
                self.set_cookie(name, token, **kwargs)
        return token

    def _hs_harden_xsrf_cookie(self) -> None:
        """tornado sets the anonymous ``_xsrf`` cookie (login page) with the application-wide
        ``xsrf_cookie_kwargs``; give the one this response sets SameSite=Strict and, over TLS
        (direct or through a trusted proxy), Secure."""
        jar = getattr(self, "_new_cookie", None)
        name = self.settings.get("xsrf_cookie_name", "_xsrf")
        if jar is None or name not in jar:
            return
        morsel = jar[name]
        if not morsel["samesite"]:
            morsel["samesite"] = "Strict"
        if self.request.protocol == "https":
            morsel["secure"] = True

    def check_xsrf_cookie(self) -> None:
        """The expected token is bound to the session, so a cookie tossed from a sibling domain
        together with a matching ``_xsrf`` argument fails (403). Requests authenticated by the
        Authorization header need no token (a browser cannot forge that header cross-site).
        GET/HEAD (``/files`` and ``/nbconvert`` call this explicitly): the cross-site decision
        made in ``prepare`` stands in for the token. Tornado calls this before ``prepare``;
        it is then deferred until the user is known."""
        if not self._hs_user_known:
            return
        if self._hs_token_authenticated():
            return
        if (
            self.request.method in gate.SAFE_METHODS or self._hs_xsrf_exempt
        ) and self._hs_cross_site():
            return
        decision = self._hs_xsrf_decision()
        if not decision:
            self._hs_refuse(decision)

    # -- redirects -----------------------------------------------------------------------------

    def redirect(self, url: str, permanent: bool = False, status: int | None = None) -> None:
        """Every redirect of every route (login ``next``, TrailingSlashHandler,
        RedirectWithParams, FilesRedirectHandler, extensions) goes to a same-origin path under
        base_url, or to base_url (policy/redirects.py)."""
        target, decision = gate.checked_location(
            url,
            self.request,
            self._hs_compiled.base_url,
            external=self._hs_runtime.external_redirects,
        )
        if not decision:
            self._hs_deny(decision)
        super().redirect(target, permanent=permanent, status=status)

    # -- errors --------------------------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """API errors are JSON ``{"message", "reason"}`` as in jupyter_server, with no
        traceback (CVE-2023-49080), and are finished by tornado's own ``finish``: some
        extension handlers override ``finish`` with a signature ``send_error`` cannot call
        (jupyterlab_server's LicensesHandler makes every error response hang)."""
        if self._hs_retry_after is not None:
            self.set_header("Retry-After", str(self._hs_retry_after))
            if status_code == 429:
                # A flooding client gets the gate's short answer: no error page rendered from
                # a template for every refused attempt.
                gate.write_refusal_body(self, 429, self._hs_route.route_class == RouteClass.API)
                return
        if self._hs_route.route_class != RouteClass.API:
            super().write_error(status_code, **kwargs)
            return
        message = httputil.responses.get(status_code, "Unknown HTTP Error")
        reply: dict[str, Any] = {"message": message, "reason": None}
        exc_info = kwargs.get("exc_info")
        if exc_info:
            exc = exc_info[1]
            if isinstance(exc, NoSuchKernel):
                # POST /api/kernels {"name": "<no such spec>"}: jupyter_server lets it escape.
                exc = web.HTTPError(400, "no kernel spec by that name (GET /api/kernelspecs)")
                self.set_status(400)
            cause = getattr(exc, "__cause__", None)
            if (
                isinstance(exc, web.HTTPError)
                and exc.status_code >= 500
                and isinstance(cause, web.HTTPError)
                and 400 <= cause.status_code < 500
            ):
                # A handler's catch-all (jupyter_server's sessions handler wraps every
                # exception in a 500) must not turn a refusal of bad input into a server error.
                exc = cause
                self.set_status(cause.status_code)
                message = httputil.responses.get(cause.status_code, message)
                reply["message"] = message
            if isinstance(exc, web.HTTPError):
                reply["message"] = exc.log_message or message
                reply["reason"] = exc.reason
            else:
                reply["message"] = "Unhandled error"
        self.set_header("Content-Type", "application/json")
        web.RequestHandler.finish(self, json.dumps(reply))

    async def _hs_current_user(self) -> Any:
        provider = self.application.settings["identity_provider"]
        user = provider.get_user(self)
        if isinstance(user, Awaitable):
            user = await user
        return user


class HardenedJupyterMixin(_Hardened, _JupyterHandlerBase):
    """First in the MRO of every wrapped ``JupyterHandler`` subclass."""

    _jupyter_current_user: Any

    @property
    def content_security_policy(self) -> str:
        """The policy's CSP for this route's class (replaces jupyter_server's concatenation)."""
        route = self._hs_route
        key = PAGE_EVAL if route.unsafe_eval else route.route_class
        nonce = nonce_of(self.request)
        if nonce is not None:
            return self._hs_compiled.csp_with_nonce(key, nonce)
        return self._hs_compiled.csp[key]

    def check_host(self) -> bool:
        """Host allow-list, always on (jupyter_server skips it when allow_remote_access).
        The application already refused a foreign Host before routing; kept under its hook
        name for code that calls it."""
        return self._hs_check_host()

    def skip_check_origin(self) -> bool:
        """Only CORS preflights skip the origin check. Stock skips it for any
        token-authenticated request, which a page can trigger with ``?token=``."""
        return self.request.method == "OPTIONS"

    def check_origin(self, origin_to_satisfy_tornado: str | None = None) -> bool:
        """Same origin (Host already on the allow-list) or an origin on the CORS allow-list;
        compared on normalised forms, never by prefix (CVE-2026-40110). Used for API requests
        and websocket handshakes alike (tornado calls it with the handshake's Origin). A
        request without Origin is left to the cross-site decision in ``prepare``."""
        if self.skip_check_origin():
            return True
        decision = gate.origin_decision(self.request, self._hs_compiled)
        if not decision:
            self._hs_deny(decision)
        return decision.allowed

    def set_cors_headers(self) -> None:
        """``Vary: Origin`` always; ``Access-Control-*`` only for an origin on the allow-list
        (exact or full-match pattern), never reflected otherwise (stock reflects any Origin on
        token-authenticated requests). Preflights are answered from ``cors.*`` alone."""
        for name, value in gate.cors_response_headers(self.request, self._hs_compiled):
            self.set_header(name, value)

    def _hs_answers_preflight(self) -> bool:
        return self._hs_route.route_class == RouteClass.API

    @allow_unauthenticated
    def options(self, *args: Any, **kwargs: Any) -> Any:
        """CORS preflight on API routes: the headers ``set_cors_headers`` chose, and 204. Stock
        advertises every method and reflects Origin when ``authorization`` is requested."""
        if self._hs_route.route_class != RouteClass.API:
            return super().options(*args, **kwargs)
        if "Origin" in self.request.headers:
            decision = gate.preflight_decision(self.request, self._hs_compiled)
            if not decision:
                self._hs_deny(decision)
        self.set_status(204)
        return self.finish()

    def _hs_token_authenticated(self) -> bool:
        return bool(self.token_authenticated)

    def get_json_body(self) -> Any:
        """Stock decodes the body as UTF-8 before parsing and lets the error escape: any
        handler that reads JSON answered a non-UTF-8 body with 500. Bad input is a 400.

        The body check in ``prepare`` (bodies.py) parsed it already: the handler gets that
        value once (what parsing the same bytes again gives; the check never changes it). Any
        further call parses afresh, as stock does."""
        parsed = self.__dict__.pop(PARSED_ATTR, NOT_PARSED)
        if parsed is not NOT_PARSED:
            return parsed
        try:
            return super().get_json_body()
        except UnicodeDecodeError:
            raise web.HTTPError(400, "Invalid JSON in body of request") from None

    @property
    def template_namespace(self) -> dict[str, Any]:
        """No template gets the start-up token (stock passes it to every page it renders).
        ``csp_nonce``: this response's nonce on a ``routes.script_nonce`` route, else None."""
        namespace = dict(super().template_namespace)
        namespace["token"] = ""
        namespace["csp_nonce"] = nonce_of(self.request)
        return namespace

    def _hs_set_user(self, user: Any) -> None:
        self.current_user = self._jupyter_current_user = user
        set_context_user(self.request, user)

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        """Host, then the gate (authentication, rate limit, cross-site, origin), then
        jupyter_server's own ``prepare`` (which sets the CORS headers and checks the XSRF token
        of state-changing requests through the hooks above)."""
        enter_request_context(self)
        if not self.check_host():
            self.current_user = self._jupyter_current_user = None
            raise web.HTTPError(403)
        if not await self._hs_gate():
            return
        result = super().prepare(*args, **kwargs)
        if inspect.isawaitable(result):
            await result
        check_json_body(self)  # 400 for a JSON body the handler would choke on (bodies.py)
        if not self._finished and self._hs_url_token_used():
            self._hs_strip_url_token()

    def _hs_url_token_used(self) -> bool:
        return (
            self.request.method in ("GET", "HEAD")
            and "token" in self.request.query_arguments
            and getattr(self, "_token_authenticated", False)
            and self._hs_route.route_class == RouteClass.PAGE
        )

    def _hs_strip_url_token(self) -> None:
        """The URL token was exchanged for the session cookie (set by the identity provider):
        send the browser to the same URL without it, so it leaves the address bar, the history
        and every later Referer. That response itself sends no Referer at all."""
        query = [
            (k, v)
            for k, v in urllib.parse.parse_qsl(self.request.query, keep_blank_values=True)
            if k != "token"
        ]
        target = self.request.path + ("?" + urllib.parse.urlencode(query) if query else "")
        mark(self.request, hs_no_referrer=True)
        self.redirect(target)


class HardenedPlainMixin(_Hardened):
    """First in the MRO of every wrapped plain ``RequestHandler``."""

    @property
    def base_url(self) -> str:
        return self.application.settings.get("base_url", "/")

    @property
    def token(self) -> str | None:
        return self.application.settings["identity_provider"].token

    @property
    def log(self) -> Any:
        return self.application.settings["identity_provider"].log

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        enter_request_context(self)
        if not self._hs_check_host():
            raise web.HTTPError(403)
        if not await self._hs_gate():
            return
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            # tornado's own call came before the user was known (see check_xsrf_cookie)
            self.check_xsrf_cookie()
        result = super().prepare(*args, **kwargs)
        if inspect.isawaitable(result):
            await result


class HardenedWebSocketMixin(_WebSocketHandlerBase):
    """In front of every wrapped ``WebSocketHandler``.

    * The connection is registered with the application's
      :class:`~hardened_server.enforcement.connections.ConnectionRegistry` in ``open`` and
      removed in ``on_close``: a logout, a revoked or rotated token, an expired session or a
      policy reload that takes its scopes away closes it (1008, with an audit record) within
      :data:`~hardened_server.enforcement.connections.SWEEP_SECONDS`, whatever handler it is.
    * Nagle's algorithm is off: kernel messages are small frames answered by small frames, and
      with it on (neither tornado nor jupyter_server turns it off) each one waits for the
      peer's delayed ACK, about 40 ms a round trip. Measured in bench/: 20 -> 100 round trips
      a second."""

    _hs_binding: Binding | None = None

    def open(self, *args: Any, **kwargs: Any) -> Any:
        self.set_nodelay(True)
        self._hs_binding = binding_of(self)
        runtime: PolicyRuntime = self.application.settings[SETTINGS_KEY]
        provider = self.application.settings.get("identity_provider")
        hook = getattr(provider, "hs_before_sweep", None)
        if hook is not None:
            runtime.connections.before_sweep(hook)
        runtime.connections.add(self)
        return super().open(*args, **kwargs)

    def on_close(self) -> Any:
        runtime: PolicyRuntime = self.application.settings[SETTINGS_KEY]
        runtime.connections.discard(self)
        return super().on_close()

    def hs_connection_decision(self) -> Decision | None:
        """None while the handshake's identity and scopes still hold; else the refusal."""
        binding = self._hs_binding or binding_of(self)
        provider = self.application.settings.get("identity_provider")
        decision = credential_decision(provider, binding)
        if decision is not None:
            return decision
        user = self.__dict__.get("_current_user")
        if user is None:
            return None  # a public websocket route: nobody to re-check
        runtime: PolicyRuntime = self.application.settings[SETTINGS_KEY]
        return scopes_decision(self, runtime.current, user)

    def hs_close_for(self, decision: Decision) -> None:
        """Close with 1008 and the rule id, and record it (once per connection)."""
        if getattr(self, "_hs_closed_for", None) is not None:
            return
        self._hs_closed_for = decision
        record_close(self, decision)
        if self.ws_connection is not None:
            self.close(POLICY_VIOLATION, close_reason(decision))


def _declared_scopes(cls: type) -> dict[str, Requirement] | None:
    """hardened-server's own handlers may say what they need (``hs_route_scopes = {"GET":
    ("metrics", "read")}``); the route map honours it only for classes in ``hardened_server``
    (an extension cannot map itself: the operator maps it with scopes.routes)."""
    declared = cls.__dict__.get("hs_route_scopes")
    return dict(declared) if isinstance(declared, dict) else None


# The code object of the function ``@authorized`` returns (its ``inner``), the same for every use
# of the decorator: a method is ``@authorized`` when its ``__wrapped__`` chain holds a function
# with this code (a name match would also accept any extension's look-alike decorator).
_AUTHORIZED_CODE = authorized(lambda self: None).__code__
_MAX_WRAPPERS = 16  # how far down a method's __wrapped__ chain to look


def authorized_claim(cls: type, http_method: str) -> Requirement | None:
    """The *(resource, action)* that jupyter_server's ``@authorized`` on ``cls``'s ``http_method``
    asks the authorizer for, read from the decorator's closure as ``authorized`` resolves them:
    the decorator's own ``resource`` or else the class's ``auth_resource``; its own ``action`` or
    else the one ``HTTP_METHOD_TO_AUTH_ACTION`` derives from the method, except that a
    websocket's ``GET`` is ``execute`` (the ``WEBSOCKET`` action: the channel carries writes).
    ``None`` when the method is not ``@authorized`` or names no resource.

    Read at wrap time, before any request: ``authorized`` stores the derived action into its
    closure on the first call (``nonlocal action``), so later the closure no longer tells a
    declared action from a derived one."""
    layer, seen = getattr(cls, http_method.lower(), None), 0
    while layer is not None and seen < _MAX_WRAPPERS:
        if getattr(layer, "__code__", None) is _AUTHORIZED_CODE:
            cells = dict(
                zip(layer.__code__.co_freevars, layer.__closure__ or (), strict=True)
            )
            action = cells["action"].cell_contents if "action" in cells else None
            resource = cells["resource"].cell_contents if "resource" in cells else None
            if not isinstance(resource, str):
                resource = getattr(cls, "auth_resource", None)
            if not isinstance(action, str):
                if http_method == "GET" and issubclass(cls, WebSocketHandler):
                    action = HTTP_METHOD_TO_AUTH_ACTION["WEBSOCKET"]
                else:
                    action = HTTP_METHOD_TO_AUTH_ACTION.get(http_method)
            if isinstance(resource, str) and isinstance(action, str):
                return (resource, action)
            return None
        layer, seen = getattr(layer, "__wrapped__", None), seen + 1
    return None


def authorized_claims(cls: type) -> dict[str, Requirement] | None:
    """method -> :func:`authorized_claim` for every implemented method that has one; ``None``
    when none has (the route map then treats the route as it always did)."""
    claims = {
        m: claim
        for m in sorted(implemented_methods(cls))
        if (claim := authorized_claim(cls, m)) is not None
    }
    return claims or None


def wrap_handler(cls: type[web.RequestHandler], pattern: str) -> type[web.RequestHandler]:
    """A subclass of ``cls`` with the hardened mixin first; ``cls`` itself if already wrapped."""
    if getattr(cls, "_hs_wrapped", False):
        return cls
    mixin = HardenedJupyterMixin if issubclass(cls, JupyterHandler) else HardenedPlainMixin
    namespace = {
        "_hs_wrapped": True,
        "_hs_pattern": pattern,
        "_hs_kinds": handler_kinds(cls),
        "_hs_original": cls,
        "_hs_xsrf_exempt": issubclass(cls, XSRF_EXEMPT),
        "_hs_handler": f"{cls.__module__}.{cls.__qualname__}",
        "_hs_methods": implemented_methods(cls),
        "_hs_declared": _declared_scopes(cls),
        "_hs_authorized": authorized_claims(cls),
        "_hs_client_events": issubclass(cls, EventHandler),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    extra = (HardenedWebSocketMixin,) if issubclass(cls, WebSocketHandler) else ()
    bases = (
        mixin,
        *extra,
        *event_mixins(cls),
        *path_guard_mixins(cls),
        *activity_mixins(cls),
        cls,
    )
    return type(cls.__name__, bases, namespace)


def _rule_pattern(rule: Rule) -> str:
    matcher = rule.matcher
    if isinstance(matcher, PathMatches):
        return matcher.regex.pattern
    return UNREGISTERED


def iter_handler_rules(router: RuleRouter) -> Iterator[Rule]:
    for rule in router.rules:
        target = rule.target
        if isinstance(target, RuleRouter):
            yield from iter_handler_rules(target)
        elif isinstance(target, type) and issubclass(target, web.RequestHandler):
            yield rule


def wrap_rules(router: RuleRouter, base_url: str) -> list[RouteFact]:
    """Re-point every handler rule below ``router`` at its hardened subclass (idempotent);
    return what the start-up route check needs to know about each."""
    facts = []
    for rule in iter_handler_rules(router):
        original = getattr(rule.target, "_hs_original", rule.target)
        pattern = relative_pattern(_rule_pattern(rule), base_url)
        if not getattr(rule.target, "_hs_wrapped", False):
            rule.target = wrap_handler(rule.target, pattern)
        facts.append(
            RouteFact(
                pattern=pattern,
                handler=f"{original.__module__}.{original.__qualname__}",
                undecorated=undecorated_methods(original),
            )
        )
    return facts
