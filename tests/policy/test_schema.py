"""The schema table is the one declaration of a policy key: the typed model, the loader's
mapping, the restart-only set and the generated reference all come from it
(hardened_server/policy/schema.py)."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path

import pytest

from hardened_server.cli import main as cli_main
from hardened_server.policy import loader
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import build_policy, default_layer, parse_layer, shipped_policy
from hardened_server.policy.model import NbconvertPolicy, Policy
from hardened_server.policy.reload import RESTART_ONLY, restart_only_changes
from hardened_server.policy.schema import (
    FIELDS,
    SCHEMA,
    SECTIONS,
    Kind,
    Loosen,
    Schema,
    Section,
    key,
)

#: What each kind of key reads as in the model.
_PYTHON_TYPE = {
    Kind.BOOL: bool,
    Kind.INT: int,
    Kind.STR: str,
    Kind.ENUM: str,
    Kind.LIST: tuple,
    Kind.ROUTEMAP: Mapping,
    Kind.SCOPETABLE: Mapping,
}


def test_policy_has_one_attribute_per_section_of_the_declared_type() -> None:
    hints = typing.get_type_hints(Policy)
    sections = {s.name: s.model for s in SECTIONS}
    declared = {name: hints[name] for name in hints if name in sections}
    assert declared == sections
    extra = set(hints) - set(sections)
    assert extra == {
        "csp", "values", "provenance", "sources", "fingerprint", "profiles", "entry_provenance",
        "history",
    }


def test_every_key_reads_as_its_kind_in_the_shipped_policy() -> None:
    policy = shipped_policy()
    for section in SECTIONS:
        model = getattr(policy, section.name)
        assert type(model) is section.model
        for attr in dataclasses.fields(section.model):
            value = getattr(model, attr.name)
            name = f"{section.name}.{attr.name}"
            if name in FIELDS:
                assert isinstance(value, _PYTHON_TYPE[FIELDS[name].kind]), name
                assert value == policy.values[name]
            else:  # one key per route class, read as a mapping
                assert isinstance(value, Mapping), name
                assert dict(value) == {
                    k.rsplit(".", 1)[1]: v
                    for k, v in policy.values.items()
                    if k.startswith(name + ".")
                }


def test_kinds_and_loosening_are_enums() -> None:
    for field in FIELDS.values():
        assert isinstance(field.kind, Kind)
        assert isinstance(field.loosen, Loosen)


def test_restart_only_keys_are_the_ones_flagged_in_the_schema() -> None:
    assert {k: f.restart for k, f in FIELDS.items() if f.restart} == RESTART_ONLY
    assert "nbconvert.sanitize_html" in RESTART_ONLY
    assert all(k in RESTART_ONLY for k in FIELDS if k.startswith("audit."))
    assert "cors.allow_origins" not in RESTART_ONLY


# ---------------------------------------------------------------------------------------------
# Adding a key touches only the schema entry, the default profile, the code that reads it and
# its test: a key added in-test reaches the loader, the model, the reference and the reload.


@dataclasses.dataclass(frozen=True, slots=True)
class _NbconvertWithExtra(NbconvertPolicy):
    embed_images: bool = key(
        Kind.BOOL,
        "A key that exists only in this test.",
        Loosen.IF_TRUE,
        "true or false",
        restart="test: read once at start-up",
    )


@pytest.fixture
def extended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Schema:
    """The shipped schema with nbconvert.embed_images added, and a default profile setting it
    (a copy of the shipped one with one more line)."""
    sections = tuple(
        dataclasses.replace(s, model=_NbconvertWithExtra) if s.name == "nbconvert" else s
        for s in SECTIONS
    )
    profile = (loader.profiles_dir() / "default.toml").read_text(encoding="utf-8")
    profile = profile.replace("[nbconvert]\n", "[nbconvert]\nembed_images = false\n", 1)
    (tmp_path / "default.toml").write_text(profile, encoding="utf-8")
    monkeypatch.setattr(loader, "profiles_dir", lambda: tmp_path)
    return Schema.of(sections)


def test_an_added_key_reaches_the_loader_and_the_model(extended: Schema) -> None:
    assert extended.fields["nbconvert.embed_images"].kind is Kind.BOOL
    default = build_policy([default_layer(schema=extended)], schema=extended)
    assert default.values["nbconvert.embed_images"] is False
    user = parse_layer("user.toml", {"nbconvert": {"embed_images": True}}, schema=extended)
    policy = build_policy([default_layer(schema=extended), user], schema=extended)
    assert isinstance(policy.nbconvert, _NbconvertWithExtra)
    assert policy.nbconvert.embed_images is True
    assert policy.nbconvert.sanitize_html is True
    assert policy.provenance["nbconvert.embed_images"] == "user.toml"
    # validated like every other bool, the error naming file, key and allowed values
    with pytest.raises(PolicyError) as err:
        parse_layer("user.toml", {"nbconvert": {"embed_images": "yes"}}, schema=extended)
    assert "user.toml" in str(err.value)
    assert "nbconvert.embed_images" in str(err.value)
    assert "true or false" in str(err.value)
    # the shipped schema does not know it
    with pytest.raises(PolicyError, match="unknown key"):
        parse_layer("user.toml", {"nbconvert": {"embed_images": True}})


def test_an_added_key_missing_from_the_default_profile_is_refused(extended: Schema) -> None:
    profile = tomllib.loads((loader.profiles_dir() / "default.toml").read_text(encoding="utf-8"))
    del profile["nbconvert"]["embed_images"]
    layer = parse_layer("default.toml", profile, schema=extended)
    with pytest.raises(PolicyError, match="is not set by any layer") as err:
        build_policy([layer], schema=extended)
    assert err.value.key == "nbconvert.embed_images"


def test_an_added_key_is_documented_in_the_reference(extended: Schema) -> None:
    text = cli_main.reference_markdown(schema=extended)
    entry = text.split("### `nbconvert.embed_images`", 1)[1].split("\n## ", 1)[0]
    assert "A key that exists only in this test." in entry
    assert "- type: bool" in entry
    assert "- default: `false`" in entry
    assert "- loosens when: true" in entry
    assert "- reload: needs a restart: test: read once at start-up" in entry


def test_an_added_restart_only_key_refuses_a_reload(extended: Schema) -> None:
    assert extended.restart_only["nbconvert.embed_images"] == "test: read once at start-up"
    assert "nbconvert.embed_images" not in SCHEMA.restart_only
    old = build_policy([default_layer(schema=extended)], schema=extended)
    on = parse_layer("user.toml", {"nbconvert": {"embed_images": True}}, schema=extended)
    new = build_policy([default_layer(schema=extended), on], schema=extended)
    assert restart_only_changes(old, new, schema=extended) == [
        "nbconvert.embed_images (False -> True): test: read once at start-up"
    ]


def test_a_section_attribute_not_declared_with_key_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Loose:
        plain: bool

    with pytest.raises(TypeError, match="not declared with key"):
        Schema.of((Section("loose", Loose),))
