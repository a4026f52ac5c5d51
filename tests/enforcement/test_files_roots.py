"""PathGuardMixin judges a file against the directories a handler really serves from.

Voila's ``TemplateStaticFileHandler`` gives tornado a placeholder root
(``/fake-root/voila-template-system/``) and finds files in ``self.roots``; judged against the
placeholder alone, every Voila template asset was refused with a bare 404 and no record
(issue #16). The handlers below have the same shape, so the test needs no Voila.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tornado import web

from hardened_server.enforcement.files import PathGuardMixin
from hardened_server.policy.decisions import Decision
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
