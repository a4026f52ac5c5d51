"""Example tests of the policy loader: files -> validated layers -> one effective ``Policy``.

Each test pins one behaviour a policy author or reviewer relies on. The invariants over generated
layerings are in ``test_loader_properties.py``; the command line in ``tests/cli/test_main.py``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from hardened_server.policy import csp
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import (
    DEFAULT_PROFILE,
    build_policy,
    default_layer,
    fingerprint_of,
    load_policy,
    loosenings,
    loosens,
    parse_layer,
    profiles_dir,
    read_layer,
    resolve_policy_path,
    shipped_profiles,
)
from hardened_server.policy.model import Policy
from hardened_server.policy.schema import FIELDS, describe_allowed

REPO = Path(__file__).resolve().parents[2]


def over_default(doc: dict[str, Any], source: str = "user.toml") -> Policy:
    return build_policy([default_layer(), parse_layer(source, doc)])


def policy_error(doc: dict[str, Any], source: str = "user.toml") -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_layer(source, doc)
    return info.value


# --- the shipped profiles -----------------------------------------------------------------------


def test_source_checkout_finds_the_profiles_in_the_policies_directory() -> None:
    """In a checkout (editable install) the reviewed files in ``policies/`` are the ones used;
    the wheel case is covered by ``tests/test_packaging.py``."""
    assert profiles_dir() == REPO / "policies"
    assert shipped_profiles()[DEFAULT_PROFILE] == REPO / "policies" / "default.toml"


def test_default_profile_sets_every_non_csp_key() -> None:
    """``build_policy`` requires the first layer to be complete: a key missing from the shipped
    default would make every start-up fail (or, worse, fall back to an unreviewed value)."""
    layer = default_layer()
    missing = [k for k, f in FIELDS.items() if f.kind != "directive" and k not in layer.values]
    assert missing == []


def test_default_profile_is_the_strict_baseline() -> None:
    """What a server does with no ``--policy``: no CORS, no hidden files, no terminals, no remote
    bind without TLS, URL tokens only through the navigation exchange, 128-bit tokens."""
    policy = load_policy()
    assert policy.cors.allow_origins == ()
    assert policy.cors.allow_credentials is False
    assert policy.server.trusted_proxies == ()
    assert policy.server.allow_insecure_remote is False
    assert policy.paths.allow_hidden is False
    assert ".ssh/**" in policy.paths.deny
    assert policy.terminals.enabled is False
    assert policy.tokens.min_entropy_bits >= 128
    assert policy.tokens.url_tokens in ("navigation-exchange", "never")
    assert policy.csp["api"]["default-src"] == (csp.CSP.NONE,)
    for rc in ROUTE_CLASSES:
        assert "frame-ancestors" in policy.csp[rc], rc


@pytest.mark.parametrize("name", sorted(shipped_profiles()))
def test_every_shipped_profile_loads_over_the_default(name: str) -> None:
    """A shipped profile that fails to load would stop every server started with it."""
    policy = load_policy([shipped_profiles()[name]])
    assert policy.sources[-1] == str(shipped_profiles()[name])


def test_bare_profile_name_resolves_to_the_shipped_profile() -> None:
    """``--policy default`` (no path, no .toml) names a shipped profile."""
    assert resolve_policy_path(DEFAULT_PROFILE) == shipped_profiles()[DEFAULT_PROFILE]


def test_path_with_toml_suffix_is_never_taken_for_a_profile_name(tmp_path: Path) -> None:
    """A missing ``default.toml`` in the working directory is an error, not silently the shipped
    profile: the operator meant their own file."""
    missing = tmp_path / "default.toml"
    assert resolve_policy_path(missing) == missing
    with pytest.raises(PolicyError, match="file not found"):
        read_layer(missing)


# --- layering and provenance --------------------------------------------------------------------


def test_later_file_overrides_the_key_and_is_named_as_its_provenance(tmp_path: Path) -> None:
    """``policy explain`` must name the file that set a value, not just show it."""
    user = tmp_path / "user.toml"
    user.write_text('[cors]\nallow_origins = ["https://trusted.example.com"]\n')
    policy = load_policy([user])
    assert policy.cors.allow_origins == ("https://trusted.example.com",)
    assert policy.provenance["cors.allow_origins"] == str(user)
    assert policy.provenance["cors.allow_credentials"] == str(profiles_dir() / "default.toml")
    assert policy.sources == (str(profiles_dir() / "default.toml"), str(user))


def test_last_of_several_files_wins(tmp_path: Path) -> None:
    first = tmp_path / "first.toml"
    second = tmp_path / "second.toml"
    first.write_text("[tokens]\nmin_entropy_bits = 256\n")
    second.write_text("[tokens]\nmin_entropy_bits = 192\n")
    policy = load_policy([first, second])
    assert policy.tokens.min_entropy_bits == 192
    assert policy.provenance["tokens.min_entropy_bits"] == str(second)


def test_list_is_replaced_not_appended() -> None:
    """A reviewer reads the whole effective list in one place: the file that set it."""
    policy = over_default({"paths": {"deny": ["secrets/**"]}})
    assert policy.paths.deny == ("secrets/**",)


def test_extend_appends_to_the_list_of_the_layers_before() -> None:
    """Adding one reviewed route must not drop the shipped ones (jupyter_lsp's websocket:
    start-up would stop on /lsp/ws/...)."""
    shipped = over_default({}).routes.accept_undecorated
    policy = over_default({"routes": {"accept_undecorated": {"extend": ["/myext/ws"]}}})
    assert policy.routes.accept_undecorated == (*shipped, "/myext/ws")
    assert policy.provenance["routes.accept_undecorated"] == "user.toml"


def test_extend_adds_an_item_once_and_validates_it() -> None:
    deny = over_default({}).paths.deny
    policy = over_default({"paths": {"deny": {"extend": [deny[0], "private/**", "private/**"]}}})
    assert policy.paths.deny == (*deny, "private/**")
    origins = over_default({"cors": {"allow_origins": {"extend": ["HTTPS://A.example:443"]}}})
    assert origins.cors.allow_origins[-1] == "https://a.example"  # normalised like a list item
    error = policy_error({"cors": {"allow_origins": {"extend": ["*"]}}})
    assert error.key == "cors.allow_origins"
    assert "extend" in str(error)


def test_extend_table_takes_exactly_the_one_key() -> None:
    for bad in ({"extend": ["/a"], "more": ["/b"]}, {}, {"append": ["/a"]}):
        error = policy_error({"routes": {"accept_undecorated": bad}})
        assert error.key == "routes.accept_undecorated", bad
        assert "{ extend = [...] }" in (error.fix or ""), bad
    assert "expected a list" in str(policy_error({"paths": {"deny": {"extend": "x/**"}}}))


def test_extend_is_only_for_list_keys() -> None:
    error = policy_error({"sessions": {"samesite": {"extend": ["lax"]}}})
    assert error.key == "sessions.samesite"


def test_history_shows_each_layer_and_what_a_replacement_dropped() -> None:
    shipped = over_default({}).routes.accept_undecorated
    policy = build_policy([
        default_layer(),
        parse_layer("add.toml", {"routes": {"accept_undecorated": {"extend": ["/x"]}}}),
        parse_layer("replace.toml", {"routes": {"accept_undecorated": ["/y"]}}),
    ])
    steps = policy.history["routes.accept_undecorated"]
    assert [(s.source.rsplit("/", 1)[-1], s.how) for s in steps] == [
        ("default.toml", "set"), ("add.toml", "extend"), ("replace.toml", "set")]
    assert steps[1].value == ("/x",)
    assert steps[2].dropped == (*shipped, "/x")
    assert policy.routes.accept_undecorated == ("/y",)


def test_csp_layers_merge_directive_by_directive() -> None:
    """Overriding script-src keeps the default's other directives of that route class."""
    default = load_policy()
    policy = over_default({"csp": {"page": {"script-src": ["'self'"]}}})
    assert policy.csp["page"]["script-src"] == ("'self'",)
    assert policy.csp["page"]["default-src"] == default.csp["page"]["default-src"]
    assert policy.csp["api"] == default.csp["api"]


