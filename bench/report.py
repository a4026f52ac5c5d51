"""Render the raw results of :mod:`bench.run` as BENCHMARKS.md (also: ``--from-json``)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench.servers import BARE, HARDENED, STOCK

CHAIN_TARGET_US = 30.0
FLOOD_TARGET_MS = 50.0
_TITLES = {STOCK: "stock", HARDENED: "hardened", BARE: "bare tornado"}


def _servers(results: dict[str, Any]) -> list[str]:
    return list(results.get("servers", [STOCK, HARDENED, BARE]))


def _title(label: str) -> str:
    return _TITLES.get(label, label)


def _variants(results: dict[str, Any]) -> list[str]:
    return [s for s in _servers(results) if s.startswith(HARDENED + "+")]


# What each ratio's verdict allows for before calling a difference: the spread of the
# repetitions decides, plus this much (a 2 % difference is not worth a headline).
_SLACK = 0.02
DASH = "\u2013"  # en dash, for ranges and empty cells


def _md(text: str) -> str:
    """Labels such as ``/files/<64 KiB file>`` would otherwise be read as HTML tags."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _fmt(x: float | None, digits: int = 1) -> str:
    if x is None or x != x:  # None or NaN
        return DASH
    return f"{x:,.{digits}f}"


def _spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return DASH
    mid = statistics.median(values)
    if len(values) == 1:
        return _fmt(mid, digits)
    return f"{_fmt(mid, digits)} ({_fmt(min(values), digits)}{DASH}{_fmt(max(values), digits)})"


def _cpus(cpus: list[int]) -> str:
    return ", ".join(str(c) for c in cpus) if cpus else f"{DASH} (not pinned)"


def _pct(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{100 * statistics.median(known):.0f} %" if known else DASH


def _per_rep(runs: dict[str, list[dict[str, Any]]], kind: str, key: str) -> dict[int, float]:
    return {r["rep"]: float(r[key]) for r in runs.get(kind, []) if r.get(key) is not None}


def _ratios(runs: dict[str, list[dict[str, Any]]], num: str, den: str, key: str) -> list[float]:
    a, b = _per_rep(runs, num, key), _per_rep(runs, den, key)
    return [a[r] / b[r] for r in sorted(a) if b.get(r)]


def _verdict(rps_ratios: list[float], cpu_ratios: list[float]) -> str:
    """Only a difference every repetition agrees on (beyond the slack) is called one."""
    worse: list[str] = []
    better: list[str] = []
    if rps_ratios:
        mid = statistics.median(rps_ratios)
        if max(rps_ratios) < 1 - _SLACK:
            worse.append(f"{100 * (1 - mid):.0f} % fewer req/s")
        elif min(rps_ratios) > 1 + _SLACK:
            better.append(f"{100 * (mid - 1):.0f} % more req/s")
    if cpu_ratios:
        mid = statistics.median(cpu_ratios)
        if min(cpu_ratios) > 1 + _SLACK:
            worse.append(f"{100 * (mid - 1):.0f} % more server CPU per request")
        elif max(cpu_ratios) < 1 - _SLACK:
            better.append(f"{100 * (1 - mid):.0f} % less server CPU per request")
    if worse:
        return "**hardened slower: " + ", ".join(worse) + "**"
    if better:
        return "hardened faster: " + ", ".join(better)
    if not rps_ratios:
        return "not measured"
    return "same within the spread of the repetitions"


def _machine(results: dict[str, Any]) -> list[str]:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in results["machine"].items()]
    lines += [f"| code: {k} | {v} |" for k, v in results.get("tree", {}).items()]
    busy = [
        r["background_busy"]
        for per in results.get("runs", {}).values()
        for rs in per.values()
        for r in rs
        if r.get("background_busy") is not None
    ]
    lines.append(
        f"| load average at start / end | {results.get('loadavg_start', '?')} / "
        f"{results.get('loadavg_end', '?')} |"
    )
    wq = results.get("wait_quiet")
    if wq:
        b = wq.get("busy")
        lines.append(
            f"| waited for a quiet machine | {wq['waited_s']:.0f} s, then {100 * b:.0f} % busy |"
            if b is not None
            else f"| waited | {wq['waited_s']:.0f} s |"
        )
    if busy:
        lines.append(
            "| CPU taken by other processes during the runs | "
            f"median {100 * statistics.median(busy):.0f} %, max {100 * max(busy):.0f} % "
            "of all CPUs |"
        )
    return lines


