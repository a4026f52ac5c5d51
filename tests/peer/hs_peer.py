"""pytest plugin: run jupyter_server's and jupyterlab_server's own tests against
``HardenedServerApp`` (issue #17, item 3).

``make test`` unpacks the upstream ``tests/`` trees byte for byte (tools/peer/fetch.py) and runs
each with ``-p hs_peer`` (this module, on ``PYTHONPATH`` as a top-level module: the upstream
trees are themselves a package named ``tests``, so nothing here may import ours). The upstream
tests are never edited; what this plugin changes is listed below, each a *substitution*: what
swapping the app needs, nothing more.

Substitutions (``pytest_jupyter.jupyter_server``, the fixtures both suites start servers with):

1. ``jp_configurable_serverapp`` builds ``HardenedServerApp`` with the shipped default policy
   instead of ``ServerApp``: the module's ``ServerApp`` name is pointed at our class, so the
   fixture's ``instance()``, ``clear_instance()`` and ``jp_server_cleanup`` act on it.
2. A test that configures one of stock's file contents managers (``FileContentsManager``,
   ``AsyncFileContentsManager``, ``LargeFileManager``, ``AsyncLargeFileManager``: the contents
   API tests run once with each) gets ``HardenedContentsManager``, our manager built on
   ``AsyncLargeFileManager``; a stock manager itself is refused at start-up (HS-START-011), which
   would leave the contents API untested.
3. Not a substitution but isolation, the same for stock and hardened: the process environment
   is restored after every test. ``tests/extension/test_launch.py::test_token_file`` sets
   ``JUPYTER_TOKEN_FILE`` (a 32-bit token) and deletes it only when it passes; run as root it
   fails (on stock too: its subprocess lacks ``--allow-root``), and the leaked variable gave every
   later server of the run that token, which the default policy refuses at start-up
   (HS-START-009): the tests after it errored one after another until pytest-timeout stopped
   the run. The run's summary names each test whose environment was restored, and what changed.

No token is substituted: pytest-jupyter (0.10) means to configure a 32-bit fixture token, but
its ``not c.IdentityProvider.token`` is a traitlets ``LazyConfigValue``, which is truthy, so
the token is never set and the app generates its own (192 bits).

The checker (``tests/peer/expected.toml``, read by :func:`load_expectations`):

* every test listed for the suite is marked ``xfail(strict=True)`` with its class and reason:
  it must fail (a listed test that passes fails the run), and every listed test must exist;
* a test under the suite's ``stock_failures`` (it fails against stock ``ServerApp`` on this
  machine too: run as root, say) is ``xfail(strict=False)``: it may fail or pass;
* any other failure or error fails the run, as usual;
* with ``CI=true`` a skip fails the run unless its test is listed under the suite's
  ``skips`` (upstream's own choices: integration tests, other platforms), so nothing is skipped
  for a missing dependency.

``--hs-peer-stock`` runs the same tests on stock ``ServerApp`` with no expectations: how the
counts in SECURITY.md ("Differences from stock") are measured.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected.toml"
SUITES = ("jupyter_server", "jupyterlab_server")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


#: The kind of an expectation from a suite's ``stock_failures``: not a class of difference.
STOCK = "stock"
STOCK_REASON = "fails against stock jupyter_server in this environment"


@dataclass(frozen=True)
class Expectation:
    node_id: str
    kind: str  # a key of [classes], or STOCK
    reason: str

    def marker(self) -> pytest.MarkDecorator:
        """Strict for a class of difference; not for STOCK (root-less, quieter machines pass)."""
        if self.kind == STOCK:
            return pytest.mark.xfail(strict=False, reason=f"{STOCK_REASON}: {self.reason}")
        return pytest.mark.xfail(strict=True, reason=f"[{self.kind}] {self.reason}")


def load_expectations(
    suite: str, path: Path = EXPECTED
) -> tuple[dict[str, Expectation], dict[str, str]]:
    """The expected failures (node id -> Expectation) and the allowed skips (node id -> why) of
    one suite. Node ids are relative to the unpacked tree (``tests/...::test_name[param]``).
    A suite's ``stock_failures`` (tests that fail on stock ServerApp here too: the environment,
    not a difference) are expectations of kind :data:`STOCK`, not strict."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    classes = data["classes"]
    if STOCK in classes:
        raise pytest.UsageError(f"{path.name}: [classes.{STOCK}]: use [SUITE.stock_failures]")
    section = data.get(suite, {})
    expected: dict[str, Expectation] = {}
    listed = [
        (kind, node_id, reason)
        for kind, entries in section.get("fail", {}).items()
        for node_id, reason in entries.items()
    ]
    listed += [(STOCK, n, r) for n, r in section.get("stock_failures", {}).items()]
    for kind, node_id, reason in listed:
        if kind != STOCK and kind not in classes:
            raise pytest.UsageError(f"{path.name}: [{suite}.fail.{kind}] is not a class")
        if node_id in expected:
            raise pytest.UsageError(f"{path.name}: {node_id} listed twice")
        expected[node_id] = Expectation(node_id, kind, reason)
    return expected, dict(section.get("skips", {}))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hs-peer", "hardened-server peer suites")
    group.addoption(
        "--hs-peer-suite",
        choices=SUITES,
        required=True,
        help="which upstream suite this is (its section in tests/peer/expected.toml)",
    )
    group.addoption(
        "--hs-peer-expected",
        type=Path,
        default=EXPECTED,
        help="the expectations file (default: tests/peer/expected.toml)",
    )
    group.addoption(
        "--hs-peer-stock",
        action="store_true",
        help="run on stock ServerApp without expectations (to measure the stock counts)",
    )


