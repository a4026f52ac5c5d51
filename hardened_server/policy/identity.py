"""Identity rule ids: what the decision records of authentication say (stable API, like
:class:`~hardened_server.policy.decisions.Rule`; never renumber)."""

from __future__ import annotations

from enum import StrEnum


class IdRule(StrEnum):
    TOKEN_USED = "HS-ID-001"  # noqa: S105 - rule ids, not secrets
    TOKEN_REFUSED = "HS-ID-002"  # noqa: S105
    TOKEN_MISPLACED = "HS-ID-003"  # noqa: S105 - a token where none is accepted (URL, form)
    LOGIN_OK = "HS-ID-010"
    LOGIN_FAILED = "HS-ID-011"
    LOGIN_THROTTLED = "HS-ID-012"
    PASSWORD_REHASHED = "HS-ID-013"  # noqa: S105
    LOGOUT = "HS-ID-020"
    LOGOUT_EVERYWHERE = "HS-ID-021"
    SESSION_REFUSED = "HS-ID-022"  # expired, revoked or unknown session cookie
    TOKEN_CREATED = "HS-ID-030"  # noqa: S105
    TOKEN_REVOKED = "HS-ID-031"  # noqa: S105
    TOKEN_ROTATED = "HS-ID-032"  # noqa: S105
    TOKEN_STORE_SERVED = "HS-ID-040"  # noqa: S105 - start-up: the store is in the served root
