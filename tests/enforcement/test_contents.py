"""HardenedContentsManager and the static-file guard, in process (no server).

The live module (test_paths_live.py) drives every entry point over HTTP; these pin the wiring
details that HTTP cannot see: which policy the manager reads, that the policy (not a stray
``ContentsManager.allow_hidden``) decides hidden files, the mixin composition ``wrap_handler``
will use, and the shape of the denial record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.base.handlers import (
    APIHandler,
    AuthenticatedFileHandler,
    FileFindHandler,
    JupyterHandler,
)
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.kernelspecs.handlers import KernelSpecResourceHandler
from jupyter_server.services.api.handlers import APISpecHandler
from tornado import web
from traitlets.config import Config, Configurable

from hardened_server.enforcement.contents import (
    MISSING_MESSAGE,
    HardenedContentsManager,
    display_path,
    not_found,
)
from hardened_server.enforcement.files import (
    HardenedFileHandler,
    PathGuardMixin,
    is_attachment_only,
    is_script_or_document,
    path_guard_mixins,
)
from hardened_server.enforcement.handlers import HardenedJupyterMixin, HardenedPlainMixin
from hardened_server.enforcement.pathpolicy import record_path_denial
from hardened_server.policy.loader import load_policy
from hardened_server.policy.paths import PathOp, PathPolicy


class FakeApp(Configurable):
    """Stands in for HardenedServerApp: what the manager reads is ``.policy``."""

    def __init__(self, **paths: Any) -> None:
        super().__init__()
        policy = load_policy()
        self.policy = dataclasses.replace(policy, paths=dataclasses.replace(policy.paths, **paths))


def manager(root: Path, parent: Any = None, **config: Any) -> HardenedContentsManager:
    cfg = Config()
    for key, value in config.items():
        setattr(cfg.ContentsManager, key, value)
    if parent is not None:
        parent.config = cfg
        return HardenedContentsManager(parent=parent, root_dir=str(root))
    return HardenedContentsManager(config=cfg, root_dir=str(root))


def test_without_a_hardened_parent_the_shipped_default_applies(tmp_path: Path) -> None:
    cm = manager(tmp_path)
    assert cm.allow_hidden is False
    assert ".ssh/**" in cm.path_policy.deny
    assert cm.files_handler_class is HardenedFileHandler


def test_the_policy_not_the_trait_decides_hidden_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        cm = manager(tmp_path, allow_hidden=True)
    assert cm.allow_hidden is False
    assert "ContentsManager.allow_hidden=True ignored" in caplog.text
    opened = manager(tmp_path, FakeApp(allow_hidden=True))
    assert opened.allow_hidden is True
    assert opened.path_policy.allow_hidden is True


def test_allow_globs_switch_off_stock_name_checks(tmp_path: Path) -> None:
    """Stock's name-based checks would refuse ``.config/app/x`` even though the policy's
    ``paths.allow`` lets it through; the policy still refuses every other hidden path."""
    cm = manager(tmp_path, FakeApp(allow=(".config/app/**",)))
    assert cm.allow_hidden is True
    root = str(tmp_path)
    assert cm.path_policy.decide(".config/app/x", PathOp.READ, root=root).allowed
    assert not cm.path_policy.decide(".config/other", PathOp.READ, root=root).allowed


def test_existence_oracles_and_is_hidden(tmp_path: Path) -> None:
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden/nb.ipynb").write_text("{}")
    (tmp_path / "ok.txt").write_text("ok")
    cm = manager(tmp_path)

    async def run() -> None:
        assert await cm.file_exists("ok.txt")
        assert not await cm.file_exists(".hidden/nb.ipynb")
        assert not await cm.dir_exists(".hidden")
        assert not cm.exists(".hidden")
        assert await cm.is_hidden(".hidden") is False  # the operations decide, with a 404
        assert cm.resolve_path(".hidden/nb.ipynb") is None
        assert cm.resolve_path("ok.txt") == "ok.txt"
        assert await cm.get_kernel_path(".hidden/nb.ipynb") == ""
        with pytest.raises(web.HTTPError) as info:
            await cm.get(".hidden/nb.ipynb")
        assert info.value.status_code == 404
        assert info.value.log_message == MISSING_MESSAGE % ".hidden/nb.ipynb"
        with pytest.raises(web.HTTPError) as missing:
            await cm.get("nothere.ipynb")
        assert missing.value.log_message == MISSING_MESSAGE % "nothere.ipynb"

    asyncio.run(run())


def test_existence_probe_of_a_refused_name_is_recorded_only_if_it_exists(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # jupytext probes .jupytext.toml (and five more refused names) in every folder on every
    # request: a refused name that is not there is no attempt on anything, so no denial.
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/.secret").write_text("x")
    cm = manager(tmp_path)

    async def run() -> None:
        assert not await cm.file_exists("sub/.jupytext.toml")
        assert not await cm.dir_exists("sub/.jupytext")
        assert not cm.exists(".jupytext.py")
        assert not caplog.records, [r.getMessage() for r in caplog.records]
        assert not await cm.file_exists("sub/.secret")  # refused and there: recorded
        assert not await cm.file_exists("../outside")  # cannot be placed in the root: recorded

    with caplog.at_level(logging.WARNING, logger="hardened_server.decisions"):
        asyncio.run(run())
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "path=sub/.secret" in messages[0]


def test_a_folder_copied_into_a_folder_that_does_not_exist_creates_it(tmp_path: Path) -> None:
    """As stock (jupyter_server's test_copy_dir): ``POST /api/contents/new`` with
    ``{"copy_from": "src"}`` makes ``new/src``; the folder it creates is decided like any
    create, so a refused one (hidden) is a 404 and nothing is made."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.txt").write_text("a")
    cm = manager(tmp_path)

    async def run() -> None:
        model = await cm.copy("src", "new")
        assert model["path"] == "new/src"
        assert model["type"] == "directory"
        assert (tmp_path / "new/src/a.txt").read_text() == "a"
        with pytest.raises(web.HTTPError) as info:
            await cm.copy("src", ".hidden")
        assert info.value.status_code == 404
        (tmp_path / "file").write_text("x")
        with pytest.raises(web.HTTPError) as under_a_file:
            await cm.copy("src", "file/new")
        assert under_a_file.value.status_code == 404

    asyncio.run(run())
    assert not (tmp_path / ".hidden").exists()


