"""Marks hardened-server leaves on objects that tornado and jupyter_server own.

A request's facts travel with the object that carries the request: the peer address on the
``HTTPServerRequest``, how a token was presented and which session was used on the handler, the
scopes on jupyter_server's ``User``, "already wrapped" on a manager method. Those classes do not
declare our attributes, and the code hands them to us typed as their base classes
(``IdentityProvider`` methods take a ``tornado.web.RequestHandler``), so the marks are set here,
in one place, and read back with ``getattr(obj, name, default)`` where they may be absent.
"""

from __future__ import annotations


def mark(obj: object, **marks: object) -> None:
    """Set each keyword as an attribute of ``obj`` (``mark(handler, _hs_token_failed=True)``)."""
    for name, value in marks.items():
        setattr(obj, name, value)
