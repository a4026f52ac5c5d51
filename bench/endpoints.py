"""The endpoints measured on every server, with the headers a browser would send for each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench import fixtures

# What Chromium sends for a same-origin fetch() of the API (JupyterLab's requests) ...
_FETCH = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
# ... for a typed URL / bookmark navigation ...
_NAVIGATE = {
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Accept": "text/html,application/xhtml+xml",
}
# ... and for opening a file from the file browser in a new tab.
_OPEN_FILE = {**_NAVIGATE, "Sec-Fetch-Site": "same-origin"}


@dataclass
class Endpoint:
    name: str
    label: str
    kind: str  # "http" or "ws"
    method: str = "GET"
    path: str = ""
    connections: int = 10
    body: bytes | None = None
    browser_headers: dict[str, str] = field(default_factory=dict)
    with_origin: bool = False
    quickack: bool = False  # ws only: the client ACKs at once (see bench.kernelws)

    def headers(self, server: Any) -> dict[str, str]:
        h = dict(self.browser_headers)
        if self.with_origin:
            h["Origin"] = server.origin
        if self.body is not None:
            h["Content-Type"] = "application/json"
        return h


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("status", "GET /api/status", "http", path="/api/status",
                 browser_headers=_FETCH),
        Endpoint("contents", f"GET /api/contents ({fixtures.BIG_DIR_ENTRIES:,} entries)", "http",
                 path=f"/api/contents/{fixtures.BIG_LISTING_DIR}", connections=4,
                 browser_headers=_FETCH),
        # What JupyterLab asks when a notebook is opened.
        Endpoint("open", "GET /api/contents/<1 MiB notebook> (open)", "http",
                 path=f"/api/contents/{fixtures.NOTEBOOK}?type=notebook&content=1",
                 connections=4, browser_headers=_FETCH),
        Endpoint("files", "GET /files/<64 KiB file>", "http",
                 path=f"/files/{fixtures.FILE_NAME}", browser_headers=_OPEN_FILE),
        Endpoint("lab", "GET /lab (page)", "http", path="/lab", browser_headers=_NAVIGATE),
        Endpoint("kernel", "kernel execute round trip (ws, browser-like ACKs)", "ws"),
        Endpoint("kernel-qa", "kernel execute round trip (ws, client TCP_QUICKACK)", "ws",
                 quickack=True),
        Endpoint("save", "PUT /api/contents/<1 MiB notebook>", "http", method="PUT",
                 path=f"/api/contents/{fixtures.NOTEBOOK}", connections=4,
                 body=fixtures.save_body(), browser_headers=_FETCH, with_origin=True),
    ]  # fmt: skip
