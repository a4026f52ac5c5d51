"""Who is the client? Forwarding headers, believed only from trusted proxies.

``X-Forwarded-For``, ``X-Real-IP``, ``X-Forwarded-Proto``/``-Host`` and RFC 7239 ``Forwarded``
are plain request headers: anybody can send them. Tornado's ``xheaders=True`` (jupyter_server's
``trust_xheaders``) believes them from every peer and prefers ``X-Real-IP``; configurable-http-
proxy and Caddy pass a client's ``X-Real-IP`` through unchanged, so ``X-Real-Ip: 7.7.7.7`` was
logged as the client address by both the hub and the single-user server (proxy_multiuser §2.4.1).
The rules here:

- HS-PROXY-002: from a peer outside ``server.trusted_proxies`` every forwarding header is
  ignored; the client is the peer, the scheme is the connection's, the host is ``Host``.
  ``ignored_headers`` tells the caller that such headers were sent, so it can record the attempt.
- HS-PROXY-001: from a trusted peer, exactly one header names the client (chosen when the policy
  loads, ``x-forwarded-for`` by default). The others are never read: a proxy that writes
  ``X-Forwarded-For`` passes a client's ``Forwarded`` or ``X-Real-IP`` through untouched.
  ``X-Forwarded-For`` and ``Forwarded`` are walked from the right: each entry was appended by the
  hop to its right, so an entry is believed only while the hop that wrote it is trusted
  (right-most untrusted address, as JupyterHub's ``trusted_downstream_ips`` and Caddy's
  ``trusted_proxies`` do). A client that sends ``X-Forwarded-For: 6.6.6.6`` through nginx gets
  ``6.6.6.6, <its real address>`` and is seen as its real address.
- HS-PROXY-003: a trusted proxy wrote something that is not an address (``unknown``, an
  obfuscated node, garbage): the walk stops at the last trusted hop, which becomes the client.
- HS-PROXY-004: no forwarding header at all; the peer is the client.

Scheme and host come from the same hop as the address (``proto=``/``host=`` of the chosen
``Forwarded`` element; the matching entry of ``X-Forwarded-Proto``/``-Host``), and only if they
are valid (``http``/``https``; a Host value that normalises). The host still has to pass the Host
allow-list: this module says who asked, not whether they may.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hardened_server.policy.decisions import Decision
from hardened_server.policy.hosts import split_host_header
from hardened_server.policy.rules import Rule

#: Headers that claim something about the client; any of them from an untrusted peer is ignored.
FORWARDING_HEADERS: tuple[str, ...] = (
    "Forwarded",
    "X-Forwarded-For",
    "X-Real-IP",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Forwarded-Port",
    "X-Scheme",
)
CLIENT_HEADERS: tuple[str, ...] = ("x-forwarded-for", "forwarded", "x-real-ip")
_FORWARDING_BY_LOWER: dict[str, str] = {name.lower(): name for name in FORWARDING_HEADERS}
_MAX_PEER_LENGTH = 64  # longer than any address text (an IPv6 with a zone id is refused anyway)

_MAX_HEADER_LENGTH = 8192
_MAX_HOPS = 32  # a longer chain is not a deployment, it is a loop or an attack
_SCHEMES = frozenset({"http", "https"})

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """Compiled ``server.trusted_proxies``; build with :func:`compile_trusted`."""

    networks: tuple[_Network, ...]
    client_header: str = "x-forwarded-for"

    def __contains__(self, ip: object) -> bool:
        if not self.networks:  # the default: no proxy is trusted
            return False
        if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return any(ip.version == net.version and ip in net for net in self.networks)


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """Who sent the request, as far as the policy believes it."""

    ip: str  # canonical address text (IPv4-mapped IPv6 shown as IPv4), or the peer as given
    scheme: str  # "http" or "https"
    host: str | None  # normalised "host[:port]", or None when no valid Host was sent
    trusted_hops: int  # forwarding entries believed (0: the peer itself is the client)
    ignored_headers: bool  # forwarding headers came from an untrusted peer and were ignored
    malformed: bool = False  # a trusted proxy sent an entry that is not an address

    @property
    def rule_id(self) -> str:
        if self.ignored_headers:
            return Rule.PROXY_IGNORED
        if self.malformed:
            return Rule.PROXY_MALFORMED
        return Rule.PROXY_HONOURED if self.trusted_hops else Rule.PROXY_DIRECT

    def decision(self) -> Decision:
        """As an (always allowing) decision, for the audit trail and ``policy explain``."""
        reasons: dict[str, str] = {
            Rule.PROXY_IGNORED: "forwarding headers from an untrusted peer were ignored",
            Rule.PROXY_MALFORMED: "a trusted proxy sent a malformed forwarding entry",
            Rule.PROXY_HONOURED: "forwarding headers honoured from trusted proxies",
            Rule.PROXY_DIRECT: "no forwarding headers: the peer is the client",
        }
        return Decision(True, self.rule_id, reasons[self.rule_id])


def compile_trusted(
    cidrs: Iterable[str], *, client_header: str = "x-forwarded-for"
) -> TrustedProxies:
    """Compile the trusted proxy networks once, when the policy loads.

    ``cidrs`` are networks in CIDR form (``10.0.0.0/8``, ``127.0.0.1/32``, ``fd00::/8``), host
    bits clear. ``0.0.0.0/0`` and ``::/0`` are refused: trusting every peer is tornado's
    ``xheaders=True``, the setting this module exists to replace. ``client_header`` names the one
    header that carries the client address: ``x-forwarded-for`` (nginx, configurable-http-proxy,
    Caddy, Traefik), ``forwarded`` (RFC 7239) or ``x-real-ip`` (only if every trusted proxy
    overwrites it). Raises ``ValueError`` naming the bad item.
    """
    if client_header not in CLIENT_HEADERS:
        raise ValueError(f"client_header must be one of {CLIENT_HEADERS}, not {client_header!r}")
    networks: list[_Network] = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a network in CIDR form: {cidr!r} ({exc})") from None
        if net.prefixlen == 0:
            raise ValueError(f"{cidr!r} trusts every peer; list the proxies' networks")
        networks.append(net)
    return TrustedProxies(tuple(networks), client_header)


def _get(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive look-up that also works on a plain ``dict``."""
    value = headers.get(name)
    # tornado's HTTPHeaders is already case-insensitive: scan only a plain dict (this runs for
    # seven header names on every request).
    if value is None and type(headers) is dict:
        lower = name.lower()
        for key, val in headers.items():
            if isinstance(key, str) and key.lower() == lower:
                value = val
                break
    if value is None or not isinstance(value, str) or len(value) > _MAX_HEADER_LENGTH:
        return None
    return value


