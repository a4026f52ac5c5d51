"""Microbenchmarks of the pure decisions one request goes through (pytest-benchmark).

Not part of ``make test``: pytest's ``testpaths = ["tests"]`` never collects ``bench/``. Run with
``make bench`` (through ``bench/run.py``) or on their own::

    .venv/bin/python -m pytest bench/test_micro.py --benchmark-only

Inputs are what a typical authenticated JupyterLab request carries on loopback. Policies are
compiled once, outside the timed call, exactly as the server compiles them when the policy
loads: what is timed is the per-request work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hardened_server.enforcement.contents import RootResolver
from hardened_server.enforcement.runtime import compile_policy
from hardened_server.policy.cors import compile_cors, is_allowed_origin
from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.fetchmeta import cross_site_decision
from hardened_server.policy.hosts import compile_host_allowlist, is_allowed_host
from hardened_server.policy.loader import load_policy
from hardened_server.policy.origins import normalize_origin
from hardened_server.policy.scopemap import scope_allows

try:  # being written by another engineer: measured when present
    from hardened_server.policy import paths as _paths
except ImportError:  # pragma: no cover - depends on the tree
    _paths = None
try:
    from hardened_server.policy import proxies as _proxies
except ImportError:  # pragma: no cover
    _proxies = None
try:  # the tornado-facing glue; its API moves faster than the pure functions'
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    from hardened_server.enforcement import gate as _gate
    from hardened_server.enforcement.runtime import PolicyRuntime
except ImportError:  # pragma: no cover
    _gate = None

HOST = "127.0.0.1:8888"
#: What Chromium sends with a same-origin fetch() from JupyterLab (cookie session).
BROWSER_HEADERS = (
    ("Host", HOST),
    ("Connection", "keep-alive"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
    ("Accept", "*/*"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-Mode", "cors"),
    ("Sec-Fetch-Dest", "empty"),
    ("Referer", "http://127.0.0.1:8888/lab"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Accept-Language", "en-US,en;q=0.9"),
    (
        "Cookie",
        "_xsrf=2|1a2b3c4d|00112233445566778899aabbccddeeff|1760000000; "
        "username-127-0-0-1-8888=2|1:0|10:1760000000|23:username-127-0-0-1-8888|xyz",
    ),
    ("X-XSRFToken", "2|1a2b3c4d|00112233445566778899aabbccddeeff|1760000000"),
)
OWN = "http://127.0.0.1:8888"
LISTED = "https://trusted.example.com"
POLICY = load_policy()
COMPILED = compile_policy(POLICY, "/")
OWN_ORIGINS = frozenset({OWN, "http://localhost:8888"})
CORS = compile_cors([LISTED])
HOSTS = COMPILED.hosts
PUBLIC_HOSTS = compile_host_allowlist(["jupyter.example.org", "notebooks.example.org"])
API_KINDS = frozenset({"api"})
#: The contents route as the server registers it, and the handler that serves it.
CONTENTS_PATTERN = "/api/contents(?P<path>(?:(?:/[^/]+)+|/?))$"
CONTENTS_HANDLER = "jupyter_server.services.contents.handlers.ContentsHandler"
CONTENTS_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
#: What the start-up token's user carries (tokens.owner_scopes, default admin) and what a
#: scoped API token for the contents API carries.
OWNER_SCOPES = frozenset({"admin"})
READER_SCOPES = frozenset({"contents:read"})


def _label(benchmark: Any, label: str, *, chain: bool = False) -> None:
    benchmark.extra_info["label"] = label
    if chain:
        benchmark.extra_info["chain"] = True


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real directory (the path decision resolves symlinks with os.path.realpath)."""
    r = tmp_path_factory.mktemp("root")
    (r / "dir200").mkdir()
    for i in range(200):
        (r / "dir200" / f"notes-{i:03d}.md").write_text("x")
    (r / "save-1mib.ipynb").write_text("{}")
    return r


@pytest.fixture(scope="module")
def path_policy() -> Any:
    if _paths is None:
        pytest.skip("path decision (hardened_server.policy.paths): not built yet")
    return _paths.PathPolicy.from_paths_policy(POLICY.paths)


