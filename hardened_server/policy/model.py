"""The effective policy: typed, frozen, with the provenance of every value.

Built only by :mod:`hardened_server.policy.loader` from validated layers; nothing at request time
mutates it. A reload builds a new ``Policy`` and swaps the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hardened_server.policy.csp import Directives


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    public_hostnames: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    client_header: str
    allow_insecure_remote: bool


@dataclass(frozen=True, slots=True)
class RoutesPolicy:
    public: tuple[str, ...]
    accept_undecorated: tuple[str, ...]
    unsafe_eval: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScopesPolicy:
    # route pattern -> method (or "*") -> scopes all needed (empty: none)
    routes: Mapping[str, Mapping[str, tuple[str, ...]]]
    client_event_schemas: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    allow_origins: tuple[str, ...]
    allow_credentials: bool
    allow_origin_patterns: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    max_age: int


@dataclass(frozen=True, slots=True)
class PathsPolicy:
    allow_hidden: bool
    deny: tuple[str, ...]
    allow: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokensPolicy:
    url_tokens: str
    min_entropy_bits: int
    owner_scopes: tuple[str, ...]
    store_file: str


@dataclass(frozen=True, slots=True)
class SessionsPolicy:
    idle_minutes: int
    lifetime_minutes: int
    samesite: str


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    free_attempts: int
    max_delay_seconds: int


@dataclass(frozen=True, slots=True)
class NbconvertPolicy:
    sanitize_html: bool


@dataclass(frozen=True, slots=True)
class TerminalsPolicy:
    enabled: bool


@dataclass(frozen=True, slots=True)
class LimitsPolicy:
    max_body_bytes: int
    max_header_bytes: int
    max_url_bytes: int
    websocket_max_message_bytes: int
    websocket_ping_interval_seconds: int
    websocket_ping_timeout_seconds: int
    unauthenticated_requests_per_minute: int
    unauthenticated_burst: int


@dataclass(frozen=True, slots=True)
class AuditPolicy:
    enabled: bool
    file: str
    fsync: str
    max_bytes: int
    signing_key: str
    checkpoint_every: int
    stdout: bool
    fail_closed: bool


@dataclass(frozen=True, slots=True)
class HeadersPolicy:
    referrer_policy: str
    x_frame_options: str
    cross_origin_opener_policy: str
    cross_origin_resource_policy: str
    permissions_policy: str
    hsts_max_age: int
    hsts_include_subdomains: bool
    csp_report: bool
    csp_template_hashes: bool
    cache_control: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Policy:
    server: ServerPolicy
    routes: RoutesPolicy
    scopes: ScopesPolicy
    cors: CorsPolicy
    paths: PathsPolicy
    tokens: TokensPolicy
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

    def value(self, key: str) -> Any:
        return self.values[key]
