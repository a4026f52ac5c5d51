"""The JSON body schemas (hardened_server/policy/bodies.py): what each REST handler assumes of
its body, checked before it runs, so type confusion is a 400 naming the field, not a 500.

The live side (each formerly-500 request answered 400, the well-formed ones still working,
schemathesis over jupyter_server's api.yaml) is in ``tests/hostile/test_hostile_traffic.py``.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardened_server.policy.bodies import (
    CONTENTS_PATCH,
    CONTENTS_POST,
    CONTENTS_PUT,
    RULES,
    BodyRule,
    check,
    check_body,
    merge_conflict,
    parse_body,
    rule_for,
)

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
PUT = BodyRule(CONTENTS_PUT, optional=True)
# found by fuzz/fuzz_bodies.py: each one an exception in nbformat's notary or writer (a 500)
CELL_NO_METADATA = {"cell_type": "markdown", "source": "x"}
CELL_CODE_NO_OUTPUTS = {"cell_type": "code", "source": "", "metadata": {}}
CELL_STREAM_NO_TEXT = {
    "cell_type": "code",
    "source": "",
    "metadata": {},
    "outputs": [{"output_type": "stream", "name": "stdout"}],
}
CELL_BAD_OUTPUT = {"cell_type": "code", "source": "", "metadata": {}, "outputs": [{}]}
CELL_BAD_ATTACHMENT = {
    "cell_type": "markdown",
    "source": "x",
    "metadata": {},
    "attachments": {"a.png": 1},
}


def test_every_rule_names_a_real_handler_method() -> None:
    for name, method in RULES:
        module, _, cls = name.rpartition(".")
        handler = getattr(importlib.import_module(module), cls)
        assert callable(getattr(handler, method.lower())), (name, method)


def test_a_subclass_is_matched_through_its_mro() -> None:
    names = ["ext.MyContents", "jupyter_server.services.contents.handlers.ContentsHandler"]
    assert rule_for(names, "PATCH") is not None
    assert rule_for(names, "GET") is None
    assert rule_for(["ext.Other"], "PATCH") is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"path": {}}', "body.path must be a string, not an object"),
        ("[]", "body must be an object, not an array"),
        ("", "a JSON body is required"),
        ("{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ('{"path": "\\ud800"}', "unpaired surrogate"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),  # RecursionError in json
    ],
)
def test_a_rename_body_is_checked(body: str | bytes, needle: str) -> None:
    raw = body if isinstance(body, bytes) else body.encode()
    problem = check_body(BodyRule(CONTENTS_PATCH), raw)
    assert problem is not None
    assert needle in problem


@pytest.mark.parametrize(
    "model",
    [
        {"type": "file", "format": "text", "content": "x"},
        {"type": "file", "format": "base64", "content": "aGk="},
        {"type": "notebook", "format": "json", "content": NOTEBOOK},
        {"type": "directory"},
        {"type": "file", "format": "text", "content": "x", "chunk": -1, "name": "a", "path": "a"},
        {"type": "file", "format": "text", "content": "\U0001f600"},  # a paired surrogate in JSON
        {"copy_from": "a.ipynb"},  # the handler refuses it with its own 400
        {"type": "unknown-type", "format": "text", "content": "x"},  # the handler: a file
    ],
)
def test_well_formed_saves_pass(model: dict[str, Any]) -> None:
    assert check_body(PUT, json.dumps(model).encode()) is None


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ({"type": {}}, "body.type must be a string or null"),
        ({"type": "file", "format": "text", "content": {}}, "body.content must be a string"),
        ({"type": "file", "format": "base64", "content": "x"}, "not base64"),
        ({"type": "file", "format": "base64", "content": "\u00e9"}, "not base64"),
        ({"type": "file", "content": "x"}, "format must be 'text' or 'base64'"),
        ({"type": "notebook", "content": 1}, "body.content must be an object"),
        ({"type": "notebook", "content": {}}, "body.content must have the field 'cells'"),
        (
            {"type": "notebook", "content": {**NOTEBOOK, "cells": [1]}},
            "body.content.cells[0] must be an object",
        ),
        ({"type": "notebook", "format": "text", "content": NOTEBOOK}, "must be 'json'"),
        ({"type": "directory", "content": "x"}, "must be null for a directory"),
        ({"type": "weird", "format": "text", "content": {}}, "body.content must be a string"),
        ({"type": "file", "format": "text", "content": None}, "must not be null"),
        ({"type": "notebook", "content": None}, "must not be null"),
        (
            {"type": "notebook", "content": {**NOTEBOOK, "nbformat": 3}},
            "body.content.nbformat must be one of 4",
        ),
        (
            {"type": "notebook", "content": {**NOTEBOOK, "cells": [CELL_NO_METADATA]}},
            "body.content.cells[0] must have the field 'metadata'",
        ),
        (
            {"type": "notebook", "content": {**NOTEBOOK, "cells": [CELL_BAD_OUTPUT]}},
            "body.content.cells[0].outputs[0] must have the field 'output_type'",
        ),
        (
            {"type": "notebook", "content": {**NOTEBOOK, "cells": [CELL_BAD_ATTACHMENT]}},
            'body.content.cells[0].attachments["a.png"] must be an object',
        ),
        ({"format": "base64", "content": "aGk="}, "body.type is required with content"),
        (
            {"type": "notebook", "content": {**NOTEBOOK, "cells": [CELL_STREAM_NO_TEXT]}},
            "body.content.cells[0].outputs[0] is a stream output and must have the field 'text'",
        ),
        (
            {"type": "notebook", "content": {**NOTEBOOK, "cells": [CELL_CODE_NO_OUTPUTS]}},
            "body.content.cells[0] is a code cell and must have the field 'outputs'",
        ),
        ({"chunk": "1"}, "body.chunk must be an integer"),
        ({"chunk": True}, "body.chunk must be an integer"),
    ],
)
def test_type_confused_saves_are_refused(model: dict[str, Any], needle: str) -> None:
    problem = check_body(PUT, json.dumps(model).encode())
    assert problem is not None
    assert needle in problem


def test_a_body_is_parsed_as_the_handler_parses_it() -> None:
    """get_json_body strips ASCII whitespace, vertical tab included, which JSON does not allow
    (fuzz/corpus/bodies/vertical_tabs_around_json)."""
    body = b'\x0b\x0c {"a": {"b": 1}} \x0b'
    assert check_body(BodyRule({"type": "object"}), body) is None
    assert parse_body(body) == {"a": {"b": 1}}


def test_an_empty_body_is_allowed_only_where_the_handler_has_a_default() -> None:
    assert check_body(BodyRule(CONTENTS_POST, optional=True), b"  ") is None
    assert check_body(BodyRule(CONTENTS_POST, optional=True), b"null") is None
    assert check_body(BodyRule(CONTENTS_PATCH), b"") is not None


def test_a_config_patch_may_not_merge_an_object_into_a_scalar() -> None:
    current = {"a": "flat", "b": {"c": 1}}
    assert merge_conflict(current, {"a": {"x": 1}}) is not None
    assert merge_conflict(current, {"b": {"c": {"d": 1}}}) is not None
    assert merge_conflict(current, {"b": {"e": {"f": 1}}}) is None
    assert merge_conflict(current, {"a": 2, "b": None}) is None
    assert merge_conflict({}, {"new": {"x": 1}}) is None
    # no client-chosen key is repeated in the message (it is logged)
    message = merge_conflict({"zq\nkey": 1}, {"zq\nkey": {"x": 1}})
    assert message is not None
    assert "zq" not in message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["path", "type", "format", "content", "chunk", "name", "cells", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(rule=st.sampled_from(sorted(RULES.values(), key=repr)), value=json_values)
def test_any_json_value_gets_a_verdict_never_an_exception(rule: BodyRule, value: Any) -> None:
    problem = check_body(rule, json.dumps(value).encode())
    assert problem is None or (isinstance(problem, str) and problem)
    assert check(rule.schema, value) == problem or value is None or problem is not None


@given(st.binary(max_size=64))
def test_any_bytes_get_a_verdict_never_an_exception(data: bytes) -> None:
    for rule in RULES.values():
        problem = check_body(rule, data)
        assert problem is None or isinstance(problem, str)


def test_the_parsed_body_handed_to_the_handler_is_what_parsing_again_gives() -> None:
    """The body check parses once and hands the value to the handler's get_json_body (a 1 MiB
    notebook is not parsed twice): it must be exactly what json.loads of the body gives."""
    from hardened_server.policy import bodies

    rule = bodies.RULES[("jupyter_server.services.contents.handlers.ContentsHandler", "PUT")]
    body = json.dumps(
        {"type": "file", "format": "text", "content": "x\u00e9", "path": "a.txt"}
    ).encode()
    problem, value = bodies.parse_and_check_body(rule, b"  " + body + b"\n")
    assert problem is None
    assert value == json.loads(body)
    assert bodies.parse_and_check_body(rule, b"   ")[1] is bodies.NOT_PARSED
    bad = bodies.parse_and_check_body(rule, b"{not json")
    assert bad[0] is not None
    assert bad[1] is bodies.NOT_PARSED
    assert bodies.check_body(rule, b"[]") == bodies.parse_and_check_body(rule, b"[]")[0]


def _notebook_saves() -> st.SearchStrategy[Any]:
    from tests.enforcement.test_nbschema import _mutated

    return st.builds(
        lambda nb, fmt: {"type": "notebook", "format": fmt, "content": nb},
        _mutated(),
        st.sampled_from(["json", None]),
    )


@settings(max_examples=400, deadline=None)
@given(
    rule=st.sampled_from(sorted(RULES.values(), key=repr)),
    value=json_values | _notebook_saves(),
)
def test_the_compiled_check_answers_as_check(rule: BodyRule, value: Any) -> None:
    """``BodyRule.fits`` (compiled once, #22) says "fits" exactly when ``check`` finds no
    problem; the message of a refusal is still check's."""
    assert rule.fits(value) is (check(rule.schema, value) is None)
    assert rule.problem(value) == check(rule.schema, value)


def test_the_compiled_check_takes_the_benchmark_save() -> None:
    from bench import fixtures

    body = json.loads(fixtures.save_body())
    assert PUT.fits(body)
    body["content"]["cells"][3]["outputs"][0].pop("text")
    assert not PUT.fits(body)
    assert PUT.problem(body) == (
        "body.content.cells[3].outputs[0] is a stream output and must have the field 'text'"
    )
