"""Static checks of identity: scopes and the route map, the token store, login throttling.

The token store is read with the server's own parser (:mod:`hardened_server.enforcement.
tokenstore`); nothing here prints a hash, let alone a token: a finding names a token by its id
and name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hardened_server.audit.checks import ERROR, INFO, WARNING, Hit, Location, check
from hardened_server.audit.checks.policy import where
from hardened_server.audit.facts import Facts, PathInfo, path_info
from hardened_server.policy.eventschemas import is_server_schema
from hardened_server.policy.loader import shipped_policy
from hardened_server.policy.paths import (
    SERVER_FILE_RULES,
    ServerFile,
    served_file_problem,
    served_relative_path,
)
from hardened_server.policy.scopes import ADMIN

if TYPE_CHECKING:
    from hardened_server.enforcement.identity.tokenstore import TokenRecord

#: A login throttle looser than these lets an online guesser go faster than we document.
MAX_FREE_ATTEMPTS = 10
MIN_MAX_DELAY_SECONDS = 30
#: A stored token that lives longer than this is a standing credential.
LONG_LIVED_SECONDS = 90 * 86400


def token_store_path(facts: Facts) -> str | None:
    """Where the server keeps its token store under this configuration (the server's own
    answer, :func:`hardened_server.enforcement.identity.tokenstore.store_path_for`)."""
    if facts.token_store is not None:
        return facts.token_store.path
    if facts.policy is None:
        return None
    configured = str(facts.value("tokens.store_file") or "")
    if not configured and facts.runtime_dir is None:
        return None
    from hardened_server.enforcement.identity.tokenstore import store_path_for

    runtime = facts.runtime_dir.path if facts.runtime_dir is not None else None
    return os.fspath(store_path_for(configured=configured, runtime_dir=runtime))


def _store_info(facts: Facts) -> PathInfo | None:
    if facts.token_store is not None:
        return facts.token_store
    path = token_store_path(facts)
    return path_info(path) if path else None


def _live_records(facts: Facts) -> list[TokenRecord]:
    from hardened_server.enforcement.identity.tokenstore import TokenStore, TokenStoreError

    info = _store_info(facts)
    if info is None or not info.exists:
        return []
    try:
        records = TokenStore(info.path)._read()  # read only: no lock taken, nothing written
    except (OSError, TokenStoreError):
        return []
    now = time.time()
    return [r for r in records.values() if not r.expired(now)]


# ---------------------------------------------------------------------------------------------
# Scopes


@check(
    "HS-SCOPE-101",
    WARNING,
    "a route is open to every logged-in user without a scope",
    fix="give the route a scope in scopes.routes (e.g. GET = \"contents:read\") instead of []",
    doc="An empty scope list in scopes.routes lets any authenticated principal through, a "
    "read-only or metrics-only token included.",
    tags=("scopes",),
)
def unscoped_routes(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    routes = facts.value("scopes.routes") or {}
    for pattern, methods in sorted(routes.items()):
        for method, scopes in sorted(methods.items()):
            if not scopes:
                yield Hit(
                    f"{pattern} {method} needs no scope",
                    where(facts, "scopes.routes"),
                )


@check(
    "HS-SCOPE-102",
    ERROR,
    "clients may post the server's own event schemas",
    fix="remove the server schema from scopes.client_event_schemas",
    doc="jupyter_server's events (contents saved, kernel actions) and the audit trail are "
    "emitted by the server; a client allowed to post them can forge what an auditor or an "
    "extension believes happened.",
    tags=("scopes", "audit"),
)
def server_event_schemas(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    for schema in facts.value("scopes.client_event_schemas") or ():
        if is_server_schema(str(schema)):
            yield Hit(f"{schema} is a server schema", where(facts, "scopes.client_event_schemas"))


@check(
    "HS-SCOPE-103",
    INFO,
    "the server owner does not hold every scope",
    fix="tokens.owner_scopes = [\"admin\"] if the owner should manage the server fully",
    doc="Not a weakness: the start-up token and the password carry only these scopes. Listed so "
    "that a reviewer knows why the owner sees 403s.",
    tags=("scopes", "tokens"),
)
def owner_scopes(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    scopes = tuple(facts.value("tokens.owner_scopes") or ())
    if ADMIN not in scopes:
        yield Hit(
            "owner scopes: " + (", ".join(scopes) or "none"), where(facts, "tokens.owner_scopes")
        )


@check(
    "HS-SCOPE-106",
    WARNING,
    "a site identity provider's users get the owner's or admin scopes",
    fix='identity.site_provider = "mapped" with the scopes each user or group needs in '
    "identity.users / identity.groups, admin for nobody or for named administrators only",
    doc='identity.site_provider = "owner" gives whoever the site\'s ServerApp.'
    "identity_provider_class authenticates the owner's scopes: right for a single-user "
    "provider, every user an owner for a provider that admits many. An identity table entry "
    "with admin makes that user or group an administrator of the server.",
    tags=("scopes", "identity"),
)
def site_provider_scopes(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    mode = facts.value("identity.site_provider")
    if mode == "owner":
        owner = ", ".join(facts.value("tokens.owner_scopes") or ()) or "none"
        yield Hit(
            f"every user of a site identity provider gets the owner scopes ({owner})",
            where(facts, "identity.site_provider"),
        )
    elif mode == "mapped":
        for key in ("identity.users", "identity.groups"):
            for name, scopes in sorted((facts.value(key) or {}).items()):
                if ADMIN in scopes:
                    yield Hit(f"{key.split('.')[1]} {name!r} holds admin", where(facts, key))


# ---------------------------------------------------------------------------------------------
# The token store


@check(
    "HS-TOKEN-108",
    ERROR,
    "the token store is readable or writable by other users",
    fix="chmod 600 the token store (hardened-server writes it 0600) and 700 its directory",
    doc="The store holds SHA-256 hashes only, but whoever can write it can add a token of "
    "their own, and a readable store tells which tokens exist and what they may do.",
    tags=("tokens", "permissions"),
)
def token_store_mode(facts: Facts) -> Iterator[Hit]:
    info = _store_info(facts)
    if info is None or not info.exists:
        return
    if info.group_or_world_readable or info.group_or_world_writable:
        yield Hit(info.describe_mode(), Location(file=info.path, key="tokens.store_file"))


@check(
    "HS-TOKEN-109",
    ERROR,
    "the token store lies inside the served directory",
    fix=SERVER_FILE_RULES[ServerFile.TOKEN_STORE].fix,
    doc="A store inside the root and under no paths.deny glob can be overwritten through the "
    "contents API by anyone with contents:write, who could then mint a token with every scope.",
    tags=("tokens", "paths"),
)
def token_store_inside_root(facts: Facts) -> Iterator[Hit]:
    path = token_store_path(facts)
    if not path or not facts.root_dir:
        return
    policy = facts.policy or facts.default_policy
    # the same test as the start-up refusal (HS-ID-040)
    if served_file_problem(ServerFile.TOKEN_STORE, path, facts.root_dir, policy.paths):
        rel = served_relative_path(facts.root_dir, path, policy.paths)
        yield Hit(
            f"{path} is {rel!r} below {facts.root_dir}, under no paths.deny glob",
            where(facts, "tokens.store_file"),
        )


@check(
    "HS-TOKEN-110",
    WARNING,
    "a stored token never expires or lives very long",
    fix="revoke it and create a replacement with `hardened-server token create --expires 30d`",
    doc="A token that never expires is a standing credential: a copy in a CI log or a laptop "
    f"backup works forever. The audit flags tokens without an expiry or longer than "
    f"{LONG_LIVED_SECONDS // 86400} days.",
    tags=("tokens",),
)
def long_lived_tokens(facts: Facts) -> Iterator[Hit]:
    info = _store_info(facts)
    for rec in _live_records(facts):
        lifetime = None if rec.expires is None else rec.expires - rec.created
        if lifetime is None or lifetime > LONG_LIVED_SECONDS:
            what = "never expires" if lifetime is None else f"lives {int(lifetime // 86400)} days"
            yield Hit(
                f"token {rec.id} ({rec.name!r}) {what}",
                Location(file=info.path if info else None),
            )


@check(
    "HS-TOKEN-111",
    WARNING,
    "a stored token carries the admin scope",
    fix="create tokens with the scopes the client needs (e.g. --scope contents:read) and "
    "revoke the admin one",
    doc="admin implies every scope, kernels and terminals included: an API token for a "
    "dashboard or a backup job should not be able to run code.",
    tags=("tokens", "scopes"),
)
def admin_tokens(facts: Facts) -> Iterator[Hit]:
    info = _store_info(facts)
    for rec in _live_records(facts):
        if ADMIN in rec.scopes:
            yield Hit(
                f"token {rec.id} ({rec.name!r}) has admin",
                Location(file=info.path if info else None),
            )


# ---------------------------------------------------------------------------------------------
# Login throttling


@check(
    "HS-LOGIN-101",
    WARNING,
    "login throttling is looser than the default",
    fix=f"login.free_attempts <= {MAX_FREE_ATTEMPTS} and login.max_delay_seconds >= "
    f"{MIN_MAX_DELAY_SECONDS} (defaults: 5 and 60)",
    doc="The throttle is what stands between the password and an online guesser: each "
    "failed attempt after the free ones doubles the wait, up to the maximum delay.",
    tags=("passwords", "sessions"),
)
def login_throttle(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    free = facts.value("login.free_attempts")
    delay = facts.value("login.max_delay_seconds")
    if isinstance(free, int) and free > MAX_FREE_ATTEMPTS:
        yield Hit(f"login.free_attempts = {free}", where(facts, "login.free_attempts"))
    if isinstance(delay, (int, float)) and delay < MIN_MAX_DELAY_SECONDS:
        yield Hit(f"login.max_delay_seconds = {delay}", where(facts, "login.max_delay_seconds"))


# ---------------------------------------------------------------------------------------------
# Login sessions

#: OWASP's session guidance: idle timeouts of minutes to a few hours, an absolute lifetime of a
#: working day or so. Beyond these a forgotten browser stays logged in.
MAX_IDLE_MINUTES = 240
MAX_LIFETIME_MINUTES = 1440


@check(
    "HS-SESSION-104",
    WARNING,
    "login sessions stay alive without activity for long",
    fix=f"sessions.idle_minutes <= {MAX_IDLE_MINUTES} "
    f"(default {shipped_policy().sessions.idle_minutes})",
    doc="An idle timeout ends the session of a browser left open on a shared or stolen "
    "machine; JupyterLab polls while a tab is open, so only closed tabs and sleeping "
    "laptops time out.",
    tags=("sessions",),
)
def session_idle(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    idle = facts.value("sessions.idle_minutes")
    if isinstance(idle, int) and idle > MAX_IDLE_MINUTES:
        yield Hit(f"sessions.idle_minutes = {idle}", where(facts, "sessions.idle_minutes"))


@check(
    "HS-SESSION-105",
    WARNING,
    "login sessions have a long absolute lifetime",
    fix=f"sessions.lifetime_minutes <= {MAX_LIFETIME_MINUTES} "
    f"(default {shipped_policy().sessions.lifetime_minutes})",
    doc="The absolute lifetime bounds what a stolen session cookie is worth, however busy "
    "the session is.",
    tags=("sessions",),
)
def session_lifetime(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    life = facts.value("sessions.lifetime_minutes")
    if isinstance(life, int) and life > MAX_LIFETIME_MINUTES:
        yield Hit(
            f"sessions.lifetime_minutes = {life}", where(facts, "sessions.lifetime_minutes")
        )
