"""The token store: named, scoped, expiring API tokens kept as hashes in one file.

A token handed to a client looks like ``hst_<id>_<secret>``: ``id`` is 12 hex digits that name
the entry (so a look-up is one dictionary access, and logs and audit records can name a token
without holding it), ``secret`` is 256 random bits (43 base64url characters). The file keeps only
``sha256(whole token)``: a copy of the file (a backup, a misplaced notebook) authenticates
nothing, and a 256-bit random secret needs no slow hash. The presented token's hash is compared
with ``hmac.compare_digest``.

The file (JSON, mode 0600) is written atomically (:func:`hardened_server.fsutil.atomic_write`): a
temporary file in the same directory, ``fsync``, ``os.replace``, then the directory is synced, so a
reader sees the old file or the new one, never half of one. Writers (the ``hardened-server token``
commands and the running server, which records ``last_used``) serialise on an advisory lock
(``<file>.lock``) and always re-read the file under it, so a revocation by the CLI is never
overwritten by the server's bookkeeping.

The running server re-reads the file when its identity (inode, size, mtime) changes, which it
checks with one ``os.stat`` per stored-token request: a ``token revoke`` is in force for the next
request, without a restart or a signal.

Deliberately small: no tornado, an injectable clock (the Hypothesis state machine drives expiry
with it), and every failure to read the file fails closed (no token authenticates).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from hardened_server.fsutil import atomic_write
from hardened_server.policy.scopes import KNOWN_SCOPES, SCOPES

log = logging.getLogger("hardened_server.tokens")

PREFIX = "hst_"
STORE_FILENAME = "hardened-server-tokens.json"
FORMAT_VERSION = 1
_TOKEN_RE = re.compile(r"hst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_ID_RE = re.compile(r"[0-9a-f]{12}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:+-]{0,63}")
#: ``last_used`` is written back at most this often per token (seconds): a busy API client
#: must not turn every request into a file write.
LAST_USED_RESOLUTION = 60.0
#: See :meth:`TokenStore._racy`.
RACY_SECONDS = 2.0


class TokenStoreError(ValueError):
    """A token-store operation cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    scopes: tuple[str, ...]
    created: float
    expires: float | None
    last_used: float | None
    sha256: str

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def public(self) -> dict[str, Any]:
        """What ``token list --json`` shows: everything but the hash."""
        out = asdict(self)
        del out["sha256"]
        out["scopes"] = list(self.scopes)
        return out


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def parse_token_id(token: str) -> str | None:
    """The id of a well-formed stored token, else None (the start-up token, garbage)."""
    match = _TOKEN_RE.fullmatch(token)
    return match.group(1) if match else None


def looks_like_stored_token(token: str) -> bool:
    return token.startswith(PREFIX)


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes in documentation order; an unknown name is refused with the list of known
    ones (a typo must not silently grant nothing, or worse, be read as something else)."""
    wanted = list(scopes)
    unknown = sorted({s for s in wanted if s not in KNOWN_SCOPES})
    if unknown:
        raise TokenStoreError(
            "unknown scope "
            + ", ".join(repr(s) for s in unknown)
            + "; known scopes: "
            + ", ".join(SCOPES)
        )
    if not wanted:
        raise TokenStoreError(
            "a token needs at least one --scope; known scopes: " + ", ".join(SCOPES)
        )
    return tuple(s for s in SCOPES if s in set(wanted))


def check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise TokenStoreError(
            "a token name is 1-64 characters: letters, digits, space and . _ @ : + - "
            "(starting with a letter or digit)"
        )
    return name


_DURATION_RE = re.compile(r"(\d{1,6})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float | None:
    """``30m``, ``12h``, ``7d``, ``2w`` -> seconds; ``never`` -> None (no expiry)."""
    text = text.strip().lower()
    if text == "never":
        return None
    match = _DURATION_RE.fullmatch(text)
    if not match or int(match.group(1)) == 0:
        raise TokenStoreError(
            f"--expires {text!r}: give a positive duration such as 30m, 12h, 7d or 2w, or never"
        )
    return float(int(match.group(1)) * _UNITS[match.group(2)])


def store_path_for(
    override: str | os.PathLike[str] | None = None,
    *,
    configured: str = "",
    runtime_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Where the token store lives: ``override`` (``serve --token-store``, the token commands'
    ``--store``), else the policy's ``tokens.store_file``, else :data:`STORE_FILENAME` in
    ``runtime_dir`` (jupyter_core's ``jupyter_runtime_dir()`` when not given). The one answer
    for the server's identity provider, ``hardened-server token`` and the audit's HS-TOKEN
    checks, so the audit reads the file the server writes."""
    if override:
        return Path(override)
    if configured:
        return Path(configured)
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    return Path(runtime_dir) / STORE_FILENAME


