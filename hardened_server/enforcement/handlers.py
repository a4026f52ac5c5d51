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

import inspect
import json
import urllib.parse
from collections.abc import Awaitable, Iterator
from typing import Any, ClassVar

from jupyter_server.base.handlers import (
    APIHandler,
    AuthenticatedFileHandler,
    JupyterHandler,
    PrometheusMetricsHandler,
)
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.kernelspecs.handlers import KernelSpecResourceHandler
from tornado import httputil, web
from tornado.routing import PathMatches, Rule, RuleRouter
from tornado.websocket import WebSocketHandler

from hardened_server.enforcement.record import record_denial
from hardened_server.enforcement.runtime import SETTINGS_KEY, Compiled, PolicyRuntime
from hardened_server.policy.decisions import Decision, RouteClass
from hardened_server.policy.decisions import Rule as RuleId
from hardened_server.policy.hosts import is_allowed_host
from hardened_server.policy.origins import normalize_origin
from hardened_server.policy.routes import (
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
from hardened_server.policy.startup import RouteFact

UNREGISTERED = "<unregistered>"


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
    for the opt-out, the policy's public list then decides)."""
    from jupyter_server.serverapp import _has_tornado_web_authenticated

    return hasattr(method, "__allow_unauthenticated") or _has_tornado_web_authenticated(method)


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


class _Hardened:
    """What the Jupyter and the plain mixins share."""

    _hs_wrapped: ClassVar[bool] = True
    _hs_pattern: ClassVar[str] = UNREGISTERED
    _hs_kinds: ClassVar[frozenset[str]] = frozenset()
    _hs_original: ClassVar[type]

    request: Any
    application: Any

    def __init__(self, application: Any, request: Any, **kwargs: Any) -> None:
        runtime: PolicyRuntime = application.settings[SETTINGS_KEY]
        compiled = runtime.current
        self._hs_compiled = compiled
        self._hs_route = compiled.route(self._hs_pattern, self._hs_kinds)
        # The output transform reads the route class off the request (it never sees us).
        request.hs_route_class = self._hs_route.route_class
        super().__init__(application, request, **kwargs)  # type: ignore[call-arg]

    # -- decisions -----------------------------------------------------------------------------

    def _hs_host_decision(self) -> Decision:
        return is_allowed_host(self.request.host, self._hs_compiled.hosts)

    def _hs_deny(self, decision: Decision) -> None:
        record_denial(self.request, decision, self._hs_route.route_class)

    def _hs_check_host(self) -> bool:
        decision = self._hs_host_decision()
        if not decision:
            self._hs_deny(decision)
        return decision.allowed

    def _hs_needs_login(self) -> bool:
        return not self._hs_route.public and self.request.method != "OPTIONS"

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
            login_url = self.application.settings.get("login_url", "/login")
            next_url = self.request.uri or "/"
            sep = "&" if "?" in login_url else "?"
            self.redirect(login_url + sep + urllib.parse.urlencode({"next": next_url}))  # type: ignore[attr-defined]
            return
        raise web.HTTPError(403)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """API errors are JSON ``{"message", "reason"}`` as in jupyter_server, with no
        traceback (CVE-2023-49080), and are finished by tornado's own ``finish``: some
        extension handlers override ``finish`` with a signature ``send_error`` cannot call
        (jupyterlab_server's LicensesHandler makes every error response hang)."""
        if self._hs_route.route_class != RouteClass.API:
            super().write_error(status_code, **kwargs)  # type: ignore[misc]
            return
        message = httputil.responses.get(status_code, "Unknown HTTP Error")
        reply: dict[str, Any] = {"message": message, "reason": None}
        exc_info = kwargs.get("exc_info")
        if exc_info:
            exc = exc_info[1]
            if isinstance(exc, web.HTTPError):
                reply["message"] = exc.log_message or message
                reply["reason"] = exc.reason
            else:
                reply["message"] = "Unhandled error"
        self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
        web.RequestHandler.finish(self, json.dumps(reply))  # type: ignore[arg-type]

    async def _hs_current_user(self) -> Any:
        provider = self.application.settings["identity_provider"]
        user = provider.get_user(self)
        if isinstance(user, Awaitable):
            user = await user
        return user


class HardenedJupyterMixin(_Hardened):
    """First in the MRO of every wrapped ``JupyterHandler`` subclass."""

    _jupyter_current_user: Any

    @property
    def content_security_policy(self) -> str:
        """The policy's CSP for this route's class (replaces jupyter_server's concatenation)."""
        return self._hs_compiled.csp[self._hs_route.route_class]

    def check_host(self) -> bool:
        """Host allow-list, always on (jupyter_server skips it when allow_remote_access)."""
        return self._hs_check_host()

    def skip_check_origin(self) -> bool:
        """Only CORS preflights skip the origin check. Stock skips it for any
        token-authenticated request, which a page can trigger with ``?token=``."""
        return self.request.method == "OPTIONS"

    def check_origin(self, origin_to_satisfy_tornado: str | None = None) -> bool:
        """Same origin (Host already on the allow-list) or an origin listed in
        ``cors.allow_origins``; compared on normalised forms, never by prefix (CVE-2026-40110).
        Used for API requests, XSRF checks and websocket handshakes alike."""
        if self.skip_check_origin():
            return True
        origin = origin_to_satisfy_tornado or self.get_origin()  # type: ignore[attr-defined]
        if not origin:
            return True  # no Origin: not a cross-origin browser request (fetch-metadata later)
        norm = normalize_origin(origin)
        own = normalize_origin(f"{self.request.protocol}://{self.request.host}")
        if norm is not None and (norm == own or norm in self._hs_compiled.cors_origins):
            return True
        self._hs_deny(
            Decision(False, RuleId.ORIGIN_FOREIGN, "Origin is neither own nor listed")
        )
        return False

    def set_cors_headers(self) -> None:
        """Access-Control-Allow-Origin only for a listed origin, never reflected otherwise
        (stock reflects any Origin on token-authenticated requests)."""
        origin = self.request.headers.get("Origin")
        if not origin:
            return
        self.set_header("Vary", "Origin")  # type: ignore[attr-defined]
        norm = normalize_origin(origin)
        compiled: Compiled = self._hs_compiled
        if norm is not None and norm in compiled.cors_origins:
            self.set_header("Access-Control-Allow-Origin", norm)  # type: ignore[attr-defined]
            if compiled.policy.cors.allow_credentials:
                self.set_header("Access-Control-Allow-Credentials", "true")  # type: ignore[attr-defined]

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        """Host, then the authentication gate, then jupyter_server's own ``prepare``."""
        if not self.check_host():
            self.current_user = self._jupyter_current_user = None
            raise web.HTTPError(403)
        if self._hs_needs_login():
            user = await self._hs_current_user()
            self.current_user = self._jupyter_current_user = user
            if user is None:
                self._hs_refuse_unauthenticated()
                return
        result = super().prepare(*args, **kwargs)  # type: ignore[misc]
        if inspect.isawaitable(result):
            await result
        if not self._finished and self._hs_url_token_used():  # type: ignore[attr-defined]
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
            (k, v) for k, v in urllib.parse.parse_qsl(self.request.query, keep_blank_values=True)
            if k != "token"
        ]
        target = self.request.path + ("?" + urllib.parse.urlencode(query) if query else "")
        self.request.hs_no_referrer = True
        self.redirect(target)  # type: ignore[attr-defined]


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
        if not self._hs_check_host():
            raise web.HTTPError(403)
        if self._hs_needs_login():
            user = await self._hs_current_user()
            self.current_user = user  # type: ignore[misc]
            if user is None:
                self._hs_refuse_unauthenticated()
                return
        result = super().prepare(*args, **kwargs)  # type: ignore[misc]
        if inspect.isawaitable(result):
            await result


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
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    return type(cls.__name__, (mixin, cls), namespace)


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
