"""The one record funnel (hardened_server/enforcement/recorder.py) without a server: one record per
decision, events with no request, callers' event names, fail-closed, the start-up path checks."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from hardened_server.enforcement import auditfile as trail_state
from hardened_server.enforcement import context
from hardened_server.enforcement.recorder import record_denial, record_event, record_ignored
from hardened_server.policy.decisions import Rule, allow, deny
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.loader import load_policy
from hardened_server.trail.chain import AuditWriteError
from hardened_server.trail.writer import AuditTrail, open_audit_trail


@pytest.fixture
def audit_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "audit.jsonl"
    trail = open_audit_trail(path=path, fsync="never", metrics=False)
    trail_state.install(trail, None, fail_closed=True)
    trail_state.audit_state().fingerprint = lambda: "sha256:" + "ab" * 32
    yield path
    trail_state.uninstall()
    trail.close()


def _events(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in path.read_bytes().splitlines() if x]
    return [x["event"] for x in lines if x["kind"] == "decision"]


def _request(uri: str = "/api/contents/x?token=s3cret", method: str = "GET") -> HTTPServerRequest:
    request = HTTPServerRequest(
        start_line=RequestStartLine(method, uri, "HTTP/1.1"), headers=HTTPHeaders({"Host": "h"})
    )
    request.remote_ip = "192.0.2.7"
    return request


def test_a_denial_reported_by_two_layers_is_recorded_once(audit_file: Path) -> None:
    request = _request()
    decision = deny(Rule.HOST_FOREIGN, "foreign host")
    record_denial(request, decision, "api")
    record_denial(request, decision, "api")
    record_ignored(request, allow("HS-PROXY-002", "forwarding headers ignored"))
    events = _events(audit_file)
    assert [e["rule_id"] for e in events] == ["HS-HOST-002", "HS-PROXY-002"]
    assert events[0]["path"] == "/api/contents/x"
    assert events[0]["client_ip"] == "192.0.2.7"
    assert len({e["request_id"] for e in events}) == 1
    assert "s3cret" not in audit_file.read_text()


def test_event_without_a_request_is_a_server_record(audit_file: Path) -> None:
    record_event(
        None,
        "policy_reloaded",
        rule_id="HS-POLICY-002",
        allowed=True,
        reason="policy reloaded (SIGHUP)",
        subject="sources=default.toml,site.toml",
    )
    (event,) = _events(audit_file)
    assert event["event_kind"] == "policy_reloaded"
    assert event["route_class"] == "server"
    assert event["method"] == "NONE"
    assert event["client_ip"] == "unknown"
    assert event["policy_fingerprint"] == "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("token.used", "token_used"),
        ("token.created", "token_created"),
        ("token.revoked", "token_revoked"),
        ("token.rotated", "token_created"),
        ("auth.token_refused", "login_failure"),
        ("login_success", "login_success"),
        ("something.new", None),
    ],
)
def test_callers_event_names_map_onto_the_schema(audit_file: Path, name: str, kind: str) -> None:
    record_event(
        _request("/api/me"),
        name,
        rule_id="HS-ID-001",
        allowed=kind not in ("login_failure", None),
        reason="r",
        user="alice",
        token_id="t-1",
    )
    (event,) = _events(audit_file)
    assert event["event_kind"] == kind
    assert event["user"] == "alice"
    assert "id=t-1" in event["subject"]  # a token's public id is kept
    # The caller's own name is kept whenever the schema's kind is not merely its spelling.
    assert (f"event={name}" in event["subject"]) == (kind != name.replace(".", "_"))


class _Broken(AuditTrail):
    def event(self, **values: Any) -> Any:
        raise AuditWriteError("disk full")


@pytest.mark.parametrize("fail_closed", [True, False])
def test_an_unwritable_record_refuses_the_allowed_request_when_fail_closed(
    fail_closed: bool,
) -> None:
    trail_state.install(_Broken(), None, fail_closed=fail_closed)
    try:
        # A denial stays the denial it was.
        record_denial(_request(), deny(Rule.AUTH_REQUIRED, "no user"), "api")
        allowed = lambda: record_event(  # noqa: E731
            _request(method="PUT"),
            "file_written",
            rule_id="HS-CONTENTS-001",
            allowed=True,
            reason="written",
        )
        if fail_closed:
            with pytest.raises(web.HTTPError) as err:
                allowed()
            assert err.value.status_code == 503
        else:
            allowed()
        record_event(None, "policy_reloaded", rule_id="HS-POLICY-002", allowed=True, reason="r")
    finally:
        trail_state.uninstall()


def test_audit_file_inside_the_served_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    audit = load_policy().audit
    with pytest.raises(UnsafeStartup) as err:
        trail_state.resolve_audit_file(
            audit, runtime_dir=str(root / "sub"), port=8888, root_dir=str(root)
        )
    assert err.value.rule_id == "HS-AUDIT-001"
    # A symlink from outside into the root is inside too.
    (tmp_path / "link").symlink_to(root / "sub")
    with pytest.raises(UnsafeStartup):
        trail_state.resolve_audit_file(
            audit, runtime_dir=str(tmp_path / "link"), port=8888, root_dir=str(root)
        )
    ok = trail_state.resolve_audit_file(
        audit, runtime_dir=str(tmp_path / "rt"), port=8888, root_dir=str(root)
    )
    assert ok == tmp_path / "rt" / "hardened-server-audit-8888.jsonl"


def test_request_ids_come_from_a_trusted_proxy_only() -> None:
    request = _request()
    request.headers["X-Request-ID"] = "nginx-abc123"
    assert context.assign_request_id(request, from_trusted_proxy=True) == "nginx-abc123"
    other = _request()
    other.headers["X-Request-ID"] = "chosen-by-client"
    rid = context.assign_request_id(other, from_trusted_proxy=False)
    assert rid != "chosen-by-client"
    assert len(rid) == 32
    bad = _request()
    bad.headers["X-Request-ID"] = "line\nbreak"
    assert context.assign_request_id(bad, from_trusted_proxy=True) != "line\nbreak"


def test_an_audit_file_that_cannot_open_stops_the_start_up(tmp_path: Path) -> None:
    """A second server on the same file (two writers would fork the chain) or a signing key
    that is not there: the server does not start without its evidence (HS-AUDIT-002)."""
    path = tmp_path / "audit.jsonl"
    policy = dataclasses.replace(load_policy().audit, file=str(path), fsync="never")

    def open_trail(audit: Any) -> AuditTrail:
        return trail_state.open_trail_for(
            audit,
            runtime_dir=str(tmp_path),
            port=8888,
            root_dir=str(tmp_path / "root"),
            event_logger=None,
        )

    first = open_trail(policy)
    try:
        with pytest.raises(UnsafeStartup) as err:
            open_trail(policy)
        assert err.value.rule_id == Rule.AUDIT_OPEN_FAILED
        assert str(path) in str(err.value)
    finally:
        first.close()
    keyless = dataclasses.replace(policy, signing_key=str(tmp_path / "missing.pem"))
    with pytest.raises(UnsafeStartup) as err:
        open_trail(keyless)
    assert err.value.rule_id == Rule.AUDIT_OPEN_FAILED
    # Once the first writer is gone, the same file opens (and the chain goes on).
    open_trail(policy).close()


def test_a_record_that_cannot_be_written_is_logged_critical_under_its_own_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The audit file could not take a record: the CRITICAL log line names HS-AUDIT-003 and the
    rule of the record the file lacks, and fail-closed answers the request 503."""
    trail_state.install(_Broken(), None, fail_closed=True)
    try:
        with (
            caplog.at_level(logging.CRITICAL, logger="hardened_server.audit"),
            pytest.raises(web.HTTPError) as err,
        ):
            record_event(
                _request(method="PUT"),
                "file_written",
                rule_id=Rule.CONTENTS_FILE_WRITTEN,
                allowed=True,
                reason="written",
            )
    finally:
        trail_state.uninstall()
    assert err.value.status_code == 503
    (line,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    message = line.getMessage()
    assert message.startswith(f"[{Rule.AUDIT_WRITE_FAILED}] audit record NOT written"), message
    assert f"rule={Rule.CONTENTS_FILE_WRITTEN}" in message
    assert "disk full" in message
