"""Where a decision made at request time is written down: the one funnel into the audit trail.

Every denial goes through :func:`record_denial`, every request whose forwarding headers were
ignored (or were malformed from a trusted proxy) through :func:`record_ignored`, every CSP
violation report through :func:`record_csp_violation`, and every sensitive allow or identity
failure through :func:`record_event`. Each call writes

* one log line (as before: nothing raw from the client at the start of a line, no query string,
  cookie or Authorization value), and
* one :class:`~hardened_server.trail.record.DecisionRecord` on the audit trail installed at
  start-up (:mod:`hardened_server.enforcement.auditfile`): the hash-chained file, stdout, the
  EventLogger and the Prometheus counters.

**Exactly one record per decision.** A denial can pass through two layers (the path guard of a
static handler and the handler's own hook; the contents manager and the handler that called
it); the request remembers which decisions it has recorded and a second report of the same one
is dropped. **Exactly one record per state change**, too: an operation that changes several
things at once (a session created with its kernel, deleted with it) records once, under
:func:`folded`, naming what it folded in; :func:`claim_event` tells the request that a later
report of one event is already part of a record written (a session whose kernel is replaced).

``client`` is the address the trusted-proxy rules believe (``request.remote_ip`` after the
request gate), ``peer`` the TCP peer that actually connected; they differ only behind a trusted
proxy. The user is the name only, from the request (set by the handler once it knows the user)
or from jupyter_server's ``CallContext``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from jupyter_server.base.call_context import CallContext
from tornado import web
from tornado.httputil import HTTPServerRequest

from hardened_server.enforcement import auditfile as trail_state
from hardened_server.enforcement import context
from hardened_server.policy.decisions import Decision, RouteClass
from hardened_server.policy.routeclass import classify_path
from hardened_server.policy.rules import Rule
from hardened_server.trail.chain import AuditWriteError
from hardened_server.trail.record import (
    EVENT_KINDS,
    NO_REQUEST,
    RECORD_ROUTE_CLASSES,
    EventKind,
)
from hardened_server.trail.scrub import escape_log_value

if TYPE_CHECKING:
    from hardened_server.policy.connlimits import Summary

log = logging.getLogger("hardened_server.decisions")
audit_log = logging.getLogger("hardened_server.audit")


def _safe(text: str, limit: int = 200) -> str:
    """One line, no forged ones: the audit module's escaping (controls, bidi, separators)."""
    return escape_log_value(text, limit=limit)


def _peer(request: HTTPServerRequest) -> str:
    return getattr(request, "hs_peer_ip", None) or request.remote_ip or ""


# -- the trail ---------------------------------------------------------------------------------


def _route_class(request: Any, route_class: str) -> str:
    if route_class in RECORD_ROUTE_CLASSES:
        return route_class
    if request is None:
        return NO_REQUEST
    known = getattr(request, "hs_route_class", None)
    if known in RECORD_ROUTE_CLASSES:
        return str(known)
    state = trail_state.audit_state()
    base_url = state.runtime.base_url if state.runtime is not None else "/"
    try:
        return str(classify_path(request.path or "/", base_url))
    except Exception:  # a path classify_path cannot read: still one record
        return RouteClass.API


def _user_of(request: Any, user: Any) -> str | None:
    if user is not None:
        return context.user_name(user)
    if request is None:
        return None
    name = getattr(request, "hs_user", None)
    if name is not None:
        return str(name)
    if context.current_request() is request:
        value = CallContext.get(context.HS_USER)
        return value if isinstance(value, str) else None
    return None


def _scheme(request: Any) -> str:
    scheme = str(getattr(request, "protocol", "") or "")
    if str(request.headers.get("Upgrade", "")).lower() == "websocket":
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    return scheme


