#!/usr/bin/env bash
# Install the real parts the end-to-end tests drive: Debian's Chromium (Playwright launches it
# with executable_path=/usr/bin/chromium; no browser is downloaded) and Debian's nginx (the
# reverse-proxy test runs it under its own prefix on loopback). Idempotent: does nothing when
# everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# nginx lives in /usr/sbin, which is not on every user's PATH.
{ [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; } || need+=(nginx)

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

# Debian's package starts a system nginx on port 80 where an init system lets it. The tests
# start their own; a service we just installed is not wanted, so stop it again.
if [[ " ${need[*]} " == *" nginx "* ]] && command -v invoke-rc.d >/dev/null 2>&1; then
    $SUDO invoke-rc.d nginx stop >/dev/null 2>&1 || true
fi
