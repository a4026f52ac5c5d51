"""JupyterLab and Notebook 7 without ``'unsafe-eval'`` (issue #21), in a real browser.

Debian's Chromium, driven by Playwright, loads every front-end page route (/lab, /tree,
/notebooks/..., /edit/..., /consoles/...) under the shipped default policy, whose
``routes.unsafe_eval`` is empty: no page's ``script-src`` has ``'unsafe-eval'``. Each page must
come up with zero CSP violations and every ``autoStart`` plugin of the application activated
(JupyterLab 4's core settings plugin compiles schemas with ``new Function``: without the
package's labextension, hardened_server/labextensions/hardened-server-settings, 136 plugins of
/lab fail here). The setting
registry in the page rejects an invalid value with ajv-shaped errors and accepts a valid one.

``expose_app_in_browser`` puts the application object on ``window.jupyterapp`` so the test can
ask it which plugins are active; it changes nothing else.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from hardened_server.policy import csp
from tests.conftest import chromium_path
from tests.e2e.test_lab_login import CHROMIUM_ARGS
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

EXPOSE_APP = (
    "--LabApp.expose_app_in_browser=True",
    "--JupyterNotebookApp.expose_app_in_browser=True",
)

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber]);
});
"""

#: The autoStart plugins of the page's application that are not active (lumino's
#: PluginRegistry keeps each plugin's data, autoStart included, in ``_plugins``).
INACTIVE_AUTOSTART = """
async () => {
  const app = window.jupyterapp;
  // a front-end whose plugins failed may never restore: give it a minute, then count
  await Promise.race([app.restored, new Promise((r) => setTimeout(r, 60000))]);
  const registry = app.pluginRegistry;
  const out = [];
  for (const [id, data] of registry._plugins) {
    if (data.autoStart === true && !app.isPluginActivated(id)) out.push(id);
  }
  return {
    inactive: out,
    total: registry._plugins.size,
    ours: app.isPluginActivated('hardened-server-settings:settings'),
    core: app.isPluginActivated('@jupyterlab/apputils-extension:settings'),
  };
}
"""

#: The ISettingRegistry the page's plugins got, found by its token's name.
REGISTRY = """
(() => {
  const app = window.jupyterapp;
  for (const [token] of app.pluginRegistry._services) {
    if (token.name === '@jupyterlab/coreutils:ISettingRegistry') {
      return app.resolveRequiredService(token);
    }
  }
  throw new Error('no ISettingRegistry token');
})()
"""

