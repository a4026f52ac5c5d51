"""The live checks: declared here (id, severity, title, fix, why), evaluated by the black-box
probes in :mod:`hardened_server.audit.probes`.

Numbers ``2NN`` in each family. They grade any Jupyter server, ours or a stock one, from the
outside: what a browser or an attacker on the network sees.
"""

from __future__ import annotations

from hardened_server.audit.checks import CRITICAL, ERROR, INFO, WARNING, declare
from hardened_server.policy.headers import HSTS_MIN_MAX_AGE

# -- CSP ------------------------------------------------------------------------------------

CSP_MISSING = declare(
    "HS-CSP-201", ERROR, "an HTML response has no Content-Security-Policy",
    fix="send a CSP on every response (hardened-server: csp.<class> in the policy)",
    doc="Without a CSP nothing limits what an HTML injection may load or run.",
    tags=("csp", "headers"),
)
CSP_SCRIPTS_OPEN = declare(
    "HS-CSP-202", ERROR, "the page CSP does not restrict scripts",
    fix="add script-src 'self' (or default-src 'none' with script-src) to the page CSP",
    doc="Stock Jupyter's page CSP is only frame-ancestors and report-uri: CSP Evaluator rates "
    "the missing script-src and object-src HIGH.",
    tags=("csp", "headers"),
)
CSP_UNSAFE_INLINE = declare(
    "HS-CSP-203", ERROR, "the CSP allows inline scripts",
    fix="remove 'unsafe-inline' from script-src; use hashes or nonces for the few inline scripts",
    doc="'unsafe-inline' (without a nonce or hash) lets any HTML injection run script.",
    tags=("csp", "headers"),
)
CSP_EVAL_PAGE = declare(
    "HS-CSP-204", INFO, "application pages allow 'unsafe-eval'",
    fix="hardened-server: routes.unsafe_eval = [] (its default); stock Jupyter: drop "
    "'unsafe-eval' from the page CSP, which costs ~136 JupyterLab plugins there",
    doc="Stock JupyterLab 4 needs 'unsafe-eval' (its settings plugin compiles JSON schemas with "
    "new Function); hardened-server's does not (SECURITY.md, issue #21), so on it this is a "
    "loosening someone configured.",
    tags=("csp", "headers"),
)
CSP_EVAL_ELSEWHERE = declare(
    "HS-CSP-205", WARNING, "'unsafe-eval' outside the application pages",
    fix="remove 'unsafe-eval' from the CSP of errors, files, static and API responses",
    doc="No response other than the JupyterLab page needs eval; anywhere else it only helps an "
    "injection.",
    tags=("csp", "headers"),
)
CSP_OBJECT = declare(
    "HS-CSP-206", WARNING, "the CSP does not block plugins",
    fix="add object-src 'none' (or default-src 'none')",
    doc="object-src falls back to default-src; with neither, <object>/<embed> load anything.",
    tags=("csp", "headers"),
)
CSP_BASE = declare(
    "HS-CSP-207", WARNING, "the CSP has no base-uri",
    fix="add base-uri 'none'",
    doc="An injected <base> re-points every relative script URL of the page.",
    tags=("csp", "headers"),
)
CSP_FRAMING = declare(
    "HS-CSP-208", WARNING, "the page may be framed by any site",
    fix="send frame-ancestors 'none' (or 'self') and X-Frame-Options: DENY",
    doc="Neither frame-ancestors nor X-Frame-Options: clickjacking.",
    tags=("csp", "headers"),
)
CSP_NO_SANDBOX = declare(
    "HS-CSP-209", CRITICAL, "user files are served without a CSP sandbox",
    fix="serve /files with CSP sandbox (no allow-same-origin)",
    doc="An HTML file from /files then runs script in the server's origin with the user's "
    "session (notebook CVE-2018-19351, jupyter_server GHSA-fcw5-x6j4-ccmp).",
    tags=("csp", "files"),
)
CSP_SANDBOX_SAME_ORIGIN = declare(
    "HS-CSP-210", ERROR, "the user-file sandbox keeps the server's origin",
    fix="remove allow-same-origin from the sandbox of /files",
    doc="allow-same-origin gives the sandboxed document the server's origin back.",
    tags=("csp", "files"),
)
CSP_NO_REPORTS = declare(
    "HS-CSP-211", INFO, "CSP violations are not reported",
    fix="add report-uri (hardened-server: headers.csp_report = true)",
    doc="Blocked-script reports are the first sign of an injection attempt.",
    tags=("csp", "headers"),
)

# -- other headers -----------------------------------------------------------------------------

