"""The hash-chained JSON-lines audit file: its format, signing, and the writer.

Why a chain. A local audit file is writable by the account the server runs as, and so by any
notebook kernel (research notes §2.12). A chain does not stop an edit, it makes one *evident*:
each line carries the SHA-256 of the previous line's canonical bytes (``prev``) and a sequence
number (``seq``), so editing, deleting or reordering a record breaks the chain at a place
:func:`hardened_server.trail.verify.verify_log` can name. What a chain alone cannot show is the
removal or rewriting of the *tail* (the last records of the live file): that is what the optional
Ed25519 checkpoints (an attacker without the private key cannot re-sign a rewritten chain) and an
external anchor (the stdout sink shipping each line's ``seq``/``hash`` to a collector, or
``--expect-head``) are for.

The format (one canonical JSON object per line: sorted keys, no spaces, ASCII only)::

    {"hash": H, "kind": K, "prev": P, "seq": N, "v": 1, ...kind fields}

* ``hash`` is SHA-256 over the canonical bytes of the object *without* ``hash``;
  ``prev`` is the previous record's ``hash`` (64 zeros for the first record of a chain).
* kinds: ``genesis`` (first record of a chain: ``chain_id``, signing set-up), ``decision``
  (``schema`` and ``event``, a :class:`~hardened_server.trail.record.DecisionRecord`),
  ``checkpoint`` (Ed25519 signature over ``chain_id``, ``seq`` and ``prev``), ``rotation``
  (first record of every file after the first: name, size, SHA-256 and last ``seq`` of the file
  it follows), ``resume`` (first record written by a restarted server; names the torn line a
  crash left behind, if any), ``close`` (clean shutdown).

Removal while open (issue #19). Kernels run as the server's user, so a notebook can
``os.unlink`` the live file or rename another file over it; the open descriptor would then keep
appending to an inode nobody can read back. Before every record (and on the app's timer) the
writer compares the open descriptor with the path (:meth:`ChainedFileSink.check_file`: link
count 0, or another inode at the path). On a loss it starts a new file at the path whose first
record is a ``rotation`` record with ``lost`` set (``removed``, ``moved`` or ``replaced``):
it names the lost file's last ``seq``, size and SHA-256, so the chain continues, ``verify-log``
over the surviving files says which records are missing locally, and the trail records the
event (``HS-AUDIT-004``) on every sink. A file found at the path in place of ours is kept as
``<path>.foreign-<time>`` and never extended.

Crash safety. Every record is written as one complete line with one ``os.write`` on an
``O_APPEND`` descriptor (no user-space buffer: nothing is "flushed later"), under a process-wide
lock and an exclusive ``flock`` against a second writer process. A crash can still tear the
last line (a write cut short by a fatal signal, power loss). The restarted writer does not
truncate evidence: it terminates the fragment with a newline and writes a ``resume`` record that
names the fragment's offset, length and SHA-256, so the verifier can tell this crash from
tampering.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hardened_server.fsutil import fsync_dir
from hardened_server.policy.fsync import FsyncPolicy
from hardened_server.policy.loader import shipped_policy
from hardened_server.policy.rules import Rule
from hardened_server.trail.record import SCHEMA_ID, DecisionRecord, format_time

try:  # POSIX only; without it a second writer process is not detected.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # optional module: None means "no flock here"

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_PREV",
    "AuditChainError",
    "AuditLogBusy",
    "AuditWriteError",
    "ChainEntry",
    "ChainedFileSink",
    "FileLoss",
    "RecordKind",
    "canonical_bytes",
    "checkpoint_message",
    "hashed_line",
    "key_id",
    "load_public_key",
    "load_signing_key",
    "record_hash",
    "rotated_files",
]

log = logging.getLogger("hardened_server.audit")

FORMAT_VERSION = 1
GENESIS_PREV = "0" * 64
_MAX_LINE = 1024 * 1024  # a longer "last line" is not a record of ours: refuse to extend
_ROTATED = re.compile(r"\.(\d{6,})$")


class RecordKind(StrEnum):
    GENESIS = "genesis"
    DECISION = "decision"
    CHECKPOINT = "checkpoint"
    ROTATION = "rotation"
    RESUME = "resume"
    CLOSE = "close"


_SETUP_KINDS = frozenset({RecordKind.GENESIS, RecordKind.ROTATION, RecordKind.RESUME})


class AuditChainError(Exception):
    """The existing audit file cannot be extended safely (its last record is damaged, it is not
    a regular file, …). Run ``hardened-server audit verify-log`` and move it aside."""


class AuditLogBusy(AuditChainError):
    """Another writer (process or sink) holds the audit file: two writers fork the chain."""


@dataclass(frozen=True, slots=True)
class FileLoss:
    """The open audit file was removed, moved away or replaced (see :meth:`ChainedFileSink.
    check_file`); a new file at the path continues the chain."""

    how: str  # "removed" | "moved" | "replaced"
    path: str
    last_seq: int  # the last record written to the lost file
    first_seq: int  # the first record of the lost file
    foreign: str | None  # where a file found in place of ours was moved aside, if any


class AuditWriteError(OSError):
    """A record could not be written completely. The record is *not* acknowledged; the next
    append first recovers the file (terminates the partial line, writes a ``resume``).
    ``rule_id``: the rule a request refused for it names (the file: HS-AUDIT-003; a sink
    ``audit.require`` names: HS-AUDIT-005)."""

    rule_id: str = Rule.AUDIT_WRITE_FAILED
    sink: str = "file"


# -- format ------------------------------------------------------------------------------------


#: The canonical encoder (one instance: ``json.dumps`` with these arguments builds a new one
#: per call).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)


def canonical_bytes(obj: dict[str, Any]) -> bytes:
    """The one byte encoding that is hashed and written: sorted keys, no whitespace, ASCII
    (``\\n``, ``\\u2028`` and every control character escaped, so one record is one line)."""
    return _CANONICAL.encode(obj).encode("ascii")


def hashed_line(obj: dict[str, Any]) -> tuple[bytes, str]:
    """``(canonical_bytes(obj + hash), hash)`` with ``hash = record_hash(obj)``, encoding
    ``obj`` once, in two pieces: the members whose keys sort before ``"hash"`` and those that
    sort after it, one encoder call each (not one per key and one per value: a record has a
    dozen, and each call is a trip through the encoder's Python layer). The pieces joined
    without a ``hash`` member are hashed; joined around it, they are the line. Byte for byte
    what :func:`canonical_bytes` and :func:`record_hash` give: the encoder writes a dict with
    sorted string keys as ``{"key":value,...}`` in ``sorted()`` order, and that order puts
    every key below ``"hash"`` first. An ``obj`` that already has a ``hash`` or a key that is
    not a string takes the two-pass way."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if "hash" not in obj:
        for key, value in obj.items():
            if type(key) is not str:
                break
            (before if key < "hash" else after)[key] = value
        else:
            return _spliced(before, after)
    digest = record_hash(obj)
    return canonical_bytes({**obj, "hash": digest}), digest


def _spliced(before: dict[str, Any], after: dict[str, Any]) -> tuple[bytes, str]:
    """:func:`hashed_line` of the members below ``"hash"`` and those above it."""
    encode = _CANONICAL.encode
    head = encode(before)[:-1] if before else "{"  # '{"a":1' (no closing brace)
    tail = encode(after)[1:] if after else "}"  # '"z":2}' (no opening brace)
    digest = hashlib.sha256(
        (head + ("," if before and after else "") + tail).encode("ascii")
    ).hexdigest()
    line = f'{head}{"," if before else ""}"hash":"{digest}"{"," if after else ""}{tail}'
    return line.encode("ascii"), digest


def unchained_line(record: DecisionRecord, server: Mapping[str, Any] | None) -> bytes:
    """A decision as one self-describing line outside the chain (stdout or syslog when no file
    sink chains it, or the file failed): ``kind``, ``schema``, ``event`` and the writing
    ``server``; ``verify-log --stream`` reports such lines as unchained."""
    body: dict[str, Any] = {
        "kind": RecordKind.DECISION.value,
        "schema": SCHEMA_ID,
        "event": record.to_dict(),
    }
    if server is not None:
        body["server"] = dict(server)
    return canonical_bytes(body)


def record_hash(obj: dict[str, Any]) -> str:
    """SHA-256 of the canonical bytes of ``obj`` without its ``hash`` field."""
    body = {k: v for k, v in obj.items() if k != "hash"}
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def checkpoint_message(chain_id: str, seq: int, prev: str) -> bytes:
    """What a checkpoint signs: the chain head ``prev`` (hash of record ``seq - 1``), bound to
    its position and to the chain (a signature cannot be replayed into another chain or
    position), with a domain-separation prefix."""
    return f"hardened-server-audit-checkpoint\x00v1\x00{chain_id}\x00{seq}\x00{prev}".encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def load_signing_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """An unencrypted PEM (PKCS#8) Ed25519 private key. Anything else is refused: a checkpoint
    signed with the wrong kind of key would not verify later."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """A PEM Ed25519 public key (SubjectPublicKeyInfo); a private key PEM is accepted too."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_signing_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def verify_checkpoint_signature(
    public_key: Ed25519PublicKey, chain_id: str, seq: int, prev: str, sig_b64: str
) -> bool:
    try:
        sig = base64.b64decode(sig_b64, validate=True)
        public_key.verify(sig, checkpoint_message(chain_id, seq, prev))
    except (InvalidSignature, ValueError):
        return False
    return True


