"""The server's own event schemas: the one list of what the server emits and no client may.

Two families, both emitted by the server alone:

* jupyter_server's: ``jupyter_server/event_schemas/*/v1.yaml`` in jupyter_server 2.21, with ids
  under ``jupyter_server.JUPYTER_SERVER_EVENTS_URI`` (``https://events.jupyter.org/jupyter_server``);
  any later schema under that URI is jupyter_server's too.
* the audit trail's decision record, :data:`DECISION_SCHEMA_ID`, registered from
  ``hardened_server/trail/schemas/policy_decision.v1.json``; every id under
  :data:`TRAIL_SCHEMA_PREFIX` is ours and server-only.

Stock jupyter_server lets any authenticated client ``POST /api/events`` with any registered schema
(SECURITY.md, "Scopes and the route map"): a forged ``contents_service`` ``delete`` or a forged
audit record. Every place that must tell a server schema from a client one imports it from here:
the request floor (``HS-EVENTS-001``, :mod:`hardened_server.enforcement.events`), the event bus
guard and subscriber filter (:mod:`hardened_server.trail.events`) and the static audit
(``HS-SCOPE-102``, :mod:`hardened_server.audit.checks.identity`). A second copy of this list once
drifted: the audit looked for ``https://hardened-server.`` and never saw the trail's own id.
"""

from __future__ import annotations

__all__ = [
    "DECISION_SCHEMA_ID",
    "JUPYTER_SERVER_EVENTS_PREFIX",
    "JUPYTER_SERVER_SCHEMAS",
    "SERVER_SCHEMAS",
    "TRAIL_SCHEMA_PREFIX",
    "is_server_schema",
    "is_trail_schema",
]

#: ``jupyter_server.JUPYTER_SERVER_EVENTS_URI`` with the separator: every id under it is
#: jupyter_server's own (not imported, to keep this package free of jupyter_server).
JUPYTER_SERVER_EVENTS_PREFIX = "https://events.jupyter.org/jupyter_server/"

#: The schemas jupyter_server 2.21 registers (``jupyter_server/event_schemas/``).
JUPYTER_SERVER_SCHEMAS: frozenset[str] = frozenset(
    {
        JUPYTER_SERVER_EVENTS_PREFIX + "contents_service/v1",
        JUPYTER_SERVER_EVENTS_PREFIX + "gateway_client/v1",
        JUPYTER_SERVER_EVENTS_PREFIX + "kernel_actions/v1",
    }
)

#: Every schema under this prefix is the audit trail's: server-only, and only admins receive it
#: on ``/api/events/subscribe``.
TRAIL_SCHEMA_PREFIX = "https://events.hardened-server.invalid/"

#: The decision record's schema id (the ``$id`` of ``trail/schemas/policy_decision.v1.json``).
DECISION_SCHEMA_ID = TRAIL_SCHEMA_PREFIX + "policy_decision/v1"

#: Every server schema known by name: jupyter_server's and the trail's.
SERVER_SCHEMAS: frozenset[str] = JUPYTER_SERVER_SCHEMAS | {DECISION_SCHEMA_ID}


def is_trail_schema(schema_id: object) -> bool:
    """One of the audit trail's schemas: clients may not emit it and non-admin subscribers may
    not receive it."""
    return isinstance(schema_id, str) and schema_id.startswith(TRAIL_SCHEMA_PREFIX)


def is_server_schema(schema_id: object) -> bool:
    """The trail's or jupyter_server's own: emitted by the server, never by a client (a client
    that could post one would forge what the server did)."""
    if not isinstance(schema_id, str):
        return False
    return (
        is_trail_schema(schema_id)
        or schema_id in JUPYTER_SERVER_SCHEMAS
        or schema_id.startswith(JUPYTER_SERVER_EVENTS_PREFIX)
    )
