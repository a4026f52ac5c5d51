"""No token reaches the server's log, wherever a client puts it: the query string, nested inside
another parameter (``next=/lab%3Ftoken%3D...``), the Referer, a fragment sent in the request
target, cookies, the Authorization header. Against a real server logging at DEBUG (every request
line, every debug message), its stdout and stderr captured.

Two secrets: the server's own token (the scrubber knows it) and a token-shaped value the server
has never seen (only the structural rules can catch it). Each request carries a harmless marker
next to the secret, and the test checks the marker *is* in the log: a request that was never
logged would prove nothing.
"""

from __future__ import annotations

import secrets
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

FOREIGN = secrets.token_hex(24)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("scrub")
    started = ServerProcess(workdir, ["--ServerApp.log_level=DEBUG"]).start()
    yield started
    started.stop()


def _send(server: ServerProcess, head: str) -> None:
    """One raw request (nothing re-encoded by a client library), answer read and dropped."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head.encode("latin-1"))
        sock.settimeout(20)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk


def _request(target: str, *headers: str) -> str:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
    return "\r\n".join(lines) + "\r\n\r\n"


def _places(secret: str, marker: str) -> list[tuple[str, str]]:
    q = urllib.parse.quote
    return [
        ("query", _request(f"/api/contents/{marker}?token={secret}")),
        ("query-404", _request(f"/nowhere-{marker}?token={secret}&x=1")),
        ("nested-next", _request(f"/login?next=/lab%3Ftoken%3D{secret}&m={marker}")),
        ("double-nested", _request(f"/lab?next={q(q(f'/tree?token={secret}'))}&m={marker}")),
        (
            "referer",
            # a 4xx on an API route: jupyter_server logs the Referer with it
            _request(f"/api/contents/{marker}", f"Referer: http://127.0.0.1/lab?token={secret}"),
        ),
        ("fragment", _request(f"/lab/{marker}#token={secret}")),
        ("encoded-fragment", _request(f"/files/{marker}%23access_token%3D{secret}")),
        ("cookie", _request(f"/api/status/{marker}", f"Cookie: username-127-0-0-1={secret}")),
        ("xsrf-cookie", _request(f"/api/contents/{marker}", f"Cookie: _xsrf={secret}")),
        ("authorization", _request(f"/api/contents/{marker}", f"Authorization: token {secret}")),
        ("bearer", _request(f"/api/kernels/{marker}", f"Authorization: Bearer {secret}")),
        ("basic", _request(f"/api/sessions/{marker}", f"Authorization: Basic {secret}")),
    ]


@pytest.mark.parametrize("which", ["server token", "foreign token"])
def test_no_token_reaches_the_log_wherever_it_is_sent(server: ServerProcess, which: str) -> None:
    secret = server.token if which == "server token" else FOREIGN
    markers = []
    for i, (place, head) in enumerate(_places(secret, "MARKER")):
        marker = f"mk{i}{which[0]}"
        markers.append((place, marker))
        _send(server, head.replace("MARKER", marker))
    time.sleep(0.5)
    log = server.log()
    logged = [place for place, marker in markers if marker in log]
    # Most requests leave a line naming them (the marker); those that do not (a refused cookie
    # is logged without its path) still must not leak.
    assert len(logged) >= len(markers) // 2, log[-3000:]
    for form in {
        secret,
        urllib.parse.quote(secret),
        urllib.parse.quote(urllib.parse.quote(secret)),
    }:
        assert form not in log, f"{which} found in the server log"
