"""The request gate over real HTTP on 127.0.0.1: Host allow-list, trusted proxies, CORS,
cross-site requests and the session-bound XSRF token, websockets, redirects, size limits and the
rate limit. Every refusal is short (JSON on API paths) and leaves a decision record with its rule
id in the server log.

Two servers, one per module each:

* ``gated``: Host allow-list with ``jupyter.example.org``, CORS for
  ``https://trusted.example.com``, 127.0.0.1 as a trusted proxy (so tests can speak as a proxy;
  without forwarding headers the peer is the client), small limits so they are cheap to hit;
* ``untrusted``: ``trusted_proxies = ["10.0.0.0/8"]`` (127.0.0.1 is *not* trusted: forwarding
  headers from it are ignored and recorded) and ``base_url = /jp/``.

Raw sockets are used wherever a client library would normalise the request (``//`` paths,
oversized declarations, missing headers).
"""

from __future__ import annotations

import base64
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from tests.support.server import ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

TRUSTED = "https://trusted.example.com"
GATED_POLICY = """
[server]
public_hostnames = ["jupyter.example.org"]
trusted_proxies = ["127.0.0.1/32"]

[cors]
allow_origins = ["https://trusted.example.com"]

[limits]
max_body_bytes = 1048576
unauthenticated_burst = 30
unauthenticated_requests_per_minute = 60
websocket_max_message_bytes = 65536
websocket_ping_interval_seconds = 1
websocket_ping_timeout_seconds = 30
"""
UNTRUSTED_POLICY = """
[server]
trusted_proxies = ["10.0.0.0/8"]
"""
POLICY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options")


def _start(workdir: Path, policy: str, *args: str, base: str = "") -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "policy.toml").write_text(policy)
    server = ServerProcess(workdir, [f"--policy={workdir / 'policy.toml'}", *args])
    server.base = base  # type: ignore[attr-defined]
    server.url += base  # wait_ready polls <url>/api/status
    return server.start()


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = _start(tmp_path_factory.mktemp("gated"), GATED_POLICY)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = _start(
        tmp_path_factory.mktemp("untrusted"),
        UNTRUSTED_POLICY,
        "--ServerApp.base_url=/jp/",
        base="/jp",
    )
    yield server
    server.stop()


# -- helpers -----------------------------------------------------------------------------------


class Raw:
    """One HTTP/1.1 exchange over a plain socket: nothing normalised, nothing added."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, closed: bool) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.closed = closed  # the server closed the connection after answering


def raw(
    port: int, head: str, body: bytes = b"", timeout: float = 5.0, *, wait_close: bool = False
) -> Raw:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        closed = False
        if wait_close:
            try:
                sock.settimeout(1.0)
                closed = sock.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                closed = False
    return Raw(status, headers, rest, closed)


def _forwarded(client: str) -> str:
    return f"X-Forwarded-For: {client}\r\n"


def forwarded_for(client: str) -> dict[str, str]:
    """Speak as the trusted proxy (127.0.0.1 on ``gated``) for ``client``: its own rate-limit
    bucket, so tests that make anonymous requests do not spend each other's."""
    return {"X-Forwarded-For": client}


def wait_for_log(server: ServerProcess, *needles: str, timeout: float = 5.0) -> str:
    """The first decision-record line containing every needle."""
    deadline = time.monotonic() + timeout
    while True:
        for line in server.log().splitlines():
            if line.startswith("policy ") and all(n in line for n in needles):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no decision record with {needles}:\n{server.log()[-3000:]}")
        time.sleep(0.1)


def login(server: ServerProcess, **headers: str) -> requests.Session:
    """The URL-token navigation exchange, then the page that sets the ``_xsrf`` cookie."""
    base = server.base  # type: ignore[attr-defined]
    session = requests.Session()
    r = session.get(
        server.url + "/lab", params={"token": server.token}, headers=headers,
        allow_redirects=False, timeout=10,
    )
    assert r.status_code == 302, r.text
    assert any(c.name.startswith("username-") for c in session.cookies)
    r = session.get(server.url + "/lab", timeout=10)
    assert r.status_code == 200
    assert session.cookies.get("_xsrf"), f"no _xsrf cookie from {base}/lab"
    return session


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def assert_short_json_refusal(r: Any, status: int) -> None:
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"message", "reason"}
    assert len(body["message"]) < 40
    for name in POLICY_HEADERS:
        assert name in r.headers, name


def xsrf_headers(session: requests.Session, **more: str) -> dict[str, str]:
    return {"X-XSRFToken": session.cookies["_xsrf"], **more}


