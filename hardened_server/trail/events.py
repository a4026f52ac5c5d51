"""The audit schema on jupyter_server's EventLogger, kept server-only.

Two holes in stock jupyter_server 2.21 (research notes §2.12, §2.6, §2.8) this module closes or
gives the lead the pieces to close:

* ``POST /api/events`` lets any authenticated client emit *any* registered schema, with a
  timestamp of its choosing (a forged ``contents_service`` ``delete`` returned 204). Once our
  decision schema is registered, a client could forge audit records the same way. Defence in
  depth: :func:`register_audit_schema` installs a modifier that refuses every emission of the
  audit schema that does not come from :class:`EventLoggerSink` (a context variable only the
  sink sets), so a forged POST fails with 400 even if the handler is left stock; and
  :func:`may_client_emit` is the allow-list the ``/api/events`` handler should consult.
* ``/api/events/subscribe`` fans *every* event out to any user authorised for ``execute
  events``; audit records (user names, client IPs, denied paths) must not go to them. The
  subscriber's listener must drop server-only schemas for anyone without ``audit:read`` (not
  implied by ``admin``: under JupyterHub the audited user is admin of their own server): see
  :func:`subscriber_may_receive`, :func:`filter_subscribe_listener` and
  :func:`detach_server_only_listener`.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any

from hardened_server.policy.eventschemas import is_server_schema, is_trail_schema
from hardened_server.trail.chain import ChainEntry
from hardened_server.trail.record import SCHEMA_ID, DecisionRecord, decision_schema

if TYPE_CHECKING:
    from jupyter_events import EventLogger

__all__ = [
    "EventLoggerSink",
    "ForgedAuditEvent",
    "detach_server_only_listener",
    "filter_subscribe_listener",
    "is_server_only_schema",
    "may_client_emit",
    "register_audit_schema",
    "subscriber_may_receive",
]

log = logging.getLogger("hardened_server.audit")

_EMITTING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hardened_server_audit_emitting", default=False
)

# jupyter_events types a listener as a coroutine function (EventLogger.add_listener); an
# ``async def`` is one.
Listener = Callable[..., Coroutine[Any, Any, None]]


class ForgedAuditEvent(PermissionError):
    """An emission of a server-only schema that did not come from the audit trail."""


def is_server_only_schema(schema_id: str) -> bool:
    """True for the audit schemas (:func:`hardened_server.policy.eventschemas.is_trail_schema`):
    clients may not emit them and only ``audit:read`` subscribers may receive them."""
    return is_trail_schema(schema_id)


def may_client_emit(schema_id: str, allowed: Collection[str] = ()) -> bool:
    """Whether ``POST /api/events`` may emit ``schema_id``: only schemas on the deployment's
    allow-list, and never a server schema (the trail's or jupyter_server's, whose events the
    server emits itself; a client-emitted one is a forgery): the same answer as the request
    floor ``HS-EVENTS-001``. Default: nothing."""
    return schema_id in allowed and not is_server_schema(schema_id)


def subscriber_may_receive(schema_id: str, *, may_read_audit: bool) -> bool:
    """Whether an ``/api/events/subscribe`` client may receive events of ``schema_id``:
    ``may_read_audit`` is whether it holds the ``audit:read`` scope (``admin`` is not enough)."""
    return may_read_audit or not is_server_only_schema(schema_id)


def filter_subscribe_listener(
    listener: Listener, *, may_read_audit: bool | Callable[[], bool]
) -> Listener:
    """Wrap a subscriber's ``event_listener`` so server-only events are dropped for subscribers
    without ``audit:read``.

    Register the *returned* callable with ``add_listener`` and remove that same object on
    close. ``may_read_audit`` may be a callable, re-evaluated per event (a scope revoked
    mid-session stops the stream)."""

    async def filtered(*, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        allowed = may_read_audit() if callable(may_read_audit) else may_read_audit
        if subscriber_may_receive(schema_id, may_read_audit=allowed):
            await listener(logger=logger, schema_id=schema_id, data=data)

    filtered.__name__ = getattr(listener, "__name__", "event_listener")
    return filtered


def detach_server_only_listener(event_logger: EventLogger, listener: Listener) -> None:
    """Remove ``listener`` from every server-only schema. jupyter_server's
    ``SubscribeWebsocket.open`` subscribes to *all* registered schemas; call this right after
    ``super().open()`` for a non-admin subscriber."""
    for schema_id in list(event_logger.schemas.schema_ids):
        if is_server_only_schema(schema_id):
            event_logger.remove_listener(schema_id=schema_id, listener=listener)


def _refuse_forged(schema_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """EventLogger modifier for the audit schema: only the trail may emit it."""
    if not _EMITTING.get():
        raise ForgedAuditEvent(f"{schema_id} is server-only: emission refused")
    return data


def register_audit_schema(event_logger: EventLogger) -> None:
    """Register the decision schema on ``event_logger`` (idempotent) and install the forgery
    guard. Call once after ``ServerApp.init_event_logger``."""
    if SCHEMA_ID not in event_logger.schemas.schema_ids:
        event_logger.register_event_schema(dict(decision_schema()))
    event_logger.add_modifier(schema_id=SCHEMA_ID, modifier=_refuse_forged)


class EventLoggerSink:
    """Emits each decision on a jupyter_events ``EventLogger`` (its handlers and listeners).

    Must be called on the server's event loop thread when listeners (subscribers) exist:
    jupyter_events schedules them with ``asyncio.create_task``."""

    def __init__(self, event_logger: EventLogger) -> None:
        self.event_logger = event_logger
        register_audit_schema(event_logger)

    def write(self, record: DecisionRecord, entry: ChainEntry | None = None) -> None:
        if not self._heard(self.event_logger):
            return  # emit would drop it unread: no copy of the record to build for it
        token = _EMITTING.set(True)
        try:
            self.event_logger.emit(schema_id=SCHEMA_ID, data=record.to_dict())
        finally:
            _EMITTING.reset(token)

    @staticmethod
    def _heard(event_logger: EventLogger) -> bool:
        """Would ``emit`` pass a decision on? jupyter_events' ``emit`` returns at once when the
        logger has no handler and the schema no listener; the record's dict (built for
        ``emit`` on every record) is then not needed. A logger without those attributes (another
        jupyter_events) is asked by ``emit`` itself."""
        if event_logger.handlers:
            return True
        try:
            modified = event_logger._modified_listeners.get(SCHEMA_ID)
            unmodified = event_logger._unmodified_listeners.get(SCHEMA_ID)
        except AttributeError:
            return True
        return bool(modified or unmodified)
