"""Stock ``jupyter server stop PORT`` stops a running hardened-server with no credential
anywhere: the operating system says which process is at the other end of the connection
(issue #16 item 9; hardened_server/enforcement/localpeer.py; SECURITY.md, "Stopping a server").
What ``jupyter server stop`` executes is the ``jupyter-server`` script of jupyter_server, which
the project's own environment installs; the ecosystem venv's copy is run by
tests/e2e/ecosystem/test_stock_commands.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from tests.support.audit import audit_file, audit_records
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

if not sys.platform.startswith("linux"):
    pytest.skip("the stop's peer is looked up in /proc", allow_module_level=True)

STOCK_STOP = Path(sys.executable).parent / "jupyter-server"
ARGS = ["--ServerApp.jpserver_extensions=jupyterlab=False"]


def test_stock_stop_stops_the_server_at_once_and_says_who_asked(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, ARGS)
    try:
        server.start(timeout=120)
        assert server.proc is not None
        started = time.monotonic()
        stopped = server.stopped_by([str(STOCK_STOP), "stop", str(server.port)])
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "Traceback" not in stopped.stderr, stopped.stderr
        records = audit_records(server)
        # the request itself was accepted (not stock's SIGTERM fallback five seconds later):
        stops = [r for r in records if r.get("rule_id") == "HS-SERVER-001"]
        assert len(stops) == 1, records
        assert "jupyter server stop" in stops[0]["reason"], stops[0]
        assert "program 'python jupyter-server stop'" in stops[0]["reason"] or (
            "program 'jupyter-server stop'" in stops[0]["reason"]), stops[0]  # fmt: skip
        assert stops[0]["user"].startswith("local user "), stops[0]
        assert not [r for r in records if r.get("rule_id") == "HS-AUTH-001"], records
        lines = [json.loads(ln) for ln in audit_file(server).read_bytes().splitlines() if ln]
        assert lines[-1]["kind"] == "close", lines[-1]
        assert time.monotonic() - started < 60
    finally:
        server.stop_quickly()


RELAY = textwrap.dedent(
    """
    import socket, sys, threading
    target = int(sys.argv[1])
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)

    def pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", target))
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
    """
)


def test_a_forwarder_of_this_user_cannot_stop_it(tmp_path: Path) -> None:
    """A relay running as the server's own user (what a tunnel agent, ``ssh -R`` or a proxy is)
    forwards someone else's request: the process at the other end is the relay, not the stop
    command, so the request is refused like any anonymous one and the server stays up. So is
    the same request sent straight from this (non-stop) process."""
    server = ServerProcess(tmp_path, ARGS)
    relay = None
    try:
        server.start(timeout=120)
        relay = subprocess.Popen(
            [sys.executable, "-c", RELAY, str(server.port)], stdout=subprocess.PIPE, text=True
        )
        assert relay.stdout is not None
        relay_port = int(relay.stdout.readline())
        blank = {"Authorization": "token "}
        for port in (relay_port, server.port):
            answer = requests.post(
                f"http://127.0.0.1:{port}/api/shutdown", headers={
                    **blank, "Host": f"127.0.0.1:{server.port}"}, timeout=30,
            )  # fmt: skip
            assert answer.status_code == 403, answer.text
            assert f"hardened-server stop {server.port}" in answer.reason
        time.sleep(0.5)
        assert server.proc is not None
        assert server.proc.poll() is None
        log = server.log()
        # the relay's request, then this test process's own
        assert log.count("not accepted: the process at the other end is not `jupyter server "
                         "stop`") == 2, log  # fmt: skip
        assert f"(pid {relay.pid}, uid " in log, log
        assert "import socket" not in log  # another process's arguments are not logged
        refused = [r for r in audit_records(server) if r.get("path") == "/api/shutdown"]
        assert [r["rule_id"] for r in refused] == ["HS-AUTH-001", "HS-AUTH-001"], refused
    finally:
        if relay is not None:
            relay.kill()
            relay.wait(10)
        server.stop_quickly()


def test_the_peer_lookup_is_never_reached_by_other_requests(tmp_path: Path) -> None:
    """Only ``POST /api/shutdown`` with the empty token stock's stop sends looks for the peer
    process: any other anonymous request is the plain 403."""
    server = ServerProcess(tmp_path, ARGS)
    try:
        server.start(timeout=120)
        for method, path, headers in (
            ("POST", "/api/shutdown", {}),
            ("POST", "/api/shutdown", {"Authorization": "token wrong"}),
            ("POST", "/api/kernels", {"Authorization": "token "}),
            # stock's shape for a Unix-socket server, over TCP
            ("POST", "/", {"Authorization": "token "}),
        ):
            answer = requests.request(method, server.url + path, headers=headers, timeout=30)
            assert answer.status_code == 403
        assert "jupyter server stop` not accepted" not in server.log()
        with socket.create_connection(("127.0.0.1", server.port)):
            pass
        assert server.proc is not None
        assert server.proc.poll() is None
    finally:
        server.stop_quickly()


def test_stock_stop_of_a_unix_socket_server(tmp_path: Path) -> None:
    """``jupyter server stop SOCKET``: stock POSTs the socket URL itself (it cannot join
    ``api/shutdown`` to ``http+unix://``); on the server's Unix socket, the peer credentials
    (``SO_PEERCRED``) say it is the stop command. The banner and ``hardened-server list``
    name the socket, not port 0."""
    sock = tmp_path / "s.sock"
    server = ServerProcess(tmp_path, [*ARGS, f"--sock={sock}"])
    server.argv = [a for a in server.argv if not a.startswith(("--port=", "--ip="))]
    try:
        server.start(wait=False)
        assert server.proc is not None
        deadline = time.monotonic() + 120
        while "hardened-server is running at" not in server.log():
            assert server.proc.poll() is None, server.log()
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        assert f"hardened-server stop {sock}`" in server.log()
        listed = subprocess.run(
            [sys.executable, "-m", "hardened_server", "list"], env=server.env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert f"hardened-server stop {sock}" in listed.stdout, listed.stdout
        stopped = server.stopped_by([str(STOCK_STOP), "stop", str(sock)])
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "Traceback" not in stopped.stderr, stopped.stderr
        (trail,) = Path(server.env["JUPYTER_RUNTIME_DIR"]).glob("hardened-server-audit-*.jsonl")
        records = [json.loads(ln) for ln in trail.read_bytes().splitlines() if ln]
        stops = [r["event"] for r in records
                 if r.get("kind") == "decision" and r["event"].get("rule_id") == "HS-SERVER-001"]
        assert len(stops) == 1, records
        assert "jupyter server stop" in stops[0]["reason"], stops[0]
        assert records[-1]["kind"] == "close", records[-1]
    finally:
        server.stop_quickly()
