"""The audit trail's syslog sink against a real collector: Debian's rsyslogd, started here with
its own configuration on 127.0.0.1 (imtcp on a free port, omfile to a file in the test's
directory, its own pid file and work directory; no system service), as issue #19 asks.

* every chain line reaches the collector (RFC 5424, octet-counted frames over TCP), and
  ``hardened-server audit verify-log --stream`` verifies the collector's file, syslog headers
  and all; an edited line in it is named;
* with ``audit.require = ["file", "syslog"]``, a request whose record the collector could not
  take is refused with a 503 that names HS-AUDIT-005, and the lines it missed reach the
  collector once it is back (no gap across the two collector files).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.audit import verify_stream
from tests.support.server import ServerProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RSYSLOGD = "/usr/sbin/rsyslogd"

CONF = """
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="line" type="string"
         string="%TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME%[%PROCID%] %msg%\\n")
action(type="omfile" file="{out}" template="line")
"""

POLICY = """
[audit]
file = "{file}"
syslog = "127.0.0.1:{port}"
require = ["file", "syslog"]
fsync = "always"
"""


def rsyslogd_binary() -> str | None:
    return RSYSLOGD if os.access(RSYSLOGD, os.X_OK) else shutil.which("rsyslogd")


class Collector:
    """One rsyslogd on 127.0.0.1:``port`` writing to ``out``."""

    def __init__(self, workdir: Path, port: int, name: str) -> None:
        binary = rsyslogd_binary()
        if binary is None:
            pytest.skip("Debian rsyslog is not installed (make test installs it)")
        self.port = port
        self.dir = workdir / name
        (self.dir / "work").mkdir(parents=True)
        self.out = self.dir / "collected.log"
        conf = self.dir / "rsyslog.conf"
        conf.write_text(CONF.format(work=self.dir / "work", port=port, out=self.out))
        self.log = open(self.dir / "rsyslogd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, "-n", "-f", str(conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert self.proc.poll() is None, (self.dir / "rsyslogd.log").read_text()
            assert time.monotonic() < deadline, "rsyslogd did not listen"
            time.sleep(0.1)

    def records(self) -> list[dict[str, object]]:
        if not self.out.exists():
            return []
        return [
            json.loads(line[line.index("{") :])
            for line in self.out.read_text().splitlines()
            if "{" in line
        ]

    def wait_for(self, kind: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not any(r.get("kind") == kind for r in self.records()):
            assert time.monotonic() < deadline, f"no {kind} record at the collector"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # our own rsyslogd, by pid
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def collectors(tmp_path: Path) -> Iterator[list[Collector]]:
    started: list[Collector] = []
    yield started
    for collector in started:
        with contextlib.suppress(Exception):
            collector.stop()


def start_server(tmp_path: Path, port: int) -> tuple[ServerProcess, Path]:
    audit = tmp_path / "logs" / "audit.jsonl"
    (tmp_path / "policy.toml").write_text(POLICY.format(file=audit, port=port))
    server = ServerProcess(
        tmp_path,
        [f"--policy={tmp_path / 'policy.toml'}"],
        env={"JUPYTERHUB_USER": "alice", "JUPYTERHUB_SERVER_NAME": ""},
    )
    return server.start(), audit


def put_file(server: ServerProcess, name: str) -> requests.Response:
    return requests.put(
        f"{server.url}/api/contents/{name}",
        json={"type": "file", "format": "text", "content": "x"},
        headers=server.auth(),
        timeout=20,
    )


def test_every_line_reaches_rsyslog_and_the_collected_file_verifies(
    tmp_path: Path, collectors: list[Collector]
) -> None:
    port = free_port()
    collectors.append(Collector(tmp_path, port, "rsyslog"))
    collector = collectors[0]
    server, audit = start_server(tmp_path, port)
    try:
        assert put_file(server, "a.txt").status_code == 201
        r = requests.get(server.url + "/api/status", headers={"Host": "evil.example"}, timeout=20)
        assert r.status_code == 403
    finally:
        server.stop()
    collector.wait_for("close")
    records = collector.records()
    assert records[0]["kind"] == "genesis"
    assert records[0]["server"] == records[-1]["server"]
    assert records[0]["server"]["hub_user"] == "alice"  # type: ignore[index]
    on_file = [json.loads(x) for x in audit.read_bytes().splitlines()]
    assert [r["hash"] for r in records] == [r["hash"] for r in on_file]
    first_line = collector.out.read_text().splitlines()[0]
    assert " hardened-server[" in first_line  # the syslog header is there, before the JSON
    out = verify_stream(collector.out)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hub_user=alice" in out.stdout
    assert "closed cleanly" in out.stdout

    lines = collector.out.read_text().splitlines()
    edited = next(i for i, line in enumerate(lines) if "HS-HOST-002" in line)
    lines[edited] = lines[edited].replace('"decision":"deny"', '"decision":"allow"')
    collector.out.write_text("\n".join(lines) + "\n")
    out = verify_stream(collector.out)
    assert out.returncode == 1, out.stdout
    assert f"line {edited + 1}" in out.stdout
    assert "edited" in out.stdout


def test_a_required_collector_that_is_down_fails_the_request_closed(
    tmp_path: Path, collectors: list[Collector]
) -> None:
    port = free_port()
    collectors.append(Collector(tmp_path, port, "first"))
    server, audit = start_server(tmp_path, port)
    try:
        assert put_file(server, "before.txt").status_code == 201
        collectors[0].wait_for("decision")
        collectors[0].stop()
        refused = put_file(server, "during.txt")
        assert refused.status_code == 503, refused.text
        assert "HS-AUDIT-005" in refused.text
        assert "syslog" in refused.text
        # The evidence of that request is in the file (it was written before the answer).
        assert b"during.txt" in audit.read_bytes()
        collectors.append(Collector(tmp_path, port, "second"))
        assert put_file(server, "after.txt").status_code == 201
    finally:
        server.stop()
    collectors[1].wait_for("close")
    # The lines the collector missed were sent first when it came back: no gap.
    out = verify_stream(collectors[0].out, collectors[1].out)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "closed cleanly" in out.stdout
