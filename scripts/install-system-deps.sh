#!/usr/bin/env bash
# Install the real parts the end-to-end tests drive: Debian's Chromium (Playwright launches it
# with executable_path=/usr/bin/chromium; no browser is downloaded), Debian's nginx (the
# reverse-proxy test runs it under its own prefix on loopback), Debian's rsyslog (the audit
# trail's syslog test runs its own rsyslogd on loopback as the collector), git (jupyterlab-git),
# pandoc (jupyter_server's nbconvert tests in the peer suite skip without it), Node.js with npm, and
# configurable-http-proxy from the npm registry into tools/chp/ (JupyterHub's proxy, for the hub
# test). Idempotent: does nothing when everything is present. Needs root (or sudo) only when a
# Debian package is missing.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# nginx lives in /usr/sbin, which is not on every user's PATH.
{ [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; } || need+=(nginx)
{ [ -x /usr/sbin/rsyslogd ] || command -v rsyslogd >/dev/null 2>&1; } || need+=(rsyslog)
# git: jupyterlab-git's server extension runs it (the ecosystem tests drive its routes).
command -v git >/dev/null 2>&1 || need+=(git)
# pandoc: jupyter_server's own nbconvert tests (make test-peer) skip themselves without it.
command -v pandoc >/dev/null 2>&1 || need+=(pandoc)
# Node.js and npm: configurable-http-proxy (JupyterHub's proxy) and the graders run on them.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ ${#need[@]} -eq 0 ]; then
    echo "system deps: present"
else
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
    # The same for rsyslog: the test starts its own rsyslogd with its own configuration.
    if [[ " ${need[*]} " == *" rsyslog "* ]] && command -v invoke-rc.d >/dev/null 2>&1; then
        $SUDO invoke-rc.d rsyslog stop >/dev/null 2>&1 || true
    fi
fi

# npm packages go into the project (never global), at the versions the committed locks pin:
# configurable-http-proxy for the JupyterHub end-to-end test; @jupyterlab/services and ws for
# the Node real-client test.
bash "$(dirname "$0")/../tools/chp/setup.sh"
bash "$(dirname "$0")/../tools/jlservices/setup.sh"