# -- one decision at a time --------------------------------------------------------------------


def test_host_loopback(benchmark: Any) -> None:
    _label(benchmark, "Host: `127.0.0.1:8888` (loopback)")
    assert benchmark(is_allowed_host, HOST, HOSTS)


def test_host_public_name(benchmark: Any) -> None:
    _label(benchmark, "Host: `jupyter.example.org` (listed public name)")
    assert benchmark(is_allowed_host, "jupyter.example.org", PUBLIC_HOSTS)


def test_origin_normalize(benchmark: Any) -> None:
    _label(benchmark, "origin: normalize_origin of own origin")
    assert benchmark(normalize_origin, OWN) == OWN


def test_origin_cors_listed(benchmark: Any) -> None:
    _label(benchmark, "origin: is_allowed_origin (listed)")
    assert benchmark(is_allowed_origin, LISTED, CORS)


def test_origin_cors_prefix_attack(benchmark: Any) -> None:
    _label(benchmark, "origin: is_allowed_origin (JS-10 suffix attack, refused)")
    assert not benchmark(is_allowed_origin, LISTED + ".evil.com", CORS)


def test_fetchmeta_same_origin(benchmark: Any) -> None:
    _label(benchmark, "fetch metadata: same-origin GET /api")

    def decide() -> Any:
        return cross_site_decision(
            "GET", RouteClass.API, "same-origin", "cors", "empty", None, None,
            own_origins=OWN_ORIGINS,
        )  # fmt: skip

    assert benchmark(decide)


def test_fetchmeta_no_metadata_put(benchmark: Any) -> None:
    _label(benchmark, "fetch metadata: PUT without Sec-Fetch-*, Origin decides")

    def decide() -> Any:
        return cross_site_decision(
            "PUT", RouteClass.API, None, None, None, OWN, None, own_origins=OWN_ORIGINS
        )

    assert benchmark(decide)


def test_path_read(benchmark: Any, path_policy: Any, root: Path) -> None:
    _label(
        benchmark, "path: read `dir200/notes-000.md`, os.path.realpath of root and path (before)"
    )
    decision = benchmark(
        path_policy.decide, "dir200/notes-000.md", "read", root=str(root),
        resolve=os.path.realpath,
    )  # fmt: skip
    assert decision


def test_path_read_pure(benchmark: Any, path_policy: Any, root: Path) -> None:
    _label(benchmark, "path: read, resolver injected (pure part only)")

    def same(p: str) -> str:
        return p

    assert benchmark(path_policy.decide, "dir200/notes-000.md", "read", root=str(root),
                     resolve=same)  # fmt: skip


def test_path_hidden_refused(benchmark: Any, path_policy: Any, root: Path) -> None:
    _label(benchmark, "path: `.ssh/id_rsa` refused")
    assert not benchmark(path_policy.decide, ".ssh/id_rsa", "read", root=str(root))


def test_path_listing_200(benchmark: Any, path_policy: Any, root: Path) -> None:
    """What a listing costs: every entry of a 200-entry directory decided once (per listing),
    with the resolver the contents manager uses."""
    _label(benchmark, "path: 200 entries of one listing (per listing, RootResolver)")
    names = [f"dir200/notes-{i:03d}.md" for i in range(200)]
    r = str(root)
    resolve = RootResolver(r)

    def listing() -> int:
        return sum(1 for n in names if path_policy.decide(n, "list", root=r, resolve=resolve))

    assert benchmark(listing) == 200


def test_path_read_root_resolver(benchmark: Any, path_policy: Any, root: Path) -> None:
    """The decision as the contents manager and /files make it: the root resolved once
    (checked with one stat), one lstat per component below it."""
    _label(benchmark, "path: read `dir200/notes-000.md`, RootResolver (as the server does)")
    r = str(root)
    resolve = RootResolver(r)
    assert benchmark(path_policy.decide, "dir200/notes-000.md", "read", root=r, resolve=resolve)


