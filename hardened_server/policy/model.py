"""The effective policy: typed, frozen, with the provenance of every value.

Built only by :mod:`hardened_server.policy.loader` from validated layers; nothing at request time
mutates it. A reload builds a new ``Policy`` and swaps the reference.

The section classes (``ServerPolicy`` ... ``AuditPolicy``) are declared, key by key, in
:mod:`hardened_server.policy.schema` (the one declaration of a key) and re-exported here;
``Policy`` holds one of each (``tests/policy/test_schema.py`` keeps its attributes and
:data:`~hardened_server.policy.schema.SECTIONS` in step) plus the compiled CSP per route class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hardened_server.policy.csp import Directives
from hardened_server.policy.schema import (
    AuditPolicy,
    CorsPolicy,
    HeadersPolicy,
    IdentityPolicy,
    LimitsPolicy,
    LoginPolicy,
    NbconvertPolicy,
    PathsPolicy,
    RoutesPolicy,
    ScopesPolicy,
    ServerPolicy,
    SessionsPolicy,
    TerminalsPolicy,
    TokensPolicy,
)

__all__ = [
    "AuditPolicy",
    "CorsPolicy",
    "HeadersPolicy",
    "IdentityPolicy",
    "LimitsPolicy",
    "LoginPolicy",
    "MergeStep",
    "NbconvertPolicy",
    "PathsPolicy",
    "Policy",
    "RoutesPolicy",
    "ScopesPolicy",
    "ServerPolicy",
    "SessionsPolicy",
    "TerminalsPolicy",
    "TokensPolicy",
]


@dataclass(frozen=True, slots=True)
class MergeStep:
    """What one layer did to one key: ``set`` it (a list: replaced, ``dropped`` the items of the
    value before it that it no longer has) or ``extend`` it (``key = { extend = [...] }``:
    ``value`` holds the items it added)."""

    source: str
    how: str  # "set" | "extend"
    value: Any
    dropped: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    server: ServerPolicy
    routes: RoutesPolicy
    scopes: ScopesPolicy
    cors: CorsPolicy
    paths: PathsPolicy
    tokens: TokensPolicy
    identity: IdentityPolicy
    terminals: TerminalsPolicy
    nbconvert: NbconvertPolicy
    login: LoginPolicy
    sessions: SessionsPolicy
    limits: LimitsPolicy
    headers: HeadersPolicy
    audit: AuditPolicy
    csp: Mapping[str, Directives]  # route class -> directive map
    values: Mapping[str, Any]  # flat effective values, "section.key" -> value
    provenance: Mapping[str, str]  # "section.key" -> the file that set it
    sources: tuple[str, ...]  # every layer, in the order applied
    fingerprint: str  # sha256 of the canonical effective values
    # Server extensions whose shipped extension profile was applied (between the default and
    # the --policy files; not in ``sources``, which are the files a reload re-reads).
    profiles: tuple[str, ...] = ()
    # 'scopes.routes <pattern>' / 'routes.accept_undecorated <pattern>' -> the extension profile
    # that contributed that entry (entries a --policy file overrides are the file's).
    entry_provenance: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: "section.key" -> every layer's step, in order (``policy explain`` shows the merge)
    history: Mapping[str, tuple[MergeStep, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def value(self, key: str) -> Any:
        return self.values[key]
