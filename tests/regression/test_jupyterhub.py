"""JupyterHub advisories that apply to a single-user server (research §3.4).

The hub's own routes (``/hub/...``) do not exist here; each test replays the request shape
against the hardened-server route that plays the same part (``/login`` for the hub login,
``/api/contents`` and the other state-changing routes for the admin API).
CVE-2024-41942 (an ``admin:users`` scope escalation) is hub-only and not applicable.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import (
    Live,
    Reply,
    Spec,
    assert_safe_redirect,
    launched,
)
from tests.support.tls import make_pki

pytestmark = pytest.mark.live


def lay_out(root: Path, workdir: Path) -> None:
    (root / "visible").mkdir()
    (root / "visible" / "a.txt").write_text("hello\n")
    (root / "visible" / "n.ipynb").write_text(json.dumps(
        {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    ))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Live]]:
    specs = (Spec(setup=lay_out), Spec(base="/jp/", setup=lay_out))
    with launched(tmp_path_factory, *specs, name="hub") as (main, jp):
        yield {"main": main, "jp": jp}


@pytest.fixture(scope="module")
def main(servers: dict[str, Live]) -> Live:
    return servers["main"]


@pytest.fixture(params=["main", "jp"], ids=["base=/", "base=/jp/"])
def based(request: pytest.FixtureRequest, servers: dict[str, Live]) -> Live:
    return servers[request.param]


def follow_login(live: Live, value: str) -> None:
    target = live.url("/login") + "?next=" + value
    assert_safe_redirect(live.raw("GET", target, auth=True), live, live.url("/login"))


#: Every state-changing request a page could forge with the victim's cookie.
STATE_CHANGING = (
    ("POST", "/api/contents/visible", {"type": "file"}),
    ("PUT", "/api/contents/visible/forged.txt", {"type": "file", "format": "text",
                                                  "content": "forged"}),
    ("PATCH", "/api/contents/visible/a.txt", {"path": "visible/renamed.txt"}),
    ("DELETE", "/api/contents/visible/a.txt", None),
    ("POST", "/api/contents/visible/n.ipynb/checkpoints", None),
    ("POST", "/api/contents/visible/n.ipynb/trust", None),
    ("POST", "/api/kernels", {"name": "python3"}),
    ("POST", "/api/sessions", {"path": "x.ipynb", "type": "notebook",
                               "kernel": {"name": "python3"}}),
    ("PATCH", "/api/config/notebook", {"forged": True}),
    ("PATCH", "/api/me", {"avatar_url": "https://evil.example/pixel.png"}),
    ("POST", "/nbconvert/html", {"content": {"cells": [], "metadata": {}, "nbformat": 4,
                                             "nbformat_minor": 5}}),
    ("POST", "/api/events", {"schema_id": "x", "version": "1", "data": {}}),
)


def forged(live: Live, method: str, rel: str, payload: object, cookie: str,
           headers: dict[str, str] | None = None, query: str = "") -> int:
    body = None if payload is None else json.dumps(payload)
    reply = live.raw(method, live.url(rel) + query, cookie=cookie, body=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
    return reply.status


def assert_untouched(live: Live) -> None:
    assert (live.root / "visible" / "a.txt").read_text() == "hello\n"
    assert not (live.root / "visible" / "forged.txt").exists()
    assert not (live.root / "visible" / "renamed.txt").exists()
    assert not [p for p in (live.root / "visible").iterdir() if p.name.startswith("untitled")]
    assert live.api("GET", "/api/kernels").json() == []


# -- CVE-2019-10255 (hub) -------------------------------------------------------------------------


def test_ghsa_rv62_4pmj_xw6h_hub_login_next_double_slash(based: Live) -> None:
    """GHSA-rv62-4pmj-xw6h / CVE-2019-10255 (JupyterHub 0.9.6, jupyterhub#1908):
    ``/hub/login?next=%2f%2fbaddomain.com`` redirected off-site. The same shapes (lower-case
    escapes, as the hub report had them) against ``/login``."""
    for value in ("%2f%2fbaddomain.com", "%2f%5cbaddomain.com", "%2f%2f%2fbaddomain.com",
                  "%5c%5cbaddomain.com"):
        follow_login(based, value)


# -- CVE-2020-36191 -----------------------------------------------------------------------------


def test_ghsa_7xx3_qp5w_fw96_cookie_requests_without_xsrf_refused(main: Live) -> None:
    """GHSA-7xx3-qp5w-fw96 / CVE-2020-36191 (JupyterHub 1.2.0b1): the admin API accepted
    cookie-authenticated requests without ``_xsrf``, so any page could forge them. Every
    state-changing route refuses a cookie-only request without the XSRF token (with no Origin,
    with a foreign one and with our own), and nothing changes; the same request with the
    session's XSRF token and our Origin succeeds (control)."""
    cookie = main.login_cookie()
    for method, rel, payload in STATE_CHANGING:
        for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": main.origin}):
            status = forged(main, method, rel, payload, cookie, headers)
            assert status in (403, 404), (method, rel, headers, status)
    assert_untouched(main)
    # Browsers send CSP reports without XSRF tokens, so that route is exempt; but not for
    # another site (stock skips its origin check entirely: forged log lines).
    report = {"csp-report": {"forged": "line\n[E] fake"}}
    for headers in ({"Origin": "https://evil.example"},
                    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}):
        status = forged(main, "POST", "/api/security/csp-report", report, cookie, headers)
        assert status in (403, 404), (headers, status)
    xsrf = main.xsrf_for(cookie)
    control = main.raw("POST", main.url("/api/contents/visible"), cookie=cookie,
                       headers={"X-XSRFToken": xsrf, "Origin": main.origin,
                                "Content-Type": "application/json",
                                "Sec-Fetch-Site": "same-origin"},
                       body=json.dumps({"type": "file", "ext": ".txt"}))
    assert control.status == 201, control
    main.api("DELETE", "/api/contents/" + control.json()["path"])