def test_directive_set_to_false_is_removed_but_keeps_its_provenance() -> None:
    policy = over_default({"csp": {"page": {"worker-src": False}}}, source="nocsp.toml")
    assert "worker-src" not in policy.csp["page"]
    assert policy.values["csp.page.worker-src"] is None
    assert policy.provenance["csp.page.worker-src"] == "nocsp.toml"


def test_upgrade_insecure_requests_takes_true_and_no_sources() -> None:
    policy = over_default({"csp": {"page": {"upgrade-insecure-requests": True}}})
    assert policy.csp["page"]["upgrade-insecure-requests"] == ()
    assert "upgrade-insecure-requests" in csp.serialize(policy.csp["page"])


def test_origins_are_normalised_and_deduplicated() -> None:
    """The allow-list is compared exactly with a normalised Origin header, so the list itself is
    normalised once at load time."""
    policy = over_default(
        {
            "cors": {
                "allow_origins": [
                    "https://TRUSTED.example.com:443",
                    "https://trusted.example.com",
                    "http://localhost:8888",
                ]
            }
        }
    )
    assert policy.cors.allow_origins == ("https://trusted.example.com", "http://localhost:8888")


def test_null_origin_is_accepted_only_when_listed() -> None:
    assert "null" not in load_policy().cors.allow_origins
    assert over_default({"cors": {"allow_origins": ["null"]}}).cors.allow_origins == ("null",)


