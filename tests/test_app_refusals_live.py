"""Every start-up refusal, each against a real ``hardened-server serve`` process.

A refused start must exit with code 2 before it binds the port, and the output must say which
rule refused it, which setting to change and where the policy key or the fix is. The operator
sees only that output, so it has to be enough to act on.

Speed: each case is a fresh interpreter that imports jupyter_server (about 2 s of CPU). All the
cases in ``CASES`` start together when the module's first test needs them, and each test then
waits for its own. JupyterLab and the other installed front-end extensions are disabled
(``WITHOUT_FRONTENDS``): they play no part in these checks and cost about half of each start.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.support.server import WITHOUT_FRONTENDS, ServerProcess

pytestmark = pytest.mark.live

DRIFT_EXTENSION = REPO / "tests" / "fixtures" / "ext_drift"
NBCLASSIC_STANDIN = REPO / "tests" / "fixtures" / "ext_nbclassic"
SITE_IDENTITY = REPO / "tests" / "fixtures" / "site_identity"

XSRF_OFF = {"ServerApp": {"tornado_settings": {"xsrf_cookies": False}}}

# jupyter_server_terminals' TermSocket.get has no decorator: it checks current_user and
# authorizes ("execute", "terminals") in its own code. Reviewed, it is listed in
# routes.accept_undecorated by the default profile; this policy repeats it explicitly.
TERMINALS_WITH_REVIEWED_SOCKET = r"""
[terminals]
enabled = true