# -- 1. Host allow-list ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", "127.1"]
)
def test_foreign_host_is_refused_with_a_short_json_403_and_policy_headers(
    gated: ServerProcess, host: str
) -> None:
    """DNS rebinding: the page's own name resolves to us; its Host is not on the allow-list.
    A valid token changes nothing (HS-HOST-002)."""
    r = requests.get(
        gated.url + "/api/status",
        headers={"Host": host.format(port=gated.port), **gated.auth()},
        timeout=10,
    )
    assert_short_json_refusal(r, 403)
    assert "Access-Control-Allow-Origin" not in r.headers
    wait_for_log(gated, "rule=HS-HOST-002", "path=/api/status")


def test_malformed_host_never_reaches_the_application(gated: ServerProcess) -> None:
    """Userinfo in Host is refused by tornado itself (400) before the gate is asked."""
    r = requests.get(gated.url + "/api/status",
                     headers={"Host": f"localhost:{gated.port}@evil.example"}, timeout=10)
    assert r.status_code == 400


def test_foreign_host_is_refused_before_the_body_is_read(gated: ServerProcess) -> None:
    """The refusal comes from the application before routing: the declared body is never
    waited for (it is not sent at all here), and the page path gets a short text body."""
    started = time.monotonic()
    r = raw(
        gated.port,
        "POST /lab HTTP/1.1\r\nHost: rebind.evil.example\r\nContent-Length: 500000\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n\r\n",
    )
    assert time.monotonic() - started < 2
    assert r.status == 403
    assert r.headers["content-type"].startswith("text/plain")
    assert r.body == b"403 Forbidden\n"
    assert "content-security-policy" in r.headers


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}",
                                  "jupyter.example.org", "JUPYTER.example.org.:443"])
def test_loopback_names_and_public_hostnames_are_allowed(gated: ServerProcess, host: str) -> None:
    r = requests.get(
        gated.url + "/api/status",
        headers={"Host": host.format(port=gated.port), **gated.auth()},
        timeout=10,
    )
    assert r.status_code == 200, r.text


# -- 2. Trusted proxies ------------------------------------------------------------------------


def _login_cookie(r: requests.Response) -> str:
    cookies = [
        c
        for c in r.raw.headers.getlist("Set-Cookie")
        if c.startswith(("username-", "__Host-username-"))
    ]
    assert len(cookies) == 1, r.headers
    return cookies[0]


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-Proto": "https"},  # a TLS terminator that names no client
        {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
    ],
    ids=["proto-only", "proto-and-for"],
)
def test_trusted_proxy_https_makes_the_login_cookie_secure_and_turns_hsts_on(
    gated: ServerProcess, forwarded: dict[str, str]
) -> None:
    r = requests.get(
        gated.url + "/lab", params={"token": gated.token}, headers=forwarded,
        allow_redirects=False, timeout=10,
    )
    assert r.status_code == 302
    assert "Secure" in _login_cookie(r)
    assert _login_cookie(r).startswith("__Host-")  # https as the trusted proxy says
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_without_forwarding_headers_the_connection_scheme_stands(gated: ServerProcess) -> None:
    r = requests.get(
        gated.url + "/lab", params={"token": gated.token}, allow_redirects=False, timeout=10
    )
    assert "Secure" not in _login_cookie(r)
    assert "Strict-Transport-Security" not in r.headers


def test_trusted_proxy_client_is_the_right_most_untrusted_hop(gated: ServerProcess) -> None:
    """nginx appends the real address to whatever the client sent: ``6.6.6.6`` is the client's
    claim, 203.0.113.5 what the proxy saw. X-Real-IP is not read in x-forwarded-for mode (CHP and
    Caddy pass a client's X-Real-IP through)."""
    requests.get(
        gated.url + "/api/contents/xff-walk",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.5", "X-Real-IP": "7.7.7.7"},
        timeout=10,
    )
    line = wait_for_log(gated, "path=/api/contents/xff-walk")
    assert "peer=127.0.0.1 client=203.0.113.5" in line
    requests.get(
        gated.url + "/api/contents/real-ip-only", headers={"X-Real-IP": "7.7.7.7"}, timeout=10
    )
    assert "client=127.0.0.1" in wait_for_log(gated, "path=/api/contents/real-ip-only")


