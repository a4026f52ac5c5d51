"""Hypothesis strategies shared by the test suite, one delimited section per concern.

Each section (``# --- name ---`` ... ``# --- end name ---``) belongs to the tests of one policy
module; add a section rather than editing someone else's.
"""

from __future__ import annotations

import ipaddress

import hypothesis.strategies as st

# --- origins/hosts ---
# Strategies for the request-gate policy (origins, hosts, CORS, proxies, redirects, fetch
# metadata): well-formed values mixed with the bypass strings of research fuzz_and_style §3.2
# and jupyter_server_security §3.7. Owned by the origins/hosts tests; other sections stay as
# they are. Names are prefixed ``gate_``/``GATE_`` to stay clear of other sections.
_OH_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_OH_TLD = st.from_regex(r"[a-z]{2,6}", fullmatch=True)

#: DNS host names as browsers serialise them (lower-case ASCII, last label alphabetic).
gate_hostnames = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(_OH_LABEL, max_size=3), _OH_TLD
)
gate_ipv4 = st.ip_addresses(v=4).map(str)
gate_ipv6_hosts = st.ip_addresses(v=6).map(lambda ip: f"[{ip.compressed}]")
#: Any host a browser could put in an origin.
gate_hosts = st.one_of(gate_hostnames, gate_ipv4, gate_ipv6_hosts)
gate_ports = st.none() | st.integers(1, 65535)