# -- CVE-2021-41247 ------------------------------------------------------------------------------


def test_ghsa_cw7p_q79f_m2v7_token_requests_do_not_recreate_sessions(main: Live) -> None:
    """GHSA-cw7p-q79f-m2v7 / CVE-2021-41247 (JupyterHub 1.5.0): logout was incomplete because
    another open tab re-minted credentials. Here: a token-authenticated request never mints a
    session cookie (stock mints one per API call), and the logout response clears the cookie.
    Logout is a POST with the XSRF token: ``GET /logout`` only shows the form (a link or an
    image cannot log anyone out)."""
    for rel in ("/api/status", "/api/contents", "/lab/api/settings", "/api/kernels"):
        reply = main.req("GET", rel, auth=True)
        cookies = reply.set_cookies()
        assert [n for n in cookies if n != "_xsrf"] == [], (rel, cookies)
    cookie = main.login_cookie()
    form = main.req("GET", "/logout", cookie=cookie)
    assert form.status == 200, form
    assert 'method="post"' in form.body.decode(), form
    assert main.req("GET", "/api/contents", cookie=cookie).status == 200  # still logged in
    logout = main.logout(cookie)
    assert logout.status == 200, logout
    name = cookie.split("=", 1)[0]
    cleared = [line for line in logout.headers.get_all("Set-Cookie") or []
               if str(line).startswith(name + "=")]
    assert cleared, logout
    assert all("expires=Thu, 01 Jan 1970" in str(c) or 'Max-Age=0' in str(c) or
               str(c).startswith(name + '=;') or str(c).startswith(name + '="";')
               for c in cleared), cleared