def _noise_note(results: dict[str, Any]) -> list[str]:
    busy = [
        r["background_busy"]
        for per in results.get("runs", {}).values()
        for rs in per.values()
        for r in rs
        if r.get("background_busy") is not None
    ]
    if busy and statistics.median(busy) > 0.15:
        return [
            "",
            f"> **Noise warning.** Other processes kept this machine "
            f"{100 * statistics.median(busy):.0f} % busy (median over the runs; all CPU time "
            "minus the servers', kernels' and load generators'). Absolute numbers are lower and "
            "the spread wider than on a quiet machine; "
            "the alternating order keeps the *ratios* fair, but a difference smaller than the "
            "spread in the ratio table is not a finding.",
        ]
    return []


def _throughput_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| endpoint | server | req/s | p50 ms | p99 ms | server CPU µs/req | errors "
        "| others' CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, meta in results["endpoints"].items():
        runs = results["runs"].get(name, {})
        for kind in _servers(results):
            label = _md(meta["label"]) if kind == STOCK else ""
            if kind in results.get("broken", {}).get(name, {}):
                lines.append(f"| {label} | {_title(kind)} | not measured: "
                             f"{results['broken'][name][kind]} | | | | | |")  # fmt: skip
                continue
            rs = runs.get(kind, [])
            if not rs:
                continue
            lines.append(
                f"| {label} | {_title(kind)} "
                f"| {_spread([r['rps'] for r in rs])} "
                f"| {_spread([r['p50_ms'] for r in rs], 2)} "
                f"| {_spread([r['p99_ms'] for r in rs], 2)} "
                f"| {_spread([r['server_cpu_us'] for r in rs if r.get('server_cpu_us')], 0)} "
                f"| {sum(r['errors'] for r in rs)} "
                f"| {_pct([r.get('background_busy') for r in rs])} |"
            )
    return lines


def _same_or_better(results: dict[str, Any]) -> list[str]:
    out = []
    for name, meta in results.get("endpoints", {}).items():
        runs = results.get("runs", {}).get(name, {})
        rps = _ratios(runs, HARDENED, STOCK, "rps")
        cpu = _ratios(runs, HARDENED, STOCK, "server_cpu_us")
        verdict = _verdict(rps, cpu)
        if not verdict.startswith("**") and verdict != "not measured":
            detail = f"req/s {statistics.median(rps):.2f}"
            if cpu:
                detail += f", CPU/request {statistics.median(cpu):.2f}"
            out.append(f"{_md(meta['label'])} ({detail})")
    return out