SERVER_VERSION = declare(
    "HS-HDR-201", WARNING, "the Server header gives the version away",
    fix="drop the Server header (hardened-server removes it on every response)",
    doc="TornadoServer/6.x tells an attacker which advisories to try.",
    tags=("headers", "disclosure"),
)
API_VERSION = declare(
    "HS-HDR-202", WARNING, "GET /api tells anonymous clients the server version",
    fix="require login on /api (hardened-server: /api is not in routes.public)",
    doc="jupyter_server's APIVersionHandler answers anyone with its exact version.",
    tags=("headers", "disclosure"),
)
NOSNIFF = declare(
    "HS-HDR-203", WARNING, "a response lacks X-Content-Type-Options: nosniff",
    fix="send X-Content-Type-Options: nosniff on every response",
    doc="Without it a browser may sniff a user's text file as HTML or script.",
    tags=("headers",),
)
CORP = declare(
    "HS-HDR-204", INFO, "API and file responses lack Cross-Origin-Resource-Policy",
    fix="send Cross-Origin-Resource-Policy: same-origin",
    doc="CORP stops other sites from pulling responses into their process (<script>, <img>, "
    "Spectre-style reads).",
    tags=("headers", "xsite"),
)
REFERRER = declare(
    "HS-HDR-205", INFO, "no Referrer-Policy keeps URLs from leaking",
    fix="send Referrer-Policy: same-origin (or no-referrer)",
    doc="Without it, the full URL (with any ?token=) may reach other sites in the Referer.",
    tags=("headers", "tokens"),
)

# -- CORS ------------------------------------------------------------------------------------

CORS_REFLECT_CREDENTIALS = declare(
    "HS-CORS-201", CRITICAL, "any origin may read the API with the user's credentials",
    fix="answer CORS only for an exact allow-list (hardened-server: cors.allow_origins)",
    doc="Access-Control-Allow-Origin reflects https://evil.example together with "
    "Access-Control-Allow-Credentials: true: any site the user visits reads and drives the API "
    "as the user.",
    tags=("cors",),
)
CORS_REFLECT = declare(
    "HS-CORS-202", ERROR, "a foreign origin is reflected into Access-Control-Allow-Origin",
    fix="answer CORS only for an exact allow-list (hardened-server: cors.allow_origins)",
    doc="Stock jupyter_server reflects any Origin on token-authenticated requests: a page that "
    "learnt a token (a pasted URL, a Referer) reads every API response cross-origin.",
    tags=("cors",),
)
CORS_STAR = declare(
    "HS-CORS-203", WARNING, "an authenticated API answers Access-Control-Allow-Origin: *",
    fix="never send '*' on authenticated routes",
    doc="ServerApp.allow_origin='*' also switches jupyter_server's origin and referer checks "
    "off.",
    tags=("cors",),
)
CORS_NULL = declare(
    "HS-CORS-204", ERROR, "Origin: null is allowed",
    fix="never allow the null origin",
    doc="Every sandboxed iframe, data: and file: document sends Origin: null.",
    tags=("cors",),
)

# -- tokens, sessions ------------------------------------------------------------------------

TOKEN_URL = declare(
    "HS-TOKEN-201", ERROR, "the token is accepted in an API URL",
    fix="accept tokens from the Authorization header only (hardened-server: only a page "
    "navigation may carry ?token=, which is exchanged at once)",
    doc="URLs end up in access logs, proxy logs, browser history and Referer headers.",
    tags=("tokens",),
)
TOKEN_FORM = declare(
    "HS-TOKEN-202", ERROR, "the token is accepted in a form body",
    fix="never read the token from request bodies",
    doc="A cross-site HTML form that learnt the token authenticates a POST with it, and stock "
    "skips the XSRF check for token-authenticated requests.",
    tags=("tokens", "xsite"),
)
TOKEN_URL_KEPT = declare(
    "HS-TOKEN-203", INFO, "a URL token stays in the address bar",
    fix="exchange the URL token for a session and redirect to the URL without it",
    doc="The page is served with ?token= still in its URL: it stays in history and, until "
    "the page's own script strips it, in Referers.",
    tags=("tokens",),
)
COOKIE_HTTPONLY = declare(
    "HS-SESSION-201", WARNING, "the session cookie is readable by scripts",
    fix="set HttpOnly on the login cookie",
    doc="Any script injection can then steal the session.",
    tags=("sessions",),
)
COOKIE_SAMESITE = declare(
    "HS-SESSION-202", WARNING, "the session cookie has no SameSite attribute",
    fix="set SameSite=Lax (or Strict) on the login cookie",
    doc="Without SameSite the cookie rides along on cross-site requests (CSRF, cross-site "
    "websocket hijacking) in browsers that do not default to Lax.",
    tags=("sessions", "xsite"),
)
COOKIE_SECURE = declare(
    "HS-SESSION-203", WARNING, "a cookie is sent without Secure over HTTPS",
    fix="set Secure on every cookie of an HTTPS server",
    doc="A non-Secure cookie is also sent over plain HTTP, where anyone on the path reads it.",
    tags=("sessions", "tls"),
)

