"""Server-side login sessions, in this process's memory.

The login cookie carries only a session id (256 random bits, and tornado-signed on top); the
user, their scopes and the session's times live here. That is what makes logout real: a revoked
or expired session id is worthless however it is replayed (JupyterHub GHSA-cw7p-q79f-m2v7:
stock's cookie *is* the user, signed, valid until the cookie secret changes).

Chosen: memory, not a file. A restart ends every session (users log in again); in exchange no
session credential is ever on disk, and a changed token or password, which takes effect at a
restart, necessarily invalidates every session made with the old one (GHSA-5mrq-x3x5-8v8f).
Revocation ("log out everywhere") lasts as long as the process, which is as long as the
sessions do. Bounded: at most ``max_sessions``; the least recently used go first.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Session:
    id: str
    user: Any  # jupyter_server User, with hs_scopes
    created: float
    last_seen: float


class SessionStore:
    def __init__(
        self,
        idle_seconds: float,
        lifetime_seconds: float,
        *,
        clock: Callable[[], float] = time.time,
        max_sessions: int = 10_000,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user: Any) -> Session:
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), user, now, now)
        self._sessions[session.id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def expired(self, session: Session, now: float) -> bool:
        return (
            now - session.last_seen >= self.idle_seconds
            or now - session.created >= self.lifetime_seconds
        )

    def get(self, session_id: str) -> Session | None:
        """The live session, its idle clock reset; None (and forgotten) if expired."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if self.expired(session, now):
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def alive(self, session_id: str) -> bool:
        """Whether the session still stands, *without* counting this as activity (an open
        websocket's periodic re-check must not keep an idle session alive); an expired one is
        forgotten."""
        session = self._sessions.get(session_id)
        if session is None:
            return False
        if self.expired(session, self.clock()):
            del self._sessions[session_id]
            return False
        return True

    def revoke(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def revoke_all(self) -> int:
        count = len(self._sessions)
        self._sessions.clear()
        return count
