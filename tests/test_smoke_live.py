"""The foundation's must-shows that need only one running server."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.live


def test_unauthenticated_api_contents_is_403_with_json_body(live_server):
    r = requests.get(live_server.url + "/api/contents", timeout=10)
    assert r.status_code == 403
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["message"]
    assert "traceback" not in body or not body["traceback"]


def test_token_in_authorization_header_reaches_contents(live_server):
    r = requests.get(live_server.url + "/api/contents", headers=live_server.auth(), timeout=10)
    assert r.status_code == 200
    assert r.json()["type"] == "directory"


def test_server_header_has_no_version(live_server):
    r = requests.get(live_server.url + "/login", timeout=10)
    assert r.status_code == 200
    assert "Server" not in r.headers


def test_header_token_request_mints_no_cookie(live_server):
    """Stock mints a login cookie on every token-authenticated API call; a header token
    authenticates the request and nothing more."""
    r = requests.get(live_server.url + "/api/status", headers=live_server.auth(), timeout=10)
    assert r.status_code == 200
    assert "Set-Cookie" not in r.headers


def test_url_token_is_refused_on_api_routes(live_server):
    r = requests.get(
        live_server.url + "/api/contents", params={"token": live_server.token}, timeout=10
    )
    assert r.status_code == 403


def test_url_token_on_page_navigation_is_exchanged_and_stripped(live_server):
    r = requests.get(
        live_server.url + "/lab",
        params={"token": live_server.token, "reset": ""},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302
    assert r.headers["Location"] == "/lab?reset="
    assert r.headers["Referrer-Policy"] == "no-referrer"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_url_token_in_form_body_is_never_accepted(live_server):
    r = requests.post(
        live_server.url + "/api/contents", data={"token": live_server.token}, timeout=10
    )
    assert r.status_code == 403


def test_root_redirects_to_lab_when_jupyterlab_is_enabled(live_server):
    r = requests.get(live_server.url + "/", headers=live_server.auth(), allow_redirects=False,
                     timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"].split("?")[0] == "/lab"


def test_root_is_stocks_page_when_jupyterlab_is_not_enabled(server_factory):
    """jupyterlab importable, its server extension off: `/` is stock's "server is running"
    page (200), not a redirect to a /lab that 404s (issue #17)."""
    server = server_factory(
        args=[f"--ServerApp.jpserver_extensions={name}=False"
              for name in ("jupyterlab", "notebook", "jupyter_lsp")]
    )
    r = requests.get(server.url + "/", headers=server.auth(), timeout=10)
    assert r.status_code == 200, r.status_code
    assert r.url == server.url + "/"
    anonymous = requests.get(server.url + "/", allow_redirects=False, timeout=10)
    assert anonymous.status_code in (302, 403)
