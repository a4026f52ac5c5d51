"""The audit trail core (issue 7): decision records and their registered schema, the
hash-chained file sink (crash safety under SIGKILL, rotation, permissions), the EventLogger sink
kept server-only, the stdout sink and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jupyter_events import EventLogger
from jupyter_events.schema import EventSchema
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hardened_server.policy.decisions import ROUTE_CLASSES, Rule, allow, deny
from hardened_server.policy.fsync import FsyncPolicy
from hardened_server.policy.hub import NON_OWNER_KINDS
from hardened_server.trail import chain as chain_module
from hardened_server.trail import metrics as metrics_module
from hardened_server.trail.chain import (
    AuditLogBusy,
    AuditWriteError,
    ChainedFileSink,
    rotated_files,
)
from hardened_server.trail.events import (
    EventLoggerSink,
    ForgedAuditEvent,
    detach_server_only_listener,
    filter_subscribe_listener,
    is_server_only_schema,
    may_client_emit,
    register_audit_schema,
    subscriber_may_receive,
)
from hardened_server.trail.metrics import OTHER_RULE, AuditMetrics, default_metrics
from hardened_server.trail.record import (
    DETAIL_FIELDS,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    SCHEMA_ID,
    DecisionRecord,
    EventKind,
    build_decision_record,
    decision_schema,
    format_time,
    record_from_decision,
    redact_path,
)
from hardened_server.trail.verify import verify_log
from hardened_server.trail.writer import AuditTrail, StdoutSink, open_audit_trail, request_values

TOKEN = "6c1f0e2b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817"
REPO = Path(__file__).resolve().parents[2]


def _record(**overrides: Any) -> DecisionRecord:
    values: dict[str, Any] = {
        "rule_id": Rule.ORIGIN_FOREIGN,
        "allowed": False,
        "reason": "origin https://evil.example is not allowed",
        "route_class": "api",
        "method": "POST",
        "path": f"/api/contents/x.ipynb?token={TOKEN}#frag",
        "client_ip": "192.0.2.10",
        "scheme": "https",
        "user": "alice",
        "request_id": "req-1",
        "policy_fingerprint": "sha256:" + "0f" * 32,
    }
    values.update(overrides)
    return build_decision_record(**values)


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(
        decision_schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


# -- records and the schema ------------------------------------------------------------------------


def test_schema_is_a_valid_jupyter_event_schema() -> None:
    schema = decision_schema()
    assert schema["$id"] == SCHEMA_ID == "https://events.hardened-server.invalid/policy_decision/v1"
    assert schema["version"] == "1"
    assert schema["personal-data"] is True
    EventSchema(dict(schema))  # jupyter_events' metaschema; raises (or warns = error) if not
    jsonschema.Draft7Validator.check_schema(schema)


def test_schema_enums_match_the_code() -> None:
    props = decision_schema()["properties"]
    assert set(props["route_class"]["enum"]) == set(ROUTE_CLASSES) | {"server"}
    assert set(props["event_kind"]["enum"]) == {None} | {k.value for k in EventKind}
    assert set(decision_schema()["required"]) == REQUIRED_FIELDS
    assert set(DecisionRecord.__dataclass_fields__) == REQUIRED_FIELDS | OPTIONAL_FIELDS
    assert set(props) == REQUIRED_FIELDS | OPTIONAL_FIELDS
    assert set(props["detail"]["properties"]) == set(DETAIL_FIELDS)
    assert set(props["non_owner"]["enum"]) == NON_OWNER_KINDS


@pytest.mark.parametrize("kind", [None, *EventKind])
def test_records_validate_against_the_schema(kind: EventKind | None) -> None:
    record = _record(event_kind=kind, allowed=kind is not None, subject="kernel k-1")
    _validator().validate(record.to_dict())
    _validator().validate(json.loads(record.to_json()))


def test_a_record_by_the_owner_is_written_exactly_as_before() -> None:
    """Issue #19 item 8: ``non_owner`` is left out, not written as null, when the request was
    the owner's: the owner's records (and every chain written before the field existed) are
    byte for byte what they were, and read back as they were."""
    record = _record()
    assert "non_owner" not in record.to_dict()
    assert "non_owner" not in record.to_json()
    assert DecisionRecord.from_dict(json.loads(record.to_json())) == record


@pytest.mark.parametrize("kind", sorted(NON_OWNER_KINDS))
def test_a_record_by_someone_else_says_so(kind: str) -> None:
    record = _record(
        rule_id=Rule.HUB_NON_OWNER_ACCESS,
        allowed=True,
        event_kind=EventKind.NON_OWNER_ACCESS,
        user="idle-culler" if kind == "service" else "admin",
        non_owner=kind,
    )
    data = json.loads(record.to_json())
    assert data["non_owner"] == kind
    _validator().validate(data)
    assert DecisionRecord.from_dict(data) == record


def test_non_owner_is_a_server_value_and_validated() -> None:
    with pytest.raises(ValueError, match="non-owner"):
        _record(non_owner="admin")
    data = json.loads(_record().to_json())
    del data["subject"]  # a required field stays required
    with pytest.raises(KeyError):
        DecisionRecord.from_dict(data)


def test_a_chain_with_records_of_others_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with ChainedFileSink(path, fsync="never") as sink:
        sink.append(_record())
        sink.append(_record(user="admin", non_owner="user"))
    assert verify_log([str(path)], None).ok
    lines = path.read_bytes().splitlines()
    assert b'"non_owner":"user"' in lines[2]
    assert b"non_owner" not in lines[1]


def test_record_fields() -> None:
    record = _record(
        time=datetime(2026, 5, 9, 9, 35, 25, 123456, tzinfo=timezone(timedelta(hours=2)))
    )
    assert record.time == "2026-05-09T07:35:25.123Z"
    assert record.path == "/api/contents/x.ipynb"
    assert record.decision == "deny"
    assert record.rule_id == "HS-ORIGIN-003"
    assert TOKEN not in record.to_json()
    assert "\n" not in record.to_json()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"/lab?token={TOKEN}", "/lab"),
        (f"/lab#token={TOKEN}", "/lab"),
        (f"/lab/?next=/x%3Ftoken%3D{TOKEN}", "/lab/"),
        (f"http://user:{TOKEN}@host:8888/api/x?y=1", "/api/x"),
        ("/api/kernels/6c1f0e2b9a8d7c6b5a4f", "/api/kernels/6c1f0e2b9a8d7c6b5a4f"),  # API ids stay
        ("", ""),
    ],
)
def test_redact_path(raw: str, expected: str) -> None:
    assert redact_path(raw) == expected


def test_client_controlled_values_are_normalised_not_trusted() -> None:
    record = _record(
        method="G\nET",
        scheme="javascript",
        client_ip="10.0.0.1\n[E] forged",
        request_id="abc\r\ndef" + "x" * 500,
        user="",
        path="/" + "a" * 5000,
    )
    _validator().validate(record.to_dict())
    assert record.method == "INVALID"
    assert record.scheme == "unknown"
    assert record.client_ip == "invalid"
    assert "\n" not in record.request_id
    assert len(record.request_id) <= 128
    assert record.user is None
    assert len(record.path) <= 2048


def test_reason_and_subject_are_scrubbed() -> None:
    record = _record(
        reason=f"redirect to /lab?token={TOKEN} refused",
        subject=f"renamed to /x?auth={TOKEN}",
        secrets=(TOKEN,),
    )
    assert TOKEN not in record.to_json()


@pytest.mark.parametrize(
    "overrides",
    [
        {"rule_id": "not a rule"},
        {"route_class": "bogus"},
        {"event_kind": "coffee_made"},
        {"policy_fingerprint": "whatever"},
    ],
)
def test_server_controlled_values_are_strict(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"rule id|route class|event kind|fingerprint"):
        _record(**overrides)


def test_naive_times_and_raw_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 1, 1))
    good = _record().to_dict()
    with pytest.raises(ValueError, match="query or fragment"):
        DecisionRecord.from_dict({**good, "path": "/lab?token=x"})
    assert DecisionRecord.from_dict(good) == DecisionRecord(**good)


def test_record_from_policy_decision() -> None:
    record = record_from_decision(
        allow(Rule.HOST_ALLOWED, "listed host"),
        route_class="page",
        method="GET",
        path="/lab",
        client_ip="::1",
    )
    assert (record.rule_id, record.decision, record.client_ip) == ("HS-HOST-001", "allow", "::1")
    assert record.policy_fingerprint == "unknown"


# -- the file sink ---------------------------------------------------------------------------------


def test_file_is_private_append_only_and_one_write_per_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    writes: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    with ChainedFileSink(path, fsync="always") as sink:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        fd = sink._fd
        assert fd is not None
        assert os.get_blocking(fd)
        import fcntl

        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
        monkeypatch.setattr(chain_module.os, "write", spy)
        for i in range(5):
            sink.append(_record(request_id=f"r{i}"))
        monkeypatch.setattr(chain_module.os, "write", real_write)
    assert len(writes) == 5
    for data in writes:
        assert data.endswith(b"\n")
        assert data.count(b"\n") == 1


def test_existing_loose_permissions_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ChainedFileSink(path, fsync="never").close()
    path.chmod(0o644)
    ChainedFileSink(path, fsync="never").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_symlink_at_the_log_path_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("do not touch\n")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(victim)
    with pytest.raises(chain_module.AuditChainError):
        ChainedFileSink(link, fsync="never")
    assert victim.read_text() == "do not touch\n"


def test_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with ChainedFileSink(path, fsync="never"):
        with pytest.raises(AuditLogBusy):
            ChainedFileSink(path, fsync="never")
        code = (
            "import sys\n"
            "from hardened_server.trail.chain import ChainedFileSink, AuditLogBusy\n"
            "try:\n    ChainedFileSink(sys.argv[1], fsync='never')\n"
            "except AuditLogBusy:\n    sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, timeout=60)
        assert proc.returncode == 3


@pytest.mark.parametrize(
    "spec", ["sometimes", "interval:", "interval:0", "interval:-1", "interval:nan"]
)
def test_bad_fsync_policy(spec: str) -> None:
    with pytest.raises(ValueError, match="fsync policy"):
        FsyncPolicy.parse(spec)


def test_fsync_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(chain_module.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    for spec, at_least, at_most in [("always", 10, 99), ("never", 0, 1), ("interval:3600", 0, 1)]:
        calls.clear()
        sink = ChainedFileSink(tmp_path / f"{spec}.jsonl", fsync=spec)
        for _ in range(10):
            sink.append(_record())
        assert at_least <= len(calls) <= at_most, spec
        sink.close()  # close always syncs


def test_concurrent_appends_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    seqs: list[int] = []
    with ChainedFileSink(path, fsync="never", max_bytes=8192) as sink:

        def work() -> None:
            for _ in range(50):
                seqs.append(sink.append(_record()).seq)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(set(seqs)) == 400
    result = verify_log([*rotated_files(path), str(path)], None)
    assert result.ok, result.problem


def test_failed_write_is_not_acknowledged_and_is_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = ChainedFileSink(path, fsync="never")
    sink.append(_record())
    real = os.write
    calls = {"n": 0}

    def half_then_fail(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real(fd, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(chain_module.os, "write", half_then_fail)
    with pytest.raises(AuditWriteError):
        sink.append(_record())
    monkeypatch.setattr(chain_module.os, "write", real)
    entry = sink.append(_record())
    sink.close()
    assert entry.seq == 3  # genesis 0, decision 1, resume 2, decision 3: the torn one got none
    result = verify_log([str(path)], None)
    assert result.ok, result.problem
    assert result.closed_cleanly


def test_damaged_last_record_is_not_extended(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with ChainedFileSink(path, fsync="never") as sink:
        sink.append(_record())
    lines = path.read_bytes().splitlines()
    lines[-1] = lines[-1].replace(b'"close"', b'"clOse"')
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(chain_module.AuditChainError):
        ChainedFileSink(path, fsync="never")


CHILD = textwrap.dedent(
    """
    import sys, threading
    from hardened_server.trail.chain import ChainedFileSink
    from hardened_server.trail.record import build_decision_record

    path, max_bytes, key = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
    sink = ChainedFileSink(path, fsync="never", max_bytes=max_bytes,
                           signing_key_path=key, checkpoint_every=7)
    out = threading.Lock()

    def work(n):
        while True:
            record = build_decision_record(
                rule_id="HS-HOST-002", allowed=False, reason="load " + "x" * (50 * n),
                route_class="api", method="GET", path="/api/x", client_ip="127.0.0.1")
            entry = sink.append(record)
            with out:  # acknowledged: printed only after append() returned
                sys.stdout.write(f"{entry.seq}\\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    """
)


