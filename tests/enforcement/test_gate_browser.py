"""JupyterLab keeps working behind the request gate, in a real browser.

Debian's Chromium opens /lab through the URL-token exchange; then JupyterLab's own service layer
(the code every JupyterLab feature goes through) does what a user's first minute does: create a
notebook (POST with the ``_xsrf`` cookie echoed as X-XSRFToken, now bound to the session), start a
kernel, run code over the kernel websocket (the handshake's Origin and Sec-Fetch-* from the
browser), save settings, shut the kernel down. No request may be refused on the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import chromium_path
from tests.e2e.test_lab_login import CHROMIUM_ARGS
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

FIRST_MINUTE = """async () => {
  const app = window.jupyterapp;
  const sm = app.serviceManager;
  await sm.ready;
  const model = await sm.contents.newUntitled({type: 'notebook'});
  const kernel = await sm.kernels.startNew({name: 'python3'});
  const reply = await kernel.requestExecute({code: 'print(6 * 7)'}).done;
  await sm.settings.save('@jupyterlab/apputils-extension:themes', '{"theme": "JupyterLab Dark"}');
  await kernel.shutdown();
  const xsrf = document.cookie.split('; ').find(c => c.startsWith('_xsrf='));
  return {path: model.path, status: reply.content.status, xsrf: !!xsrf};
}"""


def test_jupyterlab_creates_runs_and_saves_through_the_gate(tmp_path: Path) -> None:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    server = ServerProcess(tmp_path, ["--LabApp.expose_app_in_browser=True"]).start()
    refused: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.on(
                    "response",
                    lambda r: refused.append(f"{r.status} {r.request.method} {r.url}")
                    if r.status in (403, 413, 429, 431)
                    else None,
                )
                page.goto(f"{server.url}/lab?token={server.token}")
                page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
                result = page.evaluate(FIRST_MINUTE)
            finally:
                browser.close()
    finally:
        server.stop()
    assert result["status"] == "ok", result
    assert result["xsrf"], "JupyterLab reads the _xsrf cookie: it must not be HttpOnly"
    assert (server.root / result["path"]).is_file()
    assert refused == [], refused
    assert "policy denial" not in server.log(), server.log()[-3000:]
