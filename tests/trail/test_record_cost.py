"""What one audit record costs, counted (issues #22 and #20): the file-read record made
``GET /files`` 0.90x stock, and a record per cell slowed the kernel round trip. Counts, never
timings: comparisons of the audit file per record, encoder calls, strftime and scrub calls, and
the bytes, which must stay exactly what the two-pass encoding wrote."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jupyter_events import EventLogger
from prometheus_client import CollectorRegistry

from hardened_server.enforcement import recorder
from hardened_server.policy.decisions import Rule
from hardened_server.trail import chain as chain_module
from hardened_server.trail import record as record_module
from hardened_server.trail.chain import (
    ChainedFileSink,
    canonical_bytes,
    hashed_line,
    record_hash,
)
from hardened_server.trail.events import EventLoggerSink
from hardened_server.trail.metrics import AuditMetrics
from hardened_server.trail.record import (
    SCHEMA_ID,
    DecisionRecord,
    EventKind,
    build_decision_record,
    format_time,
)
from hardened_server.trail.verify import verify_log
from hardened_server.trail.writer import AuditTrail


def _record(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "rule_id": Rule.ACCT_FILE_READ,
        "allowed": True,
        "reason": "a file was read (files)",
        "route_class": "files",
        "method": "GET",
        "path": "/files/payload-64k.txt",
        "client_ip": "127.0.0.1",
        "scheme": "http",
        "user": "alice",
        "request_id": "req-1",
        "event_kind": EventKind.FILE_READ.value,
        "detail": {"file": "payload-64k.txt", "via": "files", "size": 65536},
        "policy_fingerprint": "sha256:" + "0f" * 32,
    }
    values.update(overrides)
    return build_decision_record(**values)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text().filter(lambda k: k != "hash"), _json, max_size=8))
def test_one_pass_encoding_is_the_two_pass_bytes(obj: dict[str, Any]) -> None:
    """The line and hash written are byte for byte what hashing the canonical bytes without
    ``hash`` and encoding with it gave (keys that sort before and after "hash", escapes)."""
    line, digest = hashed_line(obj)
    assert digest == record_hash(obj)
    assert line == canonical_bytes({**obj, "hash": digest})


def test_an_object_that_has_a_hash_is_encoded_the_old_way() -> None:
    obj = {"a": 1, "hash": "stale", "z": [1]}
    line, digest = hashed_line(obj)
    assert digest == record_hash(obj)
    assert line == canonical_bytes({**obj, "hash": digest})


class _Counted:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {"stat": 0, "fstat": 0, "encode": 0}
        real_stat, real_fstat = os.stat, os.fstat
        encoder = chain_module._CANONICAL
        real_encode = encoder.encode

        def stat(*args: Any, **kwargs: Any) -> Any:
            self.calls["stat"] += 1
            return real_stat(*args, **kwargs)

        def fstat(*args: Any, **kwargs: Any) -> Any:
            self.calls["fstat"] += 1
            return real_fstat(*args, **kwargs)

        def encode(value: Any) -> str:
            # the record's event (its largest part), alone or inside the object encoded:
            # once per record is one encoding; the two-pass way encoded it twice
            if isinstance(value, dict) and ("rule_id" in value or "rule_id" in value.get(
                "event", ()
            )):
                self.calls["encode"] += 1
            return real_encode(value)

        monkeypatch.setattr(chain_module.os, "stat", stat)
        monkeypatch.setattr(chain_module.os, "fstat", fstat)
        monkeypatch.setattr(encoder, "encode", encode)

    def reset(self) -> None:
        for key in self.calls:
            self.calls[key] = 0


def test_a_record_compares_the_audit_file_once_and_encodes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer checks the file before every record (a removed or replaced file is noticed,
    tests/trail/test_trail.py); the sink used to compare again inside ``append``: four stat
    calls per record where two do. And the record was encoded twice (for the hash, then for
    the line)."""
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(file_sink=ChainedFileSink(path, fsync="never"))
    trail.record(_record())
    counted = _Counted(monkeypatch)
    for _ in range(10):
        trail.record(_record())
    assert counted.calls == {"stat": 10, "fstat": 10, "encode": 10}
    trail.close()
    assert verify_log([str(path)], None).ok


