"""``hardened-server token create|rotate|revoke`` (hardened_server/cli/tokens.py) in process: each
change to the token store is an event with its own rule id, the token's public id and never its
secret; on a trail when one is installed, and always on the ``hardened_server.decisions`` log
(the CLI run beside a server logs it: the server holds the audit file)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardened_server.cli.main import main
from hardened_server.enforcement import auditfile as trail_state
from hardened_server.policy.rules import Rule
from hardened_server.trail.record import EventKind
from hardened_server.trail.writer import open_audit_trail


@pytest.fixture
def audit_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(path=path, fsync="never", metrics=False)
    trail_state.install(trail, None, fail_closed=True)
    yield path
    trail_state.uninstall()
    trail.close()


def _decisions(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in path.read_bytes().splitlines() if x]
    return [x["event"] for x in lines if x["kind"] == "decision"]


def _token(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["token", *argv]) == 0
    return capsys.readouterr().out.strip()


def test_create_rotate_revoke_are_recorded_with_the_token_id_never_the_secret(
    tmp_path: Path, audit_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "tokens.json")
    secret = _token(capsys, "create", "--name", "ci", "--scope", "contents:read", "--store", store)
    token_id = secret.split("_")[1]
    rotated = _token(capsys, "rotate", token_id, "--store", store)
    assert rotated != secret
    assert main(["token", "revoke", token_id, "--store", store]) == 0
    events = _decisions(audit_file)
    assert [(e["rule_id"], e["event_kind"], e["decision"]) for e in events] == [
        (Rule.ID_TOKEN_CREATED, EventKind.TOKEN_CREATED, "allow"),
        (Rule.ID_TOKEN_ROTATED, EventKind.TOKEN_CREATED, "allow"),
        (Rule.ID_TOKEN_REVOKED, EventKind.TOKEN_REVOKED, "allow"),
    ]
    for event in events:
        assert f"id={token_id}" in event["subject"], event
        assert event["route_class"] == "server"
        assert event["method"] == "NONE"
    assert "scopes=contents:read" in events[0]["subject"]
    text = audit_file.read_text()
    assert secret not in text
    assert rotated not in text


def test_without_a_trail_the_cli_logs_each_change_under_its_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    store = str(tmp_path / "tokens.json")
    with caplog.at_level(logging.INFO, logger="hardened_server.decisions"):
        secret = _token(capsys, "create", "--name", "x", "--scope", "admin", "--store", store)
        token_id = secret.split("_")[1]
        _token(capsys, "rotate", token_id, "--store", store)
        assert main(["token", "revoke", token_id, "--store", store]) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "hardened_server.decisions"]
    rules = [line.split(" rule=", 1)[1].split(" ", 1)[0] for line in lines]
    assert rules == [Rule.ID_TOKEN_CREATED, Rule.ID_TOKEN_ROTATED, Rule.ID_TOKEN_REVOKED]
    assert not any(secret in line for line in lines)
