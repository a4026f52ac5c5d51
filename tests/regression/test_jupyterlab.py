"""Advisories against JupyterLab, jupyterlab_server and jupyter-lsp (research §3.3).

JupyterLab's front-end advisories get the server-side defence the research names (the page
CSP); CVE-2024-22421 and CVE-2024-43805 are shared with notebook and tested in
``test_notebook.py``. The extension manager advisories run against real allow- and block-lists
served from a local listing server; pip is pointed at nothing (``PIP_NO_INDEX``) so that a
regression could never install a package, and a listener stands in for a foreign index.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.live import (
    WS_UPGRADE,
    Listener,
    Live,
    Spec,
    launched,
)

pytestmark = pytest.mark.live

ALLOWED = {"allowed_extensions": [{"name": "jupyterlab-allowed-only",
                                   "regexp": "^jupyterlab-allowed-only$"}]}
BLOCKED = {"blocked_extensions": [{"name": "jupyterlab-git", "regexp": "^jupyterlab-git$"}]}

#: pip, if it ever ran, finds no index and no links: nothing can be installed.
NO_PIP = {
    "PIP_NO_INDEX": "1",
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "PIP_FIND_LINKS": "",
    "PIP_CONFIG_FILE": "/dev/null",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


class _Listings(http.server.BaseHTTPRequestHandler):
    documents: dict[str, Any] = {"/allowed.json": ALLOWED, "/blocked.json": BLOCKED}

    def do_GET(self) -> None:
        doc = self.documents.get(self.path)
        body = json.dumps(doc).encode() if doc is not None else b"{}"
        self.send_response(200 if doc is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def listings() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, listings: str
) -> Iterator[dict[str, Live]]:
    allow = Spec(frontends=True, env=NO_PIP,
                 args=(f"--LabServerApp.allowed_extensions_uris={listings}/allowed.json",))
    block = Spec(frontends=True, env=NO_PIP,
                 args=(f"--LabServerApp.blocked_extensions_uris={listings}/blocked.json",))
    with launched(tmp_path_factory, allow, block, name="lab") as (allowing, blocking):
        yield {"allow": allowing, "block": blocking}


@pytest.fixture(scope="module")
def lab(servers: dict[str, Live]) -> Live:
    return servers["allow"]


def install(live: Live, name: str, version: str | None = None) -> Any:
    payload: dict[str, Any] = {"cmd": "install", "extension_name": name}
    if version is not None:
        payload["extension_version"] = version
    return live.api("POST", "/lab/api/extensions", payload, timeout=120)


def page_csps(live: Live) -> list[dict[str, list[str]]]:
    out = []
    for rel in ("/lab", "/doc", "/lab/tree/notes.md", "/lab/workspaces/w1"):
        reply = live.req("GET", rel, auth=True)
        assert reply.status == 200, reply
        out.append(reply.csp())
    return out


# -- front end: the page CSP ------------------------------------------------------------------


def test_ghsa_4952_p58q_6crx_page_csp_restricts_form_targets(lab: Live) -> None:
    """GHSA-4952-p58q-6crx / CVE-2021-32797: an untrusted notebook's ``<form action>`` was not
    sanitised, and a click submitted it (code execution). Server side: ``form-action`` on every
    JupyterLab page allows this origin at most."""
    for csp in page_csps(lab):
        assert csp.get("form-action") in (["'self'"], ["'none'"]), csp


def test_ghsa_4m77_cmpx_vjc4_page_csp_blocks_injected_script(lab: Live) -> None:
    """GHSA-4m77-cmpx-vjc4 / CVE-2024-22420 (front end: XSS in the Markdown preview).
    Server side: no JupyterLab page allows inline script, script from elsewhere or plugins."""
    for csp in page_csps(lab):
        sources = csp.get("script-src", csp.get("default-src"))
        assert sources is not None, csp
        for bad in ("'unsafe-inline'", "*", "data:", "http:", "https:", "blob:"):
            assert bad not in sources, (bad, csp)
        assert csp.get("object-src") == ["'none'"], csp


# -- extension manager ------------------------------------------------------------------------


def test_ghsa_37w4_hwhx_4rc4_extension_install_outside_allow_list_refused(lab: Live) -> None:
    """GHSA-37w4-hwhx-4rc4 / CVE-2026-42266 / PYSEC-2026-164 (server side): the PyPI extension
    manager's allow-list was not enforced for ``POST /lab/api/extensions``, and the install was
    not confined to the default index: any authenticated client installed any package (code
    execution even with kernels and terminals off). With an allow-list configured, a package
    outside it is refused (422), as are names that smuggle pip options, URLs or a foreign index;
    no foreign index is ever contacted; anonymous and cookie-without-XSRF requests never get
    that far."""
    listener = Listener()
    try:
        foreign = f"http://127.0.0.2:{listener.port}"
        names = [
            "not-allowed-pkg",
            "jupyterlab-allowed-only-but-not",
            f"--index-url={foreign}/simple",
            f"--extra-index-url {foreign}/simple jupyterlab-allowed-only",
            f"jupyterlab-allowed-only @ {foreign}/jupyterlab_allowed_only-1.0-py3-none-any.whl",
            f"{foreign}/jupyterlab_allowed_only-1.0-py3-none-any.whl",
            f"git+{foreign}/jupyterlab-allowed-only",
            "jupyterlab-allowed-only; python_version > '0'",
        ]
        for name in names:
            reply = install(lab, name)
            assert reply.status in (400, 403, 422), (name, reply)
        version = install(lab, "jupyterlab-allowed-only", f"1.0 --index-url {foreign}/simple")
        assert version.status in (400, 403, 422), version
        assert listener.connections == 0
    finally:
        listener.close()
    assert "Installation denied by allowlist/blocklist for not-allowed-pkg" in lab.log()
    anonymous = lab.req("POST", "/lab/api/extensions", headers={"Origin": lab.origin},
                        body=json.dumps({"cmd": "install", "extension_name": "x"}))
    assert anonymous.status == 403, anonymous
    cookie = lab.login_cookie()
    no_xsrf = lab.req("POST", "/lab/api/extensions", cookie=cookie,
                      headers={"Origin": lab.origin, "Content-Type": "application/json"},
                      body=json.dumps({"cmd": "install", "extension_name": "x"}))
    assert no_xsrf.status == 403, no_xsrf


def test_cve_2026_73416_block_list_matches_canonical_package_names(
    servers: dict[str, Live],
) -> None:
    """CVE-2026-73416 / PYSEC-2026-3670: the extension manager's block-list compared names more
    loosely than PEP 503 canonicalisation, so ``JupyterLab.Git`` installed a blocked
    ``jupyterlab-git``. Every spelling that pip would resolve to the blocked package is
    refused."""
    block = servers["block"]
    for name in ("jupyterlab-git", "JupyterLab.Git", "jupyterlab_git", "JUPYTERLAB-GIT",
                 "jupyterlab--git", "JupyterLab__Git", "jupyterlab.-_git"):
        reply = install(block, name)
        assert reply.status in (400, 403, 422), (name, reply)
    assert "Installation denied by allowlist/blocklist" in block.log()


# -- jupyter-lsp ------------------------------------------------------------------------------


def test_ghsa_4qhp_652w_c22x_lsp_endpoints_need_login(lab: Live) -> None:
    """GHSA-4qhp-652w-c22x / CVE-2024-22415 (jupyter-lsp 2.2.2): the LSP endpoints were
    reachable without authentication (and the shadow file system wrote outside the root).
    Anonymous ``GET /lsp/status`` and websocket upgrades to ``/lsp/ws/<server>`` are refused, a
    URL token does not open the websocket, and a logged-in client still reaches the status.
    (The path-traversal half needs a running language server; none is installed here.)"""
    assert lab.req("GET", "/lsp/status").status == 403
    for server in ("pylsp", "pyright", "..%2F..%2Fx", "x"):
        reply = lab.req("GET", f"/lsp/ws/{server}", headers={**WS_UPGRADE, "Origin": lab.origin})
        assert reply.status == 403, (server, reply)
        with_url_token = lab.req("GET", f"/lsp/ws/{server}?token={lab.token}",
                                 headers={**WS_UPGRADE, "Origin": lab.origin})
        assert with_url_token.status == 403, (server, with_url_token)
    ok = lab.req("GET", "/lsp/status", auth=True)
    assert ok.status == 200, ok
