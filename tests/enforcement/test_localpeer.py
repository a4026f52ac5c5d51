"""The process at the other end of a local connection (issue #16: stock ``jupyter server stop``
authorised by the operating system, hardened_server/enforcement/localpeer.py)."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from hardened_server.enforcement import localpeer
from hardened_server.enforcement.localpeer import (
    PeerProcess,
    is_stock_stop_command,
    may_stop_this_server,
    parse_proc_net_address,
    peer_process,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0100007F:1F90", ("127.0.0.1", 8080)),
        ("0201007F:0016", ("127.0.1.2", 22)),
        ("00000000000000000000000001000000:22B8", ("::1", 8888)),
        ("0000000000000000FFFF00000100007F:D431", ("::ffff:127.0.0.1", 54321)),
    ],
)
def test_proc_net_addresses_are_read_in_host_byte_order(text: str, expected: tuple[str, int]
                                                         ) -> None:  # fmt: skip
    if sys.byteorder != "little":
        pytest.skip("the examples are little-endian /proc/net/tcp lines")
    assert parse_proc_net_address(text) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ("/env/bin/python", "/env/bin/jupyter-server", "stop", "8888"),
        ("/env/bin/jupyter-server", "stop", "8888"),
        ("python3", "-m", "jupyter_server", "stop", "8888"),
        ("python3", "-I", "-m", "jupyter_server", "stop", "8888"),
        ("/env/bin/python3.11", "/env/bin/jupyter-server", "stop"),
    ],
)
def test_the_stock_stop_commands(argv: tuple[str, ...]) -> None:
    assert is_stock_stop_command(argv)


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("/env/bin/python", "/env/bin/jupyter-server", "list"),
        ("/env/bin/python", "/env/bin/jupyter-server", "--port", "8888", "stop"),
        ("ngrok", "http", "8888"),
        ("cloudflared", "tunnel", "--url", "http://127.0.0.1:8888"),
        ("ssh", "-R", "8888:127.0.0.1:8888", "host"),
        ("socat", "TCP-LISTEN:9999,fork", "TCP:127.0.0.1:8888"),
        ("node", "/usr/bin/configurable-http-proxy"),
        ("python", "relay.py", "jupyter-server", "stop"),
        ("/env/bin/python", "/env/bin/jupyter-server-stop", "stop"),
        ("python", "-m", "jupyter_server", "list", "stop"),
        ("/env/bin/python", "/env/bin/jupyter-lab", "stop"),
        ("relay", "/env/bin/jupyter-server", "stop"),
        ("node", "-m", "jupyter_server", "stop"),
    ],
)
def test_forwarders_and_other_commands_are_not_the_stop(argv: tuple[str, ...]) -> None:
    assert not is_stock_stop_command(argv)


def _peer(**changes: object) -> PeerProcess:
    base: dict[str, object] = dict(
        pid=os.getpid() + 1, uid=os.getuid(), same_pid_namespace=True,
        argv=("/env/bin/python", "/env/bin/jupyter-server", "stop", "8888"),
    )  # fmt: skip
    base.update(changes)
    return PeerProcess(**base)  # type: ignore[arg-type]


def test_only_this_users_stop_command_in_this_pid_namespace_may_stop() -> None:
    assert may_stop_this_server(_peer())[0]
    assert not may_stop_this_server(None)[0]
    assert not may_stop_this_server(_peer(uid=os.getuid() + 1))[0]
    # jupyter-server-proxy forwards other people's requests from inside the server process
    assert not may_stop_this_server(_peer(pid=os.getpid()))[0]
    assert not may_stop_this_server(_peer(same_pid_namespace=False))[0]
    assert not may_stop_this_server(_peer(argv=("ngrok", "http", "8888")))[0]


@linux_only
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_a_loopback_peer_is_found_in_proc(family: socket.AddressFamily) -> None:
    """A real loopback TCP connection: the client's half is this process's socket; the server
    side finds it (uid, pid, argument vector, PID namespace) and refuses it, since it is this
    very process and not the stop command."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    try:
        listener = socket.socket(family)
        listener.bind((host, 0))
    except OSError:
        pytest.skip(f"no {host} on this machine")
    listener.listen(1)
    client = socket.create_connection(listener.getsockname()[:2])
    server_side, _ = listener.accept()
    try:
        peer = peer_process(server_side)
        assert peer is not None
        assert peer.pid == os.getpid()
        assert peer.uid == os.getuid()
        assert peer.same_pid_namespace
        assert peer.argv  # this process's own argument vector (pytest's)
        allowed, why = may_stop_this_server(peer)
        assert not allowed
        assert "own process" in why
    finally:
        for sock in (client, server_side, listener):
            sock.close()


@linux_only
def test_a_unix_socket_peer_comes_from_peer_credentials() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX)
    try:
        peer = peer_process(ours)
        assert peer is not None
        assert peer.pid == os.getpid()
        assert peer.uid == os.getuid()
    finally:
        ours.close()
        theirs.close()


def test_a_remote_peer_is_not_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    class Remote:
        family = socket.AF_INET

        @staticmethod
        def getpeername() -> tuple[str, int]:
            return ("192.0.2.7", 40000)

        @staticmethod
        def getsockname() -> tuple[str, int]:
            return ("192.0.2.1", 8888)

    def boom(*_: object) -> None:
        raise AssertionError("/proc/net/tcp read for a remote peer")

    monkeypatch.setattr(localpeer, "_tcp_socket_owner", boom)
    assert peer_process(Remote()) is None  # type: ignore[arg-type]


def test_the_description_names_the_program_not_its_arguments() -> None:
    peer = _peer(argv=("/env/bin/python3", "/env/bin/jupyter-server", "stop", "8888"))
    assert peer.describe().endswith("program 'python3 jupyter-server stop'")
    secret = _peer(argv=("/usr/bin/python3", "-c", "token = 'hunter2'", "--password=hunter2"))
    assert "hunter2" not in secret.describe()
    assert "hunter2" not in _peer(argv=("/opt/agent", "--password=hunter2")).describe()
    assert "hunter2" not in _peer(argv=("/usr/bin/sshpass", "hunter2", "ssh")).describe()
    assert _peer(argv=("/usr/bin/node", "/srv/chp.js")).describe().endswith("'node chp.js'")