def rotated_files(path: str | os.PathLike[str]) -> list[str]:
    """The rotated files of the active file ``path`` (``path.000001`` …), oldest first. The
    chain order for verification is ``rotated_files(path) + [path]``."""
    active = Path(path)
    found: list[tuple[int, str]] = []
    if active.parent.is_dir():
        for entry in active.parent.iterdir():
            if entry.name.startswith(active.name + "."):
                m = _ROTATED.search(entry.name[len(active.name) :])
                if m and entry.name == f"{active.name}.{m.group(1)}":
                    found.append((int(m.group(1)), str(entry)))
    return [name for _, name in sorted(found)]


# -- the writer ----------------------------------------------------------------------------------

#: One lock for every audit writer in the process: records of all threads are serialised, and
#: rotation (close, rename, reopen) is never observed half-done.
_PROCESS_LOCK = threading.RLock()
_OPEN_PATHS: set[str] = set()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """What an append returns once the record is on the file (acknowledged)."""

    seq: int
    hash: str
    line: bytes  # the canonical line, without the newline
    file: str


@dataclass(slots=True)
class _Tail:
    size: int
    sha256: Any  # hashlib object over the whole file
    last: dict[str, Any] | None
    fragment: bytes  # bytes after the last newline (a torn line), b"" if none
    chain_id: str | None
    signing: str | None
    checkpoint_every: int | None
    first_seq: int = 0


