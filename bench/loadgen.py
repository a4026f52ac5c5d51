"""HTTP load: wrk when installed, else a bounded-concurrency asyncio client. Same result shape.

Both are closed loops: ``connections`` keep-alive connections, each sending its next request as
soon as the previous answer is in, for ``duration`` seconds. Latency is measured per request by
the client; percentiles are over every request of the run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import REPO, pin

MAX_PY_REQUESTS = 2_000_000  # hard bound on the Python client's loop, whatever the duration


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors, timeouts and non-2xx/3xx answers
    tool: str
    statuses: dict[str, int] | None = None  # answers by HTTP status, when counted

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Request:
    method: str
    url: str  # http://127.0.0.1:port/path
    headers: dict[str, str]
    body: bytes | None = None


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    if any(ord(c) < 32 or ord(c) > 126 for c in text):
        raise ValueError(f"not a printable ASCII header/path value: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  for _, t in ipairs(bench_threads) do
    local c = t:get("bench_counts")
    if c then
      for status, n in pairs(c) do
        table.insert(parts, string.format('"%s": %d', status, n))
      end
    end
  end
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d, '
    .. '"statuses": {%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, table.concat(parts, ", ")))
end
"""
_WRK_THREADS = """
bench_threads = {}
setup = function(thread) table.insert(bench_threads, thread) end
"""
# Counting answers by status needs wrk's response() hook, which makes wrk parse every
# response in Lua: only used where the statuses are the point (the login flood).
_WRK_COUNT = """
bench_counts = {}
response = function(status, headers, body)
  bench_counts[status] = (bench_counts[status] or 0) + 1
end
"""


def _wrk_script(req: Request, workdir: Path, *, count_statuses: bool = False) -> Path:
    lines = [f"wrk.method = {_lua_string(req.method)}", _WRK_THREADS]
    if count_statuses:
        lines.append(_WRK_COUNT)
    for name, value in req.headers.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    if req.body is not None:
        body_file = workdir / "wrk-body.bin"
        body_file.write_bytes(req.body)
        lines += [
            f"local f = assert(io.open({_lua_string(str(body_file))}, 'rb'))",
            "wrk.body = f:read('*all')",
            "f:close()",
        ]
    lines.append(_WRK_DONE)
    script = workdir / "wrk-script.lua"
    script.write_text("\n".join(lines))
    return script


def run_wrk(
    req: Request, connections: int, duration: float, cpus: set[int] | None = None
) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = _wrk_script(req, Path(tmp))
        argv = [
            "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--timeout", "30s", "-s", str(script), req.url,
        ]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pin(proc.pid, cpus)
        out, err = proc.communicate(timeout=duration + 60)
    return _parse(out, err, "wrk")


# -- the fallback: asyncio, HTTP/1.1 keep-alive, Content-Length and chunked bodies ---------------


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def _raw_request(req: Request, host: str, path: str) -> bytes:
    head = [f"{req.method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in req.headers.items()]
    body = req.body or b""
    if req.body is not None or req.method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length = None
    chunked = False
    close = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and "close" in value.lower():
            close = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    if close:
        raise ConnectionResetError("server closed the connection")
    return status


async def _py_load(req: Request, connections: int, duration: float) -> LoadResult:
    rest = req.url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    raw = _raw_request(req, hostport, "/" + path)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    start = time.perf_counter()
    deadline = start + duration

    async def worker() -> None:
        nonlocal errors
        reader = writer = None
        while time.perf_counter() < deadline and len(latencies) < MAX_PY_REQUESTS:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, int(port))
                t0 = time.perf_counter()
                writer.write(raw)
                status = await asyncio.wait_for(_read_response(reader), 30)  # type: ignore[arg-type]
                latencies.append(time.perf_counter() - t0)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status >= 400:
                    errors += 1
            except (TimeoutError, OSError, ConnectionError, ValueError):
                errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        duration_s=elapsed,
        rps=len(latencies) / elapsed if elapsed else 0.0,
        p50_ms=_percentile(latencies, 50) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000,
        errors=errors,
        tool="python-asyncio",
        statuses=statuses,
    )


def run_python(req: Request, connections: int, duration: float) -> LoadResult:
    return asyncio.run(_py_load(req, connections, duration))


def start_load(
    req: Request,
    connections: int,
    duration: float,
    *,
    cpus: set[int] | None,
    tool: str = "auto",
    count_statuses: bool = False,
) -> tuple[subprocess.Popen[str], Path]:
    """Start a load run in the background (a separate process either way, so that it never
    shares an event loop or the GIL with a measurer); :func:`finish_load` collects it."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-bg-"))
    if tool == "wrk" or (tool == "auto" and have_wrk()):
        script = _wrk_script(req, tmp, count_statuses=count_statuses)
        argv = [
            "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--timeout", "30s", "-s", str(script), req.url,
        ]  # fmt: skip
    else:
        spec = tmp / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "method": req.method,
                    "url": req.url,
                    "headers": req.headers,
                    "body": (req.body or b"").decode("latin-1") if req.body is not None else None,
                    "connections": connections,
                    "duration": duration,
                }
            )
        )
        argv = [sys.executable, "-m", "bench.loadgen", str(spec)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    pin(proc.pid, cpus)
    return proc, tmp


def finish_load(handle: tuple[subprocess.Popen[str], Path], timeout: float) -> LoadResult:
    proc, tmp = handle
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _parse(out, err, "wrk" if proc.args[0] == "wrk" else "python-asyncio")  # type: ignore[index]


def _parse(out: str, err: str, tool: str) -> LoadResult:
    for line in out.splitlines():
        if line.startswith("BENCHJSON "):
            data = json.loads(line[len("BENCHJSON ") :])
            secs = data["duration_us"] / 1e6
            return LoadResult(
                requests=data["requests"],
                duration_s=secs,
                rps=data["requests"] / secs if secs else 0.0,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                errors=data["errors"],
                tool=tool,
                statuses={str(k): int(v) for k, v in data.get("statuses", {}).items()} or None,
            )
    raise RuntimeError(f"{tool} gave no result:\n{out}\n{err}")


def run_load(
    req: Request,
    connections: int,
    duration: float,
    *,
    cpus: set[int] | None = None,
    tool: str = "auto",
) -> LoadResult:
    if tool == "wrk" or (tool == "auto" and have_wrk()):
        return run_wrk(req, connections, duration, cpus)
    return run_python(req, connections, duration)


def _main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    body = spec["body"].encode("latin-1") if spec["body"] is not None else None
    req = Request(spec["method"], spec["url"], spec["headers"], body)
    res = run_python(req, spec["connections"], spec["duration"])
    sys.stdout.write(
        "BENCHJSON "
        + json.dumps(
            {
                "requests": res.requests,
                "duration_us": int(res.duration_s * 1e6),
                "p50_us": int(res.p50_ms * 1000),
                "p99_us": int(res.p99_ms * 1000),
                "errors": res.errors,
                "statuses": res.statuses or {},
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    _main(sys.argv[1])
