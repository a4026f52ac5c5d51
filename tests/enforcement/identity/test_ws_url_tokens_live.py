"""Websocket URL tokens (issues #16, #18) with a real client: PyPI's jupyter_kernel_client, which
puts the token in the websocket URL (``?token=``) and, given ``headers=``, sends those on the
handshake too.

* Default policy (``tokens.websocket_url_tokens = "never"``): with ``Authorization: token ...``
  the client runs code; a URL-only handshake is refused with a 403 that names the header.
* ``"stored-scoped"`` (one policy line, reloaded): a stored, scoped token opens the websocket
  from the URL and the client runs code without any header; the owner's start-up token never
  does, and revoking the stored token closes the socket (connections.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket
from jupyter_kernel_client import JupyterKernelClient

from tests.support.live import Live, Spec, launched

pytestmark = pytest.mark.live

OPT_IN = '[tokens]\nwebsocket_url_tokens = "stored-scoped"\n'


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with launched(tmp_path_factory, Spec(policy="[tokens]\n"), name="wsurl") as started:
        yield started[0]


def stored_token(live: Live, *scopes: str) -> str:
    args = [sys.executable, "-m", "hardened_server", "token", "create", "--name", "client"]
    for scope in scopes:
        args += ["--scope", scope]
    done = subprocess.run(
        args, env=live.server.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run_code(live: Live, token: str, *, header: bool) -> str:
    headers = {"Authorization": f"token {token}"} if header else {}
    kernel = JupyterKernelClient(server_url=f"http://{live.host}", token=token, headers=headers)
    kernel.start()
    try:
        reply = kernel.execute("print(6 * 7)")
        return "".join(o.get("text", "") for o in reply["outputs"])
    finally:
        kernel.stop()


def url_handshake(live: Live, token: str) -> websocket.WebSocket:
    reply = live.api("POST", "/api/kernels", {"name": "python3"})
    assert reply.status == 201, reply
    kernel = reply.json()["id"]
    return websocket.create_connection(
        f"ws://{live.host}/api/kernels/{kernel}/channels?token={token}",
        origin=live.origin,
        timeout=20,
    )


def test_default_policy_client_runs_code_with_the_header(live: Live) -> None:
    token = stored_token(live, "kernels:read", "kernels:execute")
    assert run_code(live, token, header=True).strip() == "42"


def test_default_policy_url_token_handshake_is_refused_naming_the_header(live: Live) -> None:
    token = stored_token(live, "kernels:read", "kernels:execute")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        url_handshake(live, token)
    assert refused.value.status_code == 403
    body = json.loads(refused.value.resp_body)
    assert "Authorization: token" in body["message"], body


def test_opt_in_lets_a_stored_token_open_the_websocket_from_the_url(live: Live) -> None:
    """Last in the module: it reloads the opt-in policy."""
    (Path(live.workdir) / "policy.toml").write_text(OPT_IN)
    assert live.server.proc is not None
    os.kill(live.server.proc.pid, signal.SIGHUP)
    live.wait_log("policy reloaded (SIGHUP)")

    token = stored_token(live, "kernels:read", "kernels:execute")
    assert run_code(live, token, header=False).strip() == "42"
    # Never the owner's start-up token.
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        url_handshake(live, live.token)
    assert refused.value.status_code == 403
    # Only on websocket handshakes: a plain API request with the stored token in its URL is
    # still refused.
    assert live.req("GET", f"/api/kernels?token={token}").status == 403
    # And the URL-opened socket follows the token's life: revoked, closed.
    ws = url_handshake(live, token)
    token_id = token.split("_")[1]
    subprocess.run(
        [sys.executable, "-m", "hardened_server", "token", "revoke", token_id],
        env=live.server.env, capture_output=True, text=True, timeout=60, check=True,
    )
    ws.settimeout(3)
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
    assert data[2:].decode().startswith("HS-ID-033"), data
