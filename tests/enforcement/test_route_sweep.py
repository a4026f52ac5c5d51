"""Every route of a running app (JupyterLab's included) gets the policy.

The inventory is read off the application's own rules (the same configuration, initialised but
not started, in a fresh interpreter); the requests go over real HTTP to a running server. For each
route: the header set is present, and an anonymous request is refused unless the route is on the
policy's public list. This is the guard against the class of bug behind CVE-2024-28179
(jupyter-server-proxy: a websocket route reachable without authentication) and the extension
handlers that forget ``@web.authenticated``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.support.routes import dump_routes, sample_path

pytestmark = pytest.mark.live

POLICY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy",
    "Permissions-Policy",
)


@pytest.fixture(scope="module")
def routes(live_server: Any) -> list[dict[str, Any]]:
    argv = live_server.argv[4:]  # everything after "python -m hardened_server serve"
    found = dump_routes(argv, live_server.env, str(live_server.workdir))
    assert len(found) > 40, "the inventory should include core and JupyterLab routes"
    return found


def effective_route(path: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
    """Tornado answers with the first rule that matches; later ones are shadowed."""
    for route in routes:
        if re.fullmatch(route["pattern"], path):
            return route
    raise AssertionError(f"no route matches {path}")


def assert_policy_headers(response: requests.Response, route_class: str) -> None:
    for name in POLICY_HEADERS:
        assert name in response.headers, f"{name} missing on {response.url}"
    csp = response.headers["Content-Security-Policy"]
    names = [part.split()[0] for part in csp.split(";") if part.strip()]
    assert len(names) == len(set(names)), f"duplicate CSP directive on {response.url}: {csp}"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    if route_class != "static":
        assert response.headers.get("Cache-Control") == "no-store", response.url
    assert "Server" not in response.headers


def assert_refused(
    response: requests.Response, route: dict[str, Any], login_path: str = "/login"
) -> None:
    """403, a redirect to the login page, or (for a method the handler does not implement
    at all) tornado's 405 before any handler code runs."""
    method = response.request.method
    if method not in route["served_methods"] and response.status_code == 405:
        return
    if response.status_code in (301, 302, 303, 307):
        assert response.headers["Location"].startswith(login_path + "?next="), response.url
    else:
        assert response.status_code == 403, (response.url, response.status_code)


def test_inventory_covers_core_jupyterlab_and_plain_handlers(routes: list[dict[str, Any]]) -> None:
    handlers = {r["handler"].rsplit(".", 1)[1] for r in routes}
    for expected in (
        "ContentsHandler",
        "KernelWebsocketHandler",
        "HardenedFileHandler",
        "FileFindHandler",
        "LabHandler",
        "SettingsHandler",
        "TrailingSlashHandler",
        "RedirectWithParams",
        "PublicStaticFileHandler",
        "Template404",
        "APIVersionHandler",
        "PrometheusMetricsHandler",
    ):
        assert expected in handlers, expected
    assert all(r["is_subclass"] for r in routes), "a wrapped handler must subclass its original"


def test_every_route_sends_headers_and_refuses_anonymous_get(
    live_server: Any, routes: list[dict[str, Any]]
) -> None:
    checked = 0
    for route in routes:
        path = sample_path(route["pattern"])
        target = effective_route(path, routes)
        r = requests.get(live_server.url + path, allow_redirects=False, timeout=10)
        assert_policy_headers(r, "error" if r.status_code >= 400 else target["route_class"])
        if target["public"]:
            assert r.status_code not in (401, 403), (path, r.status_code)
            assert not r.headers.get("Location", "").startswith("/login"), path
        else:
            assert_refused(r, target)
        checked += 1
    assert checked == len(routes)


def test_every_non_public_route_refuses_anonymous_post(
    live_server: Any, routes: list[dict[str, Any]]
) -> None:
    for route in routes:
        path = sample_path(route["pattern"])
        target = effective_route(path, routes)
        if target["public"]:
            continue
        r = requests.post(live_server.url + path, data=b"{}", allow_redirects=False, timeout=10)
        assert_refused(r, target)
        assert r.status_code != 302, "a POST is never redirected to the login page"
        assert_policy_headers(r, target["route_class"])


def test_every_non_public_route_refuses_anonymous_websocket_upgrade(
    live_server: Any, routes: list[dict[str, Any]]
) -> None:
    """CVE-2024-28179 as a class: an unauthenticated Upgrade must never reach a handler."""
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    for route in routes:
        path = sample_path(route["pattern"])
        target = effective_route(path, routes)
        if target["public"]:
            continue
        r = requests.get(live_server.url + path, headers=upgrade, allow_redirects=False, timeout=10)
        if "GET" not in target["served_methods"]:
            assert r.status_code in (403, 405), (path, r.status_code)
        else:
            assert r.status_code == 403, (path, r.status_code)


def test_public_routes_are_exactly_the_policy_list(routes: list[dict[str, Any]]) -> None:
    public = sorted(r["pattern"] for r in routes if r["public"])
    assert public == sorted(
        ["/login", "/static/(.*)", "/(favicon\\.ico)", "/(robots\\.txt)",
         "/(robots\\.txt|favicon\\.ico)"]
    )


def test_authenticated_requests_still_work_through_the_wrapping(live_server: Any) -> None:
    """Wrapping keeps function: the token header reaches core and JupyterLab handlers."""
    auth = live_server.auth()
    for path in ("/api/status", "/api/contents", "/api/kernelspecs", "/lab/api/settings",
                 "/api/sessions", "/lab"):
        r = requests.get(live_server.url + path, headers=auth, allow_redirects=False, timeout=20)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
