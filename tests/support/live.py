"""Raw HTTP against live servers, and the checks the advisory regression tests make.

The tests in ``tests/regression/`` replay published advisories (research §3) as black-box HTTP
against a real ``hardened-server serve`` on 127.0.0.1; ``tests/hostile/`` and the identity tests
use the same client. Requests go out through :mod:`http.client` with the request target exactly
as written (no client-side normalisation of ``//``, ``..``, ``%2E`` or ``\\``), which is what the
advisories' ``curl --path-as-is`` reproductions need.

Servers are started per module, several at once (:func:`launched`, over the launcher in
``tests/support/server.py``), because each start is a fresh interpreter importing
jupyter_server (seconds of CPU); a module asks only for what its advisories need (``base_url``
``/`` and ``/jp/``, a loosened policy, JupyterLab or not).
"""

from __future__ import annotations

import base64
import contextlib
import html.parser
import http.client
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import (
    ServerProcess,
    Spec,
    launched_servers,
    restart_server_on_same_port,
)

EVIL = "evil.example"

#: Upgrade headers of a websocket handshake (RFC 6455 sample key).
WS_UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


# -- replies ---------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes
    target: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        value = self.headers.get(name)
        return default if value is None else str(value)

    def set_cookies(self) -> dict[str, str]:
        """``name -> value`` of every ``Set-Cookie`` (last one wins)."""
        out = {}
        for line in self.headers.get_all("Set-Cookie") or []:
            pair = str(line).split(";", 1)[0]
            name, _, value = pair.partition("=")
            out[name.strip()] = value.strip()
        return out

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def csp(self) -> dict[str, list[str]]:
        """The Content-Security-Policy as ``directive -> [values]`` (lower-cased names)."""
        return parse_csp(self.header("Content-Security-Policy", "") or "")

    def __repr__(self) -> str:  # shown by pytest on a failed assertion
        return f"<Reply {self.status} {self.target!r} {self.body[:160]!r}>"


def parse_csp(value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out.setdefault(words[0].lower(), [w for w in words[1:]])
    return out


# -- a live server -----------------------------------------------------------------------------


class Live:
    """A running hardened-server and the requests the advisories make against it."""

    def __init__(self, server: ServerProcess, base: str, tls_ca: Path | None = None) -> None:
        self.server = server
        self.base = base
        self.port = server.port
        self.host = f"127.0.0.1:{server.port}"
        self.tls = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else None
        self.origin = f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def token(self) -> str:
        return self.server.token

    @property
    def root(self) -> Path:
        return self.server.root

    @property
    def workdir(self) -> Path:
        return self.server.workdir

    def url(self, rel: str) -> str:
        """``rel`` (``/api/contents``) under this server's base_url, as a request target."""
        return self.base + rel.lstrip("/")

    def raw(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        *,
        auth: bool = False,
        cookie: str | None = None,
        timeout: float = 30,
    ) -> Reply:
        """One request with the target sent exactly as given."""
        conn = connect(self.port, timeout, self.tls)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            sent = {"Host": self.host}
            if auth:
                sent["Authorization"] = f"token {self.token}"
            if cookie:
                sent["Cookie"] = cookie
            sent.update(headers or {})
            for name, value in sent.items():
                conn.putheader(name, value)
            data = body.encode() if isinstance(body, str) else body
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            resp = conn.getresponse()
            payload = resp.read()
            return Reply(resp.status, resp.msg, payload, target)
        finally:
            conn.close()

    def req(self, method: str, rel: str, **kwargs: Any) -> Reply:
        return self.raw(method, self.url(rel), **kwargs)

    def api(self, method: str, rel: str, payload: Any = None, **kwargs: Any) -> Reply:
        """A token-authenticated JSON API call, as a same-origin client makes it."""
        headers = {"Origin": self.origin, "Content-Type": "application/json"}
        headers.update(kwargs.pop("headers", {}) or {})
        body = None if payload is None else json.dumps(payload)
        return self.req(method, rel, headers=headers, body=body, auth=True, **kwargs)

    # -- files ---------------------------------------------------------------------------------

    def put_text(self, path: str, text: str) -> None:
        r = self.api("PUT", f"/api/contents/{quote(path)}",
                     {"type": "file", "format": "text", "content": text})
        assert r.status in (200, 201), r

    def put_notebook(self, path: str, nb: Mapping[str, Any]) -> None:
        r = self.api("PUT", f"/api/contents/{quote(path)}",
                     {"type": "notebook", "format": "json", "content": nb})
        assert r.status in (200, 201), r

    # -- browser-like sessions -----------------------------------------------------------------

    def login_cookie(self, password: str | None = None) -> str:
        """``name=value`` of a session cookie obtained the way a browser does: the login form,
        with the token (or ``password``) as the password and the form's own ``_xsrf``."""
        page = self.req("GET", "/login")
        assert page.status == 200, page
        xsrf = page.set_cookies()["_xsrf"]
        secret = self.token if password is None else password
        form = urllib.parse.urlencode({"password": secret, "_xsrf": xsrf})
        r = self.req(
            "POST",
            "/login",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": self.origin,
                "Referer": self.origin + self.url("/login"),
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "document",
            },
            body=form,
            cookie=f"_xsrf={xsrf}",
        )
        assert r.status == 302, r
        return session_cookie(r)

    def logout(self, cookie: str, everywhere: bool = False) -> Reply:
        """``POST /logout`` as the logout page's form sends it (session cookie, its XSRF
        token, our Origin)."""
        xsrf = self.xsrf_for(cookie)
        form = urllib.parse.urlencode({"_xsrf": xsrf, "everywhere": "1" if everywhere else "0"})
        return self.req(
            "POST",
            "/logout",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": self.origin,
                "Sec-Fetch-Site": "same-origin",
            },
            body=form,
            cookie=f"{cookie}; _xsrf={xsrf}",
        )

    def xsrf_for(self, cookie: str) -> str:
        """The ``_xsrf`` value the server hands this session (on a page it serves)."""
        for rel in ("/lab", "/view/visible/a.txt", "/login"):
            r = self.req("GET", rel, cookie=cookie)
            value = r.set_cookies().get("_xsrf")
            if value:
                return value
        raise AssertionError("the server never set an _xsrf cookie for this session")

    def log(self) -> str:
        return self.server.log()

    def wait_log(self, needle: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if needle in text:
                return text
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} never appeared in the server log")


