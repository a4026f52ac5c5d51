"""Issue #16, "What it must show": a real user's Jupyter, every ecosystem extension installed,
works in Debian's Chromium under `hardened-server serve` with no flags.

One server (the ecosystem venv's console script, no flag but ``--allow-root`` when root, token
read from the login banner: :class:`tests.support.server.BareServer`), one headless Chromium
driven by Playwright, one browser context logged in once through the banner's URL. The root
holds a notebook, a jupytext script, and is itself a git repository with one changed and one
untracked file; a ``python -m http.server`` listens on a free loopback port. The walk, one test
per step, in this order:

a) a notebook opens in JupyterLab with jupyter-collaboration on, and an edit typed in a second
   tab of the same user appears in the first;
b) ``print(6 * 7)`` shows 42;
c) jupyter-resource-usage's status-bar item shows memory (it polls ``/api/metrics/v1``), and
   its Kernel Usage panel shows the notebook's kernel;
d) an ipywidgets ``IntSlider`` renders in Lab;
e) jupytext opens ``script.py`` as a notebook (the file browser's "Open With > Jupytext
   Notebook");
f) the owner (admin) reaches the loopback http.server through jupyter-server-proxy's
   ``/proxy/<port>/``;
g) the Git panel shows the repository's status;
i) the same notebook opens in Notebook 7 and runs;
j) no request of any page was answered with an HTTP error (i and j run before h, so that h
   sees every page);
h) no page visited had a CSP violation: every ``securitypolicyviolation`` event of every
   document of the context, every console message of Chromium's about its Content Security
   Policy, and every report the browser sent to the server (HS-CSP-001 in the server's log),
   grouped by page.

Every HTTP answer >= 400 the pages received is kept, named in a failing step's message (a 403
from the policy is the usual first clue) and must not exist at the end (j).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import chromium_path
from tests.e2e.test_lab_login import CHROMIUM_ARGS
from tests.support.server import BareServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: Reports every CSP violation of every document (frames included) to the test process, which
#: keeps them across navigations.
RECORD_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__hsCspViolation({
    page: document.location.href, directive: e.violatedDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample,
  });
});
"""

NOTEBOOK = "walk.ipynb"
PRINT_CELL = "print(6 * 7)"
NOTEBOOK7_CELL = "print(6 * 8)"
SLIDER_CELL = "import ipywidgets as w\nw.IntSlider(value=7, description='hs-slider')"
COLLAB_EDIT = "  # hs-collab-edit"
#: jupytext's percent format; the header names the kernel (without it Lab asks for one)
JUPYTEXT_SCRIPT = """\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# hs-jupytext-markdown

# %%
print('hs-jupytext-code')
"""
PROXIED_MARKER = "hs-proxied-marker.txt"
GIT_CHANGED, GIT_UNTRACKED = "hs-tracked.txt", "hs-untracked.txt"

LONG = 120_000  # ms: Lab's first load and a kernel's start on a busy 2-core machine
SHORT = 30_000

CELL = ".jp-Notebook .jp-Cell"
#: jupyter-resource-usage's status-bar item, e.g. "Mem: 191.10 MB"
MEMORY = re.compile(r"Mem: [0-9.]+ [KMGT]?B")
EDITOR = ".jp-Notebook .jp-Cell .cm-content"


def notebook_json(*sources: str) -> str:
    return json.dumps({
        "cells": [{"cell_type": "code", "source": s, "metadata": {}, "outputs": [],
                   "execution_count": None} for s in sources],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    })


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=walk", "-c", "user.email=walk@example.org", *args],
        cwd=root, check=True, capture_output=True, timeout=30,
    )


def lay_out(root: Path) -> None:
    """The user's files; the root is a git repository with one changed, one untracked file."""
    (root / NOTEBOOK).write_text(notebook_json(PRINT_CELL, SLIDER_CELL))
    (root / "script.py").write_text(JUPYTEXT_SCRIPT)
    git(root, "init", "-q", ".")
    (root / GIT_CHANGED).write_text("first\n")
    git(root, "add", GIT_CHANGED)
    git(root, "commit", "-q", "-m", "first")
    (root / GIT_CHANGED).write_text("first\nchanged\n")
    (root / GIT_UNTRACKED).write_text("new\n")


