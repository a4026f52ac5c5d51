"""Extension routes that declare their authorization the jupyter_server way need no hand mapping.

A handler with ``auth_resource`` and ``@authorized`` (jupyter_server/auth/decorator.py) already
says what each method needs; the route map reads it (source ``authorized``) through the one
reviewed table ``AUTHORIZED_CLAIMS`` in :mod:`hardened_server.policy.scopemap`. What the table
does not list (an unknown resource, a document websocket) and routes without that metadata are
still refused (HS-SCOPE-002) until ``scopes.routes`` maps them. The extension is the fixture
``tests/fixtures/ext_authorized`` (no hardened-server code), served by a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hardened_server.enforcement.identity.tokenstore import STORE_FILENAME, TokenStore
from hardened_server.policy.scopemap import SOURCE_AUTHORIZED, SOURCE_UNMAPPED
from tests.conftest import REPO
from tests.support.audit import audit_records
from tests.support.live import ws_status
from tests.support.routes import dump_routes
from tests.support.server import WITHOUT_FRONTENDS, ServerProcess

pytestmark = pytest.mark.live

EXTENSION = REPO / "tests" / "fixtures" / "ext_authorized"
ENABLE = "--ServerApp.jpserver_extensions=authorized_extension=True"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("authorized")
    proc = ServerProcess(workdir, [*WITHOUT_FRONTENDS, ENABLE], pythonpath=[EXTENSION]).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    store = TokenStore(Path(server.env["JUPYTER_RUNTIME_DIR"]) / STORE_FILENAME)
    return {
        name: store.create(name, scopes, 3600)[0]
        for name, scopes in {
            "read": ("contents:read",),
            "write": ("contents:read", "contents:write"),
            "kernels": ("kernels:read",),
        }.items()
    }


def call(server: ServerProcess, method: str, path: str, token: str) -> requests.Response:
    return requests.request(
        method,
        server.url + path,
        headers={"Authorization": f"token {token}"},
        data="{}" if method == "PUT" else None,
        timeout=30,
    )


def test_authorized_route_needs_what_its_decorator_claims(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    assert call(server, "GET", "/authz/doc", server.token).status_code == 200
    assert call(server, "PUT", "/authz/doc", server.token).status_code == 200
    assert call(server, "GET", "/authz/doc", tokens["read"]).status_code == 200
    refused = call(server, "PUT", "/authz/doc", tokens["read"])
    assert refused.status_code == 403
    assert "contents:write" in refused.text
    assert call(server, "PUT", "/authz/doc", tokens["write"]).status_code == 200
    assert call(server, "GET", "/authz/doc", tokens["kernels"]).status_code == 403
    missing = [r for r in audit_records(server) if r.get("rule_id") == "HS-SCOPE-001"]
    assert any("/authz/doc" in str(r) for r in missing)


@pytest.mark.parametrize("path", ["/authz/gizmo", "/authz/plain"])
def test_unknown_resource_and_no_metadata_stay_refused_even_for_the_owner(
    server: ServerProcess, path: str
) -> None:
    refused = call(server, "GET", path, server.token)
    assert refused.status_code == 403
    assert "scopes.routes" in refused.text
    unmapped = [r for r in audit_records(server) if r.get("rule_id") == "HS-SCOPE-002"]
    assert any(path in str(r) for r in unmapped)


def test_a_document_websocket_is_not_mapped_by_its_get_read_claim(
    server: ServerProcess,
) -> None:
    assert ws_status(server, "/authz/ws", server.token) == 403


def test_inventory_and_start_up_warning_name_the_source(server: ServerProcess) -> None:
    found = dump_routes(server.argv[4:], server.env, str(server.workdir))
    routes = {r["pattern"]: r for r in found}
    doc = routes["/authz/doc"]
    assert doc["scope_source"] == SOURCE_AUTHORIZED
    assert doc["scopes"]["GET"] == "contents:read"
    assert doc["scopes"]["PUT"] == "contents:write"
    for path in ("/authz/gizmo", "/authz/plain", "/authz/ws"):
        assert routes[path]["scope_source"] == SOURCE_UNMAPPED, path
    log = server.log()
    assert "'/authz/gizmo'" in log
    assert "HS-SCOPE-002" in log
    assert "'/authz/doc'" not in log
    # the hint names the methods the handler has (GET only), not a fixed guess
    assert 'scopes.routes = { "/authz/gizmo" = { GET = "admin" } }' in log
    assert "hardened-server policy suggest" in log
