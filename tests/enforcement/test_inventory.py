"""The route inventory: one typed entry per handler rule, answered from the policy in force.

Built in-process over a plain tornado application wrapped the way the server wraps its own
(:func:`hardened_server.enforcement.handlers.wrap_rules`); the live sweeps
(``tests/enforcement/test_route_sweep.py``, ``test_scope_matrix.py``) and ``audit --routes``
(``tests/audit/test_routes_extensions.py``) run it over the full application.
"""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.services.api.handlers import APIStatusHandler
from tornado import web

from hardened_server.enforcement.handlers import (
    HardenedJupyterMixin,
    HardenedPlainMixin,
    wrap_rules,
)
from hardened_server.enforcement.identity.provider import HardenedLogoutHandler
from hardened_server.enforcement.inventory import (
    RouteEntry,
    is_wrapped,
    original_handler,
    route_inventory,
)
from hardened_server.enforcement.runtime import SETTINGS_KEY, PolicyRuntime
from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.loader import build_policy, default_layer, parse_layer
from hardened_server.policy.scopemap import (
    ANY_METHOD,
    SOURCE_BUILTIN,
    SOURCE_DECLARED,
    SOURCE_POLICY,
    SOURCE_UNMAPPED,
)


class ExtensionPage(JupyterHandler):
    """An extension's page the route map does not know."""

    @web.authenticated
    def get(self) -> None:  # pragma: no cover - never served here
        self.finish("x")


class ExtensionAPI(APIHandler):
    """An extension's API route the policy maps with scopes.routes; PUT has no decorator."""

    @web.authenticated
    def get(self) -> None:  # pragma: no cover
        self.finish("{}")

    def put(self) -> None:  # pragma: no cover
        self.finish("{}")


class Bare(web.RequestHandler):
    """A plain tornado handler added behind the wrapping's back."""

    def get(self) -> None:  # pragma: no cover
        self.finish("x")


def application(policy_doc: dict[str, Any] | None = None) -> web.Application:
    layers = [default_layer()]
    if policy_doc:
        layers.append(parse_layer("user.toml", policy_doc))
    app = web.Application(
        [
            (r"/api/status", APIStatusHandler),
            (r"/logout", HardenedLogoutHandler),
            (r"/ext/page", ExtensionPage),
            (r"/ext/api/(.*)", ExtensionAPI),
            (r"/static/(.*)", web.StaticFileHandler, {"path": "."}),
        ]
    )
    app.settings[SETTINGS_KEY] = PolicyRuntime(build_policy(layers), "/")
    wrap_rules(app.default_router, "/")
    return app


@pytest.fixture(scope="module")
def entries() -> dict[str, RouteEntry]:
    app = application({"scopes": {"routes": {"/ext/api/(.*)": {"GET": "contents:read"}}}})
    return {e.pattern: e for e in route_inventory(app)}


def test_every_rule_is_an_entry_in_router_order() -> None:
    app = application()
    found = route_inventory(app)
    assert [e.pattern for e in found] == [
        "/api/status",
        "/logout",
        "/ext/page",
        "/ext/api/(.*)",
        "/static/(.*)",
    ]
    assert all(isinstance(e, RouteEntry) for e in found)
    with pytest.raises(AttributeError):
        found[0].pattern = "/other"  # type: ignore[misc]  # frozen


def test_entry_names_the_original_and_the_served_class(entries: dict[str, RouteEntry]) -> None:
    status = entries["/api/status"]
    assert status.original is APIStatusHandler
    assert status.wrapped is not APIStatusHandler
    assert issubclass(status.wrapped, APIStatusHandler)
    assert status.is_wrapped
    assert is_wrapped(status.wrapped)
    assert original_handler(status.wrapped) is APIStatusHandler
    assert status.handler == "jupyter_server.services.api.handlers.APIStatusHandler"
    assert status.mixin == HardenedJupyterMixin.__name__
    assert entries["/static/(.*)"].mixin == HardenedPlainMixin.__name__


def test_route_class_and_public_come_from_the_policy(entries: dict[str, RouteEntry]) -> None:
    assert entries["/api/status"].route_class == RouteClass.API
    assert not entries["/api/status"].public
    assert entries["/static/(.*)"].route_class == RouteClass.STATIC
    assert entries["/static/(.*)"].public  # routes.public of the shipped default
    assert entries["/ext/page"].route_class == RouteClass.PAGE


def test_methods_the_handler_implements_and_the_methods_served(
    entries: dict[str, RouteEntry],
) -> None:
    page = entries["/ext/page"]
    assert page.methods == ("GET",)
    # the hardened mixin answers CORS preflights on every JupyterHandler route
    assert set(page.served_methods) == {"GET", "OPTIONS"}
    api = entries["/ext/api/(.*)"]
    assert set(api.methods) == {"GET", "PUT", "OPTIONS"}  # APIHandler's own OPTIONS
    assert api.undecorated == ("PUT",)


def test_scope_requirement_and_its_source(entries: dict[str, RouteEntry]) -> None:
    status = entries["/api/status"]
    assert status.scope_source == SOURCE_BUILTIN
    assert status.requirement("GET") is not None
    assert status.scope_summary() == {"GET": "none"}  # any logged-in principal

    logout = entries["/logout"]
    assert logout.scope_source == SOURCE_DECLARED
    assert set(logout.scope_summary()) == {"GET", "POST"}

    api = entries["/ext/api/(.*)"]
    assert api.scope_source == SOURCE_POLICY
    assert api.requirement("GET").scopes == {"contents:read"}  # type: ignore[union-attr]
    assert api.requirement("PUT") is None
    assert api.scope_summary()["PUT"] == "refused"
    assert not api.unmapped

    page = entries["/ext/page"]
    assert page.scope_source == SOURCE_UNMAPPED
    assert page.unmapped
    assert page.scope_summary() == {ANY_METHOD: "unmapped"}

    static = entries["/static/(.*)"]
    assert not static.unmapped  # public: nothing to map
    assert static.scope_summary() == {}


def test_an_unwrapped_rule_is_reported_as_such() -> None:
    app = application()
    app.add_handlers(".*$", [(r"/bare", Bare)])  # a plain Application: no wrapping on add
    bare = next(e for e in route_inventory(app) if e.original is Bare)
    assert not bare.is_wrapped
    assert bare.wrapped is Bare
    assert bare.mixin == ""
    assert bare.scopes is None
    assert bare.scope_source is None
    assert not bare.unmapped
    assert bare.scope_summary() == {}


def test_as_dict_is_json_ready(entries: dict[str, RouteEntry]) -> None:
    import json

    doc = entries["/ext/api/(.*)"].as_dict()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["handler"].endswith("test_inventory.ExtensionAPI")
    assert doc["is_subclass"] is True
    assert doc["scope_source"] == "policy"
    assert doc["route_class"] == "api"
