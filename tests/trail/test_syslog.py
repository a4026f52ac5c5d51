"""The syslog sink (hardened_server/trail/syslog.py): RFC 5424 messages in RFC 6587
octet-counted frames, over a real TCP connection on 127.0.0.1; and audit.require."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardened_server.policy.decisions import deny
from hardened_server.policy.rules import Rule
from hardened_server.trail.chain import AuditWriteError
from hardened_server.trail.syslog import SyslogSink, frame, message
from hardened_server.trail.writer import open_audit_trail


class Listener:
    """A TCP listener on 127.0.0.1 that reads octet-counted frames."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.data = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            while chunk := conn.recv(65536):
                self.data += chunk

    def frames(self) -> list[bytes]:
        out, rest = [], self.data
        while rest:
            length, _, rest = rest.partition(b" ")
            out.append(rest[: int(length)])
            rest = rest[int(length) :]
        return out

    def close(self) -> None:
        self.sock.close()


def test_message_and_frame() -> None:
    line = b'{"event":{"decision":"deny"},"kind":"decision","seq":3}'
    msg = message(line, hostname="node 1", pid=42, now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    # facility 13 (log audit) * 8 + severity 4 (warning, a denial)
    assert msg == b"<108>1 2026-01-02T03:04:05.000000Z node1 hardened-server 42 decision - " + line
    assert frame(b"abc") == b"3 abc"
    assert message(b'{"kind":"genesis"}', hostname="h", pid=1).startswith(b"<109>1 ")


def test_every_chain_line_goes_to_the_collector_in_order(tmp_path: Path) -> None:
    listener = Listener()
    trail = open_audit_trail(
        path=tmp_path / "audit.jsonl",
        fsync="never",
        metrics=False,
        syslog=f"127.0.0.1:{listener.port}",
        require=("file", "syslog"),
        server={"host": "h", "port": 1},
    )
    trail.decision(deny(Rule.HOST_FOREIGN, "Host evil"), route_class="api", method="GET",
                   path="/", client_ip="192.0.2.1")
    trail.close()
    listener.thread.join(5)
    sent = [f.split(b" - ", 1)[1] for f in listener.frames()]
    assert sent == (tmp_path / "audit.jsonl").read_bytes().splitlines()
    listener.close()


def test_a_required_collector_that_is_down_raises_hs_audit_005(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    trail = open_audit_trail(
        path=tmp_path / "audit.jsonl",
        fsync="never",
        metrics=False,
        syslog=f"127.0.0.1:{port}",
        require=("file", "syslog"),
    )
    with pytest.raises(AuditWriteError) as err:
        trail.decision(deny(Rule.HOST_FOREIGN, "x"), route_class="api", method="GET", path="/",
                       client_ip="192.0.2.1")
    assert err.value.rule_id == Rule.AUDIT_SINK_REQUIRED
    assert err.value.sink == "syslog"
    # Not required: the same failure is logged, the record stands.
    optional = open_audit_trail(
        path=tmp_path / "b.jsonl", fsync="never", metrics=False, syslog=f"127.0.0.1:{port}"
    )
    assert optional.decision(
        deny(Rule.HOST_FOREIGN, "x"), route_class="api", method="GET", path="/",
        client_ip="192.0.2.1",
    ) is not None
    syslog = next(s for s in optional.sinks if isinstance(s, SyslogSink))
    assert syslog.backlog >= 2  # genesis and the decision wait for the collector
    trail.close()
    optional.close()


def test_require_must_name_configured_sinks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"audit\.require names syslog"):
        open_audit_trail(path=tmp_path / "a.jsonl", metrics=False, require=("file", "syslog"))