def _open_for_append(path: str) -> int:
    """O_APPEND so every write lands at the end even if someone else extended the file;
    O_NOFOLLOW so a symlink planted at the log path cannot redirect our writes into another
    file; 0600 so other local users cannot read personal data or forge records."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise AuditChainError(f"{path}: cannot open the audit file: {exc.strerror}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise AuditChainError(f"{path}: not a regular file")
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.fchmod(fd, 0o600)  # tighten a file created by someone's umask or copy
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise AuditLogBusy(f"{path}: another process is writing this audit file") from exc
    return fd


def _scan(path: str) -> _Tail:
    """Read the whole file once: its SHA-256 (for the next rotation record), its last complete
    record, a torn fragment after it, and the chain set-up in force."""
    digest = hashlib.sha256()
    size = 0
    last_line = b""
    first_line = b""
    pending = b""
    chain_id: str | None = None
    signing: str | None = None
    every: int | None = None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return _Tail(0, digest, None, b"", None, None, None)
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            buf = pending + chunk
            lines = buf.split(b"\n")
            pending = lines.pop()
            if len(pending) > _MAX_LINE:
                raise AuditChainError(f"{path}: last line longer than {_MAX_LINE} bytes")
            for line in lines:
                if line:
                    last_line = line
                    first_line = first_line or line
                    if b'"chain_id"' in line:
                        head = _parse(line)
                        if head is not None and head.get("kind") in _SETUP_KINDS:
                            chain_id = head.get("chain_id", chain_id)
                            signing = head.get("signing")
                            every = head.get("checkpoint_every")
    last = _parse(last_line) if last_line else None
    if last_line and (last is None or last.get("hash") != record_hash(last)):
        raise AuditChainError(
            f"{path}: the last complete record is damaged or edited; refusing to extend the "
            "chain (run 'hardened-server audit verify-log' and move the file aside)"
        )
    first = _parse(first_line) if first_line else None
    first_seq = int(first["seq"]) if first is not None else 0
    return _Tail(size, digest, last, pending, chain_id, signing, every, first_seq)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("seq"), int):
        return None
    return obj


class ChainedFileSink:
    """Append-only, hash-chained, size-rotated JSON-lines audit file.

    ``path`` is the active file; rotated files are ``path.000001``, ``path.000002`` … (oldest
    first, see :func:`rotated_files`). ``signing_key_path`` (PEM Ed25519 private key) turns on
    checkpoints every ``checkpoint_every`` records and before every rotation and close.

    Opening continues an existing chain (after a ``resume`` record that documents a torn tail,
    if any), or starts one with a ``genesis`` record. A second writer on the same file, in this
    process or another, is refused with :class:`AuditLogBusy`.

    Thread-safe. Not fork-safe: open it in the serving process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        fsync: str | None = None,
        signing_key_path: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        server: Mapping[str, str | int] | None = None,
        mirrors: Sequence[Callable[[bytes], None]] = (),
    ) -> None:
        # ``server`` (trail/origin.py) and the chain id go into every record, so that a line
        # read anywhere says who wrote it and which chain it belongs to. ``mirrors`` receive
        # every line once it is on the file (genesis, checkpoints, close included), in chain
        # order: the stdout sink, so the stream verifies on its own.
        self._server = dict(server) if server is not None else None
        self._mirrors = tuple(mirrors)
        # Not given: the shipped default profile's audit.max_bytes, audit.fsync and
        # audit.checkpoint_every (policies/default.toml holds the numbers, not this module).
        shipped = shipped_policy().audit
        max_bytes = shipped.max_bytes if max_bytes is None else max_bytes
        fsync = shipped.fsync if fsync is None else fsync
        checkpoint_every = (
            shipped.checkpoint_every if checkpoint_every is None else checkpoint_every
        )
        if max_bytes < 4096:
            raise ValueError("max_bytes must be at least 4096")
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.path = os.path.abspath(os.fspath(path))
        self.max_bytes = max_bytes
        self.fsync_policy = FsyncPolicy.parse(fsync)
        self._key = load_signing_key(signing_key_path) if signing_key_path else None
        if signing_key_path and os.stat(signing_key_path).st_mode & 0o077:
            # Whoever can read the key can re-sign a rewritten trail.
            log.warning("audit signing key %s is readable by group/others", signing_key_path)
        self._key_id = key_id(self._key.public_key()) if self._key else None
        self._every = checkpoint_every if self._key else None
        self._fd: int | None = None
        self._broken = False
        self._closed = False
        self._last_fsync = time.monotonic()
        self._since_checkpoint = 0
        self._seq = -1
        self._prev = GENESIS_PREV
        self._chain_id = ""
        self._size = 0
        self._file_hash: Any = hashlib.sha256()
        self._file_first_seq = 0
        self._lost: FileLoss | None = None  # a loss whose new file could not be opened yet
        self._unreported: FileLoss | None = None  # a loss check_file has not returned yet
        # check_file found the file ours and no record was appended since: the next append
        # need not compare again (the writer checks before every record; one comparison per
        # record, not two).
        self._compared = False
        with _PROCESS_LOCK:
            real = os.path.realpath(self.path)
            if real in _OPEN_PATHS:
                raise AuditLogBusy(f"{self.path}: already open by another sink in this process")
            _OPEN_PATHS.add(real)
            self._real = real
            try:
                self._open()
            except BaseException:
                _OPEN_PATHS.discard(real)
                raise

    # -- public --------------------------------------------------------------------------------

    @property
    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last acknowledged record: publish it somewhere an attacker on
        this host cannot rewrite, and verify with ``--expect-head`` to detect tail removal."""
        with _PROCESS_LOCK:
            return self._seq, self._prev

    @property
    def chain_id(self) -> str:
        return self._chain_id

    def append(self, record: DecisionRecord) -> ChainEntry:
        """Write one decision record; returns once it is on the file (per the fsync policy).
        Raises :class:`AuditWriteError` if it could not be written completely."""
        body = {"kind": RecordKind.DECISION.value, "schema": SCHEMA_ID, "event": record.to_dict()}
        return self._append(body)

    def sync(self) -> None:
        """fsync now (for an ``interval:`` policy, call this from a periodic timer)."""
        with _PROCESS_LOCK:
            if self._fd is not None:
                os.fsync(self._fd)
                self._last_fsync = time.monotonic()

    def check_file(self) -> FileLoss | None:
        """Is the open descriptor still the file at ``path``? If the file was removed (link
        count 0), moved away, or replaced by another file, start a new file at the path that
        continues the chain (a ``rotation`` record with ``lost``) and return what happened;
        None when all is well. Two ``stat`` calls: cheap enough for every record. The next
        :meth:`append` relies on this comparison instead of making its own.

        Raises :class:`AuditWriteError` when the new file cannot be opened (the directory is
        gone, a permission); the next call tries again."""
        with _PROCESS_LOCK:
            if self._closed:
                return None
            self._compared = False
            if self._lost is not None:
                self._start_after_loss(self._lost)
            else:
                self._detect()
            self._compared = self._lost is None and not self._broken
            reported, self._unreported = self._unreported, None
            return reported

    @property
    def pending_loss(self) -> FileLoss | None:
        """A loss whose new file could not be opened yet (records are refused until it is)."""
        return self._lost

    def _detect(self) -> None:
        """Under the lock: on a loss, continue in a new file and keep the loss for the next
        :meth:`check_file` to report."""
        if self._fd is None or self._broken:
            return
        how = self._loss()
        if how is None:
            return
        loss = FileLoss(how, self.path, self._seq, self._file_first_seq, None)
        self._release()
        self._start_after_loss(loss)

    def close(self) -> None:
        """Write a ``close`` record (and a final checkpoint), fsync, release the file."""
        with _PROCESS_LOCK:
            if self._closed:
                return
            try:
                if self._fd is not None and not self._broken:
                    self._write({"kind": RecordKind.CLOSE.value, "time": format_time()})
                    if self._key is not None and self._since_checkpoint:
                        self._write_checkpoint()
                    os.fsync(self._fd)
            finally:
                self._closed = True
                self._release()
                _OPEN_PATHS.discard(self._real)

    def __enter__(self) -> ChainedFileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _setup_fields(self) -> dict[str, Any]:
        return {
            "chain_id": self._chain_id,
            "signing": self._key_id,
            "checkpoint_every": self._every,
            "time": format_time(),
        }

    def _open(self) -> None:
        """Continue the chain in the active file, or from the newest rotated file (a crash
        between rename and re-creation), or start a new chain."""
        # Lock first, then read: nobody can append between our scan and our first write.
        fd = _open_for_append(self.path)
        try:
            self._open_locked(fd)
        except BaseException:
            os.close(fd)
            self._fd = None
            raise

    def _open_locked(self, fd: int) -> None:
        tail = _scan(self.path)
        if tail.size == 0:
            previous = rotated_files(self.path)
            self._fd, self._size, self._file_hash = fd, 0, hashlib.sha256()
            if previous:
                last_file = previous[-1]
                prev_tail = _scan(last_file)
                if prev_tail.last is None or prev_tail.fragment or not prev_tail.chain_id:
                    raise AuditChainError(f"{last_file}: cannot continue the chain from it")
                self._continue_from(prev_tail)
                self._write_rotation(last_file, prev_tail)
            else:
                self._chain_id = uuid.uuid4().hex
                self._seq, self._prev = -1, GENESIS_PREV
                self._write({"kind": RecordKind.GENESIS.value, **self._setup_fields()})
            return
        if tail.last is None or not tail.chain_id:
            raise AuditChainError(f"{self.path}: not a hardened-server audit chain")
        self._fd, self._size, self._file_hash = fd, tail.size, tail.sha256
        self._file_first_seq = tail.first_seq
        self._continue_from(tail)
        torn = None
        prefix = b""
        if tail.fragment:
            torn = {
                "offset": tail.size - len(tail.fragment),
                "length": len(tail.fragment),
                "sha256": hashlib.sha256(tail.fragment).hexdigest(),
            }
            prefix = b"\n"  # terminate the fragment in the same write as the resume record
        self._write(
            {"kind": RecordKind.RESUME.value, "torn": torn, **self._setup_fields()}, prefix=prefix
        )

    def _loss(self) -> str | None:
        assert self._fd is not None
        mine = os.fstat(self._fd)
        try:
            there = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            there = None
        same = there is not None and (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)
        if same:
            return None
        if there is not None:
            return "replaced"
        return "removed" if mine.st_nlink == 0 else "moved"

    def _start_after_loss(self, loss: FileLoss) -> FileLoss:
        """A new file at the path, first record: a rotation record naming the lost file."""
        self._lost = loss
        foreign = loss.foreign
        try:
            if os.path.lexists(self.path):
                # Not ours (or no longer ours): never extend it, keep it for the investigation.
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
                foreign = f"{self.path}.foreign-{stamp}-{uuid.uuid4().hex[:8]}"
                os.rename(self.path, foreign)
                self._lost = loss = FileLoss(
                    loss.how, loss.path, loss.last_seq, loss.first_seq, foreign
                )
            fd = _open_for_append(self.path)
        except (OSError, AuditChainError) as exc:
            raise AuditWriteError(
                f"{self.path}: the audit file was {loss.how} and no new file can be opened: "
                f"{exc}"
            ) from exc
        prev_tail = _Tail(self._size, self._file_hash, None, b"", None, None, None)
        self._fd, self._size, self._file_hash = fd, 0, hashlib.sha256()
        self._lost = None
        if self.fsync_policy.mode != "never":
            fsync_dir(os.path.dirname(self.path))
        self._write_rotation(self.path, prev_tail, lost=loss.how)
        self._unreported = loss
        log.critical(
            "audit file %s was %s while open (records %d..%d were in it); a new file continues "
            "the chain",
            self.path,
            loss.how,
            loss.first_seq,
            loss.last_seq,
        )
        return loss

    def _continue_from(self, tail: _Tail) -> None:
        assert tail.last is not None
        assert tail.chain_id
        self._chain_id = tail.chain_id
        self._seq = int(tail.last["seq"])
        self._prev = str(tail.last["hash"])
        self._since_checkpoint = 0

    def _write_rotation(
        self, previous_file: str, prev_tail: _Tail, *, lost: str | None = None
    ) -> None:
        body: dict[str, Any] = {
            "kind": RecordKind.ROTATION.value,
            "previous_file": os.path.basename(previous_file),
            "previous_size": prev_tail.size,
            "previous_sha256": prev_tail.sha256.hexdigest(),
            "previous_last_seq": self._seq,
            **self._setup_fields(),
        }
        if lost is not None:
            body["lost"] = lost  # the previous file was removed/moved/replaced while open
        self._write(body)
        self._file_first_seq = self._seq

    def _append(self, body: dict[str, Any]) -> ChainEntry:
        with _PROCESS_LOCK:
            if self._closed:
                raise AuditWriteError("audit sink is closed")
            compared, self._compared = self._compared, False
            if self._lost is not None:
                self._start_after_loss(self._lost)
            elif not compared:
                self._detect()  # not one record into an inode nobody can read back
            if self._broken:
                self._recover()
            encoded = self._encode(body)
            if self._size > 0 and self._size + len(encoded[0]) + 1 > self.max_bytes:
                self._rotate()
                # the rotation record took this seq: encode again
                return self._write(body, encoded=None)
            return self._write(body, encoded=encoded)

    def _encode(self, body: dict[str, Any]) -> tuple[bytes, str]:
        obj = {"v": FORMAT_VERSION, "seq": self._seq + 1, "prev": self._prev, **body}
        if self._server is not None:
            obj["server"] = self._server
            obj["chain"] = self._chain_id
        return hashed_line(obj)

    def _write(
        self,
        body: dict[str, Any],
        prefix: bytes = b"",
        encoded: tuple[bytes, str] | None = None,
    ) -> ChainEntry:
        """One ``os.write`` of one complete line. State advances only when every byte is on the
        file; a short or failed write marks the sink broken for recovery."""
        if self._fd is None:  # not an assert: it must hold under ``python -O`` too
            raise AuditWriteError(f"{self.path}: audit file is not open")
        line, digest = encoded if encoded is not None else self._encode(body)
        data = prefix + line + b"\n"
        written = 0
        try:
            while written < len(data):
                n = os.write(self._fd, data[written:])
                if n <= 0:
                    raise OSError("short write")
                written += n
        except OSError as exc:
            self._broken = True
            self._size += written
            raise AuditWriteError(f"{self.path}: audit record not written: {exc}") from exc
        self._size += len(data)
        self._file_hash.update(data)
        self._seq += 1
        self._prev = digest
        entry = ChainEntry(self._seq, digest, line, self.path)
        for mirror in self._mirrors:
            try:
                mirror(line)
            except Exception as exc:  # a broken pipe to a collector must not lose the file
                log.error("audit mirror failed: %s", str(exc)[:200])
        if body["kind"] == RecordKind.CHECKPOINT.value:
            self._since_checkpoint = 0
        else:
            self._since_checkpoint += 1
        self._maybe_fsync()
        if self._key is not None and self._every and self._since_checkpoint >= self._every:
            # At most ``checkpoint_every`` records between signatures: the verifier checks it.
            self._write_checkpoint()
        return entry

    def _maybe_fsync(self, force: bool = False) -> None:
        if self._fd is None:
            return
        policy = self.fsync_policy
        now = time.monotonic()
        if (
            force
            or policy.mode == "always"
            or (policy.mode == "interval" and now - self._last_fsync >= policy.interval)
        ):
            os.fsync(self._fd)
            self._last_fsync = now

    def _write_checkpoint(self) -> None:
        assert self._key is not None
        seq = self._seq + 1
        sig = self._key.sign(checkpoint_message(self._chain_id, seq, self._prev))
        self._write(
            {
                "kind": RecordKind.CHECKPOINT.value,
                "key_id": self._key_id,
                "sig": base64.b64encode(sig).decode("ascii"),
                "time": format_time(),
            }
        )

    def _rotate(self) -> None:
        """Close the active file (signed to its end), rename it to the next ``.NNNNNN``, and
        start the new file with a rotation record that commits to the old file's last hash,
        SHA-256, size and last ``seq``: a rotated file cannot be edited or cut short unseen."""
        if self._key is not None and self._since_checkpoint:
            self._write_checkpoint()
        self._maybe_fsync(force=self.fsync_policy.mode != "never")
        index = 1
        existing = rotated_files(self.path)
        if existing:
            match = _ROTATED.search(existing[-1])
            index = int(match.group(1)) + 1 if match else len(existing) + 1
        target = f"{self.path}.{index:06d}"
        if os.path.lexists(target):
            raise AuditChainError(f"{target}: exists; refusing to overwrite a rotated audit file")
        prev_tail = _Tail(self._size, self._file_hash, None, b"", None, None, None)
        os.rename(self.path, target)
        self._release()
        fd = _open_for_append(self.path)
        self._fd, self._size, self._file_hash = fd, 0, hashlib.sha256()
        if self.fsync_policy.mode != "never":
            fsync_dir(os.path.dirname(self.path))
        self._write_rotation(target, prev_tail)

    def _recover(self) -> None:
        """After a failed write: reopen as a restarted writer would (terminate the partial line,
        write a ``resume`` naming it)."""
        self._release()
        self._broken = False
        self._open()

    def _release(self) -> None:
        self._compared = False  # a comparison was with this descriptor
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing releases the flock
            self._fd = None


def iter_lines(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    """``(offset, line, terminated)`` for each line of ``data``; the last may be unterminated."""
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:
            yield offset, data[offset:], False
            return
        yield offset, data[offset:end], True
        offset = end + 1
