"""Origins and host names, normalised so that comparison can be exact.

An origin is ``scheme://host[:port]`` (RFC 6454). Browsers send it serialised, lower-case, with the
default port dropped and IDN host names in punycode; attackers send everything else
(``https://evil.com\\@trusted.example.com``, ``https://trusted.example.com.evil.com``, a trailing
dot, userinfo). ``normalize_origin`` returns the one canonical form or ``None`` when the string is
not an origin at all, and the allow-list compares canonical forms with ``==``: no prefixes, no
substrings, no regular expressions unless the policy explicitly asks for them.
"""

from __future__ import annotations

import ipaddress
import re

DEFAULT_PORTS = {"http": 80, "https": 443}

# One DNS label: letters, digits and inner hyphens, at most 63 octets (RFC 1035 §2.3.4).
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_ORIGIN = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^/?#]*)\Z")


def normalize_hostname(host: str) -> str | None:
    """Lower-case, IDN to punycode, trailing dot dropped; ``None`` if not a host name or IP.

    IPv6 literals are returned in brackets, compressed (``[::1]``).
    """
    if not isinstance(host, str) or not host or len(host) > 255:
        return None
    if host.startswith("[") and host.endswith("]"):
        try:
            addr = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        return f"[{addr.compressed}]"
    if any(c in host for c in "\\/@:?#%[] \t\r\n\x00") or not host.isprintable():
        return None
    if host.endswith("."):
        host = host[:-1]
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    ascii_host = ascii_host.lower()
    try:
        return str(ipaddress.IPv4Address(ascii_host))
    except ValueError:
        pass
    labels = ascii_host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # "1.2.3" and friends: not a name, not a dotted quad
        return None
    return ascii_host


def normalize_origin(origin: str) -> str | None:
    """Canonical ``scheme://host[:port]`` or ``None``. ``"null"`` stays ``"null"``."""
    if not isinstance(origin, str):
        return None
    if origin == "null":
        return "null"
    m = _ORIGIN.match(origin)
    if not m:
        return None
    scheme = m.group("scheme").lower()
    if scheme not in DEFAULT_PORTS:
        return None
    rest = m.group("rest")
    if "@" in rest or "\\" in rest:  # userinfo and backslash tricks are never an origin
        return None
    port: int | None = None
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return None
        host_part, tail = rest[: end + 1], rest[end + 1 :]
    else:
        host_part, _, port_part = rest.partition(":")
        tail = ":" + port_part if _ else ""
    if tail:
        if not tail.startswith(":") or not tail[1:].isdigit() or len(tail) > 6:
            return None
        port = int(tail[1:])
        if not 0 < port < 65536:
            return None
    host = normalize_hostname(host_part)
    if host is None:
        return None
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
