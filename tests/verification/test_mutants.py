"""The suites have teeth: a deliberately broken copy of a policy function is caught both by its
Hypothesis property (the ``ci`` profile ``make test`` uses) and by its fuzz harness.

Three mutants, each the bug of a published advisory, are swapped into the policy module itself
(``monkeypatch``), so the property tests and the harnesses exercise them exactly as they exercise
the real code:

* **paths** — containment by string prefix (jupyter_server <= 2.17.0, CVE-2026-35397): a link to
  the sibling directory ``<root>secret`` counts as inside the root;
* **redirects** — the unsafe-character check forgets the backslash (JS-2 / CVE-2020-26275):
  ``/\\evil.example`` is a browser's ``//evil.example``;
* **origins** — the CORS allow-list matched by prefix, as ``re.match`` did (JS-10 /
  CVE-2026-40110): ``https://trusted.example.com.evil.com`` passes for
  ``https://trusted.example.com``.

For each mutant:

1. the property test, run with the ``ci`` profile's example budget but with its explicit
   ``@example`` payloads switched off (generation only, derandomized, no example database), must
   fail: Hypothesis has to *find* the bypass;
2. replaying the committed corpus through the harness's ``TestOneInput`` must hit an invariant
   violation (the seeds for these bug classes are in the corpus);
3. a bounded, seeded, atheris-free mutation loop (libFuzzer's byte and dictionary mutations)
   starting only from the seeds that do *not* trip the mutant must find a violating input within
   :data:`MAX_MUTATIONS` runs, and the real function must accept that input's invariants.

Everything is deterministic (fixed seeds) and runs in seconds. Where atheris is installed, one
more test runs the real harness under libFuzzer against the redirect mutant, bounded by
``-runs``, and expects libFuzzer's crash exit code.
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import Phase, settings

from hardened_server.policy import cors, paths, redirects
from hardened_server.policy.origins import normalize_origin
from tests.policy import test_gate_properties as gate_props
from tests.policy import test_paths_properties as path_props

REPO = Path(__file__).resolve().parents[2]
FUZZ = REPO / "fuzz"
MAX_MUTATIONS = 20_000
LOOP_SEED = 20261122


# -- the mutants ---------------------------------------------------------------------------------


def _prefix_contained(root: tuple[str, list[str]], candidate: tuple[str, list[str]]) -> bool:
    """CVE-2026-35397: ``candidate.startswith(root)`` on the joined path."""
    return "/".join(candidate[1]).startswith("/".join(root[1]))


#: JS-2: the unsafe-character class without the backslash.
_UNSAFE_WITHOUT_BACKSLASH = re.compile(r"[\x00-\x1f\x7f]")


def _prefix_listed(origin: str | None, allowlist: cors.CorsAllowList) -> str | None:
    """JS-10: the listed origin is a prefix of the request's (``re.match`` semantics)."""
    if not origin:
        return None
    norm = normalize_origin(origin)
    if norm is None:
        return None
    return next((listed for listed in allowlist.origins if norm.startswith(listed)), None)


@dataclass(frozen=True)
class Mutant:
    name: str  # also the harness and corpus name
    module: ModuleType
    attribute: str
    broken: Any
    properties: tuple[Callable[..., None], ...]
    dictionary: str


MUTANTS = {
    "paths": Mutant(
        "paths",
        paths,
        "_contained",
        _prefix_contained,
        (path_props.sibling_symlink_property(),),
        "paths.dict",
    ),
    "redirects": Mutant(
        "redirects",
        redirects,
        "_UNSAFE",
        _UNSAFE_WITHOUT_BACKSLASH,
        (gate_props.test_every_redirect_stays_in_the_origin_under_base_url,),
        "origins.dict",
    ),
    "origins": Mutant(
        "origins",
        cors,
        "_listed",
        _prefix_listed,
        (
            gate_props.test_allow_list_matches_iff_normalised_forms_are_equal,
            gate_props.test_confusions_of_a_listed_origin_are_refused,
        ),
        "origins.dict",
    ),
}


@contextmanager
def injected(mutant: Mutant) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mutant.module, mutant.attribute, mutant.broken)
        yield


# -- 1. the property, ci profile, generation only --------------------------------------------------


def _ci_generation_only() -> settings:
    return settings(
        settings.get_profile("ci"),
        phases=(Phase.generate, Phase.shrink),
        derandomize=True,
        database=None,
        report_multiple_bugs=False,
    )


@contextmanager
def hunting(test: Callable[..., None]) -> Iterator[None]:
    """Run a ``@given`` test with :func:`_ci_generation_only` and restore its own settings."""
    attr = "_hypothesis_internal_use_settings"
    saved = getattr(test, attr)
    setattr(test, attr, _ci_generation_only())
    try:
        yield
    finally:
        setattr(test, attr, saved)


def _hunt(test: Callable[..., None]) -> None:
    with hunting(test):
        test()


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_property_passes_on_the_real_function(name: str) -> None:
    """The control: the same runs find nothing in the real code."""
    for prop in MUTANTS[name].properties:
        _hunt(prop)


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_property_catches_the_mutant(name: str) -> None:
    mutant = MUTANTS[name]
    assert settings.get_profile("ci").max_examples <= 200  # the budget make test gives it
    for prop in mutant.properties:
        with injected(mutant), pytest.raises(AssertionError):
            _hunt(prop)


