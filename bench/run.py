"""``make bench``: hardened-server, stock jupyter_server and a bare tornado handler, side by side.

Steps (each bounded in time):

1. the policy microbenchmarks (``bench/test_micro.py`` under pytest-benchmark), first, while the
   machine is quiet;
2. three servers on 127.0.0.1 with identical root directories and isolated Jupyter dirs; the
   bare one replays the bytes stock answered (captured at start-up); idle RSS after settling;
3. a correctness probe of every endpoint on every server (a 403 is not a fast answer), a kernel
   per Jupyter server, a short warm-up;
4. ``reps`` repetitions of every endpoint on every server, in alternating order (S H B, then
   B H S, ...) so that drift and ordering cancel in the ratios;
5. the login flood on stock and hardened (alternating), peak RSS (VmHWM), then BENCHMARKS.md.

Run ``python -m bench.run --help`` for the knobs; ``--quick`` is a 1-minute smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench import fixtures
from bench.common import (
    REPO,
    Interference,
    background_busy,
    children_of,
    cpu_plan,
    loadavg,
    machine_info,
    pin,
    process_cpu_seconds,
    tree_state,
)
from bench.endpoints import Endpoint, endpoints
from bench.kernelws import run_ws
from bench.loadgen import LoadResult, Request, have_wrk, run_load
from bench.loginflood import login_request, run_flood
from bench.report import write_report
from bench.servers import BARE, HARDENED, STOCK, Server, capture, new_token

SETTLE_S = 3.0

#: Hardened with the accountability records off (issue #20: ``audit.activity = false``),
#: measured on the kernel round trips only: the recording-cost row (target: within 5 %).
NORECORD = HARDENED + "+norecord"


def norecord_config(work: Path) -> Path:
    """A jupyter_server_config.py layering ``audit.activity = false`` over the default."""
    policy = work / "norecord.toml"
    policy.write_text("[audit]\nactivity = false\n")
    config = work / "norecord_config.py"
    config.write_text(f"c.HardenedServerApp.policy_files = [{str(policy)!r}]\n")
    return config


def measured_on(label: str, ep: Endpoint) -> bool:
    """The recording-off server runs the kernel round trips only (it changes nothing else)."""
    return label != NORECORD or ep.kind == "ws"


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def run_micro(out_json: Path, max_time: float) -> dict[str, Any] | None:
    """pytest-benchmark over the pure policy chain; ``None`` if pytest-benchmark is missing."""
    try:
        import pytest_benchmark  # noqa: F401
    except ImportError:
        log("pytest-benchmark is not installed: skipping the microbenchmarks (bench/setup.sh)")
        return None
    argv = [
        sys.executable, "-m", "pytest", str(REPO / "bench" / "test_micro.py"),
        "-q", "-p", "no:cacheprovider", "--benchmark-only",
        f"--benchmark-json={out_json}", f"--benchmark-max-time={max_time}",
        "--benchmark-min-rounds=20", "--benchmark-columns=min,median,mean,ops,rounds",
        "--benchmark-sort=name",
    ]  # fmt: skip
    log("microbenchmarks: " + " ".join(argv[3:5]))
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    sys.stderr.write(proc.stdout[-6000:])
    if proc.returncode != 0 or not out_json.exists():
        log(f"microbenchmarks failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return {"error": f"pytest exit {proc.returncode}", "output": proc.stdout[-3000:]}
    data = json.loads(out_json.read_text())
    skipped = [
        line.strip() for line in proc.stdout.splitlines() if "SKIP" in line or "skipped" in line
    ]
    return {"benchmarks": data.get("benchmarks", []), "notes": skipped}


def wait_quiet(limit: float, threshold: float = 0.3) -> tuple[float, float | None]:
    """Wait (at most ``limit`` s) until two 1-second samples in a row show the CPUs less than
    ``threshold`` busy; returns (seconds waited, last sample)."""
    start = time.monotonic()
    calm = 0
    busy = background_busy(1.0)
    while busy is not None and time.monotonic() - start < limit:
        calm = calm + 1 if busy < threshold else 0
        if calm >= 2:
            break
        busy = background_busy(1.0)
    return time.monotonic() - start, busy


def http_request(server: Server, ep: Endpoint) -> Request:
    headers = {**server.auth(), **ep.headers(server)}
    return Request(ep.method, server.url + ep.path, headers, ep.body)


def probe_endpoint(server: Server, ep: Endpoint, kernel_id: str | None) -> str | None:
    """``None`` if the endpoint answers as it should on ``server``, else what went wrong."""
    if ep.kind == "ws":
        if server.kind != BARE and kernel_id is None:
            return "no kernel"
        try:
            res = run_ws(server.url, kernel_id or "bare", server.token, 0.2, warmup=2,
                         quickack=ep.quickack)  # fmt: skip
        except Exception as exc:
            return f"websocket failed: {exc!r}"
        return None if res.requests and not res.errors else "no execute_reply"
    r = requests.request(
        ep.method, server.url + ep.path, headers={**server.auth(), **ep.headers(server)},
        data=ep.body, timeout=60, allow_redirects=False,
    )  # fmt: skip
    if r.status_code >= 300:
        return f"HTTP {r.status_code}: {r.text[:200]!r}"
    return None


def measure(
    server: Server, ep: Endpoint, duration: float, kernel_id: str | None, args: Any, cpus: Any
) -> LoadResult:
    if ep.kind == "ws":
        return run_ws(server.url, kernel_id or "bare", server.token, duration,
                      quickack=ep.quickack)  # fmt: skip
    return run_load(http_request(server, ep), ep.connections, duration, cpus=cpus, tool=args.tool)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=4.0, help="seconds per measured run")
    p.add_argument("--reps", type=int, default=3, help="alternating repetitions per endpoint")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=45.0,
        metavar="SECONDS",
        help="before measuring, wait up to this long for other processes to leave "
        "the CPUs under 30 %% busy (0: do not wait)",
    )
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per pair")
    p.add_argument("--only", default="", help="comma-separated endpoint names (default: all)")
    p.add_argument(
        "--tool",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="HTTP load generator (auto: wrk if installed)",
    )
    p.add_argument("--flood-concurrency", type=int, default=50)
    p.add_argument("--flood-seconds", type=float, default=6.0)
    p.add_argument("--flood-reps", type=int, default=2)
    p.add_argument(
        "--no-flood", action="store_const", const=0, dest="flood_reps", help="skip the login flood"
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="also run hardened with FILE as its jupyter_server_config.py (a what-if "
        "patch), reported as hardened+NAME; repeatable",
    )
    p.add_argument("--no-micro", action="store_true")
    p.add_argument(
        "--no-recording-row",
        action="store_true",
        help="skip the kernel round trip with accountability recording off (audit.activity)",
    )
    p.add_argument(
        "--micro-max-time",
        type=float,
        default=0.5,
        help="pytest-benchmark --benchmark-max-time per microbenchmark",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin server and clients to CPUs")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 1 s runs, 1 repetition, short flood"
    )
    p.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--json", type=Path, default=None, help="also keep the raw results here")
    p.add_argument(
        "--notes",
        type=Path,
        default=None,
        help="hand-written findings appended to the report verbatim (default: the findings "
        "section of the report being replaced, which is their only home; /dev/null drops them)",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="do not measure: re-render the report from a saved --json",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.reps, args.warmup = 1.0, 1, 0.5
        args.flood_seconds, args.micro_max_time = 3.0, 0.1
        args.flood_reps = min(args.flood_reps, 1)
    return args


def parse_variant(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not Path(path).is_file():
        raise SystemExit(f"--variant wants NAME=FILE with an existing FILE, not {spec!r}")
    return name, Path(path).resolve()


_OUTPUT_ONLY = ("--json", "--out", "--notes", "--keep")


def reproduce_command(argv: list[str]) -> str:
    """``make bench`` plus the arguments that change what is measured (not where it goes)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _OUTPUT_ONLY:
            skip = "=" not in arg and name != "--keep"
            continue
        kept.append(arg)
    extra = " ".join(kept)
    return "make bench" + (f" BENCH_ARGS='{extra}'" if extra else "")


