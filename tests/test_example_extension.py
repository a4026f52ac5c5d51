"""The example extension (examples/hello_extension) under real hardened-server processes.

The extension is written the way Jupyter's documentation teaches it, with no hardened-server code.
These tests pin what the policy gives it for free, and that the variant which forgets
``@tornado.web.authenticated`` stops the server instead of serving anonymous requests.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hardened_server.enforcement.handlers import iter_handler_rules
from hardened_server.enforcement.inventory import original_handler
from tests.conftest import REPO
from tests.support.server import ServerProcess, root_flag, strong_token

pytestmark = pytest.mark.live

EXAMPLE = REPO / "examples" / "hello_extension"

# Traitlets' CLI form for a Dict trait is `name=value`, one item per option. The option can be
# repeated, and it merges with the extensions that installed packages enable. The JSON form
# '{"hello_extension": true}' is refused by traitlets ("expected a dict, not the list").
ENABLE_GOOD = "--ServerApp.jpserver_extensions=hello_extension=True"
ENABLE_UNSAFE = "--ServerApp.jpserver_extensions=hello_extension_unsafe=True"
# JupyterLab and friends are irrelevant to the refusal and the public-route cases. Disabling
# them halves the start-up time.
WITHOUT_FRONTENDS = [
    f"--ServerApp.jpserver_extensions={name}=False"
    for name in ("jupyterlab", "notebook_shim", "jupyter_lsp", "jupyter_server_terminals")
]

# routes.public replaces the default list as a whole, so the default entries come along.
PUBLIC_HELLO_POLICY = r"""
[routes]
public = ['/login', '/static/(.*)', '/(favicon\.ico)', '/(robots\.txt)', '/hello', '/hello-plain']

[scopes]
routes = { "/hello" = { GET = "frontend:read" } }
"""

# An extension route is refused until the operator maps it to the scopes it needs (the route
# map knows core, JupyterLab, Notebook 7, jupyter_lsp and terminals, not extensions). The test
# policy maps it, as the example's README tells an operator to; the default profile does not
# know the example.
HELLO_SCOPES_POLICY = """
[scopes]
routes = { "/hello" = { GET = "frontend:read" } }
"""

POLICY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def header_values(response: requests.Response, name: str) -> list[str]:
    """Every occurrence of a header field as sent (requests joins repeated fields with ',')."""
    return list(response.raw.headers.getlist(name))


def csp_directive_names(csp: str) -> list[str]:
    return [d.split()[0].lower() for d in csp.split(";") if d.strip()]


def is_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def exit_code_or_none_if_listening(server: ServerProcess, timeout: float = 90) -> int | None:
    """The exit code, or None as soon as the server listens (fail fast, not at a timeout)."""
    assert server.proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return server.wait_exit(5)
        if is_listening(server.port):
            return None
        time.sleep(0.05)
    raise AssertionError(f"server neither exited nor listened in {timeout}s:\n{server.log()}")


@pytest.fixture(scope="module")
def hello_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The good variant alongside everything installed (JupyterLab included), as a user runs it,
    with its route mapped in the policy."""
    workdir = tmp_path_factory.mktemp("hello")
    policy = workdir / "policy.toml"
    policy.write_text(HELLO_SCOPES_POLICY)
    server = ServerProcess(
        workdir, [f"--policy={policy}", ENABLE_GOOD], pythonpath=[EXAMPLE]
    ).start()
    yield server
    server.stop()


# -- the good variant ------------------------------------------------------------------------


def test_documented_extension_loads_and_greets_the_token_user(hello_server):
    r = requests.get(hello_server.url + "/hello", headers=hello_server.auth(), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"hello"}
    assert isinstance(body["hello"], str)
    assert body["hello"]


def test_anonymous_request_to_extension_route_is_403_json(hello_server):
    """The extension's own decorator and the policy's login gate both refuse it. The policy's
    gate runs first and records the denial (HS-AUTH-001)."""
    r = requests.get(hello_server.url + "/hello", timeout=10)
    assert r.status_code == 403
    assert r.headers["Content-Type"].startswith("application/json")
    assert "hello" not in r.json()