def test_ghsa_cw7p_q79f_m2v7_hardened_logged_out_cookie_is_dead(main: Live) -> None:
    """GHSA-cw7p-q79f-m2v7, hardened: after logout the previous cookie, replayed (by a
    stale tab, or by whoever copied it), is refused: the session is revoked on the server.
    "Log out everywhere" does the same for every other browser's session."""
    cookie = main.login_cookie()
    assert main.req("GET", "/api/contents", cookie=cookie).status == 200  # control
    assert main.logout(cookie).status == 200
    assert main.req("GET", "/api/contents", cookie=cookie).status == 403
    first, second = main.login_cookie(), main.login_cookie()
    assert main.logout(first, everywhere=True).status == 200
    for stale in (first, second):
        assert main.req("GET", "/api/contents", cookie=stale).status == 403


# -- CVE-2024-28233 ------------------------------------------------------------------------------


def test_ghsa_7r3h_4ph8_w38g_tossed_xsrf_cookie_does_not_pass(main: Live) -> None:
    """GHSA-7r3h-4ph8-w38g / CVE-2024-28233 (JupyterHub 4.1.0; jupyter_server issue #1459):
    a sibling subdomain sets ``_xsrf`` for the parent domain (cookie tossing) and then submits
    the same value, defeating a double-submit check. The XSRF token must be bound to the
    session: a tossed ``_xsrf=1`` with ``?_xsrf=1`` (or ``X-XSRFToken: 1``) is refused on a
    state-changing request and on ``/files``, from our own origin and from the sibling."""
    cookie = main.login_cookie()
    for headers in ({}, {"Origin": main.origin}, {"Origin": "https://sibling.example"},
                    {"Origin": main.origin, "Sec-Fetch-Site": "same-origin"}):
        status = forged(main, "POST", "/api/contents/visible", {"type": "file"},
                        cookie + "; _xsrf=1", headers, "?_xsrf=1")
        assert status in (403, 404), (headers, status)
        status = forged(main, "POST", "/api/contents/visible", {"type": "file"},
                        cookie + "; _xsrf=1", {**headers, "X-XSRFToken": "1"})
        assert status in (403, 404), (headers, status)
    files = main.raw("GET", main.url("/files/visible/a.txt") + "?_xsrf=1",
                     cookie=cookie + "; _xsrf=1")
    assert files.status == 403, files
    assert_untouched(main)


@pytest.fixture(scope="module")
def tls_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    spec = Spec(setup=lay_out, tls_ca=pki.ca_pem,
                args=(f"--certfile={pki.cert_pem}", f"--keyfile={pki.key_pem}"))
    with launched(tmp_path_factory, spec, name="hubtls") as (server,):
        yield server


def cookie_attributes(reply: Reply) -> dict[str, str]:
    """``cookie name -> the whole Set-Cookie line`` (lower-cased attributes)."""
    out = {}
    for line in reply.headers.get_all("Set-Cookie") or []:
        name = str(line).split("=", 1)[0]
        out[name] = str(line).lower()
    return out


def test_ghsa_7r3h_4ph8_w38g_hardened_host_prefixed_cookies_over_tls(tls_live: Live) -> None:
    """GHSA-7r3h-4ph8-w38g / CVE-2024-28233, hardened (research: "implement ``__Host-``
    cookies"): over TLS the session cookie is ``__Host-`` prefixed, hence ``Secure``,
    ``Path=/`` and host-only, which a sibling subdomain cannot plant, overwrite or shadow;
    every cookie the server sets is ``Secure``, ``SameSite`` and host-only.

    The ``_xsrf`` cookie keeps its name: JupyterLab reads it by that exact name to send
    ``X-XSRFToken`` (a ``__Host-_xsrf`` would break every write from Lab over TLS). A tossed
    ``_xsrf`` gains nothing: the expected token is bound to the session
    (``test_ghsa_7r3h_4ph8_w38g_tossed_xsrf_cookie_does_not_pass``), here over TLS too."""
    login = tls_live.req("GET", "/login")
    assert login.status == 200, login
    form_cookies = cookie_attributes(login)
    session = tls_live.login_cookie()
    assert session.startswith("__Host-username-"), session
    page = tls_live.req("GET", "/view/visible/a.txt", cookie=session)
    assert page.status == 200, page
    page_cookies = cookie_attributes(page)
    assert set(form_cookies) | set(page_cookies) <= {"_xsrf", session.split("=", 1)[0]}
    for name, line in {**form_cookies, **page_cookies}.items():
        assert "; secure" in line, (name, line)
        assert "samesite=" in line, (name, line)
        assert "domain=" not in line, (name, line)
    tossed = tls_live.raw(
        "POST", tls_live.url("/api/contents/visible") + "?_xsrf=1",
        cookie=session + "; _xsrf=1",
        headers={"Origin": tls_live.origin, "Sec-Fetch-Site": "same-origin",
                 "Content-Type": "application/json", "X-XSRFToken": "1"},
        body=json.dumps({"type": "file"}),
    )
    assert tossed.status == 403, tossed


