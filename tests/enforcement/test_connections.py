"""The open-connection registry and the identity provider's verdict on a connection's
credential, without a server: sessions on a fake clock (idle and absolute expiry, which a live
test could only show by waiting minutes), a real token store file, and a property over identity
events x connection kinds: after any sequence of logouts, log-outs-everywhere, token revokes and
rotations and clock advances, one sweep leaves open exactly the connections whose credential
still stands, and closes each of the others with the rule id of what ended it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hardened_server.enforcement.connections import (
    Binding,
    ConnectionRegistry,
    binding_of,
    close_reason,
)
from hardened_server.enforcement.identity.provider import HardenedIdentityProvider
from hardened_server.enforcement.identity.sessions import SessionStore
from hardened_server.enforcement.identity.tokenstore import TokenStore, hash_token
from hardened_server.policy.decisions import Decision, deny
from hardened_server.policy.rules import Rule

IDLE, LIFETIME = 100.0, 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def provider_with(tmp: Path, clock: Clock) -> HardenedIdentityProvider:
    provider = HardenedIdentityProvider()
    provider._sessions = SessionStore(IDLE, LIFETIME, clock=clock)
    provider._token_store = TokenStore(tmp / "tokens.json", clock=clock)
    return provider


@dataclass
class FakeConnection:
    """Stands in for a wrapped websocket: its verdict is the provider's on its binding."""

    provider: HardenedIdentityProvider
    binding: Binding
    closed_for: list[Decision] = field(default_factory=list)

    def hs_connection_decision(self) -> Decision | None:
        return self.provider.hs_credential_decision(self.binding)

    def hs_close_for(self, decision: Decision) -> None:
        self.closed_for.append(decision)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_session_binding_ends_at_idle_expiry_and_the_check_is_not_activity(
    tmp_path: Path,
) -> None:
    clock = Clock()
    provider = provider_with(tmp_path, clock)
    session = provider.sessions.create(object())
    binding = Binding(session_id=session.id)
    clock.now += IDLE * 0.9
    assert provider.hs_credential_decision(binding) is None
    clock.now += IDLE * 0.2  # idle since creation: the check above did not reset the clock
    decision = provider.hs_credential_decision(binding)
    assert decision is not None
    assert decision.rule_id == Rule.ID_CONNECTION_SESSION_ENDED


def test_session_binding_ends_at_the_absolute_lifetime_however_active(tmp_path: Path) -> None:
    clock = Clock()
    provider = provider_with(tmp_path, clock)
    session = provider.sessions.create(object())
    binding = Binding(session_id=session.id)
    while clock.now + IDLE / 2 < session.created + LIFETIME:
        clock.now += IDLE / 2
        assert provider.sessions.get(session.id) is not None  # a request: activity
        assert provider.hs_credential_decision(binding) is None
    clock.now = session.created + LIFETIME
    decision = provider.hs_credential_decision(binding)
    assert decision is not None
    assert decision.rule_id == Rule.ID_CONNECTION_SESSION_ENDED


def test_token_binding_ends_at_revoke_rotate_and_expiry(tmp_path: Path) -> None:
    clock = Clock()
    provider = provider_with(tmp_path, clock)
    store = provider.token_store
    secret, record = store.create("a", ["kernels:execute"], 60.0)
    binding = Binding(token_id=record.id, token_sha256=hash_token(secret), source="header")
    provider.hs_before_sweep()
    assert provider.hs_credential_decision(binding) is None
    clock.now += 61
    expired = provider.hs_credential_decision(binding)
    assert expired is not None
    assert expired.rule_id == Rule.ID_CONNECTION_TOKEN_ENDED
    assert "expired" in expired.reason

    clock.now -= 61
    # Another process (the CLI) rotates it: the server's copy notices at the sweep's stat.
    TokenStore(store.path, clock=clock).rotate(record.id)
    provider.hs_before_sweep()
    rotated = provider.hs_credential_decision(binding)
    assert rotated is not None
    assert rotated.rule_id == Rule.ID_CONNECTION_TOKEN_ENDED
    secret2, record2 = store.create("b", ["events:read"], None)
    binding2 = Binding(token_id=record2.id, token_sha256=hash_token(secret2), source="header")
    TokenStore(store.path, clock=clock).revoke(record2.id)
    provider.hs_before_sweep()
    revoked = provider.hs_credential_decision(binding2)
    assert revoked is not None
    assert "revoked" in revoked.reason


def test_startup_token_binding_stands(tmp_path: Path) -> None:
    provider = provider_with(tmp_path, Clock())
    assert provider.hs_credential_decision(Binding(source="header")) is None


def test_binding_reads_the_handshakes_marks() -> None:
    class Handshake:
        _hs_session_id = "s"

    assert binding_of(Handshake()) == Binding(session_id="s")

    class TokenHandshake:
        _hs_session_id = "ignored: a token request is not the session's"
        _hs_token_source = "header"
        _hs_token_id = "0123456789ab"
        _hs_token_sha256 = "f" * 64

    assert binding_of(TokenHandshake()) == Binding(
        token_id="0123456789ab", token_sha256="f" * 64, source="header"
    )


