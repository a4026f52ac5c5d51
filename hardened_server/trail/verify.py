"""``verify_log``: is this audit trail the one the server wrote, and if not, where does it break?

The verifier walks the chain (see :mod:`hardened_server.trail.chain`) across rotated files in
the order given and stops at the FIRST problem, named by the record number (``seq``) at which
the chain breaks:

* **edited** — a record's content does not match its own ``hash`` (a naive edit), or matches
  its own hash but not the ``prev`` its successor committed to (an edit with the hash
  recomputed): "record N was modified".
* **deleted** — a ``seq`` gap that is not a reordering: "record N is missing". A file whose
  first record is neither ``genesis`` nor ``rotation`` lost its head.
* **reordered** — a record appears out of ``seq`` order (the missing number appears later).
* **truncated** — a rotated file ends before the record its successor's rotation record names
  as its last (or ends inside a record), or the log ends before an externally anchored head.
* **corrupt** — a line that does not parse, in the middle of the trail.
* **chain_break** — a second ``genesis``, a rotation record that is not at the start of a file,
  files of different chains.
* **signature** — with a public key: a checkpoint whose signature does not verify, a missing
  checkpoint (more than ``checkpoint_every`` records without one), or a chain not signed with
  that key.

A **torn tail** is not tampering: the last line of the last file, unterminated or unparsable, is
what a crash in the middle of a write leaves behind (the record was never acknowledged). It is
reported separately and everything before it verifies. A torn line a restarted writer has
documented in its ``resume`` record (offset, length, SHA-256) is accepted anywhere.

:func:`verify_stream` (``verify-log --stream``) reads a *collected* stream instead: the stdout of
one or many servers, or a syslog collector's file, where every line (after any prefix) is a
chain line carrying its ``chain`` id and ``server`` (trail/origin.py). It sorts the lines into
chains and walks each as above, naming problems by the collected file and line.

What cannot be detected from the files alone: removing (or rewriting) records at the very end of
the live file, after the last signed checkpoint. Anchor the head elsewhere and pass
``expect_head`` (``--expect-head SEQ:HASH``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hardened_server.policy.rules import Rule
from hardened_server.trail.chain import (
    FORMAT_VERSION,
    GENESIS_PREV,
    RecordKind,
    canonical_bytes,
    iter_lines,
    key_id,
    load_public_key,
    record_hash,
    verify_checkpoint_signature,
)
from hardened_server.trail.record import (
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    SCHEMA_ID,
    DecisionRecord,
)

__all__ = [
    "ChainReport",
    "FileReport",
    "Problem",
    "ProblemKind",
    "StreamResult",
    "TornTail",
    "VerifyResult",
    "main",
    "verify_log",
    "verify_stream",
]

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_USAGE = 2

_HEX64 = frozenset("0123456789abcdef")
_KINDS = frozenset(k.value for k in RecordKind)
_SETUP_KINDS = frozenset({RecordKind.GENESIS, RecordKind.ROTATION, RecordKind.RESUME})


class ProblemKind(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    CHAIN_BREAK = "chain_break"
    SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class Problem:
    """The first place the trail is not what the server wrote."""

    kind: ProblemKind
    record: int  # the seq number at which the chain breaks
    file: str
    line: int  # 1-based line in ``file`` (0 when the problem is past the end of the file)
    message: str


@dataclass(frozen=True, slots=True)
class TornTail:
    """An interrupted last write: not tampering, nothing acknowledged was lost."""

    file: str
    line: int
    offset: int
    length: int
    reason: str  # "no trailing newline" | "unparsable final line"


@dataclass(slots=True)
class FileReport:
    file: str
    status: str = "not verified"  # ok | torn tail | tampered | not verified
    first_seq: int | None = None
    last_seq: int | None = None
    records: int = 0
    checkpoints: int = 0


@dataclass(slots=True)
class VerifyResult:
    problem: Problem | None = None
    torn_tail: TornTail | None = None
    files: list[FileReport] = field(default_factory=list)
    records_verified: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    checkpoints_verified: int = 0
    signed_through: int | None = None  # seq of the last checkpoint whose signature verified
    closed_cleanly: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def tampered(self) -> bool:
        return self.problem is not None


class _Stop(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(slots=True)
class _Line:
    file_index: int
    number: int  # 1-based
    offset: int
    raw: bytes
    terminated: bool
    obj: dict[str, Any] | None
    origin: str = ""  # stream mode: the collected file this line came from


def _parse_record(raw: bytes) -> dict[str, Any] | None:
    """A structurally valid chain record, or None."""

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        obj = json.loads(raw, parse_constant=no_constants)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    seq, prev, digest = obj.get("seq"), obj.get("prev"), obj.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return None
    for value in (prev, digest):
        if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX64:
            return None
    if obj.get("v") != FORMAT_VERSION or obj.get("kind") not in _KINDS:
        return None
    return obj


class _Verifier:
    def __init__(
        self,
        paths: Sequence[str],
        public_key: Ed25519PublicKey | None,
        expect_head: tuple[int, str] | None,
    ) -> None:
        self.paths = list(paths)
        self.stream = False  # one chain sorted out of a collected stream (verify_stream)
        self.public_key = public_key
        self.key_id = key_id(public_key) if public_key else None
        self.expect_head = expect_head
        self.result = VerifyResult(files=[FileReport(p) for p in self.paths])
        self.blobs: list[bytes] = []
        self.lines: list[list[_Line]] = []
        # chain state
        self.expected: int | None = None
        self.prev: str | None = None
        self.chain_id: str | None = None
        self.signing: str | None = None
        self.every: int | None = None
        self.since = 0
        self.after_close = False
        self.hashes: dict[int, str] = {}
        self.last_in_file: list[tuple[int, str] | None] = []

    # -- helpers -------------------------------------------------------------------------------

    def stop(self, kind: ProblemKind, record: int, line: _Line | None, message: str) -> _Stop:
        name = self.paths[line.file_index] if line else self.paths[-1]
        if line is not None and line.origin:
            name = line.origin
        return _Stop(Problem(kind, max(record, 0), name, line.number if line else 0, message))

    def load(self) -> None:
        for index, path in enumerate(self.paths):
            with open(path, "rb") as fh:
                data = fh.read()
            self.blobs.append(data)
            self.lines.append(
                [
                    # An unterminated line is never a record, even if it parses: its write was
                    # cut short before the newline, so it was never acknowledged.
                    _Line(index, n, off, raw, term, _parse_record(raw) if term else None)
                    for n, (off, raw, term) in enumerate(iter_lines(data), start=1)
                ]
            )

    def seq_appears_later(self, seq: int, file_index: int, line_index: int) -> bool:
        for fi in range(file_index, len(self.lines)):
            start = line_index + 1 if fi == file_index else 0
            for line in self.lines[fi][start:]:
                if line.obj is not None and line.obj["seq"] == seq:
                    return True
        return False

    # -- the walk ------------------------------------------------------------------------------

    def run(self) -> VerifyResult:
        try:
            for fi in range(len(self.paths)):
                self.verify_file(fi)
            self.check_expected_head()
        except _Stop as stop:
            self.result.problem = stop.problem
            for report in self.result.files:
                if report.file == stop.problem.file and report.status != "tampered":
                    report.status = "tampered"
                    break
        res = self.result
        if self.public_key is None:
            res.notes.append("signatures not verified (no public key given)")
        elif res.problem is None and res.head_seq is not None:
            through = res.signed_through
            if through is None or through < res.head_seq:
                first = 0 if through is None else through + 1
                res.notes.append(
                    f"records {first}..{res.head_seq} are not yet covered by a signed checkpoint"
                )
        return res

    def verify_file(self, fi: int) -> None:
        report = self.result.files[fi]
        lines = self.lines[fi]
        is_last_file = fi == len(self.paths) - 1
        first_record = True
        acknowledged_torn: _Line | None = None
        for li, line in enumerate(lines):
            if line.obj is None:
                if self.accept_torn(fi, li, line, is_last_file, report):
                    return
                acknowledged_torn = line
                continue
            obj = line.obj
            self.check_self(line, obj)
            if first_record:
                self.check_file_start(fi, line, obj)
                first_record = False
            else:
                self.check_sequence(fi, li, line, obj)
            self.check_kind(line, obj, acknowledged_torn)
            acknowledged_torn = None
            self.advance(line, obj, report)
        if report.status == "not verified":
            report.status = "ok"
        if first_record and not is_last_file:
            raise self.stop(ProblemKind.TRUNCATED, self.expected or 0, None, "empty rotated file")
        last = report.last_seq
        self.last_in_file.append((last, self.prev or "") if last is not None else None)

    def accept_torn(
        self, fi: int, li: int, line: _Line, is_last_file: bool, report: FileReport
    ) -> bool:
        """An unparsable/unterminated line: torn tail (True: stop here, fine), acknowledged by
        the following resume record (False: skip it), or a problem (raises)."""
        lines = self.lines[fi]
        at_end = li == len(lines) - 1
        expected = self.expected if self.expected is not None else 0
        if at_end and is_last_file:
            reason = "no trailing newline" if not line.terminated else "unparsable final line"
            self.result.torn_tail = TornTail(
                self.paths[fi], line.number, line.offset, len(line.raw), reason
            )
            report.status = "torn tail"
            self.result.notes.append(
                f"torn tail at line {line.number} of {self.paths[fi]} ({reason}, "
                f"{len(line.raw)} bytes): an interrupted write, not tampering"
            )
            return True
        nxt = lines[li + 1].obj if not at_end else None
        torn = nxt.get("torn") if nxt and nxt.get("kind") == RecordKind.RESUME else None
        if (
            line.terminated
            and isinstance(torn, dict)
            and torn.get("offset") == line.offset
            and torn.get("length") == len(line.raw)
            and torn.get("sha256") == hashlib.sha256(line.raw).hexdigest()
        ):
            return False
        if at_end:
            raise self.stop(
                ProblemKind.TRUNCATED,
                expected,
                line,
                f"rotated file ends inside record {expected} (a partial line in a closed file)",
            )
        raise self.stop(
            ProblemKind.CORRUPT, expected, line, f"record {expected}: line does not parse"
        )

    def check_self(self, line: _Line, obj: dict[str, Any]) -> None:
        number = self.expected if self.expected is not None else obj["seq"]
        if obj["hash"] != record_hash(obj):
            raise self.stop(
                ProblemKind.EDITED,
                number,
                line,
                f"record {number} was modified: its content does not match its hash",
            )
        if canonical_bytes(obj) != line.raw:
            raise self.stop(
                ProblemKind.EDITED,
                number,
                line,
                f"record {number} was rewritten: not in the canonical encoding",
            )

    def check_file_start(self, fi: int, line: _Line, obj: dict[str, Any]) -> None:
        kind, seq = obj["kind"], obj["seq"]
        if fi == 0:
            if kind == RecordKind.GENESIS:
                if seq != 0 or obj["prev"] != GENESIS_PREV:
                    raise self.stop(ProblemKind.EDITED, seq, line, "genesis record is not record 0")
                return
            if kind == RecordKind.ROTATION:
                self.note_lost(obj)
                self.result.notes.append(
                    f"the chain starts before {self.paths[0]} (earlier files not given); "
                    f"verified from record {seq}"
                )
                self.expected, self.prev = seq, obj["prev"]
                return
            if self.stream and kind == RecordKind.RESUME:
                self.result.notes.append(f"the stream starts at resume record {seq}")
                self.expected, self.prev = seq, obj["prev"]
                return
            if seq > 0 and self.seq_appears_later(0, 0, 0):
                raise self.stop(
                    ProblemKind.REORDERED,
                    0,
                    line,
                    f"records out of order: record {seq} is where record 0 belongs",
                )
            raise self.stop(
                ProblemKind.DELETED,
                seq - 1,
                line,
                f"the file starts at record {seq} without a genesis or rotation record: "
                f"record {seq - 1} and possibly earlier ones are missing",
            )
        previous = self.paths[fi - 1]
        last = self.last_in_file[fi - 1]
        last_seq = last[0] if last else -1
        # Problems with the previous file are reported against it, at the place where its
        # missing record(s) would be.
        prev_end = _Line(
            fi - 1, len(self.lines[fi - 1]) + 1, len(self.blobs[fi - 1]), b"", True, None
        )
        if kind != RecordKind.ROTATION:
            raise self.stop(
                ProblemKind.CHAIN_BREAK,
                self.expected or 0,
                line,
                f"{self.paths[fi]} does not continue {previous} (no rotation record first)",
            )
        self.note_lost(obj)
        claimed = obj.get("previous_last_seq")
        named = obj.get("previous_file")
        if (
            isinstance(claimed, int)
            and claimed > last_seq
            and isinstance(named, str)
            and named != os.path.basename(previous)
        ):
            raise self.stop(
                ProblemKind.DELETED,
                last_seq + 1,
                prev_end,
                f"records {last_seq + 1}..{claimed} are missing: {self.paths[fi]} continues "
                f"{named!r}, which is not among the files given (deleted rotated file?)",
            )
        if isinstance(claimed, int) and claimed > last_seq:
            raise self.stop(
                ProblemKind.TRUNCATED,
                last_seq + 1,
                prev_end,
                f"{previous} was truncated: it ends at record {last_seq}, its successor's "
                f"rotation record says its last record was {claimed}",
            )
        if isinstance(claimed, int) and claimed < last_seq:
            raise self.stop(
                ProblemKind.EDITED,
                claimed + 1,
                line,
                f"{previous} has records after {claimed}, which the rotation record names "
                "as its last (appended after rotation)",
            )
        self.check_sequence(fi, -1, line, obj)
        blob = self.blobs[fi - 1]
        if obj.get("previous_size") != len(blob) or obj.get("previous_sha256") != (
            hashlib.sha256(blob).hexdigest()
        ):
            raise self.stop(
                ProblemKind.EDITED,
                last_seq,
                prev_end,
                f"{previous} changed after it was rotated (size or SHA-256 differs from the "
                "rotation record)",
            )

    def note_lost(self, obj: dict[str, Any]) -> None:
        """A rotation record the writer wrote because its open file was removed, moved away or
        replaced (HS-AUDIT-004, issue #19): said, whatever else the files show."""
        lost = obj.get("lost")
        if isinstance(lost, str):
            note = (
                f"record {obj['seq']}: the audit file was {lost} while the server had it open "
                f"({Rule.AUDIT_FILE_LOST}); records up to {obj.get('previous_last_seq')} were "
                f"in that file ({obj.get('previous_size')} bytes)"
            )
            if note not in self.result.notes:
                self.result.notes.append(note)

    def check_sequence(self, fi: int, li: int, line: _Line, obj: dict[str, Any]) -> None:
        seq = obj["seq"]
        expected = self.expected
        if expected is None:  # only after a rotation start, handled by check_file_start
            return
        if seq == expected:
            if obj["prev"] != self.prev:
                raise self.stop(
                    ProblemKind.EDITED,
                    expected - 1,
                    line,
                    f"record {expected - 1} was modified or replaced: record {expected}'s "
                    "prev does not match its hash",
                )
            return
        if seq > expected:
            if self.seq_appears_later(expected, fi, li):
                raise self.stop(
                    ProblemKind.REORDERED,
                    expected,
                    line,
                    f"records out of order: record {seq} is where record {expected} belongs",
                )
            missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
            raise self.stop(
                ProblemKind.DELETED, expected, line, f"record(s) {missing} missing (deleted)"
            )
        raise self.stop(
            ProblemKind.REORDERED,
            expected,
            line,
            f"records out of order: record {seq} appears again where record {expected} belongs",
        )

    def check_kind(self, line: _Line, obj: dict[str, Any], torn_before: _Line | None) -> None:
        kind, seq = obj["kind"], obj["seq"]
        if self.after_close and kind not in (
            RecordKind.RESUME,
            RecordKind.CHECKPOINT,
            RecordKind.ROTATION,
        ):
            raise self.stop(
                ProblemKind.CHAIN_BREAK,
                seq,
                line,
                f"record {seq} follows a close record without a resume record",
            )
        if kind in _SETUP_KINDS:
            chain_id = obj.get("chain_id")
            if not isinstance(chain_id, str) or not chain_id:
                raise self.stop(ProblemKind.CORRUPT, seq, line, f"record {seq}: no chain id")
            if kind == RecordKind.GENESIS and seq != 0:
                raise self.stop(
                    ProblemKind.CHAIN_BREAK, seq, line, f"a new chain starts at record {seq}"
                )
            if self.chain_id is not None and chain_id != self.chain_id:
                raise self.stop(
                    ProblemKind.CHAIN_BREAK, seq, line, f"record {seq} belongs to another chain"
                )
            if kind == RecordKind.ROTATION and self.stream:
                self.note_lost(obj)
            if kind == RecordKind.ROTATION and line.number != 1 and not self.stream:
                raise self.stop(
                    ProblemKind.CHAIN_BREAK, seq, line, f"rotation record {seq} inside a file"
                )
            if kind == RecordKind.RESUME and obj.get("torn") is not None and torn_before is None:
                raise self.stop(
                    ProblemKind.EDITED,
                    seq - 1,
                    line,
                    f"resume record {seq} names a torn line that is not there",
                )
            self.chain_id = chain_id
            signing, every = obj.get("signing"), obj.get("checkpoint_every")
            self.signing = signing if isinstance(signing, str) else None
            self.every = every if isinstance(every, int) and every > 0 else None
            self.since = 0
            self.after_close = False
            if self.key_id is not None and self.signing != self.key_id:
                detail = "is not signed" if self.signing is None else "is signed with another key"
                raise self.stop(
                    ProblemKind.SIGNATURE, seq, line, f"from record {seq} the chain {detail}"
                )
        if kind == RecordKind.CHECKPOINT:
            self.check_checkpoint(line, obj)
            self.since = 0
            return
        if self.signing and self.every and self.since >= self.every:
            raise self.stop(
                ProblemKind.SIGNATURE,
                seq,
                line,
                f"missing checkpoint: more than {self.every} records without a signature "
                f"before record {seq}",
            )
        self.since += 1
        if kind == RecordKind.CLOSE:
            self.after_close = True
        if kind == RecordKind.DECISION:
            event = obj.get("event")
            try:
                if obj.get("schema") != SCHEMA_ID or not isinstance(event, dict):
                    raise ValueError("schema")
                if not REQUIRED_FIELDS <= set(event) <= REQUIRED_FIELDS | OPTIONAL_FIELDS:
                    raise ValueError("fields")
                DecisionRecord.from_dict(event)
            except (KeyError, TypeError, ValueError) as exc:
                raise self.stop(
                    ProblemKind.CORRUPT, seq, line, f"record {seq}: not a valid decision record"
                ) from exc

    def check_checkpoint(self, line: _Line, obj: dict[str, Any]) -> None:
        seq = obj["seq"]
        self.result.files[line.file_index].checkpoints += 1
        if self.public_key is None:
            return
        if obj.get("key_id") != self.key_id or not verify_checkpoint_signature(
            self.public_key, self.chain_id or "", seq, obj["prev"], str(obj.get("sig", ""))
        ):
            raise self.stop(
                ProblemKind.SIGNATURE,
                seq,
                line,
                f"checkpoint {seq}: signature does not verify with the given public key",
            )
        self.result.checkpoints_verified += 1
        self.result.signed_through = seq

    def advance(self, line: _Line, obj: dict[str, Any], report: FileReport) -> None:
        seq = obj["seq"]
        self.expected, self.prev = seq + 1, obj["hash"]
        self.hashes[seq] = obj["hash"]
        if report.first_seq is None:
            report.first_seq = seq
        report.last_seq = seq
        report.records += 1
        res = self.result
        res.records_verified += 1
        res.head_seq, res.head_hash = seq, obj["hash"]
        if obj["kind"] == RecordKind.CLOSE:
            res.closed_cleanly = True
        elif obj["kind"] != RecordKind.CHECKPOINT:
            res.closed_cleanly = False

    def check_expected_head(self) -> None:
        if self.expect_head is None:
            return
        seq, digest = self.expect_head
        head = self.result.head_seq if self.result.head_seq is not None else -1
        last_file = len(self.paths) - 1
        end = _Line(last_file, 0, len(self.blobs[-1]) if self.blobs else 0, b"", True, None)
        if head < seq:
            raise self.stop(
                ProblemKind.TRUNCATED,
                head + 1,
                end,
                f"the trail ends at record {head}, the anchored head is record {seq}: "
                f"records {head + 1}..{seq} were removed",
            )
        if self.hashes.get(seq) != digest:
            raise self.stop(
                ProblemKind.EDITED,
                seq,
                end,
                f"record {seq} does not match the anchored head hash",
            )


def verify_log(
    paths: list[str],
    public_key_path: str | None = None,
    *,
    expect_head: tuple[int, str] | None = None,
) -> VerifyResult:
    """Verify the chain across ``paths`` (oldest first: ``rotated_files(p) + [p]``).

    With ``public_key_path`` (PEM Ed25519 public key, or the private key) every checkpoint's
    signature is checked, and the chain must be signed with that key throughout.
    ``expect_head`` is a ``(seq, hash)`` known from outside the host (a log collector, the
    sink's ``head`` published at shutdown): it detects removal of the tail.

    Raises ``OSError`` for an unreadable file and ``ValueError`` for an unusable key.
    """
    if not paths:
        raise ValueError("no audit files given")
    public_key = load_public_key(public_key_path) if public_key_path else None
    verifier = _Verifier(paths, public_key, expect_head)
    verifier.load()
    return verifier.run()


# -- a collected stream: many servers, many chains, interleaved ------------------------------------


@dataclass(slots=True)
class ChainReport:
    """One chain found in a collected stream, verified on its own."""

    chain_id: str
    server: dict[str, Any] | None
    result: VerifyResult
    first_seen: str  # "FILE:LINE" of its first line


@dataclass(slots=True)
class StreamResult:
    chains: list[ChainReport] = field(default_factory=list)
    corrupt: list[Problem] = field(default_factory=list)  # chain lines that do not parse
    skipped: int = 0  # lines that are not audit records (the server's other log lines)

    @property
    def ok(self) -> bool:
        return bool(self.chains) and not self.corrupt and all(c.result.ok for c in self.chains)


_CHAIN_FIELD = re.compile(rb'"chain(?:_id)?":"([0-9a-f]{1,64})"')


def _chain_of(obj: dict[str, Any]) -> str | None:
    value = obj.get("chain") if obj.get("kind") not in _SETUP_KINDS else obj.get("chain_id")
    if value is None:
        value = obj.get("chain_id") or obj.get("chain")
    return value if isinstance(value, str) and value else None


def verify_stream(paths: Sequence[str], public_key_path: str | None = None) -> StreamResult:
    """Verify a collected stream: the stdout of one or many servers (``kubectl logs``, a
    container runtime's log file, a prefix before each line is fine) or a syslog collector's
    file (a syslog header before each JSON message). Every line from its first ``{`` on is
    read as a chain record; other lines are skipped and counted. Records are grouped by their
    chain (``chain`` / ``chain_id``, with the ``server`` that wrote them) and each chain is
    verified like a file: an edited, dropped, reordered or duplicated line is named by record
    number and by the collected file and line it is on. A chain that does not end with
    ``close`` is "not closed" (still running, or killed), which is not tampering.

    ``paths`` in order (a collector's rotated files oldest first)."""
    if not paths:
        raise ValueError("no stream files given")
    public_key = load_public_key(public_key_path) if public_key_path else None
    result = StreamResult()
    groups: dict[str, list[_Line]] = {}
    first_seen: dict[str, str] = {}
    servers: dict[str, dict[str, Any] | None] = {}
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        for number, (offset, raw, _term) in enumerate(iter_lines(data), start=1):
            start = raw.find(b"{")
            if start < 0:
                result.skipped += 1
                continue
            body = raw[start:].rstrip(b"\r")
            obj = _parse_record(body)
            chain = _chain_of(obj) if obj is not None else None
            if obj is None or chain is None:
                found = _CHAIN_FIELD.search(body)
                if found or b'"hash":"' in body:
                    where = f" of chain {found.group(1).decode()}" if found else ""
                    result.corrupt.append(
                        Problem(
                            ProblemKind.CORRUPT,
                            0,
                            path,
                            number,
                            f"line {number}: an audit record{where} that does not parse "
                            "(edited, or cut by the collector)",
                        )
                    )
                else:
                    result.skipped += 1
                continue
            lines = groups.setdefault(chain, [])
            lines.append(_Line(0, number, offset, body, True, obj, origin=path))
            first_seen.setdefault(chain, f"{path}:{number}")
            if servers.get(chain) is None and isinstance(obj.get("server"), dict):
                servers[chain] = obj["server"]
    for chain, lines in groups.items():
        verifier = _Verifier([f"chain {chain}"], public_key, None)
        verifier.stream = True
        verifier.blobs = [b""]
        verifier.lines = [lines]
        report = ChainReport(chain, servers.get(chain), verifier.run(), first_seen[chain])
        result.chains.append(report)
    return result


def _describe_server(server: dict[str, Any] | None) -> str:
    if not server:
        return "server unknown"
    return " ".join(f"{key}={server[key]}" for key in sorted(server))


def _stream_main(args: argparse.Namespace) -> int:
    try:
        result = verify_stream(args.files, args.public_key)
    except (OSError, ValueError, TypeError) as exc:
        sys.stderr.write(f"verify-log: {exc}\n")
        return EXIT_USAGE
    out = sys.stdout.write
    for chain in result.chains:
        res = chain.result
        who = f"chain {chain.chain_id} ({_describe_server(chain.server)})"
        if res.problem is not None:
            p = res.problem
            out(
                f"{who}: TAMPERED at record {p.record} ({p.file} line {p.line}): {p.kind}: "
                f"{p.message}\n"
            )
        else:
            state = "closed cleanly" if res.closed_cleanly else "not closed (running or killed)"
            out(
                f"{who}: OK {res.records_verified} records, head {res.head_seq}:"
                f"{res.head_hash}, {res.checkpoints_verified} signature(s) checked, {state}\n"
            )
        for note in res.notes:
            if note != "signatures not verified (no public key given)":
                out(f"  note: {note}\n")
    for problem in result.corrupt:
        out(f"CORRUPT {problem.file} line {problem.line}: {problem.message}\n")
    if not result.chains:
        out("no audit records in the stream\n")
    out(f"{len(result.chains)} chain(s), {result.skipped} other line(s) skipped\n")
    return EXIT_OK if result.ok else EXIT_TAMPERED


def _parse_head(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64 or not set(digest) <= _HEX64:
        raise argparse.ArgumentTypeError("expected SEQ:SHA256HEX")
    return int(seq), digest


def main(argv: Sequence[str] | None = None) -> int:
    """``hardened-server audit verify-log FILE... [--public-key PEM] [--expect-head SEQ:HASH]``.

    Prints one line per file and then the first problem with its record number. Exit status:
    0 the trail verifies (a torn tail is reported but is not tampering), 1 tampering detected,
    2 usage error (bad arguments, unreadable file or key)."""
    parser = argparse.ArgumentParser(
        prog="hardened-server audit verify-log",
        description="Verify a hash-chained hardened-server audit log (oldest file first).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--public-key", metavar="PEM", help="Ed25519 public key (PEM)")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="the files are a collected stream (stdout of one or many servers, a syslog "
        "collector's file): sort the records into chains by server and verify each",
    )
    parser.add_argument(
        "--expect-head",
        metavar="SEQ:HASH",
        type=_parse_head,
        help="the last record's seq and hash as known from outside this host",
    )
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return EXIT_USAGE if exc.code else EXIT_OK

    def out(text: str) -> None:
        sys.stdout.write(text + "\n")

    def err(text: str) -> None:
        sys.stderr.write(text + "\n")

    for path in args.files:
        if not os.path.isfile(path):
            err(f"verify-log: {path}: no such file")
            return EXIT_USAGE
    if args.stream:
        if args.expect_head is not None:
            err("verify-log: --expect-head applies to files, not to --stream")
            return EXIT_USAGE
        return _stream_main(args)
    try:
        result = verify_log(args.files, args.public_key, expect_head=args.expect_head)
    except (OSError, ValueError, TypeError) as exc:
        err(f"verify-log: {exc}")
        return EXIT_USAGE

    for report in result.files:
        span = (
            f"records {report.first_seq}-{report.last_seq} ({report.records})"
            if report.first_seq is not None
            else "no records"
        )
        if report.status == "tampered":
            assert result.problem is not None
            p = result.problem
            out(f"{report.file}: TAMPERED at record {p.record} (line {p.line}): {p.kind}")
        elif report.status == "torn tail":
            assert result.torn_tail is not None
            out(f"{report.file}: OK {span}, torn tail at line {result.torn_tail.line}")
        elif report.status == "ok":
            out(f"{report.file}: OK {span}, {report.checkpoints} checkpoint(s)")
        else:
            out(f"{report.file}: not verified (after the first problem)")
    if result.problem is not None:
        p = result.problem
        out(f"FIRST PROBLEM: record {p.record} in {p.file} line {p.line}: {p.kind}: {p.message}")
    for note in result.notes:
        out(f"note: {note}")
    if result.problem is None:
        state = "closed cleanly" if result.closed_cleanly else "not closed (running or crashed)"
        out(
            f"verified {result.records_verified} records, head {result.head_seq}:"
            f"{result.head_hash}, {result.checkpoints_verified} signature(s) checked, {state}"
        )
    return EXIT_TAMPERED if result.problem is not None else EXIT_OK
