"""Hypothesis properties of the policy loader (``parse_layer`` + ``build_policy``, both pure).

Layer documents are generated from the schema table itself (``schema.FIELDS``): every field kind
gets a strategy of *valid* values already in normalised form (so the expected effective value is
the raw value, lists as tuples), and a strategy of *invalid* values. A new field in the schema is
covered automatically; a new list field needs a pool of valid items below, and a test says so.

The invariants pinned here are the ones a reviewer relies on when reading layered policy files:
the last layer to set a key wins, provenance says which layer that was, unknown keys never slip
through, the fingerprint identifies the effective values (not the way they were layered), and every
error names the file and the key to fix.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import assume, given, reject
from hypothesis import strategies as st

from hardened_server.policy import csp
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import Layer, build_policy, default_layer, parse_layer
from hardened_server.policy.schema import FIELDS, TABLES, Field, describe_allowed

# ---------------------------------------------------------------------------------------------
# Pools of valid items, already normalised (normalising them is the identity).

LIST_POOLS: dict[str, tuple[str, ...]] = {
    "server.public_hostnames": ("jupyter.example.org", "hub.example.com", "10.1.2.3", "[::1]"),
    "server.trusted_proxies": ("10.0.0.0/8", "192.168.0.0/16", "127.0.0.1/32", "fd00::/8"),
    "routes.public": ("/login", "/static/(.*)", "/api/status", "/custom/(?P<name>[^/]+)"),
    "routes.accept_undecorated": ("/lsp/ws/(?P<language_server>.*)", "/custom/ws", "/x/(.*)"),
    "routes.unsafe_eval": ("/tree(.*)", "/notebooks(.*)", "/lab"),
    "routes.script_nonce": ("/voila/render/(.*)", "/dashboards/(?P<name>[^/]+)"),
    "scopes.disabled_extension_profiles": (
        "jupyter_server_proxy",
        "jupyter_server_ydoc",
        "jupyter_resource_usage",
    ),
    "scopes.client_event_schemas": (
        "https://events.example.org/ext/click/v1",
        "https://events.jupyter.org/x/v2",
    ),
    "cors.allow_origins": (
        "https://trusted.example.com",
        "http://localhost:8888",
        "https://a.example.org:8443",
        "null",
    ),
    "cors.allow_origin_patterns": (
        r"https://[a-z0-9-]+\.dashboards\.example\.org",
        r"https://(app|api)\.example\.com",
        r"http://localhost:88[0-9][0-9]",
    ),
    "cors.allow_methods": ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"),
    "cors.allow_headers": ("authorization", "content-type", "x-xsrftoken", "x-requested-with"),
    "paths.deny": (".ssh/**", "**/*.pem", ".env*", "data/*.csv", "**/.git/**"),
    "paths.protected": ("**/.ipython", "**/.bashrc", "**/*.pth", ".config/autostart"),
    "paths.allow": (".jupyter/lab/**", ".config/app/*.json", ".local/share/x"),
    "tokens.owner_scopes": ("admin", "contents:read", "kernels:execute", "metrics:read"),
    "audit.require": ("file", "stdout", "syslog"),
}

#: String fields whose validator accepts a narrower shape than printable text.
STR_POOLS: dict[str, tuple[str, ...]] = {
    "tokens.store_file": ("", "/srv/hardened-server/tokens.json", "/var/lib/hs/t.json"),
    "audit.file": ("", "/var/log/jupyter/audit.jsonl", "~/audit/hs.jsonl"),
    "audit.fsync": ("always", "never", "interval:1", "interval:0.5"),
    "audit.signing_key": ("", "/etc/hardened-server/audit-key.pem", "~/keys/audit.pem"),
    "audit.syslog": ("", "127.0.0.1:6514", "logs.example.org:514", "[::1]:6514"),
    "audit.syslog_ca": ("", "/etc/ssl/certs/collector-ca.pem", "~/ca.pem"),
    "audit.hmac_key": ("", "/etc/hardened-server/audit-hmac.key", "~/keys/hmac.key"),
}

# Items each list field must refuse (one per way of being wrong).
LIST_BAD_ITEMS: dict[str, tuple[str, ...]] = {
    "server.public_hostnames": (
        "*.example.com",
        "https://example.com",
        "example.com:8888",
        "exa mple.com",
        "",
    ),
    "server.trusted_proxies": ("10.0.0.1/8", "10.0.0.0/33", "not-a-network", "*"),
    "routes.public": ("login", "/login$", "/(unclosed"),
    "routes.accept_undecorated": ("ws", "/ws$", "/[unclosed"),
    "routes.unsafe_eval": ("tree", "/tree$", "/(unclosed"),
    "routes.script_nonce": ("voila", "/voila$", "/[unclosed"),
    "scopes.client_event_schemas": ("", "has space", "caf\u00e9", "x\ny"),
    "scopes.disabled_extension_profiles": ("", "has space", "1abc", "a..b", "x/y"),
    "cors.allow_origins": (
        "*",
        "https://x/path",
        "https://*.example.com",
        "javascript:alert(1)",
        "https://user@x.com",
        "ftp://x.com",
        "https://ex\u00e4mple.com",
    ),
    "cors.allow_origin_patterns": ("*", ".*", "https://.*", r"ftp://x\.com", "https://(unclosed"),
    "cors.allow_methods": ("TRACE", "CONNECT", "OPTIONS", "GET POST", ""),
    "cors.allow_headers": ("*", "bad header", "x:y", "", "caf\u00e9"),
    "paths.deny": ("/etc/passwd", "../secrets", "a/../b", "a\\b", ""),
    "paths.protected": ("/etc/passwd", "../secrets", "a/../b", ""),
    "paths.allow": ("/abs/**", "..", "x/../../y", ""),
    "tokens.owner_scopes": ("root", "contents:*", "Admin", ""),
    "audit.require": ("File", "syslog-ng", "", "eventlogger"),
}

CSP_SOURCES = (
    "'self'",
    "data:",
    "blob:",
    "https://cdn.example.com",
    "*.example.org",
    "wss://hub.example.com:443",
    "'unsafe-inline'",
    "'strict-dynamic'",
    "'sha256-AbC123+/='",
    "'nonce-abc123'",
)
CSP_REPORT_URIS = ("/api/security/csp-report", "https://r.example.com/csp")
CSP_REPORT_GROUPS = ("csp-endpoint", "g1")
# Refused in any directive: each would end the directive (or the header) and start another, or
# is not a token at all.
CSP_BAD_ANYWHERE = ("'self'; script-src *", "'self'\nscript-src *", "a,b", "a b", "a\tb", "")
CSP_BAD_NON_ASCII = ("https://ex\u00e4mple.com", "'self'\u2028")
# Refused in a source-list directive.
CSP_BAD_SOURCES = ("'unsafe-everything'", "'self", 'https://x.com/"', "'nonce-'")

PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)

# scopes.routes: route patterns and what a method may need.
ROUTEMAP_PATTERNS = ("/hello", "/hello/(.*)", "/ext/api/(?P<name>[^/]+)", "/x")
ROUTEMAP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "*")
ROUTEMAP_SCOPES = ("contents:read", "contents:write", "kernels:execute", "admin", "terminals")
# identity.users / identity.groups: names -> scopes.
SCOPETABLE_NAMES = ("alice", "bob", "data-team", "Ops Staff")

REQUIRED_KEYS = tuple(k for k, f in FIELDS.items() if f.kind != "directive")
DIRECTIVE_KEYS = tuple(k for k, f in FIELDS.items() if f.kind == "directive")
ALL_KEYS = tuple(FIELDS)
ABSENT = object()


def _directive(field: Field) -> str:
    return field.key.rsplit(".", 1)[1]


# ---------------------------------------------------------------------------------------------
# Valid values.


def _unique_lists(pool: tuple[str, ...], min_size: int = 0) -> st.SearchStrategy[list[str]]:
    if not pool:  # a list field with no pool yet: the guard test below fails and says so
        return st.just([])
    return st.lists(st.sampled_from(pool), unique=True, min_size=min_size, max_size=len(pool))


def valid_value(field: Field) -> st.SearchStrategy[Any]:
    """A raw (TOML-shaped) value that the field accepts and that normalises to itself."""
    if field.kind == "bool":
        return st.booleans()
    if field.kind == "int":
        return st.integers(field.minimum, field.maximum)
    if field.kind == "enum":
        return st.sampled_from(field.choices)
    if field.kind == "str":
        if field.key in STR_POOLS:
            return st.sampled_from(STR_POOLS[field.key])
        return st.text(PRINTABLE_ASCII, max_size=24)
    if field.kind == "list":
        return _unique_lists(LIST_POOLS.get(field.key, ()))
    if field.kind == "routemap":
        scopes = _unique_lists(ROUTEMAP_SCOPES).map(sorted)
        methods = st.dictionaries(
            st.sampled_from(ROUTEMAP_METHODS), scopes, min_size=1, max_size=3
        )
        return st.dictionaries(st.sampled_from(ROUTEMAP_PATTERNS), methods, max_size=3)
    if field.kind == "scopetable":
        scopes = _unique_lists(ROUTEMAP_SCOPES).map(sorted)
        return st.dictionaries(st.sampled_from(SCOPETABLE_NAMES), scopes, max_size=3)
    if field.kind == "directive":
        name = _directive(field)
        if name in csp.VALUELESS:
            return st.booleans()
        if name == "sandbox":
            flags = tuple(sorted(csp.SANDBOX_FLAGS))
            return st.one_of(st.just(False), _unique_lists(flags))
        if name == "report-uri":
            return st.one_of(st.just(False), _unique_lists(CSP_REPORT_URIS, 1))
        if name == "report-to":
            return st.one_of(st.just(False), _unique_lists(CSP_REPORT_GROUPS, 1))
        return st.one_of(st.just(False), st.just([csp.CSP.NONE]), _unique_lists(CSP_SOURCES, 1))
    raise AssertionError(f"no strategy for field kind {field.kind!r}")


def normalised(field: Field, raw: Any) -> Any:
    """What the loader records for a raw value from :func:`valid_value`."""
    if field.kind == "directive":
        if raw is False:
            return None
        if raw is True:
            return ()
    if field.kind == "routemap":
        return {p: {m: tuple(v) for m, v in methods.items()} for p, methods in raw.items()}
    if field.kind == "scopetable":
        return {name: tuple(v) for name, v in raw.items()}
    if isinstance(raw, list):
        return tuple(raw)
    return raw


def raw_of(field: Field, value: Any) -> Any:
    """The inverse of :func:`normalised`: a TOML value that sets ``value`` again."""
    if field.kind == "directive":
        if value is None:
            return False
        if value == () and _directive(field) in csp.VALUELESS:
            return True
    if field.kind == "routemap":
        return {p: {m: list(v) for m, v in methods.items()} for p, methods in value.items()}
    if isinstance(value, tuple):
        return list(value)
    return value


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"csp.page.script-src": v}`` -> ``{"csp": {"page": {"script-src": v}}}``."""
    doc: dict[str, Any] = {}
    for key, value in flat.items():
        *tables, name = key.split(".")
        node = doc
        for table in tables:
            node = node.setdefault(table, {})
        node[name] = value
    return doc