def test_registry_sweeps_closes_once_and_fails_closed() -> None:
    class Broken:
        closed: list[Decision] = []

        def hs_connection_decision(self) -> Decision | None:
            raise RuntimeError("boom")

        def hs_close_for(self, decision: Decision) -> None:
            self.closed.append(decision)

    class Fine(Broken):
        closed: list[Decision] = []

        def hs_connection_decision(self) -> Decision | None:
            return None

    async def scenario() -> None:
        registry = ConnectionRegistry(interval=3600)
        broken, fine = Broken(), Fine()
        registry.add(broken)
        registry.add(fine)
        assert registry.sweep() == 1
        assert registry.sweep() == 0  # closed connections are no longer swept
        assert len(registry) == 1
        assert broken.closed
        assert not fine.closed
        assert "re-check failed" in broken.closed[0].reason
        registry.discard(fine)
        assert registry._timer is None  # no connection, no timer

    run(scenario())


def test_registry_timer_sweeps_on_its_own() -> None:
    async def scenario() -> None:
        registry = ConnectionRegistry(interval=0.01)
        ended = deny(Rule.ID_CONNECTION_SESSION_ENDED, "gone")
        closed: list[Decision] = []

        class Conn:
            def hs_connection_decision(self) -> Decision | None:
                return ended

            def hs_close_for(self, decision: Decision) -> None:
                closed.append(decision)

        registry.add(Conn())
        await asyncio.sleep(0.1)
        assert closed == [ended]
        assert len(registry) == 0

    run(scenario())


def test_close_reason_fits_a_close_frame() -> None:
    reason = close_reason(deny(Rule.ID_CONNECTION_TOKEN_ENDED, "é" * 200))
    assert reason.startswith("HS-ID-033: ")
    assert len(reason.encode()) <= 123


# -- the property ---------------------------------------------------------------------------

SESSIONS, TOKENS = 3, 2
EVENT = st.one_of(
    st.tuples(st.just("logout"), st.integers(0, SESSIONS - 1)),
    st.tuples(st.just("everywhere"), st.just(0)),
    st.tuples(st.just("revoke"), st.integers(0, TOKENS - 1)),
    st.tuples(st.just("rotate"), st.integers(0, TOKENS - 1)),
    st.tuples(st.just("request"), st.integers(0, SESSIONS - 1)),  # activity on a session
    st.tuples(st.just("advance"), st.sampled_from([IDLE / 3, IDLE, LIFETIME / 2])),
)


@given(events=st.lists(EVENT, max_size=8), kinds=st.lists(st.integers(0, 5), max_size=6))
def test_after_any_identity_events_exactly_the_dead_connections_close(
    tmp_path_factory: Any, events: list[tuple[str, Any]], kinds: list[int]
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    clock = Clock()
    provider = provider_with(tmp, clock)
    sessions = [provider.sessions.create(object()) for _ in range(SESSIONS)]
    tokens = [provider.token_store.create(f"t{i}", ["admin"], None) for i in range(TOKENS)]
    # Connection kinds: 0-2 a session's socket, 3-4 a stored token's, 5 the start-up token's.
    bindings = []
    for kind in kinds:
        if kind < SESSIONS:
            bindings.append(Binding(session_id=sessions[kind].id))
        elif kind < SESSIONS + TOKENS:
            secret, record = tokens[kind - SESSIONS]
            bindings.append(Binding(record.id, hash_token(secret), "header"))
        else:
            bindings.append(Binding(source="header"))
    # The model: which credentials stand.
    alive_sessions = {s.id: (s.created, s.created) for s in sessions}  # created, last seen
    alive_tokens = {record.id for _, record in tokens}
    other = TokenStore(provider.token_store.path, clock=clock)  # the CLI's view
    for name, arg in events:
        if name == "logout":
            provider.sessions.revoke(sessions[arg].id)
            alive_sessions.pop(sessions[arg].id, None)
        elif name == "everywhere":
            provider.sessions.revoke_all()
            alive_sessions.clear()
        elif name in ("revoke", "rotate"):
            token_id = tokens[arg][1].id
            if token_id in alive_tokens:
                if name == "revoke":
                    other.revoke(token_id)
                else:
                    other.rotate(token_id)
                alive_tokens.discard(token_id)  # the connection's secret no longer works
        elif name == "request":
            session_id = sessions[arg].id
            if provider.sessions.get(session_id) is not None:
                created, _ = alive_sessions[session_id]
                alive_sessions[session_id] = (created, clock.now)
        else:
            clock.now += arg
        for session_id, (created, seen) in list(alive_sessions.items()):
            if clock.now - seen >= IDLE or clock.now - created >= LIFETIME:
                del alive_sessions[session_id]

    async def sweep() -> list[FakeConnection]:
        registry = ConnectionRegistry(interval=3600)
        conns = [FakeConnection(provider, b) for b in bindings]
        registry.before_sweep(provider.hs_before_sweep)
        for conn in conns:
            registry.add(conn)
        registry.sweep()
        for conn in conns:
            registry.discard(conn)
        return conns

    for conn in run(sweep()):
        b = conn.binding
        if b.session_id is not None:
            expected = None if b.session_id in alive_sessions else Rule.ID_CONNECTION_SESSION_ENDED
        elif b.token_id is not None:
            expected = None if b.token_id in alive_tokens else Rule.ID_CONNECTION_TOKEN_ENDED
        else:
            expected = None  # the start-up token changes only with a restart
        got = [d.rule_id for d in conn.closed_for]
        assert got == ([] if expected is None else [expected]), (b, events)
