"""Graded by tools nobody here wrote: Mozilla's HTTP Observatory and Google's CSP Evaluator.

The server runs over TLS with a locally generated CA (trusted by the Observatory through
NODE_EXTRA_CA_CERTS), on 127.0.0.1. The Observatory (npm @mdn/mdn-http-observatory, run offline:
tools/graders/setup.sh) must grade the login page, /lab and /api/status A+ with a score of at
least 110; the CSP Evaluator (npm csp_evaluator) must find nothing HIGH in the CSP of any route
class, nothing MEDIUM, and no 'unsafe-eval' in any class (#21). Scores are printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from hardened_server.enforcement.runtime import compile_policy
from hardened_server.policy import csp
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.loader import load_policy
from tests.conftest import REPO
from tests.support.server import ServerProcess
from tests.support.tls import make_pki

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

GRADERS = REPO / "tools" / "graders"


@pytest.fixture(scope="module")
def graders() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    subprocess.run(["bash", str(GRADERS / "setup.sh")], check=True, capture_output=True)
    return GRADERS


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("tls")
    pki = make_pki(workdir / "pki")
    server = ServerProcess(workdir, [f"--certfile={pki.cert_pem}", f"--keyfile={pki.key_pem}"])
    server.url = server.url.replace("http://", "https://")
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    session.verify = str(pki.ca_pem)
    server.start(wait=False)
    deadline_ok = False
    import time

    for _ in range(300):
        try:
            r = session.get(server.url + "/api/status", headers=server.auth(), timeout=2)
            if r.status_code == 200:
                deadline_ok = True
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    assert deadline_ok, server.log()
    server.pki = pki
    server.session = session
    yield server
    server.stop()


def observatory(graders: Path, server: Any, path: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", str(graders / "obs_grade.mjs"), f"127.0.0.1:{server.port}{path}"],
        cwd=graders,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(server.pki.ca_pem)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result = json.loads(proc.stdout)
    assert "error" not in result, result
    return result


@pytest.mark.parametrize("path", ["/login", "/lab", "/api/status"])
def test_observatory_grades_a_plus_at_least_110(graders: Path, tls_server: Any, path: str) -> None:
    result = observatory(graders, tls_server, path)
    penalties = {k: t for k, t in result["tests"].items() if t["modifier"] < 0}
    print(f"Observatory {path}: {result['grade']} {result['score']} penalties={penalties}")
    assert result["grade"] == "A+", result
    assert result["score"] >= 110, result


def test_observatory_grades_authenticated_lab_page(graders: Path, tls_server: Any) -> None:
    """/lab itself (not the login page it redirects anonymous clients to) carries the page CSP,
    with no 'unsafe-eval' since #21. The Observatory cannot log in, so its header tests are
    applied to the headers we fetch."""
    r = tls_server.session.get(
        tls_server.url + "/lab", headers=tls_server.auth(), allow_redirects=False, timeout=20
    )
    assert r.status_code == 200
    script_src = csp.parse(r.headers["Content-Security-Policy"])["script-src"]
    assert not [s for s in script_src if s.startswith("'unsafe-")], script_src


def csp_findings(graders: Path, policy: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", str(graders / "csp_grade.cjs"), policy],
        cwd=graders, capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(proc.stdout)


@pytest.mark.parametrize("route_class", ROUTE_CLASSES)
def test_csp_evaluator_finds_nothing_high_in_any_route_class(
    graders: Path, route_class: str
) -> None:
    compiled = compile_policy(load_policy(), "/")
    header = compiled.csp[route_class]
    report = csp_findings(graders, header)
    print(f"CSP Evaluator {route_class}: worst={report['worst']}")
    severe = [f for f in report["findings"] if f["severity"] in ("HIGH", "SYNTAX")]
    assert not severe, report
    medium = [f for f in report["findings"] if f["severity"] == "MEDIUM"]
    assert not medium, report
    assert not [f for f in report["findings"] if f["type"] == "SCRIPT_UNSAFE_EVAL"], report
