"""Helpers for the audit tests: running the command in process and reading its report (the
stock jupyter_server they grade is :class:`tests.support.server.StockServer`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hardened_server.audit.cli import main as audit_main


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
