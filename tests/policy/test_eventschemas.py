"""The one list of the server's own event schemas (:mod:`hardened_server.policy.eventschemas`)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jupyter_server
import pytest

from hardened_server.policy.eventschemas import (
    DECISION_SCHEMA_ID,
    JUPYTER_SERVER_EVENTS_PREFIX,
    JUPYTER_SERVER_SCHEMAS,
    SERVER_SCHEMAS,
    is_server_schema,
    is_trail_schema,
)


def test_the_trail_schema_id_is_the_registered_schemas_id():
    text = resources.files("hardened_server.trail").joinpath("schemas", "policy_decision.v1.json")
    assert json.loads(text.read_text(encoding="utf-8"))["$id"] == DECISION_SCHEMA_ID


def test_jupyter_servers_schemas_are_the_ones_it_ships():
    """The list follows jupyter_server: one id per ``event_schemas/<name>/v1.yaml``."""
    assert JUPYTER_SERVER_EVENTS_PREFIX == jupyter_server.JUPYTER_SERVER_EVENTS_URI + "/"
    shipped = Path(jupyter_server.__file__).parent / "event_schemas"
    ids = {
        f"{JUPYTER_SERVER_EVENTS_PREFIX}{p.parent.name}/{p.stem}"
        for p in shipped.glob("*/v*.yaml")
    }
    assert ids == JUPYTER_SERVER_SCHEMAS


@pytest.mark.parametrize("schema_id", sorted(SERVER_SCHEMAS))
def test_every_listed_schema_is_a_server_schema(schema_id):
    assert is_server_schema(schema_id)


@pytest.mark.parametrize(
    "schema_id",
    [
        "https://events.hardened-server.invalid/policy_decision/v2",
        "https://events.jupyter.org/jupyter_server/some_future_service/v1",
    ],
)
def test_anything_under_a_server_prefix_is_a_server_schema(schema_id):
    assert is_server_schema(schema_id)


@pytest.mark.parametrize(
    "schema_id",
    [
        "https://events.example.org/my-extension/click/v1",
        "https://events.jupyter.org/jupyterlab/ui/v1",
        "https://events.hardened-server.invalid",  # the prefix needs its separator
        "",
        None,
        42,
    ],
)
def test_client_schemas_and_non_strings_are_not_server_schemas(schema_id):
    assert not is_server_schema(schema_id)


def test_only_the_trails_schemas_are_trail_schemas():
    assert is_trail_schema(DECISION_SCHEMA_ID)
    assert not any(is_trail_schema(s) for s in JUPYTER_SERVER_SCHEMAS)
    assert not is_trail_schema(None)
