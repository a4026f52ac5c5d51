"""hardened-server behind Debian's nginx, with the shipped config, on loopback.

nginx runs with ``deploy/nginx/hardened-server.conf`` exactly as shipped except for the lines an
operator replaces (listen addresses, certificate paths, the upstream port), under its own prefix
in a temporary directory, in the foreground, TLS with a throw-away CA. hardened-server runs with
the shipped ``behind-proxy`` profile and ``deploy/nginx/site.toml``.

The client connects from 127.0.0.2 (all of 127/8 is loopback) while nginx connects to the server
from 127.0.0.1: the address the server records must be the client's, never the proxy's and never
what the client claims in a header. Every request goes through nginx: TLS with the public name as
SNI, login by the URL-token exchange, contents listed and saved, a kernel started and code run over
a ``wss://`` websocket; then the refusals: a foreign Host (nginx drops it), a foreign TLS name (no
handshake), a spoofed ``X-Forwarded-For``/``X-Real-IP``; and the audit trail names the client
(127.0.0.2) in every record of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from requests.adapters import HTTPAdapter

from tests.conftest import REPO
from tests.support import tls
from tests.support.audit import audit_records
from tests.support.server import ServerProcess, free_port
from tests.support.tls import make_pki

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NGINX = "/usr/sbin/nginx"
PUBLIC = "jupyter.example.org"
CLIENT_IP = "127.0.0.2"
SHIPPED_CONF = REPO / "deploy" / "nginx" / "hardened-server.conf"
SITE_POLICY = REPO / "deploy" / "nginx" / "site.toml"


def nginx_binary() -> str | None:
    return NGINX if os.access(NGINX, os.X_OK) else shutil.which("nginx")


def render_conf(tls_port: int, http_port: int, upstream_port: int, pki: tls.TestPKI) -> str:
    """The shipped file with only the operator's lines replaced; each must be there exactly as
    often as expected, so this test breaks if the shipped file drifts from what it proves."""
    text = SHIPPED_CONF.read_text()
    replacements = [
        ("listen 443 ssl default_server;", f"listen 127.0.0.1:{tls_port} ssl default_server;", 1),
        ("listen [::]:443 ssl default_server;", "", 1),
        ("listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;", 1),
        ("listen [::]:80 default_server;", "", 1),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls_port} ssl http2;", 1),
        ("listen [::]:443 ssl http2;", "", 1),
        ("listen 80;", f"listen 127.0.0.1:{http_port};", 1),
        ("listen [::]:80;", "", 1),
        ("/etc/ssl/hardened-server/fullchain.pem", str(pki.cert_pem), 1),
        ("/etc/ssl/hardened-server/privkey.pem", str(pki.key_pem), 1),
        ("server 127.0.0.1:8888;", f"server 127.0.0.1:{upstream_port};", 1),
    ]
    for old, new, count in replacements:
        assert text.count(old) == count, f"{SHIPPED_CONF.name}: expected {count}x {old!r}"
        text = text.replace(old, new)
    return text


def main_conf(prefix: Path, site_conf: Path) -> str:
    # As root the workers would switch to "nobody", who cannot enter pytest's 0700 tmp dirs.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix / "access.log"};
{temp}
    include {site_conf};
}}
"""