@st.composite
def partial_layer(draw: st.DrawFn, keys: tuple[str, ...] = ALL_KEYS, max_size: int = 10) -> dict:
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=max_size))
    return {key: draw(valid_value(FIELDS[key])) for key in chosen}


# The directives a route class's floor constrains (tests/policy/test_csp_floors.py generates
# those); the layering properties vary every other key, over a base that meets the floors.
FLOOR_DIRECTIVES = ("frame-ancestors", "object-src", "script-src", "default-src", "base-uri",
                    "sandbox")
FLOOR_KEYS = frozenset(
    k for k in DIRECTIVE_KEYS if _directive(FIELDS[k]) in FLOOR_DIRECTIVES
)
FREE_DIRECTIVE_KEYS = tuple(k for k in DIRECTIVE_KEYS if k not in FLOOR_KEYS)
FREE_KEYS = tuple(k for k in ALL_KEYS if k not in FLOOR_KEYS)


def _default_floor_directives() -> dict[str, Any]:
    """The shipped default's values of the floor-constrained directives, as TOML would say
    them (a tuple is a list; a directive the default leaves unset is not set here either)."""
    values = default_layer().values
    return {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if k in FLOOR_KEYS
    }


def complete_layer() -> st.SearchStrategy[dict[str, Any]]:
    """A first layer: every non-directive key, the default's floor directives, and some other
    CSP directives."""
    required = st.fixed_dictionaries({k: valid_value(FIELDS[k]) for k in REQUIRED_KEYS})
    floor = _default_floor_directives()
    return st.builds(
        lambda a, b: {**a, **floor, **b}, required, partial_layer(FREE_DIRECTIVE_KEYS, 30)
    )