def _browser_headers() -> Any:
    headers = HTTPHeaders()
    for name, value in BROWSER_HEADERS:
        headers.add(name, value)
    return headers


def test_proxies_client_address(benchmark: Any) -> None:
    if _proxies is None or _gate is None:
        pytest.skip("client address (hardened_server.policy.proxies): not built yet")
    _label(benchmark, "client address: untrusted peer, 12 browser headers (proxies)")
    trusted = _proxies.compile_trusted([])
    headers = _browser_headers()
    assert benchmark(_proxies.client_address, "127.0.0.1", headers, trusted).ip == "127.0.0.1"


def test_csp_header_lookup(benchmark: Any) -> None:
    _label(benchmark, "CSP: compiled header set look-up (page)")
    headers = COMPILED.headers
    assert benchmark(headers.__getitem__, ("page", False))


def test_route_lookup(benchmark: Any) -> None:
    _label(benchmark, "route: compiled route info look-up")
    assert benchmark(COMPILED.route, CONTENTS_PATTERN, API_KINDS)


def test_scope_check(benchmark: Any) -> None:
    """The route map's check in prepare(): the route's compiled requirements (looked up once
    per handler instance) and the subset test, for a token scoped to contents:read."""
    _label(benchmark, "scope: route requirements look-up and check (GET /api/contents)")

    def check() -> bool:
        route = COMPILED.route_scopes(CONTENTS_PATTERN, CONTENTS_HANDLER, CONTENTS_METHODS)
        return scope_allows(route, "GET", READER_SCOPES)

    assert benchmark(check)


# -- the chain, as one request sees it ---------------------------------------------------------


def _chain(path_policy: Any, root: str) -> Callable[[str, str, str | None, str], bool]:
    """One request's pure decisions, in the server's order, with the server's inputs:
    client address, route, Host, Origin (when sent), Fetch Metadata, path (the resolver the
    contents manager uses), scopes, and the CSP and header-set look-ups."""
    compiled = COMPILED
    own = OWN_ORIGINS
    decide_path: Callable[..., Any] | None = path_policy.decide if path_policy else None
    resolve = RootResolver(root)
    trusted = _proxies.compile_trusted([]) if _proxies else None
    headers = _browser_headers() if _gate is not None else dict(BROWSER_HEADERS)

    def request(method: str, path: str, origin: str | None, site: str) -> bool:
        if trusted is not None:  # who is asking (trusted proxies)
            _proxies.client_address("127.0.0.1", headers, trusted)
        route = compiled.route(CONTENTS_PATTERN, API_KINDS)
        if not is_allowed_host(HOST, compiled.hosts):
            return False
        if origin:  # check_origin: own or listed, on normalised forms
            norm = normalize_origin(origin)
            mine = normalize_origin(OWN)
            if norm != mine and norm not in compiled.cors_origins:
                return False
        if not cross_site_decision(
            method, route.route_class, site, "cors", "empty", origin, None, own_origins=own,
            cors_origins=compiled.cors_origins,
        ):  # fmt: skip
            return False
        if decide_path is not None and not decide_path(
            path, "write" if method == "PUT" else "read", root=root, resolve=resolve
        ):
            return False
        scopes = compiled.route_scopes(CONTENTS_PATTERN, CONTENTS_HANDLER, CONTENTS_METHODS)
        if not scope_allows(scopes, method, OWNER_SCOPES):
            return False
        if not compiled.csp[route.route_class]:
            return False
        return bool(compiled.headers[(route.route_class, False)])

    return request


@pytest.fixture(scope="module")
def maybe_path_policy() -> Any:
    return _paths.PathPolicy.from_paths_policy(POLICY.paths) if _paths else None


def test_chain_get(benchmark: Any, maybe_path_policy: Any, root: Path) -> None:
    what = "client address, route, Host, Fetch Metadata, path, scopes, CSP and headers"
    if maybe_path_policy is None:
        what += "; path NOT included (not built)"
    _label(benchmark, f"**full chain, GET /api/contents/<file>** ({what})", chain=True)
    request = _chain(maybe_path_policy, str(root))
    assert benchmark(request, "GET", "dir200/notes-000.md", None, "same-origin")


