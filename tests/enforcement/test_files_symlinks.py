"""tornado's symlink check on the static handlers, answered with the root's resolver (issue #22).

``StaticFileHandler._resolve_symlink_target`` resolves the file and the root with two
``os.path.realpath`` calls per request (ten ``lstat`` calls for ``GET /files`` of a file one
level below a root four levels deep). :class:`PathGuardMixin` answers it with the root's
:class:`RootResolver`: the same path returned, the same 403 with the same message, for every
kind of symlink, and no ``realpath`` for a file below the root that has none.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tornado import web

from hardened_server.enforcement import files
from hardened_server.enforcement.files import PathGuardMixin

_tornados = web.StaticFileHandler._resolve_symlink_target


class _Static(PathGuardMixin, web.StaticFileHandler):
    pass


def _handler(follow_dir_symlinks: bool = False) -> Any:
    handler = object.__new__(_Static)
    if follow_dir_symlinks:
        handler.follow_dir_symlinks = True
    return handler


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A root reached through a symlink, with plain files and every kind of link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    root = tmp_path / "real-root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "c.txt").write_text("c")
    (root / "notes.md").write_text("n")
    (root / "out").symlink_to(outside)
    (root / "sibling").symlink_to(tmp_path / "real-root-secret")
    (tmp_path / "real-root-secret").mkdir()
    (tmp_path / "real-root-secret" / "x").write_text("x")
    (root / "a" / "up").symlink_to(root / "a" / "b")
    (root / "abs-in").symlink_to(root / "notes.md")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "loop").symlink_to(root / "loop")
    link_root = tmp_path / "link-root"
    link_root.symlink_to(root)
    return link_root


CANDIDATES = [
    "notes.md",
    "a",
    "a/b/c.txt",
    "a/up/c.txt",
    "abs-in",
    "out/secret.txt",
    "out",
    "sibling/x",
    "dangling",
    "loop",
    "missing.txt",
    "missing/deeper/file.txt",
    "",
]


def _answer(resolve: Any, path: str, allowed: list[str]) -> tuple[str, Any]:
    try:
        return "ok", resolve(path, allowed, "the/path")
    except web.HTTPError as exc:
        return "error", (exc.status_code, exc.log_message, exc.args)


@pytest.mark.parametrize("rel", CANDIDATES)
@pytest.mark.parametrize("via_link", [True, False])
@pytest.mark.parametrize("trailing_sep", [True, False])
def test_the_answer_is_tornados(tree: Path, rel: str, via_link: bool, trailing_sep: bool) -> None:
    """The path returned, or the 403 raised (status, message, arguments), is tornado's, for a
    root given through a symlink or as its real path, with or without tornado's trailing
    separator."""
    root = str(tree) if via_link else os.path.realpath(tree)
    allowed = [root + os.sep if trailing_sep else root]
    path = os.path.join(root, rel) if rel else root
    handler = _handler()
    assert _answer(handler._resolve_symlink_target, path, allowed) == _answer(
        _tornados, path, allowed
    )


def test_no_realpath_for_a_plain_file_below_the_root(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saving itself: tornado calls realpath on the file and on the root; the resolver
    stats the root once and lstats the file's components."""
    root = str(tree)
    handler = _handler()
    path = os.path.join(root, "a", "b", "c.txt")
    handler._resolve_symlink_target(path, [root + os.sep], "p")  # the resolver is built
    asked: list[str] = []
    real = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda p, *a, **k: asked.append(p) or real(p))
    resolved = handler._resolve_symlink_target(path, [root + os.sep], "p")
    monkeypatch.undo()
    assert resolved == os.path.realpath(path)
    assert asked == []


def test_a_swapped_root_is_followed(tree: Path, tmp_path: Path) -> None:
    """The root's real path is cached by the resolver but checked on every request."""
    root = str(tree)
    handler = _handler()
    path = os.path.join(root, "notes.md")
    assert handler._resolve_symlink_target(path, [root + os.sep], "p") == os.path.realpath(path)
    other = tmp_path / "other-root"
    other.mkdir()
    (other / "notes.md").write_text("o")
    tree.unlink()
    tree.symlink_to(other)
    assert handler._resolve_symlink_target(path, [root + os.sep], "p") == str(other / "notes.md")


@pytest.mark.parametrize(
    ("follow", "allowed"),
    [
        (True, ["{root}/"]),  # FileFindHandler(follow_dir_symlinks=True): tornado's check
        (False, ["{root}/", "{other}/"]),  # a configured list of directories
        (False, ["{root}/a/../"]),  # not a normalised path
        (False, ["/"]),  # the file system's root
    ],
)
def test_other_shapes_are_tornados_own_check(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, follow: bool, allowed: list[str]
) -> None:
    dirs = [a.format(root=tree, other=tmp_path / "outside").replace("/", os.sep) for a in allowed]
    asked: list[Any] = []
    monkeypatch.setattr(files, "root_resolver", lambda r: asked.append(r))
    handler = _handler(follow_dir_symlinks=follow)
    path = os.path.join(str(tree), "notes.md")
    assert _answer(handler._resolve_symlink_target, path, dirs) == _answer(_tornados, path, dirs)
    assert asked == []
