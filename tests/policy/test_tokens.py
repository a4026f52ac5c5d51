"""policy/tokens.py: reading the Authorization header."""

from __future__ import annotations

import pytest

from hardened_server.policy.tokens import is_blank_token_scheme, parse_authorization


@pytest.mark.parametrize("value", ["token ", "token", "Token  ", "TOKEN"])
def test_an_empty_token_is_what_stock_stop_sends(value: str) -> None:
    """Stock `jupyter server stop` sends "token " + the jpserver file's token, which is empty
    here: recognised, and never a credential."""
    assert is_blank_token_scheme(value)
    assert parse_authorization(value) is None


@pytest.mark.parametrize("value", [None, "", "token x", "Bearer ", "Basic ", "tokens", "tok en"])
def test_anything_else_is_not_the_stock_stop_request(value: str | None) -> None:
    assert not is_blank_token_scheme(value)
