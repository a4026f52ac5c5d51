"""A site's own identity provider under the policy (``enforcement/identity/site.py``, #17).

The provider (``tests/fixtures/site_identity/site_auth.py``) is site code written the way
jupyter_server documents it: the user is whoever the authenticating proxy in front says in
``X-Forwarded-User``, believed only from ``server.trusted_proxies``. hardened-server gives each
user the scopes the policy's ``[identity]`` tables list (by name and by group), refuses what they
do not give, and records each refusal with the user's name.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.audit import audit_records
from tests.support.server import WITHOUT_FRONTENDS

pytestmark = pytest.mark.live

SITE_IDENTITY = REPO / "tests" / "fixtures" / "site_identity"

POLICY = """
[server]
trusted_proxies = ["127.0.0.1/32"]

[identity]
site_provider = "mapped"
users = { alice = ["contents:read", "kernels:read", "kernels:execute"] }
groups = { readers = ["contents:read"] }
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.support.server import ServerProcess

    workdir = tmp_path_factory.mktemp("site-identity")
    policy = workdir / "policy.toml"
    policy.write_text(POLICY)
    srv = ServerProcess(
        workdir,
        [
            f"--policy={policy}",
            "--ServerApp.identity_provider_class=site_auth.ForwardedUserIdentityProvider",
            *WITHOUT_FRONTENDS,
        ],
        pythonpath=[SITE_IDENTITY],
    )
    (srv.root / "notes.txt").write_text("hello\n")
    srv.start(wait=False)
    # nobody is logged in without the proxy's header: the launcher's poll sees 403
    srv.wait_ready(accept=(403,))
    yield srv
    srv.stop()


def call(
    server: Any,
    method: str,
    path: str,
    *,
    user: str | None = None,
    groups: str | None = None,
    source: str = "127.0.0.1",
    body: Any = None,
) -> tuple[int, Any]:
    """One request from ``source`` (a loopback address: 127.0.0.1 is the trusted proxy,
    127.0.0.2 is not), as the authenticating proxy would forward a browser's: a request that
    changes something carries the session-bound XSRF token the page set as a cookie."""
    headers = {"Host": f"127.0.0.1:{server.port}", "Origin": server.url}
    if user is not None:
        headers["X-Forwarded-User"] = user
    if groups is not None:
        headers["X-Forwarded-Groups"] = groups
    if method not in ("GET", "HEAD"):
        token = xsrf_cookie(server, headers, source)
        headers["Cookie"] = f"_xsrf={token}"
        headers["X-XSRFToken"] = token
    conn = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=60, source_address=(source, 0)
    )
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, raw


def xsrf_cookie(server: Any, headers: dict[str, str], source: str) -> str:
    """The ``_xsrf`` cookie the server's page (``/``: stock's page, JupyterLab being off)
    gives this user, as the browser would hold it."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=60, source_address=(source, 0)
    )
    try:
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    for value in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = value.partition("=")
        if name.strip() == "_xsrf":
            return rest.split(";")[0]
    return ""


def records(server: Any, rule_id: str, user: str | None) -> list[dict[str, Any]]:
    return [r for r in audit_records(server) if r["rule_id"] == rule_id and r["user"] == user]


def test_a_mapped_user_reads_contents_and_starts_a_kernel_with_its_scopes(server: Any) -> None:
    status, listing = call(server, "GET", "/api/contents", user="alice")
    assert status == 200, listing
    assert "notes.txt" in [item["name"] for item in listing["content"]]
    status, kernel = call(server, "POST", "/api/kernels", user="alice", body={"name": "python3"})
    assert status == 201, kernel
    started = records(server, "HS-KERNEL-001", "alice")
    assert any(kernel["id"] in (r["subject"] or "") for r in started), started
    status, _ = call(server, "DELETE", f"/api/kernels/{kernel['id']}", user="alice")
    assert status == 204


def test_a_mapped_user_is_refused_what_its_scopes_do_not_give_with_a_record_naming_it(
    server: Any,
) -> None:
    status, body = call(
        server, "PUT", "/api/contents/new.txt", user="alice",
        body={"type": "file", "format": "text", "content": "x"},
    )
    assert status == 403, body
    assert "contents:write" in body["message"]
    assert not (server.root / "new.txt").exists()
    assert records(server, "HS-SCOPE-001", "alice")


def test_a_group_gives_its_members_its_scopes_and_nothing_more(server: Any) -> None:
    status, _ = call(server, "GET", "/api/contents", user="bob", groups="readers")
    assert status == 200
    status, body = call(
        server, "POST", "/api/kernels", user="bob", groups="readers", body={"name": "python3"}
    )
    assert status == 403, body
    assert records(server, "HS-SCOPE-001", "bob")


def test_a_user_the_policy_does_not_name_gets_nothing_and_a_record(server: Any) -> None:
    status, _ = call(server, "GET", "/api/contents", user="mallory", groups="staff")
    assert status == 403
    assert records(server, "HS-SCOPE-001", "mallory")


def test_the_header_is_not_believed_from_a_peer_that_is_not_a_trusted_proxy(
    server: Any,
) -> None:
    """127.0.0.2 is not in server.trusted_proxies: its X-Forwarded-User is anybody's claim,
    so nobody is logged in (HS-AUTH-001, no user)."""
    before = len(records(server, "HS-AUTH-001", None))
    status, _ = call(server, "GET", "/api/contents", user="alice", source="127.0.0.2")
    assert status == 403
    after = records(server, "HS-AUTH-001", None)
    assert len(after) > before
    assert after[-1]["client_ip"] == "127.0.0.2"
