"""The audit trail of a real server on 127.0.0.1: every rule family leaves exactly one
well-formed record, in the hash-chained file *and* on jupyter_server's EventLogger; sensitive
allows are recorded with their user; client schemas cannot forge server events; ``/metrics``
counts what the file holds; the file verifies after a clean shutdown.

One server for the module (default audit file in the runtime directory, an EventLogger
``FileHandler`` configured through ``jupyter_server_config.py``), with 127.0.0.1 as a trusted
proxy so that each test can speak for its own client address (``X-Forwarded-For``): the records
must carry *that* address, as the trusted-proxy rules established it.
"""

from __future__ import annotations

import collections
import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import websocket
from prometheus_client.parser import text_string_to_metric_families

from hardened_server.policy.eventschemas import TRAIL_SCHEMA_PREFIX
from hardened_server.policy.rules import Rule
from hardened_server.trail.record import SCHEMA_ID, decision_schema
from tests.conftest import REPO
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

POLICY = """
[server]
trusted_proxies = ["127.0.0.1/32"]

[terminals]
enabled = true

[limits]
max_url_bytes = 2048
unauthenticated_burst = 10
unauthenticated_requests_per_minute = 1
"""

CONFIG = """
import logging
c.EventLogger.handlers = [logging.FileHandler({events!r})]
"""


