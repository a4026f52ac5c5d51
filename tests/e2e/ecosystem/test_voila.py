"""Voila under the strict default plus ``policies/voila.toml`` (issue #16).

Voila's inline scripts carry per-cell values (``voila_process(<cell>, <count>)``), so no hash of
a template file can allow them; ``routes.script_nonce`` gives every response of Voila's render
route a fresh nonce, and hardened-server's Voila template (``share/jupyter/voila/templates/
hardened``) marks Voila's own scripts with it, never a cell's content. Here a real Voila renders
real notebooks: over HTTP (the executed output is in the page, every inline script of the
template carries the header's nonce, no other inline script is in the page: an output's
``<script>`` is data in Voila's JSON blocks, a Markdown cell's is escaped) and in Debian's
Chromium (an ipywidgets slider renders with zero CSP violations; an output's script, which the
front-end re-creates without the nonce, does not run).
"""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hardened_server.policy import csp
from tests.conftest import chromium_path
from tests.e2e.test_lab_login import CHROMIUM_ARGS
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[3]
VOILA_POLICY = REPO / "policies" / "voila.toml"

#: Voila's routes come from its reviewed extension profile
#: (policies/extensions/voila.server_extension.toml): the server runs on the default policy plus
#: the one line of policies/voila.toml. The proxy is switched off only to keep this server small;
#: nbclassic, if the environment has it, is refused (HS-START-012).
OTHERS_OFF = (
    "--ServerApp.jpserver_extensions=jupyter_server_proxy=False",
    "--ServerApp.jpserver_extensions=nbclassic=False",
)

