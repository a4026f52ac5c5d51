"""``hardened-server policy ...`` as an operator runs it: a real process, real files, exit codes.

Run as ``python -m hardened_server`` so the test uses the interpreter (and the checkout) under
test rather than whatever ``hardened-server`` is first on ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from hardened_server.policy.loader import load_policy, shipped_profiles
from hardened_server.policy.schema import FIELDS

DEFAULT_PROFILE = str(shipped_profiles()["default"])
EXIT_REFUSED = 2
EXIT_USAGE = 1


def hs(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hardened_server", "policy", *map(str, args)],
        cwd=cwd,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- explain ------------------------------------------------------------------------------------


def test_explain_names_the_policy_file_that_set_the_value(tmp_path: Path) -> None:
    """The issue's first ask: the value and the file it came from, and that it loosens."""
    policy = write(
        tmp_path / "site.toml", '[cors]\nallow_origins = ["https://trusted.example.com"]\n'
    )
    result = hs("explain", "cors.allow_origins", "--policy", policy, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'cors.allow_origins = ["https://trusted.example.com"]' in out
    assert f"set by: {policy}" in out
    assert "shipped default: []" in out
    assert "LOOSENED relative to the shipped default" in out
    assert "allowed: origins of the form" in out


def test_explain_shows_the_merge_of_a_list_layer_by_layer(tmp_path: Path) -> None:
    """Which layer added what, and what a replacement dropped (with the way to extend)."""
    add = write(tmp_path / "add.toml",
                '[routes]\naccept_undecorated = { extend = ["/myext/ws"] }\n')
    replace = write(tmp_path / "replace.toml", '[routes]\naccept_undecorated = ["/other"]\n')
    result = hs("explain", "routes.accept_undecorated", "--policy", add, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "merge (layer by layer):" in out
    assert f"{DEFAULT_PROFILE}: set [" in out
    assert f'{add}: extend + ["/myext/ws"]' in out
    assert "/lsp/ws/" in out.split("\n")[0]  # the effective value kept the shipped entry
    result = hs("explain", "routes.accept_undecorated", "--policy", add, "--policy", replace,
                cwd=tmp_path)
    out = result.stdout
    assert f'{replace}: set ["/other"]' in out
    assert "dropped [" in out
    assert "/myext/ws" in out.split("dropped", 1)[1]
    assert "routes.accept_undecorated = { extend = [...] }" in out


def test_explain_without_policy_names_the_shipped_default_profile(tmp_path: Path) -> None:
    result = hs("explain", "cors.allow_origins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cors.allow_origins = []" in result.stdout
    assert f"set by: {DEFAULT_PROFILE}" in result.stdout
    assert "LOOSENED" not in result.stdout


def test_explain_names_the_last_of_several_files(tmp_path: Path) -> None:
    first = write(tmp_path / "first.toml", "[terminals]\nenabled = true\n")
    second = write(tmp_path / "second.toml", "[terminals]\nenabled = false\n")
    result = hs(
        "explain", "terminals.enabled", "--policy", first, "--policy", second, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "terminals.enabled = false" in result.stdout
    assert f"set by: {second}" in result.stdout
    assert "LOOSENED" not in result.stdout


def test_explain_does_not_call_a_tightening_loosened(tmp_path: Path) -> None:
    policy = write(tmp_path / "strict.toml", "[tokens]\nmin_entropy_bits = 256\n")
    result = hs("explain", "tokens.min_entropy_bits", "--policy", policy, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tokens.min_entropy_bits = 256" in result.stdout
    assert "LOOSENED" not in result.stdout
    assert "CHANGED" not in result.stdout


def test_explain_says_loosened_when_a_deny_list_shrinks(tmp_path: Path) -> None:
    policy = write(tmp_path / "loose.toml", "[paths]\ndeny = []\n")
    result = hs("explain", "paths.deny", "--policy", policy, cwd=tmp_path)
    assert "LOOSENED" in result.stdout


def test_explain_flags_an_unordered_change_for_review(tmp_path: Path) -> None:
    """A CSP directive or an enum has no looser/stricter order: any change is shown for review."""
    policy = write(
        tmp_path / "csp.toml", "[csp.page]\nscript-src = [\"'self'\", \"https://cdn.example.com\"]\n"
    )
    result = hs("explain", "csp.page.script-src", "--policy", policy, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CHANGED (review: may loosen)" in result.stdout
    assert f"set by: {policy}" in result.stdout


def test_explain_a_table_explains_each_key_in_it(tmp_path: Path) -> None:
    result = hs("explain", "cors", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cors.allow_origins = " in result.stdout
    assert "cors.allow_credentials = " in result.stdout


def test_explain_an_unknown_key_is_a_usage_error(tmp_path: Path) -> None:
    result = hs("explain", "cors.allow_orgins", cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert "unknown policy key 'cors.allow_orgins'" in result.stderr
    assert "policy reference" in result.stderr


def test_explain_with_a_bad_policy_refuses_and_names_the_file(tmp_path: Path) -> None:
    policy = write(tmp_path / "bad.toml", '[cors]\nallow_origins = ["*"]\n')
    result = hs("explain", "cors.allow_origins", "--policy", policy, cwd=tmp_path)
    assert result.returncode == EXIT_REFUSED
    assert f"{policy}: cors.allow_origins:" in result.stderr


# --- validate -----------------------------------------------------------------------------------

# (id, file body, key, value as printed, a fragment of the allowed values)
BAD_FILES = [
    (
        "unknown-key",
        "[cors]\nallow_orgins = []\n",
        "cors.allow_orgins",
        None,
        "allow_origins",
    ),
    (
        "wrong-type-bool",
        '[cors]\nallow_credentials = "yes"\n',
        "cors.allow_credentials",
        "'yes'",
        "true or false",
    ),
    (
        "wrong-type-list",
        '[cors]\nallow_origins = "https://trusted.example.com"\n',
        "cors.allow_origins",
        "'https://trusted.example.com'",
        "origins of the form https://host[:port]",
    ),
    (
        "origin-star",
        '[cors]\nallow_origins = ["*"]\n',
        "cors.allow_origins",
        "['*']",
        "origins of the form https://host[:port]",
    ),
    (
        "origin-with-path",
        '[cors]\nallow_origins = ["https://x/path"]\n',
        "cors.allow_origins",
        "['https://x/path']",
        "origins of the form https://host[:port]",
    ),
    (
        "cidr-host-bits",
        '[server]\ntrusted_proxies = ["10.0.0.1/8"]\n',
        "server.trusted_proxies",
        "['10.0.0.1/8']",
        "CIDR networks",
    ),
    (
        "bad-enum",
        '[tokens]\nurl_tokens = "always"\n',
        "tokens.url_tokens",
        "'always'",
        "'navigation-exchange', 'never'",
    ),
    (
        "int-out-of-range",
        "[tokens]\nmin_entropy_bits = 64\n",
        "tokens.min_entropy_bits",
        "64",
        "an integer from 128 to 512",
    ),
    (
        "csp-semicolon",
        "[csp.page]\nscript-src = [\"'self'; script-src *\"]\n",
        "csp.page.script-src",
        "[\"'self'; script-src *\"]",
        "a list of CSP source tokens",
    ),
    (
        "csp-newline",
        "[csp.page]\nscript-src = [\"'self'\\nscript-src *\"]\n",
        "csp.page.script-src",
        "[\"'self'\\nscript-src *\"]",
        "a list of CSP source tokens",
    ),
    (
        "csp-non-ascii",
        '[csp.page]\nimg-src = ["https://ex\u00e4mple.com"]\n',
        "csp.page.img-src",
        "['https://ex\u00e4mple.com']",
        "a list of CSP source tokens",
    ),
    (
        "csp-unknown-directive",
        "[csp.page]\nnavigate-to = [\"'self'\"]\n",
        "csp.page.navigate-to",
        None,
        "script-src",
    ),
]


@pytest.mark.parametrize(
    ("body", "key", "value", "allowed"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES],
)
def test_validate_refuses_a_bad_file_naming_file_key_value_and_allowed(
    tmp_path: Path, body: str, key: str, value: str | None, allowed: str
) -> None:
    """The operator fixes the file from the message alone; the exit code stops a deploy script."""
    bad = write(tmp_path / "bad.toml", body)
    result = hs("validate", bad, cwd=tmp_path)
    assert result.returncode == EXIT_REFUSED
    assert "ok" not in result.stdout
    err = result.stderr
    assert f"{bad}: {key}: " in err
    if value is not None:
        assert f"value: {value}" in err
    assert "allowed: " in err
    assert allowed in err


def test_validate_suggests_the_key_that_was_meant(tmp_path: Path) -> None:
    bad = write(tmp_path / "typo.toml", "[cors]\nallow_orgins = []\n")
    result = hs("validate", bad, cwd=tmp_path)
    assert "did you mean cors.allow_origins?" in result.stderr


def test_validate_refuses_invalid_toml_naming_the_file(tmp_path: Path) -> None:
    bad = write(tmp_path / "syntax.toml", "[cors\nallow_origins = []\n")
    result = hs("validate", bad, cwd=tmp_path)
    assert result.returncode == EXIT_REFUSED
    assert f"{bad}: is not valid TOML" in result.stderr
    assert "line 1" in result.stderr


def test_validate_refuses_a_missing_file(tmp_path: Path) -> None:
    result = hs("validate", tmp_path / "missing.toml", cwd=tmp_path)
    assert result.returncode == EXIT_REFUSED
    assert "file not found" in result.stderr


def test_validate_accepts_a_good_file(tmp_path: Path) -> None:
    good = write(
        tmp_path / "good.toml",
        '[server]\npublic_hostnames = ["jupyter.example.org"]\n'
        'trusted_proxies = ["10.0.0.0/8"]\n'
        '[cors]\nallow_origins = ["https://trusted.example.com"]\n'
        "[csp.page]\nscript-src = [\"'self'\"]\n",
    )
    result = hs("validate", good, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{good}: ok"


def test_validate_checks_every_file_and_fails_if_any_is_bad(tmp_path: Path) -> None:
    good = write(tmp_path / "good.toml", "[terminals]\nenabled = false\n")
    bad = write(tmp_path / "bad.toml", '[tokens]\nurl_tokens = "always"\n')
    result = hs("validate", bad, good, cwd=tmp_path)
    assert result.returncode == EXIT_REFUSED
    assert f"{good}: ok" in result.stdout
    assert f"{bad}: tokens.url_tokens:" in result.stderr


@pytest.mark.parametrize("name", sorted(shipped_profiles()))
def test_validate_accepts_every_shipped_profile(tmp_path: Path, name: str) -> None:
    result = hs("validate", shipped_profiles()[name], cwd=tmp_path)
    assert result.returncode == 0, result.stderr


# --- show ---------------------------------------------------------------------------------------


def test_show_prints_fingerprint_layers_and_provenance(tmp_path: Path) -> None:
    policy = write(tmp_path / "site.toml", "[terminals]\nenabled = true\n")
    result = hs("show", "--policy", policy, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"fingerprint: sha256:[0-9a-f]{64}", lines[0])
    assert lines[1] == f"layers: {DEFAULT_PROFILE} -> {policy}"
    assert f"terminals.enabled = true    # {policy}" in lines
    assert f"cors.allow_origins = []    # {DEFAULT_PROFILE}" in lines
    # The loosening is listed again at the end, with the file to blame.
    tail = result.stdout.split("loosened or changed from the shipped default:", 1)[1]
    assert f"terminals.enabled    # {policy}" in tail


def test_show_of_the_default_lists_no_loosening(tmp_path: Path) -> None:
    result = hs("show", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "loosened" not in result.stdout


def test_show_json_has_fingerprint_sources_values_and_provenance(tmp_path: Path) -> None:
    policy = write(
        tmp_path / "site.toml", '[cors]\nallow_origins = ["https://trusted.example.com"]\n'
    )
    result = hs("show", "--json", "--policy", policy, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    expected = load_policy([policy])
    assert doc["fingerprint"] == expected.fingerprint
    assert doc["sources"] == [DEFAULT_PROFILE, str(policy)]
    assert doc["values"]["cors.allow_origins"] == ["https://trusted.example.com"]
    assert doc["provenance"]["cors.allow_origins"] == str(policy)
    assert doc["provenance"]["cors.allow_credentials"] == DEFAULT_PROFILE
    assert set(doc["values"]) == set(doc["provenance"]) == set(expected.values)
    assert {k for k, f in FIELDS.items() if f.kind != "directive"} <= set(doc["values"])


def test_show_text_and_json_agree_on_the_fingerprint(tmp_path: Path) -> None:
    text = hs("show", cwd=tmp_path).stdout.splitlines()[0].removeprefix("fingerprint: ")
    assert json.loads(hs("show", "--json", cwd=tmp_path).stdout)["fingerprint"] == text


def test_show_fingerprint_changes_with_a_value_not_with_a_restated_default(
    tmp_path: Path,
) -> None:
    """An audit compares fingerprints: restating the default is the same policy, a changed
    value is not."""
    restated = write(tmp_path / "same.toml", "[cors]\nallow_origins = []\n")
    changed = write(tmp_path / "changed.toml", "[cors]\nallow_credentials = true\n")

    def fingerprint(*args: str | Path) -> str:
        return json.loads(hs("show", "--json", *args, cwd=tmp_path).stdout)["fingerprint"]

    base = fingerprint()
    assert fingerprint("--policy", restated) == base
    assert fingerprint("--policy", changed) != base


def test_show_with_a_bad_policy_refuses(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", "[cors]\nallow_credentials = 1\n")
    result = hs("show", "--policy", bad, cwd=tmp_path)
    assert result.returncode == EXIT_REFUSED
    assert f"{bad}: cors.allow_credentials:" in result.stderr
    assert result.stdout == ""


# --- schema -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict:
    result = hs("schema", cwd=tmp_path_factory.mktemp("schema"))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def test_schema_is_a_draft_2020_12_json_schema(schema: dict) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False


def test_schema_describes_every_key(schema: dict) -> None:
    for key in FIELDS:
        node = schema
        for part in key.split("."):
            node = node["properties"][part]
        assert node["description"], key


@pytest.mark.parametrize("name", sorted(shipped_profiles()))
def test_every_shipped_profile_validates_against_the_exported_schema(
    schema: dict, name: str
) -> None:
    """Editors and CI pipelines validate policy files with the exported schema: it must accept
    what the server ships."""
    with open(shipped_profiles()[name], "rb") as fh:
        document = tomllib.load(fh)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize(
    "document",
    [
        {"cors": {"allow_orgins": []}},
        {"corss": {}},
        {"csp": {"page": {"navigate-to": ["'self'"]}}},
        {"headers": {"cache_control": {"everything": "no-store"}}},
    ],
    ids=["unknown-key", "unknown-table", "unknown-directive", "unknown-route-class"],
)
def test_file_with_an_unknown_key_does_not_validate_against_the_schema(
    schema: dict, document: dict
) -> None:
    """The schema must be as strict about unknown keys as the loader, or an editor would show a
    typo as valid."""
    assert not jsonschema.Draft202012Validator(schema).is_valid(document)


@pytest.mark.parametrize(
    "document",
    [
        {"cors": {"allow_credentials": "yes"}},
        {"cors": {"allow_origins": "https://trusted.example.com"}},
        {"tokens": {"url_tokens": "always"}},
        {"tokens": {"min_entropy_bits": 64}},
        {"csp": {"page": {"script-src": "'self'"}}},
    ],
)
def test_file_with_a_wrong_type_does_not_validate_against_the_schema(
    schema: dict, document: dict
) -> None:
    assert not jsonschema.Draft202012Validator(schema).is_valid(document)


# --- reference ----------------------------------------------------------------------------------


def test_reference_documents_every_non_csp_key(tmp_path: Path) -> None:
    result = hs("reference", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Policy reference\n")
    for key, field in FIELDS.items():
        name = field.group or key
        assert f"`{name}" in result.stdout, key
    assert str(Path(DEFAULT_PROFILE).parent) not in result.stdout  # no machine-specific paths
