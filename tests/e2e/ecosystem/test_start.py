"""Issue #16: the Jupyter people actually run (JupyterLab, Notebook 7, jupyter-collaboration,
jupyterlab-git with nbdime, jupyter-server-proxy, jupyter-resource-usage, jupytext, voila,
jupyter-lsp with python-lsp-server, ipywidgets, jupyterlab-execute-time) starts under the strict
default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.support.server import BareServer, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

#: "<name> | extension was successfully loaded." for each of these (jupyter_server's log line)
EXTENSIONS = (
    "jupyterlab", "notebook", "jupyter_server_ydoc", "jupyterlab_git", "nbdime",
    "jupyter_resource_usage", "jupyterlab_jupytext", "jupyter_lsp",
)


def loaded(log: str, name: str) -> bool:
    return f"{name} | extension was successfully loaded." in log


def test_serve_with_no_flags_starts_with_every_extension(tmp_path: Path, eco_python: Path) -> None:
    """`hardened-server serve` with no flag (only --allow-root when root, like `make serve`), a
    private HOME and Jupyter directories, starts and answers /api/status to the owner's token
    read from the one login banner."""
    server = BareServer(tmp_path, eco_python)
    try:
        server.start(timeout=180)
        response = requests.get(server.url + "/api/status", headers=server.auth(), timeout=10)
        assert response.status_code == 200
        assert "started" in response.json()
        log = server.log()
        assert "Traceback" not in log, log
        for name in (*EXTENSIONS, "jupyter_server_proxy", "voila.server_extension"):
            assert loaded(log, name), f"{name} did not load:\n{log}"
    finally:
        server.stop_quickly()


def test_ecosystem_server_starts_with_its_extensions_and_answers(
    eco_server: ServerProcess,
) -> None:
    """The shared ecosystem server (everything but the two extensions awaiting profiles) is up
    on the default policy, with the extensions loaded and jupytext's manager composed."""
    response = requests.get(eco_server.url + "/api/status", headers=eco_server.auth(), timeout=10)
    assert response.status_code == 200, response.text
    log = eco_server.log()
    startup = log.split("hardened-server is running", 1)[0]  # later: other tests' requests
    assert "Traceback" not in startup, startup
    for name in EXTENSIONS:
        assert loaded(log, name), f"{name} did not load:\n{log}"
    assert "contents manager replaced by a server extension" in log, log
    assert "HardenedContentsManager" in log
    # an anonymous client still gets nothing
    anonymous = requests.get(eco_server.url + "/api/contents", timeout=10)
    assert anonymous.status_code == 403, anonymous.text
    assert json.loads(anonymous.text)
