"""Open websockets follow the identity they were opened with (issue #18).

tornado authenticates a websocket once: the upgrade ``GET`` runs ``prepare`` (the gate, the
login, the route's scopes), and from then on the connection is a pipe that nothing re-checks. A
kernel websocket kept executing code after ``POST /logout``, after "log out everywhere", after
``hardened-server token revoke`` and after the session's idle expiry; an
``/api/events/subscribe`` socket kept streaming. This module closes that gap for every wrapped
``WebSocketHandler`` alike (kernels, events, terminals, LSP, collaboration rooms, any
extension's), because the hardened websocket mixin (:mod:`hardened_server.enforcement.handlers`)
registers each connection in ``open`` and removes it in ``on_close``:

==========================================  ==================================================
what changed                                 what happens to the open connections it carried
==========================================  ==================================================
``POST /logout`` (this session)              closed at once (the logout handler sweeps)
log out everywhere                           every session-bound one closed at once
session idle / absolute expiry               closed at the next sweep (at most
                                             :data:`SWEEP_SECONDS` later); the sweep itself is
                                             not activity, so it never keeps a session alive
``token revoke`` / ``token rotate`` /        closed at the next sweep: one ``stat`` of the
token expiry (the CLI edits the store file)  store file per sweep notices the new file
policy reload (route map, owner scopes)      closed at the next sweep if the policy now in force
                                             would refuse the handshake's scopes
==========================================  ==================================================

Each close is a websocket close frame with code 1008 (policy violation) and a reason naming the
rule id, and one audit record (``HS-ID-023``, ``HS-ID-033``, ``HS-SCOPE-005``) for the
handshake request. What a connection is bound to (:class:`Binding`) is read off the handshake's
handler: the session id the login cookie carried, or the stored token's id and hash (a rotated
token has a new hash), or the start-up token (which only a restart changes: that closes
everything anyway). An identity provider decides whether its credential still stands through
``hs_credential_decision(binding)`` and may refresh a principal's scopes from the policy in force
through ``hs_refresh_scopes(user)``; one without those hooks (JupyterHub's, whose tokens the hub
checks) is re-checked for scopes only.

Cost: the sweep runs only while a connection is open; per sweep one ``stat`` of the token store
and, per connection, a few dictionary look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tornado.ioloop import PeriodicCallback

from hardened_server.enforcement.recorder import record_denial
from hardened_server.policy.decisions import Decision, deny
from hardened_server.policy.rules import Rule
from hardened_server.policy.scopemap import refusal_message, scope_allows, scope_decision
from hardened_server.policy.scopes import scopes_of

if TYPE_CHECKING:
    from collections.abc import Callable

#: How often open connections are re-checked (seconds): "within a second" with room to spare.
SWEEP_SECONDS = 0.25
#: RFC 6455 close code 1008: "an endpoint is terminating the connection because it has received
#: a message that violates its policy"; the generic code for a refusal.
POLICY_VIOLATION = 1008
#: A close frame's reason is at most 123 bytes (RFC 6455 5.5: 125-byte control payload).
_MAX_REASON = 120


@dataclass(frozen=True)
class Binding:
    """What an open connection was authenticated with at its handshake."""

    session_id: str | None = None  # the login cookie's session
    token_id: str | None = None  # a stored token's public id ...
    token_sha256: str | None = None  # ... and the hash of the very secret presented
    source: str | None = None  # "header" | "url" for a token, None for the cookie


def binding_of(handler: Any) -> Binding:
    """Read off the handshake's handler (the identity provider marks it while authenticating)."""
    source = getattr(handler, "_hs_token_source", None)
    return Binding(
        session_id=None if source else getattr(handler, "_hs_session_id", None),
        token_id=getattr(handler, "_hs_token_id", None),
        token_sha256=getattr(handler, "_hs_token_sha256", None),
        source=source,
    )


class Connection(Protocol):
    """The part of a wrapped websocket handler the registry uses."""

    def hs_connection_decision(self) -> Decision | None: ...

    def hs_close_for(self, decision: Decision) -> None: ...


class ConnectionRegistry:
    """Every open wrapped websocket of one application, re-checked while any is open."""

    def __init__(self, interval: float = SWEEP_SECONDS) -> None:
        self.interval = interval
        self._open: dict[int, Connection] = {}
        self._timer: PeriodicCallback | None = None
        self._before_sweep: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._open)

    def add(self, conn: Connection) -> None:
        self._open[id(conn)] = conn
        if self._timer is None:
            self._timer = PeriodicCallback(self._tick, self.interval * 1000)
            self._timer.start()

    def discard(self, conn: Connection) -> None:
        self._open.pop(id(conn), None)
        if not self._open and self._timer is not None:
            self._timer.stop()
            self._timer = None

    def before_sweep(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once at the start of each sweep (the token store's one ``stat``)."""
        if hook not in self._before_sweep:
            self._before_sweep.append(hook)

    def _tick(self) -> None:
        self.sweep()

    def sweep(self) -> int:
        """Re-check every open connection; close those that no longer hold. Returns how many
        were closed. Never raises into the event loop: a check that fails closes its
        connection (fail closed)."""
        for hook in list(self._before_sweep):
            hook()
        closed = 0
        for conn in list(self._open.values()):
            try:
                decision = conn.hs_connection_decision()
            except Exception as exc:  # fail closed, whatever broke
                decision = deny(Rule.ID_CONNECTION_SESSION_ENDED, f"re-check failed: {exc!r}")
            if decision is not None:
                self.discard(conn)
                conn.hs_close_for(decision)
                closed += 1
        return closed


def credential_decision(provider: Any, binding: Binding) -> Decision | None:
    """The provider's verdict on the connection's credential (None: it still stands)."""
    check = getattr(provider, "hs_credential_decision", None)
    return check(binding) if check is not None else None


def scopes_decision(handler: Any, compiled: Any, user: Any) -> Decision | None:
    """The handshake's scope check again, under the policy in force now."""
    provider = handler.application.settings.get("identity_provider")
    refresh = getattr(provider, "hs_refresh_scopes", None)
    if refresh is not None:
        refresh(user)
    scopes = handler._hs_scopes_under(compiled)
    granted = scopes_of(user)
    if scope_allows(scopes, "GET", granted):
        return None
    refused = scope_decision(scopes, "GET", granted)
    return deny(
        Rule.SCOPE_CONNECTION_LOST,
        refusal_message(refused, scopes, "GET"),  # names refused.rule_id itself
    )


def close_reason(decision: Decision) -> str:
    """``HS-ID-023: session ended`` style, cut to fit a close frame."""
    text = f"{decision.rule_id}: {decision.reason}"
    return text.encode("utf-8")[:_MAX_REASON].decode("utf-8", "ignore")


def record_close(handler: Any, decision: Decision) -> None:
    """The audit record of a close, on the handshake request."""
    record_denial(handler.request, decision, handler._hs_route.route_class)
