# hardened-server: two commands on a fresh machine.
#   make serve   set up .venv and run the server on the shipped default policy
#   make test    set up everything the suite needs and run it (CI runs this with CI=true)
#   make test-fast  the inner loop: lint and typecheck, then every test but the live and e2e ones

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-deps
# The extension ecosystem (pyproject extra `ecosystem`) in its own venv: installed extensions
# enable themselves, so they must not be in .venv, where the main suite runs its servers.
ECO_VENV  := .venv-eco
ECO_STAMP := $(ECO_VENV)/.installed
# The peer suites (jupyter_server's and jupyterlab_server's own tests, tests/peer/) in their own
# venv: their test dependencies must not change the main suite's (pyproject extra `peer`).
PEER_VENV  := .venv-peer
PEER_STAMP := $(PEER_VENV)/.installed
SERVE_ARGS ?=
# jupyter_server refuses to run as root; on a root-only machine (a container, CI) say so once.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: serve test test-fast test-peer lint bandit typecheck setup system-deps eco-venv peer-venv \
	docs fuzz bench clean labextension

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

# Debian's chromium (for the browser tests) and whatever else the end-to-end tests need,
# configurable-http-proxy (npm, into tools/chp/) included.
$(SYSTEM_STAMP): scripts/install-system-deps.sh tools/chp/package-lock.json \
		tools/jlservices/package-lock.json $(STAMP)
	bash scripts/install-system-deps.sh
	@touch $(SYSTEM_STAMP)

system-deps: $(SYSTEM_STAMP)

# tests/e2e/ecosystem/ launch `hardened-server serve` from this venv (tests/support/server.py:
# ECO_PYTHON, or HS_ECO_PYTHON to point at another interpreter).
$(ECO_STAMP): pyproject.toml
	@test -x $(ECO_VENV)/bin/python || $(PYTHON) -m venv $(ECO_VENV)
	$(ECO_VENV)/bin/python -m pip install -q --upgrade pip
	$(ECO_VENV)/bin/python -m pip install -q -e '.[ecosystem]'
	@touch $(ECO_STAMP)

eco-venv: $(ECO_STAMP)

# jupyter_server and jupyterlab_server at the versions whose sdists tools/peer/pins.toml pins.
$(PEER_STAMP): pyproject.toml tools/peer/pins.toml
	@test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEER_VENV)/bin/python tools/peer/fetch.py --constraints > $(PEER_VENV)/constraints.txt
	$(PEER_VENV)/bin/python -m pip install -q -e '.[peer]' -c $(PEER_VENV)/constraints.txt
	@touch $(PEER_STAMP)

peer-venv: $(PEER_STAMP)

serve: $(STAMP)
	$(VENV)/bin/hardened-server serve $(ROOT_FLAG) $(SERVE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bandit: $(STAMP)
	$(VENV)/bin/bandit -q -c pyproject.toml -r hardened_server -ll

# mypy over hardened_server/ (configuration: [tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The prebuilt JupyterLab extension in hardened_server/labextensions (issue #21), from
# labextension/ at the versions its package-lock.json pins; needs Node.js and npm. Its output is
# committed (serve and the wheel need no Node.js); tests/test_labextension.py fails until a
# source change is rebuilt and committed.
labextension: $(STAMP)
	PY=$(PY) bash labextension/build.sh

docs: $(STAMP)
	$(VENV)/bin/hardened-server policy reference > docs/policy-reference.md

test: $(STAMP) $(SYSTEM_STAMP) $(ECO_STAMP) $(PEER_STAMP) lint bandit typecheck
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-peer

# jupyter_server's and jupyterlab_server's own tests (their sdists' tests/ trees, fetched and
# sha256-checked by tools/peer/fetch.py) against HardenedServerApp; every deliberate difference is
# an expected failure in tests/peer/expected.toml citing SECURITY.md, any other failure fails
# (SECURITY.md, "Differences from stock: the upstream test suites"). pandoc (system-deps) is for
# jupyter_server's nbconvert tests; --timeout is per test. Both suites run even when the first
# fails; the target fails if either did.
test-peer: $(PEER_STAMP) $(SYSTEM_STAMP)
	@status=0; \
	PEER_PYTHON=$(PEER_VENV)/bin/python bash tools/peer/run.sh jupyter_server -q --timeout 120 || status=1; \
	PEER_PYTHON=$(PEER_VENV)/bin/python bash tools/peer/run.sh jupyterlab_server -q || status=1; \
	exit $$status

# No server is started (tests that start one carry the live or e2e marker: tests/conftest.py
# fails those that do not), no browser, nginx or hub.
test-fast: $(STAMP) lint typecheck
	$(PY) -m pytest -m "not live and not e2e"

# atheris harnesses for FUZZ_SECONDS each (default 60), printing exec/s; then the long
# Hypothesis profile. Not part of make test (which replays the corpora).
fuzz: $(STAMP)
	PY=$(PY) bash scripts/fuzz.sh

clean:
	rm -rf $(VENV) $(ECO_VENV) $(PEER_VENV) build dist .hypothesis .mypy_cache

include bench/Makefile.inc
