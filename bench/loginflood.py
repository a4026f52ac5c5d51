"""/api/status latency while 50 wrong-password logins are in flight.

The flood is a closed loop of ``POST /login`` with a wrong password (both servers are
configured with the same argon2id password hash, :func:`bench.servers.password_hash`: stock
verifies on its event loop, hardened in its argon2 pool behind its login throttle and rate
limit), each carrying a valid ``_xsrf`` cookie and form field (taken once from ``GET /login``)
and a same-origin ``Origin``/``Referer``, as a browser would send. While it runs, a separate
measurer sends ``GET /api/status`` on one keep-alive connection every ``interval`` seconds and
records each latency. The same measurer without the flood gives the baseline.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from dataclasses import asdict, dataclass

import requests

from bench.loadgen import Request, _percentile, finish_load, start_load
from bench.servers import Server

WRONG_PASSWORD = "not-the-password-0123456789"
MAX_PROBES = 5_000


@dataclass
class FloodResult:
    baseline_p50_ms: float
    baseline_p99_ms: float
    baseline_probes: int
    flood_p50_ms: float
    flood_p99_ms: float
    flood_max_ms: float
    flood_probes: int
    probe_errors: int
    login_status: int
    login_answers: dict[str, int]
    logins: int
    logins_per_s: float
    login_p50_ms: float
    login_p99_ms: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def login_request(server: Server) -> tuple[Request, int]:
    """The flood's request, and the status one such login gets (checked before the flood)."""
    s = requests.Session()
    r = s.get(server.url + "/login", timeout=30)
    r.raise_for_status()
    xsrf = s.cookies.get("_xsrf")
    if not xsrf:
        raise RuntimeError(f"{server.kind}: GET /login set no _xsrf cookie")
    body = urllib.parse.urlencode({"_xsrf": xsrf, "password": WRONG_PASSWORD}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"_xsrf={xsrf}",
        "Origin": server.origin,
        "Referer": server.url + "/login",
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    }
    check = requests.post(
        server.url + "/login", data=body, headers=headers, allow_redirects=False, timeout=30
    )
    if check.is_redirect:  # jupyter_server redirects only after a successful login
        raise RuntimeError(f"{server.kind}: a wrong password was accepted by POST /login")
    return Request("POST", server.url + "/login", headers, body), check.status_code


def probe(server: Server, duration: float, interval: float) -> tuple[list[float], int]:
    """GET /api/status on one keep-alive connection, one request every ``interval`` s."""
    host, port = server.url.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = server.auth()
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration
    try:
        while time.monotonic() < deadline and len(latencies) + errors < MAX_PROBES:
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/api/status", headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors += 1
                else:
                    latencies.append(time.perf_counter() - t0)
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
            time.sleep(interval)
    finally:
        conn.close()
    latencies.sort()
    return latencies, errors


def run_flood(
    server: Server,
    *,
    concurrency: int = 50,
    baseline_s: float = 3.0,
    flood_s: float = 6.0,
    ramp_s: float = 1.0,
    interval: float = 0.01,
    client_cpus: set[int] | None = None,
    tool: str = "auto",
    prepared: tuple[Request, int] | None = None,
) -> FloodResult:
    """``prepared``: the result of :func:`login_request`, taken before an earlier flood spent
    this client's unauthenticated budget (hardened-server would answer GET /login with 429)."""
    req, status = prepared or login_request(server)
    base, _ = probe(server, baseline_s, interval)
    handle = start_load(req, concurrency, flood_s, cpus=client_cpus, tool=tool, count_statuses=True)
    time.sleep(ramp_s)
    during, errors = probe(server, max(0.5, flood_s - ramp_s - 0.5), interval)
    flood = finish_load(handle, timeout=flood_s + 90)
    ms = 1000.0
    return FloodResult(
        baseline_p50_ms=_percentile(base, 50) * ms,
        baseline_p99_ms=_percentile(base, 99) * ms,
        baseline_probes=len(base),
        flood_p50_ms=_percentile(during, 50) * ms,
        flood_p99_ms=_percentile(during, 99) * ms,
        flood_max_ms=(during[-1] if during else float("nan")) * ms,
        flood_probes=len(during),
        probe_errors=errors,
        login_status=status,
        login_answers=flood.statuses or {},
        logins=flood.requests,
        logins_per_s=flood.rps,
        login_p50_ms=flood.p50_ms,
        login_p99_ms=flood.p99_ms,
    )
