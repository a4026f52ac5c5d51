"""Starting, probing and stopping the three servers under test, each in its own process group."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.common import LOOPBACK, free_port, isolated_env, pin, proc_status, root_flag
from bench.endpoints import endpoints as all_endpoints

STOCK = "stock"
HARDENED = "hardened"
BARE = "bare"


@functools.cache
def password_hash() -> str:
    """One argon2id hash (hardened-server's parameters, the ``argon2:`` form both servers
    read as ``PasswordIdentityProvider.hashed_password``) of a random password nobody sends:
    stock and hardened get the same one, so the login flood's wrong passwords are checked the
    way a configured server checks them (argon2 on stock's event loop, in hardened's pool)."""
    from hardened_server.enforcement.identity.passwords import hash_password

    return hash_password(secrets.token_urlsafe(24))


@dataclass
class Server:
    kind: str
    workdir: Path
    token: str
    root: Path
    cpus: set[int] | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    idle_rss_kb: int | None = None
    argv: list[str] = field(default_factory=list)
    captures: Path | None = None
    profile_out: Path | None = None  # run under cProfile (bench.profiled), stats written here
    label: str = ""  # the name in the results ("hardened+nodelay"); defaults to kind
    config_py: Path | None = None  # copied in as the isolated jupyter_server_config.py

    def __post_init__(self) -> None:
        self.label = self.label or self.kind

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def origin(self) -> str:
        return self.url

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.label}.log"

    def command(self) -> list[str]:
        common = [
            f"--port={self.port}",
            f"--ip={LOOPBACK}",
            "--ServerApp.open_browser=False",
            f"--PasswordIdentityProvider.hashed_password={password_hash()}",
            *root_flag(),
        ]
        if self.kind == STOCK:
            return [
                *self._python_m("jupyter_server"),
                f"--ServerApp.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                *common,
            ]  # fmt: skip
        if self.kind == HARDENED:
            return [
                *self._python_m("hardened_server"), "serve",
                f"--root-dir={self.root}",
                *common,
            ]  # fmt: skip
        assert self.captures is not None
        return [
            *self._python_m("bench.bare"),
            f"--port={self.port}", f"--captures={self.captures}",
        ]  # fmt: skip

    def _python_m(self, module: str) -> list[str]:
        if self.profile_out is not None:
            return [sys.executable, "-m", "bench.profiled", str(self.profile_out), module]
        return [sys.executable, "-m", module]

    def start(self, timeout: float = 90) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = isolated_env(self.workdir / "jupyter", JUPYTER_TOKEN=self.token)
        if self.config_py is not None:
            # Both servers read jupyter_server_config.py from JUPYTER_CONFIG_DIR: a what-if
            # patch (--variant) is applied in-process without touching the package.
            target = Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.py"
            target.write_text(self.config_py.read_text())
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
        )
        self.argv = self.command()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        pin(self.proc.pid, self.cpus)  # kernels it starts inherit this; see pin_children
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"{self.label} exited with {code}:\n{self.log()}")
            try:
                r = requests.get(self.url + "/api/status", headers=self.auth(), timeout=2)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} did not start in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss(self) -> dict[str, int]:
        return proc_status(self.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if not self._log.closed:
            self._log.close()

    # -- kernels -----------------------------------------------------------------------------

    def start_kernel(self) -> str:
        r = requests.post(
            self.url + "/api/kernels",
            headers={**self.auth(), "Content-Type": "application/json", "Origin": self.origin},
            data=json.dumps({"name": "python3"}),
            timeout=60,
        )
        r.raise_for_status()
        return str(r.json()["id"])

    def shutdown_kernel(self, kernel_id: str) -> None:
        with contextlib.suppress(requests.RequestException):
            requests.delete(
                f"{self.url}/api/kernels/{kernel_id}",
                headers={**self.auth(), "Origin": self.origin},
                timeout=30,
            )


def new_token() -> str:
    return secrets.token_hex(32)


def capture(stock: Server, endpoints: list[Any], dest: Path) -> Path:
    """Record what ``stock`` answers on each endpoint, for the bare server to replay."""
    dest.mkdir(parents=True, exist_ok=True)
    routes = []
    if not any(ep.name == "status" for ep in endpoints):  # what wait_ready asks for
        endpoints = [*endpoints, *(ep for ep in all_endpoints() if ep.name == "status")]
    for ep in endpoints:
        if ep.kind != "http":
            continue
        r = requests.request(
            ep.method,
            stock.url + ep.path,
            headers={**stock.auth(), **ep.headers(stock)},
            data=ep.body,
            timeout=60,
        )
        r.raise_for_status()
        (dest / f"{ep.name}.body").write_bytes(r.content)
        (dest / f"{ep.name}.type").write_text(r.headers.get("Content-Type", "text/plain"))
        pattern = re.escape(ep.path.split("?")[0]) + "$"
        routes.append({"name": ep.name, "method": ep.method, "pattern": pattern})
    (dest / "routes.json").write_text(json.dumps(routes))
    return dest