[routes]
accept_undecorated = ['/lsp/ws/(?P<language_server>.*)', '/terminals/websocket/(\w+)']
"""


@dataclass(frozen=True)
class Case:
    """One server start: extra arguments, environment and files."""

    args: tuple[str, ...] = ()
    token: str | None = None  # None: a strong random token (ServerProcess's default)
    env: Mapping[str, str] = field(default_factory=dict)
    policy_text: str | None = None
    pythonpath: tuple[Path, ...] = ()
    config_files: Mapping[str, object] = field(default_factory=dict)  # name -> JSON content
    token_file: str | None = None  # written to the work dir, passed as JUPYTER_TOKEN_FILE
    ip: str | None = None


CASES: dict[str, Case] = {
    "tornado_settings_cli": Case(args=("--ServerApp.tornado_settings=xsrf_cookies=False",)),
    "tornado_settings_jupyter_config": Case(config_files={"jupyter_config.json": XSRF_OFF}),
    "tornado_settings_jupyter_server_config": Case(
        config_files={"jupyter_server_config.json": XSRF_OFF}
    ),
    "allow_origin_star": Case(args=("--ServerApp.allow_origin=*",)),
    "allow_origin_pat": Case(args=("--ServerApp.allow_origin_pat=https://trusted\\.example",)),
    "disable_check_xsrf": Case(args=("--ServerApp.disable_check_xsrf=True",)),
    "empty_token": Case(args=("--IdentityProvider.token=",), token=""),
    "weak_token": Case(token="huggingface"),
    "token_file_with_newline": Case(token="", token_file=secrets.token_hex(32) + "\n"),
    "terminals_default_policy": Case(args=("--ServerApp.terminals_enabled=True",)),
    "terminals_allowed_by_policy": Case(
        args=(
            "--ServerApp.terminals_enabled=True",
            # later items of a Dict option win: the terminal extension back on
            "--ServerApp.jpserver_extensions=jupyter_server_terminals=True",
        ),
        policy_text="[terminals]\nenabled = true\n",
    ),
    "terminals_allowed_with_reviewed_socket": Case(
        args=(
            "--ServerApp.terminals_enabled=True",
            "--ServerApp.jpserver_extensions=jupyter_server_terminals=True",
        ),
        policy_text=TERMINALS_WITH_REVIEWED_SOCKET,
    ),
    "wildcard_bind": Case(ip="0.0.0.0"),
    "unauthenticated_env_1": Case(env={"JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS": "1"}),
    "unauthenticated_env_true": Case(env={"JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS": "true"}),
    "drift_extension": Case(
        args=("--ServerApp.jpserver_extensions=drift_extension=True",),
        pythonpath=(DRIFT_EXTENSION,),
    ),
    "nbclassic": Case(
        args=("--ServerApp.jpserver_extensions=nbclassic=True",),
        pythonpath=(NBCLASSIC_STANDIN,),
    ),
    "contents_manager_swapped": Case(
        args=("--ServerApp.jpserver_extensions=cm_swap_extension=True",),
        pythonpath=(DRIFT_EXTENSION,),
    ),
    "contents_manager_configured": Case(
        args=(
            "--ServerApp.contents_manager_class="
            "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager",
        ),
    ),
    "site_identity_provider": Case(
        args=(
            "--ServerApp.identity_provider_class="
            "jupyter_server.auth.identity.PasswordIdentityProvider",
        ),
    ),
    "legacy_login_handler": Case(
        args=("--ServerApp.login_handler_class=site_auth.SiteLoginHandler",),
        pythonpath=(SITE_IDENTITY,),
    ),
    "accept_undecorated_replaced": Case(
        # later items of a Dict option win: jupyter_lsp back on
        args=("--ServerApp.jpserver_extensions=jupyter_lsp=True",),
        policy_text='[routes]\naccept_undecorated = ["/myext/ws"]\n',
    ),
    "policy_unknown_key": Case(
        policy_text='[cors]\nallow_origin = ["https://trusted.example.com"]\n'
    ),
}


def prepare(workdir: Path, case: Case) -> ServerProcess:
    args = [*WITHOUT_FRONTENDS, *case.args]
    if case.policy_text is not None:
        policy = workdir / "policy.toml"
        policy.write_text(case.policy_text)
        args.insert(0, f"--policy={policy}")
    env = dict(case.env)
    if case.token_file is not None:
        token_file = workdir / "token"
        token_file.write_text(case.token_file)
        env["JUPYTER_TOKEN_FILE"] = str(token_file)
    server = ServerProcess(
        workdir,
        args,
        token=case.token,
        env=env,
        pythonpath=case.pythonpath,
        ip=case.ip or "127.0.0.1",
    )
    for name, content in case.config_files.items():
        (server.workdir / "jupyter" / "config" / name).write_text(json.dumps(content))
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """Every case in CASES, started together (not waited for)."""
    started: dict[str, ServerProcess] = {}
    try:
        for name, case in CASES.items():
            started[name] = prepare(tmp_path_factory.mktemp(name), case).start(wait=False)
        yield started
    finally:
        for server in started.values():
            server.stop()


# -- helpers ---------------------------------------------------------------------------------


def is_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def exit_code_or_none_if_listening(server: ServerProcess, timeout: float = 90) -> int | None:
    """The server's exit code, or None as soon as it listens (it started, so it did not
    refuse; failing fast here beats waiting for a timeout)."""
    assert server.proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return server.wait_exit(5)
        if is_listening(server.port):
            return None
        time.sleep(0.05)
    raise AssertionError(f"server neither exited nor listened in {timeout}s:\n{server.log()}")


def refusal(server: ServerProcess) -> str:
    """The output (stdout and stderr) of a server that must have refused to start."""
    code = exit_code_or_none_if_listening(server)
    out = server.log()
    assert code is not None, f"the server started instead of refusing:\n{out}"
    assert code == 2, f"exit code {code}, expected 2:\n{out}"
    assert "refusing to start" in out or "bad policy" in out, out
    # The checks run in init_webapp / load_server_extensions, before init_httpserver binds.
    assert not is_listening(server.port), "a refused server must not be listening"
    assert "is running at" not in out, out
    assert "Traceback" not in out, out  # a refusal is a message for the operator, not a crash
    return out


def rule_ids(out: str) -> set[str]:
    return set(re.findall(r"\[(HS-START-\d{3})\]", out))


def assert_refused_by(server: ServerProcess, rule: str, *mentions: str) -> str:
    """Refused by exactly ``rule`` (nothing else in the set-up trips another check), with a
    setting line, a fix line and every text in ``mentions``."""
    out = refusal(server)
    assert rule_ids(out) == {rule}, out
    for text in mentions:
        assert text in out, f"{text!r} missing from:\n{out}"
    assert "\n  setting: " in out, out
    assert "\n  fix: " in out, out
    return out


# -- HS-START-002: security settings through ServerApp.tornado_settings ---------------------


def test_tornado_settings_xsrf_cookies_on_command_line_refuses_start(servers):
    """`tornado_settings` is applied with `settings.update()` after the security defaults.
    `xsrf_cookies: false` turns off tornado's double-submit check, which leaves the non-API
    POSTs that cookies authenticate (/api/shutdown, /login, /nbconvert) open to cross-site
    forgery. Only the policy may set security settings."""
    assert_refused_by(
        servers["tornado_settings_cli"],
        "HS-START-002",
        "ServerApp.tornado_settings['xsrf_cookies']",
        "policy",
    )


def test_tornado_settings_xsrf_cookies_in_jupyter_config_file_refuses_start(servers):
    """The same override from a config file, the way deployments set it (a real JSON false, not
    the command line's string). jupyter_config.json is read by every Jupyter application."""
    assert_refused_by(servers["tornado_settings_jupyter_config"], "HS-START-002", "'xsrf_cookies'")


def test_tornado_settings_xsrf_cookies_in_jupyter_server_config_refuses_start(servers):
    """A drop-in replacement for `jupyter server` must read jupyter_server_config.json, and
    refuse the unsafe parts it finds there rather than silently ignore them (an operator
    would then believe the file is in force)."""
    assert_refused_by(
        servers["tornado_settings_jupyter_server_config"], "HS-START-002", "'xsrf_cookies'"
    )


# -- HS-START-003: allow_origin / allow_origin_pat ------------------------------------------


def test_allow_origin_star_refuses_start_and_points_to_cors_allow_origins(servers):
    """`allow_origin='*'` makes stock jupyter_server skip its origin, referer and XSSI checks:
    any web page can drive the API with the user's cookie."""
    assert_refused_by(
        servers["allow_origin_star"],
        "HS-START-003",
        "ServerApp.allow_origin",
        "'*'",
        "cors.allow_origins",
    )


def test_allow_origin_pat_refuses_start(servers):
    """A regex allow-list is easy to get wrong. Before 2.18.0, stock prefix-matched it, and
    `https://trusted\\.example` also admitted https://trusted.example.evil.net
    (CVE-2026-40110 / GHSA-24qx-w28j-9m6p). Exact origins in cors.allow_origins replace it."""
    assert_refused_by(
        servers["allow_origin_pat"],
        "HS-START-003",
        "ServerApp.allow_origin_pat",
        "cors.allow_origins",
    )


# -- HS-START-004: disable_check_xsrf -----------------------------------------------------


def test_disable_check_xsrf_refuses_start(servers):
    """In jupyter_server, disable_check_xsrf also skips the origin check inside
    check_xsrf_cookie. The non-API JupyterHandler POSTs (/api/shutdown, /nbconvert/<fmt>,
    .../trust, /login) then have no cross-site protection left against cookie-authenticated
    forgery."""
    assert_refused_by(
        servers["disable_check_xsrf"],
        "HS-START-004",
        "ServerApp.disable_check_xsrf",
        "Authorization",
    )


# -- HS-START-005 / 009: no token, weak token --------------------------------------------


def test_empty_token_without_password_refuses_start(servers):
    """An empty token and no password means anyone who reaches the port runs code as this user
    (stock only warns). `--IdentityProvider.token=` is the explicit empty token. An empty
    JUPYTER_TOKEN is treated as unset by jupyter_server, which then generates a token."""
    assert_refused_by(
        servers["empty_token"], "HS-START-005", "IdentityProvider.token", "JUPYTER_TOKEN"
    )


def test_guessable_token_refuses_start_without_echoing_it(servers):
    """A dictionary-word token (`huggingface` is the one in hosted Space templates) is
    guessed in seconds. The policy requires tokens.min_entropy_bits (128 by default). The
    message must not repeat the secret: start-up output ends up in logs."""
    out = assert_refused_by(
        servers["weak_token"], "HS-START-009", "JUPYTER_TOKEN", "tokens.min_entropy_bits"
    )
    assert "huggingface" not in out


def test_strong_token_in_token_file_with_trailing_newline_starts(servers):
    """`python -c "...print(secrets.token_hex(32))" > token` writes a newline after the token.
    Stock jupyter_server keeps it in the token, so no client can ever match it. The newline is
    not part of the secret: strip it and start."""
    server = servers["token_file_with_newline"]
    assert exit_code_or_none_if_listening(server) is None, server.log()


# -- HS-START-006: terminals --------------------------------------------------------------


def test_terminals_enabled_against_default_policy_refuses_start(servers):
    """A terminal is a shell as the server's user. The default policy does not allow one, and
    a command-line switch must not override that silently."""
    assert_refused_by(
        servers["terminals_default_policy"],
        "HS-START-006",
        "ServerApp.terminals_enabled",
        "terminals.enabled",
    )


def test_terminals_enabled_with_policy_allowing_them_starts(servers):
    """The same switch starts when the policy says terminals.enabled = true (the loosening is
    then in a reviewable file), with the terminal extension loaded."""
    server = servers["terminals_allowed_by_policy"]
    assert exit_code_or_none_if_listening(server) is None, server.log()


def test_terminals_enabled_by_policy_serve_terminals_only_to_logged_in_users(servers):
    """With terminals allowed (and the terminal websocket's own authentication reviewed), the
    terminals API works with the token. Without one it is 403, and so is the websocket route:
    routes.accept_undecorated silences the start-up check but keeps the policy's login gate."""
    server = servers["terminals_allowed_with_reviewed_socket"]
    server.wait_ready(90)
    r = requests.get(server.url + "/api/terminals", headers=server.auth(), timeout=10)
    assert r.status_code == 200
    assert r.json() == []
    assert requests.get(server.url + "/api/terminals", timeout=10).status_code == 403
    ws = requests.get(
        server.url + "/terminals/websocket/1",
        headers={"Connection": "Upgrade", "Upgrade": "websocket"},
        timeout=10,
    )
    assert ws.status_code == 403


# -- HS-START-007: remote bind without TLS or a trusted proxy -------------------------------


def test_wildcard_bind_without_tls_or_proxy_refuses_start(servers):
    """On 0.0.0.0 without TLS, tokens and session cookies cross the network in clear."""
    assert_refused_by(
        servers["wildcard_bind"],
        "HS-START-007",
        "'0.0.0.0'",
        "--ip",
        "server.trusted_proxies",
        "--certfile",
    )


def test_wildcard_bind_behind_trusted_proxy_starts(server_factory):
    """Listing the TLS proxy in server.trusted_proxies accepts the non-loopback bind. This one
    really binds 0.0.0.0, so it runs on its own (not with the batch): a random port, a
    256-bit token, stopped as soon as it has answered one request."""
    server = server_factory(
        WITHOUT_FRONTENDS,
        policy_text='[server]\ntrusted_proxies = ["127.0.0.1/32"]\n',
        start=False,
        ip="0.0.0.0",
    )
    server.start(timeout=90)
    try:
        r = requests.get(server.url + "/api/status", headers=server.auth(), timeout=10)
        assert r.status_code == 200
        assert "HS-START" not in server.log()
    finally:
        server.stop()


# -- HS-START-010: allow_unauthenticated_access --------------------------------------------


@pytest.mark.parametrize("case", ["unauthenticated_env_true", "unauthenticated_env_1"])
def test_allow_unauthenticated_access_env_refuses_start(servers, case):
    """JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS lets every undecorated handler answer
    anonymous requests. Stock honours only "true"/"yes". hardened-server also refuses "1",
    the value someone who meant it would type, rather than silently ignoring it."""
    assert_refused_by(
        servers[case],
        "HS-START-010",
        "JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS",
        "routes.public",
    )


# -- HS-START-008: an extension changes a security setting after start-up --------------------


def test_extension_turning_off_xsrf_cookies_after_hardening_refuses_start(servers):
    """Extensions run after hardened-server set the application up, and can write into
    web_app.settings (ExtensionApp settings merging does, wholesale). The snapshot taken at
    hardening time must catch the change."""
    assert_refused_by(servers["drift_extension"], "HS-START-008", "'xsrf_cookies'", "extension")


# -- HS-START-012: a front-end that cannot work under the strict policy ---------------------


def test_nbclassic_enabled_refuses_start_and_points_to_notebook_7(servers):
    """nbclassic's pages run inline scripts with per-request values (issue #16): refused at
    start, exit 2, with why and what to use instead, before its routes are judged one by one
    (which would suggest listing them as reviewed)."""
    out = assert_refused_by(
        servers["nbclassic"], "HS-START-012", "nbclassic", "'unsafe-inline'", "Notebook 7",
        "jupyter server extension disable nbclassic",
    )
    assert "routes.accept_undecorated" not in out


# -- HS-START-011: a contents manager that does not carry the path policy ---------------------


def test_extension_swapping_in_a_foreign_contents_manager_refuses_start(servers):
    """jupytext's server extension replaces the contents manager after start-up; built on a
    stock class (not on HardenedContentsManager) the paths policy would be gone. Refused with
    the setting and the fix, and the replacement's ``__eq__`` (which raises, like jupytext's)
    is never called: no traceback."""
    assert_refused_by(
        servers["contents_manager_swapped"], "HS-START-011", "ForeignContentsManager",
        "ServerApp.contents_manager_class", "HardenedContentsManager", "a server extension",
    )


def test_configured_contents_manager_not_built_on_ours_refuses_start(servers):
    """``c.ServerApp.contents_manager_class = "jupytext.TextFileContentsManager"`` (jupytext's
    documented set-up) or any stock class would serve hidden and denied files."""
    assert_refused_by(
        servers["contents_manager_configured"], "HS-START-011", "AsyncLargeFileManager",
        "ServerApp.contents_manager_class",
    )


# -- HS-START-013/014: a site's identity provider, a legacy login handler (issue #17) ----------


def test_a_site_identity_provider_the_policy_says_nothing_about_refuses_start(servers):
    """Stock ``PasswordIdentityProvider`` configured by the site: its users would carry no
    scope, and every request would be a 403 with nothing said at start-up (the silent
    lock-out). Refused, naming the setting and the policy key."""
    assert_refused_by(
        servers["site_identity_provider"], "HS-START-013", "PasswordIdentityProvider",
        "ServerApp.identity_provider_class", "identity.site_provider",
    )


def test_a_legacy_login_handler_no_provider_runs_refuses_start(servers):
    """Stock ignores ``ServerApp.login_handler_class`` next to another identity provider and
    only logs that it is "superseded"; here the start stops and says how to run it."""
    assert_refused_by(
        servers["legacy_login_handler"], "HS-START-014", "site_auth.SiteLoginHandler",
        "ServerApp.login_handler_class", "identity.site_provider",
    )


# -- a policy layer that replaces a list start-up depends on ------------------------------------


def test_layer_replacing_accept_undecorated_names_itself_and_the_extend_form(servers):
    """Adding one reviewed route by writing the list replaces the shipped one, dropping
    jupyter_lsp's websocket: refused, naming the file that dropped it and `extend`."""
    server = servers["accept_undecorated_replaced"]
    out = assert_refused_by(
        server, "HS-START-001", "/lsp/ws/", "replaced routes.accept_undecorated and dropped it",
        "accept_undecorated = { extend = [",
    )
    assert str(server.workdir / "policy.toml") in out, out


# -- bad policy file --------------------------------------------------------------------------


def test_policy_file_with_unknown_key_refuses_start_naming_file_and_key(servers):
    """A typo in a policy file (`allow_origin` for `allow_origins`) must not be ignored: the
    operator would believe a setting is in force that is not."""
    server = servers["policy_unknown_key"]
    out = refusal(server)
    assert "bad policy" in out, out
    assert str(server.workdir / "policy.toml") in out, out
    assert "cors.allow_origin" in out, out
    assert not rule_ids(out), out
