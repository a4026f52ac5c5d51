"""Where the time goes: stock and hardened under cProfile, the same load on each, per request.

``python -m bench.profile [--only status,save] [--duration 3]`` prints markdown; ``bench.run
--profile`` puts the same section into BENCHMARKS.md. For every endpoint: CPU time per request
in the server process (profiled, so inflated by cProfile's overhead: compare the two servers,
not with the unprofiled tables), the functions whose own time per request grew most from stock
to hardened, and hardened_server's own functions (cumulative).
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import fixtures
from bench.endpoints import Endpoint, endpoints
from bench.kernelws import run_ws
from bench.loadgen import Request, run_load
from bench.loginflood import login_request
from bench.servers import HARDENED, STOCK, Server, new_token

TOP = 8
_IDLE = frozenset(
    {"<method 'poll' of 'select.epoll' objects>", "<method 'select' of 'select.epoll' objects>"}
)


def _dump(server: Server, dest: Path, timeout: float = 30) -> None:
    """Ask the profiled server for its stats (SIGUSR2) and move them to ``dest``."""
    assert server.profile_out is not None
    server.profile_out.unlink(missing_ok=True)
    os.kill(server.pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.profile_out.exists():
            time.sleep(0.3)  # let the write finish
            server.profile_out.rename(dest)
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server.kind}: no profile written")


def _key(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    parts = Path(filename).parts
    for anchor in ("site-packages", "hardened_server", "bench"):
        if anchor in parts:
            i = parts.index(anchor)
            rel = "/".join(parts[i + 1 :] if anchor == "site-packages" else parts[i:])
            return f"{rel}:{line}({name})"
    return f"{Path(filename).name}:{line}({name})"


def _per_request(prof: Path, n: int) -> tuple[float, dict[str, float], dict[str, float]]:
    """(total µs/request, own µs/request per function, cumulative µs/request per function)."""
    st = pstats.Stats(str(prof))
    own: dict[str, float] = {}
    cum: dict[str, float] = {}
    idle = 0.0
    for func, (_cc, _nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        k = _key(func)
        if k in _IDLE:  # waiting for the next event is not work
            idle += tt
            continue
        own[k] = own.get(k, 0.0) + tt * 1e6 / n
        cum[k] = max(cum.get(k, 0.0), ct * 1e6 / n)
    return (st.total_tt - idle) * 1e6 / n, own, cum  # type: ignore[attr-defined]


def _load(server: Server, ep: Endpoint | str, duration: float, kernel: str | None) -> int:
    if ep == "login":
        req, _ = login_request(server)
        return run_load(req, 10, duration).requests
    assert isinstance(ep, Endpoint)
    if ep.kind == "ws":
        res = run_ws(server.url, kernel or "", server.token, duration, quickack=ep.quickack)
        return res.requests
    headers = {**server.auth(), **ep.headers(server)}
    return run_load(Request(ep.method, server.url + ep.path, headers, ep.body), ep.connections,
                    duration).requests  # fmt: skip


def profile(
    only: list[str], duration: float, work: Path, patch: Path | None = None
) -> dict[str, Any]:
    eps: list[Endpoint | str] = [ep for ep in endpoints() if not only or ep.name in only]
    if not only or "login" in only:
        eps.append("login")
    servers: dict[str, Server] = {}
    kernels: dict[str, str] = {}
    out: dict[str, Any] = {}
    try:
        for kind in (STOCK, HARDENED):
            root = work / kind / "root"
            fixtures.populate(root)
            servers[kind] = Server(
                kind,
                work / kind,
                new_token(),
                root,
                profile_out=work / f"{kind}.prof",
                config_py=patch if kind == HARDENED else None,
            ).start()
            if any(isinstance(e, Endpoint) and e.kind == "ws" for e in eps):
                kernels[kind] = servers[kind].start_kernel()
        for ep in eps:
            name = ep if isinstance(ep, str) else ep.name
            per: dict[str, Any] = {}
            for kind, server in servers.items():
                _load(server, ep, 1.0, kernels.get(kind))  # warm
                _dump(server, work / "discard.prof")
                n = _load(server, ep, duration, kernels.get(kind))
                dest = work / f"{name}-{kind}.prof"
                _dump(server, dest)
                total, own, cum = _per_request(dest, max(n, 1))
                per[kind] = {"requests": n, "total_us": total, "own": own, "cum": cum}
            out[name] = per
    finally:
        for kind, kid in kernels.items():
            servers[kind].shutdown_kernel(kid)
        for s in servers.values():
            s.stop()
    return out


def render(prof: dict[str, Any]) -> str:
    lines = [
        "| endpoint | stock µs/request | hardened µs/request | hardened minus stock |",
        "|---|---:|---:|---:|",
    ]
    details: list[str] = []
    for name, per in prof.items():
        s, h = per[STOCK], per[HARDENED]
        lines.append(f"| {name} | {s['total_us']:,.0f} | {h['total_us']:,.0f} "
                     f"| {h['total_us'] - s['total_us']:+,.0f} |")  # fmt: skip
        grew = sorted(
            ((h["own"].get(k, 0.0) - s["own"].get(k, 0.0), k) for k in h["own"]),
            reverse=True,
        )[:TOP]
        shrank = sorted(
            ((h["own"].get(k, 0.0) - s["own"].get(k, 0.0), k) for k in s["own"]),
        )[:3]
        ours = sorted(
            ((v, k) for k, v in h["cum"].items() if k.startswith("hardened_server/")),
            reverse=True,
        )[:TOP]
        top = sorted(((v, k) for k, v in h["own"].items()), reverse=True)[:TOP]
        details += [f"**{name}**: hardened, largest own time per request:", ""]
        details += [f"- {v:,.1f} µs `{k}`" for v, k in top]
        details += ["", f"own time per request, hardened minus stock (top {TOP}):", ""]
        details += [f"- {d:+,.1f} µs `{k}`" for d, k in grew if d > 0.5]
        details += ["", "largest savings:", ""]
        details += [f"- {d:+,.1f} µs `{k}`" for d, k in shrank if d < -0.5]
        details += ["", "hardened_server functions, cumulative µs per request:", ""]
        details += [f"- {v:,.1f} µs `{k}`" for v, k in ours]
        details.append("")
    return "\n".join([*lines, "", *details])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--only", default="", help="endpoint names, 'login' for wrong logins")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument(
        "--hardened-patch",
        type=Path,
        default=None,
        help="a jupyter_server_config.py what-if patch applied to the hardened server (what-if)",
    )
    args = p.parse_args(argv)
    only = [x for x in args.only.split(",") if x]
    with tempfile.TemporaryDirectory(prefix="hardened-profile-") as tmp:
        result = profile(only, args.duration, Path(tmp), args.hardened_patch)
    sys.stdout.write(render(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
