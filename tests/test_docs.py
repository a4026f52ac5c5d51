"""The committed policy reference is exactly what ``hardened-server policy reference`` prints.

The reference is generated from the schema and the shipped default profile (a generated
reference beats a hand-kept one), so a key added, a default changed or a description reworded
without regenerating it would leave operators reading a stale document. ``make docs`` rewrites it.

The README's extension table is held to its word the same way: each row names the tests that
show it, and they must exist (and, for a row that says it works, run a real server).
"""

from __future__ import annotations

import ast
import difflib
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "docs" / "policy-reference.md"


def generated_reference(cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "hardened_server", "policy", "reference"],
        cwd=cwd,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_policy_reference_is_up_to_date(tmp_path: Path) -> None:
    """Fails with the diff, and the command to run, when docs/policy-reference.md is missing or
    stale."""
    if not REFERENCE.is_file():
        pytest.fail(
            f"{REFERENCE.relative_to(REPO)} does not exist: run `make docs` to generate it "
            "from `hardened-server policy reference`, and commit it"
        )
    committed = REFERENCE.read_text(encoding="utf-8")
    generated = generated_reference(tmp_path)
    if committed != generated:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                fromfile="docs/policy-reference.md (committed)",
                tofile="hardened-server policy reference (generated)",
                n=1,
            )
        )
        pytest.fail(
            "docs/policy-reference.md is stale: run `make docs` and commit the result.\n"
            + diff[:4000],
            pytrace=False,
        )


# -- README "Extensions people install": every row backed by a test (issue #16) -----------------

README = REPO / "README.md"
EXTENSION_TABLE_HEADER = "| Extension | Under the default policy | Tested by |"
#: how the middle column starts: the three answers the table gives
STATUSES = ("works by default", "needs one line: ", "unsupported: ")
NODE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
LIVE_MARKS = ("pytest.mark.e2e", "pytest.mark.live")


def extension_rows() -> list[tuple[str, str, str]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(EXTENSION_TABLE_HEADER) + 2  # after the header and |---|
    rows = []
    for line in itertools.takewhile(lambda x: x.startswith("|"), lines[start:]):
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, line
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def functions_of(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def is_live(path: Path, function: ast.FunctionDef) -> bool:
    """The module's ``pytestmark`` or the function's own decorators mark it e2e or live: it runs
    a real server (tests/test_marker_rule.py keeps that true)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    marks = [
        ast.get_source_segment(source, n) or ""
        for n in tree.body
        if isinstance(n, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in n.targets
        )
    ]  # fmt: skip
    marks += [ast.get_source_segment(source, d) or "" for d in function.decorator_list]
    return any(m in text for text in marks for m in LIVE_MARKS)


def test_extension_table_has_the_extensions_of_issue_16() -> None:
    names = " ".join(row[0] for row in extension_rows())
    for extension in ("JupyterLab", "Notebook 7", "jupyter-collaboration", "jupyterlab-git",
                      "nbdime", "jupyter-server-proxy", "jupyter-resource-usage", "jupytext",
                      "voila", "jupyter-lsp", "ipywidgets", "jupyterlab-execute-time",
                      "nbclassic"):  # fmt: skip
        assert extension in names, extension


@pytest.mark.parametrize(("extension", "status", "tests"), extension_rows(),
                         ids=[row[0] for row in extension_rows()])  # fmt: skip
def test_each_extension_row_names_tests_that_exist(extension: str, status: str,
                                                   tests: str) -> None:  # fmt: skip
    """Each row says works / needs one line / unsupported, and names tests that exist; a row
    that says it works names at least one test that runs a real server."""
    assert status.startswith(STATUSES), f"{extension}: {status!r} starts with none of {STATUSES}"
    if status.startswith("needs one line"):
        assert "`" in status, f"{extension}: name the line"
    nodes = NODE.findall(tests)
    assert nodes, f"{extension}: no test named in {tests!r}"
    assert len(nodes) == tests.count("::"), f"{extension}: a node id not in `path::name` form"
    live = []
    for relative, name in nodes:
        path = REPO / relative
        assert path.is_file(), f"{extension}: {relative} does not exist"
        functions = functions_of(path)
        assert name in functions, f"{extension}: {relative} has no function {name}"
        live.append(is_live(path, functions[name]))
    if not status.startswith("unsupported"):
        assert any(live), f"{extension}: no named test runs a real server"
