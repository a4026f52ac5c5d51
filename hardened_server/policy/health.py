"""The liveness probe: ``GET /hs-health`` says that the server is up, and nothing else.

A kubelet (or any orchestrator) probes a pod over its pod IP: ``Host`` is that address and the
request carries no credential. Through the Host allow-list and the login gate such a request is
refused on every path, and each refusal is an audit record (a probe every 10 s is 8,640 records
a day per pod, drowning the records that matter). So one fixed request is answered before the
gate, by this decision:

- the request target is exactly :data:`HEALTH_PATH` (no query), outside any ``base_url``: a
  hub's proxy forwards only ``/user/NAME/...`` to a user server, so the probe is never reachable
  through the public address of a JupyterHub deployment;
- the method is ``GET`` or ``HEAD``;
- ``Host`` passes the Host allow-list (HS-HOST-003: loopback, ``server.public_hostnames``), or
  is *the address the connection arrived on* (HS-HOST-004): the socket's own local address,
  which is what a kubelet's ``httpGet`` probe of ``http://POD_IP:PORT/hs-health`` sends. This is
  no opening of the allow-list: a DNS-rebinding page sends its own name as Host, never the bare
  address, and a page that is itself at ``http://POD_IP:PORT`` is same-origin with the server
  anyway and reads ``ok``. Every other path with that Host is still refused (HS-HOST-002), as is
  any other Host on this path.

The answer is a fixed ``ok``: no version, no user, no state. It is not recorded (it is not a
decision about anybody's access); it is counted on ``/metrics`` instead
(``hardened_server_health_probes_total``, :mod:`hardened_server.enforcement.health`).
"""

from __future__ import annotations

import functools
import ipaddress

from hardened_server.policy.decisions import Decision, allow
from hardened_server.policy.hosts import is_loopback_host, split_host_header
from hardened_server.policy.origins import normalize_hostname
from hardened_server.policy.rules import Rule

#: The probe's one path, fixed and outside ``base_url`` (a KubeSpawner probe is the same for
#: every user's pod: ``extra_container_config`` is not templated per user).
HEALTH_PATH = "/hs-health"
HEALTH_METHODS: frozenset[str] = frozenset({"GET", "HEAD"})
#: The whole body of the answer.
HEALTH_BODY = b"ok\n"

_LISTED = allow(Rule.HOST_PROBE_LISTED, "liveness probe; Host is on the allow-list")
_OWN = allow(Rule.HOST_PROBE_OWN_ADDRESS, "liveness probe; Host is the address it arrived on")


@functools.lru_cache(maxsize=64)
def own_address_host(local_ip: str) -> str | None:
    """The Host form (normalised, IPv6 in brackets) of a socket's local address, or ``None``.

    An IPv4 client of a dual-stack listener arrives on ``::ffff:a.b.c.d``; its Host names
    ``a.b.c.d``. Wildcards (never a local address of a connection) and scoped addresses are no
    Host anybody sends."""
    try:
        addr = ipaddress.ip_address(local_ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_unspecified:
        return None
    text = f"[{addr.compressed}]" if addr.version == 6 else addr.compressed
    return normalize_hostname(text)


def health_probe_decision(
    method: str,
    target: str,
    host_header: str | None,
    local_ip: str | None,
    allowed_hosts: frozenset[str],
) -> Decision | None:
    """The probe's answer when this request is the probe, else ``None`` (the request then goes
    through the gate like any other: a foreign Host is refused and recorded there).

    ``target`` is the request target as sent (path and query), ``local_ip`` the local address of
    the connection's socket (``None`` for a Unix socket), ``allowed_hosts`` the compiled Host
    allow-list (:func:`hardened_server.policy.hosts.compile_host_allowlist`)."""
    if target != HEALTH_PATH or method not in HEALTH_METHODS:
        return None
    parsed = split_host_header(host_header or "")
    if parsed is None:
        return None
    host = parsed[0]
    if host in allowed_hosts or is_loopback_host(host):
        return _LISTED
    if local_ip and host == own_address_host(local_ip):
        return _OWN
    return None
