"""Prometheus metrics for the audit trail, with bounded label sets.

Failure this module guards against: **label-value injection and cardinality explosion.** A label
value taken from the request (a user name, a path, a client-chosen rule string) gives every
client a new time series (memory exhaustion of the server and of Prometheus) and publishes
personal data on ``/metrics``. Every label value here comes from a fixed enum: rule ids of
the families in :class:`hardened_server.policy.rules.Family` (anything else is counted as
``other``), outcome in ``{allow, deny}``, route class in
:class:`~hardened_server.policy.decisions.RouteClass`.

Metrics live on prometheus_client's default ``REGISTRY`` (jupyter_server's ``/metrics`` handler
exports it) unless another registry is given; :func:`default_metrics` is safe to call any number
of times, across a re-import of this module too (a second ``Counter(...)`` with the same name
would raise "Duplicated timeseries").
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.rules import Family, Rule
from hardened_server.trail.record import DecisionRecord, EventKind

__all__ = [
    "OTHER_RULE",
    "OUTCOMES",
    "AuditMetrics",
    "default_metrics",
    "known_rule_ids",
]

OUTCOMES: frozenset[str] = frozenset({"allow", "deny"})
OTHER_RULE = "other"
_REGISTRY_ATTR = "_hardened_server_audit_metrics"
_extra_rule_ids: set[str] = set()


#: The rule families of hardened-server itself, from the registry (policy/rules.py
#: ``Family``). Their ids are constants in the code, never taken from a request, so they are a
#: bounded label set; anything else (an extension's own ids) counts as ``other`` unless
#: registered with :func:`register_rule_ids`. The label value is the rule id itself (upper-case,
#: as records and logs spell it); the catch-all is the lower-case ``other``.
_OWN_RULE = re.compile(
    r"HS-(?:" + "|".join(re.escape(family.value) for family in Family) + r")-[0-9]{3}"
)

#: The registry's ids: every one is its own label value.
_RULE_VALUES: frozenset[str] = frozenset(r.value for r in Rule) | {OTHER_RULE}
_labels: dict[str, str] = {}  # rule id -> label, bounded by the ids the code defines


def known_rule_ids() -> frozenset[str]:
    """The registered rule ids that may appear as a label value (plus ``other``); ids of
    hardened-server's own families are accepted too (see :func:`rule_label`)."""
    return _RULE_VALUES | _extra_rule_ids


def register_rule_ids(*rule_ids: str) -> None:
    """Allow further stable rule ids (an extension's own rules) as label values."""
    _extra_rule_ids.update(rule_ids)
    _labels.clear()


def rule_label(rule_id: str) -> str:
    label = _labels.get(rule_id)
    if label is None:
        own = rule_id in _RULE_VALUES or rule_id in _extra_rule_ids
        label = rule_id if own or _OWN_RULE.fullmatch(rule_id) else OTHER_RULE
        if len(_labels) < 4096:  # never a memory sink, whatever callers pass
            _labels[rule_id] = label
    return label


def _outcome_label(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")
    return outcome


def _route_label(route_class: str) -> str:
    if route_class not in ROUTE_CLASSES:
        raise ValueError(f"route class must be one of {ROUTE_CLASSES}, not {route_class!r}")
    return str(route_class)


class AuditMetrics:
    """The five audit metrics on one registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.decisions = Counter(
            "hardened_server_decisions_total",
            "Policy decisions recorded, by rule id and outcome.",
            ("rule_id", "outcome"),
            registry=registry,
        )
        self.login_failures = Counter(
            "hardened_server_login_failures_total",
            "Failed log-in attempts (password or token).",
            registry=registry,
        )
        self.active_sessions = Gauge(
            "hardened_server_active_sessions",
            "Logged-in sessions currently valid.",
            registry=registry,
        )
        self.live_tokens = Gauge(
            "hardened_server_live_tokens",
            "API tokens currently valid.",
            registry=registry,
        )
        #: (rule label, outcome) -> its child of ``decisions``: bounded like the labels.
        self._decision_counters: dict[tuple[str, str], Any] = {}
        self.request_duration = Histogram(
            "hardened_server_request_duration_seconds",
            "Request duration by route class.",
            ("route_class",),
            registry=registry,
        )

    def observe_decision(self, record: DecisionRecord) -> None:
        """Count one recorded decision (and a log-in failure if it is one)."""
        key = (rule_label(record.rule_id), _outcome_label(record.decision))
        counter = self._decision_counters.get(key)
        if counter is None:  # prometheus_client keeps one child per label set: ask once
            counter = self.decisions.labels(rule_id=key[0], outcome=key[1])
            self._decision_counters[key] = counter
        counter.inc()
        if record.event_kind == EventKind.LOGIN_FAILURE:
            self.login_failures.inc()

    def login_failure(self) -> None:
        self.login_failures.inc()

    def set_active_sessions(self, count: int) -> None:
        self.active_sessions.set(count)

    def set_live_tokens(self, count: int) -> None:
        self.live_tokens.set(count)

    def bind_active_sessions(self, count: Callable[[], float]) -> None:
        """Have the gauge read ``count()`` at scrape time (e.g. ``len(session_store)``)."""
        self.active_sessions.set_function(count)

    def bind_live_tokens(self, count: Callable[[], float]) -> None:
        self.live_tokens.set_function(count)

    def observe_request(self, route_class: str, seconds: float) -> None:
        self.request_duration.labels(route_class=_route_label(route_class)).observe(seconds)

    @contextlib.contextmanager
    def time_request(self, route_class: str) -> Iterator[None]:
        label = _route_label(route_class)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.request_duration.labels(route_class=label).observe(time.perf_counter() - start)


def default_metrics(registry: CollectorRegistry = REGISTRY) -> AuditMetrics:
    """The one :class:`AuditMetrics` of ``registry``, created on first use. It is cached on the
    registry object itself, so re-importing this module (``importlib.reload``, a second import
    path) finds it instead of registering the same names twice."""
    existing: AuditMetrics | None = getattr(registry, _REGISTRY_ATTR, None)
    if existing is None:
        existing = AuditMetrics(registry)
        setattr(registry, _REGISTRY_ATTR, existing)
    return existing
