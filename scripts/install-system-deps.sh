#!/usr/bin/env bash
# Install the real parts the end-to-end tests drive: Debian's Chromium (Playwright launches it
# with executable_path=/usr/bin/chromium; no browser is downloaded). Idempotent: does nothing
# when everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
    echo "system deps: present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "system deps missing (${need[*]}) and not root: install them with apt-get" >&2
        exit 1
    fi
fi
echo "system deps: installing ${need[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
