#!/usr/bin/env bash
# What `make bench` needs beyond the test extras, installed only when missing:
#   - wrk (Debian package) as the HTTP load generator; without it bench/run.py falls back to its
#     own bounded-concurrency asyncio client (slower ceiling, same report);
#   - pytest-benchmark in .venv for bench/test_micro.py.
# Idempotent; never upgrades anything that is already there.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PY="${PY:-$REPO/.venv/bin/python}"

if ! command -v wrk >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && apt-cache policy wrk 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        if [ "$(id -u)" = 0 ]; then
            SUDO=""
        elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO="sudo -n"
        else
            SUDO="unavailable"
        fi
        if [ "$SUDO" != unavailable ]; then
            echo "bench/setup.sh: installing wrk from the Debian archive"
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk \
                || { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive \
                     apt-get install -y -q --no-install-recommends wrk; } \
                || echo "bench/setup.sh: wrk install failed; the Python load generator will be used"
        else
            echo "bench/setup.sh: wrk missing and no root/sudo; the Python load generator will be used"
        fi
    else
        echo "bench/setup.sh: wrk not available from apt; the Python load generator will be used"
    fi
fi

if ! "$PY" -c 'import pytest_benchmark' >/dev/null 2>&1; then
    echo "bench/setup.sh: installing pytest-benchmark into $(dirname "$(dirname "$PY")")"
    "$PY" -m pip install -q 'pytest-benchmark>=4'
fi