def _unmap(ip: _Address) -> _Address:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _parse_ip(text: str) -> _Address | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``."""
    text = text.strip()
    if not text or not text.isascii() or "%" in text:
        return None
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :] if end > 0 else "x"
        if rest and not (rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        text, _, port = text.partition(":")
        if not (port.isdigit() and len(port) <= 5):
            return None
    try:
        return _unmap(ipaddress.ip_address(text))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _peer(peer_ip: str) -> tuple[_Address | None, str]:
    """The parsed TCP peer and its text form: a client's every request comes from the same
    address, so a bounded cache keyed on the exact string parses it once."""
    peer = _parse_ip(peer_ip)
    return peer, (str(peer) if peer is not None else peer_ip)


@functools.lru_cache(maxsize=1024)
def _direct(ip: str, scheme: str, host: str | None, ignored: bool) -> ClientAddress:
    """The answer for a peer that is its own client: immutable, so one object per distinct
    answer (a client sends the same Host from the same address on every request)."""
    return ClientAddress(ip, scheme, host, 0, ignored)


def _forwarding_sent(headers: Mapping[str, str]) -> bool:
    """``any(_get(headers, name) is not None for name in FORWARDING_HEADERS)``, asked of the
    names the request carries (a dozen) instead of seven misses, each of which costs
    tornado's ``HTTPHeaders`` a ``KeyError``. The common answer (no forwarding header at all)
    is one set operation over the lower-cased names; only a request that names one is
    walked."""
    try:
        if _FORWARDING_BY_LOWER.keys().isdisjoint(map(str.lower, headers)):
            return False
    except TypeError:  # a key that is not a str (a plain dict can have one): the walk skips it
        pass
    for key in headers:
        if isinstance(key, str):
            name = _FORWARDING_BY_LOWER.get(key.lower())
            if name is not None and _get(headers, name) is not None:
                return True
    return False


def _split_list(value: str) -> list[str]:
    """Comma-separated list, honouring RFC 7230 quoted strings (for ``Forwarded``)."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    items.append("".join(current).strip())
    return items


def _forwarded_element(element: str) -> dict[str, str] | None:
    """One ``Forwarded`` element -> {lower-case name: unquoted value}, or None if malformed."""
    pairs: dict[str, str] = {}
    for pair in _split_semicolons(element):
        name, eq, value = pair.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if not eq or not name or name in pairs:
            return None
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"'):
                return None
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        pairs[name] = value
    return pairs


