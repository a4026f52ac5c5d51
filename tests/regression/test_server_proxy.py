"""jupyter-server-proxy advisories, as classes of bug (research §3.5).

jupyter-server-proxy is not installed; hardened-server must not have its bugs on any route:

- CVE-2024-28179: a websocket upgrade reached a handler without authentication. Checked on
  every route of the running application (the inventory read off its own rules, JupyterLab's
  included) and on the proxy's URL shapes;
- CVE-2022-21697: a path that makes the server fetch another host (SSRF). Checked with the
  proxy's shapes and request targets in absolute form against a listener that must hear
  nothing;
- CVE-2024-35225: reflected XSS through an error page that echoes the path. Checked on every
  kind of route, anonymous and logged in.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.live import WS_UPGRADE, Listener, Live, Spec, launched
from tests.support.routes import dump_routes, sample_path

pytestmark = pytest.mark.live

XSS = "<img src=x onerror=alert(document.domain)>"
#: What a browser adds to a websocket handshake it opens from one of our pages.
BROWSER_WS = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "websocket",
              "Sec-Fetch-Dest": "websocket"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with launched(tmp_path_factory, Spec(frontends=True), name="proxy") as (server,):
        yield server


@pytest.fixture(scope="module")
def routes(live: Live) -> list[dict[str, Any]]:
    argv = live.server.argv[4:]  # everything after "python -m hardened_server serve"
    return dump_routes(argv, live.server.env, str(live.workdir))


def handshake(live: Live, target: str, **kwargs: Any) -> int:
    headers = {**WS_UPGRADE, "Origin": live.origin, **kwargs.pop("headers", {})}
    return live.raw("GET", target, headers=headers, **kwargs).status


# -- CVE-2024-28179 ------------------------------------------------------------------------------


def test_ghsa_w3vc_fx9p_wp4v_no_route_upgrades_an_anonymous_websocket(
    live: Live, routes: list[dict[str, Any]]
) -> None:
    """GHSA-w3vc-fx9p-wp4v / CVE-2024-28179 / PYSEC-2024-234 (CVSS 9.1): websocket proxying had
    no authentication (``@web.authenticated`` sat on ``proxy()``, which ``WebSocketHandler.get``
    bypassed), so an anonymous ``Upgrade: websocket`` reached RStudio or VNC: unauthenticated
    code execution. For every registered route (bar the public ones) and for the proxy's own
    shapes, an anonymous upgrade is refused before any handler, and a ``?token=`` in the URL
    does not authenticate an upgrade; a logged-in upgrade to a real websocket route works."""
    assert len(routes) > 40
    checked = 0
    for route in routes:
        if route["public"]:
            continue
        target = sample_path(route["pattern"])
        attempts: list[tuple[str, dict[str, str]]] = [("", {})]
        if "websocket" in route["kinds"]:
            # A URL token is a failed credential here, which the rate limit charges for:
            # tried where it matters only.
            attempts.append((f"?token={live.token}", BROWSER_WS))
        for query, headers in attempts:
            status = handshake(live, target + query, headers=headers)
            # 405: tornado refuses a method the handler lacks before any handler code runs.
            allowed = (403,) if "GET" in route["served_methods"] else (403, 405)
            assert status in allowed, (target + query, status)
        checked += 1
    assert checked > 40
    for target in ("/proxy/8080/websockify", "/proxy/absolute/8080/", "/proxy/localhost:8080/",
                   "/rstudio/", "/desktop/websockify", "/api/events/subscribe",
                   "/terminals/websocket/1"):
        for query, headers in (("", {}), (f"?token={live.token}", BROWSER_WS)):
            status = handshake(live, target + query, headers=headers)
            assert status in (403, 404), (target + query, status)
    assert handshake(live, "/api/events/subscribe", auth=True) == 101  # control


# -- CVE-2022-21697 ------------------------------------------------------------------------------


def test_ghsa_gcv9_6737_pjqw_no_request_makes_the_server_fetch_another_host(live: Live) -> None:
    """GHSA-gcv9-6737-pjqw / CVE-2022-21697 / PYSEC-2022-16: ``/proxy/localhost:8888@evil/x``
    built ``http://localhost:8888@evil/x`` and fetched ``evil``, past the host allow-list. The
    proxy's shapes, user-info and encoded variants, and absolute-form request targets
    (``GET http://host/ HTTP/1.1``, which a naive proxy-aware app would forward), sent logged
    in: none is a success and the listener on 127.0.0.2 hears nothing."""
    listener = Listener()
    try:
        other = f"127.0.0.2:{listener.port}"
        # Shapes that name another host: never a success.
        refused = [
            f"/proxy/localhost:8080@{other}/x",
            f"/proxy/{other}/x",
            f"/proxy/absolute/localhost:8080@{other}/x",
            f"/proxy/localhost:{listener.port}%40127.0.0.2/x",
            f"/proxy/localhost:8080%2F%2F{other}/x",
            f"/proxy/localhost:8080\\@{other}/x",
            f"/api/contents/..%2F..%2F@{other}/x",
            f"/files/http:%2F%2F{other}/x",
            f"/nbconvert/html/http:%2F%2F{other}/x.ipynb",
            f"/lab/api/listings/http:%2F%2F{other}%2Fx.json",
            f"/lab/api/listings/{urllib.parse.quote(f'http://{other}/x.json', safe='')}",
            f"http://{other}/x",
            f"http://{other}/api/contents",
            f"//{other}/x",
        ]
        for target in refused:
            reply = live.raw("GET", target, auth=True)
            assert reply.status >= 400, reply
            assert listener.connections == 0, target
        # Real routes given a URL in a parameter they do not take: whatever they answer, they
        # fetch nothing.
        for target in (f"/lab/api/licenses/?bundles=http://{other}/",
                       f"/api/kernelspecs?url=http://{other}/",
                       f"/lab/api/news?feed=http://{other}/",
                       f"/lab/api/update?url=http://{other}/"):
            live.raw("GET", target, auth=True)
            assert listener.connections == 0, target
        connect = live.raw("CONNECT", other, auth=True)
        assert connect.status >= 400, connect
        assert listener.connections == 0
    finally:
        listener.close()


# -- CVE-2024-35225 ------------------------------------------------------------------------------


def test_ghsa_fvcq_4x64_hqxr_error_pages_do_not_reflect_markup(live: Live) -> None:
    """GHSA-fvcq-4x64-hqxr / CVE-2024-35225 / PYSEC-2024-236 (CVSS 9.7):
    ``GET /proxy/<img src=x onerror=alert(document.domain)>:80/`` answered ``403 Host '<img ...>'
    is not allowed`` as raw HTML. Markup in the path, the query and a header, on every kind of
    route (pages, API, files, nbconvert, kernelspecs, static, unknown), anonymous and logged in,
    never comes back as live HTML; error responses carry the error CSP (``default-src 'none'``
    and no script source)."""
    enc = urllib.parse.quote(XSS, safe="")
    targets = [
        f"/proxy/{enc}:80/",
        f"/proxy/absolute/{enc}:80/",
        f"/{enc}",
        f"/{enc}/",
        f"/lab/{enc}",
        f"/lab/tree/{enc}",
        f"/api/contents/{enc}",
        f"/api/kernels/{enc}",
        f"/api/{enc}",
        f"/files/{enc}",
        f"/view/{enc}",
        f"/nbconvert/html/{enc}",
        f"/nbconvert/{enc}/x.ipynb",
        f"/kernelspecs/{enc}/logo.svg",
        f"/static/{enc}",
        f"/lab/api/settings/{enc}",
        f"/login?next={enc}",
        f"/login?next=/{enc}",
        f"/logout?next={enc}",
        f"/api/contents?type={enc}",
    ]
    for target in targets:
        for auth in (False, True):
            reply = live.raw("GET", target, auth=auth, headers={"Referer": XSS, "X-Evil": XSS})
            ctype = reply.header("Content-Type") or ""
            if ctype.startswith(("text/html", "image/svg", "application/xhtml", "text/xml")) or (
                not ctype
            ):
                assert XSS not in reply.text, (target, auth, reply)
            if reply.status >= 400 and ctype.startswith("text/html"):
                csp = reply.csp()
                assert csp.get("default-src") == ["'none'"], (target, csp)
                assert "script-src" not in csp, (target, csp)
            assert reply.header("X-Content-Type-Options") == "nosniff", (target, reply)
