"""The committed policy reference is exactly what ``hardened-server policy reference`` prints.

The reference is generated from the schema and the shipped default profile (a generated
reference beats a hand-kept one), so a key added, a default changed or a description reworded
without regenerating it would leave operators reading a stale document. ``make docs`` rewrites it.
"""

from __future__ import annotations

import difflib
import os
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