def test_url_token_is_not_accepted_on_extension_api_route(hello_server):
    """A ?token= on an API request would be written to access logs and proxies, and leak in
    Referers. Only a top-level page navigation may carry it (and has it exchanged)."""
    r = requests.get(hello_server.url + "/hello", params={"token": hello_server.token}, timeout=10)
    assert r.status_code == 403


def test_extension_response_carries_policy_headers(hello_server):
    """The extension sets no headers itself. It gets the api-class CSP and the rest of the
    policy's header set, and no Server header (no version fingerprint).

    Exactly one CSP header, with no directive repeated: stock APIHandler appends
    `default-src 'none'` to whatever its base class returns (the `headers` setting's CSP
    included), and browsers obey only the first copy of a repeated directive. Two CSP headers
    are both enforced, which breaks pages in ways that are hard to trace."""
    r = requests.get(hello_server.url + "/hello", headers=hello_server.auth(), timeout=10)
    assert r.status_code == 200

    csps = header_values(r, "Content-Security-Policy")
    assert len(csps) == 1, csps
    names = csp_directive_names(csps[0])
    assert len(names) == len(set(names)), csps[0]
    assert "default-src 'none'" in csps[0]
    assert "frame-ancestors 'none'" in csps[0]
    assert "unsafe-eval" not in csps[0]  # the page class's accepted risk is not the API's
    assert not header_values(r, "Content-Security-Policy-Report-Only")

    for name, value in POLICY_HEADERS.items():
        assert header_values(r, name) == [value], (name, header_values(r, name))
    permissions = header_values(r, "Permissions-Policy")
    assert len(permissions) == 1
    assert "camera=()" in permissions[0]
    assert "geolocation=()" in permissions[0]
    assert "Server" not in r.headers


def test_anonymous_403_from_extension_route_carries_policy_headers_too(hello_server):
    """Errors are responses too: a 403 without nosniff or frame-ancestors is still a page an
    attacker can frame or sniff."""
    r = requests.get(hello_server.url + "/hello", timeout=10)
    assert r.status_code == 403
    assert len(header_values(r, "Content-Security-Policy")) == 1
    for name, value in POLICY_HEADERS.items():
        assert header_values(r, name) == [value], name
    assert "Server" not in r.headers


def test_foreign_host_header_is_403_even_with_valid_token(hello_server):
    """DNS rebinding: a page on evil.example that re-points its name at 127.0.0.1 sends
    `Host: evil.example`. The Host allow-list is always on, extension routes included."""
    r = requests.get(
        hello_server.url + "/hello",
        headers={**hello_server.auth(), "Host": "evil.example"},
        timeout=10,
    )
    assert r.status_code == 403
    assert "hello" not in r.text


def test_unmapped_extension_route_is_refused_and_named_at_start_up(server_factory):
    """Without a scopes.routes entry the route map does not know what /hello needs, so it is
    refused (403, HS-SCOPE-002) even with the owner's token, and the start-up log names the
    route and the key that maps it."""
    server = server_factory([ENABLE_GOOD, *WITHOUT_FRONTENDS], pythonpath=[EXAMPLE])
    r = requests.get(server.url + "/hello", headers=server.auth(), timeout=10)
    assert r.status_code == 403
    assert "scopes.routes" in r.json()["message"]
    assert "hello" not in r.json()
    log = server.log()
    startup = [line for line in log.splitlines() if "[HS-SCOPE-002]" in line]
    assert len(startup) == 1, log
    assert "'/hello'" in startup[0]
    assert "hello_extension.handlers.HelloHandler" in startup[0]
    assert 'scopes.routes = { "/hello" = {' in startup[0]
    assert re.search(r"policy denial rule=HS-SCOPE-002 .*path=/hello ", log), log
    # Core routes are mapped: the same token still reads the API.
    assert requests.get(server.url + "/api/contents", headers=server.auth(), timeout=10).ok