def test_a_record_is_two_encoder_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The line is encoded in two pieces (the members before ``hash`` and after it), not one
    encoder call per key and per value (issue #20: two dozen calls through the encoder's Python
    layer per record). Same bytes: the chain verifies, and the one-pass property above."""
    path = tmp_path / "audit.jsonl"
    sink = ChainedFileSink(path, fsync="never", server={"host": "h", "port": 1})
    trail = AuditTrail(file_sink=sink)
    trail.record(_record())
    calls: list[Any] = []
    encoder = chain_module._CANONICAL
    real_encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda value: calls.append(value) or real_encode(value))
    for _ in range(10):
        trail.record(_record())
    assert len(calls) == 20
    monkeypatch.undo()
    trail.close()
    assert verify_log([str(path)], None).ok


def test_an_append_without_the_writers_check_still_compares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``append`` alone (no ``check_file`` before it), or a second append after one check:
    each compares the file itself. One comparison per record, never none."""
    path = tmp_path / "audit.jsonl"
    sink = ChainedFileSink(path, fsync="never")
    counted = _Counted(monkeypatch)
    sink.append(_record())
    assert counted.calls["stat"] == 1
    counted.reset()
    sink.check_file()
    sink.append(_record())
    sink.append(_record())
    assert counted.calls["stat"] == 2
    sink.close()


def test_a_file_removed_between_the_check_and_the_next_record_is_noticed(
    tmp_path: Path,
) -> None:
    """The check the writer makes covers one record: the next one compares again."""
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(file_sink=ChainedFileSink(path, fsync="never"))
    trail.record(_record())
    os.unlink(path)
    trail.record(_record(rule_id=Rule.HOST_FOREIGN, event_kind=None, detail=None))
    trail.close()
    lines = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert lines[0]["kind"] == "rotation"
    assert lines[0]["lost"] == "removed"