def test_os_path_mapping_refuses_what_may_not_be_read(tmp_path: Path) -> None:
    """``_get_os_path`` is what extensions (and nbconvert) use to reach the file."""
    (tmp_path / "link").symlink_to(tmp_path.parent)
    cm = manager(tmp_path)
    for path in (".ssh/id_rsa", "link/x", "a\x00b", "../x"):
        with pytest.raises(web.HTTPError) as info:
            cm._get_os_path(path)
        assert info.value.status_code == 404
    assert cm._get_os_path("ok.txt") == str(tmp_path / "ok.txt")


def test_missing_message_escapes_only_what_the_policy_refuses_anyway() -> None:
    assert display_path("/a/b.txt") == "a/b.txt"
    assert display_path("caf\u00e9 %2e.txt") == "caf\u00e9 %2e.txt"  # allowed names: as stock
    assert display_path("a\x00b\r\nc\u202e") == "a\\x00b\\x0d\\x0ac\\u202e"
    assert not_found("x").status_code == 404


def test_denial_record_is_one_escaped_line(caplog: pytest.LogCaptureFixture) -> None:
    decision = PathPolicy().decide("a\nb", PathOp.READ, root="/srv")
    with caplog.at_level(logging.WARNING, logger="hardened_server.decisions"):
        record_path_denial(decision, PathOp.READ, "/a\nb")
    (record,) = caplog.records
    line = record.getMessage()
    assert "\n" not in line
    assert line.startswith("policy denial rule=HS-PATH-005 class=contents op=read path=a\\nb ")


# -- the static-file guard -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        AuthenticatedFileHandler,
        FileFindHandler,
        KernelSpecResourceHandler,
        APISpecHandler,
        FilesHandler,
        web.StaticFileHandler,
    ],
)
def test_every_static_file_handler_gets_the_guard(cls: type) -> None:
    assert path_guard_mixins(cls) == (PathGuardMixin,)
    mixin = HardenedJupyterMixin if issubclass(cls, JupyterHandler) else HardenedPlainMixin
    wrapped = type(cls.__name__, (mixin, *path_guard_mixins(cls), cls), {})
    assert issubclass(wrapped, cls)
    assert wrapped.validate_absolute_path is PathGuardMixin.validate_absolute_path


@pytest.mark.parametrize("cls", [HardenedFileHandler, APIHandler, JupyterHandler])
def test_no_guard_twice_and_none_where_no_file_is_served(cls: type) -> None:
    assert path_guard_mixins(cls) == ()
    type(cls.__name__, (HardenedJupyterMixin, *path_guard_mixins(cls), cls), {})  # a valid MRO


@pytest.mark.parametrize(
    ("name", "content_type", "inert_text", "attachment"),
    [
        ("a.html", "text/html", True, False),
        ("a.js", "text/javascript", True, False),
        ("a.mjs", "application/octet-stream", True, False),
        ("a.xhtml", "application/xhtml+xml", True, False),
        ("feed", "application/atom+xml", True, False),
        ("a.svg", "image/svg+xml", False, True),
        ("a.png", "image/png", False, False),
        ("a.css", "text/css", False, False),
        ("a.txt", "text/plain", False, False),
    ],
)
def test_active_content_classification(
    name: str, content_type: str, inert_text: bool, attachment: bool
) -> None:
    assert is_script_or_document(name, content_type) is inert_text
    assert is_attachment_only(name, content_type) is attachment
