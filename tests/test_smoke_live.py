"""The foundation's must-shows that need only one running server."""

from __future__ import annotations

import requests


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
