"""Stored tokens against a live server: header only, scopes on the principal, the CLI's changes
seen at the next request, no cookie minted, the store kept outside the served root."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hardened_server.policy.rules import Rule
from hardened_server.trail.record import EventKind
from tests.support.audit import audit_records
from tests.support.server import WITHOUT_FRONTENDS, ServerProcess

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("tokens"), WITHOUT_FRONTENDS).start()
    yield proc
    proc.stop()


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hardened_server", "token", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create(server: ServerProcess, *args: str) -> str:
    done = cli(server, "create", *args)
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert secret.startswith("hst_")
    assert "\n" not in secret
    return secret


def get(
    server: ServerProcess, rel: str, token: str | None = None, **kw: object
) -> requests.Response:
    headers = dict(kw.pop("headers", {}) or {})  # type: ignore[arg-type]
    if token is not None:
        headers["Authorization"] = f"token {token}"
    return requests.get(server.url + rel, headers=headers, allow_redirects=False, timeout=30, **kw)


def scopes(server: ServerProcess, token: str) -> list[str]:
    r = get(server, "/api/me", token)
    assert r.status_code == 200, r.text
    return r.json()["identity"]["scopes"]


def test_stored_token_authenticates_from_the_header_with_its_scopes(server: ServerProcess) -> None:
    secret = create(server, "--name", "reader", "--scope", "contents:read", "--expires", "1h")
    assert scopes(server, secret) == ["contents:read"]
    bearer = requests.get(
        server.url + "/api/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert bearer.status_code == 200
    assert scopes(server, server.token) == ["admin"]  # the start-up token: the owner's grant


def test_stored_token_is_never_accepted_from_the_url(server: ServerProcess) -> None:
    secret = create(server, "--name", "url", "--scope", "admin")
    for rel in ("/api/status", "/api/contents", "/api/me"):
        r = get(server, f"{rel}?token={secret}")
        assert r.status_code == 403, (rel, r.status_code)
    start = len(audit_records(server))
    page = get(server, f"/view/x.txt?token={secret}", headers={"Sec-Fetch-Dest": "document"})
    assert page.status_code == 302, page.headers
    assert "/login" in page.headers["Location"], page.headers
    assert not [c for c in page.cookies if c != "_xsrf"]
    # The one place a URL token is read (a page navigation): a stored token there is refused
    # as misplaced (HS-ID-003), not as a wrong token, and the trail never holds it.
    records = audit_records(server)[start:]
    (misplaced,) = [r for r in records if r["rule_id"] == Rule.ID_TOKEN_MISPLACED]
    assert misplaced["decision"] == "deny"
    assert misplaced["event_kind"] == EventKind.LOGIN_FAILURE
    assert misplaced["path"] == "/view/x.txt"
    assert misplaced["reason"] == "stored tokens are accepted in the header only"
    assert not [r for r in records if r["rule_id"] == Rule.ID_TOKEN_REFUSED]
    assert secret not in json.dumps(audit_records(server))


def test_header_token_requests_never_mint_a_cookie(server: ServerProcess) -> None:
    secret = create(server, "--name", "nocookie", "--scope", "admin")
    for token in (secret, server.token):
        for rel in ("/api/status", "/api/contents", "/api/kernels", "/api/me"):
            r = get(server, rel, token)
            assert r.status_code == 200, (rel, r.status_code)
            assert "Set-Cookie" not in r.headers, (rel, r.headers.get("Set-Cookie"))


def test_cli_revoke_and_rotate_apply_to_the_running_server(server: ServerProcess) -> None:
    secret = create(server, "--name", "ops", "--scope", "kernels:read")
    token_id = secret.split("_")[1]
    assert get(server, "/api/status", secret).status_code == 200
    listed = json.loads(cli(server, "list", "--json").stdout)
    mine = next(t for t in listed if t["id"] == token_id)
    assert mine["name"] == "ops"
    assert mine["last_used"] is not None
    assert "sha256" not in mine
    rotated = cli(server, "rotate", token_id)
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert get(server, "/api/status", secret).status_code == 403
    assert get(server, "/api/status", new).status_code == 200
    assert cli(server, "revoke", token_id).returncode == 0
    start = len(audit_records(server))
    assert get(server, "/api/status", new).status_code == 403
    (refused,) = [r for r in audit_records(server)[start:] if r["rule_id"] == Rule.ID_TOKEN_REFUSED]
    assert refused["decision"] == "deny"
    assert refused["reason"] == "unknown, revoked or expired stored token"
    assert f"id={token_id}" in refused["subject"]
    again = cli(server, "revoke", token_id)
    assert again.returncode == 1
    assert "no token with id" in again.stderr


def test_expired_token_is_refused(server: ServerProcess) -> None:
    secret = create(server, "--name", "short", "--scope", "admin", "--expires", "2s")
    assert get(server, "/api/status", secret).status_code == 200
    time.sleep(2.2)
    assert get(server, "/api/status", secret).status_code == 403


def test_unknown_scope_is_refused_at_create(server: ServerProcess) -> None:
    done = cli(server, "create", "--name", "typo", "--scope", "contents:raed")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "unknown scope 'contents:raed'" in done.stderr
    assert "contents:read" in done.stderr


def test_startup_token_is_not_in_the_server_info_file(server: ServerProcess) -> None:
    infos = list((server.workdir / "jupyter" / "runtime").glob("jpserver-*.json"))
    assert infos
    for info in infos:
        assert server.token not in info.read_text()
        assert json.loads(info.read_text())["token"] == ""


def test_token_store_inside_the_served_root_is_refused(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, WITHOUT_FRONTENDS)
    srv.argv.append(f"--token-store={srv.root / 'tokens.json'}")
    srv.start(wait=False)
    try:
        code = srv.wait_exit(90)
    finally:
        srv.stop()
    assert code == 2, srv.log()
    assert "HS-ID-040" in srv.log()
    assert "inside the served root" in srv.log()
