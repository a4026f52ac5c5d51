"""Hypothesis properties of the request gate: origins, hosts, CORS, proxies, redirects, fetch
metadata; mutants that prove the properties have teeth; the atheris corpus replayed.

The invariants (research fuzz_and_style §3.4):

* origin and host normalisation is idempotent;
* the CORS allow-list matches an origin iff the normalised forms are equal (JS-10);
* no CORS header is ever reflected for an origin that is not listed;
* every ``next`` the redirect gate lets through, parsed the way a browser parses a relative URL
  against ``http://127.0.0.1:8888<base_url>``, stays in that origin under ``base_url``
  (JS-1, JS-2, JS-6, JS-12, JupyterHub CVE-2026-33709);
* the client IP never comes from a header sent by an untrusted peer;
* a cross-site request is refused unless it is a top-level navigation to a page or a CORS
  request from a listed origin, whatever its ``Sec-Fetch-Mode`` (CVE-2026-40864).

The browser oracle is ``browser_resolve`` in ``fuzz/fuzz_redirects.py`` (shared with the atheris
harness); it is itself checked here against known WHATWG results and, where ``node`` is
installed, against Node's WHATWG ``URL`` on a few thousand generated references.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import Phase, assume, example, find, given, settings
from hypothesis import strategies as st

from hardened_server.policy.cors import compile_cors, cors_headers, is_allowed_origin
from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.fetchmeta import cross_site_decision
from hardened_server.policy.hosts import compile_host_allowlist, is_allowed_host
from hardened_server.policy.origins import normalize_hostname, normalize_origin, referer_origin
from hardened_server.policy.proxies import (
    FORWARDING_HEADERS,
    client_address,
    compile_trusted,
)
from hardened_server.policy.redirects import safe_redirect
from tests.support.strategies import (
    GATE_REDIRECT_PAYLOADS,
    GATE_REDIRECT_TOKENS,
    GATE_TRUSTED_CIDRS,
    gate_any_origin,
    gate_base_urls,
    gate_confused_origins,
    gate_fetch_dests,
    gate_fetch_modes,
    gate_fetch_sites,
    gate_forward_entries,
    gate_host_headers,
    gate_hostnames,
    gate_ips,
    gate_is_trusted,
    gate_methods,
    gate_origin_spellings,
    gate_origins,
    gate_redirect_targets,
    gate_xff,
)

REPO = Path(__file__).resolve().parents[2]
SERVER_ORIGIN = "http://127.0.0.1:8888"
# For the mutant hunts: reproducible, no example database written into the tree, and no
# shrinking (the hunt only has to show that a counterexample exists).
HUNT = settings(
    max_examples=2000,
    database=None,
    derandomize=True,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
)


def _load_harness(name: str) -> ModuleType:
    """Import ``fuzz/<name>.py`` by file path (the fuzz directory is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_gate_harness_{name}", REPO / "fuzz" / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ_ORIGINS = _load_harness("fuzz_origins.py")
FUZZ_REDIRECTS = _load_harness("fuzz_redirects.py")
browser_resolve = FUZZ_REDIRECTS.browser_resolve


# ============================================================================================
# origins and CORS


@given(gate_any_origin)
@example("https://TRUSTED.example.com:443")
@example("http://localhost:\u00b2")
def test_origin_normalisation_is_idempotent(origin: str) -> None:
    norm = normalize_origin(origin)
    if norm is not None:
        assert normalize_origin(norm) == norm
        assert norm.isascii()
    ref = referer_origin(origin)
    if ref is not None:
        assert normalize_origin(ref) == ref


@given(gate_host_headers | st.text(max_size=30))
@example("b\u00fccher.example")
def test_hostname_normalisation_is_idempotent(host: str) -> None:
    norm = normalize_hostname(host)
    if norm is not None:
        assert normalize_hostname(norm) == norm


def _candidates_for(listed: str) -> st.SearchStrategy[tuple[str, str]]:
    return st.tuples(
        st.just(listed),
        st.one_of(gate_origin_spellings(listed), gate_confused_origins(listed), gate_any_origin),
    )


origin_pairs = gate_origins.flatmap(_candidates_for)


def _allow_list_mismatch(pair: tuple[str, str], matcher: Callable[[str, str], bool]) -> bool:
    """True when ``matcher`` disagrees with "normalised forms are equal"."""
    listed, candidate = pair
    norm = normalize_origin(candidate)
    expected = norm is not None and norm == normalize_origin(listed)
    return matcher(candidate, listed) != expected


def _real_matcher(candidate: str, listed: str) -> bool:
    return is_allowed_origin(candidate, compile_cors([listed])).allowed


@given(origin_pairs)
@example(("https://trusted.example.com", "https://TRUSTED.example.com:443"))
@example(("https://trusted.example.com", "https://trusted.example.com.evil.com"))
@example(("https://trusted.example.com", "https://trusted.example.comevil.com"))
@example(("https://trusted.example.com", "https://evil.com\\@trusted.example.com"))
@example(("https://trusted.example.com", "null"))
def test_allow_list_matches_iff_normalised_forms_are_equal(pair: tuple[str, str]) -> None:
    assert not _allow_list_mismatch(pair, _real_matcher)


@given(gate_origins.flatmap(lambda o: st.tuples(st.just(o), gate_origin_spellings(o))))
def test_every_spelling_of_a_listed_origin_is_allowed(pair: tuple[str, str]) -> None:
    listed, spelling = pair
    assert is_allowed_origin(spelling, compile_cors([listed])).allowed


@given(gate_origins.flatmap(lambda o: st.tuples(st.just(o), gate_confused_origins(o))))
def test_confusions_of_a_listed_origin_are_refused(pair: tuple[str, str]) -> None:
    listed, confused = pair
    assume(normalize_origin(confused) != normalize_origin(listed))
    assert not is_allowed_origin(confused, compile_cors([listed])).allowed


@given(
    listed=st.lists(gate_origins | st.just("null"), max_size=3),
    credentials=st.booleans(),
    origin=st.none() | gate_any_origin,
    method=gate_methods,
    request_method=st.none() | gate_methods,
    request_headers=st.none() | st.text(max_size=30),
)
def test_cors_headers_never_reflect_an_unlisted_origin(
    listed: list[str],
    credentials: bool,
    origin: str | None,
    method: str,
    request_method: str | None,
    request_headers: str | None,
) -> None:
    allowlist = compile_cors(listed, allow_credentials=credentials)
    canonical = {normalize_origin(o) for o in listed}
    headers = cors_headers(
        allowlist,
        origin=origin,
        method=method,
        request_method=request_method,
        request_headers=request_headers,
    )
    assert headers[0] == ("Vary", "Origin")
    names = [name for name, _ in headers]
    norm = normalize_origin(origin) if origin else None
    if norm is None or norm not in canonical:
        assert headers == (("Vary", "Origin"),)
        return
    if "Access-Control-Allow-Origin" in names:
        assert dict(headers)["Access-Control-Allow-Origin"] == norm
    if "Access-Control-Allow-Credentials" in names:
        assert credentials
        assert norm != "null"
    configured = {
        "Origin",
        "true",
        norm,
        allowlist.methods_value,
        allowlist.headers_value,
        allowlist.max_age_value,
    }
    assert {value for _, value in headers} <= configured  # nothing from the request


# ============================================================================================
# hosts


@given(public=st.lists(gate_hostnames, max_size=3), header=gate_host_headers)
def test_an_allowed_host_is_loopback_or_listed(public: list[str], header: str) -> None:
    allowed = compile_host_allowlist(public)
    if is_allowed_host(header, allowed).allowed:
        host = header.rsplit(":", 1)[0] if not header.endswith("]") else header
        host = normalize_hostname(host.rstrip(".")) or host
        loopback = host in ("localhost", "[::1]") or host.startswith("127.")
        assert loopback or host in {normalize_hostname(p) for p in public}, header


@given(name=gate_hostnames, port=st.none() | st.integers(1, 65535), data=st.data())
def test_a_listed_host_is_allowed_in_any_case_with_any_port(
    name: str, port: int | None, data: st.DataObject
) -> None:
    spelt = "".join(c.upper() if data.draw(st.booleans()) else c for c in name)
    header = spelt if port is None else f"{spelt}:{port}"
    assert is_allowed_host(header, compile_host_allowlist([name])).allowed
    assert not is_allowed_host(f"{name}.evil.example", compile_host_allowlist([name])).allowed


# ============================================================================================
# redirects


targets = gate_base_urls.flatmap(
    lambda base: st.tuples(
        st.just(base),
        st.one_of(
            gate_redirect_targets(base),
            st.sampled_from(GATE_REDIRECT_PAYLOADS),
            st.sampled_from(GATE_REDIRECT_PAYLOADS).map(lambda p: base + p.lstrip("/")),
            st.text(max_size=20),
        ),
    )
)


def _escapes(base_url: str, result: str) -> bool:
    """True when a browser following ``Location: result`` leaves the origin or base_url."""
    where = browser_resolve(result, base_url)
    return where.origin != SERVER_ORIGIN or not where.path.startswith(base_url)


@given(targets)
@example(("/", "/\\evil.example"))
@example(("/hub/user/bob/", "/hub/../..//evil.example"))
@example(("/jp/", "%2F%2E%2E%2F%2Fevil.example"))
@example(("/", "\t/\t/evil.example"))
def test_every_redirect_stays_in_the_origin_under_base_url(pair: tuple[str, str]) -> None:
    base_url, target = pair
    result = safe_redirect(target, base_url=base_url, default=base_url)
    where = browser_resolve(result, base_url)
    assert where.origin == SERVER_ORIGIN, (target, result, where)
    assert where.path.startswith(base_url), (target, result, where)
    assert "//" not in where.path, (target, result, where)  # no seed for a second redirect
    assert safe_redirect(result, base_url=base_url, default="\x00") == result  # idempotent


@pytest.mark.parametrize("base_url", ["/", "/jp/", "/hub/user/bob/"])
@pytest.mark.parametrize("payload", GATE_REDIRECT_PAYLOADS)
def test_advisory_payloads_are_refused(payload: str, base_url: str) -> None:
    assert safe_redirect(payload, base_url=base_url, default="\x00") == "\x00"


# ============================================================================================
# proxies

TRUSTED = compile_trusted(GATE_TRUSTED_CIDRS)
forwarding_headers = st.dictionaries(
    st.sampled_from([*FORWARDING_HEADERS, *(h.lower() for h in FORWARDING_HEADERS), "Host"]),
    gate_xff | gate_forward_entries | st.text(max_size=20),
    max_size=5,
)


def _ip_from_untrusted_header(peer: str, ip: str) -> bool:
    """The property's negation: the peer is untrusted and the result is not the peer."""
    if gate_is_trusted(peer):
        return False
    return ip != _reference_parse(peer)


@given(peer=gate_ips, headers=forwarding_headers)
def test_client_ip_never_comes_from_an_untrusted_peer(peer: str, headers: dict[str, str]) -> None:
    result = client_address(peer, headers, TRUSTED)
    assert not _ip_from_untrusted_header(peer, result.ip)
    if not gate_is_trusted(peer):
        assert result.trusted_hops == 0
        sent = {k.lower() for k in headers} & {h.lower() for h in FORWARDING_HEADERS}
        assert result.ignored_headers == bool(sent)


def _reference_parse(entry: str) -> str | None:
    entry = entry.strip()
    if entry.startswith("[") and "]" in entry:
        entry = entry[1 : entry.index("]")]
    elif entry.count(":") == 1:
        entry = entry.split(":")[0]
    try:
        addr = ipaddress.ip_address(entry)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


@given(peer=st.ip_addresses(network="10.0.0.0/8").map(str), xff=gate_xff)
def test_x_forwarded_for_is_believed_only_through_trusted_hops(peer: str, xff: str) -> None:
    result = client_address(peer, {"X-Forwarded-For": xff}, TRUSTED)
    entries = [e.strip() for e in xff.split(",")]
    hops = result.trusted_hops
    assert hops <= len(entries)
    # Every hop that appended an entry we believed is trusted...
    chain = [peer, *[_reference_parse(e) for e in reversed(entries)][:hops]]
    assert all(ip is not None and gate_is_trusted(ip) for ip in chain[:-1]), (xff, result)
    # ...and the walk stopped for a reason: an untrusted address, a bad entry, or the end.
    assert result.ip == chain[-1]
    if hops < len(entries) and not result.malformed:
        assert not gate_is_trusted(result.ip), (xff, result)


# ============================================================================================
# fetch metadata

OWN = frozenset({"http://127.0.0.1:8888", "http://localhost:8888"})
LISTED = frozenset({"https://trusted.example.com"})
routes = st.sampled_from([c.value for c in RouteClass])
header_origins = st.none() | st.sampled_from(
    [*OWN, *LISTED, "https://evil.example", "null", "http://localhost:8888.evil.com"]
)
header_referers = st.none() | st.sampled_from(
    [f"{o}/lab" for o in (*OWN, *LISTED, "https://evil.example")]
    + ["http://localhost:8888@evil.example/"]
)


@given(
    method=gate_methods,
    route=routes,
    site=st.sampled_from(["cross-site", "same-site", "CROSS-SITE"]),
    mode=gate_fetch_modes,
    dest=gate_fetch_dests,
    origin=header_origins | gate_any_origin,
    referer=header_referers,
)
def test_cross_site_only_navigations_to_pages_and_listed_cors(
    method: str,
    route: str,
    site: str,
    mode: str | None,
    dest: str | None,
    origin: str | None,
    referer: str | None,
) -> None:
    d = cross_site_decision(
        method, route, site, mode, dest, origin, referer, own_origins=OWN, cors_origins=LISTED
    )
    if d.allowed:
        navigation = (
            method.upper() in ("GET", "HEAD")
            and (mode or "").lower() == "navigate"
            and (dest or "").lower() == "document"
            and route == RouteClass.PAGE
        )
        listed_cors = (mode or "").lower() in ("cors", "websocket") and normalize_origin(
            origin or ""
        ) in LISTED
        assert navigation or listed_cors, d
        if method.upper() not in ("GET", "HEAD"):
            assert (mode or "").lower() in ("cors", "websocket"), d  # never no-cors (40864)


@given(
    method=gate_methods,
    route=routes,
    site=gate_fetch_sites,
    mode=gate_fetch_modes,
    dest=gate_fetch_dests,
    origin=header_origins,
    referer=header_referers,
)
def test_state_changing_requests_need_proof_of_origin(
    method: str,
    route: str,
    site: str | None,
    mode: str | None,
    dest: str | None,
    origin: str | None,
    referer: str | None,
) -> None:
    d = cross_site_decision(
        method, route, site, mode, dest, origin, referer, own_origins=OWN, cors_origins=LISTED
    )
    if d.allowed and method.upper() not in ("GET", "HEAD"):
        same_origin_site = (site or "").strip().lower() == "same-origin"
        by_origin = normalize_origin(origin or "") in OWN | LISTED
        by_referer = origin is None and referer_origin(referer or "") in OWN
        assert same_origin_site or by_origin or by_referer, d


# ============================================================================================
# mutants: deliberately broken gates the properties above must catch


def _mutant_prefix_matcher(candidate: str, listed: str) -> bool:
    """jupyter_server before CVE-2026-40110: ``re.match`` (a prefix match) on the origin."""
    return candidate.lower().startswith(listed.lower())


def _mutant_redirect(target: str, *, base_url: str, default: str) -> str:
    """The pre-JS-2 check: "it starts with '/' (or base_url), so it is a local path"."""
    return target if target.startswith("/") else default


def _mutant_client_ip(peer: str, headers: dict[str, str]) -> str:
    """tornado ``xheaders=True``: believe X-Real-IP, else the right-most X-Forwarded-For."""
    real = headers.get("X-Real-IP")
    if real:
        return real.strip()
    xff = headers.get("X-Forwarded-For", "")
    return xff.split(",")[-1].strip() or peer


def test_origin_property_catches_a_prefix_matcher() -> None:
    found = find(
        origin_pairs, lambda p: _allow_list_mismatch(p, _mutant_prefix_matcher), settings=HUNT
    )
    assert _allow_list_mismatch(found, _mutant_prefix_matcher)
    assert not _allow_list_mismatch(found, _real_matcher)


def test_redirect_property_catches_a_startswith_slash_validator() -> None:
    def escapes(pair: tuple[str, str]) -> bool:
        base_url, target = pair
        return _escapes(base_url, _mutant_redirect(target, base_url=base_url, default=base_url))

    # Only generated targets: the hunt must find the bypass, not be handed a known payload.
    generated = gate_base_urls.flatmap(
        lambda base: st.tuples(st.just(base), gate_redirect_targets(base))
    )
    base_url, target = find(generated, escapes, settings=HUNT)
    assert _escapes(base_url, _mutant_redirect(target, base_url=base_url, default=base_url))
    assert not _escapes(base_url, safe_redirect(target, base_url=base_url, default=base_url))


def test_proxy_property_catches_tornado_xheaders() -> None:
    cases = st.tuples(gate_ips, forwarding_headers)
    peer, headers = find(
        cases, lambda c: _ip_from_untrusted_header(c[0], _mutant_client_ip(*c)), settings=HUNT
    )
    assert _ip_from_untrusted_header(peer, _mutant_client_ip(peer, headers))
    assert not _ip_from_untrusted_header(peer, client_address(peer, headers, TRUSTED).ip)


# ============================================================================================
# the browser oracle itself

KNOWN_WHATWG = [  # (reference, base_url, origin, path): results of Chromium/Node's URL parser
    ("//evil", "/", "http://evil", "/"),
    ("///evil", "/", "http://evil", "/"),
    ("/\\evil", "/jp/", "http://evil", "/"),
    ("\\\\evil/x", "/", "http://evil", "/x"),
    ("\t/\t/evil", "/", "http://evil", "/"),
    (" \x01//evil", "/", "http://evil", "/"),
    ("https:evil", "/", "https://evil", "/"),
    ("https:/evil", "/", "https://evil", "/"),
    ("https:///evil", "/", "https://evil", "/"),
    ("http:evil", "/jp/", SERVER_ORIGIN, "/jp/evil"),  # same scheme: a relative reference
    ("http:/evil", "/jp/", SERVER_ORIGIN, "/evil"),
    ("http:\\\\evil", "/", "http://evil", "/"),
    ("//a@evil", "/", "http://evil", "/"),
    ("/hub/../..//evil", "/", SERVER_ORIGIN, "//evil"),  # same origin, a seed for JS-1
    ("/a/%2e%2E/b", "/", SERVER_ORIGIN, "/b"),
    ("a/../../x", "/jp/", SERVER_ORIGIN, "/x"),
    ("?x", "/jp/", SERVER_ORIGIN, "/jp/"),
    ("//0x7f.1:8888/x", "/", SERVER_ORIGIN, "/x"),
    ("javascript:alert(1)", "/", "opaque", ""),
    ("///", "/", "failure", ""),
    ("//evil:99999", "/", "failure", ""),
]


@pytest.mark.parametrize(("reference", "base_url", "origin", "path"), KNOWN_WHATWG)
def test_browser_oracle_matches_known_whatwg_results(
    reference: str, base_url: str, origin: str, path: str
) -> None:
    where = browser_resolve(reference, base_url)
    assert where.origin == origin
    if origin not in ("opaque", "failure"):
        assert where.path == path


_NODE = shutil.which("node")
_NODE_SCRIPT = """
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(input.map(([ref, base]) => {
  try { const u = new URL(ref, 'http://127.0.0.1:8888' + base); return [u.origin, u.pathname]; }
  catch (e) { return ['failure', '']; }
})));
"""


@pytest.mark.skipif(_NODE is None, reason="node is not installed (the oracle table still runs)")
def test_browser_oracle_agrees_with_node_whatwg_url() -> None:
    rng = random.Random(20260731)  # fixed seed: a reproducible differential
    alphabet = [*GATE_REDIRECT_TOKENS, *GATE_REDIRECT_PAYLOADS, "a", "b", "x.y", "8888"]
    pairs = [
        (
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))),
            rng.choice(["/", "/jp/", "/user/alice/"]),
        )
        for _ in range(3000)
    ]
    assert _NODE is not None
    proc = subprocess.run(
        [_NODE, "-e", _NODE_SCRIPT],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    node = json.loads(proc.stdout)
    mismatches = []
    for (ref, base), (origin, path) in zip(pairs, node, strict=True):
        ours = browser_resolve(ref, base)
        # An opaque origin and a parse failure both mean "not this server": one class.
        mine = "opaque" if ours.origin == "failure" else ours.origin
        theirs = "opaque" if origin in ("null", "failure") else origin
        if mine != theirs or (theirs == SERVER_ORIGIN and ours.path != path):
            mismatches.append((ref, base, ours, (origin, path)))
    assert not mismatches, mismatches[:5]


# ============================================================================================
# atheris corpus, replayed on every run

CORPUS = [
    pytest.param(harness, path, id=f"{folder}/{path.name}")
    for harness, folder in ((FUZZ_ORIGINS, "origins"), (FUZZ_REDIRECTS, "redirects"))
    for path in sorted((REPO / "fuzz" / "corpus" / folder).iterdir())
]


@pytest.mark.parametrize(("harness", "path"), CORPUS)
def test_fuzz_corpus_replay(harness: ModuleType, path: Path) -> None:
    harness.TestOneInput(path.read_bytes())


def test_corpus_is_not_empty() -> None:
    assert len(CORPUS) >= 40


def test_gate_modules_are_pure() -> None:
    """The policy layer imports neither tornado nor jupyter_server nor network modules."""
    code = (
        "import sys\n"
        "import hardened_server.policy.cors, hardened_server.policy.fetchmeta\n"
        "import hardened_server.policy.hosts, hardened_server.policy.origins\n"
        "import hardened_server.policy.proxies, hardened_server.policy.redirects\n"
        "bad = [m for m in ('tornado', 'jupyter_server', 'socket') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
