"""Evidence that survives the user it records (issue #19), against real servers on 127.0.0.1.

The server's user can do anything to a local file (every kernel runs as that user), so these
tests play that user: they unlink the live audit file the way a notebook's ``os.unlink`` would,
and check that the server noticed, continued the chain in a new file and said so on stdout, the
sink a container log collector holds out of the user's reach.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hardened_server.trail.verify import verify_log
from tests.support.audit import verify_stream
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

POLICY = """
[audit]
file = "{file}"
stdout = true
fsync = "always"
"""


def stdout_records(server: ServerProcess) -> list[dict[str, Any]]:
    """The chain lines the server wrote on stdout (its log holds stdout and stderr)."""
    out = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def rule_ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["event"]["rule_id"] for r in records if r.get("kind") == "decision"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    audit = tmp_path / "logs" / "audit.jsonl"
    (tmp_path / "policy.toml").write_text(POLICY.format(file=audit))
    proc = ServerProcess(tmp_path, [f"--policy={tmp_path / 'policy.toml'}"])
    proc.start()
    yield proc, audit
    proc.stop_quickly()


def test_unlinked_trail_is_noticed_and_named_on_stdout(
    server: tuple[ServerProcess, Path],
) -> None:
    """Issue #19: the same user unlinks the live trail. The next request is answered (nothing
    was lost: the server checks the file before every record) and its record lands in a new
    file that continues the chain; stdout carries HS-AUDIT-004 naming the event."""
    proc, audit = server
    r = requests.get(proc.url + "/api/contents/nothere", headers=proc.auth(), timeout=20)
    assert r.status_code == 404
    os.unlink(audit)  # what `os.unlink(path)` in a notebook does
    r = requests.get(proc.url + "/api/status", headers={"Host": "evil.example"}, timeout=20)
    assert r.status_code == 403
    deadline = time.monotonic() + 10
    while "HS-HOST-002" not in rule_ids(stdout_records(proc)) and time.monotonic() < deadline:
        time.sleep(0.2)
    shipped = rule_ids(stdout_records(proc))
    assert "HS-AUDIT-004" in shipped
    assert shipped.index("HS-AUDIT-004") < len(shipped) - 1
    lines = [json.loads(x) for x in audit.read_bytes().splitlines()]
    assert lines[0]["kind"] == "rotation"
    assert lines[0]["lost"] == "removed"
    assert "HS-AUDIT-004" in rule_ids(lines)
    assert verify_log([str(audit)]).ok


def test_unlinked_trail_is_noticed_without_a_request(server: tuple[ServerProcess, Path]) -> None:
    """The app's timer checks the file every second: an idle server notices too."""
    proc, audit = server
    os.unlink(audit)
    deadline = time.monotonic() + 10
    while "HS-AUDIT-004" not in rule_ids(stdout_records(proc)):
        assert time.monotonic() < deadline, proc.log()
        time.sleep(0.2)
    assert audit.exists()


# -- a stop is a stop, a kill is a kill (item 4) --------------------------------------------------


def _last_kind(audit: Path) -> str:
    return json.loads(audit.read_bytes().splitlines()[-1])["kind"]


def _verify_state(audit: Path) -> bool:
    result = verify_log([str(audit)])
    assert result.ok, result.problem
    return result.closed_cleanly


@pytest.mark.parametrize(
    ("sig", "closed"),
    [(signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGKILL, False)],
    ids=["SIGINT", "SIGTERM", "SIGKILL"],
)
def test_serve_without_a_tty_writes_close_on_a_stop_signal_only(
    server: tuple[ServerProcess, Path], sig: signal.Signals, closed: bool
) -> None:
    """SIGINT without a TTY is how JupyterHub's spawners stop a server: stock jupyter_server
    then skipped its cleanup and the trail read as a crash. SIGKILL must still read as one."""
    proc, audit = server
    assert proc.proc is not None
    os.kill(proc.proc.pid, sig)
    proc.wait_exit(60)
    assert (_last_kind(audit) == "close") is closed, proc.log()
    assert _verify_state(audit) is closed


def test_serve_on_a_tty_closes_after_the_confirming_second_sigint(tmp_path: Path) -> None:
    """On a terminal the first ^C asks for confirmation (stock behaviour, kept); a second one
    stops the server through the same path, with its close record."""
    audit = tmp_path / "logs" / "audit.jsonl"
    (tmp_path / "policy.toml").write_text(POLICY.format(file=audit))
    proc = ServerProcess(tmp_path, [f"--policy={tmp_path / 'policy.toml'}"])
    controller, terminal = pty.openpty()
    try:
        proc.start(stdin=terminal)
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGINT)
        time.sleep(1)
        assert proc.proc.poll() is None  # asking, not stopping
        os.kill(proc.proc.pid, signal.SIGINT)
        proc.wait_exit(60)
    finally:
        proc.stop_quickly()
        os.close(controller)
        os.close(terminal)
    assert _last_kind(audit) == "close", proc.log()


# -- stdout of several servers, collected as one stream (items 1 and 2) ----------------------------


def test_the_stdout_of_two_servers_verifies_as_one_collected_stream(tmp_path: Path) -> None:
    """Every chain line goes to stdout (genesis and close included), each naming its server
    (hub user, server name, host, port) and chain. The two servers' logs, interleaved line by
    line as a collector would hold them, verify chain by chain; a dropped line is named with
    its server and record."""
    servers = []
    for user in ("alice", "bob"):
        workdir = tmp_path / user
        workdir.mkdir()
        audit = workdir / "logs" / "audit.jsonl"
        (workdir / "policy.toml").write_text(POLICY.format(file=audit))
        env = {"JUPYTERHUB_USER": user, "JUPYTERHUB_SERVER_NAME": "lab"}
        servers.append(
            ServerProcess(workdir, [f"--policy={workdir / 'policy.toml'}"], env=env).start()
        )
    try:
        for proc in servers:
            for _ in range(2):
                r = requests.get(
                    proc.url + "/api/status", headers={"Host": "evil.example"}, timeout=20
                )
                assert r.status_code == 403
    finally:
        for proc in servers:
            proc.stop()
    logs = [proc.log().splitlines() for proc in servers]
    first = stdout_records(servers[0])
    assert first[0]["kind"] == "genesis"
    assert first[-1]["kind"] == "close"
    assert first[0]["server"]["hub_user"] == "alice"
    assert first[0]["server"]["server_name"] == "lab"
    assert first[0]["server"]["port"] == servers[0].port
    assert {r["chain"] for r in first} == {first[0]["chain_id"]}
    collected = tmp_path / "collected.log"
    merged = [line for pair in zip(*logs, strict=False) for line in pair]
    merged += logs[0][len(logs[1]) :] + logs[1][len(logs[0]) :]
    collected.write_text("\n".join(merged) + "\n")
    out = verify_stream(collected)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hub_user=alice" in out.stdout
    assert "hub_user=bob" in out.stdout
    assert out.stdout.count("closed cleanly") == 2

    bob_denial = next(
        i for i, line in enumerate(merged) if '"hub_user":"bob"' in line and "HS-HOST-002" in line
    )
    dropped = merged[:bob_denial] + merged[bob_denial + 1 :]
    collected.write_text("\n".join(dropped) + "\n")
    out = verify_stream(collected)
    assert out.returncode == 1, out.stdout
    tampered = [line for line in out.stdout.splitlines() if "TAMPERED" in line]
    assert len(tampered) == 1
    assert "hub_user=bob" in tampered[0]
    assert "deleted" in tampered[0]
