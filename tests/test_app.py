"""``HardenedServerApp`` built in process (no port bound): what stock callers of the app see.

These pin compatibility with jupyter_server's own behaviour (issue #17): the version the app
reports, a second ``initialize()`` of the same app, and where ``/`` points.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import jupyter_server
import pytest

from hardened_server import __version__
from hardened_server.app import HardenedServerApp
from tests.support.server import root_flag, strong_token

WITHOUT_LAB = [
    "--ServerApp.jpserver_extensions=jupyterlab=False",
    "--ServerApp.jpserver_extensions=notebook=False",
    "--ServerApp.jpserver_extensions=jupyter_lsp=False",
]


@pytest.fixture
def build_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., HardenedServerApp]]:
    """Build a HardenedServerApp in process with private Jupyter dirs (no developer config)."""
    for var in [v for v in os.environ if v.startswith("JUPYTER")]:
        monkeypatch.delenv(var)
    for name in ("config", "runtime", "data"):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(f"JUPYTER_{name.upper()}_DIR", str(tmp_path / name))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("JUPYTER_TOKEN", strong_token())
    (tmp_path / "root").mkdir()

    def build(*argv: str) -> HardenedServerApp:
        app = HardenedServerApp.instance()
        app.initialize(
            argv=[
                "--ip=127.0.0.1",
                f"--root-dir={tmp_path / 'root'}",
                "--ServerApp.open_browser=False",
                *root_flag(),
                *argv,
            ],
            new_httpserver=False,
        )
        return app

    try:
        yield build
    finally:
        HardenedServerApp.clear_instance()


def test_version_is_jupyter_servers_and_ours_has_its_own_name(
    build_app: Callable[..., HardenedServerApp],
) -> None:
    """Clients and extensions compare ``app.version`` and jpserver-*.json's ``version`` with
    jupyter_server's releases; hardened-server's own version is reported beside it."""
    app = build_app(*WITHOUT_LAB)
    assert app.version == jupyter_server.__version__
    assert app.hardened_version == __version__
    info = app.server_info()
    assert info["version"] == jupyter_server.__version__
    assert info["hardened_server_version"] == __version__
    assert json.loads(json.dumps(info))["token"] == ""


def test_websocket_ping_timeout_is_never_longer_than_the_interval(
    build_app: Callable[..., HardenedServerApp], tmp_path: Path
) -> None:
    """tornado cuts a ping timeout longer than the ping interval back to the interval (with a
    warning at every start): the settings carry what really applies."""
    layer = tmp_path / "ping.toml"
    layer.write_text(
        "[limits]\nwebsocket_ping_interval_seconds = 20\nwebsocket_ping_timeout_seconds = 90\n"
    )
    app = build_app(*WITHOUT_LAB, f"--HardenedServerApp.policy_files={layer}")
    settings = app.web_app.settings
    assert settings["websocket_ping_interval"] == 20
    assert settings["websocket_ping_timeout"] == 20
    assert settings["ws_ping_timeout"] == 90_000  # jupyter_server's pings: as set
    default = app.policy.limits
    assert default.websocket_ping_timeout_seconds == 90  # the layer's value, capped above


def test_a_second_initialize_of_the_same_app_is_not_refused(
    build_app: Callable[..., HardenedServerApp],
) -> None:
    """Stock's ``init_webapp`` writes ``allow_origin``, ``cookie_options``, ``token``, ... into
    ``ServerApp.tornado_settings``; a second ``initialize()`` must not read those as the user's
    security settings (HS-START-002)."""
    app = build_app(*WITHOUT_LAB)
    first = app.web_app
    app.initialize(argv=[], new_httpserver=False)
    assert app.web_app is not first
    assert app.web_app.settings["allow_origin"] == ""


def test_a_user_security_setting_is_still_refused_on_a_second_initialize(
    build_app: Callable[..., HardenedServerApp],
) -> None:
    """What the user puts into tornado_settings between the two is still theirs."""
    from hardened_server.app import StartupRefused

    app = build_app(*WITHOUT_LAB)
    app.tornado_settings["allow_origin"] = "*"
    with pytest.raises(StartupRefused) as refused:
        app.initialize(argv=[], new_httpserver=False)
    assert "HS-START-002" in refused.value.rule_ids


def test_root_redirects_to_lab_only_when_jupyterlab_is_linked(
    build_app: Callable[..., HardenedServerApp],
) -> None:
    """jupyterlab importable but its server extension disabled: ``/`` stays ``/`` (stock),
    never a redirect to a /lab that 404s."""
    app = build_app(*WITHOUT_LAB)
    assert app.default_url == "/"
    assert app.web_app.settings["default_url"] == "/"


def test_root_redirects_to_lab_when_jupyterlab_is_enabled(
    build_app: Callable[..., HardenedServerApp],
) -> None:
    app = build_app(
        "--ServerApp.jpserver_extensions=jupyterlab=True",
        "--ServerApp.jpserver_extensions=notebook=False",
    )
    assert app.default_url == "/lab"


def test_a_legacy_login_handler_runs_through_jupyter_servers_legacy_path(
    build_app: Callable[..., HardenedServerApp],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ServerApp.login_handler_class`` with stock's ``PasswordIdentityProvider``: stock's
    LegacyIdentityProvider runs the handler; its users get the policy's scopes (here the
    owner's), and its /login route is wrapped like every other (HS-START-014 is for a handler
    no provider runs)."""
    from jupyter_server.auth.identity import LegacyIdentityProvider

    from hardened_server.enforcement.handlers import iter_handler_rules
    from hardened_server.enforcement.inventory import is_wrapped, original_handler

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fixtures" / "site_identity"))
    policy = tmp_path / "owner.toml"
    policy.write_text('[identity]\nsite_provider = "owner"\n')
    app = build_app(
        *WITHOUT_LAB,
        f"--policy={policy}",
        "--ServerApp.identity_provider_class=jupyter_server.auth.identity.PasswordIdentityProvider",
        "--ServerApp.login_handler_class=site_auth.SiteLoginHandler",
    )
    import site_auth

    assert isinstance(app.identity_provider, LegacyIdentityProvider)
    assert app.identity_provider.login_handler_class is site_auth.SiteLoginHandler
    login = [
        rule.target
        for rule in iter_handler_rules(app.web_app.default_router)
        if rule.matcher.regex.pattern.startswith("/login")
    ]
    assert login
    assert is_wrapped(login[0])
    assert original_handler(login[0]) is site_auth.SiteLoginHandler
