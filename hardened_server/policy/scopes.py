"""Scopes: what an authenticated principal may do (contract shared by identity, the route map and
the audit trail).

A principal is jupyter_server's ``User`` with a ``hs_scopes`` attribute (a frozenset of the names
below) set by the identity provider. A user object without it has *no* scope (fail closed): every
identity path that authenticates must say what it grants. ``admin`` implies every other scope.

The identity layer (``hardened_server.enforcement.identity``: the provider and the token store)
decides which scopes a request carries; the route map (:mod:`hardened_server.policy.scopemap`:
route -> (resource, action) -> required scopes) says what each route needs, and ``prepare()`` of
every wrapped handler compares the two.
"""

from __future__ import annotations

from typing import Any

ADMIN = "admin"
#: Receive the audit trail's events on ``/api/events/subscribe``. Never implied by ``admin``.
AUDIT_READ = "audit:read"

#: Every scope the policy may grant. Order is the documentation order.
SCOPES: tuple[str, ...] = (
    "contents:read",
    "contents:write",
    "kernels:read",
    "kernels:execute",
    "sessions:read",
    "sessions:write",
    "terminals",
    "events:write",
    "metrics:read",
    ADMIN,
    # Added with the route map (compatible: a new name grants nothing to anyone who lacks it).
    "events:read",
    "frontend:read",
    "frontend:write",
    # Issue #19: the audited user (admin of their own server) is not an audit reader.
    AUDIT_READ,
)
KNOWN_SCOPES = frozenset(SCOPES)
#: Scopes that ``admin`` does not imply: each must be granted by name.
NOT_IMPLIED_BY_ADMIN = frozenset({AUDIT_READ})
#: Everything ``admin`` stands for (what a hub user admitted to the server carries).
ALL_SCOPES = KNOWN_SCOPES - NOT_IMPLIED_BY_ADMIN


def scopes_of(user: Any) -> frozenset[str]:
    """The scopes ``user`` carries; none when the identity layer did not say (fail closed)."""
    scopes = getattr(user, "hs_scopes", None)
    if not isinstance(scopes, frozenset):
        return frozenset()
    return scopes


def has_scope(user: Any, scope: str) -> bool:
    granted = scopes_of(user)
    if scope in NOT_IMPLIED_BY_ADMIN:
        return scope in granted
    return ADMIN in granted or scope in granted


def has_scopes(user: Any, required: frozenset[str]) -> bool:
    """All of ``required`` (an empty set: any authenticated principal)."""
    if not required:
        return True
    granted = scopes_of(user)
    named = required & NOT_IMPLIED_BY_ADMIN
    if not named <= granted:
        return False
    return ADMIN in granted or required <= granted
