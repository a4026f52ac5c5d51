"""Fetch the sdists of the installed jupyter_server and jupyterlab_server and unpack their tests.

The peer suites (``make test``, tests/peer/) run the tests the upstream projects wrote, taken
byte for byte from the source distribution of the version installed in the venv that runs them:

1. the installed version must be the one pinned in ``tools/peer/pins.toml`` (a newer
   jupyter_server must not be tested with an older one's tests, nor silently pass with a stale
   expectations file);
2. the sdist comes from the package registry through pip (``pip download --no-deps --no-binary
   :all: --require-hashes``: pip itself refuses a file whose sha256 is not the pinned one), and
   its sha256 is checked again here before anything is unpacked;
3. only the members under ``<name>-<version>/tests/`` (and the other ``trees`` the pin lists)
   are written, as regular files and directories (``tarfile``'s ``data`` filter: no links,
   devices or paths leaving the target), into ``<cache>/<name>/``; a stamp names the sdist's
   sha256, so a re-run with the same pin does nothing and works offline.

Usage: ``python tools/peer/fetch.py [--cache DIR]`` (default ``build/peer``, which is
gitignored); prints the directory of each unpacked tree. ``--constraints`` prints the pins as
pip constraints instead (``name==version``, one a line), for the Makefile's venv install.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PINS = HERE / "pins.toml"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def download(name: str, version: str, sha256: str, target: Path) -> None:
    """pip download of the one sdist, its hash required by pip itself."""
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(f"{name}=={version} --hash=sha256:{sha256}\n", encoding="utf-8")
        subprocess.run(  # noqa: S603 -- pip with the pinned name, version and hash
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--require-hashes",
                "--dest",
                str(target),
                "--requirement",
                str(requirements),
            ],
            check=True,
        )


def unpack_trees(sdist: Path, top: str, trees: list[str], destination: Path) -> int:
    """Write the members under ``<top>/<tree>/`` for each tree below ``destination`` (keeping
    the ``<tree>`` part of their path). Returns the number of files written."""
    prefixes = tuple(f"{top}/{tree.strip('/')}/" for tree in trees)
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    files = 0
    with tarfile.open(sdist, "r:gz") as archive:
        members = []
        for member in archive.getmembers():
            if not member.name.startswith(prefixes):
                continue
            if not (member.isfile() or member.isdir()):
                raise SystemExit(f"{sdist.name}: {member.name} is neither a file nor a directory")
            member.name = member.name[len(top) + 1 :]
            members.append(member)
            files += member.isfile()
        archive.extractall(destination, members=members, filter="data")
    if not files:
        raise SystemExit(f"{sdist.name}: none of {trees} under {top}/")
    return files


def fetch(name: str, pin: dict[str, Any], cache: Path) -> Path:
    version, sdist_name, sha256 = pin["version"], pin["sdist"], pin["sha256"]
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            f"{name} is not installed for {sys.executable}: run this with the peer venv's "
            "interpreter (make peer-venv)"
        ) from None
    if installed != version:
        raise SystemExit(
            f"{name} {installed} is installed but tools/peer/pins.toml pins {version}: "
            "pin the installed version (its sdist's sha256) and review tests/peer/expected.toml"
        )
    trees = list(pin.get("trees", ["tests"]))
    tree = cache / name
    stamp = tree / ".sdist-sha256"
    stamp_text = f"{sha256} {' '.join(trees)}"
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == stamp_text:
        return tree
    sdist = cache / "sdist" / sdist_name
    if not (sdist.is_file() and sha256_of(sdist) == sha256):
        sdist.unlink(missing_ok=True)
        download(name, version, sha256, sdist.parent)
    actual = sha256_of(sdist)
    if actual != sha256:
        raise SystemExit(f"{sdist_name}: sha256 {actual}, pinned {sha256}")
    count = unpack_trees(sdist, sdist_name.removesuffix(".tar.gz"), trees, tree)
    stamp.write_text(stamp_text + "\n", encoding="utf-8")
    print(f"{name} {version}: {count} files from {sdist_name} (sha256 verified)", file=sys.stderr)
    return tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=REPO / "build" / "peer")
    parser.add_argument("--constraints", action="store_true", help="print name==version lines")
    args = parser.parse_args(argv)
    pins = tomllib.loads(PINS.read_text(encoding="utf-8"))
    if args.constraints:
        for name, pin in pins.items():
            print(f"{name}=={pin['version']}")
        return 0
    for name, pin in pins.items():
        print(fetch(name, pin, args.cache.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
