"""The scope matrix: every route of the running app, every method it implements, tokens of
different scopes, over real HTTP.

One server (the shipped policy plus terminals and one client event schema, with JupyterLab,
Notebook 7, jupyter_lsp and terminals loaded), one route inventory read off the application's own
rules, tokens made with ``hardened-server token create``. For each (route, method, token) the test
asks whether the scope gate refused it (403 and a ``HS-SCOPE-001``/``-002`` decision record) and
compares with :data:`REQUIRED`, this test's own statement of what each handler's methods need
(written from SECURITY.md, not read from the route map). Requests that pass the gate carry a body
that is not JSON, so a handler refuses them (400/404) instead of acting; the two that would act
without reading a body (shutdown, a JupyterLab build) are sent only by tokens that must be refused.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hardened_server.policy.scopes import ADMIN, SCOPES
from tests.support.live import ws_status
from tests.support.routes import dump_routes, sample_path
from tests.support.server import ServerProcess

pytestmark = pytest.mark.live

CLIENT_SCHEMA = "https://events.example.org/scope-matrix/click/v1"
POLICY = f"""
[terminals]
enabled = true

[scopes]
client_event_schemas = ["{CLIENT_SCHEMA}"]
"""

NONE: frozenset[str] = frozenset()
CR = frozenset({"contents:read"})
CW = frozenset({"contents:write"})
KR = frozenset({"kernels:read"})
KX = frozenset({"kernels:execute"})
SR = frozenset({"sessions:read"})
SW = frozenset({"sessions:write", "kernels:execute"})
T = frozenset({"terminals"})
EW = frozenset({"events:write"})
ER = frozenset({"events:read"})
M = frozenset({"metrics:read"})
FR = frozenset({"frontend:read"})
FW = frozenset({"frontend:write"})
ADM = frozenset({ADMIN})
ANY = "*"

JS = "jupyter_server."
#: handler (module.qualname) -> method -> scopes needed (all of them); "*": every method.
REQUIRED: dict[str, dict[str, frozenset[str]]] = {
    # files
    JS + "services.contents.handlers.ContentsHandler": {
        "GET": CR,
        "HEAD": CR,
        "POST": CW,
        "PUT": CW,
        "PATCH": CW,
        "DELETE": CW,
    },
    JS + "services.contents.handlers.CheckpointsHandler": {"GET": CR, "POST": CW},
    JS + "services.contents.handlers.ModifyCheckpointsHandler": {"POST": CW, "DELETE": CW},
    JS + "services.contents.handlers.TrustNotebooksHandler": {"POST": CW},
    "hardened_server.enforcement.files.HardenedFileHandler": {"GET": CR, "HEAD": CR},
    JS + "view.handlers.ViewHandler": {"GET": CR},
    JS + "services.api.handlers.PathResolverHandler": {"GET": CR},
    JS + "nbconvert.handlers.NbconvertFileHandler": {"GET": CR},
    JS + "nbconvert.handlers.NbconvertPostHandler": {"POST": CR},
    JS + "services.nbconvert.handlers.NbconvertRootHandler": {"GET": CR},
    # kernels and sessions
    JS + "services.kernels.handlers.MainKernelHandler": {"GET": KR, "POST": KX},
    JS + "services.kernels.handlers.KernelHandler": {"GET": KR, "DELETE": KX},
    JS + "services.kernels.handlers.KernelActionHandler": {"POST": KX},
    JS + "services.kernels.websocket.KernelWebsocketHandler": {"GET": KX},
    JS + "services.kernelspecs.handlers.MainKernelSpecHandler": {"GET": KR},
    JS + "services.kernelspecs.handlers.KernelSpecHandler": {"GET": KR},
    JS + "kernelspecs.handlers.KernelSpecResourceHandler": {"GET": KR, "HEAD": KR},
    JS + "services.sessions.handlers.SessionRootHandler": {"GET": SR, "POST": SW},
    JS + "services.sessions.handlers.SessionHandler": {"GET": SR, "PATCH": SW, "DELETE": SW},
    "jupyter_lsp.handlers.LanguageServersHandler": {"GET": KR},
    "jupyter_lsp.handlers.LanguageServerWebSocketHandler": {"GET": KX},
    # terminals
    "jupyter_server_terminals.api_handlers.TerminalRootHandler": {"GET": T, "POST": T},
    "jupyter_server_terminals.api_handlers.TerminalHandler": {"GET": T, "DELETE": T},
    "jupyter_server_terminals.handlers.TermSocket": {"GET": T},
    # events, metrics, server
    JS + "services.events.handlers.EventHandler": {"POST": EW},
    JS + "services.events.handlers.SubscribeWebsocket": {"GET": ER},
    JS + "base.handlers.PrometheusMetricsHandler": {"GET": M},
    JS + "services.shutdown.ShutdownHandler": {"POST": ADM},
    JS + "services.config.handlers.ConfigHandler": {"GET": FR, "PUT": FW, "PATCH": FW},
    # front-end: pages, assets, JupyterLab's /lab/api/*
    "jupyterlab_server.handlers.LabHandler": {"GET": FR},
    JS + "base.handlers.FileFindHandler": {"GET": FR, "HEAD": FR},
    "jupyterlab_server.settings_handler.SettingsHandler": {"GET": FR, "PUT": FW},
    "jupyterlab_server.workspaces_handler.WorkspacesHandler": {"GET": FR, "PUT": FW, "DELETE": FW},
    "jupyterlab_server.translations_handler.TranslationsHandler": {"GET": FR},
    "jupyterlab_server.listings_handler.ListingsHandler": {"GET": FR},
    "jupyterlab_server.themes_handler.ThemesHandler": {"GET": FR, "HEAD": FR},
    "jupyterlab_server.licenses_handler.LicensesHandler": {"GET": FR},
    "jupyterlab.handlers.announcements.CheckForUpdateHandler": {"GET": FR},
    "jupyterlab.handlers.announcements.NewsHandler": {"GET": FR},
    "jupyterlab.handlers.build_handler.BuildHandler": {"GET": FR, "POST": ADM, "DELETE": ADM},
    "jupyterlab.handlers.extension_manager_handler.ExtensionHandler": {"GET": FR, "POST": ADM},
    "jupyterlab.handlers.plugin_manager_handler.PluginHandler": {"GET": FR, "POST": ADM},
    "notebook.app.TreeHandler": {"GET": FR},
    "notebook.app.NotebookHandler": {"GET": FR},
    "notebook.app.FileHandler": {"GET": FR},
    "notebook.app.ConsoleHandler": {"GET": FR},
    "notebook.app.TerminalHandler": {"GET": FR},
    "notebook.app.CustomCssHandler": {"GET": FR},
    JS + "services.api.handlers.IdentityHandler": {"GET": NONE, "PATCH": FW},
    # any authenticated principal
    JS + "base.handlers.APIVersionHandler": {"GET": NONE},
    JS + "services.api.handlers.APIStatusHandler": {"GET": NONE},
    JS + "services.api.handlers.APISpecHandler": {"GET": NONE, "HEAD": NONE},
    "hardened_server.enforcement.cspreport.HardenedCSPReportHandler": {"POST": NONE},
    JS + "services.contents.handlers.NotebooksRedirectHandler": {ANY: NONE},
    JS + "auth.logout.LogoutHandler": {ANY: NONE},
    # identity's logout: GET shows a form, POST (XSRF, or a header token) ends this principal's
    # session(s); declared navigation by the handler itself
    "hardened_server.enforcement.identity.provider.HardenedLogoutHandler": {
        "GET": NONE,
        "POST": NONE,
    },
    JS + "base.handlers.TrailingSlashHandler": {ANY: NONE},
    JS + "base.handlers.RedirectWithParams": {ANY: NONE},
    JS + "base.handlers.Template404": {ANY: NONE},
    "jupyterlab_server.handlers.NotFoundHandler": {ANY: NONE},
}

#: name -> scopes of the tokens the matrix runs with.
TOKENS: dict[str, tuple[str, ...]] = {
    "contents-read": ("contents:read",),
    "contents-rw": ("contents:read", "contents:write"),
    "kernels-read": ("kernels:read",),
    "no-execute": tuple(s for s in SCOPES if s not in ("kernels:execute", ADMIN)),
    "metrics": ("metrics:read",),
    "frontend": ("frontend:read", "frontend:write"),
    "terminals": ("terminals",),
    "events": ("events:write", "events:read"),
    "admin": (ADMIN,),
}

# Methods that act without reading a body: sent only where the gate must refuse them.
ACTS_WITHOUT_BODY = {
    (JS + "services.shutdown.ShutdownHandler", "POST"),
    ("jupyterlab.handlers.build_handler.BuildHandler", "POST"),
    ("jupyterlab.handlers.build_handler.BuildHandler", "DELETE"),
}
WEBSOCKETS = {
    JS + "services.kernels.websocket.KernelWebsocketHandler",
    JS + "services.events.handlers.SubscribeWebsocket",
    "jupyter_lsp.handlers.LanguageServerWebSocketHandler",
    "jupyter_server_terminals.handlers.TermSocket",
}
MATRIX_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
SCOPE_RECORD = re.compile(r"policy denial rule=(HS-SCOPE-00[12]) ")


def required(handler: str, method: str) -> frozenset[str]:
    table = REQUIRED[handler]
    if method in table:
        return table[method]
    if method == "HEAD" and "GET" in table:
        return table["GET"]
    return table[ANY]


def may(scopes: tuple[str, ...], handler: str, method: str) -> bool:
    return ADMIN in scopes or required(handler, method) <= set(scopes)


# -- the server, its inventory and its tokens --------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("scopes")
    policy = workdir / "policy.toml"
    policy.write_text(POLICY)
    proc = ServerProcess(workdir, [f"--policy={policy}"]).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def routes(server: ServerProcess) -> list[dict[str, Any]]:
    found = dump_routes(server.argv[4:], server.env, str(server.workdir))
    assert len(found) > 60
    return found


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    """The first token through ``hardened-server token create`` as an operator makes it; the
    rest straight into the same store (one interpreter start each would cost seconds)."""
    from pathlib import Path

    from hardened_server.enforcement.identity.tokenstore import STORE_FILENAME, TokenStore

    out = {}
    first, *rest = TOKENS.items()
    name, scopes = first
    args = ["--name", name, "--expires", "1h"]
    for scope in scopes:
        args += ["--scope", scope]
    done = subprocess.run(
        [sys.executable, "-m", "hardened_server", "token", "create", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out[name] = done.stdout.strip()
    store = TokenStore(Path(server.env["JUPYTER_RUNTIME_DIR"]) / STORE_FILENAME)
    for name, scopes in rest:
        out[name] = store.create(name, scopes, 3600)[0]
    return out


class LogCursor:
    """Reads what the server logged since the last call."""

    def __init__(self, server: ServerProcess) -> None:
        self.path = server.log_path
        self.offset = self.path.stat().st_size

    def new(self) -> str:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        return data.decode("utf-8", "replace")


def effective(routes: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Non-public routes that are the first match for their own sample path (tornado serves the
    first matching rule; shadowed duplicates are never reached), with that path."""
    out, seen = [], set()
    for route in routes:
        if route["public"] or (route["pattern"], route["handler"]) in seen:
            continue
        path = sample_path(route["pattern"])
        first = next(r for r in routes if re.fullmatch(r["pattern"], path))
        if first is not route:
            continue
        seen.add((route["pattern"], route["handler"]))
        out.append((route, path))
    return out


