"""Sessions, cookies and URL tokens against live servers (plain HTTP and TLS): the URL token
is exchanged on a top-level navigation only, the session cookie's attributes follow the
policy and the transport, logout is a POST that revokes the session on the server, and the
session store's idle and absolute lifetimes hold."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest

from hardened_server.enforcement.identity.sessions import SessionStore
from hardened_server.policy.rules import Rule
from hardened_server.trail.record import EventKind
from tests.support.audit import audit_records
from tests.support.live import WS_UPGRADE, Live, Reply, Spec, launched
from tests.support.tls import make_pki

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, Live, Live]]:
    """Plain HTTP with the default policy; TLS with SameSite=Strict; URL tokens off."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))

    def lay_out(root, _workdir):  # type: ignore[no-untyped-def]
        (root / "a.txt").write_text("hello")

    plain = Spec(setup=lay_out)
    tls = Spec(
        setup=lay_out,
        tls_ca=pki.ca_pem,
        policy='[sessions]\nsamesite = "Strict"\n',
        args=(f"--certfile={pki.cert_pem}", f"--keyfile={pki.key_pem}"),
    )
    never = Spec(setup=lay_out, policy='[tokens]\nurl_tokens = "never"\n')
    with launched(tmp_path_factory, plain, tls, never, name="sess") as started:
        yield started[0], started[1], started[2]


def set_cookie_lines(reply: Reply) -> dict[str, str]:
    out = {}
    for line in reply.headers.get_all("Set-Cookie") or []:
        out[str(line).split("=", 1)[0]] = str(line)
    return out


NAV = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none"}


def records_since(live: Live, start: int) -> list[dict[str, Any]]:
    """The audit trail's decision records written after the first ``start`` ones."""
    return audit_records(live.server)[start:]


def by_rule(records: list[dict[str, Any]], rule: Rule) -> list[dict[str, Any]]:
    return [r for r in records if r["rule_id"] == rule]


def exchange(live: Live, rel: str, headers: dict[str, str] | None = None) -> Reply:
    sep = "&" if "?" in rel else "?"
    return live.req("GET", f"{rel}{sep}token={live.token}", headers={**NAV, **(headers or {})})


def test_url_token_navigation_is_exchanged_and_stripped(servers: tuple[Live, Live, Live]) -> None:
    plain = servers[0]
    reply = exchange(plain, "/view/a.txt?keep=1")
    assert reply.status == 302, reply
    assert reply.header("Location") == plain.url("/view/a.txt?keep=1")
    assert reply.header("Referrer-Policy") == "no-referrer"
    cookies = set_cookie_lines(reply)
    name = next(n for n in cookies if n.startswith("username-"))
    line = cookies[name].lower()
    assert "httponly" in line
    assert "samesite=lax" in line
    assert "secure" not in line  # plain HTTP: a Secure cookie would never come back
    assert "expires=" not in line  # a browser-session cookie; the server decides the lifetime
    assert "max-age" not in line
    assert "path=/" in line
    value = SimpleCookie(cookies[name])[name].value
    follow = plain.req("GET", "/view/a.txt?keep=1", cookie=f"{name}={value}")
    assert follow.status == 200, follow
    assert plain.token not in follow.body.decode()


def test_url_token_is_refused_on_api_files_websocket_and_subresources(
    servers: tuple[Live, Live, Live],
) -> None:
    plain = servers[0]
    q = f"token={plain.token}"
    for rel in ("/api/contents", "/api/status", "/api/me", "/api/kernels"):
        reply = plain.req("GET", f"{rel}?{q}")
        assert reply.status == 403, (rel, reply)
        assert not [n for n in set_cookie_lines(reply) if n != "_xsrf"]
    files = plain.req("GET", f"/files/a.txt?{q}", headers=NAV)
    assert files.status in (302, 403), files
    assert b"hello" not in files.body
    assert not [n for n in set_cookie_lines(files) if n != "_xsrf"]
    ws = plain.req("GET", f"/api/events/subscribe?{q}", headers=WS_UPGRADE)
    assert ws.status == 403, ws
    kernel_ws = plain.req(
        "GET", f"/api/kernels/00000000-0000-0000-0000-000000000000/channels?{q}", headers=WS_UPGRADE
    )
    assert kernel_ws.status == 403, kernel_ws
    # A page fetched as a sub-resource (an <iframe>, an <img>) is not a top-level navigation.
    for dest in ("iframe", "image", "script", "empty"):
        sub = plain.req("GET", f"/view/a.txt?{q}", headers={"Sec-Fetch-Dest": dest})
        assert sub.status == 302, (dest, sub)
        assert "/login" in (sub.header("Location") or ""), (dest, sub)
        assert not [n for n in set_cookie_lines(sub) if n != "_xsrf"], dest
    # Never from a form body, whatever the route.
    body = urllib.parse.urlencode({"token": plain.token})
    for rel in ("/api/contents", "/view/a.txt", "/logout"):
        form = plain.req(
            "POST",
            rel,
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": plain.origin},
        )
        assert form.status in (302, 403, 405), (rel, form)
        assert not [n for n in set_cookie_lines(form) if n != "_xsrf"], rel
    assert plain.req("GET", "/api/contents/a.txt", auth=True).status == 200  # untouched


