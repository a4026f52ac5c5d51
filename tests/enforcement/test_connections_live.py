"""Identity changes reach open websockets (issue #18), through real websockets on a real server.

Before: an open kernel websocket kept executing code after ``POST /logout``, after "log out
everywhere", after ``hardened-server token revoke`` / ``rotate``, and an
``/api/events/subscribe`` socket kept streaming: auth and scopes ran at the handshake only.
Now every wrapped websocket is registered and re-checked (enforcement/connections.py): each of
those closes it with 1008 and a rule id within a second, and leaves an audit record.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from tests.support.live import Live, Spec, launched

pytestmark = pytest.mark.live

#: What the issue asks: the close arrives within a second of the change.
WITHIN = 1.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # The owner also reads the audit stream (audit:read, which admin does not imply).
    policy = '[tokens]\nowner_scopes = ["admin", "audit:read"]\n'
    with launched(tmp_path_factory, Spec(policy=policy), name="conn") as started:
        yield started[0]


def cli(live: Live, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hardened_server", "token", *args],
        env=live.server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def create_token(live: Live, *scopes: str) -> tuple[str, str]:
    args = ["create", "--name", f"t{uuid.uuid4().hex[:6]}"]
    for scope in scopes:
        args += ["--scope", scope]
    secret = cli(live, *args)
    return secret, secret.split("_")[1]


def ws_url(live: Live, rel: str) -> str:
    return f"ws://{live.host}{live.url(rel)}"


def open_ws(live: Live, rel: str, *, cookie: str | None = None, token: str | None = None) -> Any:
    headers = []
    if token is not None:
        headers.append(f"Authorization: token {token}")
    ws = websocket.create_connection(
        ws_url(live, rel), header=headers, cookie=cookie, origin=live.origin, timeout=10
    )
    return ws


def start_kernel(live: Live) -> str:
    reply = live.api("POST", "/api/kernels", {"name": "python3"})
    assert reply.status == 201, reply
    return str(reply.json()["id"])


def execute(ws: Any, code: str, timeout: float = 30) -> str:
    """Run ``code`` over the kernel websocket (JSON protocol); the text it printed."""
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False},
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    out, replied, idle = "", False, False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out += msg["content"]["text"]
        replied = replied or msg["msg_type"] == "execute_reply"
        idle = idle or (
            msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
        )
        if replied and idle:  # the reply (shell) and the output (iopub) are both in
            return out
    raise AssertionError("no execute_reply")


def wait_closed(ws: Any, within: float = WITHIN + 1.5) -> tuple[int, str, float]:
    """Read until the server's close frame: (code, reason, seconds waited)."""
    start = time.monotonic()
    ws.settimeout(within)
    while True:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            raise AssertionError(f"still open {within}s after the change") from None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 0
            return code, data[2:].decode("utf-8", "replace"), time.monotonic() - start


def still_open(ws: Any, quiet: float = 0.8) -> bool:
    """No close frame arrives within ``quiet`` seconds (other frames are read and dropped)."""
    ws.settimeout(quiet)
    deadline = time.monotonic() + quiet
    while time.monotonic() < deadline:
        try:
            opcode, _ = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return True
        except websocket.WebSocketConnectionClosedException:
            return False
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return False
    return True


