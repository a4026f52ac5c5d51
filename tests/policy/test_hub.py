"""Who, other than the server's owner, made a request (issue #19 item 8): the hub's user model
measured against ``$JUPYTERHUB_USER``. The live side is tests/e2e/test_jupyterhub.py."""

from __future__ import annotations

import pytest

from hardened_server.policy.hub import NON_OWNER_SERVICE, NON_OWNER_USER, non_owner_kind


def test_the_owner_is_nobody_else() -> None:
    assert non_owner_kind({"kind": "user", "name": "alice"}, "alice") is None
    assert non_owner_kind({"name": "alice"}, "alice") is None  # jupyterhub < 1: no kind


@pytest.mark.parametrize(
    "model",
    [
        {"kind": "user", "name": "admin", "admin": True},  # the admin's "access server"
        {"kind": "user", "name": "Alice"},  # hub names are compared exactly
        {"kind": "user", "name": ""},
        {"kind": "user"},
        {"kind": "something-new", "name": "alice"},  # a kind we do not know: not the owner
    ],
)
def test_another_hub_user(model: dict[str, object]) -> None:
    assert non_owner_kind(model, "alice") == NON_OWNER_USER


def test_a_service_is_never_the_owner() -> None:
    assert non_owner_kind({"kind": "service", "name": "idle-culler"}, "alice") == NON_OWNER_SERVICE
    # A service named like the owner is still a service token, not the owner.
    assert non_owner_kind({"kind": "service", "name": "alice"}, "alice") == NON_OWNER_SERVICE
