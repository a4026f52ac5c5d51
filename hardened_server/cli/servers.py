"""``hardened-server list`` and ``hardened-server stop PORT``: the running servers of this user.

Stock ``jupyter server list`` prints ``<url>?token=<token>`` from the ``jpserver-<pid>.json``
files in the Jupyter runtime directory, and ``jupyter server stop PORT`` POSTs ``/api/shutdown``
with that token. hardened-server never writes its token into that file (anything that reads the
runtime directory would get a full login), so the stock list shows a URL that leads to the login
page, and the stock stop is accepted only because the operating system says the process asking
is ``jupyter server stop`` run by the server's own user (enforcement/localpeer.py). These two
commands read the same files:

- ``list`` says, per server, where it is, how to log in and how to stop it;
- ``stop`` sends ``SIGTERM`` to the server's process (the graceful shutdown Control-C starts:
  kernels are shut down, the audit trail is closed). The operating system decides who may do
  that: the user who runs the server (or root), which is exactly who may read its runtime
  directory; no credential is needed or written anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

__all__ = ["add_parsers", "cmd_list", "cmd_stop", "running_servers"]


def running_servers(runtime_dir: str | None = None) -> list[dict[str, Any]]:
    """The ``jpserver-*.json`` of live processes (stock's reader; stale files are removed)."""
    from jupyter_server.serverapp import list_running_servers

    return list(list_running_servers(runtime_dir))


def _where(info: dict[str, Any]) -> str:
    """What ``stop`` takes for this server: its Unix socket's path, else its port."""
    return str(info.get("sock") or info.get("port", "?"))


def _matches(info: dict[str, Any], target: str) -> bool:
    if info.get("sock"):
        return os.path.abspath(target) == os.path.abspath(str(info["sock"]))
    return target.isdigit() and info.get("port") == int(target)


def _describe(info: dict[str, Any]) -> list[str]:
    url = str(info.get("url", ""))
    lines = [f"{url}  (root {info.get('root_dir', '?')}, pid {info.get('pid', '?')})"]
    if info.get("hardened_server_version"):  # HardenedServerApp.server_info
        lines.append(
            f"    log in: {url}login with the token (the start-up banner's login URL, "
            "JUPYTER_TOKEN, or `hardened-server token create`) or your password"
        )
        lines.append(f"    stop:   hardened-server stop {_where(info)}")
    else:
        lines.append("    a stock Jupyter server (not hardened-server): see `jupyter server list`")
    return lines


def cmd_list(args: argparse.Namespace) -> int:
    servers = running_servers(args.runtime_dir)
    if args.json:
        shown = [{k: v for k, v in s.items() if k != "token"} for s in servers]
        sys.stdout.write(json.dumps(shown, indent=2) + "\n")
        return 0
    if not servers:
        sys.stdout.write("No running servers.\n")
        return 0
    for info in servers:
        sys.stdout.write("\n".join(_describe(info)) + "\n")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmd_stop(args: argparse.Namespace) -> int:
    target = str(args.port)
    matches = [s for s in running_servers(args.runtime_dir) if _matches(s, target)]
    on = f"port {target}" if target.isdigit() else target
    if not matches:
        sys.stderr.write(
            f"hardened-server stop: no server of yours is running on {on} "
            "(`hardened-server list` shows them)\n"
        )
        return 1
    info = matches[0]
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        sys.stderr.write(
            f"hardened-server stop: the server on {on} (pid {pid}) belongs to "
            "another user\n"
        )
        return 1
    except ProcessLookupError:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            sys.stdout.write(f"stopped the server on {on} (pid {pid})\n")
            return 0
        time.sleep(0.1)
    sys.stderr.write(
        f"hardened-server stop: the server on {on} (pid {pid}) is still shutting "
        f"down after {args.timeout:g}s\n"
    )
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)  # jupyter_server: a second signal skips the wait
    return 1


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    runtime_help = "the Jupyter runtime directory to look in (default: jupyter --runtime-dir)"
    ls = sub.add_parser("list", help="running servers of this user: URL, how to log in and stop")
    ls.add_argument("--json", action="store_true", help="the server files as JSON, no token")
    ls.add_argument("--runtime-dir", default=None, help=runtime_help)
    ls.set_defaults(func=cmd_list)
    stop = sub.add_parser(
        "stop", help="stop the server on PORT or Unix SOCKET (SIGTERM: a graceful shutdown)"
    )
    stop.add_argument("port", metavar="PORT|SOCKET")
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (30)")
    stop.add_argument("--runtime-dir", default=None, help=runtime_help)
    stop.set_defaults(func=cmd_stop)
