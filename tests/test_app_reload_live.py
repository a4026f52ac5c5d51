"""Live policy reload (SIGHUP) and signed policies at start-up, on a real server.

One server per module, started the way a signed deployment runs: ``--policy site.toml
--policy-pubkey key.pub`` (signatures required). The CORS allow-list is changed under load: no
request fails, an open websocket stays open, and the new list applies from the first request after
the reload. A broken file, and a correct but tampered one, each leave the old list in force and
exactly one refusal record.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from hardened_server.cli.main import main
from hardened_server.policy.loader import load_policy
from hardened_server.policy.signing import load_private_key, sign_bytes, signature_path
from tests.support.audit import audit_records
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

A = "https://a.example.com"
B = "https://b.example.com"


def policy_text(origin: str) -> str:
    return f'[cors]\nallow_origins = ["{origin}"]\n'


class Signed:
    def __init__(self, workdir: Path) -> None:
        self.key = workdir / "policy-key"
        assert main(["policy", "keygen", str(self.key)]) == 0
        self.pubkey = Path(f"{self.key}.pub")
        self.policy = workdir / "site.toml"

    def write(self, text: str, *, sign: bool = True, validate: bool = True) -> None:
        # Replace atomically, like a config-management tool or a ConfigMap update would.
        tmp = self.policy.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.policy)
        if sign and validate:
            assert main(["policy", "sign", "--key", str(self.key), str(self.policy)]) == 0
        elif sign:  # `policy sign` refuses an invalid file; sign its bytes directly
            key = load_private_key(self.key)
            signature_path(self.policy).write_text(sign_bytes(self.policy.read_bytes(), key))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Signed]]:
    workdir = tmp_path_factory.mktemp("reload")
    signed = Signed(workdir)
    signed.write(policy_text(A))
    server = ServerProcess(
        workdir / "server", [f"--policy={signed.policy}", f"--policy-pubkey={signed.pubkey}"]
    )
    server.workdir.mkdir(exist_ok=True)
    server.start()
    yield server, signed
    server.stop()


def allowed_origin(server: ServerProcess, origin: str) -> str | None:
    r = requests.get(
        server.url + "/api/status", headers={**server.auth(), "Origin": origin}, timeout=10
    )
    return r.headers.get("Access-Control-Allow-Origin")


def reload_records(server: ServerProcess) -> list[dict[str, Any]]:
    """The server's reload records in the audit trail, applied and refused."""
    return [r for r in audit_records(server) if r.get("event_kind") == "policy_reloaded"]


def sighup_and_wait(server: ServerProcess, timeout: float = 20) -> dict[str, Any]:
    """SIGHUP, then the one reload record it leaves (a second one would be a failure)."""
    before = len(reload_records(server))
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = reload_records(server)
        if len(records) > before:
            time.sleep(0.3)  # a second record would show up now
            records = reload_records(server)
            assert len(records) == before + 1, records[before:]
            return records[-1]
        time.sleep(0.05)
    raise AssertionError("no reload record:\n" + server.log()[-3000:])


def fingerprint_of(policy: Path) -> str:
    return load_policy([policy]).fingerprint


def test_signed_server_starts_with_the_signed_policy(
    deployment: tuple[ServerProcess, Signed],
) -> None:
    server, _signed = deployment
    assert allowed_origin(server, A) == A
    assert allowed_origin(server, B) is None


def test_cors_change_under_load_drops_nothing_and_applies_from_the_next_request(
    deployment: tuple[ServerProcess, Signed],
) -> None:
    server, signed = deployment
    assert allowed_origin(server, A) == A
    failures: list[str] = []
    done = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal done
        session = requests.Session()  # keep-alive: the same connections across the reload
        while not stop.is_set():
            try:
                r = session.get(server.url + "/api/contents", headers=server.auth(), timeout=10)
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:100]}")
            except requests.RequestException as exc:
                failures.append(repr(exc))
            done += 1

    ws = websocket.create_connection(
        server.url.replace("http", "ws") + "/api/events/subscribe",
        header=[f"Authorization: token {server.token}"],
        timeout=10,
    )
    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 30
        while done < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done >= count, f"the load loop made only {done} requests"

    try:
        wait_for(10)  # under load before the reload...
        signed.write(policy_text(B))
        record = sighup_and_wait(server)
        # The very first request after the reload already sees the new allow-list.
        assert allowed_origin(server, B) == B
        assert allowed_origin(server, A) is None
        wait_for(done + 10)  # ...and after it
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    # One audit record: applied, with the new fingerprint.
    assert record["rule_id"] == "HS-POLICY-002"
    assert record["decision"] == "allow"
    assert record["policy_fingerprint"] == fingerprint_of(signed.policy)
    assert f"fingerprint={fingerprint_of(signed.policy)}" in record["subject"]
    assert "trigger=SIGHUP" in record["subject"]
    assert not failures, failures[:5]
    # The websocket opened under the old policy is still open.
    ws.ping(b"still-there")
    for _ in range(10_000):  # events of the load above may come first
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_PONG:
            assert frame.data == b"still-there"
            break
    else:
        raise AssertionError("no pong on the websocket opened before the reload")
    ws.close()


