"""The session manager: session ``path``, ``name`` and ``type`` values checked on the way in.

A session's ``path`` becomes the kernel's working directory (through the contents manager's
``get_kernel_path``, which applies the path policy) and part of the kernel's environment; stock
jupyter_server turns every exception in ``create_session`` into a 500, so a NUL byte in a path
answered 500 (and a non-string value reached SQLite). Here malformed values are refused with 400
before the handler's catch-all can see them: ``session_exists`` runs first, outside it.
"""

from __future__ import annotations

import re
from typing import Any

from jupyter_server.services.sessions.sessionmanager import SessionManager
from tornado import web

_CONTROL = re.compile("[\x00-\x1f\x7f]")
MAX_FIELD_CHARS = 4096


def check_session_fields(**fields: Any) -> None:
    for name, value in fields.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise web.HTTPError(400, f"session {name} must be a string")
        if len(value) > MAX_FIELD_CHARS or _CONTROL.search(value):
            raise web.HTTPError(400, f"session {name} is malformed")


class HardenedSessionManager(SessionManager):
    async def session_exists(self, path: Any) -> bool:
        check_session_fields(path=path)
        return await super().session_exists(path)

    async def create_session(
        self,
        path: Any = None,
        name: Any = None,
        type: Any = None,
        kernel_name: Any = None,
        kernel_id: Any = None,
    ) -> dict[str, Any]:
        check_session_fields(path=path, name=name, type=type, kernel_name=kernel_name)
        return await super().create_session(
            path=path, name=name, type=type, kernel_name=kernel_name, kernel_id=kernel_id
        )

    async def update_session(self, session_id: str, **kwargs: Any) -> None:
        check_session_fields(
            **{k: v for k, v in kwargs.items() if k in ("path", "name", "type")}
        )
        await super().update_session(session_id, **kwargs)
