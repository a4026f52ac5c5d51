"""SECURITY.md's advisory table covers the whole research catalogue, and every test it names
exists.

The catalogue (research notes, jupyter_server_security.md §3) is committed as
``tests/regression/advisories.txt``: one advisory per line with every id it is known by. Each
GHSA and CVE id there must appear in the first column of a row of the "Advisory coverage"
table, and every row must say how it is covered: a test that exists (``file.py::test_name``,
``::test_name`` continuing the previous file, or a whole test file) or "not applicable" with
the reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = Path(__file__).with_name("advisories.txt")
_ID = re.compile(r"\b(?:GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}|CVE-\d{4}-\d{4,})\b")


def catalogue() -> list[tuple[str, list[str]]]:
    out = []
    for line in CATALOGUE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        project, _, ids = line.partition(":")
        out.append((project.strip(), ids.split()))
    return out


def table_rows() -> list[list[str]]:
    text = (REPO / "SECURITY.md").read_text()
    section = text.split("## Advisory coverage", 1)[1].split("\n## ", 1)[0]
    section = section.split("Attack classes without an advisory", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---") and "advisory id" not in line:
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


ROWS = table_rows()
COVERED = {found for row in ROWS for found in _ID.findall(row[0])}


def test_the_catalogue_and_the_table_are_not_empty() -> None:
    assert len(catalogue()) >= 50
    assert len(ROWS) >= 45


@pytest.mark.parametrize(
    ("project", "ids"), catalogue(), ids=[" ".join(ids[:1]) for _, ids in catalogue()]
)
def test_every_catalogued_advisory_has_a_row(project: str, ids: list[str]) -> None:
    wanted = [i for i in ids if _ID.fullmatch(i)]  # PYSEC aliases are not required
    assert wanted, (project, ids)
    missing = [i for i in wanted if i not in COVERED]
    assert not missing, f"{project}: {missing} not in SECURITY.md's advisory table"


def _test_functions(path: Path) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.MULTILINE))


def _xfail_functions(path: Path) -> set[str]:
    """Test functions of ``path`` that carry a ``pytest.mark.xfail`` decorator."""
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any("xfail" in ast.unparse(d) for d in node.decorator_list)
    }


def _resolve(name: str) -> Path:
    candidates = [REPO / name, REPO / "tests" / "regression" / name, REPO / "tests" / name]
    for path in candidates:
        if path.is_file():
            return path
    raise AssertionError(f"SECURITY.md names a test file that does not exist: {name}")


@pytest.mark.parametrize("row", ROWS, ids=[row[0][:40] for row in ROWS])
def test_every_row_names_existing_tests_or_says_why_not(row: list[str]) -> None:
    ids, _project, tests, status = row[0], row[1], row[2], row[3]
    assert _ID.search(ids), row
    if tests in ("—", "-", ""):
        assert "not applicable" in status, row
        return
    current: Path | None = None
    named = 0
    xfails = 0
    for ref in re.findall(r"`([^`]+)`", tests):
        file_part, _, func = ref.partition("::")
        if file_part.endswith(".py"):
            current = _resolve(file_part)
        elif not ref.startswith("::"):
            continue  # a config key or a value quoted in the row, not a test
        if func:
            assert current is not None, (ref, row)
            base = func.split("[", 1)[0].split(" ", 1)[0]
            assert base in _test_functions(current), f"{current.name}::{base} does not exist"
            xfails += base in _xfail_functions(current)
        named += 1
    if named == 0:
        assert tests.startswith("as "), row  # "as GHSA-…": shares another row's test
    assert re.match(r"(passes|GET passes|xfail|not applicable)", status), row
    # the status tells the truth: "xfail" exactly when a named test is an expected failure
    says_xfail = "xfail" in status
    assert says_xfail == bool(xfails), (
        f"{ids}: status says {'an' if says_xfail else 'no'} xfail, {xfails} named test(s) xfail"
    )