def test_forwarded_host_from_a_trusted_proxy_must_pass_the_host_allow_list(
    gated: ServerProcess,
) -> None:
    ok = requests.get(
        gated.url + "/api/status",
        headers={"X-Forwarded-For": "203.0.113.6", "X-Forwarded-Host": "jupyter.example.org",
                 **gated.auth()},
        timeout=10,
    )
    assert ok.status_code == 200
    bad = requests.get(
        gated.url + "/api/status",
        headers={"X-Forwarded-For": "203.0.113.6", "X-Forwarded-Host": "evil.example",
                 **gated.auth()},
        timeout=10,
    )
    assert_short_json_refusal(bad, 403)


def test_forwarding_headers_from_an_untrusted_peer_change_nothing_and_are_recorded(
    untrusted: ServerProcess,
) -> None:
    spoof = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "6.6.6.6",
        "X-Real-IP": "7.7.7.7",
        "Forwarded": "for=8.8.8.8;proto=https;host=jupyter.example.org",
        "X-Forwarded-Host": "evil.example",
    }
    r = requests.get(
        untrusted.url + "/lab", params={"token": untrusted.token}, headers=spoof,
        allow_redirects=False, timeout=10,
    )
    assert r.status_code == 302
    assert "Secure" not in _login_cookie(r)
    assert "Strict-Transport-Security" not in r.headers
    wait_for_log(untrusted, "policy ignored rule=HS-PROXY-002", "path=/jp/lab")
    requests.get(untrusted.url + "/api/contents/spoofed", headers=spoof, timeout=10)
    line = wait_for_log(untrusted, "policy denial", "path=/jp/api/contents/spoofed")
    assert "client=127.0.0.1" in line


# -- 3. CORS -----------------------------------------------------------------------------------


def test_listed_origin_gets_its_canonical_acao_with_vary(gated: ServerProcess) -> None:
    r = requests.get(
        gated.url + "/api/status",
        headers={"Origin": "https://TRUSTED.example.com:443", **gated.auth()},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == TRUSTED
    assert "Origin" in r.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in r.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://trusted.example.com.evil.com",
        "https://trusted.example.comevil.com",
        "https://evil.com\\@trusted.example.com",
        "null",
        "http://trusted.example.com",
        "https://evil.example",
    ],
)
def test_unlisted_origins_get_nothing_even_with_the_token(
    gated: ServerProcess, origin: str
) -> None:
    """CVE-2026-40110 (prefix match), the backslash parser differential, ``null`` from sandboxed
    frames; stock reflected any Origin on token requests."""
    r = requests.get(
        gated.url + "/api/status", headers={"Origin": origin, **gated.auth()}, timeout=10
    )
    assert "Access-Control-Allow-Origin" not in r.headers
    assert_short_json_refusal(r, 403)


def test_preflight_is_answered_from_the_policy_never_by_reflection(gated: ServerProcess) -> None:
    asked = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    r = requests.options(
        gated.url + "/api/contents/x", headers={"Origin": TRUSTED, **asked}, timeout=10
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == TRUSTED
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE"
    assert r.headers["Access-Control-Max-Age"] == "600"
    for origin, more in [
        ("https://evil.example", {}),
        (TRUSTED, {"Access-Control-Request-Method": "TRACE"}),
        (TRUSTED, {"Access-Control-Request-Headers": "x-evil"}),
    ]:
        r = requests.options(
            gated.url + "/api/contents/x", headers={"Origin": origin, **asked, **more}, timeout=10
        )
        assert "Access-Control-Allow-Origin" not in r.headers, (origin, more)
        assert "Access-Control-Allow-Methods" not in r.headers
    wait_for_log(gated, "rule=HS-CORS-002", "method=OPTIONS")


# -- 4. Cross-site requests and the session-bound XSRF token -----------------------------------


@pytest.fixture(scope="module")
def session(gated: ServerProcess) -> requests.Session:
    return login(gated)


def _create(gated: ServerProcess, session: requests.Session, **headers: str) -> Any:
    return session.post(gated.url + "/api/contents", json={"type": "file"}, headers=headers,
                        timeout=10)


def test_same_origin_post_with_the_session_token_succeeds(
    gated: ServerProcess, session: requests.Session
) -> None:
    r = _create(gated, session, **xsrf_headers(session, **{"Sec-Fetch-Site": "same-origin"}))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "fetch",
    [
        {"Sec-Fetch-Site": "cross-site"},
        # JupyterHub CVE-2026-40864: the mode says how, never who
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
         "Sec-Fetch-Dest": "document"},
        # a sibling subdomain is another user's server in a multi-user deployment
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "bogus"},
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "null"},
    ],
)
def test_cross_site_state_change_is_refused_even_with_the_session_token(
    gated: ServerProcess, session: requests.Session, fetch: dict[str, str]
) -> None:
    r = _create(gated, session, **xsrf_headers(session, **fetch))
    assert_short_json_refusal(r, 403)