def test_incomplete_first_layer_is_refused() -> None:
    """Only a complete profile may be the base; otherwise a key would have no value at all."""
    with pytest.raises(PolicyError) as info:
        build_policy([parse_layer("partial.toml", {"cors": {"allow_credentials": False}})])
    assert info.value.source == "partial.toml"
    assert info.value.key in FIELDS
    assert "not set by any layer" in str(info.value)


def test_policy_is_frozen() -> None:
    """A request handler must not be able to change the policy it enforces."""
    policy = load_policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.cors = policy.cors  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.cors.allow_credentials = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.values["cors.allow_credentials"] = True  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.csp["page"] = {}  # type: ignore[index]


# --- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_is_a_sha256_of_the_effective_values() -> None:
    policy = load_policy()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", policy.fingerprint)
    assert policy.fingerprint == fingerprint_of(policy.values)


def test_restating_a_default_keeps_the_fingerprint_and_a_change_alters_it() -> None:
    default = load_policy()
    same = over_default({"cors": {"allow_origins": []}})
    changed = over_default({"cors": {"allow_origins": ["https://trusted.example.com"]}})
    assert same.fingerprint == default.fingerprint
    assert changed.fingerprint != default.fingerprint


# --- loosening ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "default", "looser"),
    [
        ("cors.allow_origins", ("https://a.example.com",), (), True),
        ("cors.allow_origins", (), ("https://a.example.com",), False),
        ("paths.deny", (".ssh/**",), (".ssh/**", ".env*"), True),
        ("paths.deny", (".ssh/**", ".env*", "x/**"), (".ssh/**", ".env*"), False),
        ("tokens.min_entropy_bits", 128, 256, True),
        ("tokens.min_entropy_bits", 256, 128, False),
        ("headers.hsts_max_age", 0, 31536000, True),
        ("terminals.enabled", True, False, True),
        ("terminals.enabled", False, True, False),
        ("headers.hsts_include_subdomains", False, True, True),
        ("headers.hsts_include_subdomains", True, False, False),
        ("tokens.url_tokens", "never", "navigation-exchange", True),  # changed: review it
        ("csp.page.script-src", ("'self'",), ("'self'", "'unsafe-eval'"), True),  # changed
        ("cors.allow_origins", (), (), False),
    ],
)
def test_loosens_follows_the_fields_direction(
    key: str, value: Any, default: Any, looser: bool
) -> None:
    """Every loosening must be visible (``policy explain`` and ``audit`` say LOOSENED); a
    tightening must not be reported as one, or the reports are noise."""
    assert loosens(key, value, default) is looser


