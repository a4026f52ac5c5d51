"""Where a decision made at request time is written down.

Every denial goes through :func:`record_denial`, and every request whose forwarding headers were
ignored (or were malformed from a trusted proxy) through :func:`record_ignored`, so that the audit
trail (hash-chained file, EventLogger, metrics) has one place to hook. Nothing here writes raw
client input at the start of a line, and no value that could carry a secret (query strings,
cookies, Authorization) is recorded: the path only, with its query dropped.

``client`` is the address the trusted-proxy rules believe (``request.remote_ip`` after the
request gate), ``peer`` the TCP peer that actually connected; they differ only behind a trusted
proxy.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado.httputil import HTTPServerRequest

from hardened_server.audit.scrub import escape_log_value
from hardened_server.policy.decisions import Decision

log = logging.getLogger("hardened_server.decisions")


def _safe(text: str, limit: int = 200) -> str:
    """One line, no forged ones: the audit module's escaping (controls, bidi, separators)."""
    return escape_log_value(text, limit=limit)


def _peer(request: HTTPServerRequest) -> str:
    return getattr(request, "hs_peer_ip", None) or request.remote_ip or ""


def record_denial(request: HTTPServerRequest, decision: Decision, route_class: str) -> None:
    log.warning(
        "policy denial rule=%s class=%s method=%s path=%s peer=%s client=%s reason=%s",
        decision.rule_id,
        route_class,
        _safe(request.method or ""),
        _safe(request.path or ""),
        _safe(_peer(request)),
        _safe(request.remote_ip or ""),
        decision.reason,
    )


def record_ignored(request: HTTPServerRequest, decision: Decision) -> None:
    """A request went on, but something it claimed was not believed (forwarding headers from a
    peer outside ``server.trusted_proxies``): recorded, because spoofing attempts are worth
    seeing."""
    log.warning(
        "policy ignored rule=%s method=%s path=%s peer=%s client=%s reason=%s",
        decision.rule_id,
        _safe(request.method or ""),
        _safe(request.path or ""),
        _safe(_peer(request)),
        _safe(request.remote_ip or ""),
        decision.reason,
    )


CSP_VIOLATION_RULE = "HS-CSP-001"


def record_csp_violation(request: HTTPServerRequest, report: Any, route_class: str) -> None:
    """One CSP violation a browser reported: the directive, the blocked resource without query
    or fragment, the page it happened on. The raw report body is never logged."""
    log.warning(
        "csp violation rule=%s class=%s directive=%s blocked=%s document=%s client=%s",
        CSP_VIOLATION_RULE,
        route_class,
        _safe(report.directive),
        _safe(report.blocked),
        _safe(report.document_path),
        _safe(request.remote_ip or ""),
    )


def record_event(
    request: HTTPServerRequest | None,
    event_kind: str,
    *,
    rule_id: str,
    allowed: bool,
    reason: str,
    user: str | None = None,
    route_class: str = "",
    **extra: Any,
) -> None:
    """A sensitive allow or an identity failure that is not a request-gate ``Decision``: login
    success and failure, logout, token created/used/revoked, file written/renamed/deleted,
    kernel started, terminal opened, policy loaded or reloaded. ``request`` is None for events
    with no request (start-up, reload, the ``token`` CLI). ``extra`` holds non-secret detail
    (a token *id*, never a token). Until the audit trail is wired this writes the log line."""
    log.info(
        "policy event kind=%s rule=%s allowed=%s class=%s method=%s path=%s client=%s user=%s "
        "reason=%s",
        _safe(event_kind),
        rule_id,
        allowed,
        route_class,
        _safe(request.method or "") if request is not None else "-",
        _safe(request.path or "") if request is not None else "-",
        _safe(request.remote_ip or "") if request is not None else "-",
        _safe(user or "-"),
        _safe(reason),
    )
