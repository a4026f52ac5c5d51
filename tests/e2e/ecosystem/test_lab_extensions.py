"""Issue #16: the extensions of the README's "Extensions people install" table that no other test
drives, on the shared ecosystem server (shipped default policy, no flag):

* jupyter-lsp with python-lsp-server: ``/lsp/status`` lists pylsp and its websocket answers an
  LSP ``initialize`` (the route map and ``routes.accept_undecorated`` carry it);
* jupyter-server-fileid: its ``@authorized`` claim maps it (no profile): the owner gets a file's
  id and back its path, a token without ``contents:read`` is refused;
* jupyterlab-execute-time: JupyterLab's page lists it, and its code and settings are served.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.ioloop import IOLoop
from tornado.websocket import websocket_connect

from hardened_server.enforcement.identity.tokenstore import STORE_FILENAME, TokenStore
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _get(server: ServerProcess, path: str, token: str | None = None) -> requests.Response:
    token = server.token if token is None else token
    return requests.get(server.url + path, headers={"Authorization": f"token {token}"},
                        timeout=60)  # fmt: skip


def _lsp_initialize(server: ServerProcess, root: Path) -> dict[str, Any]:
    """Open ``/lsp/ws/pylsp`` with the owner's token in the header, send ``initialize``, and
    return the answer to it (pylsp also sends notifications first, skipped)."""

    async def run() -> dict[str, Any]:
        request = HTTPRequest(
            server.url.replace("http://", "ws://") + "/lsp/ws/pylsp",
            headers={"Authorization": f"token {server.token}"},
            connect_timeout=30,
        )
        ws = await websocket_connect(request)
        try:
            ws.write_message(json.dumps({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"processId": None, "rootUri": root.as_uri(), "capabilities": {}},
            }))  # fmt: skip
            while True:
                message = await ws.read_message()
                assert message is not None, "the language server closed the socket"
                reply = json.loads(message)
                if reply.get("id") == 1:
                    return dict(reply)
        finally:
            ws.close()

    return IOLoop.current().run_sync(run, timeout=120)


def test_jupyter_lsp_lists_pylsp_and_answers_initialize(eco_server: ServerProcess) -> None:
    status = _get(eco_server, "/lsp/status")
    assert status.status_code == 200, status.text
    assert "pylsp" in status.json()["sessions"], status.text
    reply = _lsp_initialize(eco_server, eco_server.root)
    assert "capabilities" in reply["result"], reply


def test_fileid_answers_the_owner_from_its_own_claim_and_refuses_without_contents_read(
    eco_server: ServerProcess,
) -> None:
    # fileid indexes a file when a client asks for its id through its manager: collaboration's
    # document session does, as JupyterLab opens a file
    (eco_server.root / "fileid.txt").write_text("x")
    session = requests.put(
        eco_server.url + "/api/collaboration/session/fileid.txt", headers=eco_server.auth(),
        json={"format": "text", "type": "file"}, timeout=60,
    )  # fmt: skip
    assert session.status_code == 201, session.text
    found = _get(eco_server, "/api/fileid/id?path=fileid.txt")
    assert found.status_code == 200, found.text
    file_id = found.json()["id"]
    assert file_id == session.json()["fileId"]
    back = _get(eco_server, f"/api/fileid/path?id={file_id}")
    assert back.status_code == 200, back.text
    assert back.json()["path"] == "fileid.txt"
    store = TokenStore(Path(eco_server.env["JUPYTER_RUNTIME_DIR"]) / STORE_FILENAME)
    metrics_only = store.create("fileid-metrics", ("metrics:read",), 3600)[0]
    refused = _get(eco_server, "/api/fileid/id?path=fileid.txt", metrics_only)
    assert refused.status_code == 403
    assert "HS-SCOPE-001" in refused.text
    assert "contents:read" in refused.text


def test_execute_time_is_listed_by_lab_and_its_code_and_settings_are_served(
    eco_server: ServerProcess,
) -> None:
    page = _get(eco_server, "/lab")
    assert page.status_code == 200
    config = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
        page.text, re.S,
    )  # fmt: skip
    assert config is not None, page.text[:2000]
    extensions = {e["name"]: e for e in json.loads(config.group(1))["federated_extensions"]}
    entry = extensions["jupyterlab-execute-time"]
    code = _get(eco_server, f"/lab/extensions/jupyterlab-execute-time/{entry['load']}")
    assert code.status_code == 200, code.text[:500]
    assert "javascript" in code.headers["Content-Type"]
    settings = _get(eco_server, "/lab/api/settings/jupyterlab-execute-time:settings")
    assert settings.status_code == 200, settings.text
    assert settings.json()["schema"]["properties"], settings.text
