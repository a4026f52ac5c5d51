"""The liveness probe at request time (hardened_server/enforcement/health.py), without a server:
the socket's own address is read from the connection the request arrived on, and the answer is
counted (the live test, tests/enforcement/test_health_live.py, shows it is not recorded)."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from hardened_server.enforcement.health import local_ip, probe_counter, probe_decision
from hardened_server.policy.hosts import compile_host_allowlist
from hardened_server.policy.rules import Rule

ALLOWED = compile_host_allowlist([])


class _Socket:
    def __init__(self, name: object) -> None:
        self._name = name

    def getsockname(self) -> object:
        if isinstance(self._name, OSError):
            raise self._name
        return self._name


def request(uri: str, host: str, sockname: object, method: str = "GET") -> HTTPServerRequest:
    connection = SimpleNamespace(stream=SimpleNamespace(socket=_Socket(sockname)))
    req = HTTPServerRequest(
        start_line=RequestStartLine(method, uri, "HTTP/1.1"),
        headers=HTTPHeaders({"Host": host}),
        connection=connection,  # type: ignore[arg-type]
    )
    return req


def test_a_kubelet_probe_passes_on_the_address_it_arrived_on() -> None:
    req = request("/hs-health", "10.244.1.5:8888", ("10.244.1.5", 8888))
    decision = probe_decision(req, ALLOWED)
    assert decision is not None
    assert decision.rule_id == Rule.HOST_PROBE_OWN_ADDRESS


def test_another_address_of_the_pod_is_not_its_own() -> None:
    req = request("/hs-health", "10.244.1.5:8888", ("10.244.1.9", 8888))
    assert probe_decision(req, ALLOWED) is None


def test_other_paths_on_the_own_address_are_not_the_probe() -> None:
    for uri in ("/api/status", "/hs-health?verbose=1", "/user/alice/api/contents"):
        assert probe_decision(request(uri, "10.244.1.5", ("10.244.1.5", 8888)), ALLOWED) is None


def test_unix_socket_and_unanswerable_sockets_have_no_own_address() -> None:
    assert local_ip(request("/hs-health", "x", "/run/jupyter.sock")) is None
    assert local_ip(request("/hs-health", "x", OSError("closed"))) is None
    req = request("/hs-health", "10.244.1.5", "/run/jupyter.sock")
    assert probe_decision(req, ALLOWED) is None


def test_counter_is_created_once_per_registry() -> None:
    registry = CollectorRegistry()
    counter = probe_counter(registry)
    assert probe_counter(registry) is counter
    counter.labels(host="own_address").inc()
    assert registry.get_sample_value(
        "hardened_server_health_probes_total", {"host": "own_address"}
    ) == 1.0
