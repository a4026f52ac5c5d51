"""Accountability records (issue #20) from real servers on 127.0.0.1 with a real kernel and a real
terminal: execute_request over the kernel websocket in protocol v1 and in the legacy JSON
framing, terminal lines, file reads through /files, the contents API and /nbconvert, in the
'hmac' (default) and 'full' privacy modes; the plaintext of a cell is nowhere in the trail or
the server log in 'hmac' mode; ``audit hash`` gives a record's value; ``audit query`` finds and
formats them; the chain verifies.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

from hardened_server.policy.activity import key_id, text_hmac
from hardened_server.policy.rules import Rule
from hardened_server.trail.hmackey import DEFAULT_KEY_NAME, load_hmac_key
from tests.conftest import REPO
from tests.support.server import WITHOUT_FRONTENDS, ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

V1 = "v1.kernel.websocket.jupyter.org"
BASE_POLICY = """
[terminals]
enabled = true
"""
FULL_POLICY = BASE_POLICY + """
[audit]
code = "full"
terminal_input = "full"
"""


class Node:
    def __init__(self, server: ServerProcess, policy: Path) -> None:
        self.server = server
        self.policy = policy
        runtime = Path(server.env["JUPYTER_RUNTIME_DIR"])
        self.audit = runtime / f"hardened-server-audit-{server.port}.jsonl"
        self.headers = {"Authorization": f"token {server.token}"}
        self.url = server.url

    def events(self) -> list[dict[str, Any]]:
        return [
            json.loads(line)["event"]
            for line in self.audit.read_bytes().splitlines()
            if line and json.loads(line)["kind"] == "decision"
        ]

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["event_kind"] == kind]

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hardened_server", "audit", *args],
            env={**self.server.env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    started: dict[str, Node] = {}
    try:
        for mode, text in (("hmac", BASE_POLICY), ("full", FULL_POLICY)):
            workdir = tmp_path_factory.mktemp(f"activity-{mode}")
            policy = workdir / "policy.toml"
            policy.write_text(text)
            server = ServerProcess(workdir, [f"--policy={policy}"]).start(wait=False)
            started[mode] = Node(server, policy)
        for node in started.values():
            node.server.wait_ready(120)
        yield started
    finally:
        for node in started.values():
            node.server.stop()


def _session(node: Node, path: str) -> tuple[str, str]:
    r = requests.post(
        node.url + "/api/sessions",
        json={"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}},
        headers=node.headers,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["kernel"]["id"]


def _execute_msg(code: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": "test",
            "session": uuid.uuid4().hex,
            "date": "2026-01-01T00:00:00Z",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": True,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        "buffers": [],
    }


def _run_cell(node: Node, kernel_id: str, code: str, *, v1: bool) -> str:
    """Send one execute_request and wait for its execute_reply; the message id."""
    ws = websocket.create_connection(
        node.url.replace("http", "ws") + f"/api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {node.server.token}"],
        subprotocols=[V1] if v1 else None,
        timeout=60,
    )
    try:
        assert (ws.getsubprotocol() == V1) is v1
        msg = _execute_msg(code)
        msg_id = msg["header"]["msg_id"]
        if v1:
            parts = [json.dumps(msg[k]).encode() for k in
                     ("header", "parent_header", "metadata", "content")]
            ws.send_binary(serialize_msg_to_ws_v1(parts, "shell"))
        else:
            ws.send(json.dumps({**msg, "channel": "shell"}))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            frame = ws.recv()
            if isinstance(frame, bytes):
                if b"execute_reply" in frame and msg_id.encode() in frame:
                    return msg_id
            elif '"execute_reply"' in frame and msg_id in frame:
                return msg_id
        raise AssertionError("no execute_reply")
    finally:
        ws.close()


def _type_in_terminal(node: Node, chunks: list[str]) -> str:
    r = requests.post(node.url + "/api/terminals", headers=node.headers, timeout=60)
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    ws = websocket.create_connection(
        node.url.replace("http", "ws") + f"/terminals/websocket/{name}",
        header=[f"Authorization: token {node.server.token}"],
        timeout=30,
    )
    try:
        for chunk in chunks:
            ws.send(json.dumps(["stdin", chunk]))
        ws.send(json.dumps(["set_size", 24, 80]))
        time.sleep(0.5)
    finally:
        ws.close()
    requests.delete(node.url + f"/api/terminals/{name}", headers=node.headers, timeout=60)
    return name


def _wait_for(node: Node, kind: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = node.kind(kind)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    return node.kind(kind)


@pytest.mark.parametrize("mode", ["hmac", "full"])
def test_execute_request_is_recorded_in_v1_and_legacy_framing(
    nodes: dict[str, Node], mode: str
) -> None:
    node = nodes[mode]
    session_id, kernel_id = _session(node, f"work/{mode}.ipynb")
    cells = {
        True: f"secret_v1_{secrets.token_hex(8)} = 6 * 7",
        False: f"leg_{secrets.token_hex(8)} = 1",
    }
    sent = {v1: _run_cell(node, kernel_id, code, v1=v1) for v1, code in cells.items()}
    records = [r for r in _wait_for(node, "code_executed", 2)
               if r["detail"]["kernel_id"] == kernel_id]
    assert [r["detail"]["msg_id"] for r in records] == [sent[True], sent[False]]
    key = load_hmac_key(Path(node.server.env["JUPYTER_DATA_DIR"]) / DEFAULT_KEY_NAME)
    for record, code in zip(records, cells.values(), strict=True):
        detail = record["detail"]
        assert record["rule_id"] == Rule.ACCT_CODE_EXECUTED
        assert record["user"]
        assert record["decision"] == "allow"
        assert detail["session_id"] == session_id
        assert detail["notebook"] == f"work/{mode}.ipynb"
        assert detail["size"] == len(code.encode())
        assert detail["mode"] == mode
        if mode == "hmac":
            assert "code" not in detail
            assert detail["code_hmac"] == text_hmac(key, code)
            assert detail["key_id"] == key_id(key)
        else:
            assert detail["code"] == code
            assert "code_hmac" not in detail
    if mode == "hmac":
        # The plaintext is nowhere: not in the trail, not in the server's log.
        for code in cells.values():
            name = code.split(" ")[0]
            assert name.encode() not in node.audit.read_bytes()
            assert name not in node.server.log()
        assert key.decode() not in node.audit.read_text()


def test_audit_hash_of_a_cell_matches_its_record(nodes: dict[str, Node]) -> None:
    node = nodes["hmac"]
    _session_id, kernel_id = _session(node, "hash.ipynb")
    code = f"import os\nvalue_{secrets.token_hex(6)} = os.getpid()\r\n"
    msg_id = _run_cell(node, kernel_id, code, v1=True)
    [record] = [r for r in _wait_for(node, "code_executed", 1) if r["detail"]["msg_id"] == msg_id]
    done = node.cli("hash", f"--policy={node.policy}", "-", stdin=code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == record["detail"]["code_hmac"]
    assert f"key_id: {record['detail']['key_id']}" in done.stderr
    # the same cell as an auditor pastes it (LF, one trailing newline more) matches too
    again = node.cli("hash", "--policy", str(node.policy), code.replace("\r\n", "\n") + "\n")
    assert again.stdout.strip() == record["detail"]["code_hmac"]


@pytest.mark.parametrize("mode", ["hmac", "full"])
def test_terminal_lines_are_recorded(nodes: dict[str, Node], mode: str) -> None:
    node = nodes[mode]
    before = len(node.kind("terminal_input"))
    word = f"tok{secrets.token_hex(6)}"
    # typed with a typo corrected by backspace, then an abandoned line (Ctrl-C), then pasted
    name = _type_in_terminal(node, ["echo ", word, "X", "\x7f", "\r", "rm -rf nothing\x03",
                                    "ls\rpwd\r"])
    records = _wait_for(node, "terminal_input", before + 3)[before:]
    assert [r["detail"]["terminal"] for r in records] == [name] * 3
    assert all(r["rule_id"] == Rule.ACCT_TERMINAL_INPUT for r in records)
    lines = [f"echo {word}", "ls", "pwd"]
    key = load_hmac_key(Path(node.server.env["JUPYTER_DATA_DIR"]) / DEFAULT_KEY_NAME)
    if mode == "full":
        assert [r["detail"]["line"] for r in records] == lines
    else:
        assert [r["detail"]["line_hmac"] for r in records] == [text_hmac(key, x) for x in lines]
        assert word not in node.audit.read_text()
        assert word not in node.server.log()


@pytest.mark.parametrize("mode", ["hmac", "full"])
def test_file_reads_are_recorded_with_path_and_size(nodes: dict[str, Node], mode: str) -> None:
    node = nodes[mode]
    root = node.server.root
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "report.txt").write_text("x" * 1234)
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "data" / "nb.ipynb").write_text(json.dumps(nb))
    before = len(node.kind("file_read"))
    get = lambda rel: requests.get(node.url + rel, headers=node.headers, timeout=60)  # noqa: E731
    assert get("/files/data/report.txt?download=1").status_code == 200
    assert get("/api/contents/data/report.txt").status_code == 200
    assert get("/api/contents/data/report.txt?content=0").status_code == 200  # no content
    assert get("/api/contents/data").status_code == 200  # a listing: not a file read
    assert get("/nbconvert/html/data/nb.ipynb").status_code == 200
    assert get("/files/data/missing.txt").status_code == 404  # nothing was read
    records = _wait_for(node, "file_read", before + 3)[before:]
    got = [(r["detail"]["via"], r["detail"]["file"]) for r in records]
    assert got == [("files", "data/report.txt"), ("contents", "data/report.txt"),
                   ("nbconvert", "data/nb.ipynb")]
    assert records[0]["detail"]["size"] == 1234
    assert records[1]["detail"]["size"] > 1234  # the JSON model around the content
    assert records[2]["detail"]["format"] == "html"
    assert all(r["rule_id"] == Rule.ACCT_FILE_READ and r["user"] for r in records)


def test_audit_query_filters_and_formats(nodes: dict[str, Node]) -> None:
    node = nodes["full"]
    _sid, kernel_id = _session(node, "query/q.ipynb")
    _run_cell(node, kernel_id, "print('query me')", v1=True)
    _wait_for(node, "code_executed", 1)
    user = node.kind("code_executed")[-1]["user"]
    done = node.cli("query", str(node.audit), "--user", user, "--kind", "code_executed",
                    "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows
    assert all(r["event_kind"] == "code_executed" and r["user"] == user for r in rows)
    assert rows[-1]["detail"]["code"] == "print('query me')"
    by_path = node.cli("query", str(node.audit), "--path", "query/*.ipynb", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(by_path.stdout)))
    assert [r["event_kind"] for r in table] == ["code_executed"]
    assert json.loads(table[0]["detail"])["notebook"] == "query/q.ipynb"
    nobody = node.cli("query", str(node.audit), "--user", "nobody-at-all")
    assert nobody.returncode == 0
    assert nobody.stdout == ""
    future = node.cli("query", str(node.audit), "--since", "2999-01-01")
    assert future.stdout == ""
    past = node.cli("query", str(node.audit), "--until", "2000-01-01T00:00:00Z")
    assert past.stdout == ""
    text = node.cli("query", str(node.audit), "--kind", "code_executed")
    assert "code_executed" in text.stdout
    assert "print('query me')" in text.stdout
    assert all(line.count("\n") == 0 for line in text.stdout.splitlines())
    bad = node.cli("query", str(node.audit), "--kind", "no_such_kind")
    assert bad.returncode == 2
    verified = node.cli("verify-log", str(node.audit))
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize(
    ("where", "mode", "rule"),
    [("root", 0o600, Rule.ACCT_KEY_IN_ROOT), ("outside", 0o644, Rule.ACCT_KEY_UNUSABLE)],
)
def test_an_unsafe_hmac_key_refuses_start_with_exit_2(
    tmp_path: Path, where: str, mode: int, rule: Rule
) -> None:
    """A key the contents API could serve, or one other accounts can read, is refused at
    start-up: exit 2, the rule id and the policy key named, never the key itself."""
    secret = secrets.token_hex(32)
    policy = tmp_path / "policy.toml"
    server = ServerProcess(tmp_path, [*WITHOUT_FRONTENDS, f"--policy={policy}"])
    key = (server.root if where == "root" else tmp_path) / "hmac-material.bin"
    key.write_text(secret)
    key.chmod(mode)
    policy.write_text(f'[audit]\nhmac_key = "{key}"\n')
    server.start(wait=False)
    try:
        assert server.wait_exit(120) == 2
    finally:
        server.stop_quickly()
    log = server.log()
    assert f"[{rule}] refusing to start" in log
    assert "audit.hmac_key" in log
    assert "Traceback" not in log
    assert secret not in log