ROUTES = {
    "/lab": "#jp-main-dock-panel",
    "/tree": ".jp-DirListing",
    "/notebooks/x.ipynb": ".jp-Notebook",
    "/edit/x.txt": ".cm-content",
    "/consoles/x.py": ".jp-CodeConsole",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if chromium_path() is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    workdir = tmp_path_factory.mktemp("noeval")
    server = ServerProcess(workdir, EXPOSE_APP)
    (server.root / "x.txt").write_text("hello\n")
    (server.root / "x.py").write_text("print(6 * 7)\n")
    (server.root / "x.ipynb").write_text(
        '{"cells": [{"cell_type": "code", "source": "print(6 * 7)", "metadata": {},'
        ' "outputs": [], "execution_count": null}], "metadata": {"kernelspec": {"name":'
        ' "python3", "display_name": "Python 3", "language": "python"}},'
        ' "nbformat": 4, "nbformat_minor": 5}'
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(server: ServerProcess) -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        page.console_errors = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda m: m.type == "error" and page.console_errors.append(m.text),  # type: ignore[attr-defined]
        )
        page.goto(f"{server.url}/lab?token={server.token}")
        page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
        yield page
        browser.close()


def test_no_page_route_gets_unsafe_eval(server: ServerProcess) -> None:
    import requests

    for route in ROUTES:
        r = requests.get(server.url + route, headers=server.auth(), timeout=30)
        assert r.status_code == 200, (route, r.status_code)
        script_src = csp.parse(r.headers["Content-Security-Policy"])["script-src"]
        assert not [s for s in script_src if s.startswith("'unsafe-")], (route, script_src)


def test_page_config_loads_ours_and_disables_the_core_settings_plugin(
    server: ServerProcess,
) -> None:
    """hardened-server puts hardened_server/labextensions on the labextensions path of Lab and
    Notebook 7; jupyterlab_server turns the extension's disabledExtensions into page config."""
    import json
    import re

    import requests

    for route in ("/lab", "/tree"):
        html = requests.get(server.url + route, headers=server.auth(), timeout=30).text
        found = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', html, re.S)
        assert found, route
        config = json.loads(found.group(1))
        assert "hardened-server-settings" in [e["name"] for e in config["federated_extensions"]]
        assert "@jupyterlab/apputils-extension:settings" in config["disabledExtensions"]


@pytest.mark.parametrize("route", list(ROUTES))
def test_front_end_runs_without_eval(server: ServerProcess, page: Any, route: str) -> None:
    page.console_errors.clear()
    page.goto(server.url + route)
    page.wait_for_selector(ROUTES[route], timeout=120_000)
    plugins = page.evaluate(INACTIVE_AUTOSTART)
    time.sleep(2)
    violations = page.evaluate("window.__violations")
    errors = [
        e for e in page.console_errors
        if "Content Security Policy" in e or "activat" in e or "EvalError" in e
        or "unsafe-eval" in e
    ]
    assert plugins["total"] > 20
    assert plugins["inactive"] == [], (route, errors)
    # the registry is ours; the core plugin that compiles schemas never ran
    assert plugins["ours"] is True
    assert plugins["core"] is False
    assert violations == []
    assert errors == []


#: Through the page's own ISettingRegistry: an invalid value, then a valid one.
SET_INVALID_THEN_VALID = """
async () => {
  const registry = await REGISTRY;
  const id = '@jupyterlab/notebook-extension:tracker';
  const settings = await registry.load(id);
  // what the JSON settings editor's inspector asks (settingeditor/src/inspector.ts)
  const plugin = registry.plugins[id];
  const errors = registry.validator.validateData(
    {...plugin, raw: '{"maxNumberOutputs": "many"}'}, false
  );
  let refused = null;
  try {
    await registry.set(id, 'maxNumberOutputs', 'many');
  } catch (error) {
    refused = String(error);
  }
  await registry.set(id, 'maxNumberOutputs', 7);
  return {
    rejected: JSON.parse(JSON.stringify(errors)),
    refused,
    value: settings.get('maxNumberOutputs').composite,
    user: settings.user,
    defaulted: settings.composite.kernelShutdown,
  };
}
""".replace("REGISTRY", REGISTRY.strip())


def test_setting_registry_rejects_invalid_and_accepts_valid_without_eval(
    server: ServerProcess, page: Any
) -> None:
    """The registry's validator interprets the schema: a string for a number is refused with
    the error ajv would give (keyword, path, message), a number is stored, and the composite
    carries the schema's defaults for what the user did not set (ajv's useDefaults)."""
    page.goto(server.url + "/lab")
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    page.evaluate("window.__violations = []")
    result = page.evaluate(SET_INVALID_THEN_VALID)
    assert result["rejected"] == [
        {
            "instancePath": "/maxNumberOutputs",
            "schemaPath": "#/properties/maxNumberOutputs/type",
            "keyword": "type",
            "params": {"type": "number"},
            "message": "must be number",
        }
    ]
    assert "failed to validate" in result["refused"]
    assert result["value"] == 7
    assert result["user"] == {"maxNumberOutputs": 7}
    assert result["defaulted"] is False  # the schema's default, filled in by the validator
    assert page.evaluate("window.__violations") == []
    # and the server stored the valid value
    import requests

    stored = requests.get(
        server.url + "/lab/api/settings/@jupyterlab/notebook-extension:tracker",
        headers=server.auth(),
        timeout=30,
    ).json()
    assert stored["settings"] == {"maxNumberOutputs": 7}


def test_settings_editor_form_rejects_invalid_and_saves_valid_without_eval(
    server: ServerProcess, page: Any
) -> None:
    """The Settings editor's form view validates with @rjsf/validator-ajv8, which JupyterLab
    shares through Module Federation; the labextension offers an interpreting one under that
    name. Typing a value its pattern refuses shows rjsf's error in the page and saves nothing;
    a valid value is saved to the server. No CSP violation on the way."""
    import requests

    def stored() -> Any:
        return requests.get(
            server.url + "/lab/api/settings/@jupyterlab/notebook-extension:tracker",
            headers=server.auth(),
            timeout=30,
        ).json()["settings"].get("sideBySideLeftMarginOverride")

    page.goto(server.url + "/lab")
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    page.evaluate("window.jupyterapp.restored")
    page.evaluate("window.__violations = []")
    page.evaluate(
        "window.jupyterapp.commands.execute('settingeditor:open', {query: 'Side-by-side'})"
    )
    field = '[id$="_sideBySideLeftMarginOverride"]'
    page.wait_for_selector(field, timeout=60_000)
    before = stored()
    page.fill(field, "abc")
    error = page.wait_for_selector(".jp-SettingsPanel .error-detail", timeout=30_000)
    assert error.inner_text().startswith('must match pattern "^-?(?:0|')
    time.sleep(2)
    assert stored() == before  # an invalid value is not saved
    page.fill(field, "12px")
    deadline = time.monotonic() + 30
    while stored() != "12px" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stored() == "12px"
    assert page.query_selector(".jp-SettingsPanel .error-detail") is None
    assert page.evaluate("window.__violations") == []
