"""The commands people type around a running server (issue #16 item 5): the one start-up banner,
`hardened-server list` and `hardened-server stop PORT`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import BareServer, ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hardened_server", *args], env=server.env,
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_generated_token_one_banner_list_and_stop(tmp_path: Path) -> None:
    """No flags, no JUPYTER_TOKEN: the log has one banner with the URL that logs in (stock's
    token-less "is running at" and "copy and paste one of these URLs" lines are gone), says
    terminals are off with the policy key; `list` shows how to log in and stop; `stop PORT`
    stops it gracefully."""
    server = BareServer(tmp_path, sys.executable, script=False)
    try:
        server.start(timeout=120)
        log = server.log()
        assert "copy and paste one of these URLs" not in log, log
        assert not re.search(r"Jupyter Server [\d.]+\S* is running at", log), log
        assert log.count("hardened-server is running at") == 1, log
        login_urls = re.findall(r"http://\S+:\d+/\S*token=[0-9a-f]+", log)
        assert len(login_urls) == 1, log
        assert "Terminals are off (policy key terminals.enabled" in log, log
        assert f"hardened-server stop {server.port}" in log

        listed = cli(server, "list")
        assert listed.returncode == 0, listed.stderr
        assert f":{server.port}/" in listed.stdout, listed.stdout
        assert f"hardened-server stop {server.port}" in listed.stdout
        assert "log in:" in listed.stdout
        assert server.token not in listed.stdout

        stopped = server.stopped_by([sys.executable, "-m", "hardened_server", "stop",
                                     str(server.port)], timeout=30)  # fmt: skip
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "stopped the server" in stopped.stdout
        assert "Traceback" not in server.log()
        assert cli(server, "list").stdout.strip() == "No running servers."
        missing = cli(server, "stop", str(server.port))
        assert missing.returncode == 1
        assert "no server of yours is running" in missing.stderr
    finally:
        server.stop_quickly()


def test_configured_token_banner_says_how_to_log_in(tmp_path: Path) -> None:
    """With JUPYTER_TOKEN set the banner cannot print a login URL (it does not repeat the
    token): it says where the token comes from and how to use it."""
    server = ServerProcess(tmp_path, ["--ServerApp.jpserver_extensions=jupyterlab=False"])
    try:
        server.start(timeout=120)
        log = server.log()
        assert "Log in with the token from JUPYTER_TOKEN" in log, log
        assert "?token=<the token>" in log
        assert "Authorization: token <the token>" in log
        assert server.token not in log
    finally:
        server.stop_quickly()


def test_serve_help_lists_the_options() -> None:
    """`hardened-server serve --help` crashed with KeyError: 'HardenedIdentityProvider' (an alias
    pointing at a class the app did not list)."""
    result = subprocess.run(
        [sys.executable, "-m", "hardened_server", "serve", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for option in ("--policy=", "--token-store=", "--password-file="):
        assert option in result.stdout, result.stdout