# -- cross-site, hosts, redirects, paths, websockets, auth, TLS ----------------------------------

XSITE_API = declare(
    "HS-XSITE-201", ERROR, "a cross-site request reads the API with the session cookie",
    fix="refuse cross-site no-cors requests on API routes (Fetch Metadata resource isolation)",
    doc="GET /api/contents with Sec-Fetch-Site: cross-site, Sec-Fetch-Mode: no-cors, "
    "Sec-Fetch-Dest: script and the session cookie was answered with data (XSSI).",
    tags=("xsite",),
)
XSITE_FILES = declare(
    "HS-XSITE-202", ERROR, "a cross-site request reads /files with the session cookie",
    fix="refuse cross-site no-cors requests on /files (Fetch Metadata resource isolation)",
    doc="<script src=\"http://server/files/secret.js\"> on another site ran the user's file "
    "(jupyter_server GHSA-64x5-55rw-9974, notebook CVE-2019-9644).",
    tags=("xsite", "files"),
)
HOST_REBINDING = declare(
    "HS-HOST-201", ERROR, "a foreign Host header is served (DNS rebinding)",
    fix="check Host against an allow-list always (hardened-server: server.public_hostnames)",
    doc="A page on evil.example whose name now resolves to the server is same-origin with it.",
    tags=("hosts",),
)
OPEN_REDIRECT = declare(
    "HS-REDIR-201", ERROR, "a redirect leaves the server's origin",
    fix="only redirect to same-origin paths (never //host, /\\host or a scheme)",
    doc="An open redirect on the login page turns a trusted link into a phishing link "
    "(jupyter_server CVE-2023-39968, CVE-2020-26275).",
    tags=("redirects",),
)
HIDDEN = declare(
    "HS-PATH-201", ERROR, "a hidden directory is served by the contents API",
    fix="refuse hidden files (hardened-server: paths.allow_hidden = false, paths.deny)",
    doc="GET /api/contents/.ssh was answered with a listing.",
    tags=("paths",),
)
TRAVERSAL = declare(
    "HS-PATH-202", CRITICAL, "a path outside the served root is served",
    fix="refuse every '..' segment, encoded or not",
    doc="An encoded '..' in /files or /api/contents reached a file outside the root.",
    tags=("paths",),
)
WS_ORIGIN = declare(
    "HS-WS-201", ERROR, "a kernel websocket accepts a foreign Origin with the session cookie",
    fix="check Origin on websocket handshakes (cross-site websocket hijacking)",
    doc="A page on any site could open the kernel's channels with the user's cookie: remote "
    "code execution.",
    tags=("websockets", "xsite"),
)
ANONYMOUS_API = declare(
    "HS-AUTH-201", CRITICAL, "the API answers without credentials",
    fix="require a token or password",
    doc="GET /api/contents without a token or cookie was answered: anyone who reaches the "
    "port runs code.",
    tags=("auth",),
)
NO_HSTS = declare(
    "HS-TLS-201", WARNING, "HTTPS responses carry no Strict-Transport-Security",
    fix=f"send Strict-Transport-Security with max-age >= {HSTS_MIN_MAX_AGE}",
    doc="Without HSTS the first plain-HTTP request can be intercepted.",
    tags=("tls", "headers"),
)
SHORT_HSTS = declare(
    "HS-TLS-202", WARNING, "Strict-Transport-Security max-age is shorter than a year",
    fix=f"max-age={HSTS_MIN_MAX_AGE} or more",
    doc="Browsers forget a short policy between visits.",
    tags=("tls", "headers"),
)
HIDDEN_ORACLE = declare(
    "HS-PATH-203", WARNING, "the existence of hidden or denied paths is revealed",
    fix="apply the hidden-file rule and paths.deny to /api/resolvePath and /view as well",
    doc="GET /api/resolvePath?path=.ssh answered with the path while a missing hidden name "
    "resolved to nothing: an authenticated page (or a script with the session) can map "
    "which secrets exist (.ssh, .aws, .env) although the contents API hides them "
    "(GHSA-q874-g24w-4q9g: hidden files unlisted but reachable).",
    tags=("paths", "disclosure"),
)
METRICS_PUBLIC = declare(
    "HS-METRICS-201", WARNING, "/metrics answers without credentials",
    fix="keep /metrics behind login (hardened-server: not in routes.public; stock: "
    "ServerApp.authenticate_prometheus = True)",
    doc="Prometheus metrics list handlers, request counts, kernels and user activity.",
    tags=("metrics", "disclosure"),
)
