"""Scopes of a site identity provider's users (``policy/principals.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import build_policy, default_layer, parse_layer
from hardened_server.policy.model import Policy
from hardened_server.policy.principals import site_user_scopes, user_groups

OWNER = ("admin",)


def policy_with(identity: dict[str, Any]) -> Policy:
    return build_policy([default_layer(), parse_layer("test.toml", {"identity": identity})])


MAPPED = policy_with(
    {
        "site_provider": "mapped",
        "users": {"alice": ["contents:read", "kernels:execute"], "carol": []},
        "groups": {"readers": ["contents:read"], "ops": ["metrics:read", "kernels:read"]},
    }
)


def test_refuse_grants_nothing() -> None:
    assert site_user_scopes(policy_with({}).identity, OWNER, "alice") == frozenset()


def test_owner_grants_the_owner_scopes_to_whoever_the_provider_authenticates() -> None:
    policy = policy_with({"site_provider": "owner"})
    assert site_user_scopes(policy.identity, OWNER, "anyone") == frozenset(OWNER)


def test_mapped_grants_by_name_and_by_group_like_jupyterhub_roles() -> None:
    identity = MAPPED.identity
    assert site_user_scopes(identity, OWNER, "alice") == {"contents:read", "kernels:execute"}
    assert site_user_scopes(identity, OWNER, "bob", ["readers"]) == {"contents:read"}
    assert site_user_scopes(identity, OWNER, "alice", ["ops"]) == {
        "contents:read",
        "kernels:execute",
        "metrics:read",
        "kernels:read",
    }


def test_mapped_grants_nothing_to_a_user_in_no_table() -> None:
    assert site_user_scopes(MAPPED.identity, OWNER, "mallory", ["unknown"]) == frozenset()
    assert site_user_scopes(MAPPED.identity, OWNER, "carol") == frozenset()


def test_names_are_exact() -> None:
    """No case folding or prefix match: 'Alice' is not 'alice' (a provider that folds case
    says so by the names it returns)."""
    assert site_user_scopes(MAPPED.identity, OWNER, "Alice") == frozenset()
    assert site_user_scopes(MAPPED.identity, OWNER, "alice2") == frozenset()


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ({"users": {"alice": ["root"]}}, "unknown scope 'root'"),
        ({"users": {"alice": "contents:read"}}, "expected a list of scope names"),
        ({"groups": ["staff"]}, "expected a table of names"),
        ({"site_provider": "everyone"}, "not one of the allowed values"),
    ],
)
def test_bad_identity_tables_are_refused_naming_the_key(
    identity: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        policy_with(identity)
    assert message in str(refused.value)
    assert "identity." in str(refused.value)


def test_user_groups_reads_only_a_collection_of_strings() -> None:
    class U:
        groups = ["a", 3, "b"]

    class V:
        groups = "ab"

    assert user_groups(U()) == ("a", "b")
    assert user_groups(V()) == ()
    assert user_groups(object()) == ()
