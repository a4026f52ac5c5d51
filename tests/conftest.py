"""Shared fixtures: real servers on 127.0.0.1, Hypothesis profiles, the no-skip rule in CI."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# -- Hypothesis: `ci` for make test, `long` for make fuzz ------------------------------------
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# -- rule 2: in CI a skipped end-to-end test is a failure --------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("e2e") is not None:
        report.outcome = "failed"
        report.longrepr = f"end-to-end test skipped with CI=true: {report.longrepr}"


# -- helpers -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def strong_token() -> str:
    return secrets.token_hex(32)


def isolated_env(base: Path, **extra: str) -> dict[str, str]:
    """An environment whose Jupyter config/runtime/data dirs are private to the test, so a
    developer's own config never leaks in (the packages' own extension config still loads)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    for name in ("config", "runtime", "data"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def root_flag() -> list[str]:
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


class ServerProcess:
    """``python -m hardened_server serve`` on 127.0.0.1, in its own process group."""

    def __init__(
        self,
        workdir: Path,
        args: Sequence[str] = (),
        *,
        token: str | None = None,
        env: dict[str, str] | None = None,
        pythonpath: Sequence[Path] = (),
        ip: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.token = strong_token() if token is None else token
        self.root = workdir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        extra = {"JUPYTER_TOKEN": self.token} if self.token else {}
        self.env = isolated_env(workdir / "jupyter", **extra, **(env or {}))
        if pythonpath:
            self.env["PYTHONPATH"] = os.pathsep.join(
                [str(p) for p in pythonpath] + [self.env.get("PYTHONPATH", "")]
            )
        self.argv = [
            sys.executable,
            "-m",
            "hardened_server",
            "serve",
            f"--ip={ip}",
            f"--port={self.port}",
            f"--root-dir={self.root}",
            "--ServerApp.open_browser=False",
            *root_flag(),
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True, timeout: float = 60) -> ServerProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = requests.get(
                    self.url + "/api/status", headers=self.auth(), timeout=2
                )
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if not self._log.closed:
            self._log.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start real servers: ``server_factory(args=[...], policy_text=None, ...)``."""
    started: list[ServerProcess] = []

    def make(
        args: Sequence[str] = (),
        *,
        policy_text: str | None = None,
        start: bool = True,
        **kwargs: object,
    ) -> ServerProcess:
        workdir = tmp_path / f"srv{len(started)}"
        workdir.mkdir()
        if policy_text is not None:
            policy = workdir / "policy.toml"
            policy.write_text(policy_text)
            args = [f"--policy={policy}", *args]
        server = ServerProcess(workdir, args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One hardened-server with the shipped default policy (and JupyterLab) per module."""
    server = ServerProcess(tmp_path_factory.mktemp("live")).start()
    yield server
    server.stop()


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")