def test_without_fetch_metadata_origin_then_referer_then_token_decide(
    gated: ServerProcess, session: requests.Session
) -> None:
    own = f"http://127.0.0.1:{gated.port}"
    assert _create(gated, session, **xsrf_headers(session, Origin=own)).status_code == 201
    assert _create(gated, session, **xsrf_headers(session, Referer=own + "/lab")).status_code == 201
    # a non-browser client holding the login cookie and the session token
    assert _create(gated, session, **xsrf_headers(session)).status_code == 201
    # neither Origin nor Referer nor token: refused
    assert_short_json_refusal(_create(gated, session), 403)


def test_xssi_of_files_is_refused_cross_site_and_served_same_origin(
    gated: ServerProcess, session: requests.Session
) -> None:
    """CVE-2023-40170 / CVE-2019-9644: <script src=/files/...> on another site."""
    (gated.root / "secret.js").write_text("var secret = 42;\n")
    url = gated.url + "/files/secret.js"
    script = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
              "Sec-Fetch-Dest": "script"}
    assert session.get(url, headers=script, timeout=10).status_code == 403
    assert session.get(url, headers={"Referer": "https://evil.example/"}, timeout=10).status_code \
        == 403
    assert session.get(url, timeout=10).status_code == 403  # no Referer at all (no-referrer page)
    ok = session.get(url, headers={"Sec-Fetch-Site": "same-origin"}, timeout=10)
    assert ok.status_code == 200
    assert ok.text == "var secret = 42;\n"
    typed = session.get(url, headers={"Sec-Fetch-Site": "none"}, timeout=10)  # address bar
    assert typed.status_code == 200
    wait_for_log(gated, "rule=HS-XSITE-003", "path=/files/secret.js")


def test_top_level_navigation_is_allowed_but_framing_and_fetching_pages_cross_site_is_not(
    gated: ServerProcess, session: requests.Session
) -> None:
    nav = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    assert session.get(gated.url + "/lab", headers={**nav, "Sec-Fetch-Dest": "document"},
                       timeout=10).status_code == 200
    assert session.get(gated.url + "/lab", headers={**nav, "Sec-Fetch-Dest": "iframe"},
                       timeout=10).status_code == 403
    api = session.get(gated.url + "/api/contents",
                      headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
                      timeout=10)
    assert api.status_code == 403  # cors mode from an unlisted origin (no Origin even)


def test_tossed_xsrf_cookie_with_matching_argument_is_refused(
    gated: ServerProcess, tmp_path: Path
) -> None:
    """jupyter_server#1459 / JupyterHub CVE-2024-28233: a sibling subdomain sets ``_xsrf`` for
    the parent domain and submits the same value. Stock's double submit accepts it; here the
    expected value is bound to the session."""
    victim = login(gated)
    genuine = victim.cookies["_xsrf"]
    same = {"Sec-Fetch-Site": "same-origin"}
    tossed = "2|deadbeef|" + "00" * 32 + "|1700000000"  # a well-formed token of the attacker's
    for cookie_value, supplied in [(tossed, tossed), ("1", "1")]:
        victim.cookies.set("_xsrf", cookie_value, domain="127.0.0.1", path="/")
        r = victim.post(gated.url + "/api/contents", json={"type": "file"},
                        headers={"X-XSRFToken": supplied, **same}, timeout=10)
        assert_short_json_refusal(r, 403)
        form = victim.post(gated.url + f"/api/contents?_xsrf={supplied}", json={"type": "file"},
                           headers=same, timeout=10)
        assert form.status_code == 403
    wait_for_log(gated, "rule=HS-XSRF-002")
    # The next page load puts the bound value back in the cookie: JupyterLab keeps working.
    page = victim.get(gated.url + "/lab", timeout=10)
    assert "_xsrf=" in page.headers.get("Set-Cookie", "")
    restored = victim.cookies["_xsrf"]
    assert restored != tossed
    r = victim.post(gated.url + "/api/contents", json={"type": "file"},
                    headers={"X-XSRFToken": restored, **same}, timeout=10)
    assert r.status_code == 201
    # the token is masked differently on every page but stands for the same session value
    assert genuine.split("|")[0] == restored.split("|")[0] == "2"


