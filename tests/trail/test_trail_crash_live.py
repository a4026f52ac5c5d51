"""A real server killed with SIGKILL while it writes its audit trail under load, then tampered
with: ``hardened-server audit verify-log`` (the command, as an operator runs it) accepts the
crash (a torn tail at worst, no acknowledged record lost) and names the record of every edit,
deletion, reordering and truncation.

Acknowledged here means the client received the response: every denial is written to the file
before the response is sent, so each answered request's record must be in the file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from hardened_server.trail.chain import rotated_files
from tests.conftest import REPO
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

POLICY = """
[audit]
file = "{file}"
fsync = "never"
max_bytes = 65536
"""


def _verify(*files: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hardened_server", "audit", "verify-log", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )


def _trail(audit: Path) -> list[str]:
    return [*rotated_files(audit), str(audit)]


def _paths(files: list[str]) -> set[str]:
    out = set()
    for name in files:
        for line in Path(name).read_bytes().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the torn tail
            if record.get("kind") == "decision":
                out.add(record["event"]["path"])
    return out


def _start(workdir: Path, audit: Path) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "policy.toml").write_text(POLICY.format(file=audit))
    return ServerProcess(workdir, [f"--policy={workdir / 'policy.toml'}"]).start()


def test_sigkill_under_load_leaves_a_trail_that_verifies_with_every_answered_record(
    tmp_path: Path,
) -> None:
    audit = tmp_path / "log" / "audit.jsonl"
    server = _start(tmp_path / "one", audit)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set():
            path = f"/api/status/w{worker}-{n}"
            n += 1
            try:
                r = session.get(server.url + path, headers={"Host": "evil.example"}, timeout=5)
            except requests.RequestException:
                return  # the server is gone
            if r.status_code == 403:
                with lock:
                    acknowledged.append(path)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while len(rotated_files(audit)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # under load until the trail has rotated at least twice
        assert server.proc is not None
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        server.stop()
    assert server.proc.returncode == -signal.SIGKILL
    assert len(acknowledged) > 100  # ~90 records fill a 64 KiB file: two rotations

    files = _trail(audit)
    result = _verify(*files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not closed (running or crashed)" in result.stdout
    assert set(acknowledged) <= _paths(files)  # no answered request's record is lost

    # The restarted server continues the same chain, and a clean stop closes it.
    again = _start(tmp_path / "two", audit)
    requests.get(
        again.url + "/api/status/after-restart", headers={"Host": "evil.example"}, timeout=10
    )
    again.stop()
    files = _trail(audit)
    result = _verify(*files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "closed cleanly" in result.stdout
    assert "/api/status/after-restart" in _paths(files)

    _tamper_each_way(audit)


def _tamper_each_way(audit: Path) -> None:
    """On the real server's (last) file: each kind of tampering is named at its record."""
    pristine = audit.read_bytes()
    lines = pristine.splitlines(keepends=True)
    seqs = [json.loads(x)["seq"] for x in lines]
    denials = [i for i, x in enumerate(lines[:-2]) if b'"decision":"deny"' in x]
    k = denials[len(denials) // 2]  # a denial in the middle of the file

    def check(data: bytes, expected: str, seq: int) -> None:
        audit.write_bytes(data)
        out = _verify(audit)
        assert out.returncode == 1, (expected, out.stdout)
        assert f"FIRST PROBLEM: record {seq} " in out.stdout, (expected, out.stdout)
        assert f": {expected}:" in out.stdout, (expected, out.stdout)

    edited = lines.copy()
    edited[k] = edited[k].replace(b'"deny"', b'"allow"')
    check(b"".join(edited), "edited", seqs[k])

    deleted = lines.copy()
    del deleted[k]
    check(b"".join(deleted), "deleted", seqs[k])

    swapped = lines.copy()
    swapped[k], swapped[k + 1] = swapped[k + 1], swapped[k]
    check(b"".join(swapped), "reordered", seqs[k])

    # Cut at a line boundary: only an anchor held elsewhere (here: the head before the cut)
    # shows it; the CLI names the first missing record.
    audit.write_bytes(b"".join(lines[:k]))
    head = json.loads(lines[-1])
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hardened_server",
            "audit",
            "verify-log",
            str(audit),
            "--expect-head",
            f"{head['seq']}:{head['hash']}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )
    assert out.returncode == 1, out.stdout
    assert f"FIRST PROBLEM: record {seqs[k]} " in out.stdout
    assert ": truncated:" in out.stdout
    audit.write_bytes(pristine)
    assert _verify(audit).returncode == 0