def _split_semicolons(element: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in element:
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            out.append("".join(current))
            current = []
            continue
        current.append(ch)
    out.append("".join(current))
    return [p for p in out if p.strip()]


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value if value in _SCHEMES else None


def _host(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = split_host_header(value.strip())
    if parsed is None:
        return None
    host, port = parsed
    return host if port is None else f"{host}:{port}"


def _aligned(value: str | None, hops: int) -> str | None:
    """The entry of a per-hop list (``X-Forwarded-Proto: https, http``) written by the
    outermost trusted hop: ``hops`` from the right, or the left-most if proxies overwrote."""
    if value is None or hops <= 0:
        return None
    items = [item.strip() for item in value.split(",")]
    return items[-hops] if len(items) >= hops else items[0]


def _walk(
    entries: list[_Address | None], start: _Address, trusted: TrustedProxies
) -> tuple[_Address, int, bool]:
    """Right-to-left: believe an entry only while the hop that appended it is trusted."""
    current, hops, malformed = start, 0, False
    for entry in reversed(entries[-_MAX_HOPS:]):
        if current not in trusted:
            break
        if entry is None:
            malformed = True
            break
        current, hops = entry, hops + 1
    return current, hops, malformed


def client_address(
    peer_ip: str,
    headers: Mapping[str, str],
    trusted: TrustedProxies,
    *,
    scheme: str = "http",
) -> ClientAddress:
    """Client address, scheme and host of a request.

    ``peer_ip`` is the address of the TCP peer (tornado ``request.connection.context.address``,
    *not* ``request.remote_ip`` when ``xheaders`` is on); ``scheme`` is that connection's
    (``https`` under TLS); ``headers`` is a mapping with case-insensitive ``get`` (tornado's
    ``HTTPHeaders``; a plain ``dict`` works too). From an untrusted peer the result's ``ip`` is
    always ``peer_ip``: no header sent by such a peer can change it.
    """
    own_host = _host(_get(headers, "Host"))
    conn_scheme = _scheme(scheme) or "http"
    if type(peer_ip) is str and len(peer_ip) <= _MAX_PEER_LENGTH:
        peer, peer_text = _peer(peer_ip)
    else:
        peer = _parse_ip(peer_ip) if isinstance(peer_ip, str) else None
        peer_text = str(peer) if peer is not None else peer_ip
    if peer is None or peer not in trusted:
        if type(peer_text) is str:  # own_host is a normalised host name (at most 253 + port)
            return _direct(peer_text, conn_scheme, own_host, _forwarding_sent(headers))
        return ClientAddress(peer_text, conn_scheme, own_host, 0, _forwarding_sent(headers))

    mode = trusted.client_header
    if mode == "forwarded":
        raw = _get(headers, "Forwarded")
        if raw is None:
            return ClientAddress(peer_text, conn_scheme, own_host, 0, False)
        elements = [_forwarded_element(e) for e in _split_list(raw)]
        ips = [_parse_ip(e["for"]) if e and "for" in e else None for e in elements]
        ip, hops, malformed = _walk(ips, peer, trusted)
        chosen = elements[len(elements) - hops] if hops else None
        fwd_scheme = _scheme(chosen.get("proto")) if chosen else None
        fwd_host = _host(chosen.get("host")) if chosen and "host" in chosen else None
        return ClientAddress(
            str(ip), fwd_scheme or conn_scheme, fwd_host or own_host, hops, False, malformed
        )

    if mode == "x-real-ip":
        raw = _get(headers, "X-Real-IP")
        real = _parse_ip(raw) if raw is not None else None
        if real is None:
            return ClientAddress(peer_text, conn_scheme, own_host, 0, False, raw is not None)
        ip, hops, malformed = real, 1, False
    else:
        raw = _get(headers, "X-Forwarded-For")
        if raw is None:
            return ClientAddress(peer_text, conn_scheme, own_host, 0, False)
        ip, hops, malformed = _walk([_parse_ip(e) for e in raw.split(",")], peer, trusted)

    proto = _get(headers, "X-Forwarded-Proto") or _get(headers, "X-Scheme")
    fwd_scheme = _scheme(_aligned(proto, hops))
    fwd_host = _host(_aligned(_get(headers, "X-Forwarded-Host"), hops))
    return ClientAddress(
        str(ip), fwd_scheme or conn_scheme, fwd_host or own_host, hops, False, malformed
    )
