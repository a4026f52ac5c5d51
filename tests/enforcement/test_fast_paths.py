"""The per-request shortcuts of the enforcement layer answer exactly what the slow path does.

Each cache or shortcut added for speed (BENCHMARKS.md, findings) is pinned here against the
computation it replaces: the root resolver against ``os.path.realpath``, the normalisation
caches against the uncached functions, and the listing against deciding every entry once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from traitlets.config import Config, Configurable

from hardened_server.enforcement import pathpolicy
from hardened_server.enforcement.contents import HardenedContentsManager
from hardened_server.enforcement.pathpolicy import RootResolver
from hardened_server.policy import hosts, origins
from hardened_server.policy.loader import load_policy
from hardened_server.policy.paths import PathOp, PathPolicy


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A root with plain files, nested directories and every kind of symlink."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    root = tmp_path / "real-root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "c.txt").write_text("c")
    (root / ".ssh").mkdir()
    (root / ".ssh" / "id_rsa").write_text("k")
    (root / "notes.md").write_text("n")
    (root / "out").symlink_to(outside)
    (root / "a" / "up").symlink_to(root / "a" / "b")
    (root / "linkssh").symlink_to(root / ".ssh")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "loop").symlink_to(root / "loop")
    link_root = tmp_path / "link-root"
    link_root.symlink_to(root)
    return link_root


CANDIDATES = [
    "",
    "notes.md",
    "a",
    "a/b",
    "a/b/c.txt",
    "a/up/c.txt",
    "out/secret.txt",
    "linkssh/id_rsa",
    ".ssh/id_rsa",
    "dangling",
    "loop",
    "missing/deeper/file.txt",
    "a/b/missing.txt",
]


def test_root_resolver_answers_what_realpath_answers(tree: Path) -> None:
    root = str(tree)
    resolve = RootResolver(root)
    for rel in CANDIDATES:
        path = os.path.join(root, rel) if rel else root
        assert resolve(path) == os.path.realpath(path), rel
    # Paths outside the root (not used by the policy, but answered all the same).
    for other in ("/", str(tree.parent), str(tree.parent / "outside" / "secret.txt")):
        assert resolve(other) == os.path.realpath(other)


def test_resolve_with_root_is_the_two_calls(tree: Path, tmp_path: Path) -> None:
    """What decide asks for (#22): the root and the path resolved with one check of the root,
    answering what realpath answers, for a swapped root too."""
    root = str(tree)
    resolve = RootResolver(root)
    for rel in CANDIDATES:
        path = os.path.join(root, rel) if rel else root
        assert resolve.resolve_with_root(root, path) == (
            os.path.realpath(root),
            os.path.realpath(path),
        ), rel
    other = tmp_path / "swapped"
    other.mkdir()
    tree.unlink()
    tree.symlink_to(other)
    path = os.path.join(root, "notes.md")
    assert resolve.resolve_with_root(root, path) == (str(other), str(other / "notes.md"))
    assert resolve.resolve_with_root("/", path) == ("/", os.path.realpath(path))


def test_a_decision_stats_the_root_once(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One decision below the root: one stat of the root (it was two), one lstat per
    component."""
    cm = _manager(tree)
    cm.decide("a/b/c.txt", PathOp.READ)  # warm: the resolver is built
    calls: list[tuple[str, str]] = []
    real_stat, real_lstat = os.stat, os.lstat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(("stat", str(path)))
        return real_stat(path, *args, **kwargs)

    def counting_lstat(path: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(("lstat", str(path)))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    monkeypatch.setattr(os, "lstat", counting_lstat)
    assert cm.decide("a/b/c.txt", PathOp.READ).allowed
    monkeypatch.undo()
    root = os.path.abspath(str(tree))
    assert calls == [
        ("stat", root),
        ("lstat", os.path.join(root, "a")),
        ("lstat", os.path.join(root, "a", "b")),
        ("lstat", os.path.join(root, "a", "b", "c.txt")),
    ]


def test_root_resolver_follows_a_swapped_root(tree: Path, tmp_path: Path) -> None:
    """The root's real path is cached, but re-resolved as soon as the root leads elsewhere."""
    root = str(tree)
    resolve = RootResolver(root)
    assert resolve(os.path.join(root, "notes.md")) == str(tmp_path / "real-root" / "notes.md")
    other = tmp_path / "other-root"
    other.mkdir()
    (other / "notes.md").symlink_to(tmp_path / "outside" / "secret.txt")
    tree.unlink()
    tree.symlink_to(other)
    assert resolve(root) == str(other)
    path = os.path.join(root, "notes.md")
    assert resolve(path) == os.path.realpath(path) == str(tmp_path / "outside" / "secret.txt")


def _manager(root: Path) -> HardenedContentsManager:
    cfg = Config()
    cfg.HardenedContentsManager.root_dir = str(root)
    return HardenedContentsManager(config=cfg)


def test_manager_decisions_unchanged_by_the_resolver(tree: Path) -> None:
    """Every operation on every candidate: the manager's decision is the one PathPolicy makes
    with os.path.realpath."""
    cm = _manager(tree)
    policy = cm.path_policy
    root = os.path.abspath(str(tree))
    for rel in CANDIDATES:
        for op in PathOp:
            fast = cm.decide(rel, op)
            slow = policy.decide(rel, op, root=root, resolve=os.path.realpath, decoded=True)
            assert fast == slow, (rel, op)


def test_manager_follows_root_dir_changes(tree: Path, tmp_path: Path) -> None:
    cm = _manager(tree)
    assert cm.decide("notes.md", PathOp.READ)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cm.root_dir = str(elsewhere)
    assert cm._root == str(elsewhere)
    decision = cm.decide("x.txt", PathOp.CREATE)
    assert decision
    assert decision.path == "x.txt"


def test_listing_decides_each_entry_once(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cm = _manager(tree)
    calls: list[tuple[str, PathOp]] = []
    decide = PathPolicy.decide

    def counting(self: Any, path: str, op: PathOp, **kwargs: Any) -> Any:
        calls.append((path.strip("/"), op))
        return decide(self, path, op, **kwargs)

    monkeypatch.setattr(PathPolicy, "decide", counting)
    model = asyncio.run(cm.get("a", content=True))
    names = sorted(entry["name"] for entry in model["content"])
    assert names == ["b", "up"]
    per_entry = [c for c in calls if c[0] in ("a/b", "a/up")]
    assert sorted(p for p, _ in per_entry) == ["a/b", "a/up"], calls
    # ... and the listing still leaves out what the policy refuses (hidden, links out of the
    # root or into .ssh, the loop); a dangling link inside the root is listed, as before.
    root_listing = asyncio.run(cm.get("", content=True))
    shown = {entry["name"] for entry in root_listing["content"]}
    assert shown == {"a", "notes.md", "dangling"}


def test_path_policy_follows_a_new_paths_section(tree: Path) -> None:
    cm = _manager(tree)
    first = cm.path_policy
    assert cm.path_policy is first

    paths = dataclasses.replace(cm.paths_policy, deny=(*cm.paths_policy.deny, "notes.md"))
    assert pathpolicy.path_policy_for(paths).deny == paths.deny
    assert pathpolicy.path_policy_for(cm.paths_policy) is first


class Sneaky(str):
    """Compares equal to a cached value but is another type: never served from the cache."""


@pytest.mark.parametrize(
    "value",
    ["http://127.0.0.1:8888", "https://Trusted.Example.com:443", "http://[::1]:8888", "null",
     "https://evil.com\\@trusted.example.com", "http://a:99999", "x" * 300],
)  # fmt: skip
def test_origin_cache_is_the_function(value: str) -> None:
    origins._normalize_origin_cached.cache_clear()
    first = origins.normalize_origin(value)
    assert first == origins._normalize_origin_uncached(value)
    assert origins.normalize_origin(value) == first  # from the cache
    assert origins.normalize_origin(Sneaky(value)) == first


@pytest.mark.parametrize(
    "value",
    ["127.0.0.1:8888", "LOCALHOST", "localhost.", "[::1]:8888", "evil.example", "127.1",
     "localhost:8888@evil", "", "x" * 400],
)  # fmt: skip
def test_host_cache_is_the_function(value: str) -> None:
    hosts._split_host_header_cached.cache_clear()
    first = hosts.split_host_header(value)
    assert first == hosts._split_host_header(value)
    assert hosts.split_host_header(value) == first
    assert bool(hosts.is_allowed_host(value, hosts.compile_host_allowlist([]))) == (
        first is not None and (first[0] in hosts.LOOPBACK_NAMES or hosts.is_loopback_host(first[0]))
    )


def test_caches_are_bounded() -> None:
    for cached in (
        origins._normalize_origin_cached,
        origins._normalize_host_cached,
        hosts._split_host_header_cached,
    ):
        assert cached.cache_info().maxsize == origins.CACHE_SIZE
    origins._normalize_origin_cached.cache_clear()
    for i in range(origins.CACHE_SIZE + 100):
        origins.normalize_origin(f"http://h{i}.example")
    assert origins._normalize_origin_cached.cache_info().currsize == origins.CACHE_SIZE
    # A value longer than CACHEABLE_LENGTH is answered, not cached.
    origins._normalize_origin_cached.cache_clear()
    long_origin = "http://" + ".".join(c * 60 for c in "abcd") + "." + "e" * 9  # 253-char host
    assert len(long_origin) > origins.CACHEABLE_LENGTH
    assert origins.normalize_origin(long_origin) == long_origin
    assert origins._normalize_origin_cached.cache_info().currsize == 0


@pytest.mark.parametrize(
    "raw",
    ["a/b.ipynb", "/a//./b/", "", "../x", "a/%2e%2e/b", "%zz", "C:x", ".ssh/id_rsa",
     "\uff0e\uff0e/x", "a\x00b", "x" * 600],
)  # fmt: skip
@pytest.mark.parametrize("decoded", [True, False])
def test_canonicalize_cache_is_the_function(raw: str, decoded: bool) -> None:
    from hardened_server.policy import paths

    paths._canonicalize_cached.cache_clear()
    first = paths.canonicalize(raw, decoded=decoded)
    assert first == paths._canonicalize(raw, decoded=decoded)
    assert paths.canonicalize(raw, decoded=decoded) == first
    assert paths.canonicalize(Sneaky(raw), decoded=decoded) == first
    assert paths._canonicalize_cached.cache_info().maxsize == paths._CACHE_SIZE


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Host": "x"},
        {"x-forwarded-for": "1.2.3.4"},
        {"X-FORWARDED-PROTO": "https"},
        {"Forwarded": "for=1.2.3.4"},
        {"X-Real-IP": "x" * 10_000},  # over the length limit: not a value
        {"X-Scheme": 5},  # not text: not a value
        {"Accept": "*/*", "x-forwarded-host": "evil"},
        {1: "1.2.3.4"},  # a key that is not text: skipped by the walk
        {1: "1.2.3.4", "X-Forwarded-For": "1.2.3.4"},
    ],
)
def test_forwarding_header_scan_is_the_seven_lookups(headers: dict[str, Any]) -> None:
    from tornado.httputil import HTTPHeaders

    from hardened_server.policy import proxies

    def slow(h: Any) -> bool:
        return any(proxies._get(h, name) is not None for name in proxies.FORWARDING_HEADERS)

    assert proxies._forwarding_sent(headers) == slow(headers)
    tornado_headers = HTTPHeaders()
    for name, value in headers.items():
        if isinstance(name, str) and isinstance(value, str) and len(value) < 1000:
            tornado_headers.add(name, value)
    assert proxies._forwarding_sent(tornado_headers) == slow(tornado_headers)


def test_peer_cache_parses_like_the_parser() -> None:
    from hardened_server.policy import proxies

    for text in ("127.0.0.1", "::1", "::ffff:10.0.0.1", "1.2.3.4:80", "[::1]:80", "x", ""):
        parsed = proxies._parse_ip(text)
        assert proxies._peer(text) == (parsed, str(parsed) if parsed is not None else text)
    assert proxies._peer.cache_info().maxsize == 1024


class _PolicyParent(Configurable):
    """Stands in for the server app: the manager reads ``.policy`` (here with ``[paths]``
    overridden)."""

    def __init__(self, **paths: Any) -> None:
        super().__init__()
        policy = load_policy()
        self.policy = dataclasses.replace(policy, paths=dataclasses.replace(policy.paths, **paths))


@pytest.fixture
def listing_tree(tmp_path: Path) -> Path:
    """One folder with every kind of entry a listing meets."""
    root = tmp_path / "root"
    folder = root / "work"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "inner.txt").write_text("i")
    (folder / "__pycache__").mkdir()
    (folder / ".hidden-dir").mkdir()
    (folder / ".ssh").mkdir()
    (folder / ".ssh" / "id_rsa").write_text("k")
    for name, text in [
        ("notes.md", "# n\n"),
        ("analysis.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
        ("data.csv", "a,b\n"),
        ("Makefile", "all:\n"),
        ("blob.unknownext", "x"),
        (".env", "SECRET=1"),
        (".hidden.txt", "h"),
        ("id.pem", "-----"),
    ]:
        (folder / name).write_text(text)
    (folder / "readonly.txt").write_text("r")
    (folder / "readonly.txt").chmod(0o444)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_text("o")
    (folder / "link-file.md").symlink_to(folder / "notes.md")
    (folder / "link-dir").symlink_to(folder / "sub")
    (folder / "link-ssh").symlink_to(folder / ".ssh")
    (folder / "link-out").symlink_to(outside)
    (folder / "dangling.txt").symlink_to(folder / "nowhere")
    (folder / "loop").symlink_to(folder / "loop")
    os.mkfifo(folder / "fifo")
    (folder / "link-fifo").symlink_to(folder / "fifo")
    return root


@pytest.mark.parametrize("allow_hidden", [False, True], ids=["default", "allow_hidden"])
def test_listing_entries_equal_stock_get_of_each_entry(
    listing_tree: Path, allow_hidden: bool
) -> None:
    """The listing is built from one scan (#22), not from a ``get`` per entry: every entry
    must still be exactly the model stock lists (``AsyncLargeFileManager`` on the same tree),
    and the entries left out exactly those stock leaves out plus those the policy refuses
    (hidden, denied, a symlink leading outside or into ``.ssh``)."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    cfg = Config()
    cfg.ContentsManager.allow_hidden = allow_hidden
    stock = AsyncLargeFileManager(config=cfg, root_dir=str(listing_tree))
    ours = HardenedContentsManager(
        parent=_PolicyParent(allow_hidden=allow_hidden), root_dir=str(listing_tree)
    )
    assert ours.allow_hidden is allow_hidden
    stock_entries = asyncio.run(stock.get("work", content=True))["content"]
    listed = asyncio.run(ours.get("work", content=True))["content"]

    policy = ours.path_policy
    root = os.path.abspath(str(listing_tree))
    expected = {
        e["name"]: e
        for e in stock_entries
        if policy.decide(e["path"], PathOp.LIST, root=root, resolve=os.path.realpath)
    }
    assert {e["name"]: e for e in listed} == expected
    assert [e["name"] for e in listed] == sorted(expected)
    # the cases that matter are really in the tree, on both sides of the line
    names = set(expected)
    assert {"sub", "link-dir", "link-file.md", "analysis.ipynb", "readonly.txt"} <= names
    assert {"dangling.txt", "link-fifo"} <= names  # stock lists these as files
    assert not names & {"link-ssh", "link-out", ".ssh", ".env", "id.pem", "fifo", "__pycache__"}
    assert (".hidden.txt" in names) is allow_hidden
    assert {e["name"] for e in stock_entries} - names  # the policy did refuse some


# --- #22: the cookie GET's chain (gate, request id, path split) -------------------------------


def test_request_ids_are_uuid4_hex_without_the_uuid_object() -> None:
    """``new_request_id`` replaced ``uuid.uuid4().hex``: the same form (32 hex digits, version 4,
    RFC 4122 variant), fresh every time."""
    import uuid

    from hardened_server.enforcement.context import new_request_id

    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for rid in ids:
        parsed = uuid.UUID(hex=rid)
        assert parsed.hex == rid
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    "name",
    ["Origin", "origin", "Sec-Fetch-Site", "Authorization", "Content-Length", "X-Multi",
     "x-multi", "Sec-Websocket-Origin"],
)  # fmt: skip
def test_gate_header_lookup_is_headers_get(name: str) -> None:
    """``gate.header`` (no KeyError for an absent name) answers what ``HTTPHeaders.get`` does,
    multi-valued fields included."""
    from tornado.httputil import HTTPHeaders

    from hardened_server.enforcement import gate

    headers = HTTPHeaders()
    headers.add("Origin", "http://127.0.0.1:8888")
    headers.add("Sec-Fetch-Site", "same-origin")
    headers.add("X-Multi", "a")
    headers.add("X-Multi", "b")
    assert gate.header(headers, name) == headers.get(name)


def test_peer_own_header_keys_are_tornados_spelling() -> None:
    """The set ``resolve_client`` tests the request's names against is tornado's normalised
    spelling of the three names, so the set test is the three ``in`` tests it replaced."""
    from tornado.httputil import HTTPHeaders, _normalize_header

    from hardened_server.enforcement import gate

    assert {_normalize_header(n) for n in gate._PEER_OWN_HEADERS} == gate._PEER_OWN_KEYS
    for sent in ("x-forwarded-proto", "X-SCHEME", "x-Forwarded-host", "X-Forwarded-For", "Host"):
        headers = HTTPHeaders()
        headers.add(sent, "v")
        assert (not gate._PEER_OWN_KEYS.isdisjoint(headers)) == any(
            name in headers for name in gate._PEER_OWN_HEADERS
        ), sent


_SEGMENTS = st.sampled_from(["", ".", "..", "a", "b", "rootx", "r.d", "..a", "~"])


@given(
    root=st.lists(_SEGMENTS, max_size=4).map(lambda s: "/" + "/".join(s)),
    lead=st.sampled_from(["", "/", "//"]),
    rest=st.lists(_SEGMENTS, max_size=5),
)
def test_split_below_is_split_abs(root: str, lead: str, rest: list[str]) -> None:
    """``decide``'s split of a resolved path below the resolved root (#22) is
    ``_split_abs``'s, whatever the spelling of either: ``.``/``..``/empty names, trailing and
    doubled separators, a sibling that shares the root's prefix as a string."""
    from hardened_server.policy import paths

    root_split = paths._split_abs(root)
    assert root_split is not None
    for path in (root + lead + "/".join(rest), root + "x/" + "/".join(rest)):
        if not path.startswith("/"):
            continue
        assert paths._split_below(root, root_split, path) == paths._split_abs(path), path


@pytest.mark.parametrize("op", list(PathOp))
def test_decide_takes_an_op_by_value(tree: Path, op: PathOp) -> None:
    """``decide("x", "read")`` is ``decide("x", PathOp.READ)`` (the str is looked up, not passed
    to the Enum), and a wrong op is still a ValueError."""
    policy = PathPolicy.from_paths_policy(load_policy().paths)
    root = str(tree)
    for rel in CANDIDATES:
        assert policy.decide(rel, op.value, root=root) == policy.decide(rel, op, root=root)
    for wrong in ("READ", "nope", 5, None):
        with pytest.raises(ValueError, match="is not a valid PathOp"):
            policy.decide("notes.md", wrong, root=root)  # type: ignore[arg-type]


@given(
    path=st.lists(
        st.sampled_from(["a", ".ssh", "id_rsa", ".env", "x.pem", ".git", "notes.md", "K.PEM"]),
        max_size=4,
    ).map("/".join)
)
def test_path_rules_cache_is_the_rules(path: str) -> None:
    """The per-policy cache of the hidden/deny/protected rules (#22) answers what the rules
    answer, the first time and from the cache."""
    for policy in (
        PathPolicy.from_paths_policy(load_policy().paths),
        PathPolicy(allow_hidden=True, deny=("**/*.pem",), allow=(".env",)),
    ):
        first = policy._rules(path)
        assert first == policy._rules_uncached(path)
        assert policy._rules(path) == first
        assert policy._rules(Sneaky(path)) == first


def test_path_rules_cache_is_bounded_and_per_policy() -> None:
    from hardened_server.policy import paths

    policy = PathPolicy.from_paths_policy(load_policy().paths)
    for i in range(paths._CACHE_SIZE + 10):
        policy._rules(f"d/f{i}")
    assert len(policy._rules_cache) <= paths._CACHE_SIZE
    assert policy._rules("x" * 600) is None
    assert "x" * 600 not in policy._rules_cache
    other = PathPolicy(allow_hidden=True)
    assert policy._rules(".hidden") is not None
    assert other._rules(".hidden") is None  # not the first policy's answer


@pytest.mark.parametrize(
    ("peer", "headers"),
    [
        ("127.0.0.1", {"Host": "127.0.0.1:8888"}),
        ("127.0.0.1", {"Host": "127.0.0.1:8888", "X-Forwarded-For": "6.6.6.6"}),
        ("::ffff:10.0.0.1", {"Host": "LOCALHOST:8888"}),
        ("10.0.0.1", {}),
        ("10.0.0.1", {"Host": "a" * 300}),
        ("not an address", {"Host": "x"}),
    ],
)
def test_direct_client_cache_is_the_answer(peer: str, headers: dict[str, str]) -> None:
    """A peer that is its own client (#22): the cached answer equals the one built fresh."""
    from hardened_server.policy import proxies

    trusted = proxies.compile_trusted([])
    for scheme in ("http", "https"):
        cached = proxies.client_address(peer, headers, trusted, scheme=scheme)
        proxies._direct.cache_clear()
        fresh = proxies.client_address(peer, headers, trusted, scheme=scheme)
        own_host = proxies._host(proxies._get(headers, "Host"))
        assert cached == fresh
        assert fresh == proxies.ClientAddress(
            str(proxies._peer(peer)[1]), scheme, own_host, 0, proxies._forwarding_sent(headers)
        )
    assert proxies._direct.cache_info().maxsize == 1024


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [("Host", "127.0.0.1:8888")],
        [("Host", "h"), ("Cookie", "a=b"), ("Accept", "*/*")],
        [("Host", "h"), ("X-Multi", "a"), ("X-Multi", "bb"), ("Accept", "")],  # repeated field
        [("set-cookie", "a=b"), ("Set-Cookie", "c=d")],
    ],
)
def test_header_bytes_is_the_sum_over_get_all(fields: list[tuple[str, str]]) -> None:
    """``gate.header_bytes``'s shortcut over tornado's field dict (#22) is the sum over
    ``get_all``, repeated fields included."""
    from tornado.httputil import HTTPHeaders

    from hardened_server.enforcement import gate

    headers = HTTPHeaders()
    for name, value in fields:
        headers.add(name, value)
    expected = sum(len(name) + len(value) + 4 for name, value in headers.get_all())
    assert gate.header_bytes(headers) == expected
