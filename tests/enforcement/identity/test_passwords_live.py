"""Passwords and login throttling against live servers: argon2id hashes, one generic error,
throttled clients answered before hashing, outdated hashes replaced, and the event loop kept
free while 50 wrong-password logins are being hashed."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator

import argon2
import pytest
import requests

from hardened_server.enforcement.identity.passwords import PREFIX, hash_password, verify_password
from hardened_server.policy.rules import Rule
from hardened_server.policy.throttle import LoginThrottle
from hardened_server.trail.record import EventKind
from tests.support.audit import audit_records
from tests.support.server import WITHOUT_FRONTENDS, ServerProcess

pytestmark = pytest.mark.live

PASSWORD = "correct horse battery staple"


def login(server: ServerProcess, password: str, **headers: str) -> requests.Response:
    session = requests.Session()
    page = session.get(server.url + "/login", timeout=60)
    assert page.status_code == 200, page.status_code
    xsrf = session.cookies["_xsrf"]
    return session.post(
        server.url + "/login",
        data=urllib.parse.urlencode({"password": password, "_xsrf": xsrf}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": server.url,
            "Sec-Fetch-Site": "same-origin",
            **headers,
        },
        allow_redirects=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def pw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("pw")
    pwfile = workdir / "password.hash"
    # An outdated hash (argon2i, far below the floor): the first login replaces it.
    old = PREFIX + argon2.PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, type=argon2.Type.I
    ).hash(PASSWORD)
    pwfile.write_text(old + "\n")
    pwfile.chmod(0o600)
    policy = workdir / "policy.toml"
    policy.write_text("[login]\nfree_attempts = 3\nmax_delay_seconds = 30\n")
    proc = ServerProcess(
        workdir,
        [*WITHOUT_FRONTENDS, f"--password-file={pwfile}", f"--policy={policy}"],
        token="",
    )
    proc.token = ""
    proc.start(wait=False)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(proc.url + "/api/status", timeout=2).status_code == 403:
                break
        except requests.RequestException:
            time.sleep(0.2)
    yield proc
    proc.stop()


def test_password_command_reads_stdin_and_prints_an_owasp_argon2id_hash() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hardened_server", "password"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert re.fullmatch(r"argon2:\$argon2id\$v=19\$m=19456,t=2,p=1\$[^$]+\$[^$]+", line), line
    assert verify_password(line, PASSWORD) == (True, False)
    assert verify_password(line, PASSWORD + "x") == (False, False)
    argv = subprocess.run(
        [sys.executable, "-m", "hardened_server", "password", PASSWORD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert argv.returncode != 0  # never from the command line
    assert PASSWORD not in argv.stdout


def test_outdated_hash_is_replaced_atomically_after_login(pw_server: ServerProcess) -> None:
    pwfile = pw_server.workdir / "password.hash"
    before = pwfile.read_text().strip()
    assert verify_password(before, PASSWORD) == (True, True)
    start = len(audit_records(pw_server))
    reply = login(pw_server, PASSWORD)
    assert reply.status_code == 302, reply.text
    # The re-hash is recorded (HS-ID-013), then the login it belonged to (HS-ID-010).
    records = [
        r for r in audit_records(pw_server)[start:] if r["rule_id"].startswith("HS-ID-")
    ]
    assert [(r["rule_id"], r["event_kind"], r["decision"]) for r in records] == [
        (Rule.ID_PASSWORD_REHASHED, EventKind.LOGIN_SUCCESS, "allow"),
        (Rule.ID_LOGIN_OK, EventKind.LOGIN_SUCCESS, "allow"),
    ]
    assert records[0]["reason"] == "outdated password hash replaced (password file)"
    assert records[1]["user"]
    assert all(r["path"] == "/login" and r["method"] == "POST" for r in records)
    after = pwfile.read_text().strip()
    assert after != before
    assert after.startswith("argon2:$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(after, PASSWORD) == (True, False)
    assert stat.S_IMODE(os.stat(pwfile).st_mode) == 0o600
    start = len(audit_records(pw_server))
    assert login(pw_server, PASSWORD).status_code == 302  # the new hash works
    rules = [r["rule_id"] for r in audit_records(pw_server)[start:]]
    assert Rule.ID_LOGIN_OK in rules
    assert Rule.ID_PASSWORD_REHASHED not in rules  # nothing left to upgrade


def test_every_failure_gets_one_message_and_a_throttled_client_is_answered_before_hashing(
    pw_server: ServerProcess,
) -> None:
    login(pw_server, PASSWORD)  # a success forgives earlier attempts
    start = len(audit_records(pw_server))
    bodies = set()
    statuses = []
    for guess in ("wrong-1", "", "wrong-3", "wrong-4", "wrong-5"):
        reply = login(pw_server, guess)
        statuses.append(reply.status_code)
        bodies.add(re.search(r'<div class="message error">\s*(.*?)\s*</div>', reply.text).group(1))
        assert "Set-Cookie" not in reply.headers or "username" not in reply.headers["Set-Cookie"]
    assert statuses[:3] == [401, 401, 401], statuses
    assert statuses[3:] == [429, 429], statuses  # the 4th attempt comes too soon
    assert len(bodies) == 1, bodies
    throttled = login(pw_server, PASSWORD)  # even the right password waits its turn
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    # The trail tells the failures (HS-ID-011) from the refusals before hashing (HS-ID-012).
    records = [
        r for r in audit_records(pw_server)[start:] if r["rule_id"].startswith("HS-ID-")
    ]
    assert [r["rule_id"] for r in records] == [Rule.ID_LOGIN_FAILED] * 3 + [
        Rule.ID_LOGIN_THROTTLED
    ] * 3
    for record in records:
        assert record["decision"] == "deny"
        assert record["event_kind"] == EventKind.LOGIN_FAILURE
        assert (record["method"], record["path"]) == ("POST", "/login")
    assert records[-1]["reason"] == "client is throttled; answered before hashing"
    assert PASSWORD not in json.dumps(audit_records(pw_server))


def test_throttle_delays_grow_and_are_forgiven_on_success() -> None:
    now = [0.0]
    throttle = LoginThrottle(3, 30.0, clock=lambda: now[0])
    waits = []
    for _ in range(9):
        waits.append(throttle.retry_after("c"))
        throttle.charge("c")
        now[0] += 0.001
    assert waits[:4] == [0.0, 0.0, 0.0, pytest.approx(1.0, abs=0.01)]
    assert throttle.delay_after(4) == 2.0
    assert throttle.delay_after(5) == 4.0
    assert throttle.delay_after(40) == 30.0
    throttle.clear("c")
    assert throttle.retry_after("c") == 0.0
    throttle.charge("d")
    now[0] += 10_000  # forgotten after reset_after
    assert throttle.retry_after("d") == 0.0


@pytest.fixture(scope="module")
def flood_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A password server behind a "proxy" (127.0.0.1 trusted): the 50 logins come from 50
    client addresses, and the account allows 100 attempts, so every one is really hashed."""
    workdir = tmp_path_factory.mktemp("flood")
    pwfile = workdir / "password.hash"
    pwfile.write_text(hash_password(PASSWORD) + "\n")
    policy = workdir / "policy.toml"
    policy.write_text(
        '[server]\ntrusted_proxies = ["127.0.0.1/32"]\n'
        "[login]\nfree_attempts = 100\nmax_delay_seconds = 1\n"
    )
    proc = ServerProcess(
        workdir, [*WITHOUT_FRONTENDS, f"--password-file={pwfile}", f"--policy={policy}"]
    )
    proc.argv.append("--IdentityProvider.token=" + proc.token)
    proc.start()
    yield proc
    proc.stop()


