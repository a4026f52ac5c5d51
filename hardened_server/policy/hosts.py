"""The Host allow-list: loopback names plus ``server.public_hostnames``, always checked.

Stock jupyter_server stops checking Host as soon as it binds to a non-loopback address
(``allow_remote_access`` defaults to True there), which leaves every such deployment open to DNS
rebinding: a page on ``evil.example`` whose name now resolves to the server is same-origin with
it. Here the check never turns off; the allow-list is compiled once when the policy loads and a
request only normalises its Host value and looks it up in a frozenset.

What the request-time parser refuses, and why:

- non-ASCII (``localhost`` in full-width letters): browsers send punycode; the ``idna`` codec
  would fold such look-alikes onto a listed name;
- ``localhost:8888@evil``, ``evil\\localhost``, ``localhost:٨٨``: userinfo, backslashes and
  non-ASCII digits are never part of a Host value;
- ``127.1``, ``2130706433``, ``0x7f.0.0.1``: numeric host shorthands that browsers would turn into
  an address (and that no browser sends in Host) are not names and not dotted quads;
- ``::1`` without brackets, ``[::1]x``, zone ids: an IPv6 Host is ``[addr]`` optionally followed
  by ``:port`` and nothing else.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

from hardened_server.policy.decisions import Decision, Rule, allow, deny
from hardened_server.policy.origins import CACHE_SIZE, normalize_hostname

LOOPBACK_NAMES: frozenset[str] = frozenset({"localhost", "127.0.0.1", "[::1]"})

#: A Host header longer than this is refused (a DNS name is at most 253 octets, plus ``:port``).
MAX_HOST_LENGTH = 300

_PORT = re.compile(r":([0-9]{1,5})\Z")  # ASCII digits only: "\d" also matches "٨"


def compile_host_allowlist(public_hostnames: Iterable[str]) -> frozenset[str]:
    """Normalised host names (no port) that may appear in a Host header.

    Loopback names are always included. A name that does not normalise (a URL, ``*.example``, a
    name with a port) raises ``ValueError`` here, at policy load, rather than being silently
    dropped: a typo must not turn into a deployment that answers 403 to everybody.
    """
    names = set(LOOPBACK_NAMES)
    for name in public_hostnames:
        norm = normalize_hostname(name)
        if norm is None:
            raise ValueError(f"not a host name or IP address: {name!r}")
        names.add(norm)
    return frozenset(names)


def split_host_header(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` -> (normalised host, port) or ``None`` if it is not a Host value.

    Pure, and every request of a client sends the same value: answered from a bounded cache
    keyed on the whole value (exact ``str`` only; see :data:`origins.CACHE_SIZE
    <hardened_server.policy.origins.CACHE_SIZE>`)."""
    if type(value) is str and len(value) <= MAX_HOST_LENGTH:
        return _split_host_header_cached(value)
    return _split_host_header(value)


def _split_host_header(value: str) -> tuple[str, int | None] | None:
    if not isinstance(value, str) or not value or len(value) > MAX_HOST_LENGTH:
        return None
    if not value.isascii():
        return None
    port: int | None = None
    m = _PORT.search(value)
    # "::1" (no brackets) ends in ":1" too; a port only follows a name, a dotted quad or "]".
    if m and (not value.startswith("[") or value[: m.start()].endswith("]")):
        port = int(m.group(1))
        value = value[: m.start()]
        if not 0 < port < 65536:
            return None
    host = normalize_hostname(value)
    if host is None:
        return None
    return host, port


_split_host_header_cached = functools.lru_cache(maxsize=CACHE_SIZE)(_split_host_header)


def is_loopback_host(host: str) -> bool:
    """True for a *normalised* host that is a loopback address (127.0.0.0/8 or ``[::1]``)."""
    if host == "[::1]":
        return True
    if not host[:1].isdigit():
        return False
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def is_loopback_bind(ip: str) -> bool:
    """Whether the server's listen address (``ServerApp.ip``) is reachable from this machine
    only: ``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``, bracketed or not).
    Anything else counts as remote: ``""`` (all interfaces), ``0.0.0.0``, ``::``, a host name
    (it may resolve anywhere). The one answer for the start-up refusal
    (:func:`hardened_server.policy.startup.check_configuration`) and the audit's checks
    (``hardened_server/audit/checks/policy.py``, ``.../env.py``)."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip.strip("[]")).is_loopback
    except ValueError:
        return False


def is_allowed_host(host_header: str | None, allowed: frozenset[str]) -> Decision:
    """Decide on the Host header of a request (``allowed`` from :func:`compile_host_allowlist`).

    127.0.0.0/8 addresses are loopback too (``127.0.0.2`` reaches the same machine). The port is
    not compared: the listener already chose it, and a rebinding page cannot pick a port the
    server does not listen on.
    """
    parsed = split_host_header(host_header or "")
    if parsed is None:
        return _MALFORMED
    host = parsed[0]
    if host in allowed or is_loopback_host(host):
        return _ALLOWED
    return _FOREIGN


# Decisions are immutable: the three answers are built once, not per request.
_MALFORMED = deny(Rule.HOST_FOREIGN, "missing or malformed Host header")
_ALLOWED = allow(Rule.HOST_ALLOWED, "host is on the allow-list")
_FOREIGN = deny(Rule.HOST_FOREIGN, "host is not loopback nor in server.public_hostnames")


def unix_socket_host(socket_path: str) -> str:
    """The Host header a client of a Unix socket sends: the socket's path with each ``/`` as
    ``%2F`` (jupyter_server's ``urlencode_unix_socket_path``, requests-unixsocket's
    ``http+unix://`` URLs). No browser can send it: a host name holds no ``%``."""
    return socket_path.replace("/", "%2F")


UNIX_SOCKET_ALLOWED = allow(
    Rule.HOST_UNIX_SOCKET,
    "request over the server's Unix socket, whose Host is that socket's encoded path",
)
