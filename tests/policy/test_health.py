"""The liveness probe's decision (hardened_server/policy/health.py): which requests are the probe.

A kubelet's ``httpGet`` probe of ``http://POD_IP:8888/hs-health`` sends ``Host: POD_IP:8888``
and no credential; the server answers it when that Host is the address the connection arrived
on. Everything else is not the probe and goes through the gate (where a foreign Host is refused
and recorded).
"""

from __future__ import annotations

import pytest

from hardened_server.policy.health import HEALTH_PATH, health_probe_decision, own_address_host
from hardened_server.policy.hosts import compile_host_allowlist
from hardened_server.policy.rules import Rule

ALLOWED = compile_host_allowlist(["hub.example.org"])
POD = "10.244.1.5"


def probe(
    host: str | None, local: str | None = POD, method: str = "GET", target: str = HEALTH_PATH
) -> str | None:
    decision = health_probe_decision(method, target, host, local, ALLOWED)
    if decision is None:
        return None
    assert decision.allowed
    return decision.rule_id


@pytest.mark.parametrize("host", [f"{POD}:8888", POD, f"{POD}.:8888"])
def test_the_pods_own_address_is_the_probe(host: str) -> None:
    assert probe(host) == Rule.HOST_PROBE_OWN_ADDRESS


@pytest.mark.parametrize("host", ["hub.example.org", "127.0.0.1:8888", "localhost", "[::1]:8888"])
def test_a_host_on_the_allow_list_is_the_probe(host: str) -> None:
    assert probe(host) == Rule.HOST_PROBE_LISTED


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",  # DNS rebinding: the attacker's name
        "10.244.1.6:8888",  # another pod's address
        "10.244.1.5@evil",
        "0x0af40105",
        "",
        None,
    ],
)
def test_a_foreign_host_is_not_the_probe(host: str | None) -> None:
    assert probe(host) is None


def test_the_own_address_of_another_connection_does_not_count() -> None:
    # The Host must be the address *this* connection arrived on, not any address of the pod.
    assert probe(f"{POD}:8888", local="10.244.1.7") is None
    assert probe(f"{POD}:8888", local=None) is None  # a Unix socket has no address


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", HEALTH_PATH),
        ("PUT", HEALTH_PATH),
        ("OPTIONS", HEALTH_PATH),
        ("GET", HEALTH_PATH + "?x=1"),
        ("GET", HEALTH_PATH + "/"),
        ("GET", "/hs-health/../api/contents"),
        ("GET", "/api/contents"),
        ("GET", "/user/alice/hs-health"),
        ("GET", "//hs-health"),
    ],
)
def test_nothing_else_is_reachable_with_the_pods_own_address(method: str, target: str) -> None:
    assert probe(f"{POD}:8888", method=method, target=target) is None


def test_head_is_the_probe_too() -> None:
    assert probe(f"{POD}:8888", method="HEAD") == Rule.HOST_PROBE_OWN_ADDRESS


@pytest.mark.parametrize(
    ("local", "host"),
    [
        ("10.244.1.5", "10.244.1.5"),
        ("::ffff:10.244.1.5", "10.244.1.5"),  # IPv4 client of a dual-stack listener
        ("fd00::5", "[fd00::5]"),
        ("FD00:0:0::5", "[fd00::5]"),
        ("0.0.0.0", None),
        ("::", None),
        ("fe80::1%eth0", None),
        ("not-an-address", None),
    ],
)
def test_own_address_host_forms(local: str, host: str | None) -> None:
    assert own_address_host(local) == host


def test_ipv6_pod_address() -> None:
    assert probe("[fd00::5]:8888", local="fd00::5") == Rule.HOST_PROBE_OWN_ADDRESS
    assert probe("[fd00::6]:8888", local="fd00::5") is None
