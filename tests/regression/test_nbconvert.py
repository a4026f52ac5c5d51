"""nbconvert advisories reached through ``/nbconvert/*`` (research §3.6).

Not applicable here (no HTTP path): CVE-2025-53000 (Windows ``inkscape.bat`` search path) and
jupyter_core's CVE-2022-39286 (config executed from the working directory). The second CVE of
nbconvert 7.17.1 was not identified by the research.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.live import (
    Live,
    Spec,
    active_markers,
    assert_sandboxed,
    b64_prefix,
    launched,
)

pytestmark = pytest.mark.live

OUTSIDE_SECRET = b"OUTSIDE-ROOT-" + secrets.token_hex(12).encode() + b"-END"
HIDDEN_SECRET = b"HIDDEN-KEY-" + secrets.token_hex(12).encode() + b"-END"


def marker(n: int) -> str:
    return f"GHSL-XSS-{n:02d}"


def ghsl_notebooks() -> dict[str, nbformat.NotebookNode]:
    """One notebook per injection point of GitHub Security Lab's report behind
    CVE-2021-32862 (GHSL-2021-1013..1028): notebook and cell metadata, attachment names,
    output MIME types, output metadata, error fields, raw cells, Markdown, SVG, JavaScript."""
    v4 = nbformat.v4
    out: dict[str, nbformat.NotebookNode] = {}

    def add(name: str, cells: list[Any], **metadata: Any) -> None:
        nb = v4.new_notebook()
        nb.cells = cells
        nb.metadata.update(metadata)
        out[name] = nb

    def code(*outputs: Any, **metadata: Any) -> Any:
        cell = v4.new_code_cell("x")
        cell.outputs = list(outputs)
        cell.metadata.update(metadata)
        return cell

    add("title", [], title=f"</title><script>{marker(1)}</script>")
    add("lexer", [code()], language_info={"name": "python",
                                          "pygments_lexer": f'"><script>{marker(2)}</script>'})
    add("html_output", [code(v4.new_output("display_data", data={
        "text/html": f"<script>{marker(3)}</script><img src=x onerror={marker(4)}>"}))])
    add("svg_output", [code(v4.new_output("display_data", data={
        "image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{marker(5)}">'
                         f"<script>{marker(6)}</script></svg>"}))])
    add("js_output", [code(v4.new_output("display_data", data={
        "application/javascript": f"{marker(7)}()"}))])
    add("png_injection", [code(v4.new_output("display_data", data={
        "image/png": f'x" onerror="{marker(8)}'}))])
    add("png_metadata", [code(v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="},
                                            metadata={"image/png": {
                                                "width": f"1 onerror=alert(1)//{marker(9)}"}}))])
    add("markdown_output", [code(v4.new_output("display_data", data={
        "text/markdown": f"<img src=x onerror={marker(10)}>"}))])
    add("markdown_cell", [v4.new_markdown_cell(
        f"<script>{marker(11)}</script>[a](javascript:{marker(12)})")])
    attachment = v4.new_markdown_cell("![x](attachment:x.png)")
    attachment.attachments = {"x.png": {f'image/x" onerror="{marker(13)}': "iVBORw0KGgo="}}
    add("attachment", [attachment])
    add("error_output", [code(v4.new_output(
        "error", ename=f"<script>{marker(14)}</script>",
        evalue=f"<img src=x onerror={marker(15)}>", traceback=[f"<script>{marker(16)}</script>"]
    ))])
    add("raw_html", [v4.new_raw_cell(f"<script>{marker(17)}</script>",
                                     metadata={"format": "text/html"})])
    add("cell_tags", [code(tags=[f'"><script>{marker(18)}</script>'])])
    add("latex_output", [code(v4.new_output("display_data", data={
        "text/latex": f"$x$</script><script>{marker(19)}</script>"}))])
    add("widget_state", [code()], widgets={
        "application/vnd.jupyter.widget-state+json": {
            "state": {"x": {"model_name": f"</script><script>{marker(20)}</script>"}},
            "version_major": 2, "version_minor": 0}})
    return out


NOTEBOOKS = ghsl_notebooks()
ALL_MARKERS = [marker(n) for n in range(1, 21)]


def lay_out(root: Path, workdir: Path) -> None:
    xss = root / "xss"
    xss.mkdir()
    for name, nb in NOTEBOOKS.items():
        (xss / f"{name}.ipynb").write_text(nbformat.writes(nb))
    outside = workdir / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(OUTSIDE_SECRET)
    (root / ".ssh").mkdir()
    (root / ".ssh" / "id_rsa.png").write_bytes(HIDDEN_SECRET)
    images = root / "images"
    images.mkdir()
    depth = "../" * 12
    md = nbformat.v4.new_markdown_cell(
        f"![passwd]({depth}etc/passwd) ![abs](/etc/passwd) "
        f"![outside](../../outside/secret.png) ![outside-abs]({outside / 'secret.png'}) "
        f"![home](~/../../etc/passwd) ![hidden](../.ssh/id_rsa.png) "
        f"![file](file:///etc/passwd)"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [md]
    (images / "embed.ipynb").write_text(nbformat.writes(nb))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    spec = Spec(setup=lay_out, args=("--HTMLExporter.embed_images=True",))
    with launched(tmp_path_factory, spec, name="nbc") as (server,):
        yield server


SAME = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}


def convert(live: Live, name: str, query: str = "") -> Any:
    reply = live.raw("GET", live.url(f"/nbconvert/html/xss/{name}.ipynb") + query, auth=True,
                     headers={**SAME, "Referer": live.origin + live.url("/lab")})
    assert reply.status == 200, reply
    return reply


# -- CVE-2021-32862 ------------------------------------------------------------------------------


def test_ghsa_9jmq_rx5f_8jwq_html_export_is_sandboxed(live: Live) -> None:
    """GHSA-9jmq-rx5f-8jwq / GHSA-h274-fcvj-h2wm / CVE-2021-32862 / PYSEC-2022-249 (GitHub
    Security Lab: 16 XSS vectors in nbconvert's HTML export). The HTML served for each vector,
    GET by path (with and without ``?sanitize_html=true``) and POST of the notebook, is
    sandboxed: an opaque origin, no ``allow-same-origin``, no MIME sniffing. (The headers
    depend on the route, not the notebook: three vectors stand for all of them here; the
    sanitiser test below converts every one.)"""
    for name in ("html_output", "svg_output", "js_output"):
        nb = NOTEBOOKS[name]
        assert_sandboxed(convert(live, name))
        assert_sandboxed(convert(live, name, "?sanitize_html=true"))
        posted = live.api("POST", "/nbconvert/html", {"content": nb})
        assert posted.status == 200, (name, posted)
        assert_sandboxed(posted)


@pytest.mark.xfail(
    strict=True,
    reason="FINDING, no issue yet (closest: issue 3): nbconvert 7.17.2's lab template writes "
    "image output metadata unquoted (width={{ width | escape }}), so a notebook's "
    "'width': '1 onerror=alert(1)' becomes an event handler that sanitize_html=true keeps; only "
    "the sandbox CSP holds it (not once downloaded)",
)
def test_ghsa_9jmq_rx5f_8jwq_sanitize_html_leaves_nothing_executable(live: Live) -> None:
    """GHSA-9jmq-rx5f-8jwq / CVE-2021-32862, the sanitiser: with ``?sanitize_html=true`` none
    of the GHSL payloads is left where a browser would run it (script bodies, event handler
    attributes, ``javascript:`` URLs), which is what protects a downloaded copy."""
    for name in NOTEBOOKS:
        sanitised = convert(live, name, "?sanitize_html=true")
        assert active_markers(sanitised.text, ALL_MARKERS) == set(), name


# -- CVE-2026-39378 ------------------------------------------------------------------------------


def embedded_secrets() -> list[str]:
    return [b64_prefix(Path("/etc/passwd").read_bytes()), b64_prefix(OUTSIDE_SECRET),
            b64_prefix(HIDDEN_SECRET), OUTSIDE_SECRET.decode(), HIDDEN_SECRET.decode(),
            "root:x:0:0"]


def test_ghsa_7jqv_fw35_gmx9_embed_images_reads_no_file_outside_the_notebook(live: Live) -> None:
    """GHSA-7jqv-fw35-gmx9 / CVE-2026-39378 / PYSEC-2026-2230 (nbconvert 7.17.1): with
    ``HTMLExporter.embed_images=True``, Markdown images such as ``![](../../../../etc/passwd)``
    were read from disk and embedded as base64 (arbitrary file read on the converting host).
    Converting a notebook by path with that setting on embeds nothing from ``/etc/passwd``,
    from outside the root or from a hidden directory the path policy refuses."""
    reply = live.raw("GET", live.url("/nbconvert/html/images/embed.ipynb"), auth=True,
                     headers={**SAME, "Referer": live.origin + live.url("/lab")})
    assert reply.status == 200, reply
    for secret in embedded_secrets():
        assert secret not in reply.text, (secret, reply)


@pytest.mark.xfail(
    strict=True,
    reason="FINDING, no issue yet (closest: issue 5): POST /nbconvert/html has no notebook "
    "directory, so nbconvert's embed_images containment (7.17.1 fix) is relative to the "
    "server's working directory: absolute paths under it (here <workdir>/outside/secret.png) "
    "are read and embedded, bypassing the path policy",
)
def test_ghsa_7jqv_fw35_gmx9_embed_images_post_reads_no_file(live: Live) -> None:
    """GHSA-7jqv-fw35-gmx9 / CVE-2026-39378 through ``POST /nbconvert/html``: the notebook JSON
    comes in the request, there is no notebook directory, and no file of the server's may end up
    embedded in the answer."""
    nb = nbformat.read(live.root / "images" / "embed.ipynb", as_version=4)
    reply = live.api("POST", "/nbconvert/html", {"content": nb})
    assert reply.status == 200, reply
    for secret in embedded_secrets():
        assert secret not in reply.text, (secret, reply)
