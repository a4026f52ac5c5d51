#!/usr/bin/env bash
# Build the prebuilt JupyterLab extension shipped in hardened_server/labextensions/ from this
# folder's source, at the versions package-lock.json pins (npm ci: node_modules/ is never
# committed), with the JupyterLab of the given Python (default: the repository's .venv), and
# record the digests tests/test_labextension.py checks: the source it was built from and the
# files it produced. The built files are committed, so that `make serve` and a wheel need no
# Node.js; run this (`make labextension`) after changing anything here, and commit both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
PY="${PY:-$repo/.venv/bin/python}"
cd "$here"
npm ci --no-audit --no-fund
npx tsc
# `jupyter labextension build` runs `jupyter-builder` from the same environment as jupyter.
PATH="$(dirname "$PY"):$PATH" "$PY" -m jupyterlab.labextensions build .
"$PY" "$here/digest.py" --write
