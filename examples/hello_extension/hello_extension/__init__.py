"""A Jupyter Server extension written exactly the way Jupyter's documentation teaches.

Nothing in this package knows about hardened-server: it runs unchanged on a stock
``jupyter server``, and on ``hardened-server serve`` it gets the policy's headers, Host check,
origin checks, login gate and audit trail without asking for them.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from .handlers import HelloHandler

__all__ = ["HelloHandler"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where Jupyter Server finds this extension (``jpserver_extensions`` names the module)."""
    return [{"module": "hello_extension"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Called once by Jupyter Server after its own routes exist: add ours under base_url."""
    web_app = serverapp.web_app
    base_url = web_app.settings["base_url"]
    route = url_path_join(base_url, "hello")
    web_app.add_handlers(".*$", [(route, HelloHandler)])
    serverapp.log.info("hello_extension: serving %s", route)
