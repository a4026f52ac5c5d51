"""``hardened-server audit query`` (trail/query.py, issue #20) over a real chained file and a
collected stream made of the same chain lines (a container runtime's prefix, syslog's RFC 5424
header, other log lines in between): each record once, every filter, every format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from hardened_server.trail.chain import unchained_line
from hardened_server.trail.query import main, read_records
from hardened_server.trail.record import build_decision_record
from hardened_server.trail.syslog import message
from hardened_server.trail.writer import open_audit_trail

SERVER = {"host": "h1", "pid": 7, "port": 8888}


def _event(trail: Any, user: str, kind: str, detail: dict[str, Any], path: str = "/x") -> None:
    trail.event(rule_id="HS-ACCT-001", allowed=True, reason="r", route_class="api", method="GET",
                path=path, client_ip="127.0.0.1", scheme="ws", user=user, event_kind=kind,
                detail=detail)


@pytest.fixture
def trail_files(tmp_path: Path) -> tuple[Path, Path]:
    audit = tmp_path / "audit.jsonl"
    trail = open_audit_trail(path=audit, fsync="never", server=SERVER, metrics=False)
    _event(trail, "ana", "code_executed",
           {"kernel_id": "k1", "notebook": "proj/a.ipynb", "mode": "full", "size": 9,
            "code": "x = 1\ny = 2"}, "/api/kernels/k1/channels")
    _event(trail, "bob", "terminal_input", {"terminal": "1", "mode": "hmac", "size": 2,
                                             "line_hmac": "0" * 64})
    _event(trail, "ana", "file_read", {"file": "data/r.csv", "via": "files", "size": 10},
           "/files/data/r.csv")
    trail.close()
    lines = [line for line in audit.read_bytes().splitlines() if line]
    collected = tmp_path / "collected.log"
    out = [b"[I 2026-05-09 ServerApp] an ordinary log line, not a record"]
    for i, line in enumerate(lines):  # each chain line once by stdout, once by syslog
        out.append(b"2026-05-09T07:35:25.1Z stdout F " + line)
        out.append(message(line, hostname="h1", pid=7) if i % 2 else line)
    loose = build_decision_record(rule_id="HS-ACCT-003", allowed=True, reason="r",
                                  route_class="files", method="GET", path="/files/z.txt",
                                  client_ip="127.0.0.1", user="cy", event_kind="file_read",
                                  detail={"file": "z.txt", "via": "files", "size": 1})
    out.append(unchained_line(loose, SERVER))  # the file had failed: stdout alone has it
    collected.write_bytes(b"\n".join(out) + b"\n")
    return audit, collected


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_the_file_and_the_stream_give_each_record_once(trail_files: tuple[Path, Path]) -> None:
    audit, collected = trail_files
    from_file = [r for r in read_records([str(audit)]) if r["event_kind"] != "policy_loaded"]
    both = list(read_records([str(audit), str(collected)]))
    assert [r["user"] for r in from_file] == ["ana", "bob", "ana"]
    assert [r["user"] for r in both] == ["ana", "bob", "ana", "cy"]


def test_filters_user_kind_path_and_time(
    trail_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    audit, collected = trail_files
    files = (str(audit), str(collected))
    code, out = _run(capsys, *files, "--user", "ana", "--format", "json")
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 0
    assert [r["event_kind"] for r in rows] == ["code_executed", "file_read"]
    _, out = _run(capsys, *files, "--kind", "terminal_input", "--format", "json")
    assert [json.loads(x)["user"] for x in out.splitlines()] == ["bob"]
    _, out = _run(capsys, *files, "--path", "proj/*.ipynb", "--format", "json")
    assert [json.loads(x)["detail"]["notebook"] for x in out.splitlines()] == ["proj/a.ipynb"]
    _, out = _run(capsys, *files, "--path", "/files/*", "--format", "json")
    assert [json.loads(x)["user"] for x in out.splitlines()] == ["ana", "cy"]
    assert _run(capsys, *files, "--since", "2999-01-01")[1] == ""
    assert _run(capsys, *files, "--until", "2000-01-01T00:00:00+02:00")[1] == ""
    _, out = _run(capsys, *files, "--since", "2000-01-01", "--kind", "file_read", "--user", "cy")
    assert len(out.splitlines()) == 1


def test_formats(trail_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    audit, _collected = trail_files
    _, out = _run(capsys, str(audit), "--kind", "code_executed", "--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["user"] == "ana"
    assert json.loads(row["detail"])["code"] == "x = 1\ny = 2"
    _, out = _run(capsys, str(audit), "--kind", "code_executed")
    assert out.count("\n") == 1  # one line per record: the cell's newline is escaped
    assert "ana" in out
    assert "code_executed" in out
    assert "notebook=proj/a.ipynb" in out


@pytest.mark.parametrize("bad", [["--since", "yesterday"], ["--kind", "nope"], []])
def test_usage_errors_exit_2(trail_files: tuple[Path, Path], bad: list[str],
                             capsys: pytest.CaptureFixture[str]) -> None:
    audit, _ = trail_files
    args = [str(audit), *bad] if bad else []
    assert main(args) == 2
    assert main([str(audit.parent / "missing.jsonl")]) == 2


def test_html_timeline_escapes_and_groups_by_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "audit.jsonl"
    trail = open_audit_trail(path=audit, fsync="never", server=SERVER, metrics=False)
    _event(trail, "ana", "code_executed",
           {"kernel_id": "k1", "notebook": "a.ipynb", "mode": "full", "size": 30,
            "code": "print('<script>alert(1)</script>')"})
    _event(trail, "bob", "file_read", {"file": "r.csv", "via": "files", "size": 10})
    trail.close()
    code, out = _run(capsys, str(audit), "--kind", "code_executed", "--kind", "file_read",
                     "--format", "html")
    assert code == 0
    assert out.startswith("<!doctype html>")
    assert "<script>" not in out  # the cell is text on the page, never markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert out.index("<h2>ana</h2>") < out.index("ran code") < out.index("<h2>bob</h2>")
    assert "r.csv via files (10 bytes)" in out
