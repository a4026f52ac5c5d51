"""Which server wrote a record: the ``server`` object every chain line carries.

A trail that leaves the host (stdout to a container log collector, syslog) is read next to the
trails of many other servers: one user's several named servers, every user of a hub, every pod
of a deployment. Each line therefore says who wrote it, inside the hashed record (so it cannot
be edited without breaking the chain), and carries its chain id (``chain``), so
``hardened-server audit verify-log --stream`` can sort an interleaved stream back into chains.

Read once at start-up (environment and host name), never at decision time:

* ``hub_user``: ``JUPYTERHUB_USER`` (the user whose server this is; under JupyterHub);
* ``server_name``: ``JUPYTERHUB_SERVER_NAME`` (``""`` for the default server; under JupyterHub);
* ``pod``: ``POD_NAME`` (Kubernetes, from the downward API), else ``host``: the host name;
* ``port``: the port the server listens on (two servers of one user on one host differ in it).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["MAX_VALUE", "server_identity"]

#: Values are the operator's (environment, host name); clipped so a line stays a line.
MAX_VALUE = 200


def _clip(value: str) -> str:
    return "".join(ch for ch in value if ch.isprintable())[:MAX_VALUE]


def server_identity(port: int, env: Mapping[str, str] | None = None) -> dict[str, str | int]:
    """The ``server`` object of this process's records (keys absent when unknown)."""
    env = os.environ if env is None else env
    ident: dict[str, str | int] = {}
    if env.get("JUPYTERHUB_USER"):
        ident["hub_user"] = _clip(env["JUPYTERHUB_USER"])
        ident["server_name"] = _clip(env.get("JUPYTERHUB_SERVER_NAME", ""))
    if env.get("POD_NAME"):
        ident["pod"] = _clip(env["POD_NAME"])
    ident["host"] = _clip(socket.gethostname())
    ident["port"] = int(port)
    return ident
