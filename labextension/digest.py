"""Digests of the labextension source and of the built extension (labextension/build.sh).

``python digest.py --write`` records them in built.json; tests/test_labextension.py recomputes
both and compares: a source change without a rebuild, or a hand-edited build, fails the suite.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILT = HERE.parent / "hardened_server" / "labextensions" / "hardened-server-settings"
RECORD = HERE / "built.json"
SOURCE = ("package.json", "package-lock.json", "tsconfig.json", "src")


def tree_digest(root: Path, names: tuple[str, ...] | None = None) -> str:
    """sha256 over (relative path, content) of every file under ``root`` (or of ``names``)."""
    files: list[Path] = []
    for name in names or (".",):
        path = root / name
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def digests() -> dict[str, str]:
    return {"source": tree_digest(HERE, SOURCE), "built": tree_digest(BUILT)}


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        RECORD.write_text(json.dumps(digests(), indent=2) + "\n")
    else:
        print(json.dumps(digests(), indent=2))
