"""``hardened_server.fsutil``: the one atomic, durable whole-file write (token store, password
file, policy signatures) and the directory sync the audit trail uses."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hardened_server import fsutil
from hardened_server.fsutil import atomic_write, fsync_dir


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_replaces_the_file_with_the_wanted_mode_whatever_the_umask(tmp_path: Path, mode: int):
    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    os.chmod(target, 0o666)
    old_umask = os.umask(0)
    try:
        atomic_write(target, b"new", mode)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_the_data_and_the_directory_are_fsynced_before_and_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    events: list[str] = []
    target = tmp_path / "f"
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    monkeypatch.setattr(fsutil.os, "replace", replace)
    atomic_write(str(target), b"x")
    assert events == ["fsync file", "replace", "fsync dir"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fsutil.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_fsync_dir_is_best_effort(tmp_path: Path):
    fsync_dir(tmp_path)
    fsync_dir(tmp_path / "missing")  # no error: the data was already synced
