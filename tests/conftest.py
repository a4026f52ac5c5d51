"""Shared fixtures: real servers on 127.0.0.1 (launched by ``tests/support/server.py``),
Hypothesis profiles, the no-skip rule in CI, the live-marker rule."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support import marker_rule
from tests.support.server import ServerProcess

# pytester: tests/peer/test_expected.py runs the peer plugin over a small suite of its own.
pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# -- Hypothesis: `ci` for make test, `long` for make fuzz ------------------------------------
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# -- rule 2: in CI a skipped end-to-end test is a failure --------------------------------------
# -- rule 3: a test that starts a server carries the live (or e2e) marker ------------------------
#    (tests/support/marker_rule.py says how a start is seen)
def pytest_configure(config: pytest.Config) -> None:
    marker_rule.install()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    marker_rule.set_current(item)
    try:
        yield
    finally:
        marker_rule.set_current(None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("e2e") is not None:
        report.outcome = "failed"
        report.longrepr = f"end-to-end test skipped with CI=true: {report.longrepr}"
    unmarked = marker_rule.violations(item)
    if unmarked and not report.failed:
        report.outcome = "failed"
        report.longrepr = "\n".join(unmarked)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start real servers: ``server_factory(args=[...], policy_text=None, ...)``."""
    started: list[ServerProcess] = []

    def make(
        args: Sequence[str] = (),
        *,
        policy_text: str | None = None,
        start: bool = True,
        **kwargs: object,
    ) -> ServerProcess:
        workdir = tmp_path / f"srv{len(started)}"
        workdir.mkdir()
        if policy_text is not None:
            policy = workdir / "policy.toml"
            policy.write_text(policy_text)
            args = [f"--policy={policy}", *args]
        server = ServerProcess(workdir, args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One hardened-server with the shipped default policy (and JupyterLab) per module."""
    server = ServerProcess(tmp_path_factory.mktemp("live")).start()
    yield server
    server.stop()


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")
