"""The extension's one handler: the logged-in user's name, as JSON."""

from __future__ import annotations

import tornado.web
from jupyter_server.base.handlers import APIHandler


class HelloHandler(APIHandler):
    """``GET /hello`` -> ``{"hello": "<user name>"}``.

    ``APIHandler`` gives JSON errors and the API's response headers; ``@tornado.web.authenticated``
    answers 403 (APIHandler) to a request without a logged-in user. Forgetting that decorator is
    the mistake ``hello_extension_unsafe`` makes on purpose.
    """

    @tornado.web.authenticated
    def get(self) -> None:
        user = self.current_user
        self.finish({"hello": user.name or user.username})