def test_url_tokens_never_when_the_policy_says_so(servers: tuple[Live, Live, Live]) -> None:
    never = servers[2]
    reply = exchange(never, "/view/a.txt")
    assert reply.status == 302, reply
    assert "/login" in (reply.header("Location") or ""), reply
    assert not [n for n in set_cookie_lines(reply) if n != "_xsrf"]
    assert never.req("GET", "/api/status", auth=True).status == 200  # the header still works


def test_tls_session_cookie_is_host_prefixed_secure_and_strict_by_policy(
    servers: tuple[Live, Live, Live],
) -> None:
    tls = servers[1]
    reply = exchange(tls, "/view/a.txt")
    assert reply.status == 302, reply
    cookies = set_cookie_lines(reply)
    name = next(n for n in cookies if n != "_xsrf")
    assert name.startswith("__Host-username-"), cookies
    line = cookies[name].lower()
    for attribute in ("secure", "httponly", "samesite=strict", "path=/"):
        assert attribute in line, (attribute, line)
    assert "domain=" not in line
    value = SimpleCookie(cookies[name])[name].value
    cookie = f"{name}={value}"
    assert tls.req("GET", "/api/contents/a.txt", cookie=cookie).status == 200
    # The same cookie without the prefix (what a sibling domain could plant) is nobody.
    unprefixed = f"{name.removeprefix('__Host-')}={value}"
    assert tls.req("GET", "/api/contents/a.txt", cookie=unprefixed).status == 403
    start = len(audit_records(tls.server))
    assert tls.logout(cookie).status == 200
    (logout,) = by_rule(records_since(tls, start), Rule.ID_LOGOUT)
    assert logout["decision"] == "allow"
    assert logout["event_kind"] == EventKind.LOGOUT
    assert logout["reason"] == "session revoked"
    assert logout["user"]
    assert logout["scheme"] == "https"
    start = len(audit_records(tls.server))
    assert tls.req("GET", "/api/contents/a.txt", cookie=cookie).status == 403
    (stale,) = by_rule(records_since(tls, start), Rule.ID_SESSION_REFUSED)
    assert stale["decision"] == "deny"
    assert stale["event_kind"] == EventKind.LOGIN_FAILURE
    assert stale["path"] == "/api/contents/a.txt"