class Nginx:
    def __init__(self, binary: str, prefix: Path, upstream_port: int, pki: tls.TestPKI) -> None:
        self.prefix = prefix
        self.tls_port = free_port()
        self.http_port = free_port()
        site = prefix / "hardened-server.conf"
        site.write_text(render_conf(self.tls_port, self.http_port, upstream_port, pki))
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(main_conf(prefix, site))
        self.argv = [
            binary,
            "-p",
            str(prefix),
            "-c",
            str(self.conf),
            "-e",
            str(prefix / "error.log"),
            "-g",
            "daemon off;",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        check = subprocess.run([*self.argv[:-2], "-t"], capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr.decode()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.error_log()
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("nginx did not listen:\n" + self.error_log())

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its pid: fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class ViaProxy(HTTPAdapter):
    """Connect to nginx on 127.0.0.1 from ``CLIENT_IP``, asking for ``PUBLIC`` by SNI and
    verifying the certificate for that name, as a browser resolving it to the proxy would."""

    def __init__(self, server_name: str = PUBLIC) -> None:
        self._name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(
            server_hostname=self._name,
            assert_hostname=self._name,
            source_address=(CLIENT_IP, 0),
        )
        super().init_poolmanager(*args, **kwargs)


class Client:
    def __init__(self, nginx: Nginx, pki: tls.TestPKI) -> None:
        self.base = f"https://127.0.0.1:{nginx.tls_port}"
        self.host = f"{PUBLIC}:{nginx.tls_port}"
        self.origin = f"https://{self.host}"
        self.pki = pki
        self.session = requests.Session()
        self.session.mount(self.base, ViaProxy())
        # Per request: REQUESTS_CA_BUNDLE in the environment would win over session.verify.
        self.verify = str(pki.ca_pem)
        self.session.headers["Host"] = self.host

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=20, verify=self.verify, **kw)

    def send(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {
            "X-XSRFToken": self.session.cookies.get("_xsrf", ""),
            "Origin": self.origin,
            **kw.pop("headers", {}),
        }
        return self.session.request(
            method, self.base + path, headers=headers, timeout=20, verify=self.verify, **kw
        )

    def tls_socket(self, port: int, server_name: str = PUBLIC) -> ssl.SSLSocket:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_pem))
        raw = socket.create_connection(
            ("127.0.0.1", port), timeout=10, source_address=(CLIENT_IP, 0)
        )
        return ctx.wrap_socket(raw, server_hostname=server_name)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Nginx]]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("Debian nginx is not installed (make test installs it)")
    base = tmp_path_factory.mktemp("nginx")
    pki = make_pki(base / "pki", dns_names=(PUBLIC,))
    server = ServerProcess(
        base / "server", ["--policy=behind-proxy", f"--policy={SITE_POLICY}"]
    ).start()
    prefix = base / "prefix"
    prefix.mkdir()
    nginx = Nginx(binary, prefix, server.port, pki)
    nginx.pki = pki  # type: ignore[attr-defined]
    try:
        nginx.start()
        yield server, nginx
    finally:
        nginx.stop()
        server.stop()


@pytest.fixture(scope="module")
def client(deployment: tuple[ServerProcess, Nginx]) -> Client:
    """Logged in through the proxy: the URL-token navigation exchange, then the page that
    sets the ``_xsrf`` cookie."""
    server, nginx = deployment
    c = Client(nginx, nginx.pki)  # type: ignore[attr-defined]
    r = c.get(
        "/lab",
        params={"token": server.token},
        allow_redirects=False,
        headers={
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Site": "none",
            "Sec-Fetch-Dest": "document",
        },
    )
    assert r.status_code == 302, r.text
    assert "token=" not in r.headers["Location"]
    r = c.get("/lab")
    assert r.status_code == 200
    assert c.session.cookies.get("_xsrf")
    return c


def test_login_through_nginx_sets_only_secure_cookies(client: Client) -> None:
    """The server saw https (X-Forwarded-Proto from the trusted proxy), so every cookie it set
    is Secure, and HSTS is sent."""
    cookies = list(client.session.cookies)
    # https as the trusted proxy says: the session cookie is __Host- (Secure, Path=/, host-only)
    assert any(c.name.startswith("__Host-username-") for c in cookies)
    assert {c.name for c in cookies} >= {"_xsrf"}
    for cookie in cookies:
        assert cookie.secure, f"cookie {cookie.name} is not Secure"
    r = client.get("/api/status")
    assert r.status_code == 200
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "nginx/" not in r.headers.get("Server", "")


def test_contents_list_and_save_through_nginx(client: Client) -> None:
    name = f"via-nginx-{uuid.uuid4().hex[:8]}.txt"
    r = client.send(
        "PUT",
        f"/api/contents/{name}",
        json={"type": "file", "format": "text", "content": "saved through nginx\n"},
    )
    assert r.status_code == 201, r.text
    listing = client.get("/api/contents")
    assert listing.status_code == 200
    assert name in {item["name"] for item in listing.json()["content"]}
    r = client.get(f"/api/contents/{name}")
    assert r.json()["content"] == "saved through nginx\n"


