"""What one audit record costs, counted (issue #22): the file-read record made ``GET /files``
0.90x stock. Counts, never timings: comparisons of the audit file per record, encodings per
record, and the bytes, which must stay exactly what the two-pass encoding wrote."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardened_server.enforcement import recorder
from hardened_server.policy.decisions import Rule
from hardened_server.trail import chain as chain_module
from hardened_server.trail.chain import (
    ChainedFileSink,
    canonical_bytes,
    hashed_line,
    record_hash,
)
from hardened_server.trail.record import EventKind, build_decision_record
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
            # a whole record (a dict with "seq") encoded in one piece
            if isinstance(value, dict) and "seq" in value:
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
    assert counted.calls == {"stat": 10, "fstat": 10, "encode": 0}
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
