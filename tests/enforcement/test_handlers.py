"""Wrapping keeps jupyter_server's handler hierarchy and hook names.

Extensions and jupyter_server itself rely on ``isinstance`` checks, on ``super()`` chains and on
the hook names (``check_host``, ``check_origin``, ...). A wrapped handler must be a subclass of its
original, with the hardened mixin first in the MRO so that its hooks answer from the policy.
"""

from __future__ import annotations

import pytest
from jupyter_server.base import handlers as base
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from tornado import web
from tornado.websocket import WebSocketHandler

from hardened_server.enforcement.handlers import (
    HardenedJupyterMixin,
    HardenedPlainMixin,
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
