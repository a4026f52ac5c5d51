"""Serving a home directory: the Jupyter runtime directory (token store, audit trail) lies below
the root. The shipped ``.local/share/jupyter/runtime/**`` deny glob keeps those files out of the
contents and files APIs, so the server starts; moving the runtime directory to a place no deny
glob covers is refused (HS-ID-040 for the token store, HS-AUDIT-001 for the audit trail)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.support.server import ServerProcess

pytestmark = pytest.mark.live

RUNTIME = ".local/share/jupyter/runtime"


def _home_server(workdir: Path, runtime_rel: str) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "root"
    runtime = root / runtime_rel
    runtime.mkdir(parents=True, exist_ok=True)
    return ServerProcess(workdir, env={"JUPYTER_RUNTIME_DIR": str(runtime)})


def test_serving_a_home_directory_starts_and_hides_the_runtime_files(tmp_path: Path) -> None:
    server = _home_server(tmp_path / "home", RUNTIME).start()
    try:
        runtime = server.root / RUNTIME
        # the server's own files exist below the root...
        assert any(runtime.glob("hardened-server-audit-*.jsonl"))
        # ...and neither API reaches them (nor lists the directory)
        for path in (
            f"/api/contents/{RUNTIME}",
            f"/api/contents/{RUNTIME}/hardened-server-tokens.json",
            f"/files/{RUNTIME}/hardened-server-audit-{server.port}.jsonl",
        ):
            r = requests.get(server.url + path, headers=server.auth(), timeout=10)
            assert r.status_code in (403, 404), (path, r.status_code)
        put = requests.put(
            server.url + f"/api/contents/{RUNTIME}/hardened-server-tokens.json",
            headers=server.auth(),
            json={"type": "file", "format": "text", "content": "{}"},
            timeout=10,
        )
        assert put.status_code in (403, 404)
        assert not (runtime / "hardened-server-tokens.json").exists()
    finally:
        server.stop()


@pytest.mark.parametrize("runtime_rel", ["runtime", "work/.runtime"])
def test_a_runtime_directory_no_deny_glob_covers_is_refused(
    tmp_path: Path, runtime_rel: str
) -> None:
    server = _home_server(tmp_path / "home", runtime_rel)
    with pytest.raises(RuntimeError) as err:
        server.start(timeout=60)
    server.stop()
    log = str(err.value)
    assert "refusing to start" in log
    assert "HS-ID-040" in log or "HS-AUDIT-001" in log


def test_a_reload_that_would_expose_the_runtime_files_is_refused(tmp_path: Path) -> None:
    """Serving a home directory, a reloaded policy that drops the runtime directory's deny glob
    would put the token store and the open audit file within the contents API's reach: the
    reload is refused (one record) and the old path rules stay in force."""
    import os
    import signal
    import time

    from tests.support.audit import audit_records

    workdir = tmp_path / "home"
    policy = tmp_path / "site.toml"
    policy.write_text("[paths]\nallow_hidden = false\n")
    server = _home_server(workdir, RUNTIME)
    server.argv.append(f"--policy={policy}")
    server.start()
    try:
        def reloads() -> list[dict]:
            return [r for r in audit_records(server) if r.get("event_kind") == "policy_reloaded"]

        before = len(reloads())
        policy.write_text('[paths]\ndeny = [".ssh/**"]\n')
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while len(reloads()) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        records = reloads()[before:]
        assert len(records) == 1, records
        assert records[0]["decision"] == "deny"
        assert "HS-ID-040" in records[0]["reason"]
        # the record's reason is capped; the log line names every problem
        refusal = [line for line in server.log().splitlines() if "policy reload" in line]
        assert any("HS-AUDIT-001" in line for line in refusal), refusal
        r = requests.get(
            server.url + f"/api/contents/{RUNTIME}", headers=server.auth(), timeout=10
        )
        assert r.status_code in (403, 404)
    finally:
        server.stop()