def ws_status(server: ServerProcess, path: str, token: str) -> int:
    """The status of a websocket handshake (101 means the upgrade happened), read off a raw
    socket and closed at once."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Authorization: token {token}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def connect(port: int, timeout: float, tls: ssl.SSLContext | None) -> http.client.HTTPConnection:
    if tls is not None:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def quote(path: str) -> str:
    return urllib.parse.quote(path, safe="/")


def session_cookie(reply: Reply) -> str:
    for name, value in reply.set_cookies().items():
        if name != "_xsrf" and value:
            return f"{name}={value}"
    raise AssertionError(f"no session cookie in {reply.headers.get_all('Set-Cookie')}")


# -- starting servers --------------------------------------------------------------------------


@contextlib.contextmanager
def launched(
    factory: pytest.TempPathFactory, *specs: Spec, name: str = "reg"
) -> Iterator[list[Live]]:
    """Start every spec at once, wait for all, stop them all on exit."""
    with launched_servers(factory, *specs, name=name) as started:
        yield [Live(s, spec.base, spec.tls_ca) for s, spec in zip(started, specs, strict=True)]


def restart_on_same_port(previous: ServerProcess, spec: Spec, token: str | None) -> Live:
    """A new server in the same work directory on the same port (see
    :func:`tests.support.server.restart_server_on_same_port`)."""
    return Live(restart_server_on_same_port(previous, spec, token), spec.base)


# -- what the advisories check -----------------------------------------------------------------

_C0_SPACE = "".join(chr(i) for i in range(0x21))
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 with WHATWG's extra: ``%2e`` counts as ``.``."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        low = seg.lower()
        last = i == len(segments) - 1
        if low in (".", "%2e"):
            if last:
                out.append("")
            continue
        if low in ("..", ".%2e", "%2e.", "%2e%2e"):
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    return "/".join(out)


def location_problem(location: str | None, live: Live, request_path: str = "/login") -> str | None:
    """Why a browser following ``Location`` would leave this server's base_url, or ``None``.

    Resolution as a browser does it (WHATWG URL): leading/trailing C0 controls and spaces
    stripped, tab/CR/LF removed, ``\\`` read as ``/``; then the target must be this origin, the
    resolved path must stay under base_url, and must hold no empty segment (``//``), which a
    second hop could read as a network-path reference (JupyterHub CVE-2026-33709)."""
    if location is None:
        return "no Location header"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in location):
        return "control character in Location"
    loc = location.strip(_C0_SPACE)
    loc = re.sub(r"[\t\r\n]", "", loc).replace("\\", "/")
    scheme = _SCHEME.match(loc)
    if scheme:
        if scheme.group(1).lower() not in ("http", "https"):
            return f"scheme {scheme.group(1)!r}"
        rest = loc[scheme.end():]
        if not rest.startswith("//"):
            return "special-scheme URL without // (browsers read a host there)"
        parts = urllib.parse.urlsplit("http:" + rest)
        if scheme.group(1).lower() != "http" or parts.netloc.lower() != live.host:
            return f"absolute URL to {parts.netloc!r}"
        path = parts.path or "/"
    elif loc.startswith("//"):
        return "network-path reference (//host)"
    elif loc.startswith("/"):
        path = loc
    else:
        directory = request_path.rsplit("/", 1)[0] + "/"
        path = directory + loc
    path = re.split(r"[?#]", path, maxsplit=1)[0]
    resolved = _remove_dot_segments(path)
    if not resolved.startswith(live.base) and resolved + "/" != live.base:
        return f"resolves to {resolved!r}, outside base_url {live.base!r}"
    if "//" in resolved:
        return f"resolves to {resolved!r}, with an empty segment"
    return None


def assert_safe_redirect(reply: Reply, live: Live, request_path: str = "/login") -> None:
    assert 300 <= reply.status < 400, reply
    problem = location_problem(reply.header("Location"), live, request_path)
    assert problem is None, f"{reply.target} -> Location {reply.header('Location')!r}: {problem}"


def assert_no_offsite_redirect(reply: Reply, live: Live, request_path: str = "/login") -> None:
    """Either refused outright (4xx: the request never became a redirect) or redirected
    safely."""
    if 300 <= reply.status < 400:
        assert_safe_redirect(reply, live, request_path)
    else:
        assert 400 <= reply.status < 500, reply


def assert_sandboxed(reply: Reply) -> None:
    """User content runs in an opaque origin: CSP ``sandbox`` without ``allow-same-origin``,
    and no MIME sniffing."""
    csp = reply.csp()
    assert "sandbox" in csp, (reply.target, reply.header("Content-Security-Policy"))
    assert "allow-same-origin" not in csp["sandbox"], reply.header("Content-Security-Policy")
    assert reply.header("X-Content-Type-Options") == "nosniff", reply


def b64_prefix(data: bytes) -> str:
    """The start of ``base64(data)``: what a data: URL embedding the whole file begins with."""
    n = min(len(data), 48) // 3 * 3
    return base64.b64encode(data[:n]).decode()


_EXECUTABLE_SCRIPT_TYPES = frozenset(
    {"", "text/javascript", "application/javascript", "module", "text/ecmascript"}
)
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"})


class _ActiveContent(html.parser.HTMLParser):
    """Collects what a browser would execute: script element bodies (of script types), event
    handler attributes, ``javascript:`` URLs and ``srcdoc`` documents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.active: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            kind = (dict(attrs).get("type") or "").strip().lower()
            self._in_script = kind in _EXECUTABLE_SCRIPT_TYPES
        for name, value in attrs:
            if value is None:
                continue
            low = value.strip().lower()
            if name.startswith("on") or name == "srcdoc" or (
                name in _URL_ATTRS and low.startswith(("javascript:", "data:text/html"))
            ):
                self.active.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.active.append(data)


def active_markers(document: str, markers: Sequence[str]) -> set[str]:
    """The markers that appear in script a browser would run when rendering ``document``."""
    parser = _ActiveContent()
    parser.feed(document)
    parser.close()
    blob = "\n".join(parser.active)
    return {m for m in markers if m in blob}


class Listener:
    """A TCP listener that records every connection (for "no outbound request" checks)."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
