"""The liveness probe at request time (the decision is :mod:`hardened_server.policy.health`).

``HardenedWebApplication.find_handler`` (:mod:`hardened_server.app`) asks
:func:`probe_decision` before the request gate; a probe is answered by
:class:`HealthProbeHandler`: ``200 ok`` (``HEAD``: no body) with the headers of an API response
(the output transform adds them, ``Cache-Control: no-store`` included). No audit record; one
count on ``hardened_server_health_probes_total{host="allow_list"|"own_address"}``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from tornado import web
from tornado.httputil import HTTPServerRequest

from hardened_server.enforcement.marks import mark
from hardened_server.policy.decisions import Decision, RouteClass
from hardened_server.policy.health import HEALTH_BODY, HEALTH_PATH, health_probe_decision
from hardened_server.policy.rules import Rule

_REGISTRY_ATTR = "_hardened_server_health_probes"
#: The counter's one label, from the rule that let the probe through (a fixed set).
HOST_LABEL: dict[str, str] = {
    Rule.HOST_PROBE_LISTED.value: "allow_list",
    Rule.HOST_PROBE_OWN_ADDRESS.value: "own_address",
}


def probe_counter(registry: CollectorRegistry = REGISTRY) -> Counter:
    """``hardened_server_health_probes_total``, created once per registry (cached on it, like
    :func:`hardened_server.trail.metrics.default_metrics`)."""
    existing: Counter | None = getattr(registry, _REGISTRY_ATTR, None)
    if existing is None:
        existing = Counter(
            "hardened_server_health_probes_total",
            "Liveness probes answered (GET/HEAD /hs-health; not in the audit trail), by how "
            "their Host passed.",
            ("host",),
            registry=registry,
        )
        setattr(registry, _REGISTRY_ATTR, existing)
    return existing


def local_ip(request: HTTPServerRequest) -> str | None:
    """The local address of the socket the request arrived on (``None``: a Unix socket, or no
    socket to ask)."""
    stream = getattr(request.connection, "stream", None)
    sock = getattr(stream, "socket", None)
    if sock is None:
        return None
    try:
        name = sock.getsockname()
    except OSError:
        return None
    return str(name[0]) if isinstance(name, tuple) and name else None


def probe_decision(request: HTTPServerRequest, allowed_hosts: frozenset[str]) -> Decision | None:
    """The probe's decision for this request, or ``None`` when it is not the probe. The socket
    is asked only for the probe's own target."""
    if request.uri != HEALTH_PATH:
        return None
    return health_probe_decision(
        request.method or "GET", request.uri, request.headers.get("Host"), local_ip(request),
        allowed_hosts,
    )


class HealthProbeHandler(web.RequestHandler):
    """``200 ok`` to ``GET``/``HEAD`` :data:`~hardened_server.policy.health.HEALTH_PATH`."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    def initialize(self, decision: Decision) -> None:
        self._decision = decision
        mark(self.request, hs_route_class=RouteClass.API)

    def check_xsrf_cookie(self) -> None:
        """GET and HEAD only: nothing to protect."""

    def _answer(self, body: bool) -> None:
        probe_counter().labels(host=HOST_LABEL[self._decision.rule_id]).inc()
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        if body:
            self.finish(HEALTH_BODY)
        else:
            self.set_header("Content-Length", str(len(HEALTH_BODY)))
            self.finish()

    def get(self, *args: Any, **kwargs: Any) -> None:
        self._answer(True)

    def head(self, *args: Any, **kwargs: Any) -> None:
        self._answer(False)
