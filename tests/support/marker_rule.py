"""The live-marker rule: a test that starts a server must carry the ``live`` (or ``e2e``) marker.

``make test-fast`` (``-m "not live and not e2e"``) is the inner loop; a server start costs
seconds of CPU (a fresh interpreter importing jupyter_server), so an unmarked server quietly
makes the fast loop slow, and a test that needs a free port runs where it should not. The rule
fails such a test, whichever way it starts the server:

- through the launcher (:meth:`tests.support.server.ServerProcess.start` asks
  :func:`require_live_marker`);
- as a subprocess running ``hardened_server``/``hardened-server`` ``serve`` or ``singleuser``,
  ``jupyter_server``/``jupyter-server``/``jupyter server`` or ``jupyterhub``, seen by an audit
  hook on the ``subprocess.Popen`` event (PEP 578), so ``subprocess.run`` and ``Popen`` alike;
- in process, through ``jupyter_server.serverapp.ServerApp.start`` (wrapped by :func:`install`).

The test being run is tracked by ``tests/conftest.py`` (``pytest_runtest_protocol``); outside a
test (collection, another thread after the test ended) nothing is checked. A violation raises
:class:`UnmarkedServerStart` where the server would start and is also remembered, so a test
that swallows the exception still fails (``pytest_runtest_makereport`` in conftest).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest

MARKERS = ("live", "e2e")

_state = threading.local()
_current: list[pytest.Item | None] = [None]
_violations: dict[str, list[str]] = {}
_installed: list[bool] = [False]


class UnmarkedServerStart(RuntimeError):
    """A server was started by a test without the ``live`` or ``e2e`` marker."""


def set_current(item: pytest.Item | None) -> None:
    _current[0] = item


def violations(item: pytest.Item) -> list[str]:
    return _violations.pop(item.nodeid, [])


def require_live_marker(what: str) -> None:
    """Fail the running test if it has neither marker; a no-op outside a test."""
    item = _current[0]
    if item is None or any(item.get_closest_marker(m) is not None for m in MARKERS):
        return
    message = (
        f"{item.nodeid} starts a server ({what}) without the `live` or `e2e` marker: mark it "
        "(pytestmark = pytest.mark.live) so that `make test-fast` leaves it out"
    )
    _violations.setdefault(item.nodeid, []).append(message)
    raise UnmarkedServerStart(message)


def _words(args: Any) -> list[str]:
    if isinstance(args, (str, bytes, os.PathLike)):  # a shell command line, or one program
        return os.fsdecode(args).split()
    return [os.fsdecode(a) for a in args]


def starts_server(argv: Sequence[str]) -> bool:
    """Whether a command line starts a Jupyter server (ours, stock or a hub)."""
    names = [os.path.basename(w) for w in argv]
    for i, name in enumerate(names):
        following = names[i + 1 : i + 2]
        if name in ("hardened_server", "hardened-server") and following in (
            ["serve"], ["singleuser"]
        ):
            return True
        if name in ("jupyter_server", "jupyter-server", "jupyterhub", "jupyterhub-singleuser"):
            return True
        if name == "jupyter" and following == ["server"]:
            return True
    return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "subprocess.Popen" or _current[0] is None:
        return
    if getattr(_state, "busy", False):  # no re-entry from the check itself
        return
    _state.busy = True
    try:
        argv = _words(args[1]) if args[1] is not None else _words(args[0])
        if starts_server(argv):
            require_live_marker("subprocess: " + " ".join(argv[:6]))
    finally:
        _state.busy = False


def install() -> None:
    """Register the audit hook and wrap ``ServerApp.start`` (once per interpreter)."""
    if _installed[0]:
        return
    _installed[0] = True
    sys.addaudithook(_audit)
    from jupyter_server.serverapp import ServerApp

    original = ServerApp.start

    @functools.wraps(original)
    def start(self: ServerApp, *args: Any, **kwargs: Any) -> Any:
        require_live_marker(f"{type(self).__name__}.start")
        return original(self, *args, **kwargs)

    ServerApp.start = start  # type: ignore[method-assign]
