"""Advisories against notebook (classic) that have no jupyter_server twin (research §3.2).

The twins are tested once, in ``test_jupyter_server.py``, whose docstrings name both ids:
CVE-2018-19351 (= JS-13), CVE-2019-9644 (= JS-5), CVE-2019-10255 (= JS-2), CVE-2019-10856
(= JS-6), CVE-2020-26215 (= JS-1), CVE-2022-24758 (= JS-3). Front-end advisories get the
server-side defence the research names: the page CSP.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.support.live import (
    EVIL,
    Live,
    Spec,
    assert_sandboxed,
    launched,
    quote,
)

pytestmark = pytest.mark.live

PAYLOAD = '"><img src=x onerror=alert(1)>'
RAW_PAYLOAD = "<img src=x onerror"
SSH_SECRET = "SSH-PRIVATE-" + secrets.token_hex(8)
EVIL_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)">'
    "<script>fetch('/api/contents')</script></svg>"
)
EVIL_HTML = "<html><body><script>fetch('/api/contents')</script></body></html>"


def lay_out(root: Path, workdir: Path) -> None:
    """Paths with markup in their names; active files; a hidden ``.ssh`` with a key, a hidden
    directory, and a symlink with an innocent name pointing at ``.ssh``; a kernelspec whose
    resource directory holds an SVG with script."""
    evil_dir = root / PAYLOAD
    evil_dir.mkdir()
    (evil_dir / "f.txt").write_text("hi\n")
    (evil_dir / f"{PAYLOAD}.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (root / "evil.html").write_text(EVIL_HTML)
    (root / "evil.svg").write_text(EVIL_SVG)
    (root / ".ssh").mkdir()
    (root / ".ssh" / "id_rsa").write_text(SSH_SECRET)
    (root / ".hiddendir").mkdir()
    (root / ".hiddendir" / "nb.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (root / "linkssh").symlink_to(".ssh")
    (root / "visible").mkdir()
    (root / "visible" / "a.txt").write_text("hello\n")
    spec_dir = workdir / "jupyter" / "data" / "kernels" / "evil"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": ["python3", "-c", "pass"], "display_name": "evil", "language": "python"}
    ))
    (spec_dir / "evil.svg").write_text(EVIL_SVG)
    (spec_dir / "evil.html").write_text(EVIL_HTML)


MAIN = Spec(setup=lay_out, frontends=True)
FILES_HANDLER = Spec(
    setup=lay_out,
    args=("--ContentsManager.files_handler_class=jupyter_server.files.handlers.FilesHandler",),
)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Live]]:
    with launched(tmp_path_factory, MAIN, FILES_HANDLER, name="nb") as (main, files):
        yield {"main": main, "files_handler": files}


@pytest.fixture(scope="module")
def main(servers: dict[str, Live]) -> Live:
    return servers["main"]


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
               "Sec-Fetch-Dest": "iframe"}


def same_origin(live: Live) -> dict[str, str]:
    return {**SAME_ORIGIN, "Referer": live.origin + live.url("/lab")}


def page_csp(live: Live, rel: str = "/lab") -> dict[str, list[str]]:
    # The login page is for anonymous users (a logged-in one is sent on to ``next``).
    reply = live.req("GET", rel, auth=rel != "/login")
    assert reply.status == 200, reply
    assert (reply.header("Content-Type") or "").startswith("text/html"), reply
    return reply.csp()


def assert_no_inline_script(csp: dict[str, list[str]]) -> None:
    """``script-src`` (or ``default-src`` in its absence) allows no inline script, no script
    from anywhere (``*``, a bare scheme) and no ``data:`` script."""
    sources = csp.get("script-src", csp.get("default-src"))
    assert sources is not None, csp
    for bad in ("'unsafe-inline'", "*", "data:", "http:", "https:", "blob:",
                "'unsafe-hashes'", "'strict-dynamic'"):
        assert bad not in sources, (bad, sources)


# -- CVE-2015-6938, CVE-2018-19352 ---------------------------------------------------------------


def test_cve_2015_6938_path_names_are_escaped_in_every_html_page(main: Live) -> None:
    """CVE-2015-6938 / PYSEC-2015-26: a folder named ``"><img src=x onerror=alert(1)>`` ran
    script in the file browser. Every server-rendered HTML page that echoes a path (``/view``,
    ``/lab/tree``, nbconvert titles, error pages, the login form's ``next``) escapes it."""
    p = quote(PAYLOAD)
    pages = [
        f"/view/{p}/f.txt",
        f"/lab/tree/{p}",
        f"/lab/tree/{p}/f.txt",
        f"/nbconvert/html/{p}/{p}.ipynb",
        f"/nbconvert/html/{p}/missing.ipynb",
        f"/files/{p}/missing.txt",
        f"/{p}",
        f"/nope/{p}/",
        f"/lab/{p}",
        f"/kernelspecs/{p}/x.svg",
    ]
    for rel in pages:
        reply = main.req("GET", rel, auth=True, headers=same_origin(main))
        if (reply.header("Content-Type") or "").startswith("text/html"):
            assert RAW_PAYLOAD not in reply.text, reply
    login = main.req("GET", f"/login?next=/{p}")
    assert login.status == 200, login
    assert RAW_PAYLOAD not in login.text


def test_ghsa_3p4q_x8f3_p7vq_directory_name_xss_in_tree_is_not_served_raw(main: Live) -> None:
    """GHSA-3p4q-x8f3-p7vq / CVE-2018-19352 (front end: a crafted directory name ran script in
    the tree view). Server side: the listing the front end renders is JSON with the name as
    data (not HTML), and the page that renders it allows no inline script."""
    listing = main.api("GET", f"/api/contents/{quote(PAYLOAD)}")
    assert listing.status == 200, listing
    assert (listing.header("Content-Type") or "").startswith("application/json"), listing
    assert listing.header("X-Content-Type-Options") == "nosniff"
    assert listing.csp().get("default-src") == ["'none'"], listing
    assert_no_inline_script(page_csp(main, f"/lab/tree/{quote(PAYLOAD)}"))


# -- CVE-2015-7337, CVE-2018-21030 ---------------------------------------------------------------


def test_cve_2015_7337_files_html_is_sandboxed_and_not_sniffed(main: Live) -> None:
    """CVE-2015-7337 / PYSEC-2015-27: the editor's redirect to ``files/`` ran a crafted file's
    script in the server's origin (MIME confusion). ``/files/evil.html`` is served with a CSP
    ``sandbox`` (opaque origin; hardened: without ``allow-scripts`` either) and ``nosniff``."""
    for rel in ("/files/evil.html", "/files/evil.html?download=0"):
        reply = main.req("GET", rel, auth=True, headers=same_origin(main))
        assert reply.status == 200, reply
        assert_sandboxed(reply)
        assert "allow-scripts" not in reply.csp()["sandbox"]


def test_ghsa_jqwc_jm56_wcwj_svg_is_sandboxed_on_every_file_route(
    servers: dict[str, Live],
) -> None:
    """GHSA-jqwc-jm56-wcwj / CVE-2018-21030: served files had no CSP sandbox, so an SVG with
    script ran same-origin. ``/files/evil.svg`` through ``AuthenticatedFileHandler`` and through
    ``FilesHandler``, and ``/kernelspecs/<k>/evil.svg`` (no sandbox in jupyter_server 2.21.1)
    are all sandboxed without ``allow-same-origin``."""
    main, files = servers["main"], servers["files_handler"]
    replies = [
        main.req("GET", "/files/evil.svg", auth=True, headers=same_origin(main)),
        files.req("GET", "/files/evil.svg", auth=True, headers=same_origin(files)),
        files.req("GET", "/files/evil.html", auth=True, headers=same_origin(files)),
        main.req("GET", "/kernelspecs/evil/evil.svg", auth=True, headers=same_origin(main)),
        main.req("GET", "/kernelspecs/evil/evil.html", auth=True, headers=same_origin(main)),
    ]
    for reply in replies:
        assert reply.status == 200, reply
        assert_sandboxed(reply)


# -- CVE-2018-8768, CVE-2021-32798, CVE-2024-43805 (front end: the page CSP) ----------------------


def test_ghsa_6cwv_x26c_w2q4_page_csp_blocks_inline_script(main: Live) -> None:
    """GHSA-6cwv-x26c-w2q4 / CVE-2018-8768 (front end: a forged notebook got past the sanitizer
    because jQuery "fixed" the HTML afterwards). Defence in depth on the server: no page allows
    inline script, so sanitizer bypasses that inject markup cannot run it."""
    for rel in ("/lab", "/login", "/view/visible/a.txt", "/lab/tree/visible"):
        assert_no_inline_script(page_csp(main, rel))


def test_ghsa_hwvq_6gjx_j797_page_csp_limits_sanitizer_bypass_to_nothing(main: Live) -> None:
    """GHSA-hwvq-6gjx-j797 / CVE-2021-32798 (front end: Google Caja sanitizer bypass, XSS, then
    code execution through the API). Server side: the page CSP allows no inline script and no
    plugin content, and scripts can talk to this origin only; since #21 no string becomes code
    either (no ``'unsafe-eval'``)."""
    csp = page_csp(main)
    assert_no_inline_script(csp)
    assert "'unsafe-eval'" not in csp.get("script-src", []), csp
    assert csp.get("object-src") == ["'none'"], csp
    assert csp.get("connect-src") == ["'self'"], csp


def test_ghsa_9q39_rmj3_p4r2_page_csp_blunts_dom_clobbering(main: Live) -> None:
    """GHSA-9q39-rmj3-p4r2 / CVE-2024-43805 (notebook 7.2.2, JupyterLab 4.2.5; front end: HTML
    injection in Markdown, DOM clobbering). Server side, the research's mitigation: ``base-uri
    'none'`` (no ``<base>`` hijack of relative URLs), no inline script, no plugins."""
    csp = page_csp(main)
    assert csp.get("base-uri") in (["'none'"], ["'self'"]), csp
    assert_no_inline_script(csp)
    assert csp.get("object-src") == ["'none'"], csp


# -- CVE-2022-29238 ------------------------------------------------------------------------------


def test_ghsa_v7vq_3x77_87vg_hidden_files_are_inaccessible_not_just_unlisted(main: Live) -> None:
    """GHSA-v7vq-3x77-87vg / CVE-2022-29238: hidden files were hidden from listings but could be
    read and written by path. ``.ssh/id_rsa`` is refused by the contents API, /files and
    nbconvert; a hidden file cannot be created, renamed to or deleted; listings omit them."""
    same = same_origin(main)
    for reply in (
        main.api("GET", "/api/contents/.ssh/id_rsa"),
        main.api("GET", "/api/contents/.ssh"),
        main.req("GET", "/files/.ssh/id_rsa", auth=True, headers=same),
        main.req("GET", "/nbconvert/html/.hiddendir/nb.ipynb", auth=True, headers=same),
        main.req("GET", "/nbconvert/script/.ssh/id_rsa", auth=True, headers=same),
    ):
        assert reply.status == 404, reply
        assert SSH_SECRET not in reply.text
    for method, rel, payload in (
        ("PUT", "/api/contents/.bashrc", {"type": "file", "format": "text", "content": "x"}),
        ("PUT", "/api/contents/.ssh/authorized_keys",
         {"type": "file", "format": "text", "content": "ssh-ed25519 AAAA attacker"}),
        ("PATCH", "/api/contents/visible/a.txt", {"path": ".hidden-renamed"}),
        ("DELETE", "/api/contents/.ssh/id_rsa", None),
        ("POST", "/api/contents/visible", {"copy_from": ".ssh/id_rsa"}),
        ("POST", "/api/contents/.hiddendir", {"type": "directory"}),
    ):
        reply = main.api(method, rel, payload)
        assert reply.status in (400, 403, 404), (method, rel, reply)
    assert (main.root / ".ssh" / "id_rsa").read_text() == SSH_SECRET
    assert not (main.root / ".ssh" / "authorized_keys").exists()
    assert not (main.root / ".bashrc").exists()
    assert (main.root / "visible" / "a.txt").exists()
    names = [entry["name"] for entry in main.api("GET", "/api/contents").json()["content"]]
    assert not [n for n in names if n.startswith(".")], names


def test_ghsa_v7vq_3x77_87vg_hardened_every_entry_point_and_aliases(main: Live) -> None:
    """GHSA-v7vq-3x77-87vg, hardened (research observations O1-O6): the gaps jupyter_server
    2.21.1 still has. A symlink with an innocent name pointing at ``.ssh`` reads and writes the
    keys; ``POST /api/contents/<hidden dir>`` creates ``untitled`` inside; checkpoints, trust,
    ``/api/resolvePath`` and ``/view`` answer for hidden paths (existence oracle)."""
    same = same_origin(main)
    for reply in (
        main.api("GET", "/api/contents/linkssh/id_rsa"),
        main.api("GET", "/api/contents/linkssh"),
        main.req("GET", "/files/linkssh/id_rsa", auth=True, headers=same),
    ):
        assert reply.status == 404, reply
        assert SSH_SECRET not in reply.text
    alias_write = main.api("PUT", "/api/contents/linkssh/authorized_keys",
                           {"type": "file", "format": "text", "content": "attacker"})
    assert alias_write.status in (400, 403, 404), alias_write
    assert not (main.root / ".ssh" / "authorized_keys").exists()
    for kind in ("file", "notebook"):
        reply = main.api("POST", "/api/contents/.hiddendir", {"type": kind})
        assert reply.status in (400, 403, 404), reply
    assert sorted(p.name for p in (main.root / ".hiddendir").iterdir()) == ["nb.ipynb"]
    assert main.api("GET", "/api/contents/.hiddendir/nb.ipynb/checkpoints").status == 404
    created = main.api("POST", "/api/contents/.hiddendir/nb.ipynb/checkpoints")
    assert created.status in (400, 403, 404), created
    trust = main.api("POST", "/api/contents/.hiddendir/nb.ipynb/trust")
    assert trust.status in (400, 403, 404), trust
    resolved = main.api("GET", "/api/resolvePath?path=.ssh/id_rsa")
    assert resolved.status == 404 or resolved.json() == {"resolved": []}, resolved
    assert main.req("GET", "/view/.ssh/id_rsa", auth=True).status == 404


# -- CVE-2024-22421 ------------------------------------------------------------------------------


def test_ghsa_44cc_43rp_5947_tokens_stay_out_of_urls_and_referers(main: Live) -> None:
    """GHSA-44cc-43rp-5947 / CVE-2024-22421 (notebook 7.0.7, JupyterLab 4.0.11): a malicious
    link made the front end send ``Authorization`` and ``XSRFToken`` to an attacker, via
    jupyter_server's open redirect (JS-6, tested there). Server side: a URL token is refused
    everywhere but a page navigation, where it is exchanged for a cookie and stripped by a
    redirect that sends no Referer; every response limits Referer to this origin."""
    for rel in ("/api/contents", "/api/status", "/files/visible/a.txt", "/nbconvert/html/x"):
        reply = main.req("GET", f"{rel}?token={main.token}", headers=same_origin(main))
        assert reply.status in (302, 403), reply
        if reply.status == 302:
            assert (reply.header("Location") or "").startswith(main.url("/login")), reply
    nav = main.req("GET", f"/lab?token={main.token}",
                   headers={"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate",
                            "Sec-Fetch-Dest": "document"})
    assert nav.status == 302, nav
    assert main.token not in (nav.header("Location") or "")
    assert nav.header("Referrer-Policy") == "no-referrer", nav
    for rel in ("/lab", "/api/status", "/login"):
        reply = main.req("GET", rel, auth=True)
        assert reply.header("Referrer-Policy") in ("no-referrer", "same-origin"), reply
    assert EVIL not in (nav.header("Location") or "")
