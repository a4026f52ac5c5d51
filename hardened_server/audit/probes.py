"""Live audit: black-box probes of a running Jupyter server (ours or a stock one) over real HTTP.

Everything goes to the one URL given (``--url``) and nowhere else; the "foreign" origin and host
the probes claim (``https://evil.example``) are only header values. The probes **create nothing**
on the server except one kernel for the websocket check, which they delete again; the path probes
are GETs. A form-body token is tried on ``POST /api/kernels/<random id>/interrupt``: an
authenticated request gets 404 (no such kernel), a refused one 403, and nothing changes either
way.

The token comes from ``JUPYTER_TOKEN`` or ``--token-file``, never from the command line (argv is
world-readable in ``/proc`` and lands in shell history), and is replaced by ``<token>`` in every
URL, evidence string and report.

Requests are made with :mod:`http.client` directly so that paths go out byte for byte as written
(``/files/%2e%2e/``, ``//evil.example/``), no redirect is followed and no cookie is kept unless a
probe keeps it. The websocket handshake uses the ``websocket-client`` package when it is
installed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from hardened_server.audit.checks import Check, Finding, Location, registry, sort_findings
from hardened_server.audit.checks import live as L
from hardened_server.policy import csp as csp_mod
from hardened_server.policy.headers import HSTS_MIN_MAX_AGE

EVIL_ORIGIN = "https://evil.example"
EVIL_HOST = "evil.example"
MAX_BODY = 256 * 1024

NAVIGATION = {
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-User": "?1",
    "Accept": "text/html,application/xhtml+xml",
}
CROSS_SITE_SCRIPT = {
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "no-cors",
    "Sec-Fetch-Dest": "script",
    "Accept": "*/*",
}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}

REDIRECT_PAYLOADS = (
    "//evil.example/",
    "/\\evil.example/",
    "https://evil.example/",
    "///evil.example/",
    "/%2F%2Fevil.example/",
    "\\\\evil.example/",
    "/\t/evil.example/",
    "https:evil.example/",
)
# Only paths a browser can be made to request (it sends a backslash in an http(s) path as '/').
RAW_REDIRECT_PATHS = ("//evil.example/", "/%2F%2Fevil.example/", "//evil.example/%2e%2e")
UP = "%2e%2e/" * 12
TRAVERSAL_PATHS = (
    ("files", f"files/{UP}etc/passwd"),
    ("files", "files/" + "..%2f" * 12 + "etc/passwd"),
    ("api", "api/contents/" + "%2E%2E/" * 12 + "etc/passwd"),
    ("api", "api/contents/%2E%2E"),
)


class LiveAuditError(RuntimeError):
    """The target cannot be audited (unreachable, not HTTP)."""


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    def all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    @property
    def is_html(self) -> bool:
        return "html" in (self.header("Content-Type") or "").lower()


@dataclass
class ProbeRecord:
    name: str
    method: str
    path: str
    status: int | None
    ms: float
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "path": self.path,
                "status": self.status, "ms": round(self.ms, 1), "note": self.note}


@dataclass
class LiveResult:
    url: str
    findings: list[Finding]
    probes: list[ProbeRecord]
    notes: list[str]
    seconds: float
    server: dict[str, Any] = field(default_factory=dict)


@dataclass
class Cookie:
    name: str
    value: str
    attrs: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Cookie:
        parts = [p.strip() for p in header.split(";")]
        name, _, value = parts[0].partition("=")
        attrs: dict[str, str] = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            if k:
                attrs[k.strip().lower()] = v.strip()
        return cls(name.strip(), value.strip(), attrs)


class Client:
    """One request per connection; paths are sent exactly as given."""

    def __init__(self, url: str, *, timeout: float = 8.0, ca_file: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LiveAuditError(f"not an http(s) URL: {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.base = (parts.path or "/").rstrip("/") + "/"
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.netloc = host if self.port == default else f"{host}:{self.port}"
        self.origin = f"{self.scheme}://{self.netloc}"
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None
        if self.scheme == "https":
            self.context = ssl.create_default_context(cafile=ca_file)

    def url(self, path: str) -> str:
        return self.origin + self.path(path)

    def path(self, path: str) -> str:
        if path.startswith("//") or path.startswith("/\\"):
            return path  # raw paths are sent as written (open-redirect probes)
        return self.base + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        *,
        host: str | None = None,
    ) -> Response:
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.putrequest(method, self.path(path), skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host or self.netloc)
            conn.putheader("User-Agent", "hardened-server-audit")
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read(MAX_BODY)
            return Response(resp.status, resp.reason, list(resp.getheaders()), data)
        finally:
            conn.close()


# ---------------------------------------------------------------------------------------------


class LiveAudit:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        ca_file: str | None = None,
        timeout: float = 8.0,
        websocket: bool = True,
    ) -> None:
        self.client = Client(url, timeout=timeout, ca_file=ca_file)
        self.token = token or None
        self.ca_file = ca_file
        self.websocket = websocket
        self.pending: dict[tuple[str, str], tuple[Check, list[str], Location | None]] = {}
        self.probes: list[ProbeRecord] = []
        self.notes: list[str] = []
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[tuple[str, Cookie]] = []
        self.server_values: set[str] = set()
        self.sample_file: str | None = None
        registry()

    # -- plumbing ------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        if self.token:
            text = text.replace(self.token, "<token>").replace(quote(self.token), "<token>")
        return text

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def send(
        self,
        name: str,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        *,
        host: str | None = None,
    ) -> Response | None:
        start = time.perf_counter()
        try:
            resp = self.client.request(method, path, headers, body, host=host)
        except (OSError, http.client.HTTPException) as exc:
            self.probes.append(ProbeRecord(name, method, self.redact(path), None,
                                           (time.perf_counter() - start) * 1000,
                                           f"{type(exc).__name__}: {exc}"))
            return None
        self.probes.append(ProbeRecord(name, method, self.redact(path), resp.status,
                                       (time.perf_counter() - start) * 1000))
        server = resp.header("Server")
        if server:
            self.server_values.add(server)
        for value in resp.all("Set-Cookie"):
            self.set_cookies.append((self.redact(path), Cookie.parse(value)))
        return resp

    def report(self, chk: Check, evidence: str, path: str | None = None, *,
               route: str | None = None) -> None:
        """Record a finding. With ``route``, findings of one check with the same detail are
        collapsed into one that lists every route (a missing header on six routes is one
        finding naming six routes, not six findings)."""
        evidence = self.redact(evidence)
        key = (chk.id, evidence)
        if key not in self.pending:
            loc = Location(url=self.redact(self.client.url(path))) if path is not None else None
            self.pending[key] = (chk, [], loc)
        if route is not None and route not in self.pending[key][1]:
            self.pending[key][1].append(self.redact(route))

    def _findings(self) -> list[Finding]:
        out = []
        for (_id, evidence), (chk, routes, loc) in self.pending.items():
            text = f"{', '.join(routes)}: {evidence}" if routes else evidence
            out.append(chk.finding(text, loc))
        return out

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> LiveResult:
        start = time.perf_counter()
        first = self.send("reachability", "GET", "/")
        if first is None:
            raise LiveAuditError(
                f"cannot reach {self.client.origin}: " + (self.probes[-1].note if self.probes
                                                          else "no answer")
            )
        self.probe_anonymous()
        if not self.token:
            self.notes.append("no token (JUPYTER_TOKEN or --token-file): authenticated probes "
                              "skipped")
        self.probe_pages()
        self.probe_api_headers()
        self.probe_files_headers()
        self.probe_static()
        self.probe_cors()
        self.probe_token_channels()
        self.probe_login_cookie()
        self.probe_cross_site()
        self.probe_host()
        self.probe_redirects()
        self.probe_paths()
        if self.websocket:
            self.probe_websocket()
        self.probe_disclosure()
        self.probe_tls_cookies()
        return LiveResult(
            url=self.client.origin + self.client.base,
            findings=sort_findings(self._findings()),
            probes=self.probes,
            notes=self.notes,
            seconds=time.perf_counter() - start,
            server={"server_headers": sorted(self.server_values)},
        )

    # -- probes --------------------------------------------------------------------------------

    def probe_anonymous(self) -> None:
        r = self.send("version disclosure", "GET", "api")
        if r is not None and r.status == 200:
            doc = r.json()
            if isinstance(doc, dict) and "version" in doc:
                self.report(L.API_VERSION, f"GET /api without credentials: 200 {{\"version\": "
                            f"{doc['version']!r}}}", "api")
        r = self.send("anonymous metrics", "GET", "metrics")
        if r is not None and r.status == 200 and b"# TYPE" in r.body:
            self.report(L.METRICS_PUBLIC, f"GET /metrics without credentials: 200 "
                        f"({len(r.body)} bytes of Prometheus metrics)", "metrics")
        r = self.send("anonymous API", "GET", "api/contents")
        if r is not None and r.status == 200 and isinstance(r.json(), dict):
            self.report(L.ANONYMOUS_API, "GET /api/contents without token or cookie: 200 with "
                        "a directory listing", "api/contents")

    def check_headers(self, r: Response, path: str, *, page: bool, html: bool | None = None,
                      label: str) -> None:
        is_html = r.is_html if html is None else html
        csp_values = r.all("Content-Security-Policy")
        route = f"{label} ({r.status})"
        nosniff = (r.header("X-Content-Type-Options") or "").strip().lower()
        if nosniff != "nosniff":
            self.report(L.NOSNIFF, f"X-Content-Type-Options {r.header('X-Content-Type-Options')!r}",
                        path, route=route)
        rp = (r.header("Referrer-Policy") or "").strip().lower()
        if rp in ("", "unsafe-url", "no-referrer-when-downgrade", "origin",
                  "origin-when-cross-origin"):
            self.report(L.REFERRER, f"Referrer-Policy {r.header('Referrer-Policy')!r}", path,
                        route=route)
        if self.client.scheme == "https":
            self.check_hsts(r, path, route)
        if not is_html:
            return
        directives: dict[str, tuple[str, ...]] = {}
        if not csp_values:
            self.report(L.CSP_MISSING, "no Content-Security-Policy header", path, route=route)
        else:
            directives = csp_mod.parse(csp_values[0])
            text = csp_values[0]
            scripts = csp_mod.effective(directives, "script-src")
            if scripts is None:
                self.report(L.CSP_SCRIPTS_OPEN, f"CSP {text!r} has neither script-src nor "
                            "default-src", path, route=route)
            else:
                if "'unsafe-inline'" in scripts and not csp_mod.has_nonce_or_hash(scripts):
                    self.report(L.CSP_UNSAFE_INLINE, f"script-src {' '.join(scripts)}", path,
                                route=route)
                if "'unsafe-eval'" in scripts:
                    chk = L.CSP_EVAL_PAGE if page and r.status < 400 else L.CSP_EVAL_ELSEWHERE
                    self.report(chk, f"script-src {' '.join(scripts)}", path, route=route)
            objects = csp_mod.effective(directives, "object-src")
            if objects != ("'none'",):
                self.report(L.CSP_OBJECT, "object-src "
                            f"{' '.join(objects) if objects else '(not set, no default-src)'}",
                            path, route=route)
            if "base-uri" not in directives:
                self.report(L.CSP_BASE, f"CSP {text!r} has no base-uri", path, route=route)
            if "report-uri" not in directives and "report-to" not in directives:
                self.report(L.CSP_NO_REPORTS, "CSP has no report-uri or report-to", path,
                            route=route)
        if "frame-ancestors" not in directives and not r.header("X-Frame-Options"):
            self.report(L.CSP_FRAMING, "neither CSP frame-ancestors nor X-Frame-Options", path,
                        route=route)

    def check_hsts(self, r: Response, path: str, route: str) -> None:
        value = r.header("Strict-Transport-Security")
        if not value:
            self.report(L.NO_HSTS, "no Strict-Transport-Security", path, route=route)
            return
        for part in value.split(";"):
            k, _, v = part.strip().partition("=")
            if k.lower() == "max-age":
                try:
                    age = int(v.strip().strip('"'))
                except ValueError:
                    age = 0
                if age < HSTS_MIN_MAX_AGE:
                    self.report(L.SHORT_HSTS, f"Strict-Transport-Security {value!r}", path,
                                route=route)

    def probe_pages(self) -> None:
        r = self.send("login page", "GET", "login", NAVIGATION)
        if r is not None:
            self.check_headers(r, "login", page=True, html=True, label="GET /login")
        if self.token:
            for page in ("lab", "tree"):
                r = self.send("application page", "GET", page, {**NAVIGATION, **self.auth()})
                if r is not None and r.status != 404:
                    self.check_headers(r, page, page=True, html=True, label=f"GET /{page}")
                    break
        missing = f"hs-audit-no-such-page-{uuid.uuid4().hex[:8]}"
        r = self.send("404 page", "GET", missing, {**NAVIGATION, **self.auth()})
        if r is not None:
            self.check_headers(r, missing, page=False, html=True, label="GET /<missing> 404")

    def probe_api_headers(self) -> None:
        if not self.token:
            return
        r = self.send("API headers", "GET", "api/status", {**SAME_ORIGIN, **self.auth()})
        if r is None:
            return
        self.check_headers(r, "api/status", page=False, html=False, label="GET /api/status")
        if not r.header("Cross-Origin-Resource-Policy"):
            self.report(L.CORP, "no Cross-Origin-Resource-Policy", "api/status",
                        route=f"GET /api/status ({r.status})")
        listing = self.send("root listing", "GET", "api/contents", {**SAME_ORIGIN, **self.auth()})
        if listing is not None and listing.status == 200:
            doc = listing.json() or {}
            for item in doc.get("content") or []:
                name = str(item.get("name", ""))
                if item.get("type") == "file" and not name.startswith("."):
                    self.sample_file = name
                    break

    def probe_files_headers(self) -> None:
        if not self.token:
            return
        name = self.sample_file or f"hs-audit-missing-{uuid.uuid4().hex[:8]}.html"
        path = "files/" + quote(name)
        headers = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
                   "Sec-Fetch-Dest": "iframe", "Referer": self.client.url("lab"), **self.auth()}
        r = self.send("user file", "GET", path, headers)
        if r is None:
            return
        where = f"GET /files/{name} ({r.status})"
        self.check_headers(r, path, page=False, html=False, label=f"GET /files/{name}")
        csp = r.header("Content-Security-Policy")
        directives = csp_mod.parse(csp) if csp else {}
        if "sandbox" not in directives:
            shown = f"CSP {csp!r} has no sandbox" if csp else "no Content-Security-Policy"
            self.report(L.CSP_NO_SANDBOX, f"{where}: {shown}", path)
        elif "allow-same-origin" in directives["sandbox"]:
            self.report(L.CSP_SANDBOX_SAME_ORIGIN, f"{where}: sandbox "
                        f"{' '.join(directives['sandbox'])}", path)
        if not r.header("Cross-Origin-Resource-Policy"):
            self.report(L.CORP, "no Cross-Origin-Resource-Policy", path, route=where)

    def probe_static(self) -> None:
        r = self.send("static asset", "GET", "static/favicon.ico")
        if r is not None:
            self.check_headers(r, "static/favicon.ico", page=False, html=False,
                               label="GET /static/favicon.ico")

    def _check_cors(self, r: Response | None, path: str, how: str, *, credentialed: bool) -> None:
        if r is None:
            return
        acao = r.header("Access-Control-Allow-Origin")
        acac = (r.header("Access-Control-Allow-Credentials") or "").strip().lower() == "true"
        if acao is None:
            return
        if acao.strip() == EVIL_ORIGIN:
            evidence = (f"{how}: Origin {EVIL_ORIGIN} -> Access-Control-Allow-Origin {acao}"
                        + (", Access-Control-Allow-Credentials: true" if acac else ""))
            self.report(L.CORS_REFLECT, evidence, path)
            if acac and credentialed:
                self.report(L.CORS_REFLECT_CREDENTIALS, evidence, path)
        elif acao.strip() == "*" and credentialed:
            self.report(L.CORS_STAR, f"{how}: Access-Control-Allow-Origin *", path)

    def probe_cors(self) -> None:
        evil = {"Origin": EVIL_ORIGIN, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors",
                "Sec-Fetch-Dest": "empty"}
        if self.token:
            r = self.send("CORS (token header)", "GET", "api/status", {**evil, **self.auth()})
            self._check_cors(r, "api/status", "GET /api/status with the token header",
                             credentialed=True)
            path = "api/status?" + urlencode({"token": self.token})
            r = self.send("CORS (URL token)", "GET", path, evil)
            self._check_cors(r, path, "GET /api/status?token=<token>", credentialed=True)
            r = self.send("CORS (null origin)", "GET", "api/status",
                          {**evil, "Origin": "null", **self.auth()})
            if r is not None and (r.header("Access-Control-Allow-Origin") or "").strip() == "null":
                self.report(L.CORS_NULL, "GET /api/status with Origin: null -> "
                            "Access-Control-Allow-Origin: null", "api/status")
        pre = {**evil, "Access-Control-Request-Method": "GET",
               "Access-Control-Request-Headers": "authorization"}
        r = self.send("CORS preflight", "OPTIONS", "api/contents", pre)
        self._check_cors(r, "api/contents", "OPTIONS /api/contents preflight", credentialed=False)
        r = self.send("CORS (anonymous)", "GET", "api/status", evil)
        self._check_cors(r, "api/status", "GET /api/status without credentials",
                         credentialed=False)

    def probe_token_channels(self) -> None:
        if not self.token:
            return
        baseline = self.send("API without token", "GET", "api/contents")
        path = "api/contents?" + urlencode({"token": self.token})
        r = self.send("token in API URL", "GET", path)
        if (
            r is not None
            and r.status == 200
            and isinstance(r.json(), dict)
            and (baseline is None or baseline.status != 200)
        ):
            self.report(L.TOKEN_URL, "GET /api/contents?token=<token> (no header, no cookie): "
                        "200 with the root listing", path)
        kernel = str(uuid.uuid4())
        target = f"api/kernels/{kernel}/interrupt"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        anon = self.send("form POST without token", "POST", target, form, b"x=1")
        r = self.send("token in form body", "POST", target, form,
                      urlencode({"token": self.token}).encode())
        if (
            r is not None
            and r.status not in (401, 403)
            and not 300 <= r.status < 400
            and (anon is None or anon.status != r.status)
        ):
            self.report(L.TOKEN_FORM, f"POST /api/kernels/<random>/interrupt with body "
                        f"token=<token> and no header: {r.status} (without it: "
                        f"{anon.status if anon else '?'}): the token authenticated the request",
                        target)

    def probe_login_cookie(self) -> None:
        if not self.token:
            return
        for page in ("lab", "tree"):
            path = f"{page}?" + urlencode({"token": self.token})
            r = self.send("URL-token login", "GET", path, NAVIGATION)
            if r is None or r.status == 404:
                continue
            self._keep_cookies(r)
            if r.status == 200:
                self.report(L.TOKEN_URL_KEPT, f"GET /{page}?token=<token> as a navigation: 200, "
                            "the page is served with the token in its URL", path)
            break
        if not self._login_cookie_names():
            self._password_form_login()
        if not self._login_cookie_names():
            self.notes.append("no session cookie could be obtained (URL-token navigation and "
                              "the login form both refused): cookie probes skipped")

    def _keep_cookies(self, r: Response) -> None:
        for value in r.all("Set-Cookie"):
            c = Cookie.parse(value)
            if c.value and c.attrs.get("max-age") != "0" and "1970" not in c.attrs.get(
                "expires", ""
            ):
                self.cookies[c.name] = c.value

    def _login_cookie_names(self) -> list[str]:
        return [n for n in self.cookies if not n.startswith("_xsrf")]

    def _password_form_login(self) -> None:
        r = self.send("login form", "GET", "login", NAVIGATION)
        if r is None:
            return
        self._keep_cookies(r)
        xsrf = self.cookies.get("_xsrf", "")
        body = urlencode({"_xsrf": xsrf, "password": self.token or ""}).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.client.origin,
            "Referer": self.client.url("login"),
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
            **self.cookie_header(),
        }
        r = self.send("login form POST", "POST", "login", headers, body)
        if r is not None:
            self._keep_cookies(r)

    def probe_cross_site(self) -> None:
        if not self._login_cookie_names():
            return
        cookie = self.cookie_header()
        base = self.send("cookie read (same-origin)", "GET", "api/contents",
                         {**SAME_ORIGIN, **cookie})
        if base is None or base.status != 200:
            self.notes.append("the session cookie does not authenticate a same-origin API read "
                              f"({base.status if base else 'no answer'}): cross-site probes "
                              "skipped")
            return
        r = self.send("cross-site script read of /api", "GET", "api/contents",
                      {**CROSS_SITE_SCRIPT, **cookie})
        if r is not None and r.status == 200:
            self.report(L.XSITE_API, "GET /api/contents with Sec-Fetch-Site: cross-site, "
                        "Sec-Fetch-Mode: no-cors, Sec-Fetch-Dest: script and the session cookie: "
                        f"200 ({len(r.body)} bytes)", "api/contents")
        # the same cross-site request with the credentials a page could add: none but the cookie
        r2 = self.send("CORS (session cookie)", "GET", "api/status",
                       {"Origin": EVIL_ORIGIN, "Sec-Fetch-Site": "cross-site",
                        "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", **cookie})
        self._check_cors(r2, "api/status", "GET /api/status with the session cookie",
                         credentialed=True)
        if not self.sample_file:
            self.notes.append("no file in the served root: cross-site /files probe skipped")
            return
        path = "files/" + quote(self.sample_file)
        same = self.send("cookie file read (same-origin)", "GET", path,
                         {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
                          "Sec-Fetch-Dest": "iframe", "Referer": self.client.url("lab"),
                          **cookie})
        if same is None or same.status != 200:
            self.notes.append("the session cookie does not read /files same-origin "
                              f"({same.status if same else 'no answer'}): cross-site /files "
                              "probe skipped")
            return
        # <script src=".../files/x"> on another site: with the browser's default Referer, and
        # with the page's <meta name="referrer" content="no-referrer">.
        for referer in ({"Referer": EVIL_ORIGIN + "/"}, {}):
            r = self.send("cross-site script read of /files", "GET", path,
                          {**CROSS_SITE_SCRIPT, **referer, **cookie})
            if r is not None and r.status == 200:
                how = "Referer " + referer["Referer"] if referer else "no Referer"
                self.report(L.XSITE_FILES, f"GET /files/{self.sample_file} with Sec-Fetch-Site: "
                            "cross-site, Sec-Fetch-Mode: no-cors, Sec-Fetch-Dest: script, "
                            f"{how} and the session cookie: 200 ({len(r.body)} bytes)", path)
                break

    def probe_host(self) -> None:
        headers = self.auth() or self.cookie_header()
        r = self.send("DNS rebinding", "GET", "api/status", {**SAME_ORIGIN, **headers},
                      host=EVIL_HOST)
        if r is not None and r.status == 200:
            self.report(L.HOST_REBINDING, f"GET /api/status with Host: {EVIL_HOST}: 200",
                        "api/status")

    def _leaves_origin(self, request_path: str, location: str) -> bool:
        # Browsers drop tabs and newlines from URLs and read '\' as '/' in http(s) URLs.
        cleaned = location.strip().replace("\t", "").replace("\n", "").replace("\r", "")
        cleaned = cleaned.replace("\\", "/")
        target = urlsplit(urljoin(self.client.url(request_path), cleaned))
        if target.scheme not in ("http", "https"):
            return True
        return target.netloc.lower() != self.client.netloc.lower() or (
            target.scheme != self.client.scheme
        )

    def probe_redirects(self) -> None:
        creds = self.cookie_header() if self._login_cookie_names() else self.auth()
        for payload in REDIRECT_PAYLOADS:
            path = "login?" + urlencode({"next": payload})
            r = self.send("open redirect (login next)", "GET", path, {**NAVIGATION, **creds})
            loc = r.header("Location") if r is not None else None
            if r is not None and 300 <= r.status < 400 and loc and self._leaves_origin(path, loc):
                self.report(L.OPEN_REDIRECT, f"GET /login?next={payload}: {r.status} "
                            f"Location: {loc}", path)
        for raw in RAW_REDIRECT_PATHS:
            r = self.send("open redirect (path)", "GET", raw, NAVIGATION)
            loc = r.header("Location") if r is not None else None
            if r is not None and 300 <= r.status < 400 and loc and self._leaves_origin(raw, loc):
                self.report(L.OPEN_REDIRECT, f"GET {raw}: {r.status} Location: {loc}", raw)

    def probe_paths(self) -> None:
        if not self.token:
            return
        r = self.send("hidden directory", "GET", "api/contents/.ssh",
                      {**SAME_ORIGIN, **self.auth()})
        if r is not None and r.status == 200:
            self.report(L.HIDDEN, "GET /api/contents/.ssh: 200 "
                        f"({len((r.json() or {}).get('content') or [])} entries)",
                        "api/contents/.ssh")
        self.probe_existence_oracle()
        for kind, path in TRAVERSAL_PATHS:
            r = self.send(f"traversal ({kind})", "GET", path, {**SAME_ORIGIN, **self.auth()})
            if r is None or r.status != 200:
                continue
            text = r.body.decode("utf-8", "replace")
            if "etc/passwd" in path and "root:" not in text:
                continue
            self.report(L.TRAVERSAL, f"GET /{path}: 200 ({len(r.body)} bytes from outside the "
                        "root)", path)

    def probe_existence_oracle(self) -> None:
        """``/api/resolvePath`` answers whether a path exists; compare a real hidden directory
        (``.ssh``, denied by the shipped policy) with a hidden name that cannot exist."""
        headers = {**SAME_ORIGIN, **self.auth()}
        control_name = f".hs-audit-{uuid.uuid4().hex[:12]}"
        control = self.send("existence oracle (control)", "GET",
                            "api/resolvePath?" + urlencode({"path": control_name}), headers)
        if control is None or control.status != 200:
            return
        if (control.json() or {}).get("resolved"):
            return  # everything resolves: no oracle
        path = "api/resolvePath?" + urlencode({"path": ".ssh"})
        r = self.send("existence oracle (.ssh)", "GET", path, headers)
        if r is not None and r.status == 200 and (r.json() or {}).get("resolved"):
            body = r.body.decode("utf-8", "replace")[:120]
            self.report(L.HIDDEN_ORACLE, f"GET /{path}: 200 {body} (a missing hidden name "
                        "resolves to nothing)", path)

    def probe_websocket(self) -> None:
        if not self.token:
            return
        if not self._login_cookie_names():
            self.notes.append("websocket origin probe skipped: no session cookie")
            return
        try:
            import websocket  # websocket-client
        except ImportError:
            self.notes.append("websocket origin probe skipped: websocket-client is not installed")
            return
        own = {"Origin": self.client.origin, "Referer": self.client.url("lab"), **SAME_ORIGIN,
               "Content-Type": "application/json", **self.auth()}
        r = self.send("start kernel (websocket probe)", "POST", "api/kernels", own, b"{}")
        if r is None or r.status not in (200, 201):
            self.notes.append("websocket origin probe skipped: no kernel could be started "
                              f"({r.status if r else 'no answer'})")
            return
        kernel_id = (r.json() or {}).get("id")
        try:
            if not kernel_id:
                return
            scheme = "wss" if self.client.scheme == "https" else "ws"
            path = self.client.path(f"api/kernels/{kernel_id}/channels")
            url = f"{scheme}://{self.client.netloc}{path}"
            cookie = self.cookie_header()["Cookie"]
            own_status = self._ws_handshake(websocket, url, self.client.origin, cookie,
                                            "same-origin")
            evil_status = self._ws_handshake(websocket, url, EVIL_ORIGIN, cookie, "cross-site")
            if evil_status == 101:
                self.report(L.WS_ORIGIN, f"websocket /api/kernels/<id>/channels with Origin "
                            f"{EVIL_ORIGIN} and the session cookie: 101 Switching Protocols",
                            f"api/kernels/{kernel_id}/channels")
            if own_status != 101:
                self.notes.append(f"websocket handshake with the server's own origin: "
                                  f"{own_status} (the origin probe may not be meaningful)")
        finally:
            if kernel_id:
                self.send("delete kernel", "DELETE", f"api/kernels/{kernel_id}",
                          {**own, "Content-Type": "text/plain"})

    def _ws_handshake(self, websocket: Any, url: str, origin: str, cookie: str,
                      site: str) -> int | None:
        start = time.perf_counter()
        sslopt = {"ca_certs": self.ca_file} if self.ca_file else None
        status: int | None = None
        note = ""
        try:
            ws = websocket.create_connection(
                url,
                timeout=self.client.timeout,
                origin=origin,
                cookie=cookie,
                header=[f"Sec-Fetch-Site: {site}", "Sec-Fetch-Mode: websocket",
                        "Sec-Fetch-Dest: websocket"],
                sslopt=sslopt,
                suppress_origin=False,
            )
            status = 101
            with contextlib.suppress(Exception):
                ws.close()
        except websocket.WebSocketBadStatusException as exc:
            status = int(getattr(exc, "status_code", 0) or 0)
        except (OSError, websocket.WebSocketException) as exc:
            note = f"{type(exc).__name__}: {exc}"
        self.probes.append(ProbeRecord(f"websocket handshake ({site})", "GET",
                                       self.redact(urlsplit(url).path), status,
                                       (time.perf_counter() - start) * 1000, note))
        return status

    def probe_disclosure(self) -> None:
        for value in sorted(self.server_values):
            if any(ch.isdigit() for ch in value):
                self.report(L.SERVER_VERSION, f"Server: {value}", "")

    def probe_tls_cookies(self) -> None:
        seen: set[str] = set()
        for path, c in self.set_cookies:
            if c.name in seen or not c.value:
                continue
            seen.add(c.name)
            is_login = not c.name.startswith("_xsrf")
            if is_login and "httponly" not in c.attrs:
                self.report(L.COOKIE_HTTPONLY, f"Set-Cookie {c.name} (from {path}) has no "
                            "HttpOnly", path)
            samesite = c.attrs.get("samesite", "").lower()
            if is_login and samesite not in ("lax", "strict"):
                self.report(L.COOKIE_SAMESITE, f"Set-Cookie {c.name} (from {path}): SameSite "
                            f"{c.attrs.get('samesite', '(absent)')}", path)
            if self.client.scheme == "https" and "secure" not in c.attrs:
                self.report(L.COOKIE_SECURE, f"Set-Cookie {c.name} (from {path}) has no Secure "
                            "over HTTPS", path)


def run_live(
    url: str,
    token: str | None,
    *,
    ca_file: str | None = None,
    timeout: float = 8.0,
    websocket: bool = True,
) -> LiveResult:
    return LiveAudit(url, token, ca_file=ca_file, timeout=timeout, websocket=websocket).run()
