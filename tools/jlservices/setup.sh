#!/usr/bin/env bash
# Install @jupyterlab/services and ws from the npm registry into tools/jlservices/node_modules,
# at the versions the committed lock file pins (the Node real-client test,
# tests/enforcement/identity/test_ws_url_tokens_live.py). Node.js >= 18. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
# Install unless both packages really load: a half-present tree (a copy missing its dist/
# folders, an interrupted install) is reinstalled from the lock file, not trusted.
if ! node -e "require('@jupyterlab/services'); require('ws')" >/dev/null 2>&1; then
    npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund
fi
echo "@jupyterlab/services $(node -p "require('./node_modules/@jupyterlab/services/package.json').version"): ready"
