"""The route inventory: every handler rule of a (hardened) web application, as typed entries.

:func:`hardened_server.enforcement.handlers.wrap_handler` re-points each rule at a per-route
subclass of its handler and records on that subclass what the policy needs to know about the
route (its pattern relative to ``base_url``, the handler kinds, the original class, the methods
it implements, the scopes a hardened-server handler declares). Those ``_hs_*`` class attributes
are the wrapping code's own business; everyone else who wants to know what a route is and what it
needs (the start-up warning about unmapped routes in :mod:`hardened_server.app`, ``hardened-server
audit --routes`` in :mod:`hardened_server.audit.inventory`, the route sweeps in ``tests/``) asks
:func:`route_inventory`, which answers from the same compiled policy the requests are decided by
(:meth:`hardened_server.enforcement.runtime.Compiled.route` and ``route_scopes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tornado import web

from hardened_server.enforcement.handlers import iter_handler_rules, undecorated_methods
from hardened_server.enforcement.runtime import SETTINGS_KEY, Compiled, PolicyRuntime
from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.scopemap import MethodRule, RouteScopes, describe


def is_wrapped(cls: type) -> bool:
    """Whether ``cls`` is a hardened per-route subclass made by ``wrap_handler``."""
    return bool(getattr(cls, "_hs_wrapped", False))


def original_handler(cls: type) -> type:
    """The handler class as written (the extension's or jupyter_server's), for a wrapped class;
    ``cls`` itself otherwise."""
    original: type = getattr(cls, "_hs_original", cls)
    return original


def answered_methods(cls: type) -> tuple[str, ...]:
    """The methods of ``cls.SUPPORTED_METHODS`` that ``cls`` implements, in that order (tornado
    answers the others with 405 before any handler code runs)."""
    return tuple(
        m
        for m in getattr(cls, "SUPPORTED_METHODS", ())
        if getattr(cls, m.lower(), None) not in (None, web.RequestHandler._unimplemented_method)
    )


@dataclass(frozen=True)
class RouteEntry:
    """One handler rule of the application, in router order (the first match serves)."""

    pattern: str  # relative to base_url, without the trailing '$'
    route_class: RouteClass
    public: bool  # listed in routes.public: no login asked
    kinds: frozenset[str]  # handler kinds (api, websocket, files, static, plain ...)
    wrapped: type  # the class the router serves (the hardened subclass, when wrapped)
    original: type  # the handler class as written
    methods: tuple[str, ...]  # the methods the original handler implements
    served_methods: tuple[str, ...]  # the methods the served class answers (mixins included)
    undecorated: tuple[str, ...]  # methods of the original with no authentication decorator
    # What each method needs and where that answer comes from (builtin | policy | declared |
    # authorized | unmapped); None for a rule that is not wrapped.
    scopes: RouteScopes | None

    @property
    def handler(self) -> str:
        """``module.qualname`` of the original handler class."""
        return f"{self.original.__module__}.{self.original.__qualname__}"

    @property
    def is_wrapped(self) -> bool:
        return is_wrapped(self.wrapped)

    @property
    def mixin(self) -> str:
        """The hardened mixin first in the served class's MRO, or "" if unwrapped."""
        mro = self.wrapped.__mro__
        return mro[1].__name__ if self.is_wrapped and len(mro) > 1 else ""

    @property
    def scope_source(self) -> str | None:
        return None if self.scopes is None else self.scopes.source

    @property
    def unmapped(self) -> bool:
        """A route that needs a login and that the route map does not know: every request to it
        is refused (HS-SCOPE-002) until ``scopes.routes`` maps it."""
        return self.scopes is not None and not self.public and not self.scopes.mapped

    def requirement(self, method: str) -> MethodRule | None:
        """What ``method`` needs on this route (None: not mapped for that method)."""
        return None if self.scopes is None else self.scopes.rule_for(method)

    def scope_summary(self) -> dict[str, str]:
        """What each method needs, for people (:func:`hardened_server.policy.scopemap.describe`):
        ``{}`` for a public or unwrapped route."""
        if self.public or self.scopes is None:
            return {}
        return describe(self.scopes, self.methods)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (classes by ``module.qualname``)."""
        return {
            "pattern": self.pattern,
            "handler": self.handler,
            "wrapped": f"{self.wrapped.__module__}.{self.wrapped.__qualname__}",
            "mixin": self.mixin,
            "is_subclass": issubclass(self.wrapped, self.original),
            "route_class": self.route_class.value,
            "public": self.public,
            "kinds": sorted(self.kinds),
            "methods": list(self.methods),
            "served_methods": list(self.served_methods),
            "undecorated": list(self.undecorated),
            "scope_source": self.scope_source,
            "scopes": self.scope_summary(),
        }


def compiled_policy(settings: Mapping[str, Any]) -> Compiled:
    """The compiled policy a hardened application decides requests with."""
    runtime: PolicyRuntime = settings[SETTINGS_KEY]
    return runtime.current


def route_entry(cls: type[web.RequestHandler], compiled: Compiled) -> RouteEntry:
    """The entry for one served handler class."""
    wrapped = is_wrapped(cls)
    original = original_handler(cls)
    pattern: str = getattr(cls, "_hs_pattern", "?")
    kinds: frozenset[str] = getattr(cls, "_hs_kinds", frozenset())
    info = compiled.route(pattern, kinds)
    scopes = None
    if wrapped:
        hs: Any = cls  # the attributes wrap_handler set
        scopes = compiled.route_scopes(
            pattern, hs._hs_handler, hs._hs_methods, hs._hs_declared, hs._hs_authorized
        )
    return RouteEntry(
        pattern=pattern,
        route_class=info.route_class,
        public=info.public,
        kinds=kinds,
        wrapped=cls,
        original=original,
        methods=answered_methods(original),
        served_methods=answered_methods(cls),
        undecorated=undecorated_methods(original),
        scopes=scopes,
    )


def route_inventory(web_app: web.Application) -> list[RouteEntry]:
    """Every handler rule of ``web_app`` (a hardened application: its settings carry the policy
    runtime), in router order, answered from the policy in force."""
    compiled = compiled_policy(web_app.settings)
    return [
        route_entry(rule.target, compiled) for rule in iter_handler_rules(web_app.default_router)
    ]
