"""The Host allow-list: always on, compiled once, exact (DNS rebinding).

Stock jupyter_server turns the Host check off on any non-loopback bind; a rebinding page on
``evil.example`` is then same-origin with the server (research jupyter_server_security §2.7).
"""

from __future__ import annotations

import pytest

from hardened_server.policy.decisions import Rule
from hardened_server.policy.hosts import (
    LOOPBACK_NAMES,
    compile_host_allowlist,
    is_allowed_host,
    is_loopback_bind,
    is_loopback_host,
    split_host_header,
)

ALLOWED = compile_host_allowlist(["Jupyter.Example.org", "10.1.2.3", "b\u00fccher.example"])


def test_compiled_allowlist_is_normalised_and_includes_loopback() -> None:
    assert LOOPBACK_NAMES <= ALLOWED
    assert {"jupyter.example.org", "10.1.2.3", "xn--bcher-kva.example"} <= ALLOWED


@pytest.mark.parametrize("bad", ["*.example.org", "https://jupyter.example.org", "a:80", ""])
def test_compile_refuses_what_is_not_a_hostname(bad: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        compile_host_allowlist([bad])


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("localhost", ("localhost", None)),
        ("LOCALHOST:8888", ("localhost", 8888)),
        ("localhost.:8888", ("localhost", 8888)),
        ("[::1]:8888", ("[::1]", 8888)),
        ("[::1]", ("[::1]", None)),
        ("127.0.0.1:08888", ("127.0.0.1", 8888)),
    ],
)
def test_split_host_header(value: str, parsed: tuple[str, int | None]) -> None:
    assert split_host_header(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "",
        "localhost:",
        "localhost:0",
        "localhost:65536",
        "localhost:\u0668\u0668",  # "\d" would have matched Arabic-Indic digits
        "localhost:8888@evil.example",
        "evil.example\\localhost",
        "::1",
        "[::1]x",
        "[::1]:x",
        "[fe80::1%eth0]:8888",
        "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",  # full-width "localhost"
        "127.1",
        "2130706433",
        "0x7f.0.0.1",
        " localhost",
        "a" * 400,
    ],
)
def test_split_host_header_refuses_malformed_values(value: str) -> None:
    assert split_host_header(value) is None


@pytest.mark.parametrize(
    "host",
    [
        "localhost:8888",
        "LOCALHOST",
        "localhost.:8888",
        "127.0.0.1:8888",
        "127.0.0.2",  # all of 127.0.0.0/8 reaches this machine
        "127.255.255.254:1",
        "[::1]:8888",
        "jupyter.example.org",
        "JUPYTER.EXAMPLE.ORG.:443",
        "10.1.2.3:8888",
        "xn--bcher-kva.example",
    ],
)
def test_allowed_hosts(host: str) -> None:
    decision = is_allowed_host(host, ALLOWED)
    assert decision.allowed
    assert decision.rule_id == Rule.HOST_ALLOWED


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",  # DNS rebinding: the attacker's name now resolves to us
        "evil.example:8888",
        "localhost.evil.example",
        "jupyter.example.org.evil.example",
        "eviljupyter.example.org",
        "10.1.2.4",
        "128.0.0.1",
        "[::ffff:127.0.0.1]:8888",  # fail closed: not how browsers write loopback
        "localhost:8888@evil.example",
        "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",
        "b\u00fccher.example",  # configuration may be IDN; the Host header never is
        "",
        None,
    ],
)
def test_foreign_or_malformed_hosts_are_refused(host: str | None) -> None:
    decision = is_allowed_host(host, ALLOWED)
    assert not decision.allowed
    assert decision.rule_id == Rule.HOST_FOREIGN


def test_is_loopback_host() -> None:
    assert is_loopback_host("127.0.0.1")
    assert is_loopback_host("127.9.9.9")
    assert is_loopback_host("[::1]")
    assert not is_loopback_host("localhost")  # a name, handled by the allow-list
    assert not is_loopback_host("127.example")
    assert not is_loopback_host("10.0.0.1")


@pytest.mark.parametrize("ip", ["localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"])
def test_a_loopback_bind(ip: str) -> None:
    """The one answer for the start-up refusal of a cleartext remote bind and the audit."""
    assert is_loopback_bind(ip)


@pytest.mark.parametrize(
    "ip", ["", "0.0.0.0", "::", "10.0.0.1", "jupyter.example.org", "LOCALHOST", "127.example"]
)
def test_everything_else_is_a_remote_bind(ip: str) -> None:
    assert not is_loopback_bind(ip)
