"""Small helpers shared by the benchmark modules: ports, isolated Jupyter environments, /proc."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def isolated_env(base: Path, **extra: str) -> dict[str, str]:
    """Private JUPYTER_CONFIG/RUNTIME/DATA dirs (as tests/support/server.py does): a developer's own
    configuration never leaks in; the installed packages' extension config still loads."""
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
    """jupyter_server (and so hardened-server) refuses to run as root without it."""
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a process from /proc/<pid>/status (psutil is not guaranteed)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (kernels started by a server), from /proc."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, client CPUs): on a machine with two or more CPUs the server under test gets
    the last one to itself and every client (load generator, kernel, measurer) the others, so
    that the two do not steal each other's time slices. ``(None, None)``: no pinning."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)


def _first(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1).strip() if m else None


def machine_info() -> dict[str, str]:
    import jupyter_server
    import tornado

    info: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    info["nproc"] = str(os.cpu_count())
    with contextlib.suppress(AttributeError):
        info["usable CPUs"] = str(len(os.sched_getaffinity(0)))
    info["CPU model"] = _first(r"^model name\s*:\s*(.*)$", cpuinfo) or platform.processor() or "?"
    mhz = _first(r"^cpu MHz\s*:\s*(.*)$", cpuinfo)
    if mhz:
        info["CPU MHz (as reported)"] = mhz
    mem_kb = _first(r"^MemTotal:\s*(\d+)", meminfo)
    if mem_kb:
        info["memory"] = f"{int(mem_kb) / 1024 / 1024:.1f} GiB"
    info["kernel"] = f"{platform.system()} {platform.release()}"
    info["Python"] = sys.version.split()[0] + f" ({platform.python_implementation()})"
    info["tornado"] = tornado.version
    info["jupyter_server"] = jupyter_server.__version__
    for mod in ("jupyterlab", "ipykernel", "hardened_server"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = "not installed"
    wrk = shutil.which("wrk")
    if wrk:
        proc = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        info["wrk"] = (proc.stdout + proc.stderr).split("Copyright")[0].strip() or wrk
    else:
        info["wrk"] = "not installed (Python load generator)"
    return info


def _cpu_times() -> tuple[int, int]:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]), idle


def background_busy(interval: float = 0.25) -> float | None:
    """Fraction of all CPUs busy over ``interval`` s, sampled while our servers are idle: the
    load other processes put on the machine (0.0-1.0), ``None`` without /proc/stat."""
    import time

    try:
        total0, idle0 = _cpu_times()
        time.sleep(interval)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return (total - (idle1 - idle0)) / total if total > 0 else None


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def tree_state() -> dict[str, str]:
    """Which code was measured: HEAD and how far the working tree is from it (read-only git)."""

    def git(*args: str) -> str:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    head = git("log", "-1", "--format=%h %s")
    changed = git("status", "--porcelain", "--", "hardened_server")
    lines = [line for line in changed.splitlines() if line.strip()]
    return {
        "HEAD": head or "?",
        "hardened_server/ changes not committed": (
            f"{len(lines)} files (modified or new): results describe the working tree"
            if lines
            else "none"
        ),
    }


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children), in seconds."""
    return _proc_cpu_ticks(pid) / os.sysconf("SC_CLK_TCK")


def _proc_cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15 of stat)


def _tree(pids: list[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children_of(pid))
    return seen


class Interference:
    """How much CPU *other* processes took while a run was going on: all CPU time on the
    machine (/proc/stat) minus what the servers (and their kernels) and this process with its
    reaped children (wrk) used, as a fraction of all CPUs. ``None`` without /proc."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids
        try:
            self.hz = os.sysconf("SC_CLK_TCK")
            self.total0, self.idle0 = _cpu_times()
        except (OSError, ValueError, IndexError):
            self.total0 = -1
            return
        self.ours0 = self._ours()

    def _ours(self) -> float:
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        servers = sum(_proc_cpu_ticks(p) for p in _tree(self.server_pids)) / self.hz
        return own + servers

    def stop(self) -> float | None:
        if self.total0 < 0:
            return None
        try:
            total1, idle1 = _cpu_times()
        except (OSError, ValueError, IndexError):
            return None
        total = total1 - self.total0
        if total <= 0:
            return None
        busy_s = (total - (idle1 - self.idle0)) / self.hz
        ours = self._ours() - self.ours0
        return max(0.0, busy_s - ours) / (total / self.hz)