def test_another_sessions_token_does_not_pass(gated: ServerProcess) -> None:
    alice, mallory = login(gated), login(gated)
    r = alice.post(gated.url + "/api/contents", json={"type": "file"},
                   headers={"X-XSRFToken": mallory.cookies["_xsrf"],
                            "Sec-Fetch-Site": "same-origin"}, timeout=10)
    assert_short_json_refusal(r, 403)


def test_token_header_requests_need_no_xsrf_token(gated: ServerProcess) -> None:
    r = requests.post(gated.url + "/api/contents", json={"type": "file"}, headers=gated.auth(),
                      timeout=10)
    assert r.status_code == 201
    assert "Set-Cookie" not in r.headers


# -- 4b. Websockets ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel(gated: ServerProcess) -> Iterator[str]:
    r = requests.post(gated.url + "/api/kernels", json={"name": "python3"}, headers=gated.auth(),
                      timeout=60)
    assert r.status_code == 201, r.text
    kernel_id = r.json()["id"]
    yield kernel_id
    requests.delete(gated.url + f"/api/kernels/{kernel_id}", headers=gated.auth(), timeout=30)


def _ws(gated: ServerProcess, kernel_id: str, session: requests.Session, origin: str | None,
        **kwargs: Any) -> websocket.WebSocket:
    extra: dict[str, Any] = {"origin": origin} if origin else {"suppress_origin": True}
    return websocket.create_connection(
        f"ws://127.0.0.1:{gated.port}/api/kernels/{kernel_id}/channels",
        cookie=cookie_header(session), timeout=20, **extra, **kwargs,
    )


@pytest.mark.parametrize("origin", ["https://evil.example", "https://trusted.example.com.evil.com",
                                    "null"])
def test_kernel_websocket_from_a_foreign_origin_is_refused_with_a_valid_cookie(
    gated: ServerProcess, kernel: str, session: requests.Session, origin: str
) -> None:
    """Cross-site websocket hijacking: the browser sends the session cookie with the handshake
    of any page; only the Origin tells."""
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        _ws(gated, kernel, session, origin)
    assert info.value.status_code == 403


@pytest.mark.parametrize("origin", ["own", TRUSTED])
def test_kernel_websocket_from_own_or_listed_origin_is_accepted(
    gated: ServerProcess, kernel: str, session: requests.Session, origin: str
) -> None:
    origin = f"http://127.0.0.1:{gated.port}" if origin == "own" else origin
    ws = _ws(gated, kernel, session, origin)
    try:
        assert ws.connected
    finally:
        ws.close()


def test_websocket_without_origin_from_a_browser_context_is_decided_by_fetch_metadata(
    gated: ServerProcess, kernel: str, session: requests.Session
) -> None:
    upgrade = (
        f"GET /api/kernels/{kernel}/channels HTTP/1.1\r\nHost: 127.0.0.1:{gated.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Cookie: {cookie_header(session)}\r\n"
    )
    cross = raw(gated.port, upgrade + "Sec-Fetch-Site: cross-site\r\n"
                "Sec-Fetch-Mode: websocket\r\n\r\n")
    assert cross.status == 403
    same = raw(gated.port, upgrade + "Sec-Fetch-Site: same-origin\r\n"
               "Sec-Fetch-Mode: websocket\r\n\r\n")
    assert same.status == 101


def test_websocket_with_token_header_from_a_foreign_origin_is_refused_too(
    gated: ServerProcess, kernel: str
) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(
            f"ws://127.0.0.1:{gated.port}/api/kernels/{kernel}/channels",
            header=[f"Authorization: token {gated.token}"], origin="https://evil.example",
            timeout=20,
        )
    assert info.value.status_code == 403


def _closed_by_server(ws: websocket.WebSocket, message: str) -> bool:
    """Send ``message``; True once the server has closed the connection (a close frame, 1009
    "message too big", or a reset while the message was still being sent)."""
    gone = (ConnectionError, websocket.WebSocketConnectionClosedException)
    try:
        ws.send(message)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            opcode, frame = ws.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(frame.data[:2], "big") in (1009, 1006, 1000)
    except gone:
        return True
    return False


def test_websocket_pings_and_message_size_limit_come_from_the_policy(
    gated: ServerProcess, kernel: str, session: requests.Session
) -> None:
    ws = _ws(gated, kernel, session, f"http://127.0.0.1:{gated.port}")
    try:
        deadline = time.monotonic() + 5
        seen_ping = False
        while time.monotonic() < deadline and not seen_ping:
            opcode, _frame = ws.recv_data_frame(control_frame=True)
            seen_ping = opcode == websocket.ABNF.OPCODE_PING
        assert seen_ping, "limits.websocket_ping_interval_seconds = 1: a ping within 5 s"
        assert _closed_by_server(ws, "x" * 100_000), "over limits.websocket_max_message_bytes"
    finally:
        ws.close()


