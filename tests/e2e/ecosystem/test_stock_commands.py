"""Issue #16 item 9: stock ``jupyter server list`` and ``jupyter server stop PORT`` (the commands of
the ecosystem venv, as a user types them) against a running hardened-server.

``jpserver-<pid>.json`` never holds a credential (SECURITY.md, "Stopping a server"): stock's
list shows the server's URL, which leads to the login page; stock's stop sends an empty token,
and the server accepts it because the operating system says the process at the other end is
``jupyter server stop`` run by the server's own user (before: a traceback ending ``HTTP 403``).
Anyone else sending that request is refused (HS-AUTH-001) with ``hardened-server stop PORT`` in
the answer.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.audit import audit_records
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def jupyter(eco_python: Path, server: ServerProcess, *args: str,
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """The ecosystem venv's own ``jupyter`` command, with the server's Jupyter directories."""
    return subprocess.run(
        [str(eco_python.parent / "jupyter"), *args], env=server.env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


def test_stock_server_list_shows_a_url_that_connects(tmp_path: Path, eco_python: Path) -> None:
    server = ServerProcess(tmp_path, ["--ServerApp.jpserver_extensions=jupyterlab=False"])
    try:
        server.start(timeout=120)
        listed = jupyter(eco_python, server, "server", "list")
        assert listed.returncode == 0, listed.stderr
        assert "Traceback" not in listed.stderr
        lines = [ln for ln in listed.stdout.splitlines() if f":{server.port}/" in ln]
        assert len(lines) == 1, listed.stdout
        url = lines[0].split(" :: ")[0]
        assert server.token not in listed.stdout
        # with the token in the header, the listed URL is the server's API
        status = requests.get(url + "api/status", headers=server.auth(), timeout=30)
        assert status.status_code == 200, status.text
        # opened in a browser, it leads to the login page, where the token or password logs in
        page = requests.get(url, timeout=30)
        assert page.status_code == 200
        assert page.url.startswith(url + "login"), page.url
    finally:
        server.stop_quickly()


def test_stock_server_stop_stops_the_server(tmp_path: Path, eco_python: Path) -> None:
    """The ecosystem venv's own ``jupyter server stop PORT``: exit 0, no traceback, the
    server stops gracefully at once, and the trail says who asked (HS-SERVER-001)."""
    server = ServerProcess(tmp_path, ["--ServerApp.jpserver_extensions=jupyterlab=False"])
    try:
        server.start(timeout=120)
        assert server.proc is not None
        stopped = server.stopped_by(
            [str(eco_python.parent / "jupyter"), "server", "stop", str(server.port)]
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "Traceback" not in stopped.stderr, stopped.stderr
        records = audit_records(server)
        stops = [r for r in records if r.get("rule_id") == "HS-SERVER-001"]
        assert len(stops) == 1, records
        assert "jupyter server stop" in stops[0]["reason"], stops[0]
        assert not [r for r in records if r.get("rule_id") == "HS-AUTH-001"], records
    finally:
        server.stop_quickly()


def test_only_the_stock_stop_request_gets_the_hint(tmp_path: Path) -> None:
    """What stock's stop sends (an empty token) is refused with the hint in the reason and the
    JSON body; any other anonymous or wrongly authenticated POST is the plain 403."""
    server = ServerProcess(tmp_path, ["--ServerApp.jpserver_extensions=jupyterlab=False"])
    try:
        server.start(timeout=120)
        shutdown = server.url + "/api/shutdown"
        blank = requests.post(shutdown, headers={"Authorization": "token "}, timeout=30)
        assert blank.status_code == 403, blank.text
        hint = f"hardened-server stop {server.port}"
        assert hint in blank.reason
        assert "HS-AUTH-001" in blank.json()["message"]
        assert hint in blank.json()["message"]
        for headers in ({}, {"Authorization": "token wrong"}, {"Authorization": "Bearer "}):
            refused = requests.post(shutdown, headers=headers, timeout=30)
            assert refused.status_code == 403, (headers, refused.text)
            assert hint not in refused.text
        other = requests.post(server.url + "/api/kernels", headers={"Authorization": "token "},
                              timeout=30)  # fmt: skip
        assert other.status_code == 403
        assert hint not in other.text
        assert server.proc is not None
        assert server.proc.poll() is None
    finally:
        server.stop_quickly()
