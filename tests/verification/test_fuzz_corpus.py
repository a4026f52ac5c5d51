"""Every atheris harness in ``fuzz/`` replayed over its committed corpus, without atheris.

``make fuzz`` runs each ``fuzz/fuzz_<name>.py`` for a set time over ``fuzz/corpus/<name>`` with
``fuzz/dicts/<name>.dict``; this module makes ``make test`` replay every seed through the same
``TestOneInput`` and its invariants, so a finding committed as a seed stays fixed, and checks
that every harness has a corpus and a dictionary libFuzzer accepts. A new harness is picked up by
its file name; nothing here needs editing. (The paths corpus is also replayed with every knob
setting by ``tests/policy/test_paths.py``.)
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
FUZZ = REPO / "fuzz"
HARNESSES = sorted(FUZZ.glob("fuzz_*.py"))
NAMES = [p.stem.removeprefix("fuzz_") for p in HARNESSES]
# libFuzzer's dictionary syntax: name="value" with \\, \" and \xNN escapes (it refuses to start
# on any other line).
_DICT_LINE = re.compile(r'[A-Za-z0-9_]+="(?:[^"\\]|\\\\|\\"|\\x[0-9a-fA-F]{2})*"')
_loaded: dict[str, ModuleType] = {}


def harness(name: str) -> ModuleType:
    """Import ``fuzz/fuzz_<name>.py`` by path (``fuzz/`` is not a package), once."""
    if name not in _loaded:
        module_name = f"_replayed_fuzz_{name}"
        spec = importlib.util.spec_from_file_location(module_name, FUZZ / f"fuzz_{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        _loaded[name] = module
    return _loaded[name]


def test_the_expected_harnesses_exist() -> None:
    assert set(NAMES) >= {"paths", "origins", "redirects", "csp", "loader", "tokens"}


@pytest.mark.parametrize("name", NAMES)
def test_every_harness_has_a_corpus_and_a_dictionary(name: str) -> None:
    seeds = [p for p in (FUZZ / "corpus" / name).iterdir() if p.is_file()]
    assert len(seeds) >= 20, name
    dictionary = FUZZ / "dicts" / f"{name}.dict"
    entries = 0
    for line in dictionary.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assert _DICT_LINE.fullmatch(line), (dictionary.name, line)
        entries += 1
    assert entries >= 30, dictionary.name


def test_every_harness_runs_standalone_under_atheris() -> None:
    """``make fuzz`` runs the files as scripts: each has the atheris entry point and is
    executable (libFuzzer re-executes argv[0] for -merge and -fork)."""
    for path in HARNESSES:
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env python3\n"), path.name
        assert "def TestOneInput(data: bytes)" in text, path.name
        assert "atheris.Setup(sys.argv" in text, path.name
        assert "atheris.Fuzz()" in text, path.name
        assert path.stat().st_mode & 0o111, f"{path.name} is not executable"


CORPUS = [
    pytest.param(name, seed, id=f"{name}/{seed.name}")
    for name in NAMES
    for seed in sorted((FUZZ / "corpus" / name).iterdir())
    if seed.is_file()
]


@pytest.mark.parametrize(("name", "seed"), CORPUS)
def test_corpus_replay(name: str, seed: Path) -> None:
    harness(name).TestOneInput(seed.read_bytes())
