"""PathGuardMixin judges a file against the directories a handler really serves from.

Voila's ``TemplateStaticFileHandler`` gives tornado a placeholder root
(``/fake-root/voila-template-system/``) and finds files in ``self.roots``; judged against the
placeholder alone, every Voila template asset was refused with a bare 404 and no record
(issue #16). The handlers below have the same shape, so the test needs no Voila.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jupyter_server.base.handlers import FileFindHandler
from tornado import web

from hardened_server.enforcement import files
from hardened_server.enforcement.files import PathGuardMixin, _below
from hardened_server.policy.decisions import Decision
from hardened_server.policy.paths import is_within
from hardened_server.policy.rules import Rule

FAKE_ROOT = "/fake-root/voila-template-system/"


class _TemplateStatic(PathGuardMixin, web.StaticFileHandler):
    """Voila's shape: a placeholder root, the real directories in ``roots``."""


class _App:
    settings: dict[str, Any] = {}


def _handler(roots: list[str], path: str) -> tuple[_TemplateStatic, list[Decision]]:
    handler = object.__new__(_TemplateStatic)
    denied: list[Decision] = []
    handler.application = _App()  # type: ignore[assignment]
    handler.request = None  # type: ignore[assignment]
    handler.path = path
    handler.roots = roots  # type: ignore[attr-defined]
    handler._hs_deny = denied.append  # type: ignore[attr-defined]
    return handler, denied


def test_a_file_in_one_of_the_handlers_own_roots_is_served(tmp_path: Path) -> None:
    static = tmp_path / "lab" / "static"
    static.mkdir(parents=True)
    (static / "voila-style.js").write_text("//")
    handler, denied = _handler([str(tmp_path / "base" / "static"), str(static)],
                               "lab/static/voila-style.js")
    handler._pg_guard(FAKE_ROOT, str(static / "voila-style.js"))
    assert denied == []


def test_a_file_outside_every_root_is_refused_with_a_record(tmp_path: Path) -> None:
    static = tmp_path / "lab" / "static"
    static.mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    handler, denied = _handler([str(static)], "lab/static/../../secret.txt")
    with pytest.raises(web.HTTPError) as err:
        handler._pg_guard(FAKE_ROOT, str(outside))
    assert err.value.status_code == 404  # what a missing file gets
    assert [d.rule_id for d in denied] == [Rule.PATH_ESCAPES_ROOT]


def test_the_requested_path_is_still_decided_in_a_handlers_own_root(tmp_path: Path) -> None:
    static = tmp_path / "lab" / "static"
    static.mkdir(parents=True)
    (static / ".env").write_text("SECRET=1")
    handler, denied = _handler([str(static)], "lab/static/.env")
    with pytest.raises(web.HTTPError):
        handler._pg_guard(FAKE_ROOT, str(static / ".env"))
    assert denied
    assert not denied[0].allowed


@pytest.mark.parametrize(
    "url_path", ["lab/static/../../../../etc/passwd", "../../../etc/static/passwd", "lab/\x00x"]
)
def test_a_url_path_that_leaves_its_root_is_refused_before_the_handler_parses_it(
    url_path: str,
) -> None:
    """Voila's handler asserts on the parts of the URL path: '..' reached it as a 500."""
    handler, denied = _handler([], url_path)
    with pytest.raises(web.HTTPError) as err:
        handler.parse_url_path(url_path)
    assert err.value.status_code == 404
    assert denied
    assert not denied[0].allowed


class _FileFind(PathGuardMixin, FileFindHandler):
    """What wrap_handler makes of jupyter_server's FileFindHandler (``/static/lab/``,
    ``/static/notebook/``, extension static paths)."""


def _serve(roots: list[Path], path: str) -> tuple[str | None, list[Decision]]:
    """The file a FileFindHandler over ``roots`` would open for ``path``: tornado's own two
    steps (StaticFileHandler.get), as the request would run them."""
    handler = object.__new__(_FileFind)
    denied: list[Decision] = []
    handler.application = _App()  # type: ignore[assignment]
    handler.request = None  # type: ignore[assignment]
    handler.root = tuple(str(r) for r in roots)
    handler.default_filename = None
    handler.path = path
    handler._hs_deny = denied.append  # type: ignore[attr-defined]
    try:
        found = handler.get_absolute_path(handler.root, path)
        return handler.validate_absolute_path(handler.root, found), denied
    except web.HTTPError as err:
        if err.status_code != 404:  # a refusal is exactly what a missing file gets
            raise
        return None, denied


def test_a_name_two_front_ends_ship_is_served_from_each_ones_own_roots(tmp_path: Path) -> None:
    """FileFindHandler caches a found file by URL path alone, for every subclass at once
    (``_static_paths``): Lab's and Notebook 7's fonts share content-hashed names, and whichever
    front-end asked second was handed the other's file, then refused (HS-PATH-004), 404."""
    name = f"{uuid.uuid4().hex}.woff2"  # the cache is process-wide: a name no other test asks
    lab, notebook = tmp_path / "lab" / "static", tmp_path / "notebook" / "static"
    for static in (lab, notebook):
        static.mkdir(parents=True)
        (static / name).write_bytes(b"font")
    first, first_denied = _serve([lab], name)
    second, second_denied = _serve([notebook], name)
    again, again_denied = _serve([notebook], name)
    assert (first, first_denied) == (str(lab / name), [])
    assert (second, second_denied) == (str(notebook / name), [])
    assert (again, again_denied) == (str(notebook / name), [])


def test_a_name_only_another_handler_has_is_still_refused(tmp_path: Path) -> None:
    """The cache's answer from another handler's roots is not served when this handler's
    roots do not hold the file: a 404 with the HS-PATH-004 record, as before."""
    name = f"{uuid.uuid4().hex}.js"
    lab, notebook = tmp_path / "lab" / "static", tmp_path / "notebook" / "static"
    lab.mkdir(parents=True)
    notebook.mkdir(parents=True)
    (lab / name).write_text("//")
    assert _serve([lab], name) == (str(lab / name), [])
    served, denied = _serve([notebook], name)
    assert served is None
    assert [d.rule_id for d in denied] == [Rule.PATH_ESCAPES_ROOT]


_component = st.sampled_from(["a", "b c", ".d", "..", ".", "", "é", "x.y", "root", "rootx"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_component, max_size=4), st.lists(_component, max_size=5))
def test_the_located_path_is_relpaths_answer(root_parts: list[str], rest: list[str]) -> None:
    """The guard's path below the root (``_below``) is ``os.path.relpath``'s answer, with ``/``
    separators and ``""`` for the root, for every path within the root (issue #22: relpath
    was a fifth of the guard's own time)."""
    base = os.path.abspath(os.path.join("/", *root_parts))
    target = os.path.join(base, *rest)
    assume(is_within(base, os.path.abspath(target)))
    expected = os.path.relpath(target, base).replace(os.sep, "/")
    assert _below(base, target) == ("" if expected == "." else expected)


def test_the_guard_locates_a_file_without_relpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_text("//")
    monkeypatch.setattr(files.os.path, "relpath", lambda *a: pytest.fail("relpath called"))
    handler, denied = _handler([str(static)], "app.js")
    handler._pg_guard(str(static), str(static / "app.js"))
    assert denied == []