def _ratio_table(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    variants = _variants(results)
    lines = [
        "| endpoint | hardened/stock req/s | hardened/stock p99 | hardened/stock CPU per req "
        "| hardened/bare req/s | stock/bare req/s | "
        + "".join(f"{v}/hardened: req/s; CPU per req | " for v in variants)
        + "verdict (hardened vs stock) |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(variants) + "---|",
    ]
    slower: list[str] = []
    for name, meta in results["endpoints"].items():
        runs = results["runs"].get(name, {})
        hs = _ratios(runs, HARDENED, STOCK, "rps")
        hs99 = _ratios(runs, HARDENED, STOCK, "p99_ms")
        hcpu = _ratios(runs, HARDENED, STOCK, "server_cpu_us")
        hb = _ratios(runs, HARDENED, BARE, "rps")
        sb = _ratios(runs, STOCK, BARE, "rps")
        verdict = _verdict(hs, hcpu)
        if verdict.startswith("**"):
            slower.append(
                f"{_md(meta['label'])}: {verdict.strip('*')} "
                f"(req/s ratio {_spread(hs, 3)}, CPU ratio {_spread(hcpu, 3)})"
            )
        vcols = "".join(
            f"{_spread(_ratios(runs, v, HARDENED, 'rps'), 3)}; "
            f"{_spread(_ratios(runs, v, HARDENED, 'server_cpu_us'), 3)} | "
            for v in variants
        )
        lines.append(
            f"| {_md(meta['label'])} | {_spread(hs, 3)} | {_spread(hs99, 3)} | {_spread(hcpu, 3)} "
            f"| {_spread(hb, 3)} "
            f"| {_spread(sb, 3)} | {vcols}{verdict} |"
        )
    return lines, slower


#: bench.run's recording-off server (issue #20); its row compares hardened against it.
NORECORD = HARDENED + "+norecord"
RECORDING_TARGET = 0.95  # recording on keeps at least 95 % of the round trips of off


def _recording_rows(results: dict[str, Any]) -> list[str]:
    """Kernel round trips with the accountability records on (hardened, the default) and off
    (``audit.activity = false``): one row per websocket endpoint."""
    rows = [
        "| endpoint | on/off round trips per s | on/off p50 latency | on/off CPU per round trip "
        "| within 5 %? |",
        "|---|---:|---:|---:|---|",
    ]
    found = False
    for name, meta in results["endpoints"].items():
        runs = results.get("runs", {}).get(name, {})
        if NORECORD not in runs:
            continue
        found = True
        rps = _ratios(runs, HARDENED, NORECORD, "rps")
        p50 = _ratios(runs, HARDENED, NORECORD, "p50_ms")
        cpu = _ratios(runs, HARDENED, NORECORD, "server_cpu_us")
        mid = statistics.median(rps) if rps else None
        verdict = DASH if mid is None else ("yes" if mid >= RECORDING_TARGET else "**no**")
        rows.append(
            f"| {_md(meta['label'])} | {_spread(rps, 3)} | {_spread(p50, 3)} "
            f"| {_spread(cpu, 3)} | {verdict} |"
        )
    return rows if found else []


def _memory_table(results: dict[str, Any]) -> list[str]:
    lines = ["| server | idle RSS (MiB) | peak RSS, VmHWM (MiB) |", "|---|---:|---:|"]
    for kind in _servers(results):
        m = results.get("memory", {}).get(kind)
        if not m:
            continue
        idle = m.get("idle_rss_kb")
        peak = m.get("peak_rss_kb")
        lines.append(
            f"| {_title(kind)} | {_fmt(idle / 1024 if idle else None)} "
            f"| {_fmt(peak / 1024 if peak else None)} |"
        )
    return lines


def _flood_table(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    flood = results.get("flood")
    if not flood:
        return ["(not run)"], []
    lines = [
        "| server | answers to the wrong logins | logins/s | status p99 idle (ms) "
        "| status p50 under flood (ms) | status p99 under flood (ms) | max (ms) "
        "| target p99 < 50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    misses: list[str] = []
    for kind in _servers(results):
        rs = flood["runs"].get(kind, [])
        if not rs:
            continue
        answers: dict[str, int] = {}
        for r in rs:
            for status, n in (r.get("login_answers") or {str(r["login_status"]): 1}).items():
                answers[status] = answers.get(status, 0) + n
        total = sum(answers.values()) or 1
        answered = ", ".join(f"{st}: {100 * n / total:.0f} %" for st, n in sorted(answers.items()))
        p99s = [r["flood_p99_ms"] for r in rs]
        ok = max(p99s) < FLOOD_TARGET_MS
        if kind == HARDENED and not ok:
            misses.append(f"status p99 under a {flood['concurrency']}-login flood is "
                          f"{_spread(p99s)} ms (target < {FLOOD_TARGET_MS:.0f} ms)")  # fmt: skip
        lines.append(
            f"| {_title(kind)} | {answered} "
            f"| {_spread([r['logins_per_s'] for r in rs])} "
            f"| {_spread([r['baseline_p99_ms'] for r in rs], 2)} "
            f"| {_spread([r['flood_p50_ms'] for r in rs], 2)} "
            f"| {_spread(p99s, 2)} | {_spread([r['flood_max_ms'] for r in rs], 2)} "
            f"| {'met' if ok else '**missed**'} |"
        )
    return lines, misses


def _micro_table(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    micro = results.get("micro")
    if micro is None:
        return ["(not run: pytest-benchmark missing or --no-micro)"], []
    if "error" in micro:
        return [f"(failed: {micro['error']})", "", "```", micro.get("output", ""), "```"], []
    lines = [
        "| decision | median µs | mean µs | min µs | calls/s | rounds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    misses: list[str] = []
    by_name = {b["name"]: b for b in micro["benchmarks"]}
    for b in sorted(micro["benchmarks"], key=lambda b: b["name"]):
        st = b["stats"]
        name = b["name"].removeprefix("test_")
        extra = b.get("extra_info", {})
        label = _md(extra.get("label", name))
        lines.append(
            f"| {label} | {_fmt(st['median'] * 1e6, 2)} | {_fmt(st['mean'] * 1e6, 2)} "
            f"| {_fmt(st['min'] * 1e6, 2)} | {_fmt(st['ops'], 0)} | {st['rounds']} |"
        )
        median_us = st["median"] * 1e6
        min_us = st["min"] * 1e6
        base = by_name.get(extra.get("subtract", ""))
        if base is not None:
            median_us -= base["stats"]["median"] * 1e6
            min_us -= base["stats"]["min"] * 1e6
            lines.append(
                f"| ↳ the same, net of the request object | {_fmt(median_us, 2)} "
                f"| {DASH} | {DASH} | {DASH} | {DASH} |"
            )
        if extra.get("chain") and median_us >= CHAIN_TARGET_US:
            what = label.replace("**", "").split(" (")[0]
            net = " net of the request object" if base is not None else ""
            misses.append(
                f"{what}: {median_us:.0f} µs per request{net} "
                f"(median; min {min_us:.0f}; target < {CHAIN_TARGET_US:.0f} µs)"
            )
    for note in micro.get("notes", []):
        if note.startswith("SKIPPED"):
            lines.append(f"| {_md(note.split(': ', 1)[-1])} |" + f" {DASH} |" * 5)
    return lines, misses


def render(results: dict[str, Any], notes: str | None = None) -> str:
    cfg = results["config"]
    thr = _throughput_table(results) if results.get("runs") else ["(no HTTP runs)"]
    ratios, slower = _ratio_table(results) if results.get("runs") else ([], [])
    flood, flood_misses = _flood_table(results)
    micro, micro_misses = _micro_table(results)
    pin = cfg["pinning"]
    out = [
        "# Benchmarks: hardened-server vs stock jupyter_server",
        "",
        "<!-- Generated by `python -m bench.run` (make bench). Do not edit by hand: re-run. -->",
        "",
        f"Run of {results['started']}, {results['elapsed_s']:.0f} s in all. Reproduce with "
        f"`{cfg['reproduce']}` (raw numbers: add `--json FILE`; re-render: `--from-json FILE`).",
        "",
        "## Summary",
        "",
    ]
    if slower or flood_misses or micro_misses:
        out += [f"- {s}" for s in slower + flood_misses + micro_misses]
        fine = _same_or_better(results)
        if fine:
            out.append(
                "- not slower than stock (median hardened/stock ratio): " + "; ".join(fine)
            )
    else:
        out.append("- hardened-server is not measurably slower than stock on any endpoint, the "
                   "login-flood and decision-chain targets are met.")  # fmt: skip
    for name, per in results.get("broken", {}).items():
        for kind, problem in per.items():
            out.append(f"- {name} could not be measured on {kind}: {problem}")
    out += [
        "",
        "## Machine",
        "",
        *_machine(results),
        *_noise_note(results),
        "",
        "## Method",
        "",
        "- Three servers on 127.0.0.1, started once: **stock** (`python -m jupyter_server`), "
        "**hardened** (`python -m hardened_server serve`, shipped default policy) and **bare** "
        "(a tornado `RequestHandler` per endpoint writing the bytes stock answered, captured "
        "at start-up; a websocket handler answering `execute_request` with the five messages "
        "ipykernel sends). Bare is the ceiling for any tornado server on this machine. Stock "
        "and hardened have the same installed extensions (JupyterLab, jupyter-lsp, terminals "
        "where the policy allows), isolated JUPYTER_CONFIG/RUNTIME/DATA dirs and identical "
        "root directories; both authenticate with `Authorization: token …`.",
        f"- Load: `{cfg['tool']}` (closed loop, keep-alive, one client thread); connections per "
        f"endpoint below. Requests carry the headers Chromium sends (Sec-Fetch-*, Origin on the "
        f"PUT). Each run is {cfg['duration_s']:g} s after a {cfg['warmup_s']:g} s warm-up per "
        f"server and endpoint; {cfg['reps']} repetitions in alternating order (stock, hardened, "
        f"bare, then bare, hardened, stock, …) so drift and ordering cancel.",
        f"- CPU pinning: server under test on CPU {_cpus(pin['server'])}, load generator, "
        f"kernels and measurer on CPU {_cpus(pin['clients'])} (one Python server is one "
        f"core; this keeps the client from stealing its time).",
        "- Kernel: one `python3` kernel per server, started over REST; one websocket (token in the "
        "header), 20 warm-up round trips, then `execute_request` for `1` → `execute_reply` in "
        "a loop, one in flight (latency-bound: req/s = 1 / mean latency).",
        "- Each cell is the median over repetitions with (min\u2013max) in brackets; ratios are "
        "computed per repetition (the hardened run against the stock run of the same "
        "repetition) and then summarised the same way. req/s ratio < 1: hardened is slower.",
        "",
        "## Throughput and latency",
        "",
        *thr,
        "",
        "Connections: "
        + ", ".join(
            f"{_md(m['label'])} {m['connections']}"
            for m in results["endpoints"].values()
            if not m["label"].startswith("kernel")
        )
        + "; kernel: 1 websocket, 1 round trip in flight.",
        "",
        "## Ratios",
        "",
        *ratios,
        "",
    ]
    recording = _recording_rows(results) if results.get("runs") else []
    if recording:
        out += [
            "## Accountability recording: on vs off (issue #20)",
            "",
            "hardened (shipped default: every execute_request recorded, code as HMAC) against "
            f"{NORECORD} (`audit.activity = false`), same kernel round trip, alternating "
            "order. Target: recording on keeps at least 95 % of the round trips per second.",
            "",
            *recording,
            "",
        ]
    out += [
        "## Memory",
        "",
        *_memory_table(results),
        "",
        f"Idle: VmRSS 3 s after start-up, before any load. Peak: VmHWM at the end of the run. "
        f"{results.get('memory_note', '')}.",
        "",
        "## Login flood",
        "",
        f"{results.get('flood', {}).get('concurrency', '?')} concurrent wrong-password "
        f"`POST /login` (valid `_xsrf`, same-origin headers; both servers configured with "
        f"the same argon2id password hash) in a closed loop for "
        f"{results.get('flood', {}).get('seconds', '?')} s, while one client sends "
        f"`GET /api/status` every 10 ms on its own connection (first second of the flood "
        f"skipped). Idle: the same probe for 3 s without the flood.",
        "",
        *flood,
        "",
        "## Policy decisions per request (microbenchmarks)",
        "",
        "pytest-benchmark over the pure functions a request goes through "
        "(`bench/test_micro.py`; not part of `make test`). The full chain is the client "
        "address (trusted proxies), route look-up, Host, Origin, Fetch Metadata, path (with "
        "the resolver the server uses), scope check, CSP and header-set look-ups in one call; "
        f"target < {CHAIN_TARGET_US:.0f} µs per request. "
        "The enforcement chain runs the enforcement layer's own functions on a real tornado "
        "request. "
        "On a shared machine the min is the better estimate of the intrinsic cost, the median "
        "of what a request meets.",
        "",
        *micro,
        "",
    ]
    if notes:
        out += [FINDINGS_HEADING, "", notes.strip(), ""]
    return "\n".join(out)


FINDINGS_HEADING = "## Findings (hand-written for this run)"


def kept_findings(path: Path) -> str | None:
    """The hand-written findings section of the report at ``path`` (``None`` if none): the
    report is their only home, and a new run keeps them until someone rewrites them."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    _, found, notes = text.partition("\n" + FINDINGS_HEADING + "\n")
    return (notes.strip() or None) if found else None


def write_report(results: dict[str, Any], path: Path, notes_path: Path | None = None) -> None:
    """Render ``results`` to ``path``. The findings come from ``notes_path`` if given, else
    from the findings section of the report being replaced."""
    if notes_path is None:
        notes = kept_findings(path)
    else:
        notes = notes_path.read_text() if notes_path.exists() else None
    path.write_text(render(results, notes))
