"""``/files``' stock hidden-file check (jupyter_server's ``AuthenticatedFileHandler``), answered
without ``pathlib`` (issue #22).

jupyter_core's ``is_hidden`` cost 38 µs of every ``GET /files``. :func:`stock_hidden` gives its
answer for the file tornado settled on, by string, and hands every other case to ``is_hidden``
itself; :class:`HardenedFileHandler` keeps the check, its 404 and its log line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyter_core.paths import is_hidden
from tornado import web

from hardened_server.enforcement import files
from hardened_server.enforcement.files import HardenedFileHandler, stock_hidden

NAMES = [
    "a.txt",
    ".a.txt",
    "...",
    "a.",
    "d/a.txt",
    ".d/a.txt",
    "d/.e/a.txt",
    "d/e/.a",
    "d/e/a..b",
    "d..x/a",
    "d/e/f/g.txt",
    " .space/a",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for name in NAMES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return root


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("trailing_slash", [False, True])
def test_the_answer_is_jupyter_cores(tree: Path, name: str, trailing_slash: bool) -> None:
    abs_path = os.path.realpath(tree / name)
    root = str(tree) + (os.sep if trailing_slash else "")
    assert stock_hidden(abs_path, root) == is_hidden(abs_path, root)


def test_a_hidden_root_itself_does_not_hide_its_files(tmp_path: Path) -> None:
    """Only the components below the root count, as for ``is_hidden``."""
    root = tmp_path / ".jupyter-root"
    root.mkdir()
    (root / "a.txt").write_text("x")
    assert stock_hidden(str(root / "a.txt"), str(root)) is False
    assert is_hidden(str(root / "a.txt"), str(root)) is False


@pytest.mark.skipif(files._STAT_HAS_FLAGS, reason="stat has file flags: is_hidden decides")
def test_no_pathlib_walk_for_a_file_below_the_root(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Any] = []
    monkeypatch.setattr(files, "is_hidden", lambda *a: asked.append(a) or is_hidden(*a))
    for name in NAMES:
        stock_hidden(os.path.realpath(tree / name), str(tree))
    assert asked == []


def test_a_path_not_written_below_the_root_is_is_hiddens_answer(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root reached through a symlink: the resolved file is not below the root as written;
    ``is_hidden`` decides (and refuses the arguments, as it does for stock)."""
    link = tmp_path / "link"
    link.symlink_to(tree)
    asked: list[Any] = []
    monkeypatch.setattr(files, "is_hidden", lambda *a: asked.append(a) or is_hidden(*a))
    with pytest.raises(ValueError, match="not a subdirectory"):
        stock_hidden(os.path.realpath(tree / "a.txt"), str(link))
    assert len(asked) == 1
    assert stock_hidden(str(tree / "d" / ".." / ".d" / "a.txt"), str(tree)) is True
    assert len(asked) == 2


def _handler(root: Path, allow_hidden: bool) -> Any:
    handler: Any = object.__new__(HardenedFileHandler)
    handler.path = ""
    handler.request = SimpleNamespace(path="/files/x")
    handler.allowed_symlink_directory = None
    handler.default_filename = None
    handler.application = SimpleNamespace(
        settings={"contents_manager": SimpleNamespace(allow_hidden=allow_hidden)}
    )
    return handler


@pytest.mark.parametrize("allow_hidden", [False, True])
def test_the_handler_refuses_a_hidden_file_like_stock(
    tree: Path, allow_hidden: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The check past the path policy (which refuses hidden names first when the policy says
    so): tornado's validation, then stock's 404 and log line unless ``allow_hidden``."""
    handler = _handler(tree, allow_hidden)
    caplog.set_level(logging.INFO)
    visible = str(tree / "d" / "a.txt")
    handler.path = "d/a.txt"
    assert files._StockHiddenCheck.validate_absolute_path(handler, str(tree), visible) == visible
    hidden = str(tree / "d" / ".e" / "a.txt")
    handler.path = "d/.e/a.txt"
    if allow_hidden:
        assert files._StockHiddenCheck.validate_absolute_path(handler, str(tree), hidden) == hidden
        return
    with pytest.raises(web.HTTPError) as refused:
        files._StockHiddenCheck.validate_absolute_path(handler, str(tree), hidden)
    assert refused.value.status_code == 404
    assert "Refusing to serve hidden file" in caplog.text


def test_the_handler_skips_jupyter_servers_pathlib_check() -> None:
    """Past the path guard, ``validate_absolute_path`` is this check's, then tornado's: jupyter
    server's own (which calls ``is_hidden``) is not run a second time."""
    mro = HardenedFileHandler.__mro__
    assert mro.index(files._StockHiddenCheck) < mro.index(files.AuthenticatedFileHandler)
    assert mro.index(files.PathGuardMixin) < mro.index(files._StockHiddenCheck)
