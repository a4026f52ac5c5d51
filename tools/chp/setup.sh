#!/usr/bin/env bash
# Install configurable-http-proxy (the proxy JupyterHub runs in front of the hub and the
# single-user servers) from the npm registry into tools/chp/node_modules, at the version the
# committed lock file pins. CHP 5.1 runs on Node.js >= 18 (Debian 12's nodejs). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
bin=node_modules/.bin/configurable-http-proxy
if [ ! -x "$bin" ]; then
    npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund
fi
echo "configurable-http-proxy $("./$bin" --version): ready"