# -- 5. Redirects ------------------------------------------------------------------------------

REDIRECT_PAYLOADS = [
    "//evil.example",  # JS-2
    "/\\evil.example",  # JS-2, browsers read \ as /
    "\\\\evil.example",
    "///evil.example",  # JS-12
    "////evil.example/path",
    "https:///evil.example",  # JS-6
    "https:/evil.example",
    "https:evil.example",
    "HTTPS://evil.example",
    "https://evil.example/",
    "/%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "/hub/../..//evil.example",  # JupyterHub CVE-2026-33709
    "%2F%2E%2E%2F%2Fevil.example",
    "/%2E%2E/%2E%2E//evil.example",
    "/.//evil.example",
    "\t//evil.example",
    "/\n/evil.example",
    " //evil.example",
    "javascript:alert(document.domain)",
    "https://trusted.example.com.evil.com/",  # JS-10 via next
    "http://127.0.0.1:{port}@evil.example/",
    "//127.0.0.1:{port}@evil.example/",
    "http://evil.example\\@127.0.0.1:{port}/",
]


def assert_stays_on_origin(location: str, server: ServerProcess) -> None:
    base = server.base + "/"  # type: ignore[attr-defined]
    assert location.startswith(base), location
    assert not location.startswith("//")
    assert "\\" not in location
    assert all(0x20 < ord(c) < 0x7F for c in location), location
    resolved = urllib.parse.urlsplit(urllib.parse.urljoin(server.url + "/", location))
    assert resolved.netloc == f"127.0.0.1:{server.port}", location


