"""The Host allow-list: loopback names plus ``server.public_hostnames``, always checked.

Stock jupyter_server stops checking Host as soon as it binds to a non-loopback address
(``allow_remote_access`` defaults to True there), which leaves every such deployment open to DNS
rebinding: a page on ``evil.example`` whose name now resolves to the server is same-origin with
it. Here the check never turns off; the allow-list is compiled once when the policy loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hardened_server.policy.decisions import Decision, Rule, allow, deny
from hardened_server.policy.origins import normalize_hostname

LOOPBACK_NAMES: frozenset[str] = frozenset({"localhost", "127.0.0.1", "[::1]"})

_PORT = re.compile(r":\d{1,5}\Z")


def compile_host_allowlist(public_hostnames: Iterable[str]) -> frozenset[str]:
    """Normalised host names (no port) that may appear in a Host header."""
    names = set(LOOPBACK_NAMES)
    for name in public_hostnames:
        norm = normalize_hostname(name)
        if norm is not None:
            names.add(norm)
    return frozenset(names)


def split_host_header(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` -> (normalised host, port) or ``None`` if it is not a Host value."""
    if not value or len(value) > 300:
        return None
    port: int | None = None
    m = _PORT.search(value)
    if m and not (value.startswith("[") and not value[: m.start()].endswith("]")):
        port = int(m.group()[1:])
        value = value[: m.start()]
        if not 0 < port < 65536:
            return None
    host = normalize_hostname(value)
    if host is None:
        return None
    return host, port


def is_allowed_host(host_header: str | None, allowed: frozenset[str]) -> Decision:
    """Decide on the Host header of a request (``allowed`` from :func:`compile_host_allowlist`).

    127.0.0.0/8 addresses are loopback too (``127.0.0.2`` reaches the same machine).
    """
    parsed = split_host_header(host_header or "")
    if parsed is None:
        return deny(Rule.HOST_FOREIGN, "missing or malformed Host header")
    host = parsed[0]
    if host in allowed or host.startswith("127.") and host.replace(".", "").isdigit():
        return allow(Rule.HOST_ALLOWED, "host is on the allow-list")
    return deny(Rule.HOST_FOREIGN, "host is not loopback nor in server.public_hostnames")
