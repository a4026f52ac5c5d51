"""Login throttling: growing delays per client and per account (pure; the clock is injected).

Every attempt is charged *before* the password is checked (and forgiven on success), so a burst
of concurrent attempts cannot all slip through before the first failure is counted. After
``free_attempts`` charges, each further attempt must wait ``2 ** (n - free_attempts)`` seconds
after the previous one, capped at ``max_delay``; a key with no attempt for ``reset_after``
seconds is forgotten. Memory is bounded: the least recently charged keys go first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self,
        free_attempts: int,
        max_delay: float,
        *,
        reset_after: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 65536,
    ) -> None:
        self.free_attempts = free_attempts
        self.max_delay = max_delay
        self.reset_after = reset_after
        self.clock = clock
        self.max_keys = max_keys
        self._state: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def delay_after(self, charges: int) -> float:
        if charges < self.free_attempts:
            return 0.0
        return float(min(2 ** min(charges - self.free_attempts, 30), self.max_delay))

    def _get(self, key: str, now: float) -> tuple[int, float]:
        entry = self._state.get(key)
        if entry is None or now - entry[1] >= self.reset_after:
            return 0, now
        return entry

    def retry_after(self, key: str) -> float:
        """Seconds before ``key`` may try again (0: now)."""
        now = self.clock()
        charges, last = self._get(key, now)
        return max(0.0, last + self.delay_after(charges) - now) if charges else 0.0

    def charge(self, key: str) -> None:
        now = self.clock()
        charges, _ = self._get(key, now)
        self._state[key] = (charges + 1, now)
        self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)

    def clear(self, key: str) -> None:
        self._state.pop(key, None)
