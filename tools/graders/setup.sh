#!/usr/bin/env bash
# Install the outside graders from the npm registry, offline-safe: --ignore-scripts skips the
# Observatory's postinstall (it downloads a CA bundle, the HSTS preload list and the TLD list),
# and two stub files stand in for the lists (no HSTS-preload bonus offline; the TLD list is only
# used by the REST API, which we do not run).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/@mdn/mdn-http-observatory ] || [ ! -d node_modules/csp_evaluator ]; then
    npm ci --ignore-scripts --no-audit --no-fund 2>/dev/null || npm install --ignore-scripts --no-audit --no-fund
fi
conf=node_modules/@mdn/mdn-http-observatory/conf
[ -f "$conf/hsts-preload.json" ] || echo '{}' > "$conf/hsts-preload.json"
[ -f "$conf/tld-list.json" ] || echo '[]' > "$conf/tld-list.json"
echo "graders: ready"
