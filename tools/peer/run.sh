#!/usr/bin/env bash
# Run one upstream test suite against HardenedServerApp (issue #17): tools/peer/run.sh SUITE [ARGS]
#   SUITE  jupyter_server | jupyterlab_server (a section of tools/peer/pins.toml)
#   ARGS   passed to pytest (e.g. tests/auth, -k login, --hs-peer-stock to run stock ServerApp)
# The sdist's tests/ tree is fetched and checked first (tools/peer/fetch.py, build/peer/ or
# $HS_PEER_CACHE); pytest runs there with the suite's configuration (tests/peer/SUITE.ini) and
# the plugin tests/peer/hs_peer.py, which swaps the app and applies tests/peer/expected.toml.
# The interpreter is .venv-peer's (make peer-venv) unless PEER_PYTHON names another.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
py="${PEER_PYTHON:-$repo/.venv-peer/bin/python}"
# Absolute: pytest runs from the unpacked tree below (make passes .venv-peer/bin/python).
[[ "$py" = /* ]] || py="$PWD/$py"
suite="${1:?usage: tools/peer/run.sh jupyter_server|jupyterlab_server [pytest args]}"
shift
cache="${HS_PEER_CACHE:-$repo/build/peer}"
"$py" "$repo/tools/peer/fetch.py" --cache "$cache" >/dev/null
[ $# -gt 0 ] || set -- tests
cd "$cache/$suite"
# As in an activated venv: the suites run `jupyter ...` commands and look programs up on PATH.
export PATH="$(dirname "$py"):$PATH"
export PYTHONPATH="$repo/tests/peer${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" -m pytest -c "$repo/tests/peer/$suite.ini" --rootdir . -p hs_peer \
    --hs-peer-suite "$suite" "$@"