def test_loosenings_lists_each_loosened_key_with_the_file_that_did_it() -> None:
    policy = over_default(
        {"terminals": {"enabled": True}, "tokens": {"min_entropy_bits": 256}}, "loose.toml"
    )
    loose = {key: source for key, _value, _default, source in loosenings(policy)}
    assert loose == {"terminals.enabled": "loose.toml"}


def test_default_policy_has_no_loosenings() -> None:
    assert loosenings(load_policy()) == []


# --- errors: every one names the file, the key, the value and what is allowed -------------------


def assert_names_everything(err: PolicyError, source: str, key: str, value: Any) -> None:
    text = str(err)
    assert err.source == source
    assert err.key == key
    assert text.startswith(f"{source}: {key}: ")
    assert f"value: {value!r}" in text
    assert err.allowed == describe_allowed(FIELDS[key])
    assert f"allowed: {err.allowed}" in text


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("cors.allow_credentials", "yes", "expected true or false"),
        ("cors.allow_origins", "https://trusted.example.com", "expected a list"),
        ("cors.allow_origins", ["*"], "wildcards are never allowed"),
        ("cors.allow_origins", ["https://x/path"], "not an origin"),
        ("cors.allow_origins", ["https://*.example.com"], "wildcards are never allowed"),
        ("cors.allow_origins", ["https://trusted.example.com", 1], "item [1] is int"),
        ("server.trusted_proxies", ["10.0.0.1/8"], "host bits set"),
        ("server.trusted_proxies", ["10.0.0.0/33"], "not a network in CIDR form"),
        ("server.public_hostnames", ["*.example.com"], "not a DNS host name"),
        ("server.public_hostnames", ["https://example.com"], "not a DNS host name"),
        ("tokens.url_tokens", "always", "not one of the allowed values"),
        ("headers.x_frame_options", "ALLOW-FROM https://x", "not one of the allowed values"),
        ("tokens.min_entropy_bits", 64, "below the minimum 128"),
        ("tokens.min_entropy_bits", 1024, "above the maximum 512"),
        ("tokens.min_entropy_bits", True, "expected an integer"),
        ("tokens.min_entropy_bits", 128.0, "expected an integer"),
        ("headers.permissions_policy", "camera=()\r\nX-Evil: 1", "printable ASCII"),
        ("routes.public", ["login"], "starts with '/'"),
        ("routes.public", ["/login$"], "trailing '$'"),
        ("routes.public", ["/(unclosed"], "not a valid regular expression"),
        ("paths.deny", ["/etc/passwd"], "relative to the served root"),
        ("paths.allow", ["../secrets/**"], "'..' has no meaning"),
        ("csp.page.script-src", ["'self'; script-src *"], "';'"),
        ("csp.page.script-src", ["'self'\nscript-src *"], "whitespace"),
        ("csp.page.img-src", ["https://ex\u00e4mple.com"], "non-ASCII"),
        ("csp.page.script-src", ["'unsafe-everything'"], "not a CSP keyword"),
        ("csp.page.script-src", ["'none'", "'self'"], "cannot be combined"),
        ("csp.page.script-src", [], "at least one source"),
        ("csp.page.script-src", True, "only meaningful for upgrade-insecure-requests"),
        ("csp.page.script-src", "'self'", "expected a list of source strings"),
        ("csp.files.sandbox", ["allow-everything"], "not a sandbox flag"),
        ("csp.page.upgrade-insecure-requests", ["'self'"], "takes no value"),
    ],
)
def test_bad_value_error_names_file_key_value_and_allowed(key: str, value: Any, why: str) -> None:
    """The operator fixes the file from the message alone."""
    *tables, name = key.split(".")
    doc: dict[str, Any] = {name: value}
    for table in reversed(tables):
        doc = {table: doc}
    err = policy_error(doc, source="/etc/hardened-server/site.toml")
    assert_names_everything(err, "/etc/hardened-server/site.toml", key, value)
    assert why in err.problem


