"""``hardened-server policy suggest`` over a real application (initialised in a child
interpreter, never started) with the fixture extension tests/fixtures/ext_authorized: the draft
maps exactly the routes the route map does not know, with the methods each handler implements,
and is a valid policy layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hardened_server.policy.loader import build_policy, default_layer, layer_from_bytes
from tests.conftest import REPO
from tests.support.server import isolated_env

EXTENSION = REPO / "tests" / "fixtures" / "ext_authorized"
ENABLED = {
    "authorized_extension": True,
    "jupyterlab": False,
    "notebook_shim": False,
    "jupyter_lsp": False,
    "jupyter_server_terminals": False,
}


def suggest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = isolated_env(tmp_path / "jupyter")
    (tmp_path / "jupyter" / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": ENABLED}})
    )
    env["PYTHONPATH"] = os.pathsep.join([str(EXTENSION), env.get("PYTHONPATH", "")])
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "hardened_server", "policy", "suggest", f"--root-dir={root}",
         *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_suggest_drafts_the_unmapped_routes_with_their_real_methods(tmp_path: Path) -> None:
    done = suggest(tmp_path)
    assert done.returncode == 0, done.stderr
    draft = done.stdout
    policy = build_policy([default_layer(), layer_from_bytes("draft.toml", draft.encode())])
    assert set(policy.scopes.routes) == {"/authz/gizmo", "/authz/plain", "/authz/ws"}
    assert policy.scopes.routes["/authz/gizmo"] == {"GET": ("admin",)}
    assert "/authz/doc" not in draft  # mapped from its own @authorized
    assert "its @authorized asks: GET gizmos:read" in draft
    assert "websocket of authorized_extension.DocSocket" in draft
    assert "3 unmapped route(s)" in draft


def test_suggest_writes_a_file_once(tmp_path: Path) -> None:
    out = tmp_path / "draft.toml"
    first = suggest(tmp_path, f"--output={out}")
    assert first.returncode == 0, first.stderr
    assert "'/authz/plain' = { GET = \"admin\" }" in out.read_text()
    again = suggest(tmp_path, f"--output={out}")
    assert again.returncode == 1
    assert "not overwriting" in again.stderr