def _oh_origin(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{host}" + ("" if port is None else f":{port}")


#: Well-formed origins (not necessarily canonical: an explicit default port may appear).
gate_origins = st.builds(_oh_origin, st.sampled_from(["http", "https"]), gate_hosts, gate_ports)


@st.composite
def gate_origin_spellings(draw: st.DrawFn, origin: str) -> str:
    """Another spelling of the *same* origin: case, explicit default port, leading zeros."""
    scheme, _, rest = origin.partition("://")
    chars = [c.upper() if draw(st.booleans()) else c for c in scheme + "://" + rest]
    out = "".join(chars)
    if rest.endswith("]") or ":" not in rest.rsplit("]", 1)[-1]:
        extra = draw(st.sampled_from(["", "", "default", "zeros"]))
        if extra == "default":
            out += ":443" if scheme == "https" else ":80"
        elif extra == "zeros":
            out += ":0443" if scheme == "https" else ":00080"
    return out


#: Ways to turn a trusted origin into an attacker's one (fuzz_and_style §2.1, §3.2).
GATE_CONFUSIONS = (
    lambda o: o + ".evil.com",
    lambda o: o + "evil.com",
    lambda o: o + "@evil.com",
    lambda o: o.replace("://", "://evil.com@"),
    lambda o: o.replace("://", "://evil.com\\@"),
    lambda o: o.replace("://", ":/\\evil.com@"),
    lambda o: o + "/",
    lambda o: o + "\\@evil.com",
    lambda o: o + "#@evil.com",
    lambda o: o + "?@evil.com",
    lambda o: o + ".",
    lambda o: o + ":9999",
    lambda o: o + "%00",
    lambda o: o + "\x00",
    lambda o: " " + o,
    lambda o: o + "\t",
    lambda o: "null",
    lambda o: o.replace("http", "javascript", 1),
    lambda o: o.replace("://", ":///"),
    lambda o: o.replace("://", "://evil."),
    lambda o: o.replace(".", "\u3002"),
    lambda o: o.replace("://", "://\uff45vil."),
    lambda o: "evil" + o,
    lambda o: o[:-1] if len(o) > 10 else o + "x",
)

GATE_ORIGIN_TOKENS = (
    "http://", "https://", "HTTPS://", "null", "localhost", "127.0.0.1", "[::1]", "[", "]",
    ":", ":443", ":80", ":0", ":65536", ":+443", ":0443", "@", "\\", "/", "//", "?", "#", ".",
    "%2e", "%00", "\x00", "\t", " ", "evil.com", "trusted.example.com", "xn--", "-", "0x7f",
    "\u3002", "\uff0e", "\u00b2", "\u0663", "javascript:", "file://", "*",
)

#: Text that looks like an origin, a host or a URL, built from the tokens above.
gate_origin_like = st.lists(
    st.sampled_from(GATE_ORIGIN_TOKENS) | st.text(max_size=4), max_size=8
).map("".join)


@st.composite
def gate_confused_origins(draw: st.DrawFn, origin: str) -> str:
    return draw(st.sampled_from(GATE_CONFUSIONS))(origin)


#: Any Origin header value: well-formed, respelt, confused or junk.
gate_any_origin = st.one_of(
    gate_origins,
    gate_origins.flatmap(gate_origin_spellings),
    gate_origins.flatmap(gate_confused_origins),
    gate_origin_like,
    st.text(max_size=40),
)

#: Host header values: names, addresses, ports, and the DNS-rebinding/parser bypass forms.
gate_host_headers = st.one_of(
    st.builds(
        lambda h, p: h if p is None else f"{h}:{p}",
        gate_hosts | st.sampled_from(["localhost", "LOCALHOST", "localhost."]),
        gate_ports,
    ),
    st.sampled_from(
        [
            "localhost:8888@evil.com", "evil.com\\localhost", "127.1", "2130706433",
            "0x7f.0.0.1", "[::ffff:127.0.0.1]", "::1", "[::1]x", "[fe80::1%eth0]",
            "localhost:\u0668\u0668", "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",
            "localhost.evil.com", "evil.com", "", " localhost", "localhost:",
        ]
    ),
    gate_origin_like,
)

GATE_BASE_URLS = ("/", "/jp/", "/user/alice/", "/a%40b/", "/hub/user/bob/")
gate_base_urls = st.sampled_from(GATE_BASE_URLS)

GATE_REDIRECT_TOKENS = (
    "/", "//", "///", "\\", "/\\", "\\\\", "..", ".", "%2e", "%2E", "%2e%2e", ".%2e", "%2F",
    "%2f", "%5C", "%5c", "%252e", "%252f", "%3F", "%23", "%25", "?", "#", "@", ":", "\t", "\n",
    "\r", " ", "\x00", "\x01", "\x1f", "\x7f", "\u00a0", "\u3000", "\uff0f", "\uff3c",
    "evil.example", "a@evil.example", "https:", "http:", "HTTP:", "javascript:", "data:",
    "hub", "jp", "user", "alice", "lab", "tree", "next=", "127.0.0.1:8888", "localhost",
)


@st.composite
def gate_redirect_targets(draw: st.DrawFn, base_url: str = "/") -> str:
    """``next=`` values: attack tokens, the base URL, random text, in any order."""
    parts = st.sampled_from(GATE_REDIRECT_TOKENS) | st.just(base_url) | st.text(max_size=4)
    return "".join(draw(st.lists(parts, max_size=10)))


#: Literal open-redirect payloads from the advisories (JS-1, JS-2, JS-6, JS-12, CVE-2026-33709).
GATE_REDIRECT_PAYLOADS = (
    "//evil.example", "///evil.example", "////evil.example/path", "/\\evil.example",
    "\\\\evil.example", "\\/evil.example", "%2F%2Fevil.example", "/%2F%2Fevil.example",
    "%2F%2F%2Fevil.example", "/%5Cevil.example", "%5C%5Cevil.example", "/\t/evil.example",
    "/\n/evil.example", "\t//evil.example", "\r\n//evil.example", " //evil.example",
    "\x00//evil.example", "\x1f/\\evil.example", "https:evil.example", "https:/evil.example",
    "https:///evil.example", "HTTPS://evil.example", "http:evil.example",
    "http:\\\\evil.example", "javascript:alert(document.domain)", "//a@evil.example",
    "/hub/../..//evil.example", "%2F%E2%80%A8%2Fevil.example", "%2F%2E%2E%2F%2Fevil.example",
    "/%2e%2e//evil.example", "/./..//evil.example", "/.%2e/%2fevil.example",
    "/jp/..//evil.example", "/jp/%2e%2e//evil.example", "/user/alice/..%2F..%2F%2Fevil.example",
    "data:text/html,<script>alert(1)</script>", "https://evil.example", "//127.0.0.1:8888.evil",
)

#: Peers and forwarding chains for the proxy properties.
gate_ips = st.one_of(
    st.ip_addresses(v=4), st.ip_addresses(v=6), st.ip_addresses(network="10.0.0.0/8")
).map(str)
GATE_TRUSTED_CIDRS = ("10.0.0.0/8", "fd00::/8", "127.0.0.1/32")
gate_forward_entries = st.one_of(
    gate_ips,
    gate_ips.map(lambda ip: f"[{ip}]:4711" if ":" in ip else f"{ip}:4711"),
    st.sampled_from(["unknown", "_hidden", "", " ", "1.2.3", "::ffff:10.0.0.1", "[::1]x"]),
    st.text(max_size=8),
)
gate_xff = st.lists(gate_forward_entries, max_size=6).map(", ".join)


def gate_is_trusted(ip: str) -> bool:
    """Reference membership test for :data:`GATE_TRUSTED_CIDRS` (independent of the code)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(
        addr.version == net.version and addr in net
        for net in map(ipaddress.ip_network, GATE_TRUSTED_CIDRS)
    )


gate_fetch_sites = st.none() | st.sampled_from(
    ["same-origin", "same-site", "cross-site", "none", "SAME-ORIGIN", "bogus", ""]
)
gate_fetch_modes = st.none() | st.sampled_from(
    ["navigate", "no-cors", "cors", "same-origin", "websocket", "NAVIGATE", "bogus"]
)
gate_fetch_dests = st.none() | st.sampled_from(
    ["document", "iframe", "script", "image", "style", "empty", "object", "embed", "worker"]
)
gate_methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"])
# --- end origins/hosts ---


# --- paths ---
# Strategies for hardened_server.policy.paths (tests/policy/test_paths*.py): API path texts that
# mix ordinary names with the bypass segments of research fuzz_and_style §3.1, re-encodings of a
# path, sibling-prefix names (CVE-2026-35397), and a pure fake file system standing in for
# os.path.realpath. Owned by the path tests; names are prefixed ``path_``/``PATH_``.
import errno as _path_errno  # noqa: E402 - kept inside this section
import posixpath as _path_posixpath  # noqa: E402

#: Segments each of which defeated some path check somewhere (decoded or still encoded).
PATH_BYPASS_SEGMENTS: tuple[str, ...] = (
    "..", ".", "", "...", ". .", ".. ", "..;", "~", "~root",
    "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2e", "%252e%252e", "%252e", "..%2f", "%2f", "%2F",
    "..%5c", "..\\", "a\\b", "%5c", "%00", "..\x00", "a\x00b", "%c0%ae%c0%ae", "%e0%80%ae",
    "%ff%fe", "%zz", "%4", "%",
    "\uff0e\uff0e", "\u2024\u2024", "\u2025", "\uff0essh", "\u2024hidden", "\ufe52env",
    "a\u2215b", "a\uff0fb", "a\u2044b", "a\u29f8b", "\u2100", "\uff23\uff1a",
    "\u202e", "\x7f", "\x1b", "\u0085", "\ufeff",
    "secret.", "secret ", "C:", "c:x", "key.pem::$DATA", "d:$I30:$INDEX_ALLOCATION", "a:b",
    ".hidden", "%2ehidden", ".ssh", ".SSH", ".git", ".env", ".envrc", "id_rsa", "x.pem",
    "Y.KEY", "jpserver-1.json", "jupyter_cookie_secret", ".jupyter", ".config", ".local",
    "share", "jupyter", "runtime", ".ipython", "profile_default", "startup", "rootsecret",
)
#: Names that are symlinks in :func:`path_default_links` (innocent names leading elsewhere).
PATH_LINK_NAMES: tuple[str, ...] = (
    "notes", "docs", "etc", "up", "sib", "sib2", "loop", "self", "data", "abs", "sub", "back",
    "key", "out",
)
path_plain_names = st.from_regex(r"[A-Za-z0-9_-]{1,8}(?:\.ipynb|\.txt|\.py)?", fullmatch=True)
path_unicode_names = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6
)
path_segments = st.one_of(
    st.sampled_from(PATH_BYPASS_SEGMENTS),
    st.sampled_from(PATH_LINK_NAMES),
    path_plain_names,
    path_unicode_names,
)


@st.composite
def path_texts(draw: st.DrawFn, max_segments: int = 6) -> str:
    """An API path as a client might send it, already decoded: bypass and ordinary segments."""
    segs = draw(st.lists(path_segments, max_size=max_segments))
    lead = draw(st.sampled_from(["", "", "/", "//", "./"]))
    trail = draw(st.sampled_from(["", "", "/"]))
    return lead + "/".join(segs) + trail


@st.composite
def path_clean_texts(draw: st.DrawFn, max_segments: int = 5) -> str:
    """Paths made of ordinary names and symlink names only: most of them are allowed."""
    segs = draw(
        st.lists(path_plain_names | st.sampled_from(PATH_LINK_NAMES), max_size=max_segments)
    )
    return "/".join(segs)


@st.composite
def path_reencodings(draw: st.DrawFn, text: str) -> str:
    """``text`` percent-encoded once: every ``%`` and a random subset of the other characters
    (UTF-8 bytes, upper or lower hex), so that one strict decode gives ``text`` back."""
    flags = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    lower = draw(st.booleans())
    out = []
    for ch, flag in zip(text, flags, strict=True):
        if ch == "%" or flag:
            enc = "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
            out.append(enc.lower() if lower else enc)
        else:
            out.append(ch)
    return "".join(out)


#: Absolute roots such as ``/srv/root`` or ``/home/u/nb`` (plain names, no symlinks).
path_roots = st.lists(
    st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True), min_size=1, max_size=3
).map(lambda parts: "/" + "/".join(parts))
#: What can follow a root's name to make a *sibling* directory (``root`` + ``secret``).
path_sibling_suffixes = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="/\\"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", ".."))


def path_default_links(root: str) -> dict[str, str]:
    """The symlinks of the fake file system below ``root`` (absolute link path -> target)."""
    parent = _path_posixpath.dirname(root)
    name = _path_posixpath.basename(root)
    return {
        f"{root}/notes": ".ssh",  # innocent name into a denied hidden directory
        f"{root}/docs": ".hidden",  # innocent name into a hidden (not denied) directory
        f"{root}/etc": "/etc",  # out of the root, absolute
        f"{root}/up": "..",  # out of the root, relative
        f"{root}/out": f"{parent}/outside",
        f"{root}/sib": f"{parent}/{name}secret",  # sibling prefix, CVE-2026-35397
        f"{root}/sib2": f"../{name}secret/x",
        f"{root}/loop": "loop",  # ELOOP
        f"{root}/self": ".",  # the root under another name
        f"{root}/data": "sub",  # harmless, inside
        f"{root}/abs": f"{root}/sub",  # harmless, absolute
        f"{root}/sub/back": "../.ssh/id_rsa",
        f"{root}/sub/key": "../keys/server.pem",
        f"{root}/.hidden/out": "/home/user/.aws",
    }


#: Symlink targets that matter, ``{root}``/``{name}`` filled in: into hidden or denied
#: directories, out of the root (absolute, relative, sibling prefix), the root itself, inside.
PATH_LINK_TARGETS: tuple[str, ...] = (
    ".ssh", ".ssh/id_rsa", ".hidden", ".hidden/y", ".git/config", "a/b/../../.aws", "..", ".",
    "../outside", "../../..", "/etc", "/", "../{name}secret", "{root}secret/x", "{root}",
    "{root}/.jupyter", "{root}/sub", "sub", "sub/..", "loop", "keys/server.pem", "~", "notes",
)


@st.composite
def path_link_maps(draw: st.DrawFn, root: str, max_links: int = 4) -> dict[str, str]:
    """A random set of symlinks below ``root`` (for :class:`PathFakeFS`): innocent or ordinary
    names, at the top or one or two levels down, pointing at :data:`PATH_LINK_TARGETS`."""
    name = _path_posixpath.basename(root)
    links: dict[str, str] = {}
    for _ in range(draw(st.integers(0, max_links))):
        where = draw(st.sampled_from(["", "sub", "sub/deeper", "docs", ".hidden"]))
        link_name = draw(st.sampled_from(PATH_LINK_NAMES) | path_plain_names)
        link = _path_posixpath.join(root, where, link_name)
        target = draw(st.sampled_from(PATH_LINK_TARGETS)).format(root=root, name=name)
        links[link] = target
    return links


class PathFakeFS:
    """A pure ``os.path.realpath`` (POSIX, non-strict) over a map of symlinks.

    ``links`` maps absolute link paths to targets (relative targets are relative to the link's
    directory). Raises ``OSError(ELOOP)`` after 40 hops, like the kernel.
    """

    def __init__(self, links: dict[str, str]) -> None:
        self.links = dict(links)

    def __call__(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("absolute paths only")
        pending = [p for p in path.split("/") if p][::-1]
        cur = "/"
        hops = 0
        while pending:
            comp = pending.pop()
            if comp == ".":
                continue
            if comp == "..":
                cur = _path_posixpath.dirname(cur)
                continue
            nxt = _path_posixpath.join(cur, comp)
            target = self.links.get(nxt)
            if target is None:
                cur = nxt
                continue
            hops += 1
            if hops > 40:
                raise OSError(_path_errno.ELOOP, "too many levels of symbolic links")
            if target.startswith("/"):
                cur = "/"
            pending.extend(reversed([p for p in target.split("/") if p]))
        return cur
# --- end paths ---
