"""A site's own identity provider under the policy.

``ServerApp.identity_provider_class`` may name any ``IdentityProvider``: stock
``PasswordIdentityProvider``, a ``LegacyIdentityProvider``, or a site's own (one that trusts
an authenticating proxy's ``X-Forwarded-User``, say). Such a provider authenticates; it does
not say which scopes its users hold, and a user without ``hs_scopes`` holds none (fail closed,
:mod:`hardened_server.policy.scopes`). So every user it returns gets the scopes the policy's
``[identity]`` table gives (:func:`hardened_server.policy.principals.site_user_scopes`), read
from the policy in force at each request (a reload applies to the next one). A provider the
policy says nothing about never gets this far: start-up refuses it (HS-START-013).

:func:`from_trusted_proxy` is for such providers: whether the request's TCP peer is one of
``server.trusted_proxies``, the only peers whose identity headers may be believed.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
from typing import Any

from jupyter_server.auth.identity import IdentityProvider
from tornado import web

from hardened_server.enforcement.identity.provider import with_scopes
from hardened_server.enforcement.marks import mark
from hardened_server.enforcement.runtime import SETTINGS_KEY, PolicyRuntime
from hardened_server.policy.principals import site_user_scopes, user_groups


def assigns_scopes(provider: IdentityProvider) -> bool:
    """hardened-server's own providers (``hs_assigns_scopes``) give each user its scopes."""
    return bool(getattr(provider, "hs_assigns_scopes", False))


def provider_name(provider_class: type) -> str:
    return f"{provider_class.__module__}.{provider_class.__qualname__}"


def scope_site_provider(provider: IdentityProvider, runtime: PolicyRuntime) -> None:
    """Wrap ``provider.get_user`` (on the instance, so every caller, jupyter_server's own and
    ours, gets the same answer) to attach the policy's scopes to each user it returns."""
    if assigns_scopes(provider) or getattr(provider.get_user, "_hs_site_scoped", False):
        return
    get_user = provider.get_user

    @functools.wraps(get_user)
    async def scoped_get_user(handler: web.RequestHandler) -> Any:
        user = get_user(handler)
        if inspect.isawaitable(user):
            user = await user
        if user is None:
            return None
        policy = runtime.current.policy
        name = str(getattr(user, "username", "") or "")
        return with_scopes(
            user,
            site_user_scopes(policy.identity, policy.tokens.owner_scopes, name, user_groups(user)),
        )

    mark(scoped_get_user, _hs_site_scoped=True)
    provider.get_user = scoped_get_user  # type: ignore[method-assign]


def from_trusted_proxy(handler: web.RequestHandler) -> bool:
    """Whether the TCP peer of ``handler``'s request is in ``server.trusted_proxies``: a
    provider that takes the user from a header set by an authenticating proxy must believe it
    from these peers only (anyone else can send the header)."""
    request = handler.request
    peer = getattr(request, "hs_peer_ip", None) or request.remote_ip or ""
    runtime: PolicyRuntime | None = handler.settings.get(SETTINGS_KEY)
    if runtime is None:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return address in runtime.current.trusted
