"""Where a decision made at request time is written down.

Every denial goes through :func:`record_denial`, so that the audit trail (hash-chained file,
EventLogger, metrics) has one place to hook. Nothing here writes raw client input at the start of
a line, and no value that could carry a secret (query strings, cookies, Authorization) is
recorded: the path only, with its query dropped.
"""

from __future__ import annotations

import logging

from tornado.httputil import HTTPServerRequest

from hardened_server.policy.decisions import Decision

log = logging.getLogger("hardened_server.decisions")


def _safe(text: str, limit: int = 200) -> str:
    """Escape control characters so a request cannot forge log lines."""
    return text[:limit].encode("unicode_escape", "backslashreplace").decode("ascii")


def record_denial(request: HTTPServerRequest, decision: Decision, route_class: str) -> None:
    log.warning(
        "policy denial rule=%s class=%s method=%s path=%s peer=%s reason=%s",
        decision.rule_id,
        route_class,
        _safe(request.method or ""),
        _safe(request.path or ""),
        _safe(request.remote_ip or ""),
        decision.reason,
    )