def _already_recorded(request: Any, key: tuple[Any, ...]) -> bool:
    seen: set[tuple[Any, ...]] | None = getattr(request, "hs_recorded", None)
    if seen is None:
        seen = set()
        try:
            request.hs_recorded = seen
        except AttributeError:  # pragma: no cover - a request object without a __dict__
            return False
    if key in seen:
        return True
    seen.add(key)
    return False


def _event_key(
    rule_id: str, allowed: bool, event_kind: str | None, subject: str | None
) -> tuple[Any, ...]:
    """What makes two reports the same record within one request."""
    if not allowed and event_kind is None:
        return (rule_id, False)
    return (rule_id, allowed, event_kind, subject)


def _to_trail(
    request: Any,
    *,
    rule_id: str,
    allowed: bool,
    reason: str,
    route_class: str,
    user: Any = None,
    event_kind: str | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Write one record; False if it was a duplicate or there is no trail. A record that
    cannot be written is logged; with ``audit.fail_closed`` an *allowed* request that needed
    it is refused with 503 (a denial stays the denial it was). The record itself has reached
    the other sinks (stdout, the EventLogger) under its own rule id; the failure is written down
    in the CRITICAL log line: HS-AUDIT-003 and the rule id of the record the file lacks."""
    state = trail_state.audit_state()
    audit_trail = state.trail
    if audit_trail is None:
        return False
    key = _event_key(rule_id, allowed, event_kind, subject)
    # An activity record (detail) is one of many on one websocket or request: never a repeat.
    if request is not None and detail is None and _already_recorded(request, key):
        return False
    values: dict[str, Any] = {
        "rule_id": rule_id,
        "allowed": allowed,
        "reason": reason,
        "route_class": _route_class(request, route_class),
        "user": _user_of(request, user),
        "event_kind": event_kind,
        "subject": subject,
        "policy_fingerprint": state.policy_fingerprint(),
        "non_owner": getattr(request, "hs_non_owner", None) if request is not None else None,
    }
    if detail is not None:
        values["detail"] = detail
    if request is not None:
        values.update(
            method=request.method,
            path=request.path or "",
            client_ip=request.remote_ip,
            scheme=_scheme(request),
            request_id=context.request_id_of(request),
        )
    else:
        values.update(method="NONE", path="", client_ip=None, scheme=None, request_id=None)
    try:
        audit_trail.event(**values)
    except AuditWriteError as exc:
        audit_log.critical(
            "[%s] audit record NOT written rule=%s kind=%s: %s",
            exc.rule_id,  # HS-AUDIT-003 (the file) or HS-AUDIT-005 (another required sink)
            rule_id,
            event_kind or "-",
            _safe(str(exc)),
        )
        if state.fail_closed and allowed and request is not None:
            # The rule in the answer: HS-AUDIT-003 (the file) or HS-AUDIT-005 (a sink
            # audit.require names), so the operator knows which setting to look at.
            # No path or collector address in the answer: the sink's name, the rule, the key.
            message = (
                f"audit trail unavailable: the required audit sink {exc.sink!r} did not "
                f"accept the record ({exc.rule_id}; audit.require, audit.fail_closed)"
            )
            raise web.HTTPError(503, message.replace("%", "%%")) from None
    except ValueError as exc:  # a server-side value the record refuses: a bug, never a 5xx
        audit_log.error("audit record refused rule=%s: %s", rule_id, _safe(str(exc)))
        return False
    return True


# -- the funnel ----------------------------------------------------------------------------------


def record_denial(
    request: HTTPServerRequest,
    decision: Decision,
    route_class: str,
    *,
    subject: str | None = None,
    log_line: bool = True,
) -> None:
    """One refusal of ``request`` by ``decision``. ``subject``: what was refused when it is
    not the request path (a rename target, a path operation). ``log_line=False`` when the
    caller wrote its own line."""
    if (decision.rule_id, False) in getattr(request, "hs_recorded", ()):
        return  # the same denial reported again by a second layer
    route_class = _route_class(request, route_class)
    if log_line:
        _log_denial(request, decision, route_class)
    _to_trail(
        request,
        rule_id=decision.rule_id,
        allowed=decision.allowed,
        reason=decision.reason,
        route_class=route_class,
        subject=subject,
    )


def _log_denial(request: HTTPServerRequest, decision: Decision, route_class: str) -> None:
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
    _to_trail(
        request,
        rule_id=decision.rule_id,
        allowed=decision.allowed,
        reason=decision.reason,
        route_class="",
    )


def record_connection_summary(summary: Summary, reason: str) -> None:
    """Refused or timed-out connections (HS-LIMIT-006..009) have no request, and one record
    each would let a flood of them flood the log and the trail: one line and one record per
    report of :class:`~hardened_server.policy.connlimits.RefusalSummary` (the first refusal at
    once, then one per rule and interval with the count and the busiest client addresses)."""
    log.warning(
        "policy connections rule=%s count=%d seconds=%.0f clients=%s reason=%s",
        summary.rule,
        summary.count,
        summary.seconds,
        _safe(",".join(f"{client}x{n}" for client, n in summary.clients) or "-"),
        reason,
    )
    _to_trail(
        None,
        rule_id=summary.rule,
        allowed=False,
        reason=reason,
        route_class="",
        subject=summary.subject(),
    )


def record_csp_violation(request: HTTPServerRequest, report: Any, route_class: str) -> None:
    """One CSP violation a browser reported: the directive, the blocked resource without query
    or fragment, the page it happened on. The raw report body is never logged."""
    log.warning(
        "csp violation rule=%s class=%s directive=%s blocked=%s document=%s client=%s",
        Rule.CSP_VIOLATION,
        route_class,
        _safe(report.directive),
        _safe(report.blocked),
        _safe(report.document_path),
        _safe(request.remote_ip or ""),
    )
    _to_trail(
        request,
        rule_id=Rule.CSP_VIOLATION,
        allowed=False,
        reason=f"the browser blocked {report.directive}",
        route_class=route_class,
        subject=f"{report.directive} blocked={report.blocked} document={report.document_path}",
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
    with no request (start-up, reload, the ``token`` CLI): the record then has route class
    ``server`` and method ``NONE``. ``extra`` holds non-secret detail (a token *id*, never a
    token); ``subject=`` is recorded as the record's subject, other keys go into it as
    ``key=value``. ``user`` is a name or a user object (only its name is kept); by default the
    request's user."""
    kind, named = _event_kind(event_kind)
    if named is not None and named.replace(".", "_") != kind:
        extra.setdefault("event", named)
    subject = _subject(extra)
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
        _safe(context.user_name(user) or "-"),
        _safe(reason),
    )
    fold = _FOLDED.get()
    if fold is not None and allowed and kind is not None:
        fold.append(" ".join(part for part in (kind, subject) if part))
        return
    _to_trail(
        request,
        rule_id=rule_id,
        allowed=allowed,
        reason=reason,
        route_class=route_class,
        user=user,
        event_kind=kind,
        subject=subject,
    )


