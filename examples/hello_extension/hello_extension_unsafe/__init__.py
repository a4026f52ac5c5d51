"""The same extension with the mistake that matters: no ``@tornado.web.authenticated``.

On a stock Jupyter Server the missing decorator earns only a ``JupyterServerAuthWarning`` in the
log. The ``JupyterHandler`` is then protected only by ``JupyterHandler.prepare``, and that
protection is lost when a subclass overrides ``prepare`` or the server runs with
``allow_unauthenticated_access``. The plain tornado handler answers anyone who can reach the
port. hardened-server refuses to start instead (rule HS-START-001) and names the route, the
handler and the fix. Do not copy this file: it exists to show and test that refusal.
"""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join


class UnsafeHelloHandler(APIHandler):
    """A JupyterHandler whose ``get`` forgot the authentication decorator."""

    def get(self) -> None:  # BUG (on purpose): no @tornado.web.authenticated
        user = self.current_user
        self.finish({"hello": user.name if user else None})


class UnsafePlainHelloHandler(tornado.web.RequestHandler):
    """A bare tornado handler: it never runs any Jupyter code, decorator or not."""

    def get(self) -> None:  # BUG (on purpose): not authenticated, not a JupyterHandler
        self.finish({"hello": "plain"})


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "hello_extension_unsafe"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base_url, "hello"), UnsafeHelloHandler),
            (url_path_join(base_url, "hello-plain"), UnsafePlainHelloHandler),
        ],
    )