@pytest.mark.parametrize(
    ("doc", "key", "suggestion"),
    [
        ({"cors": {"allow_orgins": []}}, "cors.allow_orgins", "cors.allow_origins"),
        ({"corss": {}}, "corss", "cors"),
        ({"csp": {"page": {"script-srcc": ["'self'"]}}}, "csp.page.script-srcc", "script-src"),
        ({"csp": {"pages": {}}}, "csp.pages", "csp.page"),
        ({"server": {"trusted_proxy": []}}, "server.trusted_proxy", "server.trusted_proxies"),
    ],
)
def test_unknown_key_is_refused_with_a_did_you_mean(
    doc: dict[str, Any], key: str, suggestion: str
) -> None:
    """A misspelt key silently ignored is a setting the operator believes is in force."""
    err = policy_error(doc)
    assert err.source == "user.toml"
    assert err.key == key
    assert str(err).startswith(f"user.toml: {key}: unknown key")
    assert "did you mean" in err.fix
    assert suggestion in err.fix


def test_unknown_csp_directive_is_refused_listing_the_known_directives() -> None:
    """``navigate-to`` (dropped from CSP3) or a typo would otherwise vanish from the header."""
    err = policy_error({"csp": {"page": {"navigate-to": ["'self'"]}}})
    assert err.key == "csp.page.navigate-to"
    assert err.problem == "unknown key"
    for directive in ("script-src", "default-src", "frame-ancestors"):
        assert directive in err.allowed


def test_unknown_top_level_table_lists_the_known_tables() -> None:
    err = policy_error({"security": {"strict": True}})
    assert err.key == "security"
    assert err.allowed.split(", ") == sorted({key.split(".")[0] for key in FIELDS})
    assert {"server", "cors", "paths", "csp"} <= set(err.allowed.split(", "))


def test_table_given_as_a_value_is_refused() -> None:
    err = policy_error({"cors": ["https://trusted.example.com"]})
    assert err.key == "cors"
    assert "is a table, not a value" in str(err)


def test_quoted_key_with_a_dot_is_refused() -> None:
    """``"cors.allow_origins" = [...]`` at the top level is a different TOML key from
    ``[cors] allow_origins``; accepting both lets one file hold two values for one key, and the
    one a reviewer reads need not be the one in force."""
    err = policy_error(
        {
            "cors.allow_origins": ["https://evil.example.com"],
            "cors": {"allow_origins": ["https://trusted.example.com"]},
        }
    )
    assert err.key == "cors.allow_origins"


# --- files ----------------------------------------------------------------------------------------


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cors\nallow_origins = []\n")
    with pytest.raises(PolicyError) as info:
        read_layer(bad)
    assert info.value.source == str(bad)
    assert str(info.value).startswith(f"{bad}: is not valid TOML")


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[headers]\npermissions_policy = "caf\xe9"\n')
    with pytest.raises(PolicyError) as info:
        read_layer(bad)
    assert info.value.source == str(bad)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy([tmp_path / "nope.toml"])
    assert info.value.source == str(tmp_path / "nope.toml")
    assert "file not found" in str(info.value)


def test_error_in_a_file_names_that_file_not_the_default(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    bad = tmp_path / "bad.toml"
    good.write_text("[terminals]\nenabled = false\n")
    bad.write_text('[tokens]\nurl_tokens = "always"\n')
    with pytest.raises(PolicyError) as info:
        load_policy([good, bad])
    assert info.value.source == str(bad)
    assert info.value.key == "tokens.url_tokens"
