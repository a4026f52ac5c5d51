"""CSP per route class on a live server, and the CSP report endpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from hardened_server.policy import csp

pytestmark = pytest.mark.live


def page_csp(server: Any, path: str) -> dict[str, tuple[str, ...]]:
    r = requests.get(server.url + path, headers=server.auth(), allow_redirects=False, timeout=20)
    assert r.status_code == 200, (path, r.status_code)
    return csp.parse(r.headers["Content-Security-Policy"])


def test_no_unsafe_eval_on_any_page_by_default(live_server: Any) -> None:
    """JupyterLab and Notebook 7 run without 'unsafe-eval' (#21, SECURITY.md): no page, the
    login page included, and no other class gets it under the shipped default."""
    for path in ("/lab", "/tree", "/notebooks/x.ipynb", "/edit/x.txt", "/consoles/x.py"):
        sources = page_csp(live_server, path)["script-src"]
        assert not [s for s in sources if s.startswith("'unsafe-")], (path, sources)
    login = requests.get(live_server.url + "/login", timeout=10)
    assert "'unsafe-eval'" not in csp.parse(login.headers["Content-Security-Policy"])["script-src"]
    api = requests.get(live_server.url + "/api/status", headers=live_server.auth(), timeout=10)
    assert "'unsafe-eval'" not in api.headers["Content-Security-Policy"]


def test_template_inline_scripts_are_allowed_by_hash_never_by_unsafe_inline(
    live_server: Any,
) -> None:
    """The one inline script of the JupyterLab page is allowed by the hash of the installed
    template, so an injected script (another hash) is still blocked."""
    lab = requests.get(live_server.url + "/lab", headers=live_server.auth(), timeout=20)
    scripts = page_csp(live_server, "/lab")["script-src"]
    assert "'unsafe-inline'" not in scripts
    page_hashes = set(csp.inline_script_hashes(lab.text))
    assert page_hashes, "the lab page has an inline script"
    assert page_hashes <= set(scripts)


def test_csp_report_uri_points_at_the_report_endpoint(live_server: Any) -> None:
    assert page_csp(live_server, "/lab")["report-uri"] == ("/api/security/csp-report",)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/csp-report",
            {"csp-report": {"document-uri": "http://127.0.0.1/lab?token=SECRETTOKEN",
                            "violated-directive": "script-src-elem",
                            "effective-directive": "script-src-elem",
                            "blocked-uri": "https://evil.example/x.js?k=SECRETTOKEN"}},
        ),
        (
            "application/reports+json",
            [{"type": "csp-violation", "url": "http://127.0.0.1/lab",
              "body": {"documentURL": "http://127.0.0.1/lab#token=SECRETTOKEN",
                       "effectiveDirective": "script-src-elem",
                       "blockedURL": "https://evil.example/x.js?k=SECRETTOKEN"}}],
        ),
    ],
)
def test_csp_report_endpoint_accepts_both_formats_and_logs_no_raw_body(
    live_server: Any, content_type: str, body: Any
) -> None:
    r = requests.post(
        live_server.url + "/api/security/csp-report",
        data=json.dumps(body),
        headers={**live_server.auth(), "Content-Type": content_type},
        timeout=10,
    )
    assert r.status_code == 204
    log = live_server.log()
    assert "csp violation rule=HS-CSP-001" in log
    assert "directive=script-src-elem" in log
    assert "blocked=https://evil.example/x.js" in log
    assert "SECRETTOKEN" not in log


def test_csp_report_cannot_forge_a_log_line(live_server: Any) -> None:
    """Stock logs the raw body: a newline in it forges a log line. Here only parsed, escaped
    fields are logged."""
    forged = {"csp-report": {"effective-directive": "script-src",
                             "blocked-uri": "inline",
                             "document-uri": "http://x/\n[E 2026 ServerApp] FORGED LINE"}}
    r = requests.post(
        live_server.url + "/api/security/csp-report",
        data=json.dumps(forged),
        headers={**live_server.auth(), "Content-Type": "application/csp-report"},
        timeout=10,
    )
    assert r.status_code == 204
    lines = live_server.log().splitlines()
    assert not any(line.startswith("[E 2026 ServerApp] FORGED") for line in lines)


@pytest.mark.parametrize(
    ("content_type", "data", "status"),
    [
        ("application/csp-report", b"x" * (17 * 1024), 413),
        ("application/csp-report", b"not json", 400),
        ("text/plain", b"{}", 400),
        ("application/reports+json", b"[]", 400),
    ],
)
def test_csp_report_endpoint_refuses_oversize_and_malformed_bodies(
    live_server: Any, content_type: str, data: bytes, status: int
) -> None:
    r = requests.post(
        live_server.url + "/api/security/csp-report",
        data=data,
        headers={**live_server.auth(), "Content-Type": content_type},
        timeout=10,
    )
    assert r.status_code == status


def test_csp_report_endpoint_is_rate_limited(server_factory: Any) -> None:
    server = server_factory()
    body = json.dumps({"csp-report": {"effective-directive": "img-src", "blocked-uri": "data"}})
    statuses = []
    for _ in range(150):
        r = requests.post(
            server.url + "/api/security/csp-report",
            data=body,
            headers={**server.auth(), "Content-Type": "application/csp-report"},
            timeout=10,
        )
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            break
    assert statuses[0] == 204
    assert statuses[-1] == 429


def test_csp_report_without_a_content_type_is_a_200_like_stock(live_server: Any) -> None:
    """Stock's handler answers 200 to any body, so clients that post without a Content-Type
    (jupyter_server's own test suite does) keep working; a body that parses as a report is
    still recorded, an oversized one is still refused."""
    url = live_server.url + "/api/security/csp-report"
    empty = requests.post(url, data=b"", headers=live_server.auth(), timeout=10)
    assert "Content-Type" not in empty.request.headers
    assert empty.status_code == 200, empty.text
    report = {"csp-report": {"effective-directive": "font-src", "blocked-uri": "https://f.example/x"}}
    r = requests.post(url, data=json.dumps(report).encode(), headers=live_server.auth(), timeout=10)
    assert r.status_code == 200, r.text
    assert "directive=font-src" in live_server.log()
    big = requests.post(url, data=b"x" * (17 * 1024), headers=live_server.auth(), timeout=10)
    assert big.status_code == 413
