"""Who asked, for code that has no request at hand: the request id and the user carried through
jupyter_server's ``CallContext``, so that the contents manager or the kernel manager still records
who asked.

Request ids: a fresh random id per request, set before routing (:func:`assign_request_id`); an
``X-Request-ID`` is believed only from a trusted proxy (nginx's ``$request_id``), so a client
cannot make its records collide with someone else's.
"""

from __future__ import annotations

import os
import re
from typing import Any

from jupyter_server.base.call_context import CallContext

__all__ = [
    "HS_REQUEST_ID",
    "HS_USER",
    "assign_request_id",
    "current_request",
    "enter_request_context",
    "new_request_id",
    "non_owner_of",
    "request_id_of",
    "set_context_user",
    "user_name",
]

#: CallContext names (jupyter_server's own is ``JUPYTER_HANDLER``).
HS_REQUEST_ID = "HS_REQUEST_ID"
HS_USER = "HS_USER"

_PROXY_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")



def assign_request_id(request: Any, *, from_trusted_proxy: bool) -> str:
    """Give ``request`` its id (once). A trusted proxy's ``X-Request-ID`` is kept so the
    record matches the proxy's access log; anybody else's is ignored."""
    rid: str | None = getattr(request, "hs_request_id", None)
    if rid:
        return rid
    if from_trusted_proxy:
        supplied = request.headers.get("X-Request-ID", "")
        if supplied and _PROXY_REQUEST_ID.fullmatch(supplied):
            request.hs_request_id = supplied
            return supplied
    rid = new_request_id()
    request.hs_request_id = rid
    return rid


def new_request_id() -> str:
    """``uuid.uuid4().hex`` (what the ids have always been: 32 hex digits, version 4, RFC 4122
    variant) without building a ``UUID`` object, which cost more than the random bytes: the
    same 16 bytes from ``os.urandom`` with the same version and variant bits set."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant: RFC 4122
    return raw.hex()


def request_id_of(request: Any) -> str:
    return assign_request_id(request, from_trusted_proxy=False)


def user_name(user: Any) -> str | None:
    """The name only (never the whole user model: no display name, avatar or scopes)."""
    if user is None:
        return None
    if isinstance(user, str):
        return user or None
    name = getattr(user, "username", None) or getattr(user, "name", None)
    return name if isinstance(name, str) and name else None


def enter_request_context(handler: Any) -> None:
    """At the start of ``prepare``: the handler, the request id (and later the user) in
    jupyter_server's ``CallContext``, so managers called by the handler can record them. The
    context is the handler's own task's: nothing leaks into the next request."""
    CallContext.set(CallContext.JUPYTER_HANDLER, handler)
    CallContext.set(HS_REQUEST_ID, request_id_of(handler.request))


def set_context_user(request: Any, user: Any) -> None:
    """The request's user, for every record made while answering it: the name, and (when the
    identity provider marked the user as not the server's owner: ``hs_non_owner``, hub.py)
    that it is not the owner."""
    name = user_name(user)
    request.hs_user = name
    request.hs_non_owner = non_owner_of(user)
    CallContext.set(HS_USER, name)


def non_owner_of(user: Any) -> str | None:
    """``"user"`` or ``"service"`` for a principal who is not the server's owner (set by the
    identity provider that knows: JupyterHub's, hub.py); None for the owner and for anyone a
    provider says nothing about (a server without a hub has one owner: its token, password and
    stored tokens are all given out by the owner)."""
    kind = getattr(user, "hs_non_owner", None)
    return kind if isinstance(kind, str) and kind else None


def current_request() -> Any:
    """The request of the handler running in this context, if any."""
    handler = CallContext.get(CallContext.JUPYTER_HANDLER)
    return getattr(handler, "request", None)