# -- 2 and 3. the fuzz harness ---------------------------------------------------------------------


def _harness(name: str) -> ModuleType:
    module_name = f"_mutant_fuzz_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, FUZZ / f"fuzz_{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def _violates(harness: ModuleType, data: bytes) -> bool:
    try:
        harness.TestOneInput(data)
    except AssertionError:
        return True
    return False


def _corpus(name: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((FUZZ / "corpus" / name).iterdir()) if p.is_file()]


def _dictionary(file_name: str) -> list[bytes]:
    """Tokens of a libFuzzer dictionary (``name="value"`` with ``\\xNN`` escapes)."""
    tokens = []
    for line in (FUZZ / "dicts" / file_name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        value = line.split("=", 1)[1].strip()[1:-1]
        tokens.append(value.encode("latin-1").decode("unicode_escape").encode("latin-1"))
    return tokens


def mutate(rng: random.Random, data: bytes, pool: list[bytes], tokens: list[bytes]) -> bytes:
    """One to three of libFuzzer's mutations: dictionary insert/overwrite, erase, byte change,
    duplicate a range, splice with another input."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        pos = rng.randint(0, len(out))
        if op in (0, 1):  # insert a dictionary token (twice as likely: dictionaries matter most)
            out[pos:pos] = rng.choice(tokens)
        elif op == 2 and out:  # overwrite with a token
            token = rng.choice(tokens)
            out[pos : pos + len(token)] = token
        elif op == 3 and out:  # erase a range
            out[pos : pos + rng.randint(1, 8)] = b""
        elif op == 4 and out:  # change a byte
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif op == 5 and out:  # duplicate a range
            start = rng.randrange(len(out))
            out[pos:pos] = out[start : start + rng.randint(1, 8)]
        else:  # splice with another input
            other = rng.choice(pool)
            out = out[:pos] + other[rng.randint(0, len(other)) :]
    return bytes(out[:512])


def fuzz_until_violation(name: str, mutant: Mutant) -> tuple[bytes, int] | None:
    harness = _harness(name)
    tokens = _dictionary(mutant.dictionary)
    with injected(mutant):
        pool = [seed for seed in _corpus(name) if not _violates(harness, seed)]
        rng = random.Random(LOOP_SEED)
        for run in range(1, MAX_MUTATIONS + 1):
            data = mutate(rng, rng.choice(pool), pool, tokens)
            if _violates(harness, data):
                return data, run
            if len(pool) < 400 and rng.random() < 0.05:
                pool.append(data)  # let mutations stack (no coverage feedback here)
    return None


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_committed_corpus_catches_the_mutant(name: str) -> None:
    mutant = MUTANTS[name]
    harness = _harness(name)
    assert not any(_violates(harness, seed) for seed in _corpus(name))  # the real code is clean
    with injected(mutant):
        caught = [seed for seed in _corpus(name) if _violates(harness, seed)]
    assert caught, f"no seed of fuzz/corpus/{name} trips the {name} mutant"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_mutation_loop_finds_the_mutant_from_clean_seeds(name: str) -> None:
    found = fuzz_until_violation(name, MUTANTS[name])
    assert found is not None, f"{MAX_MUTATIONS} mutations did not trip the {name} mutant"
    data, runs = found
    print(f"{name}: violation after {runs} mutations: {data!r}")
    _harness(name).TestOneInput(data)  # the real function keeps every invariant on it


# -- atheris itself, where it is installed -------------------------------------------------------

_RUNNER = """
import importlib.util, re, sys
import atheris
with atheris.instrument_imports(include=["hardened_server"]):
    from hardened_server.policy import redirects
redirects._UNSAFE = re.compile(r"[\\x00-\\x1f\\x7f]")  # the JS-2 mutant
spec = importlib.util.spec_from_file_location("h", sys.argv[1])
h = importlib.util.module_from_spec(spec)
spec.loader.exec_module(h)
atheris.enabled_hooks.add("str")
atheris.Setup([sys.argv[1], *sys.argv[2:]], h.TestOneInput)
atheris.Fuzz()
"""


def test_atheris_finds_the_redirect_mutant_within_bounded_runs(tmp_path: Path) -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.skip("atheris is not installed (optional `fuzz` extra; Linux x86_64 only)")
    harness = _harness("redirects")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with injected(MUTANTS["redirects"]):
        clean = [seed for seed in _corpus("redirects") if not _violates(harness, seed)]
    for i, seed in enumerate(clean):
        (corpus / f"seed{i}").write_bytes(seed)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUNNER,
            str(FUZZ / "fuzz_redirects.py"),
            "-runs=200000",
            "-seed=1",
            "-max_len=128",
            f"-dict={FUZZ / 'dicts' / 'origins.dict'}",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == 77, proc.stderr[-3000:]  # libFuzzer: an uncaught exception
    assert "AssertionError" in proc.stdout + proc.stderr
    crashes = list(tmp_path.glob("crash-*"))
    assert crashes
    harness.TestOneInput(crashes[0].read_bytes())  # the real validator keeps the invariants