def test_wrapped_extension_handler_is_still_a_subclass_of_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """hardened-server re-points the rule at a subclass with the policy mixin first in the MRO,
    so the extension's isinstance checks and super() chains keep working. This is checked
    in-process: the application is built without binding a port."""
    from hardened_server.app import HardenedServerApp

    for var in [v for v in os.environ if v.startswith("JUPYTER")]:
        monkeypatch.delenv(var)  # the same isolation as ServerProcess: no developer config
    for name in ("config", "runtime", "data"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(f"JUPYTER_{name.upper()}_DIR", str(tmp_path / name))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("JUPYTER_TOKEN", strong_token())
    monkeypatch.syspath_prepend(str(EXAMPLE))
    (tmp_path / "root").mkdir()

    app = HardenedServerApp()
    try:
        app.initialize(
            argv=[
                "--ip=127.0.0.1",
                f"--root-dir={tmp_path / 'root'}",
                "--ServerApp.open_browser=False",
                *root_flag(),
                ENABLE_GOOD,
                *WITHOUT_FRONTENDS,
            ],
            find_extensions=False,
            new_httpserver=False,
        )
        from hello_extension.handlers import HelloHandler

        # The first matching rule serves the request (the 404 catch-all matches too, later).
        targets = [
            rule.target
            for rule in iter_handler_rules(app.web_app.default_router)
            if re.fullmatch(rule.matcher.regex, "/hello")
        ]
        served = targets[0]
        assert served is not HelloHandler
        assert issubclass(served, HelloHandler)
        assert original_handler(served) is HelloHandler
        assert served.__qualname__ == HelloHandler.__qualname__
        facts = [f for f in app.route_facts() if f.pattern == "/hello"]
        assert [(f.handler, f.undecorated) for f in facts] == [
            ("hello_extension.handlers.HelloHandler", ())
        ]
    finally:
        HardenedServerApp.clear_instance()
        sys.modules.pop("hello_extension.handlers", None)
        sys.modules.pop("hello_extension", None)


# -- the unsafe variant ----------------------------------------------------------------------


def test_extension_route_without_authenticated_decorator_refuses_start(server_factory):
    """Forgetting @tornado.web.authenticated gets only a warning from stock jupyter_server,
    and its plain RequestHandler then answers anyone. hardened-server refuses to start
    (HS-START-001) and names the route, the handler and both ways out."""
    server = server_factory([ENABLE_UNSAFE, *WITHOUT_FRONTENDS], pythonpath=[EXAMPLE], start=False)
    server.start(wait=False)
    code = exit_code_or_none_if_listening(server)
    out = server.log()
    assert code is not None, f"the server started with an unauthenticated route:\n{out}"
    assert code == 2, out
    assert "refusing to start" in out
    assert "HS-START-001" in out
    assert "'/hello'" in out
    assert "'/hello-plain'" in out
    assert "UnsafeHelloHandler" in out
    assert "UnsafePlainHelloHandler" in out
    assert "@tornado.web.authenticated" in out
    assert "routes.public" in out
    assert set(re.findall(r"\[(HS-START-\d{3})\]", out)) == {"HS-START-001"}
    assert not is_listening(server.port)
    assert "is running at" not in out


def test_undecorated_extension_routes_listed_in_routes_public_start(server_factory):
    """routes.public is the explicit, reviewable way to make a route public. The server starts.
    The plain RequestHandler route then answers anonymous requests (with the policy's headers).
    The undecorated APIHandler route still needs a user: jupyter_server's own
    JupyterHandler.prepare requires one unless the method carries @allow_unauthenticated, so the
    code and the policy must both say "public"."""
    server = server_factory(
        [ENABLE_UNSAFE, *WITHOUT_FRONTENDS],
        pythonpath=[EXAMPLE],
        policy_text=PUBLIC_HELLO_POLICY,
    )
    plain = requests.get(server.url + "/hello-plain", timeout=10)
    assert plain.status_code == 200
    assert plain.json() == {"hello": "plain"}
    assert header_values(plain, "X-Content-Type-Options") == ["nosniff"]
    assert len(header_values(plain, "Content-Security-Policy")) == 1
    assert "Server" not in plain.headers

    anonymous = requests.get(server.url + "/hello", timeout=10)
    assert anonymous.status_code == 403
    authenticated = requests.get(server.url + "/hello", headers=server.auth(), timeout=10)
    assert authenticated.status_code == 200
    assert authenticated.json()["hello"]

    foreign = requests.get(
        server.url + "/hello-plain", headers={"Host": "evil.example"}, timeout=10
    )
    assert foreign.status_code == 403
