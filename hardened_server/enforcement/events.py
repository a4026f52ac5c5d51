"""``/api/events`` and ``/api/events/subscribe`` with the audit schema kept server-only.

Stock jupyter_server 2.21 lets any authenticated client ``POST /api/events`` with *any* registered
schema, jupyter_server's own included, and a timestamp of its choosing (research notes §2.8,
§2.12: a forged ``contents_service`` ``delete`` returned 204), and fans every event out to every
``/api/events/subscribe`` client. With the audit schema on the same bus that would mean forged
audit records, and user names, client addresses and denied paths streamed to any user.

Two pieces:

* :func:`server_schema_decision`, called by the hardened mixin for ``POST /api/events`` right
  after the login gate and before the route map's client-schema allow-list: a POST naming a
  server schema (ours or jupyter_server's own: the one list is
  :mod:`hardened_server.policy.eventschemas`) is refused with 403 and recorded
  (``HS-EVENTS-001``), whatever the policy allows otherwise: a floor. (The EventLogger
  modifier installed with the schema refuses a forged emission of the audit schema as well,
  should this ever be bypassed.)
* :class:`EventsSubscribeFilterMixin`, put in front of ``SubscribeWebsocket`` by
  :func:`event_mixins`: a subscriber without the ``audit:read`` scope never receives a
  server-only event, ``admin`` or not (issue #19: under JupyterHub every admitted user is
  ``admin`` of the server, the audited user included); decided per event, so a scope revoked
  mid-stream stops the stream.
  Per event the connection's identity is re-checked as well
  (:mod:`hardened_server.enforcement.connections`): a subscriber whose session ended or whose
  token was revoked gets nothing more and is closed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jupyter_server.services.events.handlers import SubscribeWebsocket

from hardened_server.enforcement.runtime import SETTINGS_KEY
from hardened_server.policy.decisions import Decision, allow, deny
from hardened_server.policy.eventschemas import is_server_schema
from hardened_server.policy.rules import Rule
from hardened_server.policy.scopes import AUDIT_READ, has_scope
from hardened_server.trail.events import subscriber_may_receive


def posted_schema_id(body: bytes) -> object:
    """The ``schema_id`` of a ``POST /api/events`` body, or ``None`` if the body is not a JSON
    object (the handler answers that with 400 itself)."""
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return payload.get("schema_id") if isinstance(payload, dict) else None


def server_schema_decision(body: bytes) -> Decision:
    """The floor of ``POST /api/events``: a body naming a server schema is refused
    (``HS-EVENTS-001``), whatever the policy lists for clients. Anything else is left to the
    route map's client allow-list (``scopes.client_event_schemas``)."""
    schema_id = posted_schema_id(body)
    if is_server_schema(schema_id):
        shown = json.dumps(str(schema_id)[:120])
        return deny(
            Rule.EVENTS_SERVER_SCHEMA,
            f"event schema {shown} is a server schema: no client may emit it, whatever "
            "scopes.client_event_schemas lists",
        )
    return allow(Rule.EVENTS_SERVER_SCHEMA, "not a server schema")


# Mixed in before SubscribeWebsocket (event_mixins): to the type checker it is one.
if TYPE_CHECKING:
    _SubscribeWebsocketBase = SubscribeWebsocket
else:
    _SubscribeWebsocketBase = object


class EventsSubscribeFilterMixin(_SubscribeWebsocketBase):
    """In front of jupyter_server's ``SubscribeWebsocket``."""

    async def event_listener(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        # Per event, not only per sweep: a subscriber whose session ended, whose token was
        # revoked or whose scopes a reload took away receives nothing more, not even the
        # record of its own closing (connections.py closes the socket).
        check = getattr(self, "hs_connection_decision", None)
        decision = check() if check is not None else None
        if decision is not None:
            runtime = self.application.settings[SETTINGS_KEY]
            runtime.connections.discard(self)
            self.hs_close_for(decision)  # type: ignore[attr-defined]
            return
        allowed = has_scope(self.current_user, AUDIT_READ)
        if not subscriber_may_receive(schema_id, may_read_audit=allowed):
            return
        await super().event_listener(logger, schema_id, data)


def event_mixins(cls: type) -> tuple[type, ...]:
    """The mixins ``wrap_handler`` puts in front of ``cls`` (empty for other handlers)."""
    if issubclass(cls, SubscribeWebsocket) and not issubclass(cls, EventsSubscribeFilterMixin):
        return (EventsSubscribeFilterMixin,)
    return ()