def _execute(ws: websocket.WebSocket, code: str) -> str:
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    out = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "error":
            raise AssertionError(msg["content"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)
    raise AssertionError("no reply from the kernel")


def test_kernel_executes_code_over_wss_through_nginx(
    client: Client, deployment: tuple[ServerProcess, Nginx]
) -> None:
    server, nginx = deployment
    r = client.send("POST", "/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    try:
        cookies = "; ".join(f"{c.name}={c.value}" for c in client.session.cookies)
        sock = client.tls_socket(nginx.tls_port)
        ws = websocket.create_connection(
            f"wss://{client.host}/api/kernels/{kernel}/channels",
            socket=sock,
            host=client.host,
            origin=client.origin,
            cookie=cookies,
            timeout=60,
        )
        try:
            assert _execute(ws, "print(6 * 7)") == "42\n"
        finally:
            ws.close()
        (started,) = wait_for(
            lambda: [r for r in audit_records(server) if kernel in (r.get("subject") or "")]
        )
        assert started["event_kind"] == "kernel_started"
        assert started["client_ip"] == CLIENT_IP
    finally:
        client.send("DELETE", f"/api/kernels/{kernel}")


def test_foreign_host_and_foreign_tls_name_are_dropped_by_nginx(
    client: Client, deployment: tuple[ServerProcess, Nginx]
) -> None:
    _server, nginx = deployment
    # Our TLS name, a foreign Host: the default server closes without an answer (444).
    with pytest.raises(requests.ConnectionError):
        client.get("/api/status", headers={"Host": "evil.example"})
    # A foreign TLS name: no certificate, no handshake.
    with pytest.raises(ssl.SSLError):
        client.tls_socket(nginx.tls_port, server_name="evil.example").close()
    # Plain HTTP with a foreign Host: dropped too; with ours, only a redirect to https.
    for host, expect in (("evil.example", None), (PUBLIC, 301)):
        with socket.create_connection(
            ("127.0.0.1", nginx.http_port), timeout=10, source_address=(CLIENT_IP, 0)
        ) as s:
            s.sendall(f"GET /lab HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        if expect is None:
            assert data == b""
        else:
            assert data.startswith(b"HTTP/1.1 301"), data[:200]
            assert f"Location: https://{PUBLIC}/lab".encode() in data
    # And the server still answers our own name.
    assert client.get("/api/status").status_code == 200


def test_client_sent_forwarding_headers_are_not_believed(
    client: Client, deployment: tuple[ServerProcess, Nginx]
) -> None:
    """nginx overwrites X-Forwarded-For and X-Real-IP, and hardened-server believes only the
    proxy: a denial provoked with spoofed headers is recorded, in the decision log and in the
    audit trail, with the real client's address and scheme."""
    server, _nginx = deployment
    marker = f"/api/contents/spoof-{uuid.uuid4().hex[:8]}"
    # A cross-site write (foreign Origin): refused and recorded with the client's address.
    r = client.send(
        "PUT",
        marker,
        json={"type": "directory"},
        headers={
            "Origin": "https://evil.example",
            "X-Forwarded-For": "6.6.6.6",
            "X-Real-IP": "7.7.7.7",
            "Forwarded": "for=8.8.8.8",
            "X-Forwarded-Proto": "http",
        },
    )
    assert r.status_code == 403
    lines = wait_for(
        lambda: [
            line for line in server.log().splitlines() if "policy denial" in line and marker in line
        ]
    )
    for line in lines:
        assert f"client={CLIENT_IP}" in line, line
        assert "peer=127.0.0.1" in line, line
        for spoofed in ("6.6.6.6", "7.7.7.7", "8.8.8.8"):
            assert spoofed not in line
    (record,) = wait_for(lambda: [r for r in audit_records(server) if r["path"] == marker])
    assert record["decision"] == "deny"
    assert record["client_ip"] == CLIENT_IP
    assert record["scheme"] == "https"


def test_audit_records_of_the_session_name_the_real_client(
    client: Client, deployment: tuple[ServerProcess, Nginx]
) -> None:
    """Every record of what this client did through the proxy (login, contents, kernel, the
    refusals above) carries its own address, never the proxy's or a spoofed one."""
    server, _nginx = deployment
    records = [r for r in audit_records(server) if r["route_class"] != "server"]
    assert records, "no request records in the audit trail"
    assert {r["client_ip"] for r in records} == {CLIENT_IP}


def wait_for(find: Any, timeout: float = 10) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("not recorded in time")