def _keypair(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.mark.parametrize("variant", ["plain", "rotating-signed"])
def test_sigkill_under_load_loses_no_acknowledged_record(tmp_path: Path, variant: str) -> None:
    path = tmp_path / "audit.jsonl"
    private, public = _keypair(tmp_path)
    max_bytes = str(1 << 30) if variant == "plain" else str(64 * 1024)
    key = str(private) if variant != "plain" else ""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), max_bytes, key],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout is not None
    acknowledged: list[int] = []
    first = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.endswith(b"\n"):  # a half-printed number was not acknowledged
                acknowledged.append(int(line))
                first.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert first.wait(30), "child never acknowledged a record"
        time.sleep(0.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        reader.join(30)
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) > 50

    files = [*rotated_files(path), str(path)] if path.exists() else rotated_files(path)
    result = verify_log(files, str(public) if key else None)
    assert result.ok, result.problem
    assert result.head_seq is not None
    # Records are contiguous 0..head_seq (verified); every acknowledged seq is among them.
    assert max(acknowledged) <= result.head_seq
    assert not result.closed_cleanly
    if variant != "plain":
        assert len(files) > 2

    # The restarted server continues the same chain.
    with ChainedFileSink(
        path,
        fsync="never",
        max_bytes=int(max_bytes),
        signing_key_path=key or None,
        checkpoint_every=7,
    ) as sink:
        sink.append(_record())
    files = [*rotated_files(path), str(path)]
    again = verify_log(files, str(public) if key else None)
    assert again.ok, again.problem
    assert again.closed_cleanly
    assert again.torn_tail is None


