"""A real Node client: @jupyterlab/services (the library JupyterLab's front-end talks to the
server with) and ws from the npm registry, installed by tools/jlservices/setup.sh at the versions
its package-lock.json pins; tools/jlservices/run-code.mjs starts a kernel and runs
``print(6 * 7)`` over its websocket (issues #16, #18).

* Default policy: with ``Authorization: token ...`` on the handshake the client runs code; with
  the library's Node default (the token in the websocket URL) the handshake is refused and the
  403 body names the header.
* ``tokens.websocket_url_tokens = "stored-scoped"``: a stored, scoped token in the URL works.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.live import Live, Spec, launched

pytestmark = pytest.mark.e2e

TOOL = REPO / "tools" / "jlservices"


@pytest.fixture(scope="module")
def node() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed (scripts/install-system-deps.sh installs them)")
    subprocess.run(["bash", str(TOOL / "setup.sh")], check=True, capture_output=True)
    return TOOL / "run-code.mjs"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, Live]]:
    strict = Spec(policy="[tokens]\n")
    opt_in = Spec(policy='[tokens]\nwebsocket_url_tokens = "stored-scoped"\n')
    with launched(tmp_path_factory, strict, opt_in, name="jls") as started:
        yield started[0], started[1]


def stored_token(live: Live) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hardened_server", "token", "create", "--name", "node",
         "--scope", "kernels:read", "--scope", "kernels:execute"],
        env=live.server.env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run(node: Path, live: Live, token: str, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(node), f"http://{live.host}/", token, mode],
        cwd=TOOL, capture_output=True, text=True, timeout=90, check=False,
    )


def test_node_client_runs_code_with_the_header(node: Path, servers: tuple[Live, Live]) -> None:
    strict, _ = servers
    done = run(node, strict, stored_token(strict), "header")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_node_client_url_token_is_refused_naming_the_header(
    node: Path, servers: tuple[Live, Live]
) -> None:
    strict, _ = servers
    done = run(node, strict, stored_token(strict), "url")
    assert done.returncode == 1, done.stdout
    assert "403" in done.stderr, done.stderr
    assert "Authorization: token" in done.stderr, done.stderr


def test_node_client_url_token_works_with_the_opt_in(
    node: Path, servers: tuple[Live, Live]
) -> None:
    _, opt_in = servers
    done = run(node, opt_in, stored_token(opt_in), "url")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
