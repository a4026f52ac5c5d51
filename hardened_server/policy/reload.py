"""What a live policy reload may change.

Most of a policy is compiled into :class:`~hardened_server.enforcement.runtime.Compiled` and is
consulted per request, so swapping it changes behaviour from the next request: headers and CSP,
the Host allow-list, trusted proxies, CORS, cross-site rules, paths, tokens, public routes and the
rate limit. A few keys were turned into server structure at start-up and cannot follow a reload:
they are flagged where they are declared (``restart=`` in :mod:`hardened_server.policy.schema`),
and a reload that changes one is refused as a whole (the running policy stays in force, and the
record says which key needs a restart) rather than applied in part.
The records' rule ids are ``Rule.POLICY_*`` in :mod:`hardened_server.policy.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping

from hardened_server.policy.model import Policy
from hardened_server.policy.schema import SCHEMA, Schema

#: Keys applied at start-up only, and why: declared on the key in the schema
#: (``key(..., restart=...)``, or a whole section's ``Section(..., restart=...)``).
RESTART_ONLY: Mapping[str, str] = SCHEMA.restart_only


def restart_only_changes(old: Policy, new: Policy, *, schema: Schema = SCHEMA) -> list[str]:
    """``"key (old -> new): why"`` for every restart-only key the new policy changes."""
    restart_only = schema.restart_only
    out = []
    for key in sorted(set(old.values) | set(new.values)):
        why = restart_only.get(key)
        before, after = old.values.get(key), new.values.get(key)
        if why is not None and before != after:
            out.append(f"{key} ({before!r} -> {after!r}): {why}")
    return out
