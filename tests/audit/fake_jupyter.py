"""A fake Jupyter server with chosen weaknesses, for the live checks no real configuration of
stock jupyter_server shows (no CSP at all, an unsandboxed /files, traversal, open redirects,
weak HSTS over TLS ...). Each profile is a small set of switches; the probes cannot tell it from a
real server on the routes they visit.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote

SESSION = "fake-session-value"


@dataclass(frozen=True)
class Profile:
    page_csp: str | None = None
    files_csp: str | None = None
    nosniff: bool = False
    anonymous_api: bool = False
    acao_star: bool = False
    cookie_attrs: str = "Path=/"
    cross_site_files: bool = True
    open_redirect: bool = False
    traversal: bool = False
    hsts: dict[str, str] | None = None  # path prefix -> header value ("" = none)
    referrer_policy: str = "no-referrer"
    corp: bool = True
    public_metrics: bool = False


WEAK = Profile(
    page_csp=None,
    files_csp=None,
    nosniff=False,
    anonymous_api=True,
    acao_star=True,
    cookie_attrs="Path=/",
    cross_site_files=True,
    open_redirect=True,
    traversal=True,
    public_metrics=True,
)

STRICT_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; object-src 'none'; "
              "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; report-uri /csp")

TLS_WEAK = Profile(
    page_csp=STRICT_CSP,
    files_csp="default-src 'none'; sandbox allow-scripts allow-same-origin",
    nosniff=True,
    cookie_attrs="Path=/; HttpOnly; SameSite=Lax",
    cross_site_files=False,
    hsts={"/login": "", "": "max-age=3600"},
)


class FakeJupyter:
    def __init__(self, profile: Profile, token: str, *, cert: tuple[Path, Path] | None = None):
        self.profile = profile
        self.token = token
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeJupyter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeJupyter
    server_version = "FakeJupyter"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # -- helpers -------------------------------------------------------------------------------

    def _split(self) -> tuple[str, dict[str, list[str]]]:
        path, _, query = self.path.partition("?")
        return path, parse_qs(query)

    def _authed(self, query: dict[str, list[str]], *, allow_query: bool = False) -> bool:
        p = self.fake
        if self.headers.get("Authorization", "") == f"token {p.token}":
            return True
        if f"session={SESSION}" in self.headers.get("Cookie", ""):
            return True
        return allow_query and query.get("token", [""])[0] == p.token

    def _send(self, status: int, body: bytes = b"", ctype: str = "text/html",
              headers: dict[str, str] | None = None, *, kind: str = "page") -> None:
        prof = self.fake.profile
        path, _ = self._split()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        csp = prof.files_csp if kind == "files" else prof.page_csp if kind == "page" else None
        if csp:
            self.send_header("Content-Security-Policy", csp)
        if prof.nosniff:
            self.send_header("X-Content-Type-Options", "nosniff")
        if prof.referrer_policy:
            self.send_header("Referrer-Policy", prof.referrer_policy)
        if prof.corp:
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        if prof.hsts is not None:
            value = next((v for prefix, v in prof.hsts.items() if path.startswith(prefix)), "")
            if value:
                self.send_header("Strict-Transport-Security", value)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: object, extra: dict[str, str] | None = None) -> None:
        headers = dict(extra or {})
        if self.fake.profile.acao_star:
            headers["Access-Control-Allow-Origin"] = "*"
        self._send(status, json.dumps(doc).encode(), "application/json", headers, kind="api")

    # -- methods -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        prof = self.fake.profile
        path, query = self._split()
        if prof.traversal and ("%2e%2e" in path.lower() or "..%2f" in path.lower()):
            self._send(200, b"root:x:0:0:root:/root:/bin/bash\n", "text/plain", kind="files")
            return
        if path in ("/", ""):
            self._send(200, b"<html>home</html>")
            return
        if path == "/metrics" and prof.public_metrics:
            body = b"# HELP http_requests Requests.\n# TYPE http_requests counter\n"
            self._send(200, body, "text/plain", kind="api")
            return
        if path == "/api":
            self._json(200, {"version": "fake"})  # no digits in the Server header, a version here
            return
        if path.startswith("/api/contents"):
            if not (self._authed(query) or prof.anonymous_api):
                self._json(403, {"message": "Forbidden"})
                return
            if path.rstrip("/") == "/api/contents":
                self._json(200, {"type": "directory", "content": [
                    {"name": "hello.html", "type": "file"}]})
            else:
                self._json(404, {"message": "Not Found"})
            return
        if path == "/api/status":
            if not self._authed(query):
                self._json(403, {"message": "Forbidden"})
                return
            self._json(200, {"started": "now"})
            return
        if path == "/login":
            nxt = query.get("next", [""])[0]
            if nxt and prof.open_redirect and self._authed(query):
                self._send(302, b"", headers={"Location": nxt})
                return
            self._send(200, b"<html><form method=post></form></html>")
            return
        if path in ("/lab", "/tree"):
            if self._authed(query, allow_query=True):
                headers = {}
                if query.get("token"):
                    headers["Set-Cookie"] = f"session={SESSION}; {prof.cookie_attrs}"
                self._send(200, b"<html>lab</html>", headers=headers)
                return
            self._send(302, b"", headers={"Location": "/login"})
            return
        if path.startswith("/files/"):
            if not self._authed(query):
                self._send(403, b"forbidden", kind="files")
                return
            cross = self.headers.get("Sec-Fetch-Site") == "cross-site"
            if cross and not prof.cross_site_files:
                self._send(403, b"forbidden", kind="files")
                return
            name = unquote(path[len("/files/"):])
            if name == "hello.html":
                self._send(200, b"<h1>hello</h1>", kind="files")
            else:
                self._send(404, b"not found", kind="files")
            return
        if path.startswith("/static/"):
            self._send(200, b"\x00\x00", "image/x-icon", kind="static")
            return
        self._send(404, b"<html>404</html>")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_OPTIONS(self) -> None:
        self._send(204, b"", "text/plain", kind="api")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._json(403, {"message": "Forbidden"})

    def do_DELETE(self) -> None:
        self._json(403, {"message": "Forbidden"})


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA: pass it as --ca-file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
