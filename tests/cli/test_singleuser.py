"""``hardened-server singleuser`` fails closed without JupyterHub (the running hub is
tests/e2e/test_jupyterhub.py).

Without the hub's environment the command exits with code 2 and names each missing variable,
before it opens a socket; with a complete environment but a policy that would break the hub's
login, it refuses at start-up the same way (the hub extension links without talking to the hub,
so no hub is needed to get that far).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardened_server.cli import singleuser
from hardened_server.policy.hub import (
    REQUIRED_ENV,
    check_hub_environment,
)
from hardened_server.policy.rules import Rule
from tests.conftest import REPO
from tests.support.server import free_port, isolated_env, root_flag


def hub_env(port: int) -> dict[str, str]:
    return {
        "JUPYTERHUB_API_TOKEN": "0123456789abcdef0123456789abcdef",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/user/alice/",
        "JUPYTERHUB_USER": "alice",
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-alice",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(["access:servers!server=alice/"]),
        "JUPYTERHUB_BASE_URL": "/",
    }


def test_complete_environment_passes() -> None:
    assert check_hub_environment(hub_env(8888)) == []


@pytest.mark.parametrize(
    "name", [name for name, _ in REQUIRED_ENV] + ["JUPYTERHUB_OAUTH_ACCESS_SCOPES"]
)
def test_each_missing_variable_is_named(name: str) -> None:
    for value in (None, "", "   "):
        env = hub_env(8888)
        if value is None:
            del env[name]
        else:
            env[name] = value
        problems = check_hub_environment(env)
        assert [p.rule_id for p in problems] == [Rule.HUB_ENV_MISSING]
        assert f"${name}" in str(problems[0])


def test_deprecated_scopes_variable_is_accepted() -> None:
    env = hub_env(8888)
    env["JUPYTERHUB_OAUTH_SCOPES"] = env.pop("JUPYTERHUB_OAUTH_ACCESS_SCOPES")
    assert check_hub_environment(env) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JUPYTERHUB_API_URL", "hub:8081/hub/api"),
        ("JUPYTERHUB_API_URL", "ftp://hub/hub/api"),
        ("JUPYTERHUB_SERVICE_URL", "http:///user/alice/"),
        ("JUPYTERHUB_SERVICE_PREFIX", "user/alice"),
        ("JUPYTERHUB_SERVICE_PREFIX", "/user//alice/"),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", "[]"),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", "access:servers"),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", '{"access:servers": 1}'),
    ],
)
def test_malformed_variables_are_refused(name: str, value: str) -> None:
    env = hub_env(8888)
    env[name] = value
    problems = check_hub_environment(env)
    assert [p.rule_id for p in problems] == [Rule.HUB_ENV_MALFORMED]
    assert name in str(problems[0])


def run_refused(
    tmp_path: Path, env_extra: dict[str, str], port: int, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the command and watch its port while it runs: it must never accept a connection."""
    env = isolated_env(tmp_path / "jupyter", PYTHONPATH=str(REPO), **env_extra)
    for name in list(env):
        if name.startswith("JUPYTERHUB_") and name not in env_extra:
            del env[name]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hardened_server",
            "singleuser",
            *root_flag(),
            f"--ServerApp.root_dir={tmp_path}",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.settimeout(0.2)
                assert probe.connect_ex(("127.0.0.1", port)) != 0, "the refused server listened"
            time.sleep(0.1)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.live
def test_without_the_hub_environment_it_exits_2_without_a_socket(tmp_path: Path) -> None:
    port = free_port()
    env = {"JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/user/alice/"}
    done = run_refused(tmp_path, env, port)
    assert done.returncode == 2, done
    assert f"[{Rule.HUB_ENV_MISSING}]" in done.stderr
    for name in (
        "JUPYTERHUB_API_TOKEN",
        "JUPYTERHUB_API_URL",
        "JUPYTERHUB_SERVICE_PREFIX",
        "JUPYTERHUB_USER",
        "JUPYTERHUB_CLIENT_ID",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES",
    ):
        assert f"${name}" in done.stderr, done.stderr
    assert "hardened-server serve" in done.stderr  # says what to run instead


