"""The one server launcher of the test suite: real servers on 127.0.0.1, each in its own
process group, with private Jupyter config/runtime/data directories.

- :class:`ServerProcess`: ``python -m hardened_server serve`` (the ``server_factory`` and
  ``live_server`` fixtures in ``tests/conftest.py`` build on it);
- :class:`StockServer`: ``python -m jupyter_server`` as installed, no hardened-server code (the
  side-by-side audit tests);
- :class:`BareServer`: the ``hardened-server serve`` console script of a venv with **no flags**
  at all (port from ``JUPYTER_PORT``, root = its working directory, token generated and read
  from the login banner), the way ``make serve`` runs it;
- ``python=``: every launcher runs the test's interpreter unless given another one;
  :func:`eco_python` is the extension ecosystem's (``make eco-venv``; ``tests/e2e/ecosystem/``);
- :class:`Spec`, :func:`launched`, :func:`restart_on_same_port`: several servers started at once
  and waited for together, because each start is a fresh interpreter importing jupyter_server
  (seconds of CPU); ``tests/support/live.py`` wraps them for raw HTTP.

Starting a server is slow and needs the ``live`` (or ``e2e``) marker: :meth:`ServerProcess.start`
asks :func:`tests.support.marker_rule.require_live_marker`, which fails an unmarked test (the
rule itself is in ``tests/support/marker_rule.py``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import resource
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.marker_rule import require_live_marker

#: Server extensions that a module testing only jupyter_server's own routes does not need; each
#: costs about half of a start.
WITHOUT_FRONTENDS = (
    "--ServerApp.jpserver_extensions=jupyterlab=False",
    "--ServerApp.jpserver_extensions=notebook_shim=False",
    "--ServerApp.jpserver_extensions=jupyter_lsp=False",
    "--ServerApp.jpserver_extensions=jupyter_server_terminals=False",
)


#: ``make eco-venv`` builds it: the package (editable) + the pyproject extra ``ecosystem``.
ECO_VENV = Path(__file__).resolve().parents[2] / ".venv-eco"


def eco_python() -> Path | None:
    """The interpreter of the extension ecosystem venv (``HS_ECO_PYTHON`` overrides), or
    ``None`` when it is not built."""
    configured = os.environ.get("HS_ECO_PYTHON")
    python = Path(configured) if configured else ECO_VENV / "bin" / "python"
    return python if python.is_file() and os.access(python, os.X_OK) else None


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


def _connect(port: int, timeout: float, tls: ssl.SSLContext | None) -> http.client.HTTPConnection:
    if tls is not None:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


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
        python: str | os.PathLike[str] = sys.executable,
        nofile: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.nofile = nofile  # RLIMIT_NOFILE (soft and hard) of the server: `ulimit -n`
        self.python = os.fspath(python)
        self.cwd = workdir
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
        self.argv = self.command(ip, args)
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self, ip: str, args: Sequence[str]) -> list[str]:
        return [
            self.python,
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

    def start(
        self, *, wait: bool = True, timeout: float = 60, stdin: int | None = None
    ) -> ServerProcess:
        """``stdin``: a descriptor for the server's stdin (a pty's terminal side, to run it as
        on a TTY); default /dev/null, as a service manager or a spawner runs it."""
        require_live_marker(f"{type(self).__name__}.start")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            start_new_session=True,
            preexec_fn=None if self.nofile is None else self._limit_open_files,
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def _limit_open_files(self) -> None:
        """In the child, before exec: what ``ulimit -n N`` does in a shell."""
        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def wait_ready(
        self,
        timeout: float = 60,
        *,
        base: str | None = None,
        tls_ca: Path | None = None,
        accept: tuple[int, ...] = (200,),
        interval: float = 0.2,
    ) -> None:
        """Poll ``GET <base>api/status`` (without ``base``: ``<url>/api/status``) until it answers
        one of ``accept``; a server that exits first is an error with its log."""
        target = base + "api/status" if base is not None else (
            urllib.parse.urlsplit(self.url).path + "/api/status"
        )
        deadline = time.monotonic() + timeout
        tls = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = _connect(self.port, 2, tls)
                try:
                    conn.request("GET", target, headers=self.auth())
                    if conn.getresponse().status in accept:
                        return
                finally:
                    conn.close()
            time.sleep(interval)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")

    def stopped_by(
        self, argv: Sequence[str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (a command that stops this server: ``hardened-server stop``, stock's
        ``jupyter server stop``) with the server's environment, and reap the server while it
        runs: the server is this process's child, and a zombie still answers ``kill(pid, 0)``,
        which such commands poll. The server must exit 0 (the graceful shutdown)."""
        assert self.proc is not None
        command = subprocess.Popen(
            list(argv), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        code = self.proc.wait(timeout)
        out, err = command.communicate(timeout=timeout)
        assert code == 0, self.log()
        return subprocess.CompletedProcess(list(argv), command.returncode, out, err)

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

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()

    def stop_quickly(self, grace: float = 2.0) -> None:
        """A graceful jupyter_server shutdown can take several seconds that most tests do not
        need (kernels started here exit with their parent)."""
        self.stop(grace)


def make_root(root: Path) -> None:
    """What the audit probes look for: a file to fetch through /files, and a hidden directory."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.html").write_text("<h1>hello</h1>\n")
    (root / ".ssh").mkdir(exist_ok=True)
    (root / ".ssh" / "id_test").write_text("not a key\n")


class StockServer(ServerProcess):
    """``python -m jupyter_server`` (stock, no hardened-server code) on 127.0.0.1, with an
    optional ``jupyter_server_config.json``; the root holds what the probes look for."""

    def __init__(self, workdir: Path, config: dict[str, Any] | None = None) -> None:
        super().__init__(workdir)
        make_root(self.root)
        self.log_path = workdir / "stock.log"
        if config:
            cfg = workdir / "jupyter" / "config" / "jupyter_server_config.json"
            cfg.write_text(json.dumps(config))

    def command(self, ip: str, args: Sequence[str]) -> list[str]:
        return [
            self.python, "-m", "jupyter_server",
            f"--ServerApp.ip={ip}", f"--port={self.port}", f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False", "--ServerApp.port_retries=0", *root_flag(), *args,
        ]


#: The token in the one login URL hardened-server prints (``.../lab?token=<hex>``).
_LOGIN_TOKEN = re.compile(r"[?&]token=([0-9a-f]{32,})")


class BareServer(ServerProcess):
    """``<venv>/bin/hardened-server serve`` with no flags but ``--allow-root`` when root (as
    ``make serve``): the port comes from ``JUPYTER_PORT``, the root directory is the working
    directory, ``HOME`` and the Jupyter directories are private, the token is generated by the
    server and read from its login banner."""

    def __init__(self, workdir: Path, python: str | os.PathLike[str], *,
                 env: Mapping[str, str] | None = None, script: bool = True) -> None:
        self.script = script  # the venv's console script, or `python -m hardened_server`
        super().__init__(workdir, token="", python=python)
        home = workdir / "home"
        home.mkdir(exist_ok=True)
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):  # no browser is opened
            self.env.pop(name, None)
        self.env.update(HOME=str(home), JUPYTER_PORT=str(self.port), **(env or {}))
        self.cwd = self.root

    def command(self, ip: str, args: Sequence[str]) -> list[str]:
        if not self.script:
            return [self.python, "-m", "hardened_server", "serve", *root_flag()]
        return [str(Path(self.python).parent / "hardened-server"), "serve", *root_flag()]

    def wait_ready(self, timeout: float = 60, **kwargs: Any) -> None:
        """Read the token from the login banner, then poll ``/api/status`` with it."""
        deadline = time.monotonic() + timeout
        while not self.token:
            found = _LOGIN_TOKEN.search(self.log())
            if found:
                self.token = found.group(1)
                break
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no login URL in {timeout}s:\n{self.log()}")
            time.sleep(0.2)
        super().wait_ready(max(1.0, deadline - time.monotonic()), **kwargs)


# -- several servers at once ---------------------------------------------------------------


@dataclass
class Spec:
    """One server for a module: base_url, extra arguments, a policy and files to lay out
    (``setup(root, workdir)``) before it starts."""

    base: str = "/"
    args: Sequence[str] = ()
    policy: str | None = None
    setup: Callable[[Path, Path], None] | None = None
    frontends: bool = False
    token: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    tls_ca: Path | None = None  # the server speaks TLS with a certificate from this CA
    python: str | None = None  # another interpreter (eco_python()); default: the test's
    nofile: int | None = None  # the server's RLIMIT_NOFILE (`ulimit -n`); default: inherited


def prepare(workdir: Path, spec: Spec) -> ServerProcess:
    args = [f"--ServerApp.base_url={spec.base}", *spec.args]
    if not spec.frontends:
        args = [*WITHOUT_FRONTENDS, *args]
    if spec.policy is not None:
        policy = workdir / "policy.toml"
        policy.write_text(spec.policy)
        args.insert(0, f"--policy={policy}")
    server = ServerProcess(workdir, args, token=spec.token, env=dict(spec.env),
                           python=spec.python or sys.executable, nofile=spec.nofile)
    if spec.setup is not None:
        spec.setup(server.root, workdir)
    return server


def wait_spec_ready(server: ServerProcess, spec: Spec, timeout: float = 120) -> None:
    """Ready once ``api/status`` under the spec's base_url answers (a 403 counts: some specs'
    policies refuse the probe's request, which still shows the server is serving)."""
    server.wait_ready(timeout, base=spec.base, tls_ca=spec.tls_ca, accept=(200, 403),
                      interval=0.1)


@contextlib.contextmanager
def launched_servers(
    factory: pytest.TempPathFactory, *specs: Spec, name: str = "reg"
) -> Iterator[list[ServerProcess]]:
    """Start every spec at once, wait for all, stop them all (quickly) on exit."""
    started: list[ServerProcess] = []
    try:
        for spec in specs:
            started.append(prepare(factory.mktemp(name), spec).start(wait=False))
        for spec, server in zip(specs, started, strict=True):
            wait_spec_ready(server, spec)
        yield started
    finally:
        for server in started:
            server.stop_quickly()


def restart_server_on_same_port(
    previous: ServerProcess, spec: Spec, token: str | None
) -> ServerProcess:
    """A new server in the same work directory (same runtime dir: same cookie secret file) on
    the same port (the session cookie's name carries Host, port included)."""
    spec = Spec(**{**spec.__dict__, "token": token, "setup": None})
    server = prepare(previous.workdir, spec)
    server.port = previous.port
    server.url = previous.url
    server.argv = [a if not a.startswith("--port=") else f"--port={previous.port}"
                   for a in server.argv]
    server.log_path = previous.workdir / f"server-{previous.port}-restart.log"
    server.start(wait=False)
    wait_spec_ready(server, Spec(base=spec.base))
    return server
