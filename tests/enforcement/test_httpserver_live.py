"""Connection limits of the HTTP server over real TCP on 127.0.0.1 (issue #18, item 7), and
tornado's own 400 (item 8) tied to the parse failure rather than to its bytes.

Clients speak from other loopback addresses (127.0.0.2, 127.0.0.10, ...: all of 127.0.0.0/8
reaches the server at 127.0.0.1 on Linux) so that one test's connections are one client and
the token holder's requests from 127.0.0.1 another, as they would be on a network.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hardened_server.enforcement.httpserver import BARE_BAD_REQUEST
from hardened_server.policy.rules import Rule
from tests.support.audit import audit_records
from tests.support.server import WITHOUT_FRONTENDS, ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

HEADER_TIMEOUT = 2
IDLE_TIMEOUT = 4
PER_CLIENT = 8
TOTAL = 32
PROXY = "127.0.0.3"
POLICY = f"""
[server]
trusted_proxies = ["{PROXY}/32"]

[limits]
header_timeout_seconds = {HEADER_TIMEOUT}
idle_timeout_seconds = {IDLE_TIMEOUT}
connections_per_client = {PER_CLIENT}
max_connections = {TOTAL}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("conns")
    (workdir / "policy.toml").write_text(POLICY)
    proc = ServerProcess(workdir, [f"--policy={workdir / 'policy.toml'}", *WITHOUT_FRONTENDS])
    proc.start()
    yield proc
    proc.stop_quickly()


def connect(server: ServerProcess, source: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    return sock


def closed_by_server(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), None if still open after
    ``within`` seconds."""
    start = time.monotonic()
    sock.settimeout(within)
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - start
    assert data == b"", data  # nothing is answered to a refused or timed-out connection
    return time.monotonic() - start


def status_from(server: ServerProcess, source: str) -> int:
    """``GET /api/status`` with the token, from ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5,
                                      source_address=(source, 0))
    try:
        conn.request("GET", "/api/status", headers=server.auth())
        return conn.getresponse().status
    finally:
        conn.close()