@pytest.mark.live
def test_a_policy_without_the_oauth_callback_is_refused(tmp_path: Path) -> None:
    """A policy file that replaces routes.public and forgets /oauth_callback would make every
    hub login loop: refused at start-up, exit 2, no socket."""
    port = free_port()
    policy = tmp_path / "policy.toml"
    policy.write_text('[routes]\npublic = ["/login", "/static/(.*)"]\n')
    done = run_refused(tmp_path, hub_env(port), port, (f"--policy={policy}",))
    assert done.returncode == 2, done
    assert f"[{Rule.HUB_CALLBACK_NOT_PUBLIC}]" in done.stderr, done.stderr
    assert "routes.public (set by " in done.stderr
    assert str(policy) in done.stderr  # names the file to fix


def test_the_jupyterhub_profile_is_layered_first(tmp_path: Path) -> None:
    """Start-up, reloads and the file watcher read ``policy_layers()``: the shipped jupyterhub
    profile over the default, then the operator's files (which win key by key)."""
    from hardened_server.hub import HardenedSingleUserApp

    site = tmp_path / "site.toml"
    site.write_text('[server]\npublic_hostnames = ["hub.example.org"]\n')
    app = HardenedSingleUserApp(policy_files=[str(site)])
    assert app.policy_layers() == ["jupyterhub", str(site)]
    policy = app.policy
    assert "/oauth_callback" in policy.routes.public
    assert policy.server.trusted_proxies == ("127.0.0.1/32", "::1/128")
    assert policy.server.public_hostnames == ("hub.example.org",)
    assert app.reload_layers() == app.policy_layers()
    # Named again by the operator, it is not layered twice.
    assert HardenedSingleUserApp(policy_files=["jupyterhub"]).policy_layers() == ["jupyterhub"]


class _FakeRequest:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _FakeHandler:
    """What the hub's ``_get_token_url`` reads: the request headers and the ``token`` argument."""

    def __init__(self, headers: dict[str, str], token: str) -> None:
        self.request = _FakeRequest(headers)
        self._token = token

    def get_argument(self, name: str, default: str = "") -> str:
        return self._token if name == "token" else default


@pytest.mark.parametrize(("url_tokens", "accepted"), [("never", False), (None, True)])
def test_url_tokens_never_also_covers_the_hubs_websocket_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url_tokens: str | None, accepted: bool
) -> None:
    """The hub reads ``?token=`` on every websocket handshake; ``tokens.url_tokens = "never"``
    turns that off too (the default profile keeps the hub's behaviour)."""
    from hardened_server.hub import HardenedHubOAuth, HardenedSingleUserApp

    for name, value in hub_env(8888).items():
        monkeypatch.setenv(name, value)
    files = []
    if url_tokens is not None:
        policy = tmp_path / "tokens.toml"
        policy.write_text(f'[tokens]\nurl_tokens = "{url_tokens}"\n')
        files.append(str(policy))
    auth = HardenedHubOAuth(parent=HardenedSingleUserApp(policy_files=files))
    websocket = _FakeHandler({"Sec-Fetch-Mode": "websocket"}, "hub-token")
    assert auth._get_token_url(websocket) == ("hub-token" if accepted else "")
    navigation = _FakeHandler({"Sec-Fetch-Mode": "navigate"}, "hub-token")
    assert auth._get_token_url(navigation) == ""  # JUPYTERHUB_ALLOW_TOKEN_IN_URL is off


@pytest.mark.live
def test_an_identity_provider_other_than_the_hubs_is_refused(tmp_path: Path) -> None:
    """A configuration that swaps the identity provider would run the single-user server
    without the hub's OAuth: refused at start-up (HS-HUB-012), exit 2, no socket."""
    port = free_port()
    done = run_refused(
        tmp_path,
        hub_env(port),
        port,
        ("--ServerApp.identity_provider_class=jupyter_server.auth.identity.IdentityProvider",),
    )
    assert done.returncode == 2, done
    assert f"[{Rule.HUB_EXTENSION}]" in done.stderr, done.stderr
    assert "ServerApp.identity_provider_class" in done.stderr, done.stderr


@pytest.mark.parametrize("flag", ["--help", "-h", "--help-all"])
def test_help_prints_usage_and_the_hub_environment_without_a_hub(
    flag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Outside a hub, `--help` answers (exit 0) instead of refusing for the missing environment.
    for name in list(os.environ):
        if name.startswith("JUPYTERHUB_"):
            monkeypatch.delenv(name)
    assert singleuser.main([flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hardened-server singleuser")
    for name, _why in REQUIRED_ENV:
        assert f"${name}" in out
    assert "hardened-server serve" in out
