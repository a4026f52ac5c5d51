"""The live-marker rule (``tests/support/marker_rule.py``): a test that starts a server without
the ``live`` or ``e2e`` marker fails, whichever way it starts it; marked tests and commands that
start no server are left alone.

The rule is run for real in an inner pytest session (pytester) that loads this suite's
``tests/conftest.py``; no server is started there: the rule refuses before the process exists,
and the one permitted command is ``python -c pass``.
"""

from __future__ import annotations

import sys

import pytest

from tests.conftest import REPO
from tests.support.marker_rule import starts_server

pytest_plugins = ["pytester"]

INNER_TESTS = '''
import subprocess
import sys

import pytest

from tests.support.server import ServerProcess


def test_launcher_unmarked(tmp_path):
    ServerProcess(tmp_path).start()


def test_subprocess_unmarked():
    subprocess.run([sys.executable, "-m", "hardened_server", "serve"], check=False, timeout=5)


def test_stock_subprocess_unmarked_even_if_swallowed():
    try:
        subprocess.Popen([sys.executable, "-m", "jupyter_server"])
    except Exception:
        pass


def test_serverapp_start_unmarked():
    from jupyter_server.serverapp import ServerApp

    ServerApp().start()


@pytest.mark.live
def test_marked_may_start():
    subprocess.run([sys.executable, "-c", "pass", "jupyter_server"], check=True, timeout=60)


def test_other_commands_are_fine():
    subprocess.run([sys.executable, "-c", "pass", "hardened_server", "policy"], check=True,
                   timeout=60)
'''


def test_unmarked_server_starts_fail_and_marked_ones_pass(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makeini(
        "[pytest]\nmarkers =\n    live: real server\n    e2e: real parts\n"
        "addopts = -p no:cacheprovider\n"
    )
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]\n')
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", timeout=240)
    result.assert_outcomes(passed=2, failed=4)
    out = result.stdout.str()
    for name in (
        "launcher_unmarked",
        "subprocess_unmarked",
        "stock_subprocess_unmarked_even_if_swallowed",
        "serverapp_start_unmarked",
    ):
        assert f"FAILED test_inner.py::test_{name}" in out
    assert out.count("without the `live` or `e2e` marker") >= 4


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "hardened_server", "serve", "--port=1"],
        ["/venv/bin/hardened-server", "singleuser"],
        [sys.executable, "-m", "jupyter_server"],
        ["jupyter", "server", "--no-browser"],
        ["jupyterhub", "-f", "config.py"],
    ],
)
def test_server_commands_are_recognised(argv: list[str]) -> None:
    assert starts_server(argv)


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "hardened_server", "policy", "explain"],
        ["hardened-server", "token", "create"],
        [sys.executable, "-m", "hardened_server.audit.cli", "--url", "http://127.0.0.1:9"],
        [sys.executable, "-c", "print('serve')"],
        ["bash", "setup.sh"],
    ],
)
def test_other_commands_are_not(argv: list[str]) -> None:
    assert not starts_server(argv)
