"""What a live policy reload may change, and the rule ids of its records.

Most of a policy is compiled into :class:`~hardened_server.enforcement.runtime.Compiled` and is
consulted per request, so swapping it changes behaviour from the next request: headers and CSP,
the Host allow-list, trusted proxies, CORS, cross-site rules, paths, tokens, public routes and the
rate limit. A few keys were turned into server structure at start-up and cannot follow a reload:
they are listed here, and a reload that changes one is refused as a whole (the running policy
stays in force, and the record says which key needs a restart) rather than applied in part.
"""

from __future__ import annotations

from hardened_server.policy.model import Policy

POLICY_LOADED = "HS-POLICY-001"
RELOAD_APPLIED = "HS-POLICY-002"
RELOAD_REFUSED = "HS-POLICY-003"

#: Keys applied at start-up only, and why.
RESTART_ONLY: dict[str, str] = {
    "terminals.enabled": "the terminal routes are registered (or not) at start-up",
    "nbconvert.sanitize_html": "the exporters' configuration is set at start-up",
    "limits.max_body_bytes": "tornado's connection body limit is set when the server starts",
    "limits.max_header_bytes": "tornado's header buffer is sized when the server starts",
    "limits.max_url_bytes": "tornado's header buffer is sized when the server starts",
    "limits.websocket_max_message_bytes": "a security setting of the web application",
    "limits.websocket_ping_interval_seconds": "a security setting of the web application",
    "limits.websocket_ping_timeout_seconds": "a security setting of the web application",
}


#: Whole sections applied at start-up only.
RESTART_ONLY_SECTIONS: dict[str, str] = {
    "audit": "the audit trail (file, fsync, rotation, signing, fail-closed) is opened at start-up",
}


def _why_restart(key: str) -> str | None:
    return RESTART_ONLY.get(key) or RESTART_ONLY_SECTIONS.get(key.split(".", 1)[0])


def restart_only_changes(old: Policy, new: Policy) -> list[str]:
    """``"key (old -> new): why"`` for every restart-only key the new policy changes."""
    out = []
    for key in sorted(set(old.values) | set(new.values)):
        why = _why_restart(key)
        before, after = old.values.get(key), new.values.get(key)
        if why is not None and before != after:
            out.append(f"{key} ({before!r} -> {after!r}): {why}")
    return out
