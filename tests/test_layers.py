"""The package's layers point one way (DESIGN.md section 2) and no module imports itself back.

Every module under ``hardened_server/`` is parsed with :mod:`ast` (nothing is imported); its
imports of our own modules are collected at module level *and* inside functions and classes
(a function-level import is still a dependency, only a late one). Imports under
``if TYPE_CHECKING:`` are left out: they never run, and annotations need not follow the layers.

Order, bottom to top: ``policy`` (pure) -> ``trail`` -> ``enforcement`` (with ``identity``) ->
``app``, ``hub`` -> ``cli``, ``audit``. Checked:

- no import cycle between modules (a strongly connected component of more than one module, or
  a module importing itself);
- ``policy`` imports nothing of ours outside ``policy``; ``trail`` only ``policy`` and ``trail``;
  ``enforcement`` only ``policy``, ``trail`` and ``enforcement``; ``app``/``hub`` nothing from
  ``cli`` or ``audit``; nothing outside ``audit`` imports ``audit`` except ``cli``;
- ``hardened_server.fsutil`` (atomic whole-file writes, directory fsync) imports nothing of
  ours, so every layer above ``policy`` may use it; ``policy`` does no I/O and may not.

Violations still being removed are listed in ``KNOWN_CYCLES`` and ``KNOWN_LAYER_VIOLATIONS``; a
listed one that no longer exists fails the test, so the lists can only shrink.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = "hardened_server"
ROOT = REPO / PACKAGE

#: Cycles (as sorted module sets) others are removing under issue #15.
#: (``enforcement.contents <-> enforcement.files`` was one until the shared path helpers moved
#: to enforcement/pathpolicy.py.)
KNOWN_CYCLES: set[frozenset[str]] = set()

#: (importer, imported) pairs that break the layer order, being removed under issue #15.
#: (``policy.schema -> trail.chain`` was one until 70bef75 moved FsyncPolicy to policy/fsync.py.)
KNOWN_LAYER_VIOLATIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``, except the bodies of ``if TYPE_CHECKING:`` (their ``else``
    branches run, so they are kept)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (``a.b.func`` -> ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module
            names = [f"{origin}.{alias.name}" for alias in node.names] + [origin]
            names = [n for n in names[:-1] if n in modules] or [origin]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def layer(module: str) -> str:
    """``policy``, ``trail``, ``enforcement``, ``app``, ``hub``, ``cli``, ``audit`` or the top
    package's own modules (``hardened_server``, ``hardened_server.__main__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else "top"


#: For each layer, the layers it may import (itself included).
ALLOWED: dict[str, set[str] | None] = {
    "fsutil": set(),  # file I/O helpers beside the layers: import nothing of ours
    "policy": {"policy"},  # pure: not even fsutil
    "trail": {"fsutil", "policy", "trail"},
    "enforcement": {"fsutil", "policy", "trail", "enforcement"},
    "app": {"fsutil", "policy", "trail", "enforcement", "app", "hub", "top"},
    "hub": {"fsutil", "policy", "trail", "enforcement", "app", "hub", "top"},
    "cli": None,  # the commands may use everything below, and ``audit``
    "audit": None,  # ``hardened-server audit`` may use everything below; ``cli`` is checked next
    "top": None,
}


def layer_violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    bad = set()
    for importer, targets in graph.items():
        allowed = ALLOWED[layer(importer)]
        for target in targets:
            below = allowed is None or layer(target) in allowed
            audit_ok = layer(target) != "audit" or layer(importer) in ("audit", "cli")
            if not (below and audit_ok):
                bad.add((importer, target))
    return bad


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: set[frozenset[str]] = set()
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_scan_sees_the_package(graph: dict[str, set[str]]) -> None:
    """A scan that found nothing would pass every check below."""
    assert {"policy", "trail", "enforcement", "app", "hub", "cli", "audit"} <= {
        layer(m) for m in graph
    }
    assert "hardened_server.policy.loader" in graph["hardened_server.app"]
    assert len(graph) > 60


def test_no_import_cycle_between_modules(graph: dict[str, set[str]]) -> None:
    found = cycles(graph)
    new = found - KNOWN_CYCLES
    assert not new, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)


def test_each_known_cycle_still_exists(graph: dict[str, set[str]]) -> None:
    """Remove an entry of KNOWN_CYCLES once its cycle is gone (the list only shrinks)."""
    gone = KNOWN_CYCLES - cycles(graph)
    assert not gone, "fixed, take them off KNOWN_CYCLES: " + repr(sorted(map(sorted, gone)))


def test_layers_point_one_way(graph: dict[str, set[str]]) -> None:
    new = layer_violations(graph) - KNOWN_LAYER_VIOLATIONS
    assert not new, "imports against the layer order: " + "; ".join(
        f"{a} -> {b}" for a, b in sorted(new)
    )


def test_each_known_layer_violation_still_exists(graph: dict[str, set[str]]) -> None:
    """Remove an entry of KNOWN_LAYER_VIOLATIONS once it is gone (the list only shrinks)."""
    gone = KNOWN_LAYER_VIOLATIONS - layer_violations(graph)
    assert not gone, f"fixed, take them off KNOWN_LAYER_VIOLATIONS: {sorted(gone)}"


def test_the_scanner_follows_every_kind_of_import(tmp_path: Path) -> None:
    """Relative, absolute, ``from pkg import module``, function-level; not TYPE_CHECKING."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "from .c import thing\n"
        "import hardened_server.d\n"
        "if TYPE_CHECKING:\n"
        "    from hardened_server.e import X\n"
        "else:\n"
        "    from hardened_server.f import Y\n"
        "def late():\n"
        "    from hardened_server.g import h\n"
    )
    path = tmp_path / "a.py"
    path.write_text(source)
    names = ["a", "b", "c", "d", "e", "f", "g"]
    modules = {f"hardened_server.{n}": tmp_path / f"{n}.py" for n in names}
    found = imports_of("hardened_server.a", path, modules)
    assert found == {f"hardened_server.{n}" for n in ("b", "c", "d", "f", "g")}
    assert cycles({"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}) == {frozenset("xyz")}