SLIDER = [
    "import ipywidgets as w\nw.IntSlider(value=7, description='hs-slider')",
    "print('HS-EXECUTED-' + str(6 * 7))",
]
HOSTILE = [
    "from IPython.display import HTML\n"
    "HTML('<b id=\"hs-out\">out</b><script>document.title = \"PWNED-OUTPUT\"</script>')",
]
HOSTILE_MARKDOWN = '<script>document.title = "PWNED-MARKDOWN"</script>\n\n**hs-markdown**'

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push([e.violatedDirective, e.blockedURI, e.sourceFile]);
});
"""


def notebook(code: list[str], markdown: str | None = None) -> str:
    cells: list[dict[str, Any]] = []
    if markdown is not None:
        cells.append({"cell_type": "markdown", "metadata": {}, "source": markdown})
    cells += [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": source}
        for source in code
    ]
    return json.dumps({
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    })


@pytest.fixture(scope="module")
def voila_server(tmp_path_factory: pytest.TempPathFactory, eco_python: Path,
                 ) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("voila")
    server = ServerProcess(
        workdir,
        ["--policy", str(VOILA_POLICY), *OTHERS_OFF],
        python=eco_python,
        # this checkout's template (an editable install copies share/ once)
        env={"JUPYTER_PATH": str(REPO / "share" / "jupyter")},
    )
    (server.root / "slider.ipynb").write_text(notebook(SLIDER))
    (server.root / "hostile.ipynb").write_text(notebook(HOSTILE, HOSTILE_MARKDOWN))
    try:
        server.start(timeout=180)
        yield server
    finally:
        server.stop_quickly()


def test_voila_starts_with_the_one_line_alone(tmp_path: Path, eco_python: Path) -> None:
    server = ServerProcess(
        tmp_path, ["--policy", str(VOILA_POLICY), *OTHERS_OFF], python=eco_python,
        env={"JUPYTER_PATH": str(REPO / "share" / "jupyter")},
    )
    try:
        server.start(timeout=180)
        response = requests.get(f"{server.url}/voila/render/x.ipynb", headers=server.auth(),
                                timeout=60)
        assert response.status_code != 403
    finally:
        server.stop_quickly()


def render(server: ServerProcess, name: str) -> requests.Response:
    response = requests.get(f"{server.url}/voila/render/{name}", headers=server.auth(),
                            timeout=120)
    assert response.status_code == 200, response.text[:2000]
    return response


_INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>", re.IGNORECASE)


def inline_scripts(html: str) -> list[str]:
    """The attributes of every inline, executable ``<script>`` start tag."""
    out = []
    for match in _INLINE_SCRIPT.finditer(html):
        attrs = match.group("attrs")
        if "src=" in attrs or re.search(r'type="application/[^"]*json"', attrs):
            continue
        out.append(attrs)
    return out


def test_voila_renders_the_executed_notebook_with_a_nonce_per_response(
    voila_server: ServerProcess,
) -> None:
    first, second = render(voila_server, "slider.ipynb"), render(voila_server, "slider.ipynb")
    assert "HS-EXECUTED-42" in first.text
    nonces = []
    for response in (first, second):
        script_src = csp.parse(response.headers["Content-Security-Policy"])["script-src"]
        assert "'unsafe-inline'" not in script_src
        assert "'strict-dynamic'" not in script_src
        found = [s for s in script_src if s.startswith("'nonce-")]
        assert len(found) == 1
        nonce = found[0][len("'nonce-"):-1]
        nonces.append(nonce)
        assert response.headers["Cache-Control"] == "no-store"
        scripts = inline_scripts(response.text)
        # the log hook, the helper functions, one voila_process per cell, voila_finish
        assert len(scripts) == 3 + len(SLIDER)
        assert all(f'nonce="{nonce}"' in attrs for attrs in scripts), scripts
    assert nonces[0] != nonces[1]


def test_a_notebooks_own_scripts_get_no_nonce(voila_server: ServerProcess) -> None:
    response = render(voila_server, "hostile.ipynb")
    script_src = csp.parse(response.headers["Content-Security-Policy"])["script-src"]
    nonce = next(s for s in script_src if s.startswith("'nonce-"))[len("'nonce-"):-1]
    html = response.text
    scripts = inline_scripts(html)
    marked = [attrs for attrs in scripts if f'nonce="{nonce}"' in attrs]
    unmarked = [attrs for attrs in scripts if "nonce" not in attrs]
    # Voila's own: the log hook, the helper functions, one per cell (2), voila_finish
    assert len(marked) == 3 + 2
    # every other inline script of the page: none
    assert unmarked == []
    # the Markdown cell's script is not even an element: nbconvert.sanitize_html (on by
    # default, HTMLExporter's setting, which Voila's exporter inherits) escapes it
    assert '&lt;script&gt;document.title = "PWNED-MARKDOWN"&lt;/script&gt;' in html
    # the output's script is data inside Voila's JSON block (the front-end re-creates it
    # later, without a nonce), never a tag of the page
    assert "PWNED-OUTPUT" in html
    assert '<script>document.title = "PWNED-OUTPUT"' not in html


def test_voila_template_assets_are_served(voila_server: ServerProcess) -> None:
    for path in ("/voila/templates/hardened/static/voila-style.js",
                 "/voila/templates/lab/static/index.css"):
        response = requests.get(voila_server.url + path, headers=voila_server.auth(),
                                timeout=30)
        assert response.status_code == 200, path


@pytest.mark.parametrize(
    "path",
    ["/voila/templates/lab/static/../../../../../../etc/passwd",
     "/voila/templates/..%2f..%2f..%2fetc/static/passwd",
     "/voila/templates/../static/voila.js"],
)
def test_a_template_path_out_of_its_root_is_a_404_not_a_500(
    voila_server: ServerProcess, path: str
) -> None:
    """Voila's template handler asserts on the parts of the path; '..' was a 500 with a
    traceback. Sent as is (no client-side dot-segment removal)."""
    connection = http.client.HTTPConnection("127.0.0.1", voila_server.port, timeout=30)
    try:
        connection.request("GET", path, headers=voila_server.auth())
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 404, path
    assert "Traceback" not in voila_server.log()


@pytest.fixture(scope="module")
def browser(voila_server: ServerProcess) -> Iterator[Any]:
    if chromium_path() is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = chromium.new_context()
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        page.goto(f"{voila_server.url}/login?token={voila_server.token}")
        yield page
        chromium.close()


def test_an_ipywidgets_slider_renders_in_chromium_with_zero_csp_violations(
    voila_server: ServerProcess, browser: Any
) -> None:
    browser.goto(f"{voila_server.url}/voila/render/slider.ipynb")
    browser.wait_for_selector(".widget-slider", timeout=120_000)
    browser.wait_for_selector("text=HS-EXECUTED-42", timeout=30_000)
    time.sleep(2)
    assert browser.evaluate("window.__violations") == []


def test_an_outputs_script_does_not_run_in_chromium(
    voila_server: ServerProcess, browser: Any
) -> None:
    browser.goto(f"{voila_server.url}/voila/render/hostile.ipynb")
    browser.wait_for_selector("#hs-out", timeout=120_000)  # the output's markup is rendered
    time.sleep(2)
    assert "PWNED" not in browser.title()
    blocked = browser.evaluate("window.__violations")
    assert blocked, "the output's and the Markdown cell's scripts were not even tried"
    assert {v[0] for v in blocked} <= {"script-src-elem"}
    assert all(v[1] == "inline" for v in blocked)
