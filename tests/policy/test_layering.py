"""policy/ is the bottom layer (README.md, "Layout"):
it imports nothing from the layers above it, so the pure functions can be fuzzed and reused by
the audit without tornado, the trail or the server."""

from __future__ import annotations

import ast
from pathlib import Path

import hardened_server.policy

ABOVE = ("trail", "enforcement", "app", "hub", "cli", "audit")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
    return out


def test_policy_imports_nothing_above_it() -> None:
    package = Path(hardened_server.policy.__file__).parent
    offending = [
        f"{path.name}: {module}"
        for path in sorted(package.rglob("*.py"))
        for module in _imports(path)
        if module.split(".")[:2][0] == "hardened_server"
        and len(module.split(".")) > 1
        and module.split(".")[1] in ABOVE
    ]
    assert offending == []
