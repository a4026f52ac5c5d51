"""The connection limits' pure part: the descriptor budget and bounded refusal reports."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardened_server.policy.connlimits import (
    MAX_CONNECTIONS,
    RESERVE_MIN,
    SUMMARY_SECONDS,
    RefusalSummary,
    connection_budget,
    max_connections_for,
)
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.loader import shipped_policy
from hardened_server.policy.rules import Rule
from hardened_server.policy.schema import FIELDS


def test_the_shipped_defaults() -> None:
    limits = shipped_policy().limits
    assert limits.header_timeout_seconds == 10
    assert limits.idle_timeout_seconds == 60
    assert limits.connections_per_client == 64
    assert limits.max_connections == 0  # derived from RLIMIT_NOFILE
    for key in ("header_timeout_seconds", "idle_timeout_seconds", "connections_per_client",
                "max_connections"):
        assert FIELDS[f"limits.{key}"].doc


@pytest.mark.parametrize(
    ("nofile", "budget"),
    [(1024, 768), (256, 192), (128, 64), (100, 36), (65536, 49152), (-1, MAX_CONNECTIONS)],
)
def test_the_budget_keeps_a_quarter_and_at_least_the_minimum_back(nofile: int, budget: int) -> None:
    assert connection_budget(nofile) == budget


@given(st.integers(min_value=0, max_value=1 << 40))
def test_the_budget_never_reaches_the_limit(nofile: int) -> None:
    budget = connection_budget(nofile)
    assert 0 <= budget <= MAX_CONNECTIONS
    if nofile <= MAX_CONNECTIONS:
        assert budget <= nofile - min(nofile, RESERVE_MIN)


def test_zero_means_the_budget_and_a_number_within_it_stands() -> None:
    assert max_connections_for(0, 1024) == 768
    assert max_connections_for(500, 1024) == 500


def test_a_number_above_the_budget_refuses_the_start_naming_rule_setting_and_key() -> None:
    with pytest.raises(UnsafeStartup) as refused:
        max_connections_for(5000, 1024)
    assert refused.value.rule_id == Rule.START_CONNECTION_BUDGET
    assert refused.value.setting == "RLIMIT_NOFILE (ulimit -n) = 1024"
    assert "limits.max_connections" in str(refused.value)
    assert "768" in refused.value.fix


def test_a_descriptor_limit_too_small_for_any_connection_refuses_the_start() -> None:
    with pytest.raises(UnsafeStartup) as refused:
        max_connections_for(0, 70)
    assert refused.value.rule_id == Rule.START_CONNECTION_BUDGET


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_refusal_is_reported_at_once_and_the_rest_summarised() -> None:
    clock = Clock()
    summary = RefusalSummary(clock=clock)
    first = summary.add(Rule.LIMIT_CONNECTIONS_PER_CLIENT, "192.0.2.1")
    assert first is not None
    assert first.first
    assert first.count == 1
    for i in range(500):
        assert summary.add(Rule.LIMIT_CONNECTIONS_PER_CLIENT, f"192.0.2.{i % 3}") is None
    assert summary.flush() == []  # the interval has not ended
    clock.now += SUMMARY_SECONDS
    [report] = summary.flush()
    assert report.count == 500
    assert not report.first
    assert report.clients[0][1] == 167
    assert report.subject().startswith("count=500 seconds=10 clients=192.0.2.")
    clock.now += SUMMARY_SECONDS
    assert summary.flush() == []  # a quiet interval ...
    assert summary.next_due() is None
    again = summary.add(Rule.LIMIT_CONNECTIONS_PER_CLIENT, "192.0.2.9")
    assert again is not None
    assert again.first


@given(
    st.lists(
        st.tuples(
            st.sampled_from([Rule.LIMIT_HEADER_TIMEOUT, Rule.LIMIT_CONNECTIONS_TOTAL]),
            st.floats(min_value=0, max_value=5, allow_nan=False),
        ),
        max_size=300,
    )
)
def test_reports_are_bounded_by_time_and_lose_no_count(events: list[tuple[str, float]]) -> None:
    """Whatever the traffic: per rule at most one report at once plus one per interval, and
    the counts reported add up to the refusals."""
    clock = Clock()
    start = clock.now
    summary = RefusalSummary(clock=clock)
    reports = []
    for rule, gap in events:
        clock.now += gap
        reports.extend(summary.flush())
        first = summary.add(rule, "198.51.100.7")
        if first is not None:
            reports.append(first)
    clock.now += 2 * SUMMARY_SECONDS
    reports.extend(summary.flush())
    elapsed = clock.now - start
    for rule in {Rule.LIMIT_HEADER_TIMEOUT, Rule.LIMIT_CONNECTIONS_TOTAL}:
        mine = [r for r in reports if r.rule == rule]
        assert sum(r.count for r in mine) == sum(1 for e in events if e[0] == rule)
        assert len(mine) <= 2 * (1 + elapsed / SUMMARY_SECONDS)