def test_status_keeps_answering_during_50_concurrent_wrong_password_logins(
    flood_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = threading.Event()
    latencies: list[float] = []

    def poll_status() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                start = time.perf_counter()
                r = session.get(
                    flood_server.url + "/api/status", headers=flood_server.auth(), timeout=30
                )
                latencies.append(time.perf_counter() - start)
                assert r.status_code == 200
                time.sleep(0.02)

    poller = threading.Thread(target=poll_status)
    started = time.perf_counter()
    poller.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            replies = list(
                pool.map(
                    lambda i: login(
                        flood_server, f"wrong-{i}", **{"X-Forwarded-For": f"203.0.113.{i}"}
                    ),
                    range(50),
                )
            )
    finally:
        stop.set()
        poller.join(60)
    elapsed = time.perf_counter() - started
    assert [r.status_code for r in replies] == [401] * 50
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    p50 = latencies[len(latencies) // 2]
    with capsys.disabled():  # shown in every run's output, not only on failure
        print(
            f"\n[login flood] 50 wrong-password logins hashed in {elapsed:.1f} s; "
            f"GET /api/status x{len(latencies)}: p50 {p50 * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms"
        )
    assert len(latencies) >= 10
    assert p99 < 1.0, f"p99 {p99:.3f} s"
    assert login(flood_server, PASSWORD).status_code == 302
