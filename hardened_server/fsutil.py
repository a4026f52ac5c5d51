"""Durable file replacement, shared by every writer of a whole file (token store, password file,
signed-policy signatures) and by the audit trail's directory syncs.

It lives here, beside the package's layers rather than in one of them, because ``trail/``,
``enforcement/`` and ``cli/`` all need it and ``policy/`` does no I/O (its package docstring,
``hardened_server/policy/__init__.py``). It imports nothing of ours, so any layer may use it.

Why every step: a temporary file in the *same* directory (a rename across file systems is not
atomic), given the wanted mode before any data is written; its data fsynced before the rename
(else a crash can leave the new name pointing at an empty or partial file); ``os.replace``
(atomic on POSIX: a reader sees the old file or the new one); then the directory fsynced so
that the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["atomic_write", "fsync_dir"]


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in ``directory`` durable. Best effort: some file systems
    refuse to open or fsync a directory, and the data itself was already synced."""
    with contextlib.suppress(OSError):
        fd = os.open(os.fspath(directory) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that no reader, and no crash, ever leaves a partial
    file: a temporary file in the same directory with ``mode``, fsync, ``os.replace``, fsync of
    the directory. On failure the temporary file is removed and ``path`` is untouched."""
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp",
                               dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