@dataclass
class Walk:
    server: BareServer
    context: Any
    proxied_port: int
    violations: list[dict[str, Any]] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "<status> <method> <url>"

    def new_page(self) -> Any:
        page = self.context.new_page()
        page.on("framenavigated",
                lambda frame: frame == page.main_frame and self.visited.append(frame.url))
        # Chromium also says "Refused to ... Content Security Policy" in the console, for
        # workers too, whose violations never reach a document's event listener
        page.on("console", lambda m: "Content Security Policy" in m.text
                and self.violations.append({"page": page.url, "console": m.text}))
        page.on("response", lambda r: r.status >= 400
                and self.refused.append(f"{r.status} {r.request.method} {r.url}"))
        return page

    def clues(self) -> str:
        """What went wrong on the wire (HTTP answers >= 400), for a failing step's message."""
        return "HTTP answers >= 400 so far:\n  " + "\n  ".join(self.refused or ["none"])


def serve_loopback_http(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            assert proc.poll() is None, "python -m http.server exited"
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("python -m http.server did not listen in 30s")


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory, eco_python: Path) -> Iterator[Walk]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    workdir = tmp_path_factory.mktemp("walk")
    www = workdir / "www"
    www.mkdir()
    (www / PROXIED_MARKER).write_text("proxied\n")
    server = BareServer(workdir, eco_python)
    lay_out(server.root)
    http_server, port = serve_loopback_http(www)
    try:
        server.start(timeout=180)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                state = Walk(server, context, port)
                context.expose_binding(
                    "__hsCspViolation", lambda _source, v: state.violations.append(v)
                )
                context.add_init_script(RECORD_VIOLATIONS)
                page = state.new_page()
                # log in once, the way the banner says: the URL token becomes a session cookie
                page.goto(f"{server.url}/lab?token={server.token}")
                page.wait_for_selector("#jp-main-dock-panel", timeout=LONG)
                page.close()
                yield state
            finally:
                browser.close()
    finally:
        http_server.terminate()
        http_server.wait(10)
        server.stop_quickly()


def open_notebook(walk: Walk, path: str) -> Any:
    page = walk.new_page()
    page.goto(f"{walk.server.url}/lab/tree/{path}")
    page.wait_for_selector(EDITOR, timeout=LONG)
    no_dialog(walk, page)
    return page


def no_dialog(walk: Walk, page: Any) -> None:
    """A dialog JupyterLab raises (a server error, a refused extension) is a finding."""
    dialog = page.query_selector(".jp-Dialog")
    assert dialog is None, f"JupyterLab shows a dialog: {dialog.inner_text()!r}\n{walk.clues()}"


@pytest.fixture(scope="module")
def first_tab(walk: Walk) -> Any:
    return open_notebook(walk, NOTEBOOK)


def type_into(walk: Walk, page: Any, editor: Any, text: str, *, end: bool = False) -> None:
    """Click into ``editor`` (at the end of its line with ``end``) and type ``text``, until the
    editor shows it: keystrokes are lost when they land before the editor has focus."""
    for _attempt in range(3):
        no_dialog(walk, page)
        editor.click()
        if end:
            page.keyboard.press("End")
        page.keyboard.type(text)
        deadline = time.monotonic() + 5
        while text.strip() not in editor.inner_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        if text.strip() in editor.inner_text():
            return
    raise AssertionError(f"typing {text!r} did not reach the editor\n{walk.clues()}")


def run_cell(walk: Walk, page: Any, index: int, wait_for: str) -> Any:
    """Click into cell ``index``'s editor, Shift+Enter, wait for ``wait_for`` in that cell."""
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=LONG
    )
    cell = page.locator(CELL).nth(index)
    target = cell.locator(wait_for)
    for _attempt in range(3):  # a keystroke can land before the editor has focus
        no_dialog(walk, page)
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        try:
            target.first.wait_for(timeout=60_000)
            return target.first
        except PlaywrightTimeout:  # a missed keystroke: try again, then report below
            continue
    raise AssertionError(f"cell {index} never showed {wait_for!r}\n{walk.clues()}")


def test_a_collaboration_an_edit_in_a_second_tab_appears_in_the_first(
    walk: Walk, first_tab: Any
) -> None:
    second_tab = open_notebook(walk, NOTEBOOK)
    try:
        type_into(walk, second_tab, second_tab.locator(EDITOR).first, COLLAB_EDIT, end=True)
        try:
            first_tab.locator(f"{EDITOR}:has-text('{COLLAB_EDIT.strip()}')").first.wait_for(
                timeout=SHORT
            )
        except PlaywrightTimeout as exc:
            raise AssertionError(
                "an edit typed in the second tab did not reach the first (jupyter-collaboration's "
                "room websocket)\nfirst tab's cell: "
                f"{first_tab.locator(EDITOR).first.inner_text()!r}\n{walk.clues()}"
            ) from exc
    finally:
        second_tab.close()


