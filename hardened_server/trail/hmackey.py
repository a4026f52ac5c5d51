"""The deployment's HMAC key for accountability records (issue #20): read, checked, generated.

The key turns "the trail holds a digest of every cell" into "only the holder of the key can test
a guess against it". So it is treated like the signing key: a file readable by the server's user
only (no group or world bit: a second account on the host must not hold it), never inside the
served root (the contents API would hand it to any ``contents:read`` client: the start-up check
is :func:`hardened_server.policy.paths.served_file_problem`, called by the enforcement layer),
never written to a record (records carry :func:`hardened_server.policy.activity.key_id`).

With ``audit.hmac_key = ""`` a key is generated on first start in the Jupyter data directory
(``hardened-server-audit-hmac.key``, 32 random bytes as 64 hex digits, mode 0600) and reused
after. Rotation (SECURITY.md, "What is recorded, and what is not"): write a new file, point
``audit.hmac_key`` at it (or replace the generated one) and restart; keep the old file where
the auditors can use it, since records before the restart carry the old key id.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from hardened_server.fsutil import fsync_dir
from hardened_server.policy.activity import MIN_KEY_BYTES

__all__ = [
    "DEFAULT_KEY_NAME",
    "HmacKeyError",
    "default_key_path",
    "load_hmac_key",
    "load_or_create",
]

DEFAULT_KEY_NAME = "hardened-server-audit-hmac.key"


class HmacKeyError(ValueError):
    """The key file cannot be used; the message says why (never the key)."""


def default_key_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / DEFAULT_KEY_NAME


def load_hmac_key(path: str | os.PathLike[str]) -> bytes:
    """The key bytes of ``path`` (a trailing newline is not part of the key). Refused: not a
    regular file, a group or world permission bit, fewer than 32 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise HmacKeyError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise HmacKeyError(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            raise HmacKeyError(
                f"{path} is readable or writable by others (mode {stat.S_IMODE(info.st_mode):04o}"
                "; chmod 600 it)"
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            key = fh.read(1 << 16)
    finally:
        os.close(fd)
    key = key.rstrip(b"\r\n")
    if len(key) < MIN_KEY_BYTES:
        raise HmacKeyError(f"{path} holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


def load_or_create(path: str | os.PathLike[str]) -> tuple[bytes, bool]:
    """The key at ``path``, generated first if there is no file (``O_EXCL``: two servers
    starting at once do not write two keys). Returns (key, created)."""
    target = Path(path)
    created = False
    if not target.exists():
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            try:
                os.write(fd, secrets.token_hex(32).encode("ascii") + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(target.parent)
            created = True
    return load_hmac_key(target), created