def _substitute_app() -> None:
    """Substitutions 1 and 2 (module docstring)."""
    import pytest_jupyter.jupyter_server as fixtures
    from jupyter_server.services.contents import filemanager, largefilemanager

    from hardened_server.app import HardenedServerApp
    from hardened_server.enforcement.contents import HardenedContentsManager

    stock_managers = {
        filemanager.FileContentsManager,
        filemanager.AsyncFileContentsManager,
        largefilemanager.LargeFileManager,
        largefilemanager.AsyncLargeFileManager,
    }

    class PeerServerApp(HardenedServerApp):
        def init_configurables(self) -> None:
            if self.contents_manager_class in stock_managers:
                self.contents_manager_class = HardenedContentsManager
            super().init_configurables()

    fixtures.ServerApp = PeerServerApp  # type: ignore[misc]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[_stock_key] = config.getoption("--hs-peer-stock")
    suite = config.getoption("--hs-peer-suite")
    if config.stash[_stock_key]:
        config.stash[_expected_key] = ({}, {})
        return
    config.stash[_expected_key] = load_expectations(suite, config.getoption("--hs-peer-expected"))
    _substitute_app()


_stock_key = pytest.StashKey[bool]()
_expected_key = pytest.StashKey[tuple[dict[str, Expectation], dict[str, str]]]()
_unknown_key = pytest.StashKey[list[str]]()
_environ_key = pytest.StashKey[dict[str, list[str]]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """Isolation 3 (module docstring): whatever a test leaves in ``os.environ`` is undone."""
    before = dict(os.environ)
    try:
        return (yield)
    finally:
        after = dict(os.environ)
        changed = sorted(
            key
            for key in before.keys() | after.keys()
            if before.get(key) != after.get(key) and key != "PYTEST_CURRENT_TEST"
        )
        restored = item.config.stash.setdefault(_environ_key, {})
        for key in changed:
            restored.setdefault(key, []).append(item.nodeid)
            if key in before:
                os.environ[key] = before[key]
            else:
                os.environ.pop(key, None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per variable: the tests that left it (or how many did: our app's own
    ``GIT_CONFIG_*``, :meth:`HardenedServerApp.apply_safe_git_environment`, is every test's)."""
    for key, tests in sorted(terminalreporter.config.stash.get(_environ_key, {}).items()):
        who = ", ".join(tests) if len(tests) <= 3 else f"{len(tests)} tests"
        terminalreporter.write_line(f"hs_peer: os.environ restored: {key} after {who}", yellow=True)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    expected, skips = config.stash[_expected_key]
    seen = set()
    for item in items:
        found = expected.get(item.nodeid)
        if found is not None:
            seen.add(item.nodeid)
            item.add_marker(found.marker())
    ids = {item.nodeid for item in items}
    config.stash[_unknown_key] = sorted(
        [n for n in expected if n not in ids] + [n for n in skips if n not in ids]
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        _, skips = item.config.stash[_expected_key]
        if item.nodeid not in skips and not item.config.stash[_stock_key]:
            report.outcome = "failed"
            report.longrepr = (
                f"skipped with CI=true and not listed under skips in tests/peer/expected.toml: "
                f"{report.longrepr}"
            )
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """An expectation (or an allowed skip) for a test that does not exist any more is stale:
    the run fails and names it, so the file never lists what the suite no longer has. Only
    checked when the whole tree was collected (no ``-k``, ``-m`` or node ids)."""
    config = session.config
    unknown = config.stash.get(_unknown_key, [])
    whole = not config.getoption("keyword") and not config.getoption("markexpr")
    whole = whole and all(Path(a).name == "tests" for a in config.args)
    if unknown and whole:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                "tests/peer/expected.toml lists tests this suite does not have: "
                + ", ".join(unknown),
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
