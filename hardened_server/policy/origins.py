"""Origins and host names, normalised so that comparison can be exact.

An origin is ``scheme://host[:port]`` (RFC 6454). Browsers send it serialised: ASCII only, the
scheme and host lower-case, IDN host names in punycode, the default port dropped, no path, no
userinfo. Attackers send everything else:

- ``https://evil.com\\@trusted.example.com``: Python's ``urlsplit`` finds the host
  ``trusted.example.com``, a browser (WHATWG: ``\\`` is ``/`` in special URLs) finds ``evil.com``.
  Any backslash or ``@`` is therefore refused, never interpreted.
- ``https://trusted.example.com.evil.com``, ``https://trusted.example.comevil.com``: prefix and
  suffix matching (jupyter_server's unanchored ``allow_origin_pat``, JS-10 / CVE-2026-40110).
  Canonical forms are compared with ``==``; nothing here matches a prefix or a substring.
- ``https://trusted.example.com`` spelt in full-width letters: the stdlib ``idna`` codec folds
  them onto ASCII, so "normalising" a non-ASCII origin could manufacture a match. Browsers
  never send one, so :func:`normalize_origin` refuses non-ASCII input outright.
- ``https://trusted.example.com.`` (trailing dot) is a *different* origin in a browser and may be
  served by a different virtual host; in an origin the dot is kept, so it never equals the
  listed name. In a ``Host`` header the dot is dropped (:func:`normalize_hostname`): DNS
  resolves both names the same way and the Host allow-list only has to stop DNS rebinding.
- ``https://[::1]evil``, ``https://a:+443``, ``https://a:²``: anything after a bracketed host other
  than ``:port``, and any port that is not 1-5 ASCII digits in range, is refused.

Every function returns the one canonical form or ``None`` when the input is not an origin (or
host) at all; ``None`` is the caller's cue to deny. All of them are idempotent:
``f(f(x)) == f(x)`` whenever ``f(x)`` is not ``None`` (a Hypothesis property and an atheris
invariant pin it).
"""

from __future__ import annotations

import functools
import ipaddress
import re

DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}

#: Entries of each normalisation cache. Every request asks the same few questions (its Host,
#: this server's own origin, the Origin a browser sends), so a bounded cache answers all but the
#: first; a client sending a new value every time only churns it. Keys are the whole input, and
#: only exact ``str`` values are cached (a ``str`` subclass could compare equal to a cached
#: value and yet behave differently). Values longer than ``CACHEABLE_LENGTH`` are not cached
#: (no browser sends one), which bounds each cache to about a megabyte whatever clients send.
CACHE_SIZE = 4096
CACHEABLE_LENGTH = 256

#: Longest Origin/Referer/Host value looked at; longer values are refused, not truncated.
MAX_ORIGIN_LENGTH = 2048

# One DNS label: letters, digits and inner hyphens, at most 63 octets (RFC 1035 §2.3.4).
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# WHATWG "ends in a number": a last label of digits or 0x-hex makes the browser parse the whole
# host as an IPv4 address ("127.1", "0x7f.1"); such a host is never a name.
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0[xX][0-9a-fA-F]*)\Z")
_ORIGIN = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^/?#]*)\Z")
_PORT_DIGITS = re.compile(r"[0-9]{1,5}\Z")  # ASCII only: str.isdigit() accepts "²" and "٣"
_FORBIDDEN_IN_HOST = frozenset("\\/@:?#%[]<>^|* \t\r\n\x00")


def _ipv6_literal(bracketed: str) -> str | None:
    """``[addr]`` -> ``[compressed]``; zone ids (``%eth0``) have no meaning in a URL host."""
    inner = bracketed[1:-1]
    if "%" in inner or not inner.isascii():
        return None
    try:
        addr = ipaddress.IPv6Address(inner)
    except ValueError:
        return None
    return f"[{addr.compressed}]"


def _normalize_host(host: str, *, keep_trailing_dot: bool) -> str | None:
    if type(host) is str and len(host) <= CACHEABLE_LENGTH:
        return _normalize_host_cached(host, keep_trailing_dot)
    return _normalize_host_uncached(host, keep_trailing_dot)


def _normalize_host_uncached(host: str, keep_trailing_dot: bool) -> str | None:
    if not isinstance(host, str) or not host or len(host) > 255:
        return None
    if host.startswith("[") and host.endswith("]"):
        return _ipv6_literal(host)
    if any(c in _FORBIDDEN_IN_HOST for c in host) or not host.isprintable():
        return None
    trailing_dot = host.endswith(".")
    if trailing_dot:
        host = host[:-1]
    if host.isascii():
        ascii_host = host
    else:
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    ascii_host = ascii_host.lower()
    try:
        # Strict dotted quad only: Python refuses leading zeros ("127.000.0.1") since 3.9.5.
        return str(ipaddress.IPv4Address(ascii_host))
    except ValueError:
        pass
    labels = ascii_host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    if _NUMERIC_LABEL.match(labels[-1]):  # "1.2.3", "2130706433", "a.0x10": not a name
        return None
    if len(ascii_host) > 253:  # punycode may have grown it; keeps the function idempotent
        return None
    return ascii_host + "." if trailing_dot and keep_trailing_dot else ascii_host