def _record_from(entry: Any) -> TokenRecord:
    if not isinstance(entry, dict):
        raise TokenStoreError("an entry is not an object")
    try:
        rec = TokenRecord(
            id=str(entry["id"]),
            name=str(entry["name"]),
            scopes=tuple(str(s) for s in entry["scopes"]),
            created=float(entry["created"]),
            expires=None if entry.get("expires") is None else float(entry["expires"]),
            last_used=None if entry.get("last_used") is None else float(entry["last_used"]),
            sha256=str(entry["sha256"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenStoreError(f"an entry is malformed ({exc})") from None
    if not _ID_RE.fullmatch(rec.id) or not re.fullmatch(r"[0-9a-f]{64}", rec.sha256):
        raise TokenStoreError(f"entry {rec.id!r} has a malformed id or hash")
    return rec


class TokenStore:
    """One token file. ``clock`` returns Unix seconds (injectable for tests)."""

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock
        self._records: dict[str, TokenRecord] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._broken = False
        self._pending_last_used: dict[str, float] = {}
        self._seen: dict[str, float] = {}
        self._last_flush = 0.0

    # -- file ----------------------------------------------------------------------------------

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    @staticmethod
    def _racy(stamp: tuple[int, int, int] | None) -> bool:
        """A file changed in the last seconds may have been replaced again within the file
        system's timestamp granularity, by a file of the same size that reused the inode
        (a rotation does exactly that): its stat proves nothing, so it is read again (git's
        "racy clean" rule)."""
        return stamp is not None and time.time() - stamp[2] / 1e9 < RACY_SECONDS

    def _read(self) -> dict[str, TokenRecord]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
        except ValueError:
            raise TokenStoreError(f"{self.path}: not JSON (restore it from a backup)") from None
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            raise TokenStoreError(f"{self.path}: not a version {FORMAT_VERSION} token store")
        entries = doc.get("tokens")
        if not isinstance(entries, list):
            raise TokenStoreError(f"{self.path}: 'tokens' is not a list")
        records = {}
        for entry in entries:
            rec = _record_from(entry)
            records[rec.id] = rec
        return records

    def _write(self, records: dict[str, TokenRecord]) -> None:
        doc = {
            "version": FORMAT_VERSION,
            "comment": "hardened-server token store: SHA-256 hashes only. Edit with "
            "`hardened-server token`.",
            "tokens": [asdict(r) for r in sorted(records.values(), key=lambda r: r.created)],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path, (json.dumps(doc, indent=1) + "\n").encode())
        self._records = records
        self._stamp = self._stat()
        self._broken = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, TokenRecord]]:
        """Read-modify-write under the lock; yields a fresh copy of the records (mutate it,
        then call ``_write`` inside the block)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield dict(self._read())
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def refresh(self) -> None:
        """Re-read the file if it changed since the last read (one stat when it did not)."""
        stamp = self._stat()
        if stamp == self._stamp and not self._broken and not self._racy(stamp):
            return
        try:
            self._records = self._read()
            self._broken = False
        except TokenStoreError as exc:
            # Fail closed: a damaged file authenticates nobody, and says so.
            log.error("token store unreadable, no stored token is accepted: %s", exc)
            self._records = {}
            self._broken = True
        except OSError as exc:
            log.error("token store unreadable, no stored token is accepted: %s", exc)
            self._records = {}
            self._broken = True
        self._stamp = stamp

    # -- operations (the CLI) --------------------------------------------------------------------

    def create(
        self, name: str, scopes: Iterable[str], lifetime: float | None
    ) -> tuple[str, TokenRecord]:
        """A new token; returns ``(secret, record)``. The secret exists only in the return
        value: print it once."""
        name = check_name(name)
        scopes_t = check_scopes(scopes)
        with self._locked() as records:
            token_id = secrets.token_hex(6)
            while token_id in records:  # pragma: no cover - 48 bits
                token_id = secrets.token_hex(6)
            secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
            now = self.clock()
            record = TokenRecord(
                id=token_id,
                name=name,
                scopes=scopes_t,
                created=now,
                expires=None if lifetime is None else now + lifetime,
                last_used=None,
                sha256=hash_token(secret),
            )
            records[token_id] = record
            self._write(records)
        return secret, record

    def revoke(self, token_id: str) -> TokenRecord:
        with self._locked() as records:
            record = records.pop(token_id, None)
            if record is None:
                raise TokenStoreError(f"no token with id {token_id!r} (see `token list`)")
            self._write(records)
        return record

    def rotate(
        self, token_id: str, lifetime: float | Literal["keep"] | None = "keep"
    ) -> tuple[str, TokenRecord]:
        """A new secret for an existing token (same id, name and scopes); the old secret stops
        working at once. The lifetime is the one given, else the token's original lifetime
        counted from now."""
        with self._locked() as records:
            old = records.get(token_id)
            if old is None:
                raise TokenStoreError(f"no token with id {token_id!r} (see `token list`)")
            now = self.clock()
            span: float | None
            if lifetime == "keep":
                span = None if old.expires is None else max(old.expires - old.created, 1.0)
            else:
                span = lifetime
            secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
            record = replace(
                old,
                created=now,
                expires=None if span is None else now + span,
                sha256=hash_token(secret),
            )
            records[token_id] = record
            self._write(records)
        return secret, record

    def list(self) -> list[TokenRecord]:
        self.refresh()
        return sorted(self._records.values(), key=lambda r: r.created)

    # -- the hot path (the server) ---------------------------------------------------------------

    def authenticate(self, token: str) -> TokenRecord | None:
        """The live record this token belongs to, or None (unknown, revoked, expired,
        malformed). Constant time in the secret: the look-up is by the public id, the
        comparison of hashes with ``hmac.compare_digest``."""
        return self.check(token)[0]

    def lookup(self, token_id: str) -> TokenRecord | None:
        """The record of ``token_id`` as last read (no ``stat``: the caller refreshes; the
        open-websocket sweep does so once per sweep)."""
        return self._records.get(token_id)

    def check(self, token: str) -> tuple[TokenRecord | None, bool]:
        """:meth:`authenticate`, and whether this use was written down as ``last_used`` (the
        first use in :data:`LAST_USED_RESOLUTION` seconds: the caller records the use then)."""
        token_id = parse_token_id(token)
        if token_id is None:
            return None, False
        self.refresh()
        record = self._records.get(token_id)
        if record is None:
            return None, False
        if not hmac.compare_digest(hash_token(token), record.sha256):
            return None, False
        now = self.clock()
        if record.expired(now):
            return None, False
        return record, self._note_use(token_id, now)

    def _note_use(self, token_id: str, now: float) -> bool:
        record = self._records[token_id]
        previous = self._seen.get(token_id, record.last_used)
        if previous is not None and 0 <= now - previous < LAST_USED_RESOLUTION:
            return False
        self._seen[token_id] = now
        self._pending_last_used[token_id] = now
        self.flush_last_used()
        return True

    def flush_last_used(self) -> None:
        """Write pending ``last_used`` times, merged into a fresh read under the lock (so a
        concurrent revoke stands). Errors are logged, never raised into a request."""
        pending, self._pending_last_used = self._pending_last_used, {}
        if not pending:
            return
        try:
            with self._locked() as records:
                changed = False
                for token_id, when in pending.items():
                    rec = records.get(token_id)
                    if rec is not None and (rec.last_used is None or rec.last_used < when):
                        records[token_id] = replace(rec, last_used=when)
                        changed = True
                if changed:
                    self._write(records)
        except (OSError, TokenStoreError) as exc:
            log.warning("could not record token last-use times: %s", exc)
            # keep the in-memory view so the next use does not retry at once
            for token_id, when in pending.items():
                rec = self._records.get(token_id)
                if rec is not None:
                    self._records[token_id] = replace(rec, last_used=when)