def test_chain_get_no_path(benchmark: Any, root: Path) -> None:
    """The chain of a route that names no file (``/api/status``, ``/api/kernels``, ``/lab``)."""
    _label(benchmark, "**full chain, GET without a path** (client address, route, Host, "
           "Fetch Metadata, scopes, CSP and headers)", chain=True)  # fmt: skip
    request = _chain(None, str(root))
    assert benchmark(request, "GET", "", None, "same-origin")


def test_chain_put(benchmark: Any, maybe_path_policy: Any, root: Path) -> None:
    what = "client address, route, Host, Origin, Fetch Metadata, path, scopes, CSP and headers"
    if maybe_path_policy is None:
        what += "; path NOT included (not built)"
    _label(benchmark, f"**full chain, PUT /api/contents/<nb> with Origin** ({what})", chain=True)
    request = _chain(maybe_path_policy, str(root))
    assert benchmark(request, "PUT", "save-1mib.ipynb", OWN, "same-origin")


# -- the enforcement layer's own calls, on a real tornado request object -------------------------


def _tornado_request(method: str, uri: str) -> Any:
    req = HTTPServerRequest(
        start_line=RequestStartLine(method, uri, "HTTP/1.1"), headers=_browser_headers()
    )
    req.remote_ip = "127.0.0.1"
    return req


def test_gate_request_object_only(benchmark: Any) -> None:
    """Baseline for the next one: building the tornado request object (subtract it)."""
    if _gate is None:
        pytest.skip("enforcement gate not importable")
    _label(benchmark, "baseline: build a tornado HTTPServerRequest (subtract from the next)")
    assert benchmark(_tornado_request, "GET", "/api/contents/dir200/notes-000.md")


def test_gate_chain_cookie_get(benchmark: Any, maybe_path_policy: Any, root: Path) -> None:
    """What the enforcement layer runs for a cookie-authenticated GET /api/contents/<file>,
    through its own functions: admit() (client address, Host, sizes, rate limit), the
    handler's Host check, the cross-site and origin decisions, the path decision, the header
    set. Identity (token/cookie check) and jupyter_server's own work are not included."""
    if _gate is None:
        pytest.skip("enforcement gate not importable")
    runtime = PolicyRuntime(POLICY, "/")
    r = str(root)
    resolve = RootResolver(r)
    try:
        probe = _tornado_request("GET", "/api/contents/x")
        _gate.admit(probe, runtime)
        _gate.request_cross_site_decision(probe, RouteClass.API, runtime.current)
        _gate.origin_decision(probe, runtime.current)
    except (AttributeError, TypeError) as exc:
        pytest.skip(f"enforcement gate API changed: {exc!r}")

    def request() -> bool:
        req = _tornado_request("GET", "/api/contents/dir200/notes-000.md")
        if _gate.admit(req, runtime) is not None:
            return False
        compiled = runtime.current
        route = compiled.route(CONTENTS_PATTERN, API_KINDS)
        if not is_allowed_host(req.host, compiled.hosts):  # the handler's check_host
            return False
        if not _gate.request_cross_site_decision(req, route.route_class, compiled):
            return False
        if not _gate.origin_decision(req, compiled):
            return False
        if maybe_path_policy is not None and not maybe_path_policy.decide(
            "dir200/notes-000.md", "read", root=r, resolve=resolve
        ):
            return False
        scopes = compiled.route_scopes(CONTENTS_PATTERN, CONTENTS_HANDLER, CONTENTS_METHODS)
        if not scope_allows(scopes, "GET", OWNER_SCOPES):
            return False
        return bool(compiled.headers[(route.route_class, False)])

    _label(benchmark, "**enforcement chain, cookie GET /api/contents/<file>** (gate.admit, "
           "check_host, cross-site, origin, path, scopes, headers; request object included)",
           chain=True)  # fmt: skip
    benchmark.extra_info["subtract"] = "test_gate_request_object_only"
    assert benchmark(request)