# -- one operation, one record ----------------------------------------------------------------

_FOLDED: ContextVar[list[str] | None] = ContextVar("hs_folded_events", default=None)


@contextmanager
def folded() -> Iterator[list[str]]:
    """One operation, one record: sensitive allows recorded inside the block (a kernel started
    or shut down by a session operation) are not written; each is collected as ``"kind
    subject"`` into the yielded list, for the one record the enclosing operation writes and
    names them in. Denials are never folded (a refusal is its own record). A fold inside a fold
    hands what it collected on to the enclosing one when it ends."""
    outer = _FOLDED.get()
    notes: list[str] = []
    token = _FOLDED.set(notes)
    try:
        yield notes
    finally:
        _FOLDED.reset(token)
        if outer is not None:
            outer.extend(notes)


def folding() -> bool:
    """Whether a :func:`folded` block is open in this context."""
    return _FOLDED.get() is not None


def claim_event(
    request: Any, event_kind: str, *, rule_id: str, subject: str | None = None
) -> None:
    """The allowed ``event_kind`` on ``subject`` is part of a record this request has written
    (or is writing): a later :func:`record_event` of it in the same request is dropped as the
    duplicate it is. For a change a handler makes *after* the record that names it (the old
    kernel a session update replaces, shut down by the handler afterwards)."""
    if request is None:
        return
    kind, _named = _event_kind(event_kind)
    _already_recorded(request, _event_key(rule_id, True, kind, subject))


