"""`make serve`'s promise, in a real browser: the printed login URL opens JupyterLab.

The server is started the way `make serve` starts it (no JUPYTER_TOKEN: a token is generated and
the banner prints one login URL); Debian's Chromium, driven by Playwright, opens that URL. The
token must be exchanged for a session and leave the address bar, and /lab must come up.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import chromium_path
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_for_login_url(server: ServerProcess, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    pattern = re.compile(r"http://[^\s]+\?token=[0-9a-f]{32,}")
    while time.monotonic() < deadline:
        found = pattern.findall(server.log())
        if found:
            return found[0]
        assert server.proc is not None
        assert server.proc.poll() is None, server.log()
        time.sleep(0.2)
    raise AssertionError("no login URL printed:\n" + server.log())


def test_printed_login_url_opens_lab_and_leaves_no_token_behind(tmp_path: Path) -> None:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    server = ServerProcess(tmp_path, token="").start(wait=False)
    try:
        url = wait_for_login_url(server)
        assert server.log().count(url.split("token=")[1]) == 1, "token printed more than once"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(url.replace("localhost", "127.0.0.1"))
                page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
                assert "token=" not in page.url, "the URL token must be stripped by a redirect"
                assert page.url.endswith("/lab")
                assert "JupyterLab" in page.title()
                # The session cookie is HttpOnly: page script cannot read it.
                assert "username-" not in page.evaluate("document.cookie")
                # No page, page config or template carries the start-up token: an XSS in the
                # front-end finds no long-lived credential (Lab runs on the cookie + XSRF).
                token = url.split("token=")[1]
                assert token not in page.content()
                config = page.evaluate(
                    "JSON.parse(document.getElementById('jupyter-config-data').textContent)"
                )
                assert config.get("token", "") == ""
            finally:
                browser.close()
    finally:
        server.stop()
