"""Issue #16: the reviewed extension profiles (policies/extensions/) against the extensions as
installed in the ecosystem venv.

* every route a profiled extension registers is mapped by its profile, and the profile maps
  nothing else (read off the real application: ``audit --routes``' inventory, in the venv);
* collaboration's document session and room websocket answer the owner and refuse a token
  without the contents scopes (the notebook opens; a read-only token cannot edit through them);
* resource-usage's metrics answer a metrics:read token; proxying needs admin;
* ``policy show`` in the venv names the profiles applied.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from hardened_server.audit.inventory import run_inventory
from hardened_server.enforcement.identity.tokenstore import STORE_FILENAME, TokenStore
from hardened_server.policy.loader import read_extension_profile
from hardened_server.policy.scopes import ADMIN, KNOWN_SCOPES
from tests.e2e.ecosystem.conftest import AWAITING_PROFILES
from tests.support.audit import audit_records
from tests.support.live import ws_status
from tests.support.server import ServerProcess, isolated_env, root_flag

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

#: profile (server extension) -> the module prefix of the handlers that extension registers
PROFILED = {
    "jupyter_server_ydoc": "jupyter_server_ydoc.",
    "jupyter_resource_usage": "jupyter_resource_usage.",
    "jupyter_server_proxy": "jupyter_server_proxy.",
    "jupyterlab_git": "jupyterlab_git.",
    "nbdime": "nbdime.",
    "voila.server_extension": "voila.",
}
#: profile -> the URL prefix of routes the extension registers with handlers of other packages
#: (voila serves its themes with jupyterlab_server's ThemesHandler and its labextensions with
#: jupyter_server's FileFindHandler)
BORROWED = {"voila.server_extension": "/voila/"}


def _registered(inventory: list[dict[str, Any]], name: str) -> set[str]:
    prefix = BORROWED.get(name)
    return {
        r["pattern"]
        for r in inventory
        if r["handler"].startswith(PROFILED[name])
        or (prefix is not None and r["pattern"].startswith(prefix))
    }


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory, eco_python: Path) -> list[dict[str, Any]]:
    """The routes of the ecosystem application on the default policy (initialised in the venv,
    never started), every profiled extension enabled."""
    work = tmp_path_factory.mktemp("eco-inventory")
    (work / "root").mkdir()
    env = isolated_env(work / "jupyter")
    argv = [
        f"--root-dir={work / 'root'}",
        "--ServerApp.open_browser=False",
        *root_flag(),
        *AWAITING_PROFILES,
    ]
    found = run_inventory(argv, env, cwd=str(work), python=eco_python)
    assert found.routes is not None, found.error
    return found.routes


@pytest.mark.parametrize("name", sorted(PROFILED))
def test_profile_maps_every_route_its_extension_registers_and_nothing_else(
    inventory: list[dict[str, Any]], name: str
) -> None:
    layer = read_extension_profile(name)
    registered = _registered(inventory, name)
    assert registered, f"{name} registered no route: is it installed and enabled?"
    assert set(layer.values["scopes.routes"]) == registered
    assert set(layer.values.get("routes.accept_undecorated", ())) <= registered
    for route in inventory:
        if route["pattern"] in registered:
            assert route["scope_source"] == "policy", route
            assert "unmapped" not in route["scopes"].values(), route


def test_no_route_of_a_profiled_extension_stops_the_server(
    inventory: list[dict[str, Any]],
) -> None:
    """Every undecorated method of a profiled extension's handlers is accepted by its profile
    (HS-START-001 would otherwise stop `serve`)."""
    for route in inventory:
        if route["handler"].startswith(tuple(PROFILED.values())) and route["undecorated"]:
            name = next(n for n, p in PROFILED.items() if route["handler"].startswith(p))
            accepted = read_extension_profile(name).values.get("routes.accept_undecorated", ())
            assert route["pattern"] in accepted, route


@pytest.fixture(scope="module")
def tokens(eco_server: ServerProcess) -> dict[str, str]:
    store = TokenStore(Path(eco_server.env["JUPYTER_RUNTIME_DIR"]) / STORE_FILENAME)
    sets = {
        "read": ("contents:read",),
        "metrics": ("metrics:read",),
        "all-but-admin": tuple(sorted(KNOWN_SCOPES - {ADMIN})),
    }
    return {name: store.create(name, scopes, 3600)[0] for name, scopes in sets.items()}


def _session(server: ServerProcess, token: str, path: str) -> requests.Response:
    return requests.put(
        f"{server.url}/api/collaboration/session/{path}",
        json={"format": "json", "type": "notebook"},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )


def test_collaboration_session_and_room_answer_the_owner_and_refuse_without_the_scope(
    eco_server: ServerProcess, tokens: dict[str, str]
) -> None:
    notebook = eco_server.root / "collab.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    owner = _session(eco_server, eco_server.token, "collab.ipynb")
    assert owner.status_code == 201, owner.text
    room = f"/api/collaboration/room/json:notebook:{owner.json()['fileId']}"
    assert ws_status(eco_server, room, eco_server.token) == 101
    refused = _session(eco_server, tokens["read"], "collab.ipynb")
    assert refused.status_code == 403
    assert "contents:write" in refused.text
    assert ws_status(eco_server, room, tokens["read"]) == 403
    denials = [r for r in audit_records(eco_server) if r.get("rule_id") == "HS-SCOPE-001"]
    assert any("/api/collaboration/room/" in str(r) for r in denials)
    assert any("/api/collaboration/session/" in str(r) for r in denials)


def test_resource_usage_metrics_need_metrics_read(
    eco_server: ServerProcess, tokens: dict[str, str]
) -> None:
    def get(token: str) -> int:
        return requests.get(
            eco_server.url + "/api/metrics/v1",
            headers={"Authorization": f"token {token}"},
            timeout=30,
        ).status_code

    assert get(eco_server.token) == 200
    assert get(tokens["metrics"]) == 200
    assert get(tokens["read"]) == 403


def test_proxying_needs_admin(eco_server: ServerProcess, tokens: dict[str, str]) -> None:
    target = f"{eco_server.url}/proxy/{eco_server.port}/api/status"

    def get(token: str) -> int:
        return requests.get(
            target, headers={"Authorization": f"token {token}"}, timeout=30
        ).status_code

    assert get(tokens["all-but-admin"]) == 403
    assert get(eco_server.token) == 200


def test_policy_show_names_the_profiles_applied(
    eco_python: Path, tmp_path: Path
) -> None:
    env = isolated_env(tmp_path / "jupyter")
    shown = subprocess.run(
        [os.fspath(eco_python), "-m", "hardened_server", "policy", "show"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    for name in PROFILED:
        assert f"extension profile: {name}" in shown.stdout
    assert "extension profile for jupyter_server_ydoc" in shown.stdout


def test_nbdime_api_needs_admin(eco_server: ServerProcess, tokens: dict[str, str]) -> None:
    """/nbdime/api/isgit answers for any path the server's user can see (outside the root
    too): every scope but admin is refused, the owner is answered."""

    def post(token: str) -> int:
        return requests.post(
            eco_server.url + "/nbdime/api/isgit",
            json={"path": "/"},
            headers={"Authorization": f"token {token}"},
            timeout=30,
        ).status_code

    assert post(tokens["all-but-admin"]) == 403
    assert post(eco_server.token) == 200
