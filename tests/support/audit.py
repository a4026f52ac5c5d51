"""Reading a live server's audit trail (the default file in its runtime directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.server import ServerProcess


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
