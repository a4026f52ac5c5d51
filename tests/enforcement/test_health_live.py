"""The liveness probe on a real server (hardened_server/policy/health.py): ``GET /hs-health``
answers ``ok`` without a credential, writes no audit record and is counted on ``/metrics``; a
foreign Host is refused (and recorded) on the probe's path too, and nothing else answers an
anonymous request. The server runs under ``base_url = /jp/``: the probe's path is fixed,
outside it. (The pod's own address, which a loopback test cannot have, is in
tests/enforcement/test_health.py and tests/policy/test_health.py.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from tests.support.audit import audit_records
from tests.support.server import WITHOUT_FRONTENDS, ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("health")
    policy = workdir / "policy.toml"
    policy.write_text('[server]\npublic_hostnames = ["jupyter.example.org"]\n')
    srv = ServerProcess(
        workdir, [f"--policy={policy}", "--ServerApp.base_url=/jp/", *WITHOUT_FRONTENDS]
    )
    srv.url += "/jp"
    srv.start()
    yield srv
    srv.stop_quickly()


def raw(server: ServerProcess, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def probes_counted(server: ServerProcess) -> float:
    text = requests.get(f"{server.url}/metrics", headers=server.auth(), timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("hardened_server_health_probes_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_probe_answers_ok_without_a_record_and_is_counted(server: ServerProcess) -> None:
    before_records = len(audit_records(server))
    before_count = probes_counted(server)
    base = f"http://127.0.0.1:{server.port}"
    for host in (f"127.0.0.1:{server.port}", "jupyter.example.org", "localhost"):
        resp = requests.get(f"{base}/hs-health", headers={"Host": host}, timeout=10)
        assert (resp.status_code, resp.text) == (200, "ok\n")
        assert resp.headers["Cache-Control"].startswith("no-store")
        assert "Content-Security-Policy" in resp.headers
        assert "Server" not in resp.headers or "TornadoServer" not in resp.headers["Server"]
    head = requests.head(f"{base}/hs-health", timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert probes_counted(server) == before_count + 4
    # /metrics itself is recorded (a token use) or not: compare only the probe's own rules.
    new = audit_records(server)[before_records:]
    assert not [r for r in new if "hs-health" in str(r.get("path", ""))], new


def test_foreign_host_is_refused_and_recorded_on_the_probe_path(server: ServerProcess) -> None:
    reply = raw(
        server, b"GET /hs-health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 403"), reply[:200]
    refused = [r for r in audit_records(server) if r.get("rule_id") == "HS-HOST-002"]
    assert any("hs-health" in str(r.get("path", "")) for r in refused), refused


@pytest.mark.parametrize(
    "target",
    [b"/hs-health?x=1", b"/hs-health/", b"/jp/hs-health", b"/jp/api/contents", b"/jp/api/status"],
)
def test_nothing_else_answers_an_anonymous_request(server: ServerProcess, target: bytes) -> None:
    reply = raw(
        server,
        b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    assert not reply.startswith(b"HTTP/1.1 200"), reply[:300]
    assert b"\r\n\r\nok\n" not in reply


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"OPTIONS"])
def test_only_get_and_head_are_the_probe(server: ServerProcess, method: str) -> None:
    reply = raw(
        server,
        method + b" /hs-health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert not reply.startswith(b"HTTP/1.1 200"), reply[:300]
    assert b"\r\n\r\nok\n" not in reply


