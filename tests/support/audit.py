"""Reading a live server's audit trail (the default file in its runtime directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.server import ServerProcess

REPO = Path(__file__).resolve().parents[2]


def audit_file(server: ServerProcess) -> Path:
    runtime = Path(server.env["JUPYTER_RUNTIME_DIR"])
    return runtime / f"hardened-server-audit-{server.port}.jsonl"


def audit_records(server: ServerProcess) -> list[dict[str, Any]]:
    """The decision records of the chain, oldest first."""
    path = audit_file(server)
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_bytes().splitlines() if line]
    return [line["event"] for line in lines if line.get("kind") == "decision"]


def verify_stream(*files: Path) -> subprocess.CompletedProcess[str]:
    """``hardened-server audit verify-log --stream FILE...`` as an operator runs it on a
    collected stream (stdout of many servers, or a syslog collector's file)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hardened_server",
            "audit",
            "verify-log",
            "--stream",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )
