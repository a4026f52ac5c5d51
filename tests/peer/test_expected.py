"""tests/peer/expected.toml: every deliberate difference from stock cites a SECURITY.md line
that exists, and SECURITY.md's counts are the file's.

The peer suites themselves run in their own pytest invocation (``make test-peer``, from the
upstream sdists); this checks the expectations file they are judged by, in the main suite.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from tests.peer.hs_peer import EXPECTED, SUITES, load_expectations

REPO = Path(__file__).resolve().parents[2]
SECURITY = REPO / "SECURITY.md"
CLASS_LINE = re.compile(r"^- `(peer-[a-z-]+)` \(([^)]*)\): ")


def security_class_lines() -> dict[str, tuple[int, str]]:
    """SECURITY.md's class lines: tag -> (line number, the counts in parentheses)."""
    found: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(SECURITY.read_text(encoding="utf-8").splitlines(), 1):
        match = CLASS_LINE.match(line)
        if match:
            assert match.group(1) not in found, f"SECURITY.md:{number}: {match.group(1)} twice"
            found[match.group(1)] = (number, match.group(2))
    return found


def classes() -> dict[str, dict[str, str]]:
    return tomllib.loads(EXPECTED.read_text(encoding="utf-8"))["classes"]


def test_every_class_cites_a_security_md_line_that_exists() -> None:
    lines = security_class_lines()
    for name, spec in classes().items():
        assert spec["security"] == f"peer-{name}", f"class {name}: cites {spec['security']}"
        assert spec["security"] in lines, (
            f"class {name} cites `{spec['security']}`, which no line of SECURITY.md starts with"
        )
        assert spec["kind"] in ("deliberate", "substitution", "stock", "bug"), name


def test_every_security_md_class_line_is_a_class_in_use() -> None:
    known = {spec["security"] for spec in classes().values()}
    used = {e.kind for suite in SUITES for e in load_expectations(suite)[0].values()}
    for tag in security_class_lines():
        assert tag in known, f"SECURITY.md names {tag}, which tests/peer/expected.toml lacks"
        assert tag.removeprefix("peer-") in used, f"{tag}: no test is listed with this class"


def test_security_md_counts_are_the_expectations_files() -> None:
    """Each class line says how many tests of each suite it covers: the number listed."""
    counts = {
        suite: Counter(e.kind for e in load_expectations(suite)[0].values()) for suite in SUITES
    }
    for tag, (number, stated) in security_class_lines().items():
        name = tag.removeprefix("peer-")
        expected = ", ".join(
            f"{suite} {counts[suite][name]}" for suite in SUITES if counts[suite][name]
        )
        assert stated == expected, f"SECURITY.md:{number}: ({stated}), the file lists ({expected})"


def test_an_unknown_class_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "expected.toml"
    bad.write_text(
        '[classes.cors]\nsecurity = "peer-cors"\nkind = "deliberate"\n'
        '[jupyter_server.fail.nope]\n"tests/test_x.py::test_y" = "why"\n',
        encoding="utf-8",
    )
    with pytest.raises(pytest.UsageError, match="not a class"):
        load_expectations("jupyter_server", bad)


CHECKED_SUITE = """
def test_passes():
    pass

def test_listed_and_fails():
    assert False

def test_listed_but_passes():
    pass

def test_unlisted_and_fails():
    assert False
"""

CHECKED_EXPECTATIONS = """
[classes.demo]
security = "peer-demo"
kind = "deliberate"

[jupyterlab_server.fail.demo]
"test_suite.py::test_listed_and_fails" = "fails on purpose"
"test_suite.py::test_listed_but_passes" = "was expected to fail"
"""


def test_the_checker_fails_an_unlisted_failure_and_a_listed_test_that_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the plugin over a four-test suite: only the listed failure is an (expected) xfail;
    the unlisted failure and the listed test that passes both fail the run."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(test_suite=CHECKED_SUITE)
    expected = pytester.path / "expected.toml"
    expected.write_text(CHECKED_EXPECTATIONS, encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "-p",
        "tests.peer.hs_peer",
        "--hs-peer-suite=jupyterlab_server",
        f"--hs-peer-expected={expected}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*was expected to fail*"])


LEAKING_SUITE = """
import os

def test_leaks_and_fails():
    os.environ["HS_PEER_LEAK"] = "1"
    assert False

def test_sees_a_clean_environment():
    assert "HS_PEER_LEAK" not in os.environ

def test_fails_on_stock_too():
    assert False

def test_fails_on_stock_but_passes_here():
    pass
"""

STOCK_EXPECTATIONS = """
[classes.demo]
security = "peer-demo"
kind = "deliberate"

[jupyterlab_server.stock_failures]
"test_suite.py::test_leaks_and_fails" = "leaks an environment variable, then fails"
"test_suite.py::test_fails_on_stock_too" = "as root"
"test_suite.py::test_fails_on_stock_but_passes_here" = "not as root"
"""


def test_a_test_that_leaks_the_environment_leaks_it_to_no_later_test_and_stock_failures_may_pass(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What broke the jupyter_server run: a test that sets a variable and fails before it
    deletes it (test_launch.py::test_token_file and JUPYTER_TOKEN_FILE). The next test sees the
    environment as it was; the run names the leaking test. A test listed under
    ``stock_failures`` is a non-strict xfail: failing or passing, the run passes."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.delenv("HS_PEER_LEAK", raising=False)
    pytester.makepyfile(test_suite=LEAKING_SUITE)
    expected = pytester.path / "expected.toml"
    expected.write_text(STOCK_EXPECTATIONS, encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "-p",
        "tests.peer.hs_peer",
        "--hs-peer-suite=jupyterlab_server",
        f"--hs-peer-expected={expected}",
        "-p",
        "no:cacheprovider",
        "-rxX",
    )
    result.assert_outcomes(passed=1, xfailed=2, xpassed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "hs_peer: os.environ restored: HS_PEER_LEAK after test_suite.py::test_leaks_and_fails",
            "*fails against stock jupyter_server in this environment: as root*",
        ]
    )


def test_a_class_may_not_be_named_stock(tmp_path: Path) -> None:
    bad = tmp_path / "expected.toml"
    bad.write_text('[classes.stock]\nsecurity = "peer-stock"\nkind = "deliberate"\n')
    with pytest.raises(pytest.UsageError, match="stock_failures"):
        load_expectations("jupyter_server", bad)