# -- EventLogger sink ------------------------------------------------------------------------------


@pytest.fixture
def event_logger() -> tuple[EventLogger, io.StringIO]:
    stream = io.StringIO()
    logger = EventLogger(handlers=[logging.StreamHandler(stream)])
    return logger, stream


def test_event_logger_sink_emits_the_registered_schema(
    event_logger: tuple[EventLogger, io.StringIO],
) -> None:
    logger, stream = event_logger
    sink = EventLoggerSink(logger)
    register_audit_schema(logger)  # idempotent
    sink.write(_record())
    event = json.loads(stream.getvalue())
    assert event["__schema__"] == SCHEMA_ID
    assert event["__schema_version__"] == "1"
    assert event["rule_id"] == "HS-ORIGIN-003"
    assert event["path"] == "/api/contents/x.ipynb"
    assert TOKEN not in stream.getvalue()


def test_clients_cannot_emit_the_audit_schema(
    event_logger: tuple[EventLogger, io.StringIO],
) -> None:
    """What ``POST /api/events`` does with a client's payload: a forged audit record."""
    logger, stream = event_logger
    register_audit_schema(logger)
    with pytest.raises(ForgedAuditEvent):
        logger.emit(schema_id=SCHEMA_ID, data=_record().to_dict())
    assert stream.getvalue() == ""
    assert not may_client_emit(SCHEMA_ID, allowed={SCHEMA_ID})
    assert not may_client_emit(
        "https://events.jupyter.org/jupyter_server/contents_service/v1",
        allowed={"https://events.jupyter.org/jupyter_server/contents_service/v1"},
    )
    assert may_client_emit(
        "https://example.org/lab/ui-event/v1", {"https://example.org/lab/ui-event/v1"}
    )
    assert not may_client_emit("https://example.org/lab/ui-event/v1")