@pytest.fixture(scope="module")
def matrix(
    server: ServerProcess, routes: list[dict[str, Any]], tokens: dict[str, str]
) -> dict[tuple[str, str, str, str], tuple[int, bool]]:
    """(token name, pattern, handler, method) -> (status, refused by the scope gate)."""
    cursor = LogCursor(server)
    out: dict[tuple[str, str, str, str], tuple[int, bool]] = {}
    started = time.monotonic()
    for route, path in effective(routes):
        handler = route["handler"]
        assert handler in REQUIRED, f"no expectation for {handler} on {route['pattern']!r}"
        # A handler implementing none of them (the 404 catch-all) still answers a GET.
        methods = [m for m in MATRIX_METHODS if m in route["served_methods"]] or ["GET"]
        for name, secret in tokens.items():
            for method in methods:
                if (handler, method) in ACTS_WITHOUT_BODY and may(TOKENS[name], handler, method):
                    continue
                cursor.new()
                if handler in WEBSOCKETS and method == "GET":
                    status = ws_status(server, path, secret)
                else:
                    r = requests.request(
                        method,
                        server.url + path,
                        headers={"Authorization": f"token {secret}"},
                        data=b"not json" if method not in ("GET", "HEAD") else None,
                        allow_redirects=False,
                        timeout=30,
                    )
                    status = r.status_code
                records = SCOPE_RECORD.findall(cursor.new())
                refused = bool(records)
                assert not refused or status == 403, (name, method, path, status)
                out[(name, route["pattern"], handler, method)] = (status, refused)
    print(f"\nscope matrix: {len(out)} requests in {time.monotonic() - started:.1f}s")
    return out