#: Event names callers use that are not the schema's :class:`EventKind` values.
_KIND_ALIASES = {
    "auth_token_refused": EventKind.LOGIN_FAILURE,
    "token_refused": EventKind.LOGIN_FAILURE,
    "token_misplaced": EventKind.LOGIN_FAILURE,
    "token_rotated": EventKind.TOKEN_CREATED,
    "login_ok": EventKind.LOGIN_SUCCESS,
    "login_succeeded": EventKind.LOGIN_SUCCESS,
    "login_failed": EventKind.LOGIN_FAILURE,
    "login_throttled": EventKind.LOGIN_FAILURE,
    "session_refused": EventKind.LOGIN_FAILURE,
    "logout_everywhere": EventKind.LOGOUT,
}


def _event_kind(name: str) -> tuple[str | None, str | None]:
    """The schema's event kind for ``name`` (``token.used`` and ``token_used`` alike), and the
    caller's own name when it had to be mapped (kept in the subject, so nothing is lost)."""
    plain = str(name).replace(".", "_").replace("-", "_").lower()
    if plain in EVENT_KINDS:
        return plain, None if plain == name else str(name)
    alias = _KIND_ALIASES.get(plain) or _KIND_ALIASES.get(plain.split("_", 1)[-1])
    return (alias.value if alias else None), str(name)


def _subject(extra: dict[str, Any]) -> str | None:
    subject = extra.pop("subject", None)
    parts = [str(subject)] if subject is not None else []
    # A token's public id is evidence; written as ``token_id=`` the scrubber would (rightly,
    # for anything else so named) take it for a secret.
    names = {"token_id": "id"}
    parts += [
        f"{names.get(key, key)}={value}"
        for key, value in sorted(extra.items())
        if value is not None
    ]
    return " ".join(parts) if parts else None


def record_activity(
    request: HTTPServerRequest | None,
    event_kind: EventKind,
    *,
    rule_id: str,
    reason: str,
    detail: dict[str, Any],
    user: Any = None,
    subject: str | None = None,
    route_class: str = "",
) -> None:
    """What a user did (issue #20): code sent to a kernel, a terminal line, a file read.
    ``detail`` is the record's structured part (:data:`~hardened_server.trail.record.
    DETAIL_FIELDS`), already reduced by :func:`hardened_server.policy.activity.keep_text`. The
    log line names the record and its size, never the text (a 'full' record keeps it in the
    trail only). ``request`` is the websocket's handshake for kernel and terminal messages:
    one request, many records, none a repeat."""
    # DEBUG: the trail is the record; an INFO line per cell, line and read is noise (and its
    # scrubbing costs a round trip's worth of CPU in make bench's recording row). Its
    # arguments are scrubbed only when DEBUG is on: a file read's record cost them every time.
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "activity kind=%s rule=%s path=%s user=%s subject=%s size=%s",
            event_kind.value,
            rule_id,
            _safe(request.path or "") if request is not None else "-",
            _safe(context.user_name(user) or getattr(request, "hs_user", None) or "-"),
            _safe(subject or "-"),
            detail.get("size", "-"),
        )
    _to_trail(
        request,
        rule_id=rule_id,
        allowed=True,
        reason=reason,
        route_class=route_class,
        user=user,
        event_kind=event_kind.value,
        subject=subject,
        detail=detail,
    )