def records(live: Live) -> list[dict[str, Any]]:
    out = []
    for path in (live.workdir / "jupyter" / "runtime").glob("hardened-server-audit-*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line).get("event") or {})
    return out


def wait_record(live: Live, rule_id: str, path_part: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in records(live):
            if rec.get("rule_id") == rule_id and path_part in (rec.get("path") or ""):
                return rec
        time.sleep(0.1)
    raise AssertionError(f"no {rule_id} record for {path_part}")


def test_logout_closes_this_sessions_kernel_and_events_sockets_only(live: Live) -> None:
    kernel = start_kernel(live)
    mine, other = live.login_cookie(), live.login_cookie()
    kernel_ws = open_ws(live, f"/api/kernels/{kernel}/channels", cookie=mine)
    events_ws = open_ws(live, "/api/events/subscribe", cookie=mine)
    others_ws = open_ws(live, f"/api/kernels/{kernel}/channels", cookie=other)
    assert execute(kernel_ws, "print(6 * 7)").strip() == "42"

    assert live.logout(mine).status == 200
    code, reason, waited = wait_closed(kernel_ws)
    assert (code, reason[:9]) == (1008, "HS-ID-023"), reason
    assert waited < WITHIN
    code, reason, _ = wait_closed(events_ws)
    assert (code, reason[:9]) == (1008, "HS-ID-023")
    # Another browser's session is not touched.
    assert still_open(others_ws)
    assert execute(others_ws, "print('still here')").strip() == "still here"
    rec = wait_record(live, "HS-ID-023", f"/api/kernels/{kernel}/channels")
    assert rec["decision"] == "deny"
    assert rec["scheme"] == "ws"
    others_ws.close()


def test_log_out_everywhere_closes_every_session_socket(live: Live) -> None:
    kernel = start_kernel(live)
    sockets = [
        open_ws(live, f"/api/kernels/{kernel}/channels", cookie=live.login_cookie())
        for _ in range(2)
    ]
    # A header-token socket is not a session's: log out everywhere leaves it open.
    header_ws = open_ws(live, "/api/events/subscribe", token=live.token)
    reply = live.req(
        "POST",
        "/logout",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body="everywhere=1",
        auth=True,
    )
    assert reply.status == 200, reply
    for ws in sockets:
        code, reason, waited = wait_closed(ws)
        assert (code, reason[:9]) == (1008, "HS-ID-023")
        assert waited < WITHIN
    assert still_open(header_ws)
    header_ws.close()


def test_token_revoke_closes_its_sockets_within_a_second(live: Live) -> None:
    kernel = start_kernel(live)
    secret, token_id = create_token(live, "kernels:read", "kernels:execute", "events:read")
    kept, _ = create_token(live, "events:read")
    kernel_ws = open_ws(live, f"/api/kernels/{kernel}/channels", token=secret)
    events_ws = open_ws(live, "/api/events/subscribe", token=secret)
    kept_ws = open_ws(live, "/api/events/subscribe", token=kept)
    assert execute(kernel_ws, "print('before')").strip() == "before"

    cli(live, "revoke", token_id)
    code, reason, waited = wait_closed(kernel_ws)
    assert (code, reason[:9]) == (1008, "HS-ID-033"), reason
    assert waited < WITHIN
    assert wait_closed(events_ws)[0] == 1008
    assert still_open(kept_ws)
    wait_record(live, "HS-ID-033", "/api/events/subscribe")
    kept_ws.close()


def test_token_rotate_closes_sockets_of_the_old_secret(live: Live) -> None:
    kernel = start_kernel(live)
    secret, token_id = create_token(live, "kernels:read", "kernels:execute")
    kernel_ws = open_ws(live, f"/api/kernels/{kernel}/channels", token=secret)
    assert execute(kernel_ws, "print(1)").strip() == "1"
    new_secret = cli(live, "rotate", token_id)
    code, reason, waited = wait_closed(kernel_ws)
    assert (code, reason[:9]) == (1008, "HS-ID-033"), reason
    assert waited < WITHIN
    fresh = open_ws(live, f"/api/kernels/{kernel}/channels", token=new_secret)
    assert execute(fresh, "print(2)").strip() == "2"
    fresh.close()


def _reload(live: Live, policy: str) -> None:
    path = Path(live.workdir) / "policy.toml"
    path.write_text(policy)
    assert live.server.proc is not None
    os.kill(live.server.proc.pid, signal.SIGHUP)
    live.wait_log("policy reloaded (SIGHUP)")


def test_reload_that_takes_the_scopes_away_closes_the_socket(live: Live) -> None:
    """Last in the module: it lowers the owner's scopes. A session opened with ``admin``
    keeps its events socket while ``events:read`` is granted (but, without ``audit:read``, no
    longer receives audit events), and loses its kernel socket the moment the policy stops
    granting kernels."""
    kernel = start_kernel(live)
    cookie = live.login_cookie()
    kernel_ws = open_ws(live, f"/api/kernels/{kernel}/channels", cookie=cookie)
    events_ws = open_ws(live, "/api/events/subscribe", cookie=cookie)
    # With audit:read, a denial's audit event reaches the subscriber.
    assert server_events_after_a_denial(live, events_ws)
    _reload(live, '[tokens]\nowner_scopes = ["events:read", "contents:read"]\n')
    code, reason, _ = wait_closed(kernel_ws, within=WITHIN + 3)
    assert (code, reason[:12]) == (1008, "HS-SCOPE-005"), reason
    assert still_open(events_ws)
    # Without it, none does: decided per event.
    assert not server_events_after_a_denial(live, events_ws)
    events_ws.close()
    wait_record(live, "HS-SCOPE-005", f"/api/kernels/{kernel}/channels")


def server_events_after_a_denial(live: Live, ws: Any) -> list[str]:
    """Provoke one denial (a wrong token) and collect the server-schema events the
    subscriber receives within a second."""
    assert live.req("GET", "/api/status", headers={"Authorization": "token nope"}).status == 403
    ws.settimeout(1.0)
    seen: list[str] = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            frame = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            break
        schema = str(frame.get("schema_id") or frame.get("__schema__") or "")
        if "hardened-server" in schema:
            seen.append(schema)
    return seen
