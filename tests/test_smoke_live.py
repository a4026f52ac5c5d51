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