# -- CVE-2026-33709 ------------------------------------------------------------------------------


def test_ghsa_3vff_hjqv_m7h8_login_next_path_confusion(based: Live) -> None:
    """GHSA-3vff-hjqv-m7h8 / CVE-2026-33709 (JupyterHub 5.4.4): ``next=`` with dot segments and
    encodings that resolve to ``//evil.example`` after the check. The hub shapes, with
    ``/hub/`` and with this server's own base_url as the prefix."""
    prefix = based.base.rstrip("/")
    values = [
        "/hub/../..//evil.example",
        "%2F%2E%2E%2F%2Fevil.example",
        f"{prefix}/../..//evil.example",
        f"{prefix}/lab/%2e%2e/%2e%2e//evil.example",
        urllib.parse.quote(f"{prefix}/./..//evil.example", safe=""),
        f"{prefix}/..%2F..%2F%2Fevil.example",
        f"{prefix}/%2e%2e/%2e%2e/%2f%2fevil.example",
    ]
    for value in values:
        follow_login(based, value)


# -- CVE-2026-40864 ------------------------------------------------------------------------------


def test_cve_2026_40864_no_cors_mode_is_not_same_origin(main: Live) -> None:
    """CVE-2026-40864 (JupyterHub 5.4.5): the XSRF check treated ``Sec-Fetch-Mode: no-cors`` as
    same-origin, so a cross-site form POST went through. A cookie form POST marked
    ``Sec-Fetch-Site: cross-site`` or ``same-site`` with ``Sec-Fetch-Mode: no-cors`` is refused,
    with no XSRF token and even with the session's valid one (the decision is on
    ``Sec-Fetch-Site``, never on the mode)."""
    cookie = main.login_cookie()
    xsrf = main.xsrf_for(cookie)
    for site in ("cross-site", "same-site"):
        for token in (None, xsrf):
            headers = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors",
                       "Sec-Fetch-Dest": "empty",
                       "Content-Type": "application/x-www-form-urlencoded"}
            if token is not None:
                headers["X-XSRFToken"] = token
            for rel in ("/api/contents/visible", "/nbconvert/html", "/api/contents/visible/a.txt"):
                body = "type=file" if token is None else urllib.parse.urlencode(
                    {"type": "file", "_xsrf": token})
                reply = main.raw("POST", main.url(rel), cookie=cookie, headers=headers,
                                 body=body)
                assert reply.status in (403, 404), (site, token is not None, rel, reply)
    assert_untouched(main)


# -- last: a request that would stop the server if it got through --------------------------------


def test_ghsa_7xx3_qp5w_fw96_shutdown_needs_xsrf(main: Live) -> None:
    """GHSA-7xx3-qp5w-fw96 / CVE-2020-36191 continued: ``POST /api/shutdown`` (a non-API
    ``JupyterHandler`` in stock, whose only cross-site protection is the XSRF check) refuses a
    cookie-only request. Last in the module: if it got through, the server would be gone."""
    cookie = main.login_cookie()
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": main.origin}):
        reply = main.raw("POST", main.url("/api/shutdown"), cookie=cookie, headers=headers)
        assert reply.status in (403, 404), (headers, reply)
    assert main.req("GET", "/api/status", auth=True).status == 200
