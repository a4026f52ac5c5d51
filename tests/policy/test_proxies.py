"""Forwarding headers are believed only from trusted proxies (research proxy_multiuser §2.4).

configurable-http-proxy and Caddy pass a client's ``X-Real-IP`` through, and tornado prefers it,
so ``X-Real-Ip: 7.7.7.7`` became the logged client address of hub and single-user server alike.
"""

from __future__ import annotations

import pytest

from hardened_server.policy.proxies import (
    ClientAddress,
    client_address,
    compile_trusted,
)
from hardened_server.policy.rules import Rule

TRUSTED = compile_trusted(["10.0.0.0/8", "fd00::/8"])
FORWARDED = compile_trusted(["10.0.0.0/8"], client_header="forwarded")
REAL_IP = compile_trusted(["10.0.0.0/8"], client_header="x-real-ip")


def test_untrusted_peer_headers_are_ignored_and_reported() -> None:
    headers = {
        "Host": "jupyter.example.org",
        "X-Forwarded-For": "6.6.6.6",
        "X-Real-IP": "7.7.7.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "for=8.8.8.8;proto=https",
    }
    result = client_address("203.0.113.5", headers, TRUSTED)
    assert result == ClientAddress("203.0.113.5", "http", "jupyter.example.org", 0, True)
    assert result.rule_id == Rule.PROXY_IGNORED
    assert result.decision().allowed  # recorded, not refused


def test_untrusted_peer_without_forwarding_headers_is_direct() -> None:
    result = client_address("203.0.113.5", {"Host": "localhost:8888"}, TRUSTED, scheme="https")
    assert result == ClientAddress("203.0.113.5", "https", "localhost:8888", 0, False)
    assert result.rule_id == Rule.PROXY_DIRECT


def test_no_trusted_proxies_means_every_peer_is_untrusted() -> None:
    nobody = compile_trusted([])
    result = client_address("10.0.0.1", {"X-Forwarded-For": "6.6.6.6"}, nobody)
    assert result.ip == "10.0.0.1"
    assert result.ignored_headers


def test_right_most_untrusted_address_is_the_client() -> None:
    """nginx appends the real peer: the spoofed left-most entry is never believed."""
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.9", "Host": "localhost"}
    result = client_address("10.0.0.1", headers, TRUSTED)
    assert result.ip == "198.51.100.7"
    assert result.trusted_hops == 2
    assert result.rule_id == Rule.PROXY_HONOURED


def test_all_hops_trusted_gives_the_left_most() -> None:
    result = client_address("10.0.0.1", {"X-Forwarded-For": "10.0.0.3, 10.0.0.2"}, TRUSTED)
    assert (result.ip, result.trusted_hops) == ("10.0.0.3", 2)


def test_x_real_ip_is_ignored_in_x_forwarded_for_mode() -> None:
    """The CHP/Caddy pass-through: X-Real-IP from the client reaches us unchanged."""
    headers = {"X-Real-IP": "7.7.7.7", "X-Forwarded-For": "198.51.100.7"}
    assert client_address("10.0.0.1", headers, TRUSTED).ip == "198.51.100.7"
    assert client_address("10.0.0.1", {"X-Real-IP": "7.7.7.7"}, TRUSTED).ip == "10.0.0.1"


def test_malformed_entry_stops_the_walk_at_the_last_trusted_hop() -> None:
    headers = {"X-Forwarded-For": "198.51.100.7, unknown, 10.0.0.9"}
    result = client_address("10.0.0.1", headers, TRUSTED)
    assert result.ip == "10.0.0.9"
    assert result.malformed
    assert result.rule_id == Rule.PROXY_MALFORMED


def test_ports_and_brackets_in_x_forwarded_for() -> None:
    assert client_address("10.0.0.1", {"x-forwarded-for": "198.51.100.7:4711"}, TRUSTED).ip == (
        "198.51.100.7"
    )
    result = client_address("10.0.0.1", {"X-Forwarded-For": "[2001:db8::1]:443"}, TRUSTED)
    assert result.ip == "2001:db8::1"