def websocket_from(server: ServerProcess, source: str) -> socket.socket:
    """An open ``/api/events/subscribe`` websocket (the 101 read, the socket kept open)."""
    sock = connect(server, source)
    sock.sendall(
        f"GET /api/events/subscribe HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: token {server.token}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def log_lines(server: ServerProcess, rule: str) -> list[str]:
    return [line for line in server.log().splitlines()
            if line.startswith("policy connections") and f"rule={rule}" in line]


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            if predicate():
                return
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_slow_request_head_is_cut_after_the_header_timeout(server: ServerProcess) -> None:
    """slowloris: a header byte every half second, never the blank line. tornado alone waits
    an hour for it; the connection is closed after limits.header_timeout_seconds, unanswered,
    with one log line and one audit record naming HS-LIMIT-006."""
    sock = connect(server, "127.0.0.20")
    start = time.monotonic()
    elapsed = None
    with contextlib.closing(sock):
        sock.sendall(f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
        while elapsed is None and time.monotonic() < start + HEADER_TIMEOUT + 4:
            try:
                sock.sendall(b"X")
                if closed_by_server(sock, 0.25) is not None:
                    elapsed = time.monotonic() - start
            except OSError:  # reset while sending: closed too
                elapsed = time.monotonic() - start
    assert elapsed is not None, "the dripping connection was never closed"
    assert HEADER_TIMEOUT - 0.5 < elapsed < HEADER_TIMEOUT + 2, elapsed
    wait_for(lambda: log_lines(server, Rule.LIMIT_HEADER_TIMEOUT))
    assert "limits.header_timeout_seconds" in log_lines(server, Rule.LIMIT_HEADER_TIMEOUT)[0]
    wait_for(lambda: any(r["rule_id"] == Rule.LIMIT_HEADER_TIMEOUT
                         for r in audit_records(server)))


def test_a_connection_that_sends_nothing_is_cut_after_the_header_timeout(
    server: ServerProcess,
) -> None:
    sock = connect(server, "127.0.0.21")
    with contextlib.closing(sock):
        elapsed = closed_by_server(sock, HEADER_TIMEOUT + 3)
    assert elapsed is not None, "still open"
    assert HEADER_TIMEOUT - 0.5 < elapsed < HEADER_TIMEOUT + 2, elapsed


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    server: ServerProcess,
) -> None:
    """After a request is answered the connection may idle for limits.idle_timeout_seconds
    (longer than the header timeout: the header timeout runs from the next request's first
    byte), then it is closed; a request sent before that is served on the same connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                      source_address=("127.0.0.22", 0))
    with contextlib.closing(conn):
        conn.request("GET", "/api/status", headers=server.auth())
        assert conn.getresponse().read()
        assert conn.sock is not None
        time.sleep(HEADER_TIMEOUT + 0.5)  # past the header timeout, inside the idle one
        conn.request("GET", "/api/status", headers=server.auth())
        reply = conn.getresponse()
        assert reply.status == 200
        assert reply.read()
        assert conn.sock is not None  # the same connection: it was still open
        sock = conn.sock
        elapsed = closed_by_server(sock, IDLE_TIMEOUT + 3)
    assert elapsed is not None, "still open"
    assert IDLE_TIMEOUT - 0.5 < elapsed < IDLE_TIMEOUT + 2, elapsed


def test_the_per_client_cap_closes_the_next_connection_at_accept(server: ServerProcess) -> None:
    """connections_per_client open connections from one address: the next one from it is
    closed at once (HS-LIMIT-007), while another address is served."""
    held = [connect(server, "127.0.0.30") for _ in range(PER_CLIENT)]
    try:
        time.sleep(0.3)  # every accept handled
        extra = connect(server, "127.0.0.30")
        with contextlib.closing(extra):
            elapsed = closed_by_server(extra, 1.0)
        assert elapsed is not None, "the connection over the per-client cap stayed open"
        assert status_from(server, "127.0.0.31") == 200
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)  # the server noticed the closes: the address may connect again
    assert status_from(server, "127.0.0.30") == 200
    wait_for(lambda: log_lines(server, Rule.LIMIT_CONNECTIONS_PER_CLIENT))
    line = log_lines(server, Rule.LIMIT_CONNECTIONS_PER_CLIENT)[0]
    assert "127.0.0.30" in line
    assert "limits.connections_per_client" in line
    wait_for(lambda: any(r["rule_id"] == Rule.LIMIT_CONNECTIONS_PER_CLIENT
                         for r in audit_records(server)))


def test_a_trusted_proxy_is_not_held_to_the_per_client_cap(server: ServerProcess) -> None:
    """Behind nginx every connection comes from nginx: server.trusted_proxies are exempt."""
    held = [connect(server, PROXY) for _ in range(PER_CLIENT + 4)]
    try:
        time.sleep(0.3)
        assert all(closed_by_server(sock, 0.05) is None for sock in held)
    finally:
        for sock in held:
            sock.close()


def test_upgraded_websockets_leave_the_per_client_count_and_outlive_the_idle_timeout(
    server: ServerProcess,
) -> None:
    """A websocket (the handshake was authenticated) is no waiting HTTP connection: more of
    them than connections_per_client from one address, open past the idle timeout."""
    sockets = [websocket_from(server, "127.0.0.40") for _ in range(PER_CLIENT + 2)]
    try:
        assert status_from(server, "127.0.0.40") == 200  # the address is not at its cap
        time.sleep(IDLE_TIMEOUT + 1)
        assert all(closed_by_server(sock, 0.05) is None for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_at_the_total_cap_the_longest_waiting_connection_makes_room(
    server: ServerProcess,
) -> None:
    """max_connections connections that send nothing (from several addresses, none at its
    cap): the token holder's new connection is served, and the oldest waiting one is closed
    (HS-LIMIT-009)."""
    sources = [f"127.0.0.{50 + i // (PER_CLIENT - 1)}" for i in range(TOTAL)]
    held = [connect(server, source) for source in sources]
    try:
        time.sleep(0.2)
        assert status_from(server, "127.0.0.1") == 200
        assert closed_by_server(held[0], 0.5) is not None  # the oldest made room
        assert closed_by_server(held[-1], 0.05) is None
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: log_lines(server, Rule.LIMIT_CONNECTION_EVICTED))


def test_at_the_total_cap_with_none_waiting_the_new_connection_is_closed(
    server: ServerProcess,
) -> None:
    """Every connection busy (websockets, spread over addresses): the next is closed at accept
    (HS-LIMIT-008); once they close, the server accepts again."""
    sources = [f"127.0.0.{70 + i // 4}" for i in range(TOTAL)]
    sockets = [websocket_from(server, source) for source in sources]
    try:
        extra = connect(server, "127.0.0.90")
        with contextlib.closing(extra):
            assert closed_by_server(extra, 1.0) is not None
    finally:
        for sock in sockets:
            sock.close()
    wait_for(lambda: status_from(server, "127.0.0.1") == 200)
    wait_for(lambda: log_lines(server, Rule.LIMIT_CONNECTIONS_TOTAL))
    assert "limits.max_connections" in log_lines(server, Rule.LIMIT_CONNECTIONS_TOTAL)[0]


def test_refusals_are_reported_in_summaries_not_one_line_each(server: ServerProcess) -> None:
    """200 connections over the per-client cap: the first refusal is reported at once, the
    rest are counted into the next summary, so a flood adds a bounded number of lines."""
    before = len(server.log().splitlines())
    held = [connect(server, "127.0.0.99") for _ in range(PER_CLIENT)]
    try:
        time.sleep(0.2)
        for _ in range(200):
            extra = connect(server, "127.0.0.99")
            extra.close()
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    added = server.log().splitlines()[before:]
    assert len(added) < 10, added
    refused = [line for line in added if f"rule={Rule.LIMIT_CONNECTIONS_PER_CLIENT}" in line]
    assert len(refused) <= 1, refused


def test_a_streamed_chunk_equal_to_tornados_bare_400_goes_out_untouched(
    server: ServerProcess,
) -> None:
    """tornado's bare 400 is recognised by the parse failure it answers, not by its bytes: a
    file whose second 64 KiB chunk is exactly those 28 bytes is served as it is."""
    content = b"a" * 65536 + BARE_BAD_REQUEST
    (server.root / "chunks.bin").write_bytes(content)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    with contextlib.closing(conn):
        conn.request("GET", "/files/chunks.bin", headers=server.auth())
        reply = conn.getresponse()
        body = reply.read()
    assert reply.status == 200
    assert body == content


def test_max_connections_above_the_descriptor_budget_refuses_start(tmp_path: Path) -> None:
    """ulimit -n 1024 leaves 768 connections after the reserve: asking for more refuses the
    start with exit 2, naming the rule, the setting and the key."""
    (tmp_path / "policy.toml").write_text("[limits]\nmax_connections = 5000\n")
    proc = ServerProcess(tmp_path, [f"--policy={tmp_path / 'policy.toml'}", *WITHOUT_FRONTENDS],
                         nofile=1024)
    proc.start(wait=False)
    assert proc.wait_exit(60) == 2
    out = proc.log()
    assert f"[{Rule.START_CONNECTION_BUDGET}]" in out
    assert "RLIMIT_NOFILE (ulimit -n) = 1024" in out
    assert "limits.max_connections" in out
    assert "768" in out


@pytest.mark.parametrize(
    ("key", "value"),
    [("header_timeout_seconds", 0), ("idle_timeout_seconds", 0),
     ("connections_per_client", 1), ("max_connections", -1)],
)
def test_a_connection_limit_out_of_range_refuses_start(
    tmp_path: Path, key: str, value: int
) -> None:
    (tmp_path / "policy.toml").write_text(f"[limits]\n{key} = {value}\n")
    proc = ServerProcess(tmp_path, [f"--policy={tmp_path / 'policy.toml'}", *WITHOUT_FRONTENDS])
    proc.start(wait=False)
    assert proc.wait_exit(60) == 2
    assert f"limits.{key}: {value} is below the minimum" in proc.log()