def test_b_print_6_times_7_shows_42(walk: Walk, first_tab: Any) -> None:
    output = run_cell(walk, first_tab, 0, ".jp-OutputArea-output")
    deadline = time.monotonic() + 30
    while "42" not in output.inner_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert output.inner_text().strip() == "42", (
        f"print(6 * 7) showed {output.inner_text()!r}\n{walk.clues()}"
    )


def test_c_resource_usage_indicator_shows_memory(walk: Walk, first_tab: Any) -> None:
    metrics: list[int] = []
    first_tab.on("response", lambda r: "/api/metrics/v1" in r.url and metrics.append(r.status))
    status_bar = first_tab.locator("#jp-main-statusbar")
    deadline = time.monotonic() + SHORT / 1000
    while not MEMORY.search(status_bar.inner_text()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert MEMORY.search(status_bar.inner_text()), (
        f"no memory in the status bar: {status_bar.inner_text()!r}; "
        f"/api/metrics/v1 answered {metrics}\n{walk.clues()}"
    )
    # the number comes from the server: the indicator keeps polling, and is answered
    with first_tab.expect_response(lambda r: "/api/metrics/v1" in r.url, timeout=SHORT):
        pass
    assert metrics, "the indicator never polled /api/metrics/v1"
    assert set(metrics) == {200}, f"/api/metrics/v1 answered {metrics}"


def test_c_kernel_usage_panel_shows_the_notebooks_kernel(walk: Walk, first_tab: Any) -> None:
    """jupyter-resource-usage's Kernel Usage side panel asks
    ``/api/metrics/v1/kernel_usage/get_usage/<kernel>`` (kernels:read and metrics:read)."""
    no_dialog(walk, first_tab)
    first_tab.click(".jp-SideBar .lm-TabBar-tab[data-id='kernelusage-panel-id']")
    panel = first_tab.locator("#kernelusage-panel-id")
    try:
        panel.locator(f"text=Notebook: {NOTEBOOK}").wait_for(timeout=SHORT)
        panel.locator("text=/Memory: [0-9.]+ [KMGT]?B/").wait_for(timeout=SHORT)
    except PlaywrightTimeout as exc:
        raise AssertionError(
            f"the Kernel Usage panel shows no kernel: {panel.inner_text()!r}\n{walk.clues()}"
        ) from exc
    finally:
        # close the panel again: the other steps work in the notebook
        first_tab.click(".jp-SideBar .lm-TabBar-tab[data-id='kernelusage-panel-id']")


def test_d_ipywidgets_slider_renders_in_lab(walk: Walk, first_tab: Any) -> None:
    slider = run_cell(walk, first_tab, 1, ".widget-slider")
    assert "hs-slider" in slider.inner_text(), slider.inner_text()
    assert slider.locator(".widget-readout").inner_text().strip() == "7"


def test_e_jupytext_opens_a_script_as_a_notebook(walk: Walk) -> None:
    page = walk.new_page()
    try:
        page.goto(f"{walk.server.url}/lab")
        item = page.wait_for_selector(
            ".jp-DirListing-item[title^='Name: script.py']", timeout=LONG
        )
        no_dialog(walk, page)
        item.click(button="right")
        page.hover(".lm-Menu-item:has-text('Open With')")
        page.click(".lm-Menu-item:has-text('Jupytext Notebook')")
        panel = page.locator(".jp-NotebookPanel")
        try:
            panel.locator(".jp-MarkdownCell:has-text('hs-jupytext-markdown')").wait_for(
                timeout=SHORT
            )
            panel.locator(".jp-CodeCell .cm-content:has-text('hs-jupytext-code')").wait_for(
                timeout=SHORT
            )
        except PlaywrightTimeout as exc:
            raise AssertionError(
                f"script.py did not open as a notebook of two cells\n{walk.clues()}"
            ) from exc
        no_dialog(walk, page)
    finally:
        page.close()


def test_f_the_owner_reaches_a_loopback_http_server_through_the_proxy(walk: Walk) -> None:
    page = walk.new_page()
    try:
        url = f"{walk.server.url}/proxy/{walk.proxied_port}/"
        response = page.goto(url)
        assert response is not None, f"{url}: no answer\n{walk.clues()}"
        assert response.status == 200, f"{url} answered {response.status}\n{walk.clues()}"
        assert page.locator(f"a:has-text('{PROXIED_MARKER}')").count() == 1, page.content()
    finally:
        page.close()


def test_g_git_panel_shows_the_repository_status(walk: Walk) -> None:
    page = walk.new_page()
    try:
        page.goto(f"{walk.server.url}/lab")
        page.wait_for_selector("#jp-main-dock-panel", timeout=LONG)
        tab = page.locator(".jp-SideBar .lm-TabBar-tab[data-id='jp-git-sessions']")
        tab.wait_for(timeout=SHORT)
        no_dialog(walk, page)
        tab.click()
        panel = page.locator("#jp-git-sessions")
        try:
            # jupyterlab-git's file list: a section per state, a row per file
            panel.locator(f"[title^='{GIT_CHANGED}']").first.wait_for(timeout=SHORT)
            panel.locator(f"[title^='{GIT_UNTRACKED}']").first.wait_for(timeout=SHORT)
        except PlaywrightTimeout as exc:
            raise AssertionError(
                f"the Git panel does not show the repository's status: {panel.inner_text()!r}"
                f"\n{walk.clues()}"
            ) from exc
        text = panel.inner_text()
        changed = text.split("CHANGED", 1)[-1].split("UNTRACKED", 1)[0]
        untracked = text.split("UNTRACKED", 1)[-1]
        assert GIT_CHANGED in changed, text
        assert GIT_UNTRACKED in untracked, text
        no_dialog(walk, page)
    finally:
        page.close()


def test_i_the_same_notebook_opens_in_notebook_7_and_runs(walk: Walk) -> None:
    """Notebook 7 (``/notebooks/``), with collaboration on, opens the notebook Lab has open."""
    page = walk.new_page()
    try:
        page.goto(f"{walk.server.url}/notebooks/{NOTEBOOK}")
        try:
            page.locator(f"{EDITOR}:has-text('{PRINT_CELL}')").first.wait_for(timeout=LONG)
        except PlaywrightTimeout as exc:
            raise AssertionError(
                f"Notebook 7 did not open {NOTEBOOK}\n{walk.clues()}"
            ) from exc
        no_dialog(walk, page)
        # a new cell of its own: the first cell's output came from Lab through the shared
        # document, and would prove nothing about this page's kernel connection
        cells = page.locator(CELL).count()
        for _attempt in range(3):  # "b" (insert below) is lost if the notebook has no focus
            page.locator(EDITOR).first.click()
            page.keyboard.press("Escape")
            page.keyboard.press("b")
            deadline = time.monotonic() + 10
            while page.locator(CELL).count() == cells and time.monotonic() < deadline:
                time.sleep(0.2)
            if page.locator(CELL).count() > cells:
                break
        # a slow first "b" can land after the retry's: then there are two new cells below
        # the first, and the one right below it is still a new, empty one
        assert page.locator(CELL).count() > cells, "Notebook 7 inserted no cell"
        type_into(walk, page, page.locator(CELL).nth(1).locator(".cm-content"), NOTEBOOK7_CELL)
        output = run_cell(walk, page, 1, ".jp-OutputArea-output")
        deadline = time.monotonic() + 30
        while "48" not in output.inner_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert output.inner_text().strip() == "48", (
            f"{NOTEBOOK7_CELL} showed {output.inner_text()!r} in Notebook 7\n{walk.clues()}"
        )
    finally:
        page.close()


def test_j_no_request_of_any_page_was_refused(walk: Walk) -> None:
    """Every request the pages made (scripts, fonts, API calls, websockets' upgrades) was
    answered: a 403 is a route the policy does not map, a 404 a file it refused to serve."""
    assert walk.visited, "the walk visited no page"
    assert walk.refused == [], walk.clues()


def test_h_no_csp_violation_on_any_page_visited(walk: Walk) -> None:
    time.sleep(1.0)  # reports are sent after the event: give the last ones time to arrive
    assert walk.visited, "the walk visited no page"
    by_page: dict[str, list[dict[str, Any]]] = {url: [] for url in walk.visited}
    for violation in walk.violations:
        by_page.setdefault(violation["page"], []).append(violation)
    reported = [line for line in walk.server.log().splitlines() if "HS-CSP-001" in line]
    failures = {url: found for url, found in by_page.items() if found}
    message = (
        "CSP violations, by page:\n"
        + "\n".join(f"  {url}:\n" + "\n".join(f"    {v}" for v in found)
                    for url, found in failures.items())
        + "\nreported to the server (HS-CSP-001):\n  " + "\n  ".join(reported or ["none"])
    )
    assert failures == {}, message
    assert reported == [], message
