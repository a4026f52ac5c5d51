"""Wrapping keeps jupyter_server's handler hierarchy and hook names.

Extensions and jupyter_server itself rely on ``isinstance`` checks, on ``super()`` chains and on
the hook names (``check_host``, ``check_origin``, ...). A wrapped handler must be a subclass of its
original, with the hardened mixin first in the MRO so that its hooks answer from the policy.
"""

from __future__ import annotations

import pytest
from jupyter_server.auth.decorator import authorized
from jupyter_server.base import handlers as base
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from tornado import web
from tornado.websocket import WebSocketHandler

from hardened_server.enforcement.handlers import (
    HardenedJupyterMixin,
    HardenedPlainMixin,
    authorized_claim,
    authorized_claims,
    handler_kinds,
    undecorated_methods,
    wrap_handler,
)
from hardened_server.policy.routeclass import KIND_API, KIND_FILES, KIND_PLAIN, KIND_STATIC

JUPYTER_CLASSES = [
    base.JupyterHandler,
    base.APIHandler,
    base.AuthenticatedFileHandler,
    base.FileFindHandler,
    base.APIVersionHandler,
    base.FilesRedirectHandler,
    base.MainHandler,
    base.PrometheusMetricsHandler,
    base.Template404,
    KernelWebsocketHandler,
]
PLAIN_CLASSES = [
    base.AuthenticatedHandler,
    base.RedirectWithParams,
    base.TrailingSlashHandler,
    base.PublicStaticFileHandler,
]
HOOKS = (
    "content_security_policy",
    "check_host",
    "check_origin",
    "skip_check_origin",
    "set_cors_headers",
    "prepare",
)


@pytest.mark.parametrize("cls", JUPYTER_CLASSES, ids=lambda c: c.__name__)
def test_wrapped_jupyter_handler_is_subclass_with_hardened_hooks_first(cls: type) -> None:
    wrapped = wrap_handler(cls, "/x")
    assert issubclass(wrapped, cls)
    assert wrapped.__name__ == cls.__name__
    assert wrapped.__mro__[1] is HardenedJupyterMixin
    for hook in HOOKS:
        owner = next(k for k in wrapped.__mro__ if hook in vars(k))
        assert owner is HardenedJupyterMixin, hook
    # the hooks jupyter_server defines and we do not replace stay reachable by name
    for hook in ("check_referer", "check_xsrf_cookie", "get_current_user", "set_default_headers"):
        assert callable(getattr(wrapped, hook))


@pytest.mark.parametrize("cls", PLAIN_CLASSES, ids=lambda c: c.__name__)
def test_wrapped_plain_handler_is_subclass_with_gate(cls: type) -> None:
    wrapped = wrap_handler(cls, "/x")
    assert issubclass(wrapped, cls)
    assert wrapped.__mro__[1] is HardenedPlainMixin
    assert KIND_PLAIN in handler_kinds(cls)


def test_websocket_mixin_handlers_keep_websocket_behaviour() -> None:
    wrapped = wrap_handler(KernelWebsocketHandler, "/api/kernels/x/channels")
    assert issubclass(wrapped, WebSocketMixin)
    assert issubclass(wrapped, WebSocketHandler)
    # tornado calls check_origin(origin) on the handshake: ours must accept that signature
    assert "origin_to_satisfy_tornado" in HardenedJupyterMixin.check_origin.__code__.co_varnames


def test_wrapping_is_idempotent() -> None:
    once = wrap_handler(base.APIHandler, "/a")
    assert wrap_handler(once, "/b") is once


def test_handler_kinds_classify_core_classes() -> None:
    assert KIND_API in handler_kinds(base.APIHandler)
    assert KIND_API in handler_kinds(base.PrometheusMetricsHandler)
    assert KIND_FILES in handler_kinds(base.AuthenticatedFileHandler)
    assert KIND_STATIC in handler_kinds(base.FileFindHandler)


def test_undecorated_methods_are_found_and_decorated_ones_are_not() -> None:
    class Forgot(base.JupyterHandler):
        def get(self) -> None:  # no decorator
            self.finish("x")

    class Remembered(base.JupyterHandler):
        @web.authenticated
        def get(self) -> None:
            self.finish("x")

    assert undecorated_methods(Forgot) == ("GET",)
    assert undecorated_methods(Remembered) == ()
    # jupyter_server's own @allow_unauthenticated counts as a decision; the policy then decides
    assert undecorated_methods(base.FileFindHandler) == ()


# --- what an extension's own @authorized claims ---------------------------------------------------


def _lookalike(method: object) -> object:
    """A decorator that is named like jupyter_server's but is not it."""

    def authorized(self: object) -> None:
        return None

    authorized.__wrapped__ = method  # type: ignore[attr-defined]
    return authorized


class _Claims(base.APIHandler):
    auth_resource = "contents"

    @web.authenticated
    @authorized
    def get(self) -> None: ...

    @web.authenticated
    @authorized("execute", "kernels")
    def post(self) -> None: ...

    @web.authenticated
    def put(self) -> None: ...

    @web.authenticated
    @_lookalike  # type: ignore[misc]
    def delete(self) -> None: ...


class _ClaimsSocket(WebSocketMixin, WebSocketHandler, base.JupyterHandler):
    auth_resource = "contents"

    @authorized
    async def get(self, *args: object, **kwargs: object) -> None: ...


def test_authorized_claim_reads_the_decorator_as_jupyter_server_resolves_it() -> None:
    assert authorized_claim(_Claims, "GET") == ("contents", "read")
    assert authorized_claim(_Claims, "POST") == ("kernels", "execute")  # explicit arguments
    assert authorized_claim(_Claims, "PUT") is None  # no @authorized
    assert authorized_claim(_Claims, "DELETE") is None  # a look-alike is not the decorator
    assert authorized_claims(_Claims) == {
        "GET": ("contents", "read"),
        "POST": ("kernels", "execute"),
    }


def test_a_websocket_get_claims_execute_not_read() -> None:
    assert authorized_claim(_ClaimsSocket, "GET") == ("contents", "execute")


def test_a_handler_without_authorized_claims_nothing() -> None:
    assert authorized_claims(base.APIHandler) is None
    assert wrap_handler(_Claims, "/x")._hs_authorized == {  # type: ignore[attr-defined]
        "GET": ("contents", "read"),
        "POST": ("kernels", "execute"),
    }

def test_authenticated_inside_another_wrapper_is_seen_through_wrapped() -> None:
    """jupyterlab-git's ``SshHostHandler`` stacks ``@authorized`` over ``@web.authenticated``;
    jupyter_server's check looks at the outer function only and calls it undecorated (a false
    HS-START-001 that stopped the server). ``functools.wraps`` keeps the chain: follow it."""
    class SshHostLike(base.APIHandler):
        auth_resource = "contents"

        @authorized
        @web.authenticated
        async def get(self) -> None:
            self.finish("x")

        @authorized
        async def post(self) -> None:  # authorized alone authenticates nothing
            self.finish("x")

    assert undecorated_methods(SshHostLike) == ("POST",)


def test_a_wrapper_chain_that_loops_or_ends_is_still_undecorated() -> None:
    """A ``__wrapped__`` cycle (or a chain with no decorator in it) ends as undecorated."""
    import functools

    def plain(self: object) -> None:
        return None

    @functools.wraps(plain)
    def outer(self: object) -> None:
        return None

    plain.__wrapped__ = outer  # type: ignore[attr-defined]

    class Loop(base.JupyterHandler):
        get = outer

    assert undecorated_methods(Loop) == ("GET",)