def test_ipv4_mapped_peer_is_matched_as_ipv4() -> None:
    result = client_address("::ffff:10.0.0.1", {"X-Forwarded-For": "198.51.100.7"}, TRUSTED)
    assert result.ip == "198.51.100.7"
    assert client_address("::ffff:203.0.113.5", {}, TRUSTED).ip == "203.0.113.5"


def test_scheme_and_host_come_from_the_chosen_hop() -> None:
    headers = {
        "Host": "backend:8888",
        "X-Forwarded-For": "198.51.100.7, 10.0.0.9",
        "X-Forwarded-Proto": "https, http",
        "X-Forwarded-Host": "Jupyter.Example.org, backend",
    }
    result = client_address("10.0.0.1", headers, TRUSTED)
    assert (result.scheme, result.host) == ("https", "jupyter.example.org")


def test_invalid_forwarded_scheme_or_host_falls_back_to_the_connection() -> None:
    headers = {
        "Host": "localhost:8888",
        "X-Forwarded-For": "198.51.100.7",
        "X-Forwarded-Proto": "javascript",
        "X-Forwarded-Host": "evil.example\\@jupyter.example.org",
    }
    result = client_address("10.0.0.1", headers, TRUSTED, scheme="https")
    assert (result.scheme, result.host) == ("https", "localhost:8888")


def test_x_scheme_is_read_when_x_forwarded_proto_is_absent() -> None:
    headers = {"X-Forwarded-For": "198.51.100.7", "X-Scheme": "https"}
    assert client_address("10.0.0.1", headers, TRUSTED).scheme == "https"


def test_rfc7239_forwarded() -> None:
    headers = {
        "Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https;host=jupyter.example.org, '
        "for=10.0.0.9;proto=http",
        "X-Forwarded-For": "6.6.6.6",  # not the configured header: never read
    }
    result = client_address("10.0.0.1", headers, FORWARDED)
    assert result.ip == "2001:db8:cafe::17"
    assert (result.scheme, result.host, result.trusted_hops) == ("https", "jupyter.example.org", 2)


@pytest.mark.parametrize(
    "value",
    ["for=unknown", "for=_hidden", "for", "for=1.2.3.4;for=5.6.7.8", 'for="[::1', "proto=https"],
)
def test_forwarded_without_a_usable_address_keeps_the_proxy(value: str) -> None:
    result = client_address("10.0.0.1", {"Forwarded": value}, FORWARDED)
    assert result.ip == "10.0.0.1"
    assert result.malformed


def test_forwarded_from_untrusted_peer_is_ignored() -> None:
    result = client_address("192.0.2.1", {"Forwarded": "for=6.6.6.6"}, FORWARDED)
    assert (result.ip, result.ignored_headers) == ("192.0.2.1", True)


def test_x_real_ip_mode() -> None:
    assert client_address("10.0.0.1", {"X-Real-IP": "198.51.100.7"}, REAL_IP).ip == "198.51.100.7"
    assert client_address("192.0.2.1", {"X-Real-IP": "198.51.100.7"}, REAL_IP).ip == "192.0.2.1"
    assert client_address("10.0.0.1", {"X-Real-IP": "garbage"}, REAL_IP).malformed


def test_unparsable_peer_is_untrusted() -> None:
    result = client_address("unix:/run/jupyter.sock", {"X-Forwarded-For": "6.6.6.6"}, TRUSTED)
    assert result.ip == "unix:/run/jupyter.sock"
    assert result.ignored_headers


@pytest.mark.parametrize(
    ("cidrs", "message"),
    [
        (["0.0.0.0/0"], "trusts every peer"),
        (["::/0"], "trusts every peer"),
        (["10.0.0.1/8"], "CIDR"),  # host bits set: a typo, not a network
        (["ten"], "CIDR"),
    ],
)
def test_compile_trusted_refuses_unsafe_or_invalid_networks(cidrs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_trusted(cidrs)


def test_compile_trusted_refuses_unknown_client_header() -> None:
    with pytest.raises(ValueError, match="client_header"):
        compile_trusted(["10.0.0.0/8"], client_header="x-client-ip")
