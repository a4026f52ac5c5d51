"""``audit --routes`` (the inventory of a configured, never started application) and
``audit --extensions`` (bandit over extension code)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from hardened_server.audit.cli import main
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "hello_extension"
FRONTENDS_OFF = {name: False for name in
                 ("jupyterlab", "notebook_shim", "jupyter_lsp", "jupyter_server_terminals")}


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("JUPYTER", "JUPYTERHUB")):
            monkeypatch.delenv(name)
    for name in ("config", "runtime", "data", "root"):
        (tmp_path / name).mkdir()
    (tmp_path / "runtime").chmod(0o700)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return tmp_path


def audit(env: Path, *argv: str) -> tuple[int, dict, float]:
    out = env / "report.json"
    start = time.perf_counter()
    rc = main(["--root-dir", str(env / "root"), *argv, "--format", "json", "--output", str(out)])
    return rc, json.loads(out.read_text()), time.perf_counter() - start


def test_route_inventory_of_the_default_application(env, capsys):
    rc, report, seconds = audit(env, "--routes", "--fail-on", "warning")
    with capsys.disabled():
        sys.stdout.write(f"\n[timing] --routes (JupyterLab included): {seconds:.1f} s\n")
    assert rc == 0, report["findings"]
    routes = {r["pattern"]: r for r in report["routes"]}
    assert len(routes) >= 40
    assert all(r["mixin"] in ("HardenedJupyterMixin", "HardenedPlainMixin")
               for r in routes.values())
    contents = routes["/api/contents(?P<path>(?:(?:/[^/]+)+|/?))"]
    assert contents["handler"] == "jupyter_server.services.contents.handlers.ContentsHandler"
    assert contents["route_class"] == "api"
    assert contents["public"] is False
    assert contents["decorators"]["GET"] == ["authenticated", "authorized"]
    assert contents["authorization"]["GET"] == "contents:read"
    assert contents["authorization"]["PUT"] == "contents:write"
    assert "default-src 'none'" in contents["csp"]
    assert routes["/login"]["public"] is True
    assert routes["/static/(.*)"]["route_class"] == "static"
    assert routes["/files/(.*)"]["route_class"] == "files"
    assert "sandbox" in routes["/files/(.*)"]["csp"]
    assert routes["/.*/"]["mixin"] == "HardenedPlainMixin"  # TrailingSlashHandler
    # JupyterLab's handlers carry no @authorized
    assert routes["/lab/api/settings/?"]["authorization"]["GET"] == "n/a"
    assert report["modes"] == ["static", "routes"]


def test_undecorated_extension_route_is_found(env, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(EXAMPLE), os.environ.get(
        "PYTHONPATH", "")]))
    cfg = env / "extcfg"
    cfg.mkdir()
    (cfg / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {
        "jpserver_extensions": {**FRONTENDS_OFF, "hello_extension_unsafe": True}}}))
    rc, report, _ = audit(env, "--routes", "--config-dir", str(cfg))
    found = [f for f in report["findings"] if f["id"] == "HS-ROUTE-301"]
    assert found, report["findings"]
    assert "hello_extension_unsafe" in found[0]["evidence"]
    assert rc == 1
    patterns = {r["pattern"]: r for r in report["routes"]}
    unsafe = [r for r in patterns.values() if r["handler"].startswith("hello_extension_unsafe")]
    assert unsafe
    assert unsafe[0]["undecorated"]
    # the inventory is complete even though the server would refuse to start
    assert "/api/contents(?P<path>(?:(?:/[^/]+)+|/?))" in patterns


BAD_EXTENSION = '''
"""An extension with the patterns bandit is for."""
import subprocess
import tempfile


def run(command):
    return subprocess.call(command, shell=True)


def scratch():
    return tempfile.mktemp()


def _jupyter_server_extension_points():
    return [{"module": "badext"}]
'''


def test_bandit_over_extension_code(env, monkeypatch, capsys):
    pkg = env / "site" / "badext"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(BAD_EXTENSION)
    (pkg / "tests").mkdir()
    (pkg / "tests" / "test_x.py").write_text(
        "import subprocess\nsubprocess.call('x', shell=True)\n"
    )
    monkeypatch.syspath_prepend(str(env / "site"))
    rc, report, seconds = audit(env, "--extension", "badext", "--extension", "notebook_shim")
    with capsys.disabled():
        sys.stdout.write(f"\n[timing] --extensions (badext, notebook_shim): {seconds:.2f} s\n")
    high = [f for f in report["findings"] if f["id"] == "HS-EXT-302"]
    medium = [f for f in report["findings"] if f["id"] == "HS-EXT-301"]
    assert high
    assert medium
    assert high[0]["location"]["file"] == str(pkg / "__init__.py")
    assert high[0]["location"]["line"] == 8
    assert "B602" in high[0]["evidence"]
    assert all("tests" not in f["location"]["file"] for f in high + medium)
    rows = {e["name"]: e for e in report["extensions"]}
    assert rows["badext"]["bandit_issues"] == f"{len(medium)}/{len(high)}"
    assert rows["notebook_shim"]["module_path"].endswith("notebook_shim")
    assert report["modes"] == ["static", "extensions"]
    assert rc == 0  # bandit findings are warnings at most


def test_missing_extension_is_reported(env):
    (env / "config" / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"no_such_extension_xyz": True}}}))
    _rc, report, _ = audit(env)
    (f,) = [f for f in report["findings"] if f["id"] == "HS-EXT-102"]
    assert "no_such_extension_xyz" in f["evidence"]
    assert f["location"]["file"] == str(env / "config" / "jupyter_server_config.json")


def test_routes_inventory_never_imports_from_the_current_directory(env, monkeypatch):
    # The inventory runs in a child interpreter; with `-m` alone the auditor's current directory
    # (maybe a user's folder) came first on sys.path, and a `jupyter_server.py` there ran.
    planted = env / "userdir"
    planted.mkdir()
    tripped = env / "tripped"
    (planted / "jupyter_server.py").write_text(
        f"open({str(tripped)!r}, 'w').close()\nraise SystemExit('shadowed')\n")
    cfg = env / "extcfg"
    cfg.mkdir()
    (cfg / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {
        "jpserver_extensions": FRONTENDS_OFF}}))
    monkeypatch.chdir(planted)
    _rc, report, _ = audit(env, "--routes", "--config-dir", str(cfg))
    assert not tripped.exists(), "the inventory imported a module from the current directory"
    assert report["routes"], report["findings"]
