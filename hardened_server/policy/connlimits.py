"""Connection limits, the pure part: the file-descriptor budget and bounded refusal reports.

The tornado side (:mod:`hardened_server.enforcement.httpserver`) counts connections, runs the
header and idle timers and closes what is over a limit. Two facts are decided here:

- **How many connections the file-descriptor limit leaves room for** (:func:`connection_budget`):
  the soft ``RLIMIT_NOFILE`` minus a reserve (a quarter, at least :data:`RESERVE_MIN`) for what
  else the server opens: kernels (a handful of ZeroMQ sockets each), files served and saved,
  the audit trail, the listening sockets. Without a cap, 1,500 half-open connections under
  ``ulimit -n 1024`` made ``accept`` fail with EMFILE: the owner's requests timed out and
  asyncio logged a traceback per attempt (75 MB in 30 s, issue #18).
- **How refusals are reported** (:class:`RefusalSummary`): a connection refused at accept has no
  request, and a flood of them must not become a flood of log lines or audit records (the log
  and the trail would be the next resource exhausted). The first refusal of a rule after a
  quiet interval is reported at once; the following ones are counted and reported as one
  summary per rule per :data:`SUMMARY_SECONDS`, with the count and the busiest client
  addresses. At most one line and one record per rule per interval, whatever the traffic.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.rules import Rule

#: File descriptors kept back from connections: a quarter of the limit, at least this many.
RESERVE_MIN = 64
#: Used when the limit is unlimited (RLIM_INFINITY) or larger: the key's own maximum.
MAX_CONNECTIONS = 1048576
#: Fewer connections than this is no server: the start is refused instead.
MIN_BUDGET = 16
#: Seconds between two summaries of one rule's refusals.
SUMMARY_SECONDS = 10.0
#: Client addresses counted per rule and interval (the rest only in the total).
MAX_CLIENTS_COUNTED = 1024


def connection_budget(nofile_soft: int) -> int:
    """Connections that ``nofile_soft`` (the soft ``RLIMIT_NOFILE``; negative: unlimited)
    leaves room for after the reserve."""
    if nofile_soft < 0 or nofile_soft > MAX_CONNECTIONS + MAX_CONNECTIONS // 4:
        return MAX_CONNECTIONS
    return max(0, nofile_soft - max(RESERVE_MIN, nofile_soft // 4))


def max_connections_for(configured: int, nofile_soft: int) -> int:
    """The connection cap in force: ``limits.max_connections``, or the budget for 0. Raises
    :class:`UnsafeStartup` (HS-START-015) when the setting, or the limit itself, would let
    connections take the descriptors the server needs."""
    budget = connection_budget(nofile_soft)
    shown = "unlimited" if nofile_soft < 0 else str(nofile_soft)
    if budget < MIN_BUDGET:
        raise UnsafeStartup(
            Rule.START_CONNECTION_BUDGET,
            f"the file-descriptor limit ({shown}) leaves {budget} connections after the "
            f"reserve of {RESERVE_MIN}; limits.max_connections cannot be met",
            setting=f"RLIMIT_NOFILE (ulimit -n) = {shown}",
            fix=f"raise ulimit -n to at least {MIN_BUDGET + RESERVE_MIN}",
        )
    if configured == 0:
        return budget
    if configured > budget:
        raise UnsafeStartup(
            Rule.START_CONNECTION_BUDGET,
            f"limits.max_connections = {configured}, but the file-descriptor limit ({shown}) "
            f"leaves room for {budget} connections after the reserve: past that, accept "
            "fails and the server cannot open kernels, files or its audit trail",
            setting=f"RLIMIT_NOFILE (ulimit -n) = {shown}",
            fix=f"set limits.max_connections to at most {budget} (or 0 to derive it), or "
            "raise ulimit -n",
        )
    return configured


@dataclass(frozen=True, slots=True)
class Summary:
    """What one report says: ``count`` refusals of ``rule`` in ``seconds``, the busiest
    ``clients`` (address, count) and how many refusals came from addresses not counted."""

    rule: str
    count: int
    seconds: float
    clients: tuple[tuple[str, int], ...]
    first: bool  # the first refusal after a quiet interval, reported as it happens

    def subject(self) -> str:
        shown = ",".join(f"{client}x{n}" for client, n in self.clients) or "-"
        return f"count={self.count} seconds={self.seconds:.0f} clients={shown}"


@dataclass(slots=True)
class _Window:
    start: float
    count: int = 0
    clients: Counter[str] = field(default_factory=Counter)


class RefusalSummary:
    """Bounded reports of connection refusals, per rule (the clock is injected).

    :meth:`add` returns the report to make at once (the first refusal after a quiet interval)
    or None (counted); :meth:`flush` returns the summaries whose interval has ended and
    :meth:`next_due` when the next one ends. A rule with nothing counted in its interval goes
    quiet again, so its next refusal is reported at once.
    """

    def __init__(
        self,
        interval: float = SUMMARY_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        top: int = 3,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.top = top
        self._windows: dict[str, _Window] = {}

    def add(self, rule: str, client: str) -> Summary | None:
        now = self.clock()
        window = self._windows.get(rule)
        if window is None:
            self._windows[rule] = _Window(now)
            return Summary(rule, 1, 0.0, ((client, 1),), first=True)
        window.count += 1
        if client in window.clients or len(window.clients) < MAX_CLIENTS_COUNTED:
            window.clients[client] += 1
        return None

    def next_due(self) -> float | None:
        if not self._windows:
            return None
        return min(w.start for w in self._windows.values()) + self.interval

    def flush(self) -> list[Summary]:
        now = self.clock()
        out = []
        for rule, window in list(self._windows.items()):
            if now < window.start + self.interval:
                continue
            if window.count == 0:
                del self._windows[rule]  # quiet: the next refusal is reported at once
                continue
            clients = tuple(window.clients.most_common(self.top))
            out.append(Summary(rule, window.count, now - window.start, clients, first=False))
            self._windows[rule] = _Window(now)
        return out
