"""A real JupyterHub spawning ``hardened-server singleuser`` for two users, behind a real
configurable-http-proxy (npm, tools/chp/setup.sh), all on 127.0.0.1 in a temporary directory.

One hub per module: JupyterHub with its DummyAuthenticator (a password) and
SimpleLocalProcessSpawner, whose ``cmd`` is this interpreter running ``-m hardened_server
singleuser``. Each user logs in at the hub like a browser does (login form, then the OAuth
redirects between the hub and the single-user server). Then, through the proxy:

* alice cannot reach bob's server: not with her hub session (the hub refuses the OAuth step),
  not with her own server's cookie, not with a hub API token of hers;
* the policy's headers (CSP, X-Frame-Options, ...) and path rules (hidden and denied files)
  hold, a foreign Host is refused, contents can be written and read back;
* each server's audit trail names the hub user (login, refusals, logout) and verifies;
* access by others (issue #19 item 8): the hub admin's "access server" (OAuth confirmation and
  all) reads, writes and lists kernels on alice's server, a service token with
  ``access:servers!user=alice`` reads her file; every such request is in alice's trail naming
  the admin or the service (``non_owner``), her own records do not carry the field;
* alice's named server is reached through the proxy and every line of its trail names it;
* jupyterhub-idle-culler, as a hub service, culls the idle named server through the hub, and
  that server's trail ends with a clean ``close``.

Every process (hub, proxy, single-user servers, their kernels) carries a marker in its
environment; teardown stops the hub and then kills, by pid, whatever still carries the marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape as html_unescape
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO
from tests.support import kubernetes
from tests.support.server import free_port, isolated_env, root_flag

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHP_DIR = REPO / "tools" / "chp"
USERS = ("alice", "bob")
#: A hub admin (no server of their own): "access server" on alice's (admin:servers and
#: access:servers, the hub's default admin role).
ADMIN = "admin"
#: alice's named server (c.JupyterHub.allow_named_servers), started with the others.
NAMED = "lab2"
MARKER = "HS_HUB_E2E_RUN"
#: The user whose server runs deploy/kubernetes's pod command (tests/support/kubernetes.py),
#: and the marker that finds its process.
POD_USER = "kube"
POD_MARKER = "HS_HUB_E2E_POD"

HUB_CONFIG = """
import json, sys
v = json.loads({values!r})
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = v["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = v["hub_port"]
c.JupyterHub.db_url = "sqlite:///" + v["dir"] + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = v["dir"] + "/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % v["api_port"]
c.ConfigurableHTTPProxy.command = [v["chp"]]
c.ConfigurableHTTPProxy.auth_token = v["proxy_token"]
c.ConfigurableHTTPProxy.pid_file = v["dir"] + "/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = v["password"]
c.Authenticator.allowed_users = set(v["users"]) | {{v["pod"]["user"], v["admin"]}}
c.Authenticator.admin_users = {{v["admin"]}}
c.JupyterHub.allow_named_servers = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = v["dir"] + "/home/{{username}}"
c.Spawner.ip = "127.0.0.1"
c.Spawner.cmd = [sys.executable, "-m", "hardened_server", "singleuser"]
c.Spawner.args = v["args"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.default_url = "/lab"
c.Spawner.environment = dict(v["env"])
for name in ("config", "runtime", "data"):
    # A named server gets a directory of its own: jupyter/USER-SERVERNAME/.
    c.Spawner.environment["JUPYTER_%s_DIR" % name.upper()] = (
        lambda spawner, name=name: v["dir"] + "/jupyter/" + spawner.user.name
        + ("-" + spawner.name if spawner.name else "") + "/" + name
    )


def kubernetes_pod(spawner):
    # One more user runs the Kubernetes recipe's pod command (deploy/kubernetes/values.yaml,
    # rendered by KubeSpawner) with the ConfigMap's files under a prefix, on a fixed port.
    pod = v["pod"]
    if spawner.user.name != pod["user"]:
        return
    spawner.cmd = pod["argv"]
    spawner.args = v["args"]
    spawner.port = pod["port"]
    spawner.environment = {{**spawner.environment, **pod["env"]}}
    for name, value in pod["spawner"].items():
        setattr(spawner, name, value)


c.Spawner.pre_spawn_hook = kubernetes_pod
c.JupyterHub.services = [
    {{"name": "e2e", "api_token": v["service_token"]}},
    # jupyterhub-idle-culler, with the role its documentation gives it; the test runs it when
    # a cull is due (see test_the_idle_culler_stops_an_idle_server_cleanly).
    {{"name": "idle-culler", "api_token": v["culler_token"]}},
    # A service with access to alice's servers only (a backup job, say).
    {{"name": "nightly-backup", "api_token": v["backup_token"]}},
]
c.JupyterHub.load_roles = [
    {{"name": "e2e", "scopes": ["admin:servers", "read:users", "tokens"], "services": ["e2e"]}},
    {{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }},
    {{
        "name": "nightly-backup",
        "scopes": ["access:servers!user=alice"],
        "services": ["nightly-backup"],
    }},
]
"""


@dataclass
class Hub:
    url: str
    workdir: Path
    password: str
    service_token: str
    log_path: Path
    culler_token: str = ""
    backup_token: str = ""
    pod: kubernetes.PodCommand | None = None
    pod_port: int = 0
    pod_marker: str = ""

    def api(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.service_token}"},
            timeout=30,
            **kwargs,  # type: ignore[arg-type]
        )

    def home(self, user: str) -> Path:
        return self.workdir / "home" / user

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def audit_files(self, user: str, server: str = "") -> list[Path]:
        """The audit trail of ``user``'s server (default file in its runtime directory);
        ``server``: a named server's."""
        runtime = self.workdir / "jupyter" / (f"{user}-{server}" if server else user) / "runtime"
        return sorted(runtime.glob("hardened-server-audit-*.jsonl"))

    def audit_lines(self, user: str, server: str = "") -> list[dict[str, Any]]:
        """Every chain line (genesis, decisions, close ...) of that trail."""
        return [
            json.loads(line)
            for path in self.audit_files(user, server)
            for line in path.read_bytes().splitlines()
        ]

    def audit_records(self, user: str, server: str = "") -> list[dict[str, Any]]:
        return [e["event"] for e in self.audit_lines(user, server) if e.get("kind") == "decision"]


def _marked_pids(marker_value: str, name: str = MARKER) -> list[int]:
    """Our own processes that carry the marker in their environment (hub, proxy, servers,
    kernels): found by pid, in /proc."""
    needle = f"{name}={marker_value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _kill_marked(marker_value: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _marked_pids(marker_value)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _marked_pids(marker_value):
            time.sleep(0.2)


def _wait(predicate: object, what: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout}s\n{log.read_text(errors='replace')[-6000:]}")


@pytest.fixture(scope="module")
def chp() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed (scripts/install-system-deps.sh installs them)")
    subprocess.run(["bash", str(CHP_DIR / "setup.sh")], check=True, capture_output=True)
    return CHP_DIR / "node_modules" / ".bin" / "configurable-http-proxy"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, chp: Path) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    marker = secrets.token_hex(8)
    k8s_values = kubernetes.load_yaml("values.yaml")
    rendered = kubernetes.render_pod(k8s_values, workdir, user=POD_USER)
    pod = kubernetes.pod_command(
        rendered, kubernetes.load_yaml("policy-configmap.yaml"), workdir / "rootfs", k8s_values
    )
    pod_port = free_port()
    port, hub_port, api_port = free_port(), free_port(), free_port()
    values = {
        "port": port,
        "hub_port": hub_port,
        "api_port": api_port,
        "dir": str(workdir),
        "chp": str(chp),
        "proxy_token": secrets.token_hex(32),
        "password": secrets.token_urlsafe(16),
        "service_token": secrets.token_hex(32),
        "culler_token": secrets.token_hex(32),
        "backup_token": secrets.token_hex(32),
        "users": list(USERS),
        "admin": ADMIN,
        "pod": {
            "user": POD_USER,
            "argv": pod.argv,
            "port": pod_port,
            "env": {**pod.env, POD_MARKER: marker},
            "spawner": k8s_values["hub"]["config"]["Spawner"],
        },
        "args": root_flag(),
        "env": {
            MARKER: marker,
            "PYTHONPATH": str(REPO),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
        },
    }
    config = workdir / "jupyterhub_config.py"
    config.write_text(HUB_CONFIG.format(values=json.dumps(values)))
    (workdir / "home" / POD_USER).mkdir(parents=True)
    for user in USERS:
        home = workdir / "home" / user
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "id_rsa").write_text(f"PRIVATE KEY OF {user}\n")
        (home / ".env").write_text(f"SECRET_OF_{user}=1\n")
        (home / ".hidden.txt").write_text(f"hidden note of {user}\n")
        (home / "notes.txt").write_text(f"notes of {user}\n")
    env = isolated_env(workdir / "hubjupyter", **{MARKER: marker})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    log_path = workdir / "hub.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    the_hub = Hub(
        f"http://127.0.0.1:{port}",
        workdir,
        str(values["password"]),
        str(values["service_token"]),
        log_path,
        culler_token=str(values["culler_token"]),
        backup_token=str(values["backup_token"]),
    )
    try:

        def hub_up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"hub exited with {proc.returncode}:\n{the_hub.log()}")
            try:
                return requests.get(the_hub.url + "/hub/api/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        _wait(hub_up, "the hub", 90, log_path)
        # Both servers spawn at once (the spawn is what costs time).
        for user in (*USERS, POD_USER):
            reply = the_hub.api("POST", f"/users/{user}/server")
            assert reply.status_code in (201, 202), reply.text
        reply = the_hub.api("POST", f"/users/alice/servers/{NAMED}")
        assert reply.status_code in (201, 202), reply.text

        def ready() -> bool:
            models = {u: the_hub.api("GET", f"/users/{u}").json() for u in (*USERS, POD_USER)}
            return all(m["servers"].get("", {}).get("ready") for m in models.values()) and bool(
                models["alice"]["servers"].get(NAMED, {}).get("ready")
            )

        _wait(ready, "the single-user servers", 180, log_path)
        the_hub.pod = pod
        the_hub.pod_port = pod_port
        the_hub.pod_marker = marker
        yield the_hub
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # the hub stops its servers and the proxy
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        _kill_marked(marker)
        log.close()


def hub_login(hub: Hub, user: str) -> requests.Session:
    """The hub's login form, as a browser fills it in."""
    session = requests.Session()
    session.trust_env = False
    form = session.get(f"{hub.url}/hub/login", timeout=30)
    assert form.status_code == 200, form.text
    xsrf = re.search(r'name="_xsrf"[^>]*value="([^"]+)"', form.text)
    assert xsrf is not None, form.text
    reply = session.post(
        f"{hub.url}/hub/login",
        data={"username": user, "password": hub.password, "_xsrf": xsrf.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert reply.status_code == 302, (reply.status_code, reply.text[:500])
    return session


def login(hub: Hub, user: str) -> requests.Session:
    """The browser's way in: the hub's login form, then the single-user server's OAuth flow."""
    session = hub_login(hub, user)
    page = session.get(f"{hub.url}/user/{user}/lab", timeout=60)
    assert page.status_code == 200, (page.status_code, page.url, page.text[:500])
    assert page.url == f"{hub.url}/user/{user}/lab"
    hops = [r.headers.get("Location", "") for r in page.history]
    assert any("/hub/api/oauth2/authorize" in h for h in hops), hops
    assert any(f"/user/{user}/oauth_callback" in h for h in hops), hops
    return session


@pytest.fixture(scope="module")
def sessions(hub: Hub) -> dict[str, requests.Session]:
    return {user: login(hub, user) for user in USERS}


def xsrf_headers(hub: Hub, session: requests.Session, user: str) -> dict[str, str]:
    token = session.cookies.get("_xsrf", path=f"/user/{user}/")
    assert token, session.cookies
    return {
        "X-XSRFToken": token,
        "Origin": hub.url,
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/json",
    }


def test_each_user_gets_a_hardened_server(hub: Hub, sessions: dict[str, requests.Session]) -> None:
    for user, session in sessions.items():
        status = session.get(f"{hub.url}/user/{user}/api/status", timeout=30)
        assert status.status_code == 200, status.text
        me = session.get(f"{hub.url}/user/{user}/api/me", timeout=30)
        assert me.status_code == 200, me.text
        assert me.json()["identity"]["username"] == user
    # No token login URL: the hub's OAuth is the only way in.
    assert "Log in once with this URL" not in hub.log()


def test_policy_headers_hold_through_the_proxy(
    hub: Hub, sessions: dict[str, requests.Session]
) -> None:
    session = sessions["alice"]
    page = session.get(f"{hub.url}/user/alice/lab", timeout=30)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "script-src 'self'",
    ):
        assert directive in csp, csp
    assert csp != "frame-ancestors 'none'"  # the hub extension's default was replaced
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in page.headers["Permissions-Policy"]
    assert "X-JupyterHub-Version" not in page.headers  # no version disclosure
    api = session.get(f"{hub.url}/user/alice/api/contents", timeout=30)
    assert api.status_code == 200
    assert api.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in api.headers["Content-Security-Policy"]
    # A foreign Host goes through the proxy (it routes on the path) and is refused by us.
    foreign = session.get(
        f"{hub.url}/user/alice/api/contents", timeout=30, headers={"Host": "evil.example"}
    )
    assert foreign.status_code == 403, foreign.text


def test_path_rules_hold_through_the_proxy(hub: Hub, sessions: dict[str, requests.Session]) -> None:
    session = sessions["alice"]
    base = f"{hub.url}/user/alice"
    listing = session.get(f"{base}/api/contents", timeout=30)
    assert listing.status_code == 200
    names = {item["name"] for item in listing.json()["content"]}
    assert "notes.txt" in names
    assert not names & {".env", ".ssh", ".hidden.txt"}, names
    for rel in (".env", ".ssh/id_rsa", ".hidden.txt"):
        for url in (f"{base}/api/contents/{rel}", f"{base}/files/{rel}"):
            reply = session.get(url, timeout=30)
            assert reply.status_code in (403, 404), (url, reply.status_code)
            assert "SECRET_OF" not in reply.text
            assert "PRIVATE KEY" not in reply.text
            assert "hidden note" not in reply.text
    overwrite = session.put(
        f"{base}/api/contents/.env",
        data=json.dumps({"type": "file", "format": "text", "content": "PWNED=1\n"}),
        headers=xsrf_headers(hub, session, "alice"),
        timeout=30,
    )
    assert overwrite.status_code in (403, 404), overwrite.text
    assert (hub.home("alice") / ".env").read_text() == "SECRET_OF_alice=1\n"


def test_contents_work_through_the_proxy(hub: Hub, sessions: dict[str, requests.Session]) -> None:
    session = sessions["alice"]
    base = f"{hub.url}/user/alice/api/contents"
    body = {"type": "file", "format": "text", "content": "written through the hub\n"}
    # Without the session-bound XSRF token the cookie alone does not write.
    refused = session.put(
        f"{base}/hub-e2e.txt",
        data=json.dumps(body),
        timeout=30,
        headers={"Content-Type": "application/json", "Origin": hub.url},
    )
    assert refused.status_code == 403, refused.text
    assert not (hub.home("alice") / "hub-e2e.txt").exists()
    saved = session.put(
        f"{base}/hub-e2e.txt",
        data=json.dumps(body),
        timeout=30,
        headers=xsrf_headers(hub, session, "alice"),
    )
    assert saved.status_code == 201, saved.text
    back = session.get(f"{base}/hub-e2e.txt", timeout=30)
    assert back.status_code == 200
    assert back.json()["content"] == "written through the hub\n"
    assert (hub.home("alice") / "hub-e2e.txt").read_text() == "written through the hub\n"
    assert not (hub.home("bob") / "hub-e2e.txt").exists()


def test_alice_cannot_reach_bobs_server(hub: Hub, sessions: dict[str, requests.Session]) -> None:
    alice = sessions["alice"]
    bob_base = f"{hub.url}/user/bob"
    # The page: bob's server sends her to the hub's OAuth, which refuses her.
    page = alice.get(f"{bob_base}/lab", timeout=60)
    assert page.status_code == 403, (page.status_code, page.url)
    assert not page.url.startswith(bob_base + "/lab")
    # The API and files: no cookie of bob's server, so no user there.
    for url in (
        f"{bob_base}/api/contents",
        f"{bob_base}/api/contents/notes.txt",
        f"{bob_base}/files/notes.txt",
    ):
        reply = alice.get(url, timeout=30, allow_redirects=False)
        assert reply.status_code in (302, 403), (url, reply.status_code)
        assert "notes of bob" not in reply.text
        if reply.status_code == 302:
            assert "/hub/api/oauth2/authorize" in reply.headers["Location"]
    # Her own server's cookie, presented to bob's server under bob's cookie name.
    own = next(c for c in alice.cookies if c.name == "jupyterhub-user-alice")
    stolen = requests.get(
        f"{bob_base}/api/contents/notes.txt",
        timeout=30,
        cookies={"jupyterhub-user-bob": own.value or ""},
    )
    assert stolen.status_code == 403, stolen.text
    # A hub API token of hers: authenticated by the hub, refused by bob's server.
    token = hub.api("POST", "/users/alice/tokens", json={"note": "e2e"}).json()["token"]
    mine = requests.get(
        f"{hub.url}/user/alice/api/contents/notes.txt",
        timeout=30,
        headers={"Authorization": f"token {token}"},
    )
    assert mine.status_code == 200  # control
    assert "notes of alice" in mine.text
    theirs = requests.get(
        f"{bob_base}/api/contents/notes.txt",
        timeout=30,
        headers={"Authorization": f"token {token}"},
    )
    assert theirs.status_code == 403, theirs.text
    assert "notes of bob" not in theirs.text
    assert (hub.home("bob") / "notes.txt").read_text() == "notes of bob\n"


def test_logout_goes_on_to_the_hub(hub: Hub, sessions: dict[str, requests.Session]) -> None:
    """Bob's logout clears his server's cookie and sends him to the hub's logout (the one
    outside target the redirect rules let through besides the OAuth endpoint)."""
    bob = sessions["bob"]
    reply = bob.get(f"{hub.url}/user/bob/logout", timeout=30, allow_redirects=False)
    assert reply.status_code == 302, reply.text
    assert reply.headers["Location"] == "/hub/logout"
    cleared = [
        c for c in reply.raw.headers.getlist("Set-Cookie") if c.startswith("jupyterhub-user-bob=")
    ]
    assert cleared, reply.headers
    after = bob.get(f"{hub.url}/user/bob/api/contents", timeout=30, allow_redirects=False)
    assert after.status_code == 403


def test_audit_records_name_the_hub_user(hub: Hub, sessions: dict[str, requests.Session]) -> None:
    """Each server's audit trail (the hash-chained file) names the hub user: the hub login,
    a refused read by the logged-in user, the refused hub user at another's server (who tried,
    not only that someone did), the logout. Both chains verify."""

    def find(server: str, **fields: object) -> list[dict[str, object]]:
        records = hub.audit_records(server)
        return [r for r in records if all(r.get(k) == v for k, v in fields.items())]

    for user in USERS:
        assert find(
            user,
            rule_id="HS-HUB-001",
            event_kind="login_success",
            decision="allow",
            user=user,
            path=f"/user/{user}/oauth_callback",
        ), hub.audit_records(user)
    assert find(
        "alice",
        rule_id="HS-PATH-003",
        decision="deny",
        user="alice",
        path="/user/alice/api/contents/.env",
    ), hub.audit_records("alice")
    assert find(
        "bob",
        rule_id="HS-HUB-002",
        event_kind="login_failure",
        decision="deny",
        user="alice",
        path="/user/bob/api/contents/notes.txt",
    ), hub.audit_records("bob")
    assert find(
        "bob", rule_id="HS-HUB-003", event_kind="logout", user="bob", path="/user/bob/logout"
    ), hub.audit_records("bob")
    for user in USERS:
        files = hub.audit_files(user)
        assert files
        verified = subprocess.run(
            [sys.executable, "-m", "hardened_server", "audit", "verify-log", *map(str, files)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr


# -- access by others, a named server, the idle culler (issue #19 item 8) ---------------------


def _form_fields(html: str) -> list[tuple[str, str]]:
    """The hidden inputs of the hub's OAuth confirmation form (``_xsrf`` and the scopes)."""
    fields = []
    for tag in re.findall(r"<input[^>]*>", html):
        if 'type="hidden"' not in tag:
            continue
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name is not None:
            fields.append((name.group(1), html_unescape(value.group(1) if value else "")))
    return fields


@pytest.fixture(scope="module")
def admin_at_alice(hub: Hub) -> requests.Session:
    """The hub admin's "access server" on alice's server, as the admin page's link does it:
    the hub login, then alice's server sends the browser to the hub's OAuth, where the hub asks
    the admin to confirm (not the admin's own server), then back to alice's server."""
    session = hub_login(hub, ADMIN)
    page = session.get(f"{hub.url}/user/alice/lab", timeout=60)
    assert page.status_code == 200, (page.status_code, page.url)
    assert "/hub/api/oauth2/authorize" in page.url, page.url  # the confirmation page
    fields = _form_fields(page.text)
    assert any(name == "_xsrf" for name, _ in fields), page.text[:2000]
    done = session.post(page.url, data=fields, timeout=60, headers={"Referer": page.url})
    assert done.status_code == 200, (done.status_code, done.url, done.text[:500])
    assert done.url == f"{hub.url}/user/alice/lab"
    return session


def _non_owner_records(hub: Hub, server_user: str, who: str) -> list[dict[str, Any]]:
    return [
        r
        for r in hub.audit_records(server_user)
        if r.get("user") == who and r.get("rule_id") == "HS-HUB-004"
    ]


def test_admin_access_is_recorded_in_the_owners_trail(
    hub: Hub, sessions: dict[str, requests.Session], admin_at_alice: requests.Session
) -> None:
    """The admin reads and writes alice's files and lists her kernels through the proxy; every
    one of those requests is in alice's trail, naming the admin and saying it was not alice
    (``non_owner: "user"``), and so is the write itself and the admin's login there. alice's
    own records do not carry the field."""
    base = f"{hub.url}/user/alice"
    read = admin_at_alice.get(f"{base}/api/contents/notes.txt", timeout=30)
    assert read.status_code == 200, read.text
    assert read.json()["content"] == "notes of alice\n"
    kernels = admin_at_alice.get(f"{base}/api/kernels", timeout=30)
    assert kernels.status_code == 200, kernels.text
    body = {"type": "file", "format": "text", "content": "the admin was here\n"}
    wrote = admin_at_alice.put(
        f"{base}/api/contents/admin-wrote.txt",
        data=json.dumps(body),
        timeout=30,
        headers=xsrf_headers(hub, admin_at_alice, "alice"),
    )
    assert wrote.status_code == 201, wrote.text
    # alice herself, as a control: nothing of hers says "not the owner".
    assert sessions["alice"].get(f"{base}/api/contents/notes.txt", timeout=30).status_code == 200

    records = hub.audit_records("alice")
    accesses = _non_owner_records(hub, "alice", ADMIN)
    seen = {(r["method"], r["path"]) for r in accesses}
    for request in (
        ("GET", "/user/alice/api/contents/notes.txt"),
        ("GET", "/user/alice/api/kernels"),
        ("PUT", "/user/alice/api/contents/admin-wrote.txt"),
    ):
        assert request in seen, (request, accesses)
    for r in accesses:
        assert (r["non_owner"], r["event_kind"], r["decision"]) == (
            "user",
            "non_owner_access",
            "allow",
        ), r
        assert "owner=alice" in str(r["subject"]), r
    written = [
        r
        for r in records
        if r.get("event_kind") == "file_written" and "admin-wrote.txt" in str(r.get("path"))
    ]
    assert written
    assert all(r["user"] == ADMIN and r["non_owner"] == "user" for r in written)
    assert [
        r
        for r in records
        if r.get("rule_id") == "HS-HUB-001"
        and r.get("user") == ADMIN
        and r.get("non_owner") == "user"
    ], records
    alices = [r for r in records if r.get("user") == "alice"]
    assert alices
    assert not [r for r in alices if "non_owner" in r], alices
    assert (hub.home("alice") / "admin-wrote.txt").read_text() == "the admin was here\n"


def test_a_service_token_is_recorded_in_the_owners_trail(hub: Hub) -> None:
    """A hub service with ``access:servers!user=alice`` reads alice's file with its token: the
    read is in her trail naming the service (``non_owner: "service"``). At bob's server the
    same token is refused, and bob's trail names the service too."""
    headers = {"Authorization": f"token {hub.backup_token}"}
    read = requests.get(f"{hub.url}/user/alice/api/contents/notes.txt", headers=headers, timeout=30)
    assert read.status_code == 200, read.text
    assert "notes of alice" in read.text
    refused = requests.get(
        f"{hub.url}/user/bob/api/contents/notes.txt", headers=headers, timeout=30
    )
    assert refused.status_code == 403, refused.text
    assert "notes of bob" not in refused.text

    (access,) = [
        r
        for r in _non_owner_records(hub, "alice", "nightly-backup")
        if r["path"] == "/user/alice/api/contents/notes.txt"
    ]
    assert (access["non_owner"], access["method"]) == ("service", "GET"), access
    assert [
        r
        for r in hub.audit_records("bob")
        if r.get("rule_id") == "HS-HUB-002"
        and r.get("user") == "nightly-backup"
        and r.get("non_owner") == "service"
    ], hub.audit_records("bob")


def test_a_named_server_is_reached_and_its_trail_names_it(
    hub: Hub, sessions: dict[str, requests.Session]
) -> None:
    """alice's named server, through the proxy after its own OAuth round (a separate OAuth
    client): its trail is its own, and every line of it names the hub user and the server."""
    alice = sessions["alice"]
    base = f"{hub.url}/user/alice/{NAMED}"
    page = alice.get(f"{base}/lab", timeout=60)
    assert page.status_code == 200, (page.status_code, page.url)
    assert page.url == f"{base}/lab"
    listing = alice.get(f"{base}/api/contents", timeout=30)
    assert listing.status_code == 200
    assert "notes.txt" in {item["name"] for item in listing.json()["content"]}

    lines = hub.audit_lines("alice", NAMED)
    assert lines
    assert {(line["server"]["hub_user"], line["server"]["server_name"]) for line in lines} == {
        ("alice", NAMED)
    }, lines[:3]
    records = [line["event"] for line in lines if line.get("kind") == "decision"]
    assert [
        r
        for r in records
        if r.get("rule_id") == "HS-HUB-001"
        and r.get("path") == f"/user/alice/{NAMED}/oauth_callback"
    ], records
    # The default server's trail is another chain and says it is the default one.
    default = hub.audit_lines("alice")
    assert default
    assert {line["server"]["server_name"] for line in default} == {""}
    assert {line.get("chain") for line in lines}.isdisjoint({line.get("chain") for line in default})


def test_the_idle_culler_stops_an_idle_server_cleanly(hub: Hub) -> None:
    """jupyterhub-idle-culler, as the hub service ``idle-culler`` (its token and the role its
    documentation gives it), culls alice's idle named server: it asks the hub
    (``DELETE /hub/api/users/alice/servers/NAME``), the hub stops the server, and the server's
    trail ends with a clean ``close`` that verifies. The culler runs here (an externally
    managed service) with a one-second timeout and named servers only, so it cannot cull a
    server the other tests still use."""
    env = {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": hub.culler_token,
        "JUPYTERHUB_API_URL": f"{hub.url}/hub/api",
        "JUPYTERHUB_SERVICE_NAME": "idle-culler",
    }
    out = hub.workdir / "idle-culler.log"
    with open(out, "wb") as sink:
        culler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                "--timeout=1",
                "--cull-every=2",
                "--cull-default-servers=false",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:

            def culled() -> bool:
                return NAMED not in hub.api("GET", "/users/alice").json()["servers"]

            _wait(culled, "the idle culler's cull", 60, out)
        finally:
            culler.terminate()
            culler.wait(10)
    culler_log = out.read_text(errors="replace")
    assert f"Culling server alice/{NAMED}" in culler_log, culler_log
    assert re.search(rf"DELETE /hub/api/users/alice/servers/{NAMED} \(idle-culler@", hub.log())
    # Only the named server: the default servers stay.
    assert hub.api("GET", "/users/alice").json()["servers"][""]["ready"]
    files = hub.audit_files("alice", NAMED)
    last = json.loads(files[-1].read_bytes().splitlines()[-1])
    assert last["kind"] == "close", last
    verified = subprocess.run(
        [sys.executable, "-m", "hardened_server", "audit", "verify-log", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "closed cleanly" in verified.stdout


# -- the Kubernetes recipe's pod command under the hub --------------------------------------
#
# The user POD_USER runs exactly the command KubeSpawner renders from deploy/kubernetes/values.yaml
# (tests/support/kubernetes.py), with the ConfigMap's files laid out as the kubelet does under a
# prefix: the site policy (public name hub.example.org) must be what the server loads.

PUBLIC = "hub.example.org"


@pytest.fixture(scope="module")
def pod_session(hub: Hub) -> requests.Session:
    return login(hub, POD_USER)


def pod_records(hub: Hub) -> list[dict[str, object]]:
    return hub.audit_records(POD_USER)


def pod_pid(hub: Hub) -> int:
    pids = []
    for pid in _marked_pids(hub.pod_marker, POD_MARKER):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"singleuser" in cmdline and b"hardened_server" in cmdline:
                pids.append(pid)
    (pid,) = pids
    return pid


def reloads(hub: Hub) -> list[dict[str, object]]:
    return [r for r in pod_records(hub) if r.get("rule_id") in ("HS-POLICY-002", "HS-POLICY-003")]


def through_public_name(hub: Hub, session: requests.Session, host: str) -> requests.Response:
    """A request through the proxy as a browser at http://HOST would send it, with the cookies
    it holds for the server (the proxy routes on the path and keeps Host). The cookies go in by
    hand: ``requests`` matches its jar against the Host header, and they were set on 127.0.0.1."""
    cookies = "; ".join(
        f"{c.name}={c.value}" for c in session.cookies if c.path.startswith(f"/user/{POD_USER}/")
    )
    return requests.get(
        f"{hub.url}/user/{POD_USER}/api/contents",
        headers={"Host": host, "Cookie": cookies},
        timeout=30,
        allow_redirects=False,
    )


def test_kubernetes_pod_loads_the_site_policy_and_answers_the_public_name(
    hub: Hub, pod_session: requests.Session
) -> None:
    loaded = [r for r in pod_records(hub) if r.get("rule_id") == "HS-POLICY-001"]
    assert loaded
    assert "site.toml" in str(loaded[0].get("subject")), loaded
    reply = through_public_name(hub, pod_session, PUBLIC)
    assert reply.status_code == 200, (reply.status_code, reply.text[:300])
    assert reply.json()["type"] == "directory"
    foreign = through_public_name(hub, pod_session, "evil.example")
    assert foreign.status_code == 403
    assert any(
        r.get("rule_id") == "HS-HOST-002" and r.get("path") == f"/user/{POD_USER}/api/contents"
        for r in pod_records(hub)
    )


def test_kubernetes_pod_probe_answers_without_a_record(hub: Hub) -> None:
    before = len(pod_records(hub))
    for _ in range(3):
        reply = requests.get(f"http://127.0.0.1:{hub.pod_port}/hs-health", timeout=10)
        assert (reply.status_code, reply.text) == (200, "ok\n")
    # Not through the proxy: it routes only /user/NAME/ to the server.
    assert requests.get(f"{hub.url}/hs-health", timeout=10).text != "ok\n"
    assert pod_records(hub)[before:] == []


def _site_with(hub: Hub, *hosts: str, extra: str = "") -> dict[str, str]:
    assert hub.pod is not None
    text = hub.pod.data["site.toml"]
    old = f'public_hostnames = ["{PUBLIC}"]'
    assert old in text
    new = "public_hostnames = [" + ", ".join(f'"{h}"' for h in hosts) + "]"
    return {**hub.pod.data, "site.toml": text.replace(old, new) + extra}


@pytest.mark.timeout(300)
def test_kubernetes_pod_reloads_by_watcher_and_sighup(
    hub: Hub, pod_session: requests.Session
) -> None:
    """SIGHUP and the file watcher (``--policy-watch-interval=10`` in the values) apply a new
    policy to the hub-managed server (no HS-START-005: the hub's OAuth is the authentication);
    a policy that would break the hub's login is refused and the policy in force stays."""
    assert hub.pod is not None
    assert through_public_name(hub, pod_session, "new.example.org").status_code == 403
    seen = len(reloads(hub))

    # The kubelet's update of the ConfigMap volume (a ..data symlink swap): the watcher applies it.
    hub.pod.mount.write(_site_with(hub, PUBLIC, "new.example.org"))
    _wait(lambda: len(reloads(hub)) > seen, "the watcher's reload", 30, hub.log_path)
    (applied,) = reloads(hub)[seen:]
    assert applied["rule_id"] == "HS-POLICY-002", applied
    assert applied.get("trigger") == "file change" or "file change" in json.dumps(applied)
    assert through_public_name(hub, pod_session, "new.example.org").status_code == 200
    seen += 1

    # SIGHUP applies at once.
    hub.pod.mount.write(_site_with(hub, PUBLIC, "newer.example.org"))
    os.kill(pod_pid(hub), signal.SIGHUP)
    _wait(lambda: len(reloads(hub)) > seen, "the SIGHUP reload", 5, hub.log_path)
    new = reloads(hub)[seen:]  # (a watcher tick between the write and the signal adds one)
    assert all(r["rule_id"] == "HS-POLICY-002" for r in new), new
    assert "SIGHUP" in json.dumps(new)
    assert through_public_name(hub, pod_session, "newer.example.org").status_code == 200
    assert through_public_name(hub, pod_session, "new.example.org").status_code == 403
    seen = len(reloads(hub))

    # routes.public without the hub's OAuth callback: refused (HS-HUB-013), old policy stays.
    broken = _site_with(hub, PUBLIC, "newer.example.org", extra='\n[routes]\npublic = ["/login"]\n')
    hub.pod.mount.write(broken)
    os.kill(pod_pid(hub), signal.SIGHUP)
    _wait(lambda: len(reloads(hub)) > seen, "the refused reload", 5, hub.log_path)
    refused = reloads(hub)[seen]
    assert refused["rule_id"] == "HS-POLICY-003", refused
    assert "HS-HUB-013" in json.dumps(refused)
    assert "HS-START-005" not in json.dumps(refused)
    assert through_public_name(hub, pod_session, "newer.example.org").status_code == 200


def test_a_server_the_hub_stops_closes_its_trail(hub: Hub) -> None:
    """Issue #19: the hub's spawner stops a server with SIGINT and no TTY, which stock
    jupyter_server ends without its cleanup: every hub stop read as a crash. Runs last (it
    stops bob's server): the trail ends with a ``close`` record and verifies as closed."""
    r = hub.api("DELETE", "/users/bob/server")
    assert r.status_code in (202, 204), r.text

    def stopped() -> bool:
        return not hub.api("GET", "/users/bob").json().get("servers")

    _wait(stopped, "bob's server to stop", 60, hub.log_path)
    files = hub.audit_files("bob")
    last = json.loads(files[-1].read_bytes().splitlines()[-1])
    assert last["kind"] == "close", hub.log()[-3000:]
    verified = subprocess.run(
        [sys.executable, "-m", "hardened_server", "audit", "verify-log", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "closed cleanly" in verified.stdout