def main(argv: list[str] | None = None) -> int:
    raw_argv = sys.argv[1:] if argv is None else argv
    args = parse_args(raw_argv)
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        write_report(results, args.out, args.notes)
        log(f"wrote {args.out}")
        return 0

    t_start = time.monotonic()
    machine = machine_info()  # before pinning this process to the client CPUs
    server_cpus, client_cpus = (None, None) if args.no_pin else cpu_plan()
    if client_cpus:
        pin(os.getpid(), client_cpus)  # this process and the load generators it starts
    work = Path(tempfile.mkdtemp(prefix="hardened-bench-"))
    results: dict[str, Any] = {
        "machine": machine,
        "tree": tree_state(),
        "config": {
            "duration_s": args.duration,
            "reps": args.reps,
            "warmup_s": args.warmup,
            "tool": "wrk"
            if args.tool == "wrk" or (args.tool == "auto" and have_wrk())
            else "python-asyncio",
            "pinning": {"server": sorted(server_cpus or []), "clients": sorted(client_cpus or [])},
            "reproduce": reproduce_command(raw_argv),
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_start": loadavg(),
    }
    log(f"work dir {work}; pinning server={server_cpus} clients={client_cpus}")

    if args.wait_quiet > 0:
        waited, busy = wait_quiet(args.wait_quiet)
        results["wait_quiet"] = {"waited_s": waited, "busy": busy}
        log(f"machine {100 * (busy or 0):.0f} % busy after waiting {waited:.0f}s")

    if not args.no_micro:
        results["micro"] = run_micro(work / "micro.json", args.micro_max_time)

    eps = endpoints()
    if args.only:
        wanted = set(args.only.split(","))
        eps = [ep for ep in eps if ep.name in wanted]
    results["endpoints"] = {ep.name: {"label": ep.label, "connections": ep.connections}
                            for ep in eps}  # fmt: skip

    servers: dict[str, Server] = {}
    kernels: dict[str, str] = {}
    variants = [parse_variant(v) for v in args.variant]
    try:
        jupyter_specs = [(STOCK, STOCK, None), (HARDENED, HARDENED, None)]
        jupyter_specs += [(f"{HARDENED}+{name}", HARDENED, path) for name, path in variants]
        if not args.no_recording_row and any(ep.kind == "ws" for ep in eps):
            work.mkdir(parents=True, exist_ok=True)
            jupyter_specs.append((NORECORD, HARDENED, norecord_config(work)))
        for label, kind, patch in jupyter_specs:
            root = work / label / "root"
            fixtures.populate(root)
            t0 = time.monotonic()
            servers[label] = Server(kind, work / label, new_token(), root, cpus=server_cpus,
                                    label=label, config_py=patch).start()  # fmt: skip
            log(f"{label} ready in {time.monotonic() - t0:.1f}s on {servers[label].url}")
        caps = capture(servers[STOCK], eps, work / "captures")
        servers[BARE] = Server(BARE, work / BARE, new_token(), work / BARE, cpus=server_cpus,
                               captures=caps).start()  # fmt: skip
        order = [label for label, _, _ in jupyter_specs] + [BARE]
        results["servers"] = order
        results["variants"] = {f"{HARDENED}+{n}": str(p) for n, p in variants}
        if NORECORD in servers:
            results["variants"][NORECORD] = "audit.activity = false (kernel round trips only)"
        time.sleep(SETTLE_S)
        results["memory"] = {k: {"idle_rss_kb": s.rss().get("VmRSS")} for k, s in servers.items()}
        results["startup_argv"] = {k: " ".join(s.argv) for k, s in servers.items()}

        if any(ep.kind == "ws" for ep in eps):
            jupyter = [label for label, _, _ in jupyter_specs]
            for label in jupyter:
                kernels[label] = servers[label].start_kernel()
            time.sleep(1.0)
            for label in jupyter:
                for child in children_of(servers[label].pid):  # kernels run with the clients
                    pin(child, client_cpus)

        broken: dict[str, dict[str, str]] = {}
        for ep in eps:
            for label in (x for x in order if measured_on(x, ep)):
                problem = probe_endpoint(servers[label], ep, kernels.get(label))
                if problem:
                    broken.setdefault(ep.name, {})[label] = problem
                    log(f"PROBE FAILED {ep.name} on {label}: {problem}")
        results["broken"] = broken

        if args.warmup > 0:
            log("warm-up")
            for ep in eps:
                for label in order:
                    if label not in broken.get(ep.name, {}) and measured_on(label, ep):
                        measure(servers[label], ep, args.warmup, kernels.get(label), args,
                                client_cpus)  # fmt: skip

        runs: dict[str, dict[str, list[dict[str, Any]]]] = {ep.name: {} for ep in eps}
        for rep in range(args.reps):
            rep_order = order if rep % 2 == 0 else order[::-1]
            for ep in eps:
                for label in rep_order:
                    if label in broken.get(ep.name, {}) or not measured_on(label, ep):
                        continue
                    others = Interference([s.pid for s in servers.values()])
                    cpu0 = process_cpu_seconds(servers[label].pid)
                    res = measure(servers[label], ep, args.duration, kernels.get(label), args,
                                  client_cpus)  # fmt: skip
                    cpu = process_cpu_seconds(servers[label].pid) - cpu0
                    busy = others.stop()
                    runs[ep.name].setdefault(label, []).append(
                        {
                            "rep": rep,
                            "background_busy": busy,
                            "server_cpu_us": cpu * 1e6 / res.requests if res.requests else None,
                            **res.as_dict(),
                        }
                    )
                    log(f"rep {rep + 1}/{args.reps} {ep.name:9s} {label:10s} "
                        f"{res.rps:9.1f} req/s p50 {res.p50_ms:8.2f} ms "
                        f"p99 {res.p99_ms:8.2f} ms err {res.errors} "
                        f"cpu/req {cpu * 1e6 / max(res.requests, 1):8.0f} us "
                        f"others {100 * (busy or 0):.0f}%")  # fmt: skip
        results["runs"] = runs

        if args.flood_reps > 0:
            flood: dict[str, list[dict[str, Any]]] = {}
            flooded = [label for label in order if label not in (BARE, NORECORD)]
            prepared = {label: login_request(servers[label]) for label in flooded}
            for rep in range(args.flood_reps):
                for label in flooded if rep % 2 == 0 else flooded[::-1]:
                    res = run_flood(servers[label], concurrency=args.flood_concurrency,
                                    flood_s=args.flood_seconds, client_cpus=client_cpus,
                                    tool=args.tool, prepared=prepared[label])  # fmt: skip
                    flood.setdefault(label, []).append(res.as_dict())
                    log(f"flood {label}: status p99 {res.baseline_p99_ms:.1f} -> "
                        f"{res.flood_p99_ms:.1f} ms; {res.logins_per_s:.0f} logins/s "
                        f"answers {res.login_answers}")  # fmt: skip
            results["flood"] = {"concurrency": args.flood_concurrency,
                                "seconds": args.flood_seconds, "runs": flood}  # fmt: skip

        for label, srv in servers.items():
            results["memory"][label]["peak_rss_kb"] = srv.rss().get("VmHWM")
        results["memory_note"] = "server process only; kernels are separate processes"
    finally:
        for kind, kid in kernels.items():
            servers[kind].shutdown_kernel(kid)
        for s in servers.values():
            s.stop()
        if args.keep:
            log(f"kept {work}")

    results["elapsed_s"] = time.monotonic() - t_start
    results["loadavg_end"] = loadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    write_report(results, args.out, args.notes)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {args.out} in {results['elapsed_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