def test_broken_policy_keeps_the_old_rule_and_leaves_one_record(
    deployment: tuple[ServerProcess, Signed],
) -> None:
    server, signed = deployment
    signed.write(policy_text(B))
    sighup_and_wait(server)
    assert allowed_origin(server, B) == B
    # Signed (so only its content is wrong), not valid TOML.
    in_force = fingerprint_of(signed.policy)
    policy_records = len([r for r in audit_records(server) if r["rule_id"].startswith("HS-POLICY")])
    signed.write('[cors]\nallow_origins = ["https://c.example.com"\n', validate=False)
    record = sighup_and_wait(server)
    # Exactly one audit record for it (and no policy record of any other kind).
    assert policy_records + 1 == len(
        [r for r in audit_records(server) if r["rule_id"].startswith("HS-POLICY")]
    )
    assert record["rule_id"] == "HS-POLICY-003"
    assert record["decision"] == "deny"
    assert record["policy_fingerprint"] == in_force
    assert str(signed.policy) in record["reason"]
    assert "not valid TOML" in record["reason"]
    assert allowed_origin(server, B) == B
    assert allowed_origin(server, "https://c.example.com") is None


def test_tampered_or_unsigned_policy_keeps_the_old_rule(
    deployment: tuple[ServerProcess, Signed],
) -> None:
    server, signed = deployment
    signed.write(policy_text(B))
    sighup_and_wait(server)
    # Valid content, but changed after signing.
    signed.write(policy_text("https://evil.example"), sign=False)
    record = sighup_and_wait(server)
    assert record["decision"] == "deny"
    assert "changed after signing" in record["reason"]
    assert allowed_origin(server, "https://evil.example") is None
    assert allowed_origin(server, B) == B
    # No signature at all.
    Path(f"{signed.policy}.sig").unlink()
    record = sighup_and_wait(server)
    assert record["decision"] == "deny"
    assert "is not signed" in record["reason"]
    assert allowed_origin(server, B) == B


def test_restart_only_key_is_reported_not_ignored(
    deployment: tuple[ServerProcess, Signed],
) -> None:
    server, signed = deployment
    signed.write(policy_text(B) + "[terminals]\nenabled = true\n")
    record = sighup_and_wait(server)
    assert record["decision"] == "deny"
    assert "terminals.enabled" in record["reason"]
    assert "restart" in record["reason"]
    assert (
        requests.get(server.url + "/api/terminals", headers=server.auth(), timeout=10).status_code
        == 404
    )


def test_server_refuses_to_start_on_an_unsigned_policy(tmp_path: Path) -> None:
    """Tampered and foreign-signed files go through the same check (tests/policy/test_signing.py);
    one live start-up shows the refusal reaches the operator: exit 2, the file named."""
    signed = Signed(tmp_path)
    signed.write(policy_text(A), sign=False)
    (tmp_path / "server").mkdir()
    server = ServerProcess(
        tmp_path / "server", [f"--policy={signed.policy}", f"--policy-pubkey={signed.pubkey}"]
    ).start(wait=False)
    try:
        assert server.wait_exit(60) == 2
    finally:
        server.stop()
    log = server.log()
    assert "bad policy" in log
    assert f"{signed.policy}: is not signed" in log


def test_policy_file_change_is_picked_up_by_the_watcher(tmp_path: Path) -> None:
    """--policy-watch-interval: a changed file is reloaded without a signal (a ConfigMap
    update); a broken one is refused once, not on every check."""
    policy = tmp_path / "site.toml"
    policy.write_text(policy_text(A))
    (tmp_path / "server").mkdir()
    server = ServerProcess(
        tmp_path / "server", [f"--policy={policy}", "--policy-watch-interval=0.2"]
    ).start()
    try:
        assert allowed_origin(server, A) == A
        tmp = tmp_path / "new.toml"
        tmp.write_text(policy_text(B))
        os.replace(tmp, policy)
        deadline = time.monotonic() + 20
        while allowed_origin(server, B) != B and time.monotonic() < deadline:
            time.sleep(0.1)
        assert allowed_origin(server, B) == B
        assert allowed_origin(server, A) is None
        policy.write_text("[cors\n")
        deadline = time.monotonic() + 20
        while not any(r["decision"] == "deny" for r in reload_records(server)):
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.1)
        time.sleep(1)  # five more checks of the unchanged broken file
        records = reload_records(server)
        assert len(records) == 2, records
        assert [r["decision"] for r in records] == ["allow", "deny"]
        assert all("trigger=file change" in r["subject"] for r in records)
        assert allowed_origin(server, B) == B
    finally:
        server.stop()
