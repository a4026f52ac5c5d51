"""Scopes of users authenticated by a site's own identity provider (``identity.*``).

hardened-server's own providers say what each principal may do (the start-up token and the
password carry ``tokens.owner_scopes``, a stored token its own scopes, JupyterHub's the hub's
OAuth scopes). A site's provider (``ServerApp.identity_provider_class``) knows who a user is,
not what the policy lets them do; this is where the policy answers, in the manner of
JupyterHub's roles: per user name and per group. A user the tables do not name gets nothing,
and every scoped route then refuses it with a record naming it (never a silent lock-out: a
provider the policy says nothing about stops the server at start-up, HS-START-013).
"""

from __future__ import annotations

from collections.abc import Iterable

from hardened_server.policy.schema import (
    SITE_PROVIDER_MAPPED,
    SITE_PROVIDER_OWNER,
    IdentityPolicy,
)


def site_user_scopes(
    identity: IdentityPolicy,
    owner_scopes: Iterable[str],
    name: str,
    groups: Iterable[str] = (),
) -> frozenset[str]:
    """The scopes the policy gives user ``name`` (member of ``groups``) of a site provider."""
    if identity.site_provider == SITE_PROVIDER_OWNER:
        return frozenset(owner_scopes)
    if identity.site_provider != SITE_PROVIDER_MAPPED:
        return frozenset()
    granted = set(identity.users.get(name, ()))
    for group in groups:
        granted.update(identity.groups.get(group, ()))
    return frozenset(granted)


def user_groups(user: object) -> tuple[str, ...]:
    """The group names a provider put on its ``User`` (a ``groups`` attribute: a list, tuple
    or set of strings, as JupyterHub's user model has); anything else counts as none."""
    groups = getattr(user, "groups", None)
    if not isinstance(groups, list | tuple | set | frozenset):
        return ()
    return tuple(g for g in groups if isinstance(g, str))