@pytest.mark.parametrize("payload", REDIRECT_PAYLOADS)
def test_login_next_never_leaves_the_origin(
    gated: ServerProcess, session: requests.Session, payload: str
) -> None:
    r = session.get(gated.url + "/login", params={"next": payload.format(port=gated.port)},
                    allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert_stays_on_origin(r.headers["Location"], gated)


def test_login_next_keeps_a_same_origin_path(gated: ServerProcess,
                                             session: requests.Session) -> None:
    r = session.get(gated.url + "/login", params={"next": "/lab/tree/a b.ipynb?x=1"},
                    allow_redirects=False, timeout=10)
    assert r.headers["Location"] == "/lab/tree/a%20b.ipynb?x=1"


@pytest.mark.parametrize("payload", ["//evil.example", "https:///evil.example",
                                     "/hub/../..//evil.example", "/lab"])
def test_login_form_post_next_never_leaves_the_origin(gated: ServerProcess, payload: str) -> None:
    anonymous = requests.Session()
    anonymous.headers.update(forwarded_for(f"192.0.2.{len(payload)}"))
    page = anonymous.get(gated.url + "/login", timeout=10)
    assert page.status_code == 200
    r = anonymous.post(
        gated.url + "/login",
        params={"next": payload},
        data={"password": gated.token, "_xsrf": anonymous.cookies["_xsrf"]},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": f"http://127.0.0.1:{gated.port}"},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302, r.text
    assert_stays_on_origin(r.headers["Location"], gated)


@pytest.mark.parametrize("path", ["//evil.example/", "/\\evil.example/", "//evil.example//x/",
                                  "/%2F/evil.example/"])
def test_trailing_slash_redirect_never_leaves_the_origin(
    gated: ServerProcess, session: requests.Session, path: str
) -> None:
    """JS-1 / CVE-2020-26232: ``GET //evil.example/`` matched the trailing-slash route."""
    for cookie in ("X-Forwarded-For: 192.0.2.200\r\n", f"Cookie: {cookie_header(session)}\r\n"):
        r = raw(gated.port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{gated.port}\r\n{cookie}\r\n")
        assert r.status in (301, 302), (path, r.status)
        assert_stays_on_origin(r.headers["location"], gated)


@pytest.mark.parametrize("payload", ["//evil.example", "/elsewhere", "/jp/../evil", "/jp/lab"])
def test_redirects_stay_under_base_url(untrusted: ServerProcess, payload: str) -> None:
    s = login(untrusted)
    r = s.get(untrusted.url + "/login", params={"next": payload}, allow_redirects=False,
              timeout=10)
    assert r.status_code == 302
    assert_stays_on_origin(r.headers["Location"], untrusted)
    if payload == "/jp/lab":
        assert r.headers["Location"] == "/jp/lab"
    else:
        assert r.headers["Location"] == "/jp/"


# -- 6. Limits ---------------------------------------------------------------------------------


def test_ten_gigabyte_content_length_gets_413_before_any_body_is_sent(gated: ServerProcess) -> None:
    for auth in ("", f"Authorization: token {gated.token}\r\n"):
        started = time.monotonic()
        r = raw(gated.port, "POST /api/contents HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{gated.port}\r\n{auth}"
                "Content-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n",
                wait_close=True)
        assert time.monotonic() - started < 2
        assert r.status == 413
        assert r.headers["content-type"].startswith("application/json")
        assert r.closed, "the connection is closed instead of reading 10 GB"
    wait_for_log(gated, "rule=HS-LIMIT-001")


def test_body_just_over_the_limit_is_413_and_under_it_is_served(gated: ServerProcess) -> None:
    over = requests.put(gated.url + "/api/contents/over.txt", data=b"x" * (1048576 + 1),
                        headers=gated.auth(), timeout=10)
    assert_short_json_refusal(over, 413)
    under = requests.put(gated.url + "/api/contents/under.txt",
                         json={"type": "file", "format": "text", "content": "x" * 500_000},
                         headers=gated.auth(), timeout=10)
    assert under.status_code in (200, 201)


def test_anonymous_one_mebibyte_body_gets_413_before_it_is_sent(gated: ServerProcess) -> None:
    """Bodies are read into memory before authentication decides: without a credential only
    ``limits.anonymous_body_bytes`` (64 KiB) is accepted. Only the headers are sent; the 413
    must come back at once (no body is waited for) and the connection is closed."""
    for path, extra in (
        ("/api/contents", "Cookie: a=b\r\n"),  # a made-up cookie is no credential
        ("/login", f"Authorization: token {gated.token}\r\n"),  # the login form is always
    ):
        started = time.monotonic()
        r = raw(gated.port, f"POST {path} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{gated.port}\r\n{extra}"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 1048576\r\n\r\n", timeout=3.0, wait_close=True)
        assert time.monotonic() - started < 2.5
        assert r.status == 413
        assert r.closed
        for name in POLICY_HEADERS:
            assert name.lower() in r.headers, name
    wait_for_log(gated, "rule=HS-LIMIT-005")


def test_anonymous_chunked_body_is_cut_off_at_the_anonymous_limit(gated: ServerProcess) -> None:
    chunk = b"x" * 32768
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 4 + b"0\r\n\r\n"
    r = raw(gated.port, "POST /api/contents HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{gated.port}\r\n{_forwarded('198.51.100.93')}"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", body)
    assert r.status == 400
    for name in POLICY_HEADERS:
        assert name.lower() in r.headers, name


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ("Content-Length: 12abc\r\n", b""),
        ("Content-Length: 5, 6\r\n", b"hello"),
        ("Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"),
        ("Transfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n"),
    ],
)
def test_tornados_own_400_carries_the_policy_headers(
    gated: ServerProcess, framing: str, body: bytes
) -> None:
    """tornado/http1connection.py answers a request it cannot parse with a bare
    ``HTTP/1.1 400 Bad Request`` written to the socket itself, past the output transform; the
    server's HTTPServer gives that answer the error class's headers."""
    r = raw(gated.port, "PUT /api/contents/x.txt HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{gated.port}\r\nAuthorization: token {gated.token}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n", body, wait_close=True)
    assert r.status == 400
    assert r.closed
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert r.body == b"400 Bad Request\n"
    assert "server" not in r.headers


def test_authenticated_one_mebibyte_put_still_works(untrusted: ServerProcess) -> None:
    content = "x" * (1024 * 1024)
    r = requests.put(untrusted.url + "/api/contents/one-mib.txt",
                     json={"type": "file", "format": "text", "content": content},
                     headers=untrusted.auth(), timeout=30)
    assert r.status_code in (200, 201), r.text
    assert (untrusted.root / "one-mib.txt").stat().st_size == len(content)


def test_chunked_contents_upload_larger_than_the_limit_still_works(gated: ServerProcess) -> None:
    """JupyterLab uploads big files in chunks, one request each (chunk 1, 2, ..., -1)."""
    data = bytes(range(256)) * 2048  # 512 KiB per chunk, 1.5 MiB in all
    for number in (1, 2, -1):
        r = requests.put(
            gated.url + "/api/contents/big.bin",
            json={"type": "file", "format": "base64", "chunk": number, "name": "big.bin",
                  "path": "big.bin", "content": base64.b64encode(data).decode()},
            headers=gated.auth(), timeout=30,
        )
        assert r.status_code in (200, 201), r.text
    assert (gated.root / "big.bin").stat().st_size == 3 * len(data)


def test_oversized_header_fields_get_431_and_a_long_url_414(gated: ServerProcess) -> None:
    big = raw(gated.port, f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{gated.port}\r\n"
              f"X-Padding: {'a' * 40_000}\r\n\r\n")
    assert big.status == 431
    long = raw(gated.port, f"GET /api/status?x={'a' * 17_000} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{gated.port}\r\n\r\n")
    assert long.status == 414
    assert long.headers["content-type"].startswith("application/json")
    wait_for_log(gated, "rule=HS-LIMIT-002")
    wait_for_log(gated, "rule=HS-LIMIT-003")


def test_unauthenticated_requests_are_rate_limited_per_client(gated: ServerProcess) -> None:
    """Keyed by the client the trusted-proxy rules believe (127.0.0.1 is a trusted proxy on this
    server, so X-Forwarded-For names distinct clients)."""
    def anonymous(client: str, **headers: str) -> requests.Response:
        return requests.get(gated.url + "/api/contents",
                            headers={"X-Forwarded-For": client, **headers}, timeout=10)

    statuses = [anonymous("198.51.100.77").status_code for _ in range(40)]
    assert statuses[0] == 403
    assert 429 in statuses
    limited = anonymous("198.51.100.77")
    assert_short_json_refusal(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    # another client is unaffected, and an authenticated request is never limited
    assert anonymous("198.51.100.78").status_code == 403
    assert anonymous("198.51.100.77", **gated.auth()).status_code == 200
    # a failed credential costs ten: three wrong tokens spend a bucket of 30
    wrong = {"Authorization": "token " + "0" * 64}
    statuses = [anonymous("198.51.100.79", **wrong).status_code for _ in range(4)]
    assert statuses == [403, 403, 403, 429]
    wait_for_log(gated, "rule=HS-LIMIT-004", "client=198.51.100.77")


def test_the_xsrf_cookie_is_no_credential_for_the_gate(gated: ServerProcess) -> None:
    """The ``_xsrf`` cookie the login page hands every visitor authenticates nobody: a client
    whose budget is spent is refused by the gate before routing even when it sends it back."""
    client = {"X-Forwarded-For": "198.51.100.91"}
    session = requests.Session()
    assert session.get(gated.url + "/login", headers=client, timeout=10).status_code == 200
    assert set(session.cookies.keys()) == {"_xsrf"}
    statuses = [
        session.get(gated.url + "/api/contents", headers=client, timeout=10).status_code
        for _ in range(40)
    ]
    assert statuses[0] == 403
    assert statuses[-1] == 429
    wait_for_log(
        gated, "rule=HS-LIMIT-004", "client=198.51.100.91", "budget of this client is spent"
    )


def test_wrong_logins_over_the_budget_get_the_short_429(gated: ServerProcess) -> None:
    """Once the budget cannot pay for another failed credential, a login attempt (a form POST)
    is refused by the gate before routing, with the short answer and the connection kept
    open (the session reuses it); the login page's own 429 is the same short answer, not an
    error page rendered from a template for every attempt."""
    client = {"X-Forwarded-For": "198.51.100.92"}
    session = requests.Session()
    assert session.get(gated.url + "/login", headers=client, timeout=10).status_code == 200
    xsrf = session.cookies["_xsrf"]
    answers = [
        session.post(
            gated.url + "/login",
            data={"_xsrf": xsrf, "password": "wrong"},
            headers={**client, "Origin": gated.url},
            allow_redirects=False,
            timeout=10,
        )
        for _ in range(8)
    ]
    statuses = [r.status_code for r in answers]
    assert statuses[-1] == 429, statuses
    for r in answers:
        if r.status_code == 429:
            assert r.headers["Content-Type"].startswith("text/plain")
            assert r.text == "429 Too many requests\n"
            assert int(r.headers["Retry-After"]) >= 1
            assert r.headers.get("Connection", "").lower() != "close"
            for name in POLICY_HEADERS:
                assert name in r.headers, name
    wait_for_log(
        gated, "rule=HS-LIMIT-004", "client=198.51.100.92", "budget of this client is spent"
    )
