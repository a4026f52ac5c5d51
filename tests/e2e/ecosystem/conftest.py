"""The extension ecosystem venv (``make eco-venv``: the package, editable, plus the pyproject extra
``ecosystem``), for tests that start servers with JupyterLab's popular extensions installed.

Every test here is ``e2e``: with ``CI=true`` a skip (venv not built) is a failure, and ``make
test`` builds the venv first. A test asks for ``eco_python`` and hands it to the one launcher::

    ServerProcess(workdir, args, python=eco_python).start()      # or Spec(python=...)
    BareServer(workdir, eco_python).start()                      # serve with no flags

The test process itself stays in the main venv; what it needs of the ecosystem (a client
library, say) it runs as ``subprocess.run([eco_python, ...])``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ECO_VENV, ServerProcess
from tests.support.server import eco_python as _eco_python

#: Extensions whose routes still stop the strict default until their reviewed profile lands
#: (every extension of the ecosystem environment has one now: policies/extensions/). The shared
#: server runs without them; the no-flags test in test_start.py runs with everything.
AWAITING_PROFILES: tuple[str, ...] = ()


@pytest.fixture(scope="session")
def eco_python() -> Path:
    python = _eco_python()
    if python is None:
        pytest.skip(f"the ecosystem venv is not built ({ECO_VENV}): run `make eco-venv`")
    return python


@pytest.fixture(scope="session")
def eco_server(tmp_path_factory: pytest.TempPathFactory, eco_python: Path,
               ) -> Iterator[ServerProcess]:
    """One server of the ecosystem venv for the whole session, on the shipped default policy
    (token: ``server.auth()``; root: ``server.root``)."""
    server = ServerProcess(tmp_path_factory.mktemp("eco"), AWAITING_PROFILES, python=eco_python)
    try:
        server.start(timeout=180)
        yield server
    finally:
        server.stop_quickly()
