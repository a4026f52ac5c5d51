"""Servers and helpers for the audit tests: a stock jupyter_server next to hardened-server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from hardened_server.audit.cli import main as audit_main
from tests.conftest import free_port, isolated_env, root_flag, strong_token


def make_root(root: Path) -> None:
    """What the probes look for: a file to fetch through /files, and a hidden directory."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.html").write_text("<h1>hello</h1>\n")
    (root / ".ssh").mkdir(exist_ok=True)
    (root / ".ssh" / "id_test").write_text("not a key\n")


class StockServer:
    """``python -m jupyter_server`` (stock, no hardened-server code) on 127.0.0.1."""

    def __init__(self, workdir: Path, config: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.token = strong_token()
        self.root = workdir / "root"
        make_root(self.root)
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = isolated_env(workdir / "jupyter", JUPYTER_TOKEN=self.token)
        if config:
            cfg = workdir / "jupyter" / "config" / "jupyter_server_config.json"
            cfg.write_text(json.dumps(config))
        self.argv = [
            sys.executable, "-m", "jupyter_server",
            "--ServerApp.ip=127.0.0.1", f"--port={self.port}", f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False", "--ServerApp.port_retries=0", *root_flag(),
        ]
        self.log_path = workdir / "stock.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> StockServer:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, env=self.env, stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"stock server exited:\n{self.log_path.read_text()}")
            try:
                r = requests.get(f"{self.url}/api/status", timeout=2,
                                 headers={"Authorization": f"token {self.token}"})
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"stock server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if hasattr(self, "_log") and not self._log.closed:
            self._log.close()


def run_audit(argv: list[str], out: Path) -> tuple[int, dict[str, Any], float]:
    """Run ``hardened-server audit`` in-process with JSON output; (exit code, report, seconds)."""
    start = time.perf_counter()
    rc = audit_main([*argv, "--format", "json", "--output", str(out)])
    seconds = time.perf_counter() - start
    return rc, json.loads(out.read_text()), seconds


def ids(report: dict[str, Any], *, at_least: str = "info") -> set[str]:
    order = ["info", "warning", "error", "critical"]
    floor = order.index(at_least)
    return {f["id"] for f in report["findings"]
            if not f["silenced"] and order.index(f["severity"]) >= floor}