# -- the matrix --------------------------------------------------------------------------------


def test_every_route_method_and_token_is_refused_exactly_when_a_scope_is_missing(
    matrix: dict[tuple[str, str, str, str], tuple[int, bool]],
) -> None:
    wrong = [
        f"{name} {method} {pattern} ({handler.rsplit('.', 1)[1]}): status {status}, "
        f"{'refused' if refused else 'let through'}"
        for (name, pattern, handler, method), (status, refused) in matrix.items()
        if refused == may(TOKENS[name], handler, method)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_matrix_covers_every_non_public_route(
    routes: list[dict[str, Any]], matrix: dict[tuple[str, str, str, str], tuple[int, bool]]
) -> None:
    exercised = {(pattern, handler) for (_n, pattern, handler, _m) in matrix}
    for route, _path in effective(routes):
        assert (route["pattern"], route["handler"]) in exercised, route["pattern"]
    handlers = {handler for (_n, _p, handler, _m) in matrix}
    for expected in (
        "jupyterlab_server.settings_handler.SettingsHandler",
        "jupyter_server_terminals.handlers.TermSocket",
        "jupyter_lsp.handlers.LanguageServerWebSocketHandler",
        JS + "base.handlers.PrometheusMetricsHandler",
        JS + "services.events.handlers.EventHandler",
    ):
        assert expected in handlers, expected


def allowed_for(
    matrix: dict[tuple[str, str, str, str], tuple[int, bool]], name: str
) -> set[tuple[str, str]]:
    return {
        (handler, method)
        for (n, _p, handler, method), (_s, refused) in matrix.items()
        if n == name and not refused
    }


def test_a_contents_read_token_reads_contents_and_nothing_else(
    matrix: dict[tuple[str, str, str, str], tuple[int, bool]],
) -> None:
    """Beyond reading files (contents API, /files, /view, checkpoints list, nbconvert) it
    reaches only what every principal may: who am I, the API's description, redirects."""
    for handler, method in allowed_for(matrix, "contents-read"):
        assert required(handler, method) in (CR, NONE), (handler, method)
    reads = allowed_for(matrix, "contents-read")
    assert (JS + "services.contents.handlers.ContentsHandler", "GET") in reads
    assert ("hardened_server.enforcement.files.HardenedFileHandler", "GET") in reads
    for write in ("PUT", "PATCH", "POST", "DELETE"):
        assert (JS + "services.contents.handlers.ContentsHandler", write) not in reads


def test_a_token_without_kernels_execute_cannot_start_a_kernel_or_open_its_websocket(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    """Against a kernel that exists: the owner starts it, the token that holds every scope but
    kernels:execute (and admin) is refused before the upgrade; the owner's upgrade succeeds."""
    no_exec = {"Authorization": f"token {tokens['no-execute']}"}
    r = requests.post(
        server.url + "/api/kernels", json={"name": "python3"}, headers=no_exec, timeout=30
    )
    assert r.status_code == 403
    assert "kernels:execute" in r.json()["message"]
    r = requests.post(
        server.url + "/api/sessions",
        headers=no_exec,
        timeout=30,
        json={"path": "x.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert r.status_code == 403
    started = requests.post(
        server.url + "/api/kernels", json={"name": "python3"}, headers=server.auth(), timeout=60
    )
    assert started.status_code == 201, started.text
    kernel = started.json()["id"]
    try:
        channels = f"/api/kernels/{kernel}/channels"
        assert ws_status(server, channels, tokens["no-execute"]) == 403
        assert ws_status(server, channels, tokens["kernels-read"]) == 403
        for action in ("interrupt", "restart"):
            r = requests.post(
                f"{server.url}/api/kernels/{kernel}/{action}", headers=no_exec, timeout=30
            )
            assert r.status_code == 403, action
        listed = requests.get(
            server.url + "/api/kernels",
            timeout=30,
            headers={"Authorization": f"token {tokens['kernels-read']}"},
        )
        assert [k["id"] for k in listed.json()] == [kernel]
        assert ws_status(server, channels, server.token) == 101
        assert ws_status(server, channels, tokens["admin"]) == 101
    finally:
        requests.delete(f"{server.url}/api/kernels/{kernel}", headers=server.auth(), timeout=60)


def test_a_metrics_token_reads_metrics_and_nothing_else(
    server: ServerProcess,
    tokens: dict[str, str],
    matrix: dict[tuple[str, str, str, str], tuple[int, bool]],
) -> None:
    for handler, method in allowed_for(matrix, "metrics"):
        assert required(handler, method) in (M, NONE), (handler, method)
    r = requests.get(
        server.url + "/metrics", timeout=30, headers={"Authorization": f"token {tokens['metrics']}"}
    )
    assert r.status_code == 200
    assert "http_request_duration_seconds" in r.text or "# TYPE" in r.text
    r = requests.get(
        server.url + "/metrics",
        timeout=30,
        headers={"Authorization": f"token {tokens['contents-read']}"},
    )
    assert r.status_code == 403


def test_an_admin_token_is_never_refused_by_the_scope_gate(
    matrix: dict[tuple[str, str, str, str], tuple[int, bool]],
) -> None:
    refused = [k for k, (_s, r) in matrix.items() if k[0] == "admin" and r]
    assert not refused
    assert sum(1 for k in matrix if k[0] == "admin") > 80


def test_scope_refusals_are_decision_records_naming_the_scope(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    cursor = LogCursor(server)
    r = requests.put(
        server.url + "/api/contents/new.txt",
        timeout=30,
        json={"type": "file", "format": "text", "content": "x"},
        headers={"Authorization": f"token {tokens['contents-read']}"},
    )
    assert r.status_code == 403
    assert r.json()["message"] == (
        "Forbidden (HS-SCOPE-001): this request needs the scope(s) contents:write"
    )
    assert not (server.root / "new.txt").exists()
    log = cursor.new()
    line = next(x for x in log.splitlines() if "rule=HS-SCOPE-001" in x)
    assert "method=PUT path=/api/contents/new.txt" in line
    assert "needs scope contents:write" in line
    assert tokens["contents-read"] not in log


# -- POST /api/events and GET /api -------------------------------------------------------------


def post_event(server: ServerProcess, token: str, schema_id: str) -> requests.Response:
    body = {"schema_id": schema_id, "version": "1", "data": {"path": "x", "action": "delete"}}
    return requests.post(
        server.url + "/api/events",
        json=body,
        timeout=30,
        headers={"Authorization": f"token {token}"},
    )


def test_events_accept_only_listed_client_schemas(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    """Stock accepts any registered schema from any client: a forged contents_service delete
    (observed 204 on 2.21.1), or a forged audit record."""
    cursor = LogCursor(server)
    for schema in (
        "https://events.jupyter.org/jupyter_server/contents_service/v1",
        "https://events.jupyter.org/jupyter_server/kernel_actions/v1",
        "https://events.example.org/not-listed/v1",
    ):
        r = post_event(server, tokens["events"], schema)
        assert r.status_code == 403, schema
        assert "scopes.client_event_schemas" in r.json()["message"]
    # jupyter_server's own schemas are refused by the floor (HS-EVENTS-001, whatever the
    # policy lists), an unlisted client schema by the allow-list.
    log = cursor.new()
    assert log.count("rule=HS-EVENTS-001") == 2
    assert log.count("rule=HS-SCOPE-003") == 1
    listed = post_event(server, tokens["events"], CLIENT_SCHEMA)
    # Past the gate: jupyter_events refuses a schema no extension registered (400), not us.
    assert listed.status_code == 400
    assert "HS-SCOPE" not in cursor.new()
    assert post_event(server, tokens["contents-rw"], CLIENT_SCHEMA).status_code == 403


def test_unauthenticated_get_api_reveals_no_version(server: ServerProcess) -> None:
    import jupyter_server

    import hardened_server

    r = requests.get(server.url + "/api", timeout=30)
    assert r.status_code == 403
    assert "version" not in r.text
    for version in (jupyter_server.__version__, hardened_server.__version__):
        assert version not in r.text
        assert all(version not in v for v in r.headers.values())
    authenticated = requests.get(server.url + "/api", headers=server.auth(), timeout=30)
    assert json.loads(authenticated.text)["version"] == jupyter_server.__version__