@st.composite
def overlays(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-4 layers drawing their keys from one small universe, so that they overlap often."""
    universe = tuple(
        draw(st.lists(st.sampled_from(FREE_KEYS), min_size=1, max_size=8, unique=True))
    )
    n = draw(st.integers(1, 4))
    return [draw(partial_layer(universe, len(universe))) for _ in range(n)]


def parse_all(raw_layers: list[dict[str, Any]], names: list[str] | None = None) -> list[Layer]:
    names = names or [f"layer{i}.toml" for i in range(len(raw_layers))]
    return [parse_layer(name, nest(raw)) for name, raw in zip(names, raw_layers, strict=True)]


@functools.cache
def shipped_default() -> Layer:
    return default_layer()


# ---------------------------------------------------------------------------------------------
# Invalid values.


def _with_bad_item(pool: tuple[str, ...], bad: tuple[str, ...]) -> st.SearchStrategy[list]:
    @st.composite
    def build(draw: st.DrawFn) -> list:
        items = draw(_unique_lists(pool))
        at = draw(st.integers(0, len(items)))
        return [*items[:at], draw(st.sampled_from(bad)), *items[at:]]

    return build()


def invalid_value(field: Field) -> st.SearchStrategy[Any]:
    """A raw value the field must refuse."""
    scalars = st.one_of(
        st.integers(), st.text(max_size=8), st.floats(allow_nan=False), st.booleans()
    )
    if field.kind == "bool":
        return st.one_of(
            st.integers(),
            st.text(max_size=8),
            st.floats(allow_nan=False),
            st.lists(st.booleans(), max_size=2),
        )
    if field.kind == "int":
        assert field.minimum is not None
        assert field.maximum is not None
        return st.one_of(
            st.booleans(),
            st.text(max_size=8),
            st.floats(allow_nan=False),
            st.integers(max_value=field.minimum - 1),
            st.integers(min_value=field.maximum + 1),
            st.lists(st.integers(field.minimum, field.maximum), min_size=1, max_size=1),
        )
    if field.kind == "enum":
        return st.one_of(
            st.text(max_size=24).filter(lambda s: s not in field.choices),
            st.integers(),
            st.booleans(),
            st.lists(st.sampled_from(field.choices), min_size=1, max_size=1),
        )
    if field.kind == "str":
        bad_text = st.builds(
            lambda a, bad, b: a + bad + b,
            st.text(PRINTABLE_ASCII, max_size=8),
            st.sampled_from(["\r\n", "\n", "\x00", "\x7f", "\u00e9", "\u2028"]),
            st.text(PRINTABLE_ASCII, max_size=8),
        )
        assert field.item is not None, "every str field validates its text"
        return st.one_of(
            st.integers(), st.booleans(), st.lists(st.text(max_size=4), max_size=2), bad_text
        )
    if field.kind == "list":
        options = [
            scalars,
            st.lists(st.integers(), min_size=1, max_size=3),
            st.lists(st.booleans(), min_size=1, max_size=3),
        ]
        if field.key in LIST_BAD_ITEMS:  # else the guard test below fails and says so
            options.append(_with_bad_item(LIST_POOLS[field.key], LIST_BAD_ITEMS[field.key]))
        return st.one_of(*options)
    if field.kind == "routemap":
        good = {"GET": ["contents:read"]}
        return st.one_of(
            scalars,
            st.lists(st.text(max_size=4), max_size=2),
            st.sampled_from(
                [
                    {"hello": good},
                    {"/hello$": good},
                    {"/(unclosed": good},
                    {"/hello": {}},
                    {"/hello": "contents:read"},
                    {"/hello": {"OPTIONS": ["contents:read"]}},
                    {"/hello": {"TRACE": ["contents:read"]}},
                    {"/hello": {"GET": ["contents:raed"]}},
                    {"/hello": {"GET": [3]}},
                    {"/hello": {"GET": 3}},
                    {"/hello": {"GET": ["admin"], "get": ["admin"]}},
                ]
            ),
        )
    if field.kind == "scopetable":
        return st.one_of(
            scalars,
            st.lists(st.text(max_size=4), max_size=2),
            st.sampled_from(
                [
                    {"alice": "contents:read"},
                    {"alice": ["contents:raed"]},
                    {"alice": [3]},
                    {"alice": {"GET": ["admin"]}},
                    {"": ["admin"]},
                    {"a\nb": ["admin"]},
                ]
            ),
        )
    if field.kind == "directive":
        name = _directive(field)
        not_lists = st.one_of(st.integers(), st.text(max_size=8), st.floats(allow_nan=False))
        non_str_items = st.lists(st.integers(), min_size=1, max_size=2)
        if name in csp.VALUELESS:
            return st.one_of(not_lists, non_str_items, _unique_lists(CSP_SOURCES, 1))
        bad = CSP_BAD_ANYWHERE + CSP_BAD_NON_ASCII
        if name == "sandbox":
            pool: tuple[str, ...] = tuple(sorted(csp.SANDBOX_FLAGS))
            bad += ("allow-everything", "'self'")
        elif name == "report-uri":
            pool = CSP_REPORT_URIS
        elif name == "report-to":
            pool = CSP_REPORT_GROUPS
            bad += ("'self'", "a/b")
        else:
            pool = CSP_SOURCES
            bad += CSP_BAD_SOURCES
        options = [
            not_lists,
            non_str_items,
            st.just(True),
            _with_bad_item(pool, bad),
        ]
        if name != "sandbox":
            options.append(st.just([]))  # a source list needs at least one source
            options.append(
                st.builds(lambda rest: [csp.CSP.NONE, *rest], _unique_lists(pool, 1))
            )
        return st.one_of(*options)
    raise AssertionError(f"no strategy for field kind {field.kind!r}")


# ---------------------------------------------------------------------------------------------
# Guards on the generators themselves.


def test_every_list_field_has_pools_of_valid_and_invalid_items() -> None:
    """A new list field must get item pools here, or the properties would only ever try []."""
    list_fields = {k for k, f in FIELDS.items() if f.kind == "list"}
    assert sorted(list_fields - set(LIST_POOLS)) == [], "add valid items to LIST_POOLS"
    assert sorted(list_fields - set(LIST_BAD_ITEMS)) == [], "add invalid items to LIST_BAD_ITEMS"


@pytest.mark.parametrize("key", sorted(LIST_POOLS))
def test_pool_items_are_valid_and_already_normalised(key: str) -> None:
    """The properties compare effective values with the raw ones: normalising must not move them."""
    if key not in FIELDS:
        pytest.fail(f"{key} is no longer a policy key: remove its pools")
    layer = parse_layer("pool", nest({key: list(LIST_POOLS[key])}))
    assert layer.values[key] == LIST_POOLS[key]


@pytest.mark.parametrize("key", sorted(LIST_BAD_ITEMS))
def test_bad_pool_items_are_each_refused(key: str) -> None:
    """Each "bad" item must really be bad, or the error property would test nothing."""
    for item in LIST_BAD_ITEMS.get(key, ()):
        with pytest.raises(PolicyError):
            parse_layer("pool", nest({key: [item]}))


# ---------------------------------------------------------------------------------------------
# Properties.



def _build(layers: Any) -> Any:
    """build_policy, with a generated policy that falls below a route class's CSP floor
    rejected (the loader refuses it; tests/policy/test_csp_floors.py pins that refusal)."""
    try:
        return build_policy(layers)
    except PolicyError as exc:
        if exc.problem.startswith("below the floor"):
            reject()
        raise

@given(base=complete_layer(), more=overlays())
def test_later_layers_win_key_by_key_and_provenance_names_the_last_setter(
    base: dict[str, Any], more: list[dict[str, Any]]
) -> None:
    """A reviewer reads the effective value of a key in the last file that sets it, and
    ``policy explain`` must name exactly that file; lists are replaced, never appended."""
    raw_layers = [base, *more]
    policy = _build(parse_all(raw_layers))
    assert set(policy.values) == set().union(*raw_layers)
    for key in policy.values:
        last = max(i for i, raw in enumerate(raw_layers) if key in raw)
        assert policy.values[key] == normalised(FIELDS[key], raw_layers[last][key]), key
        assert policy.provenance[key] == f"layer{last}.toml", key
    assert policy.sources == tuple(f"layer{i}.toml" for i in range(len(raw_layers)))


@given(more=overlays())
def test_keys_no_layer_overrides_keep_the_shipped_default_and_its_provenance(
    more: list[dict[str, Any]],
) -> None:
    """Over the shipped default profile, a key no ``--policy`` file sets keeps the default's
    value and is attributed to the default profile, so a loosening is never mis-attributed."""
    default = shipped_default()
    policy = _build([default, *parse_all(more)])
    overridden = set().union(*more)
    for key, value in default.values.items():
        if key not in overridden:
            assert policy.values[key] == value, key
            assert policy.provenance[key] == default.source, key
    for key in overridden:
        last = max(i for i, raw in enumerate(more) if key in raw)
        assert policy.values[key] == normalised(FIELDS[key], more[last][key]), key
        assert policy.provenance[key] == f"layer{last}.toml", key


@given(base=complete_layer(), more=overlays())
def test_typed_model_and_csp_agree_with_the_flat_effective_values(
    base: dict[str, Any], more: list[dict[str, Any]]
) -> None:
    """The enforcement layer reads the typed model, ``policy show`` the flat values: they must
    never disagree. A directive set to false is absent from the CSP, and every route class's
    CSP header parses back (as a browser parses it) to exactly its directives."""
    policy = _build(parse_all([base, *more]))
    for key in REQUIRED_KEYS:
        section, *rest = key.split(".")
        obj: Any = getattr(policy, section)
        if rest[0] == "cache_control":
            assert obj.cache_control[rest[1]] == policy.values[key]
        else:
            assert getattr(obj, rest[0]) == policy.values[key], key
    for rc in ROUTE_CLASSES:
        expected = {
            k.rsplit(".", 1)[1]: v
            for k, v in policy.values.items()
            if k.startswith(f"csp.{rc}.") and v is not None
        }
        assert dict(policy.csp[rc]) == expected
        assert csp.parse(csp.serialize(policy.csp[rc])) == expected


_KEY_NAMES = st.text(min_size=1, max_size=12)


@given(
    doc_flat=partial_layer(),
    prefix=st.sampled_from(("", *sorted(TABLES))),
    name=_KEY_NAMES,
    value=st.recursive(
        st.one_of(st.integers(), st.text(max_size=6), st.booleans(), st.lists(st.text(max_size=4))),
        lambda inner: st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6,
    ),
)
def test_unknown_key_at_any_depth_is_rejected_naming_that_key(
    doc_flat: dict[str, Any], prefix: str, name: str, value: Any
) -> None:
    """A misspelt key silently ignored is a setting the operator believes is in force (say a
    ``[cors]`` ``allow_orgins`` that leaves the default): every unknown key is an error."""
    key = f"{prefix}.{name}" if prefix else name
    assume(key not in FIELDS and key not in TABLES)
    doc = nest(doc_flat)
    node = doc
    for table in prefix.split(".") if prefix else ():
        node = node.setdefault(table, {})
    node[name] = value
    with pytest.raises(PolicyError) as info:
        parse_layer("user.toml", doc)
    err = info.value
    assert err.source == "user.toml"
    assert err.key == key
    if "." in name:  # a quoted dotted key: refused as such, it could shadow a real key
        assert "cannot be empty or contain '.'" in err.problem
    else:
        assert err.problem == "unknown key"
        assert str(err).startswith(f"user.toml: {key}: unknown key")
        assert err.allowed  # the keys that are allowed in that table
    assert err.fix


@given(base=complete_layer(), more=overlays(), data=st.data())
def test_fingerprint_depends_only_on_the_effective_values(
    base: dict[str, Any], more: list[dict[str, Any]], data: st.DataObject
) -> None:
    """The fingerprint identifies what the server enforces, so that an audit can compare two
    deployments: restating the same effective values in one file, in other files, in another
    order or under other file names gives the same fingerprint."""
    policy = _build(parse_all([base, *more]))
    flat = {key: raw_of(FIELDS[key], value) for key, value in policy.values.items()}

    single = _build([parse_layer("all.toml", nest(flat))])
    assert single.values == policy.values
    assert single.fingerprint == policy.fingerprint

    # The same values split over several disjoint files in a shuffled order (the first layer
    # still has to be complete, so it takes every required key).
    keys = data.draw(st.permutations(sorted(flat)))
    cut = data.draw(st.integers(0, len(keys)))
    rest = [k for k in keys[cut:] if k not in REQUIRED_KEYS]
    first = {k: flat[k] for k in flat if k in REQUIRED_KEYS or k in keys[:cut]}
    n = data.draw(st.integers(1, 3))
    split = [{k: flat[k] for k in rest[i::n]} for i in range(n)]
    names = [f"other{i}.toml" for i in range(n + 1)]
    relayered = _build(parse_all([first, *split], names))
    assert relayered.values == policy.values
    assert relayered.fingerprint == policy.fingerprint

    # The same layers under other names: provenance changes, the fingerprint does not.
    renamed = _build(parse_all([base, *more], [f"/etc/x{i}" for i in range(len(more) + 1)]))
    assert renamed.fingerprint == policy.fingerprint


@given(base=complete_layer(), data=st.data())
def test_any_change_of_an_effective_value_changes_the_fingerprint(
    base: dict[str, Any], data: st.DataObject
) -> None:
    """A fingerprint that stayed the same across a real change would let a loosened policy pass
    an audit that compares fingerprints."""
    policy = _build(parse_all([base]))
    key = data.draw(st.sampled_from(ALL_KEYS))
    field = FIELDS[key]
    raw = data.draw(valid_value(field))
    before = policy.values.get(key, ABSENT)
    after = normalised(field, raw)
    assume(after != before)
    # Setting a directive nobody set to false leaves the CSP as it was: not a change of the
    # enforced policy (see the report: whether it should change the fingerprint is open).
    assume(not (before is ABSENT and after is None))
    changed = _build(parse_all([base, {key: raw}]))
    assert changed.values[key] == after
    assert changed.fingerprint != policy.fingerprint


@given(
    doc_flat=partial_layer(),
    key=st.sampled_from(ALL_KEYS),
    source=st.sampled_from(("user.toml", "/etc/hardened-server/policy.toml", "team policy.toml")),
    data=st.data(),
)
def test_every_invalid_value_error_names_source_key_value_and_allowed_values(
    doc_flat: dict[str, Any], key: str, source: str, data: st.DataObject
) -> None:
    """The operator must be able to fix the file from the message alone: which file, which key,
    which value, and what would have been accepted."""
    field = FIELDS[key]
    bad = data.draw(invalid_value(field))
    doc = nest({**doc_flat, key: bad})
    with pytest.raises(PolicyError) as info:
        parse_layer(source, doc)
    err = info.value
    assert err.source == source
    assert err.key == key
    assert err.value == bad
    assert err.allowed == describe_allowed(field)
    assert err.allowed
    text = str(err)
    assert text.startswith(f"{source}: {key}: ")
    assert f"value: {bad!r}" in text
    assert f"allowed: {err.allowed}" in text