_normalize_host_cached = functools.lru_cache(maxsize=CACHE_SIZE)(_normalize_host_uncached)


def normalize_hostname(host: str) -> str | None:
    """Lower-case, IDN to punycode, one trailing dot dropped; ``None`` if not a host name or IP.

    IPv4 addresses must be strict dotted quads; IPv6 literals are returned in brackets,
    compressed (``[::1]``). Used for ``server.public_hostnames`` and (through
    :func:`hardened_server.policy.hosts.split_host_header`, which also refuses non-ASCII) the
    Host header. The trailing dot is dropped because ``localhost.`` and ``localhost`` resolve
    alike; for origins, where they differ, see :func:`normalize_origin`.
    """
    return _normalize_host(host, keep_trailing_dot=False)


def _split_authority(rest: str) -> tuple[str, int | None] | None:
    """``host[:port]`` of an origin or URL authority -> (raw host, port) or ``None``."""
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return None
        host_part, tail = rest[: end + 1], rest[end + 1 :]
    else:
        host_part, colon, port_part = rest.partition(":")
        tail = colon + port_part
    if not tail:
        return host_part, None
    if not tail.startswith(":") or not _PORT_DIGITS.match(tail[1:]):
        return None
    port = int(tail[1:])
    if not 0 < port < 65536:
        return None
    return host_part, port


def _serialize(scheme: str, host: str, port: int | None) -> str:
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def normalize_origin(origin: str) -> str | None:
    """Canonical ``scheme://host[:port]`` (http or https) or ``None``. ``"null"`` stays ``"null"``.

    Refused: non-ASCII (browsers send punycode; the ``idna`` codec would fold look-alikes onto a
    listed name), userinfo and backslashes (the ``evil.com\\@trusted`` differential), paths,
    queries and fragments, other schemes (``javascript:``, ``file:``), malformed ports.
    ``https://TRUSTED.example.com:443`` becomes ``https://trusted.example.com``; a trailing dot
    in the host is kept, so ``https://trusted.example.com.`` stays a different origin.
    """
    if type(origin) is str and len(origin) <= CACHEABLE_LENGTH:
        return _normalize_origin_cached(origin)
    return _normalize_origin_uncached(origin)


def _normalize_origin_uncached(origin: str) -> str | None:
    if not isinstance(origin, str) or len(origin) > MAX_ORIGIN_LENGTH:
        return None
    if origin == "null":
        return "null"
    if not origin.isascii():
        return None
    m = _ORIGIN.match(origin)
    if not m:
        return None
    scheme = m.group("scheme").lower()
    if scheme not in DEFAULT_PORTS:
        return None
    rest = m.group("rest")
    if "@" in rest or "\\" in rest:  # userinfo and backslash tricks are never an origin
        return None
    parts = _split_authority(rest)
    if parts is None:
        return None
    host = _normalize_host(parts[0], keep_trailing_dot=True)
    if host is None:
        return None
    return _serialize(scheme, host, parts[1])


_normalize_origin_cached = functools.lru_cache(maxsize=CACHE_SIZE)(_normalize_origin_uncached)


def referer_origin(referer: str) -> str | None:
    """The normalised origin of a ``Referer`` URL, or ``None`` if it is not a plain http(s) URL.

    Browsers send Referer as an absolute URL with userinfo and fragment stripped, so a value
    with ``@`` or ``\\`` in its authority (``http://localhost:8888@evil.com/``,
    ``http://evil.com\\@localhost:8888/``) is a crafted header and yields ``None``: the caller
    denies, rather than guessing which host was meant (research §3.2, "Referer specifics").
    ``http://localhost:8888.evil.com/`` simply yields the origin of ``localhost:8888.evil.com``,
    which is foreign.
    """
    if not isinstance(referer, str) or len(referer) > MAX_ORIGIN_LENGTH or not referer.isascii():
        return None
    scheme_end = referer.find("://")
    if scheme_end <= 0:
        return None
    after = referer[scheme_end + 3 :]
    cut = len(after)
    for sep in "/?#":
        i = after.find(sep)
        if 0 <= i < cut:
            cut = i
    authority = after[:cut]
    if not authority:
        return None
    origin = normalize_origin(referer[:scheme_end] + "://" + authority)
    return None if origin == "null" else origin