def test_the_activity_log_line_is_not_built_when_debug_is_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``record_activity`` scrubbed its DEBUG line's values for every file read, logged or
    not. The record itself is written either way."""
    written: list[dict[str, Any]] = []
    scrubbed: list[Any] = []
    monkeypatch.setattr(recorder, "_to_trail", lambda request, **kw: written.append(kw))
    real_safe = recorder._safe
    monkeypatch.setattr(recorder, "_safe", lambda v: scrubbed.append(v) or real_safe(v))
    detail = {"file": "a.txt", "via": "files", "size": 3}
    caplog.set_level(logging.INFO, logger=recorder.log.name)
    recorder.record_activity(
        None, EventKind.FILE_READ, rule_id=Rule.ACCT_FILE_READ, reason="r", detail=detail
    )
    assert scrubbed == []
    assert len(written) == 1
    assert written[0]["detail"] == detail
    caplog.set_level(logging.DEBUG, logger=recorder.log.name)
    recorder.record_activity(
        None, EventKind.FILE_READ, rule_id=Rule.ACCT_FILE_READ, reason="r", detail=detail
    )
    assert scrubbed
    assert len(written) == 2
    assert "activity kind=file_read" in caplog.text


def test_the_time_is_formatted_by_strftime_once_per_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``strftime`` was a tenth of a record's build: the part up to the second is formatted
    once per second, and every time is still exactly what strftime gives."""
    calls: list[str] = []

    class Counted(datetime):
        def strftime(self, fmt: str) -> str:
            calls.append(fmt)
            return super().strftime(fmt)

        def astimezone(self, tz: Any = None) -> Counted:
            return self

    moments = [
        Counted(2026, 12, 8, 1, 2, 3, 4000, tzinfo=UTC),
        Counted(2026, 12, 8, 1, 2, 3, 999999, tzinfo=UTC),
        Counted(2026, 12, 8, 1, 2, 4, 0, tzinfo=UTC),
        Counted(2026, 12, 8, 1, 2, 4, 1000, tzinfo=UTC),
        Counted(999, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
    ]
    written = [format_time(m) for m in moments]
    expected = [
        datetime.strftime(m, "%Y-%m-%dT%H:%M:%S.") + f"{m.microsecond // 1000:03d}Z"
        for m in moments
    ]
    assert written == expected
    assert written[:4] == [
        "2026-12-08T01:02:03.004Z",
        "2026-12-08T01:02:03.999Z",
        "2026-12-08T01:02:04.000Z",
        "2026-12-08T01:02:04.001Z",
    ]
    assert len(calls) == 3  # 01:02:03, 01:02:04, and the year 999


def test_a_constant_reason_is_scrubbed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's own reason texts repeat record after record; scrubbing is pure, so each
    (reason, secrets) is scrubbed once. A secret in a reason is still removed."""
    scrubbed: list[str] = []
    real = record_module.scrub
    monkeypatch.setattr(record_module, "scrub", lambda t, s=(): scrubbed.append(t) or real(t, s))
    remembered = getattr(record_module, "_scrubbed_short_reason", None)
    if remembered is not None:
        remembered.cache_clear()  # what other tests scrubbed
    for _ in range(10):
        assert _record(reason="a file was read (files)").reason == "a file was read (files)"
    assert scrubbed == ["a file was read (files)"]
    secret = "s3cr3t-t0ken-value"
    leaked = _record(reason=f"refused ?token={secret}", secrets=(secret,))
    assert secret not in leaked.reason
    assert _record(reason=f"refused ?token={secret}", secrets=(secret,)).reason == leaked.reason
    long_reason = "x" * (record_module.MAX_REASON + 10)
    scrubbed.clear()
    _record(reason=long_reason)
    _record(reason=long_reason)
    assert scrubbed == [long_reason, long_reason]  # long texts are not kept


def test_the_event_logger_sink_builds_no_dict_when_nobody_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """jupyter_events drops an event with no handler and no listener; the sink built the
    record's dict for it on every record anyway. With a listener it still emits."""
    built: list[int] = []
    real_to_dict = DecisionRecord.to_dict
    monkeypatch.setattr(
        DecisionRecord, "to_dict", lambda self: built.append(1) or real_to_dict(self)
    )
    logger = EventLogger()
    sink = EventLoggerSink(logger)
    sink.write(_record())
    assert built == []
    heard: list[dict[str, Any]] = []

    async def listener(*, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        heard.append(data)

    async def emit_with_listener() -> None:
        logger.add_listener(schema_id=SCHEMA_ID, listener=listener)
        sink.write(_record())
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(emit_with_listener())
    assert built == [1]
    assert len(heard) == 1
    assert heard[0]["rule_id"] == Rule.ACCT_FILE_READ


def test_the_decision_counter_is_looked_up_once_per_label_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """prometheus_client's ``labels()`` (validation, a lock) ran for every record; its child
    for a label set never changes, so it is asked once. The counts stay right."""
    registry = CollectorRegistry()
    metrics = AuditMetrics(registry)
    asked: list[Any] = []
    real_labels = metrics.decisions.labels
    monkeypatch.setattr(
        metrics.decisions, "labels", lambda **kw: asked.append(kw) or real_labels(**kw)
    )
    for _ in range(5):
        metrics.observe_decision(_record())
    metrics.observe_decision(_record(rule_id=Rule.HOST_FOREIGN, allowed=False, event_kind=None))
    assert len(asked) == 2
    value = registry.get_sample_value(
        "hardened_server_decisions_total", {"rule_id": Rule.ACCT_FILE_READ, "outcome": "allow"}
    )
    assert value == 5