def test_logout_needs_post_and_xsrf_and_everywhere_needs_admin(
    servers: tuple[Live, Live, Live],
) -> None:
    plain = servers[0]
    cookie = plain.login_cookie()
    form = plain.req("GET", "/logout", cookie=cookie)
    assert form.status == 200
    assert plain.req("GET", "/api/contents", cookie=cookie).status == 200
    no_xsrf = plain.req(
        "POST",
        "/logout",
        cookie=cookie,
        body="everywhere=0",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": plain.origin,
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert no_xsrf.status == 403, no_xsrf
    cross = plain.req(
        "POST",
        "/logout",
        cookie=cookie,
        body="everywhere=1",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "https://evil.example",
            "Sec-Fetch-Site": "cross-site",
        },
    )
    assert cross.status == 403, cross
    assert plain.req("GET", "/api/contents", cookie=cookie).status == 200
    # A scoped token may not end the owner's sessions; the start-up (admin) token may.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hardened_server",
            "token",
            "create",
            "--name",
            "r",
            "--scope",
            "contents:read",
        ],
        env=plain.server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    reader = {
        "Authorization": "token " + done.stdout.strip(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    refused = plain.req("POST", "/logout", body="everywhere=1", headers=reader)
    assert refused.status == 403, refused
    assert plain.req("GET", "/api/contents", cookie=cookie).status == 200
    other = plain.login_cookie()
    start = len(audit_records(plain.server))
    assert (
        plain.req(
            "POST",
            "/logout",
            auth=True,
            body="everywhere=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status
        == 200
    )
    (everywhere,) = by_rule(records_since(plain, start), Rule.ID_LOGOUT_EVERYWHERE)
    assert everywhere["decision"] == "allow"
    assert everywhere["event_kind"] == EventKind.LOGOUT
    assert everywhere["reason"].startswith("every session revoked (")
    assert not by_rule(records_since(plain, start), Rule.ID_LOGOUT)
    start = len(audit_records(plain.server))
    for stale in (cookie, other):
        assert plain.req("GET", "/api/contents", cookie=stale).status == 403
    refused = by_rule(records_since(plain, start), Rule.ID_SESSION_REFUSED)
    assert [r["decision"] for r in refused] == ["deny", "deny"]
    assert plain.req("GET", "/api/status", auth=True).status == 200  # tokens are not sessions


def test_a_wrong_token_is_refused_and_recorded(servers: tuple[Live, Live, Live]) -> None:
    """A token that is neither the start-up token nor a stored one: 403, one HS-ID-002 record
    (a log-in failure, never the token itself)."""
    plain = servers[0]
    wrong = "f" * 48
    start = len(audit_records(plain.server))
    reply = plain.req("GET", "/api/contents", headers={"Authorization": f"token {wrong}"})
    assert reply.status == 403, reply
    (refused,) = by_rule(records_since(plain, start), Rule.ID_TOKEN_REFUSED)
    assert refused["decision"] == "deny"
    assert refused["event_kind"] == EventKind.LOGIN_FAILURE
    assert refused["reason"] == "wrong token"
    assert refused["path"] == "/api/contents"
    assert wrong not in json.dumps(audit_records(plain.server))


def test_session_reports_the_owner_scopes(servers: tuple[Live, Live, Live]) -> None:
    plain = servers[0]
    cookie = plain.login_cookie()
    me = plain.req("GET", "/api/me", cookie=cookie)
    assert me.status == 200, me
    assert json.loads(me.body)["identity"]["scopes"] == ["admin"]


# -- the store itself -------------------------------------------------------------------------


def test_idle_timeout_and_absolute_lifetime() -> None:
    now = [1000.0]
    store = SessionStore(idle_seconds=60, lifetime_seconds=300, clock=lambda: now[0])
    a = store.create("user-a")
    for _ in range(4):  # active: each request resets the idle clock
        now[0] += 59
        assert store.get(a.id) is a
    now[0] += 60  # idle for a minute
    assert store.get(a.id) is None
    assert store.get(a.id) is None  # and forgotten
    b = store.create("user-b")
    for _ in range(5):
        now[0] += 50
        assert store.get(b.id) is b
    now[0] += 50  # 300 s after login: over, however active
    assert store.get(b.id) is None


def test_revoke_and_revoke_all_and_the_bound() -> None:
    store = SessionStore(3600, 3600, max_sessions=3)
    sessions = [store.create(i) for i in range(4)]
    assert store.get(sessions[0].id) is None  # the oldest went first
    assert store.revoke(sessions[1].id)
    assert not store.revoke(sessions[1].id)
    assert store.revoke_all() == 2
    assert all(store.get(s.id) is None for s in sessions)
    assert len({s.id for s in sessions}) == 4
    assert all(len(s.id) == 43 for s in sessions)  # 256 random bits


# -- issue #18: where a token was read from, and no token in any Location ------------------------


def _stored_token(live: Live, scope: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hardened_server", "token", "create", "--name", "basic",
         "--scope", scope],
        env=live.server.env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_url_token_stays_a_url_token_beside_an_authorization_basic_header(
    servers: tuple[Live, Live, Live],
) -> None:
    """Behind an HTTP-Basic proxy the browser sends ``Authorization: Basic`` on every request.
    A stored token in ``?token=`` was then taken for a header token and accepted (stored tokens
    are header-only): the source is where the token was read, whatever else is present."""
    plain = servers[0]
    stored = _stored_token(plain, "admin")
    basic = "Basic " + base64.b64encode(b"proxyuser:proxypass").decode()
    reply = plain.req(
        "GET", f"/view/a.txt?token={stored}", headers={**NAV, "Authorization": basic}
    )
    assert reply.status == 302, reply
    assert "/login" in (reply.header("Location") or ""), reply
    assert not [n for n in set_cookie_lines(reply) if n != "_xsrf"]
    assert b"hello" not in reply.body
    # And the same stored token in the header still works (the refusal is about the source).
    ok = plain.req("GET", "/api/me", headers={"Authorization": f"token {stored}"})
    assert ok.status == 200, ok


def test_no_location_carries_a_token(servers: tuple[Live, Live, Live]) -> None:
    """A refused URL token was copied into ``Location: /login?next=...token=...``."""
    plain, _, never = servers
    for live, headers in ((plain, {"Sec-Fetch-Dest": "iframe"}), (never, NAV)):
        reply = live.req("GET", f"/view/a.txt?keep=1&token={live.token}", headers=headers)
        assert reply.status == 302, reply
        location = reply.header("Location") or ""
        assert "/login" in location, reply
        assert "token" not in urllib.parse.unquote(urllib.parse.unquote(location)), location
        assert live.token not in location
        assert "keep%3D1" in location or "keep=1" in urllib.parse.unquote(location), location


def test_a_url_token_refusal_says_to_send_the_authorization_header(
    servers: tuple[Live, Live, Live],
) -> None:
    """jupyter_kernel_client and @jupyterlab/services in Node put the token in the websocket
    URL and got a bare ``{"message": "Forbidden"}`` (issue #16): the 403 now names the header,
    and the record says the token was misplaced (HS-ID-003)."""
    plain = servers[0]
    for rel in ("/api/kernels", "/api/events/subscribe"):
        headers = WS_UPGRADE if rel.endswith("subscribe") else {}
        reply = plain.req("GET", f"{rel}?token={plain.token}", headers=headers)
        assert reply.status == 403, reply
        message = reply.json()["message"]
        assert "Authorization: token" in message, message
        assert "HS-ID-003" in message, message
        assert plain.token not in reply.body.decode()
    # Without a URL token the answer stays the bare one.
    assert reply_message(plain.req("GET", "/api/kernels")) == "Forbidden"
    plain.wait_log("HS-ID-003")


def reply_message(reply: Reply) -> str:
    assert reply.status == 403, reply
    return str(reply.json()["message"])
