"""One gate for every method (issue #18), on a real server.

Before: ``prepare`` let every ``OPTIONS`` through before the user was known (no rate limit, a
wrong token never charged, an extension's own undecorated ``options()`` run for an anonymous
client on a non-API route), and a method tornado does not route (``FOO``) got 405 before
``prepare``, so neither was ever charged. Each client below has its own rate-limit bucket (the
server trusts 127.0.0.1 as a proxy and each test names another client in X-Forwarded-For).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tests.support.live import Live, Spec, launched

pytestmark = pytest.mark.live

FIXTURE = REPO / "tests" / "fixtures" / "ext_options"
MARKER = "X-Options-Extension-Ran"
TRUSTED = "https://trusted.example"
BURST = 10

POLICY = f"""
[server]
trusted_proxies = ["127.0.0.1/32"]

[cors]
allow_origins = ["{TRUSTED}"]

[limits]
unauthenticated_requests_per_minute = 1
unauthenticated_burst = {BURST}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    spec = Spec(
        policy=POLICY,
        args=("--ServerApp.jpserver_extensions=options_extension=True",),
        env={"PYTHONPATH": os.pathsep.join([str(FIXTURE), os.environ.get("PYTHONPATH", "")])},
    )
    with launched(tmp_path_factory, spec, name="methods") as started:
        yield started[0]


def client(ip: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip, **headers}


def test_anonymous_options_is_rate_limited(live: Live) -> None:
    statuses = [
        live.req("OPTIONS", "/api/contents", headers=client("198.51.100.1")).status
        for _ in range(BURST + 2)
    ]
    assert statuses[:BURST] == [204] * BURST, statuses
    assert statuses[-1] == 429, statuses


def test_unknown_method_is_rate_limited(live: Live) -> None:
    statuses = [
        live.req("FOO", "/api/status", headers=client("198.51.100.2")).status
        for _ in range(BURST + 2)
    ]
    assert statuses[:BURST] == [405] * BURST, statuses
    assert statuses[-1] == 429, statuses


def test_wrong_token_on_options_is_charged_as_a_failed_credential(live: Live) -> None:
    wrong = client("198.51.100.3", Authorization="token not-the-token")
    first = live.req("OPTIONS", "/api/contents", headers=wrong)
    assert first.status == 204, first  # answered (a preflight), but the failure is charged
    second = live.req("OPTIONS", "/api/contents", headers=wrong)
    assert second.status == 429, second  # a failed credential costs the whole burst
    refused = [
        rec
        for path in (live.workdir / "jupyter" / "runtime").glob("hardened-server-audit-*.jsonl")
        for line in path.read_text().splitlines()
        if (rec := json.loads(line).get("event") or {}).get("rule_id") == "HS-ID-002"
    ]
    assert {(r["method"], r["client_ip"]) for r in refused} == {("OPTIONS", "198.51.100.3")}


def test_extension_options_never_runs_for_an_anonymous_client(live: Live) -> None:
    reply = live.req("OPTIONS", "/options-probe", headers=client("198.51.100.4"))
    assert reply.header(MARKER) is None, reply
    assert reply.status == 403, reply
    assert b"extension options ran" not in reply.body
    # A logged-in client still reaches it (the extension's handler is not broken).
    logged_in = live.req("OPTIONS", "/options-probe", headers=client("198.51.100.4"), auth=True)
    assert logged_in.header(MARKER) == "yes", logged_in


def test_cors_preflight_for_an_allowed_origin_still_works(live: Live) -> None:
    reply = live.req(
        "OPTIONS",
        "/api/contents",
        headers=client(
            "198.51.100.5",
            Origin=TRUSTED,
            **{
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        ),
    )
    assert reply.status == 204, reply
    assert reply.header("Access-Control-Allow-Origin") == TRUSTED, reply
    foreign = live.req(
        "OPTIONS",
        "/api/contents",
        headers=client(
            "198.51.100.5",
            Origin="https://evil.example",
            **{"Access-Control-Request-Method": "PUT"},
        ),
    )
    assert foreign.header("Access-Control-Allow-Origin") is None, foreign