def test_subscribers_do_not_receive_audit_events_without_audit_read() -> None:
    assert is_server_only_schema(SCHEMA_ID)
    assert not is_server_only_schema("https://events.jupyter.org/jupyter_server/kernel_actions/v1")
    assert subscriber_may_receive(SCHEMA_ID, may_read_audit=True)
    assert not subscriber_may_receive(SCHEMA_ID, may_read_audit=False)

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        logger = EventLogger()
        sink = EventLoggerSink(logger)
        user_got: list[str] = []
        admin_got: list[str] = []
        detached_got: list[str] = []

        async def user(*, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
            user_got.append(schema_id)

        async def admin(*, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
            admin_got.append(schema_id)

        async def stock(*, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
            detached_got.append(schema_id)

        # SubscribeWebsocket.open() subscribes to every registered schema like this:
        logger.add_listener(listener=filter_subscribe_listener(user, may_read_audit=False))
        logger.add_listener(listener=filter_subscribe_listener(admin, may_read_audit=lambda: True))
        logger.add_listener(listener=stock)
        detach_server_only_listener(logger, stock)
        sink.write(_record())
        await logger.gather_listeners()
        return user_got, admin_got, detached_got

    user_got, admin_got, detached_got = asyncio.run(scenario())
    assert user_got == []
    assert admin_got == [SCHEMA_ID]
    assert detached_got == []


# -- stdout sink and the trail ---------------------------------------------------------------------


def test_trail_fans_out_and_stdout_carries_the_chain_line(tmp_path: Path) -> None:
    out = io.BytesIO()
    registry = CollectorRegistry()
    trail = AuditTrail(
        file_sink=ChainedFileSink(tmp_path / "audit.jsonl", fsync="never"),
        sinks=[StdoutSink(out)],
        metrics=AuditMetrics(registry),
        secrets=[TOKEN],
        policy_fingerprint="sha256:" + "aa" * 32,
    )
    entry = trail.decision(
        deny(Rule.HOST_FOREIGN, f"Host evil.example?token={TOKEN}"),
        route_class="page",
        method="GET",
        path=f"/lab?token={TOKEN}",
        client_ip="203.0.113.9",
    )
    assert entry is not None
    assert trail.head == (entry.seq, entry.hash)
    trail.close()
    shipped = out.getvalue().splitlines()
    assert shipped == [entry.line]
    on_disk = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    assert entry.line in on_disk
    assert TOKEN.encode() not in out.getvalue() + b"".join(on_disk)
    assert json.loads(entry.line)["event"]["policy_fingerprint"] == "sha256:" + "aa" * 32


def test_broken_secondary_sink_does_not_break_the_request(tmp_path: Path) -> None:
    class Broken:
        def write(self, record: DecisionRecord, entry: Any = None) -> None:
            raise BrokenPipeError("collector went away")

    trail = AuditTrail(
        file_sink=ChainedFileSink(tmp_path / "a.jsonl", fsync="never"), sinks=[Broken()]
    )
    assert trail.record(_record()) is not None
    trail.close()


def test_stdout_sink_without_file_sink(capfd: pytest.CaptureFixture[str]) -> None:
    trail = AuditTrail(sinks=[StdoutSink()])
    assert trail.record(_record()) is None
    line = json.loads(capfd.readouterr().out)
    assert line["schema"] == SCHEMA_ID
    _validator().validate(line["event"])


def test_open_audit_trail(tmp_path: Path) -> None:
    logger = EventLogger()
    trail = open_audit_trail(
        path=tmp_path / "audit.jsonl", fsync="never", event_logger=logger, metrics=False
    )
    trail.event(
        rule_id=Rule.AUTH_REQUIRED,
        allowed=True,
        reason="password accepted",
        event_kind=EventKind.LOGIN_SUCCESS,
        route_class="page",
        method="POST",
        path="/login",
        client_ip="127.0.0.1",
        user="alice",
    )
    trail.sync()
    trail.close()
    assert SCHEMA_ID in logger.schemas.schema_ids
    assert verify_log([str(tmp_path / "audit.jsonl")], None).ok


def test_request_values_from_a_tornado_request() -> None:
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    headers = HTTPHeaders(
        {
            "Host": "h.example",
            "Upgrade": "websocket",
            "X-Request-ID": "abc\ndef",
            "Cookie": f"t={TOKEN}",
        }
    )
    start = RequestStartLine("GET", f"/api/kernels/k/channels?token={TOKEN}", "HTTP/1.1")
    request = HTTPServerRequest(start_line=start, headers=headers)
    request.protocol = "https"
    request.remote_ip = "198.51.100.4"
    values = request_values(request, route_class="api", user="alice")
    record = build_decision_record(rule_id="HS-AUTH-001", allowed=False, reason="r", **values)
    assert record.scheme == "wss"
    assert record.path == "/api/kernels/k/channels"
    assert record.client_ip == "198.51.100.4"
    assert record.request_id == "abc_def"
    assert TOKEN not in record.to_json()


# -- metrics ---------------------------------------------------------------------------------------


def _samples(registry: CollectorRegistry) -> dict[str, list[Any]]:
    text = generate_latest(registry).decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_metrics_match_records_and_use_fixed_label_sets(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = AuditMetrics(registry)
    trail = AuditTrail(
        file_sink=ChainedFileSink(tmp_path / "audit.jsonl", fsync="never"), metrics=metrics
    )
    emitted = [
        _record(rule_id=Rule.HOST_FOREIGN),
        _record(rule_id=Rule.HOST_FOREIGN),
        _record(rule_id=Rule.HOST_ALLOWED, allowed=True),
        _record(rule_id=Rule.AUTH_REQUIRED, event_kind=EventKind.LOGIN_FAILURE, user="mallory"),
        _record(rule_id=Rule.AUTH_REQUIRED, event_kind=EventKind.LOGIN_FAILURE),
        _record(rule_id="HS-EXT-999"),  # not a known rule: counted as "other"
    ]
    for record in emitted:
        trail.record(record)
    trail.close()
    metrics.observe_request("api", 0.02)
    with metrics.time_request("page"):
        pass
    metrics.set_active_sessions(3)
    metrics.bind_live_tokens(lambda: 2)

    samples = _samples(registry)
    decisions = {
        (s.labels["rule_id"], s.labels["outcome"]): s.value
        for s in samples["hardened_server_decisions"]
        if s.name == "hardened_server_decisions_total"
    }
    assert decisions == {
        ("HS-HOST-002", "deny"): 2,
        ("HS-HOST-001", "allow"): 1,
        ("HS-AUTH-001", "deny"): 2,
        (OTHER_RULE, "deny"): 1,
    }
    assert sum(decisions.values()) == len(emitted)
    failures = [s for s in samples["hardened_server_login_failures"] if s.name.endswith("_total")]
    assert failures[0].value == 2
    assert samples["hardened_server_active_sessions"][0].value == 3
    assert samples["hardened_server_live_tokens"][0].value == 2
    durations = samples["hardened_server_request_duration_seconds"]
    counts = {s.labels["route_class"]: s.value for s in durations if s.name.endswith("_count")}
    assert counts == {"api": 1, "page": 1}

    allowed_rules = {r.value for r in Rule} | {OTHER_RULE}
    for family in samples.values():
        for sample in family:
            assert set(sample.labels) <= {"rule_id", "outcome", "route_class", "le"}
            assert sample.labels.get("rule_id", OTHER_RULE) in allowed_rules
            assert sample.labels.get("outcome", "allow") in {"allow", "deny"}
            assert sample.labels.get("route_class", "api") in ROUTE_CLASSES
    text = generate_latest(registry).decode()
    for personal in ("mallory", "alice", "/api/contents"):
        assert personal not in text


def test_metric_labels_refuse_unbounded_values() -> None:
    metrics = AuditMetrics(CollectorRegistry())
    with pytest.raises(ValueError, match="route class"):
        metrics.observe_request("/api/contents/secret.txt", 0.1)


def test_rule_labels_are_the_registry_families_and_other() -> None:
    """The label set is derived from the registry (policy/rules.py ``Family``): a hub login is
    counted under its own id (it was ``other`` while metrics kept a family list of their own),
    and the families no runtime id has (TOKEN, LOGIN, SESSION) are ``other``."""
    for rule in Rule:
        assert metrics_module.rule_label(rule) == rule.value, rule
        assert rule.value in metrics_module.known_rule_ids()
    assert metrics_module.rule_label(Rule.HUB_LOGIN) == "HS-HUB-001"
    for outside in ("HS-TOKEN-001", "HS-LOGIN-001", "HS-SESSION-001", "HS-EXT-999", "hs-host-001"):
        assert metrics_module.rule_label(outside) == OTHER_RULE == "other", outside
    registry = CollectorRegistry()
    metrics = AuditMetrics(registry)
    metrics.observe_decision(_record(rule_id=Rule.HUB_LOGIN, allowed=True))
    metrics.observe_decision(_record(rule_id="HS-SESSION-001"))
    counted = {
        (s.labels["rule_id"], s.labels["outcome"]): s.value
        for s in _samples(registry)["hardened_server_decisions"]
        if s.name == "hardened_server_decisions_total"
    }
    assert counted == {("HS-HUB-001", "allow"): 1, (OTHER_RULE, "deny"): 1}


def test_default_metrics_survive_reimport() -> None:
    first = default_metrics()
    assert default_metrics() is first
    reloaded = importlib.reload(metrics_module)
    assert reloaded.default_metrics() is first  # no "Duplicated timeseries" on REGISTRY


# -- the file removed, moved or replaced while open (issue #19) ------------------------------------


def _lost_trail(tmp_path: Path) -> tuple[AuditTrail, io.BytesIO, Path]:
    out = io.BytesIO()
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(file_sink=ChainedFileSink(path, fsync="never"), sinks=[StdoutSink(out)])
    for _ in range(3):
        trail.record(_record())
    return trail, out, path


def _shipped(out: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_an_unlinked_audit_file_is_noticed_before_the_next_record(tmp_path: Path) -> None:
    """A notebook runs as the server's user and can ``os.unlink`` the live file: the next
    record does not go to the deleted inode. A new file continues the chain (a rotation
    record with ``lost``), HS-AUDIT-004 goes to the other sinks and the new file, and the
    record at hand follows it."""
    trail, out, path = _lost_trail(tmp_path)
    last_before = trail.head
    assert last_before is not None
    os.unlink(path)
    entry = trail.record(_record(rule_id=Rule.HOST_FOREIGN))
    trail.close()
    assert entry is not None
    lines = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert lines[0]["kind"] == "rotation"
    assert lines[0]["lost"] == "removed"
    assert lines[0]["previous_last_seq"] == last_before[0]
    assert lines[0]["prev"] == last_before[1]
    assert lines[1]["event"]["rule_id"] == "HS-AUDIT-004"
    assert "removed while open: records 0..3" in lines[1]["event"]["reason"]
    assert lines[2]["event"]["rule_id"] == str(Rule.HOST_FOREIGN)
    shipped = [r["event"]["rule_id"] for r in _shipped(out) if r.get("kind") == "decision"]
    assert shipped[-2:] == ["HS-AUDIT-004", str(Rule.HOST_FOREIGN)]
    result = verify_log([str(path)])
    assert result.ok, result.problem
    assert any("removed while the server had it open (HS-AUDIT-004)" in n for n in result.notes)


def test_a_file_renamed_over_the_audit_file_is_kept_aside_and_never_extended(
    tmp_path: Path,
) -> None:
    trail, _out, path = _lost_trail(tmp_path)
    moved = tmp_path / "hidden.jsonl"
    os.rename(path, moved)  # the evidence moved away ...
    path.write_bytes(b'{"forged": true}\n')  # ... and a file of the attacker's in its place
    assert trail.check_file() is not None
    trail.record(_record())
    trail.close()
    foreign = [p for p in tmp_path.iterdir() if ".foreign-" in p.name]
    assert len(foreign) == 1
    assert foreign[0].read_bytes() == b'{"forged": true}\n'
    first = json.loads(path.read_bytes().splitlines()[0])
    assert first["lost"] == "replaced"
    # The moved file and the new one verify as one chain: nothing is missing.
    result = verify_log([str(moved), str(path)])
    assert result.ok, result.problem
    assert result.closed_cleanly


def test_verify_names_the_records_of_a_deleted_file(tmp_path: Path) -> None:
    """With an earlier rotated file given, the verifier says which records the deleted file
    held (they exist only on the off-host sinks now)."""
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(file_sink=ChainedFileSink(path, fsync="never", max_bytes=4096))
    while not chain_module.rotated_files(path):
        trail.record(_record())
    for _ in range(2):
        trail.record(_record())
    os.unlink(path)
    trail.record(_record())
    trail.close()
    result = verify_log([*chain_module.rotated_files(path), str(path)])
    assert result.problem is not None
    assert result.problem.kind == "deleted"
    assert "not among the files given" in result.problem.message


def test_no_new_file_fails_the_record_and_the_other_sinks_hear_of_it(tmp_path: Path) -> None:
    out = io.BytesIO()
    directory = tmp_path / "d"
    directory.mkdir()
    path = directory / "audit.jsonl"
    trail = AuditTrail(file_sink=ChainedFileSink(path, fsync="never"), sinks=[StdoutSink(out)])
    trail.record(_record())
    os.unlink(path)
    os.rmdir(directory)
    with pytest.raises(AuditWriteError):
        trail.record(_record())
    rules = [r["event"]["rule_id"] for r in _shipped(out) if r.get("kind") == "decision"]
    assert rules.count("HS-AUDIT-004") == 1
    directory.mkdir()
    trail.record(_record())  # the file can be opened again: the chain goes on
    trail.close()
    lines = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert lines[0]["lost"] == "removed"
    first_decision = next(x for x in lines if x["kind"] == "decision")
    assert first_decision["event"]["rule_id"] == "HS-AUDIT-004"
    rules = [r["event"]["rule_id"] for r in _shipped(out) if r.get("kind") == "decision"]
    assert rules.count("HS-AUDIT-004") == 1