class Audited:
    """The server, its audit file and its EventLogger file."""

    def __init__(self, server: ServerProcess, events: Path) -> None:
        self.server = server
        self.events = events
        runtime = Path(server.env["JUPYTER_RUNTIME_DIR"])
        self.audit = runtime / f"hardened-server-audit-{server.port}.jsonl"
        self.url = server.url
        self.token = server.token

    def chain(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_bytes().splitlines() if line]

    def decisions(self) -> list[dict[str, Any]]:
        return [r["event"] for r in self.chain() if r["kind"] == "decision"]

    def emitted(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        out = []
        for line in self.events.read_text().splitlines():
            event = json.loads(line)
            if event.get("__schema__") == SCHEMA_ID:
                out.append({k: v for k, v in event.items() if not k.startswith("__")})
        return out

    def auth(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", **more}


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    workdir = tmp_path_factory.mktemp("trail")
    (workdir / "policy.toml").write_text(POLICY)
    events = workdir / "events.jsonl"
    server = ServerProcess(workdir, [f"--policy={workdir / 'policy.toml'}"])
    config_dir = Path(server.env["JUPYTER_CONFIG_DIR"])
    (config_dir / "jupyter_server_config.py").write_text(CONFIG.format(events=str(events)))
    server.start()
    yield Audited(server, events)
    server.stop()


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(
        decision_schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def _login(audited: Audited, client: str) -> requests.Session:
    """The URL-token navigation exchange, then the page that sets the ``_xsrf`` cookie."""
    session = requests.Session()
    session.headers["X-Forwarded-For"] = client
    r = session.get(
        audited.url + "/lab", params={"token": audited.token}, allow_redirects=False, timeout=20
    )
    assert r.status_code == 302, r.text
    assert session.get(audited.url + "/lab", timeout=20).status_code == 200
    assert session.cookies.get("_xsrf")
    return session


def _fire(audited: Audited, action: Callable[[], Any]) -> tuple[Any, list[dict], list[dict]]:
    """Run ``action``; the records it added to the file and to the EventLogger output."""
    before_file, before_events = len(audited.decisions()), len(audited.emitted())
    result = action()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # both sinks write before the response; be lenient
        if len(audited.decisions()) > before_file and len(audited.emitted()) > before_events:
            break
        time.sleep(0.05)
    time.sleep(0.1)
    return result, audited.decisions()[before_file:], audited.emitted()[before_events:]


def _get(audited: Audited, path: str, **kw: Any) -> Callable[[], requests.Response]:
    return lambda: requests.get(audited.url + path, timeout=20, allow_redirects=False, **kw)


class _Raw:
    def __init__(self, status: int, text: str) -> None:
        self.status_code, self.text = status, text


def _raw_get(audited: Audited, target: str, headers: dict[str, str]) -> Callable[[], _Raw]:
    """A request target sent exactly as written (requests would re-quote ``%zz``)."""

    def action() -> _Raw:
        conn = http.client.HTTPConnection("127.0.0.1", audited.server.port, timeout=20)
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            return _Raw(response.status, response.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    return action


def _post(audited: Audited, path: str, **kw: Any) -> Callable[[], requests.Response]:
    return lambda: requests.post(audited.url + path, timeout=20, allow_redirects=False, **kw)


def _rate_limited(audited: Audited, client: str) -> Callable[[], requests.Response]:
    """Spend the client's burst (10 anonymous requests, each its own HS-AUTH-001 record)
    first; the request under test is the one the limit refuses."""
    for _ in range(10):
        r = requests.get(
            audited.url + "/api/contents", timeout=20, headers={"X-Forwarded-For": client}
        )
        assert r.status_code == 403
    return _get(audited, "/api/contents", headers={"X-Forwarded-For": client})


def _cross_site(audited: Audited, client: str) -> Callable[[], requests.Response]:
    session = _login(audited, client)  # before: the request under test is the POST
    return lambda: session.post(
        audited.url + "/api/contents",
        json={"type": "file"},
        timeout=20,
        headers={"X-XSRFToken": session.cookies["_xsrf"], "Sec-Fetch-Site": "cross-site"},
    )


def _out_of_scope(audited: Audited, client: str) -> Callable[[], requests.Response]:
    """A stored token with contents:read only, used once before (its first use is a record of
    its own, token_used), then sent to the kernels API."""
    headers = {
        "Authorization": f"token {_stored_token(audited, 'contents:read')}",
        "X-Forwarded-For": client,
    }
    assert requests.get(audited.url + "/api/contents", headers=headers, timeout=20).ok
    return _get(audited, "/api/kernels", headers=headers)


def _no_xsrf(audited: Audited, client: str) -> Callable[[], requests.Response]:
    session = _login(audited, client)
    return lambda: session.post(
        audited.url + "/api/contents",
        json={"type": "file"},
        timeout=20,
        headers={"Sec-Fetch-Site": "same-origin"},
    )


CSP_REPORT = {
    "csp-report": {
        "document-uri": "http://127.0.0.1/lab?token=SECRET",
        "effective-directive": "script-src-elem",
        "blocked-uri": "https://evil.example/x.js?token=SECRET",
    }
}

# (family, rule id or prefix, decision, expected status, client, request)
FAMILIES: list[tuple[str, str, str, int, str, Callable[[Audited, str], Callable[[], Any]]]] = [
    (
        "host",
        "HS-HOST-002",
        "deny",
        403,
        "198.51.100.1",
        lambda a, c: _get(
            a, "/api/status", headers=a.auth(Host="evil.example", **{"X-Forwarded-For": c})
        ),
    ),
    (
        "proxy",
        "HS-PROXY-003",
        "allow",
        200,
        "not-an-address",
        lambda a, c: _get(a, "/api/status", headers=a.auth(**{"X-Forwarded-For": c})),
    ),
    (
        "limits",
        "HS-LIMIT-003",
        "deny",
        414,
        "198.51.100.3",
        lambda a, c: _get(a, "/api/status?x=" + "a" * 3000, headers={"X-Forwarded-For": c}),
    ),
    ("rate-limit", "HS-LIMIT-004", "deny", 429, "198.51.100.4", _rate_limited),
    (
        "raw-path",
        "HS-PATH-007",
        "deny",
        400,
        "198.51.100.5",
        lambda a, c: _raw_get(a, "/api/contents/%zz", a.auth(**{"X-Forwarded-For": c})),
    ),
    ("fetch-metadata", "HS-XSITE-", "deny", 403, "198.51.100.6", _cross_site),
    (
        "origin",
        "HS-ORIGIN-003",
        "deny",
        403,
        "198.51.100.7",
        lambda a, c: _post(
            a,
            "/api/contents",
            json={"type": "file"},
            headers=a.auth(Origin="https://evil.example", **{"X-Forwarded-For": c}),
        ),
    ),
    (
        "cors",
        "HS-CORS-002",
        "deny",
        204,
        "198.51.100.8",
        lambda a, c: (
            lambda: requests.options(
                a.url + "/api/contents",
                timeout=20,
                headers={
                    "Origin": "https://evil.example",
                    "Access-Control-Request-Method": "PUT",
                    "X-Forwarded-For": c,
                },
            )
        ),
    ),
    ("xsrf", "HS-XSRF-001", "deny", 403, "198.51.100.9", _no_xsrf),
    ("scope", "HS-SCOPE-001", "deny", 403, "198.51.100.15", _out_of_scope),
    (
        "path",
        "HS-PATH-",
        "deny",
        404,
        "198.51.100.10",
        lambda a, c: _get(a, "/api/contents/.ssh/id_rsa", headers=a.auth(**{"X-Forwarded-For": c})),
    ),
    (
        "auth",
        "HS-AUTH-001",
        "deny",
        403,
        "198.51.100.11",
        lambda a, c: _get(a, "/api/contents", headers={"X-Forwarded-For": c}),
    ),
    (
        "csp-report",
        "HS-CSP-001",
        "deny",
        204,
        "198.51.100.12",
        lambda a, c: _post(
            a,
            "/api/security/csp-report",
            data=json.dumps(CSP_REPORT),
            headers=a.auth(**{"Content-Type": "application/csp-report", "X-Forwarded-For": c}),
        ),
    ),
    (
        "events-audit-schema",
        "HS-EVENTS-001",
        "deny",
        403,
        "198.51.100.13",
        lambda a, c: _post(
            a,
            "/api/events",
            headers=a.auth(**{"X-Forwarded-For": c}),
            json={"schema_id": SCHEMA_ID, "version": "1", "data": {}},
        ),
    ),
    (
        "events-server-schema",
        "HS-EVENTS-001",
        "deny",
        403,
        "198.51.100.14",
        lambda a, c: _post(
            a,
            "/api/events",
            headers=a.auth(**{"X-Forwarded-For": c}),
            json={
                "schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1",
                "version": "1",
                "data": {"action": "delete", "path": "forged.ipynb"},
            },
        ),
    ),
]


def test_start_up_recorded_the_policy_with_its_fingerprint(audited: Audited) -> None:
    chain = audited.chain()
    assert chain[0]["kind"] in ("genesis", "resume")
    loaded = [d for d in audited.decisions() if d["event_kind"] == "policy_loaded"]
    assert len(loaded) == 1
    assert loaded[0]["rule_id"] == Rule.POLICY_LOADED
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "hardened_server",
            "policy",
            "show",
            "--json",
            f"--policy={audited.server.workdir / 'policy.toml'}",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert loaded[0]["policy_fingerprint"] == json.loads(shown.stdout)["fingerprint"]
    assert loaded[0]["route_class"] == "server"
    assert loaded[0]["method"] == "NONE"
    assert oct(audited.audit.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("family", "rule", "decision", "status", "client", "make"),
    FAMILIES,
    ids=[f[0] for f in FAMILIES],
)
def test_every_rule_family_leaves_exactly_one_record_in_each_sink(
    audited: Audited,
    family: str,
    rule: str,
    decision: str,
    status: int,
    client: str,
    make: Callable[[Audited, str], Callable[[], Any]],
) -> None:
    response, in_file, in_events = _fire(audited, make(audited, client))
    assert response.status_code == status, (family, response.text)
    ours = [r for r in in_file if r["rule_id"].startswith(rule)]
    assert len(ours) == 1, (family, in_file)
    record = ours[0]
    # Exactly one record for this request: no second layer reported the same decision.
    assert len(in_file) == 1, (family, in_file)
    assert in_events == in_file, family
    _validator().validate(record)
    assert record["decision"] == decision
    fingerprint = audited.decisions()[0]["policy_fingerprint"]
    assert record["policy_fingerprint"] == fingerprint
    # The client as the trusted-proxy rules established it (a malformed entry from the trusted
    # proxy leaves the proxy itself as the client).
    assert record["client_ip"] == (client if client[0].isdigit() else "127.0.0.1")
    assert record["scheme"] == "http"
    assert "?" not in record["path"]
    assert "SECRET" not in json.dumps(record)
    assert len(record["request_id"]) == 32


def test_sensitive_allows_are_recorded_with_the_user(audited: Audited) -> None:
    headers = audited.auth(**{"X-Forwarded-For": "203.0.113.50"})
    url = audited.url + "/api/contents/"
    r, written, events = _fire(
        audited,
        lambda: requests.put(
            url + "a.txt",
            json={"type": "file", "format": "text", "content": "x"},
            headers=headers,
            timeout=20,
        ),
    )
    assert r.status_code == 201, r.text
    assert [w["event_kind"] for w in written] == ["file_written"]
    assert written == events
    record = written[0]
    assert record["decision"] == "allow"
    # The content as written: its size and sha256 (issue #18).
    assert record["subject"] == f"a.txt sha256={hashlib.sha256(b'x').hexdigest()} size=1"
    assert record["user"]
    assert record["client_ip"] == "203.0.113.50"
    assert record["method"] == "PUT"
    assert record["path"] == "/api/contents/a.txt"

    r, renamed, _ = _fire(
        audited,
        lambda: requests.patch(url + "a.txt", json={"path": "b.txt"}, headers=headers, timeout=20),
    )
    assert r.status_code == 200, r.text
    assert [(x["event_kind"], x["subject"]) for x in renamed] == [
        ("file_renamed", "a.txt -> b.txt")
    ]
    assert [x["rule_id"] for x in renamed] == [Rule.CONTENTS_FILE_RENAMED]

    r, deleted, _ = _fire(
        audited, lambda: requests.delete(url + "b.txt", headers=headers, timeout=20)
    )
    assert r.status_code == 204, r.text
    assert [(x["event_kind"], x["subject"]) for x in deleted] == [("file_deleted", "b.txt")]
    assert [x["rule_id"] for x in deleted] == [Rule.CONTENTS_FILE_DELETED]

    r, started, _ = _fire(
        audited,
        lambda: requests.post(
            audited.url + "/api/kernels", json={"name": "python3"}, headers=headers, timeout=60
        ),
    )
    assert r.status_code == 201, r.text
    kernel_id = r.json()["id"]
    assert [x["event_kind"] for x in started] == ["kernel_started"]
    assert [x["rule_id"] for x in started] == [Rule.KERNEL_STARTED]
    assert started[0]["subject"].startswith(f"kernel_id={kernel_id}")
    assert started[0]["user"]  # the name of the token's user (no other field of it)
    requests.delete(audited.url + f"/api/kernels/{kernel_id}", headers=headers, timeout=60)

    r, opened, _ = _fire(
        audited, lambda: requests.post(audited.url + "/api/terminals", headers=headers, timeout=60)
    )
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    assert [(x["event_kind"], x["subject"]) for x in opened] == [
        ("terminal_opened", f"terminal={name}")
    ]
    assert [x["rule_id"] for x in opened] == [Rule.TERM_OPENED]
    requests.delete(audited.url + f"/api/terminals/{name}", headers=headers, timeout=60)
    for item in (*written, *renamed, *deleted, *started, *opened):
        _validator().validate(item)


def test_kernel_restart_and_interrupt_are_recorded_with_the_user(audited: Audited) -> None:
    """Every state change of a kernel leaves a record, not only its start: a restart loses the
    kernel's state, an interrupt stops what it runs."""
    headers = audited.auth()
    r = requests.post(
        audited.url + "/api/kernels", json={"name": "python3"}, headers=headers, timeout=60
    )
    assert r.status_code == 201, r.text
    kernel_id = r.json()["id"]
    try:
        for action, kind, rule in (
            ("restart", "kernel_restarted", Rule.KERNEL_RESTARTED),
            ("interrupt", "kernel_interrupted", Rule.KERNEL_INTERRUPTED),
        ):
            url = audited.url + f"/api/kernels/{kernel_id}/{action}"
            r, records, _events = _fire(
                audited, lambda url=url: requests.post(url, headers=headers, timeout=60)
            )
            assert r.status_code in (200, 204), r.text
            assert [(x["event_kind"], x["rule_id"]) for x in records] == [(kind, rule)]
            assert records[0]["subject"] == f"kernel_id={kernel_id}"
            assert records[0]["decision"] == "allow"
            assert records[0]["user"]
            assert records[0]["path"] == f"/api/kernels/{kernel_id}/{action}"
    finally:
        requests.delete(audited.url + f"/api/kernels/{kernel_id}", headers=headers, timeout=60)


def test_checkpoint_restore_and_directory_copy_are_recorded(audited: Audited) -> None:
    """Both replace or create content without going through ``save``: each is one record."""
    headers = audited.auth()
    url = audited.url + "/api/contents/"
    r = requests.put(url + "cp.txt", json={"type": "file", "format": "text", "content": "v1"},
                     headers=headers, timeout=20)
    assert r.status_code in (200, 201), r.text
    r = requests.post(url + "cp.txt/checkpoints", headers=headers, timeout=20)
    assert r.status_code == 201, r.text
    checkpoint = r.json()["id"]
    r = requests.put(url + "cp.txt", json={"type": "file", "format": "text", "content": "v2"},
                     headers=headers, timeout=20)
    assert r.status_code == 200, r.text
    r, restored, _ = _fire(
        audited,
        lambda: requests.post(url + f"cp.txt/checkpoints/{checkpoint}", headers=headers,
                              timeout=20),
    )
    assert r.status_code == 204, r.text
    digest = hashlib.sha256(b"v1").hexdigest()
    assert [(x["event_kind"], x["rule_id"], x["subject"]) for x in restored] == [
        (
            "file_written",
            Rule.CONTENTS_FILE_WRITTEN,
            f"cp.txt checkpoint={checkpoint} sha256={digest} size=2",
        )
    ]
    assert "restored from a checkpoint" in restored[0]["reason"]
    assert (audited.server.root / "cp.txt").read_text() == "v1"

    (audited.server.root / "srcdir").mkdir()
    (audited.server.root / "srcdir" / "inner.txt").write_text("x")
    r, copied, _ = _fire(
        audited,
        lambda: requests.post(audited.url + "/api/contents", json={"copy_from": "srcdir"},
                              headers=headers, timeout=20),
    )
    assert r.status_code == 201, r.text
    target = r.json()["path"]
    assert [(x["event_kind"], x["rule_id"], x["subject"]) for x in copied] == [
        ("file_written", Rule.CONTENTS_FILE_WRITTEN, target)
    ]
    assert "copy of the directory srcdir" in copied[0]["reason"]
    assert (audited.server.root / target / "inner.txt").read_text() == "x"


def test_a_body_that_is_not_utf8_is_a_400_not_a_500(audited: Audited) -> None:
    """Stock get_json_body decodes before parsing and answered 500 (found by schemathesis)."""
    r = requests.patch(
        audited.url + "/api/sessions/00000000-0000-0000-0000-000000000000",
        data=b"p\xec\x1f\xff",
        headers=audited.auth(**{"Content-Type": "application/json"}),
        timeout=20,
    )
    assert r.status_code == 400


def test_only_audit_readers_receive_audit_events_on_the_event_bus(audited: Audited) -> None:
    """/api/events/subscribe (issue #19): neither a token with events:read nor the owner
    (admin, as every hub user is on their own server) gets an audit event; a token granted
    ``audit:read`` by name gets the denial as an event of the audit schema."""
    url = f"ws://127.0.0.1:{audited.server.port}/api/events/subscribe"
    plain_token = _stored_token(audited, "events:read")
    auditor_token = _stored_token(audited, "events:read", "audit:read")
    plain = websocket.create_connection(
        url, header=[f"Authorization: token {plain_token}"], timeout=20
    )
    admin = websocket.create_connection(
        url, header=[f"Authorization: token {audited.token}"], timeout=20
    )
    auditor = websocket.create_connection(
        url, header=[f"Authorization: token {auditor_token}"], timeout=20
    )
    try:
        time.sleep(0.5)
        requests.get(
            audited.url + "/api/status/subscribed",
            timeout=20,
            headers=audited.auth(Host="evil.example"),
        )
        event = json.loads(auditor.recv())
        assert event["schema_id"] == SCHEMA_ID
        assert event["path"] == "/api/status/subscribed"
        for blind in (plain, admin):
            blind.settimeout(2)
            with pytest.raises(websocket.WebSocketTimeoutException):
                blind.recv()
    finally:
        plain.close()
        admin.close()
        auditor.close()


def test_forged_server_events_never_reach_the_event_logger(audited: Audited) -> None:
    """The two refused POSTs above left their refusal records and nothing else: no event of a
    jupyter_server schema, no audit event that the trail did not write itself."""
    lines = [json.loads(x) for x in audited.events.read_text().splitlines()]
    forged = [e for e in lines if e.get("path") == "forged.ipynb"]
    assert forged == []
    ours = [e for e in lines if e.get("__schema__", "").startswith(TRAIL_SCHEMA_PREFIX)]
    assert len(ours) == len(audited.decisions())


def _stored_token(audited: Audited, *scopes: str) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hardened_server",
            "token",
            "create",
            "--name",
            "+".join(scopes).replace(":", "-"),
            *(arg for scope in scopes for arg in ("--scope", scope)),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**audited.server.env, "PYTHONPATH": str(REPO)},
    )
    return out.stdout.strip()


def test_metrics_parse_and_match_the_records(audited: Audited) -> None:
    """Scraped with a stored token that holds ``metrics:read`` only; one without it is refused
    (and recorded). The decision counters equal the records in the file, rule by rule."""
    reader = _stored_token(audited, "metrics:read")
    other = _stored_token(audited, "contents:read")
    refused = requests.get(
        audited.url + "/metrics", timeout=20, headers={"Authorization": f"token {other}"}
    )
    assert refused.status_code == 403
    assert audited.decisions()[-1]["rule_id"].startswith("HS-SCOPE-")
    r = requests.get(
        audited.url + "/metrics", headers={"Authorization": f"token {reader}"}, timeout=20
    )
    assert r.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    counted = {
        (s.labels["rule_id"], s.labels["outcome"]): s.value
        for s in families["hardened_server_decisions"].samples
        if s.name == "hardened_server_decisions_total"
    }
    recorded = collections.Counter((d["rule_id"], d["decision"]) for d in audited.decisions())
    assert counted == recorded
    listed = subprocess.run(
        [sys.executable, "-m", "hardened_server", "token", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**audited.server.env, "PYTHONPATH": str(REPO)},
    )
    live = len(json.loads(listed.stdout))
    assert live >= 2
    assert families["hardened_server_live_tokens"].samples[0].value == live
    durations = families["hardened_server_request_duration_seconds"].samples
    assert {s.labels["route_class"] for s in durations if "route_class" in s.labels} >= {"api"}
    text = r.text
    for personal in ("/api/contents", "a.txt", "198.51.100", "evil.example"):
        assert personal not in text
    # Anonymous: no metrics.
    anonymous = requests.get(
        audited.url + "/metrics", timeout=20, headers={"X-Forwarded-For": "198.51.100.99"}
    )
    assert anonymous.status_code == 403


def test_clean_shutdown_closes_a_chain_that_verifies(audited: Audited) -> None:
    audited.server.stop()
    chain = audited.chain()
    assert chain[-1]["kind"] == "close"
    out = subprocess.run(
        [sys.executable, "-m", "hardened_server", "audit", "verify-log", str(audited.audit)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "closed cleanly" in out.stdout
    assert urllib.parse.quote(audited.token) not in audited.audit.read_text()
