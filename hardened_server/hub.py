"""JupyterHub's single-user server extension under the policy: the identity provider, its
OAuth callback and logout handlers, and :class:`HardenedSingleUserApp`.

Run by ``hardened-server singleuser`` (:mod:`hardened_server.cli.singleuser`, which checks the
hub's environment first). See that module for what is taken from the hub and what the policy
does instead.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import replace
from typing import Any, ClassVar, cast

from jupyter_server.auth.decorator import allow_unauthenticated
from tornado import web
from tornado.httputil import url_concat
from traitlets import default

from hardened_server.app import HardenedServerApp, StartupRefused
from hardened_server.enforcement.marks import mark
from hardened_server.enforcement.recorder import record_event
from hardened_server.enforcement.runtime import SETTINGS_KEY, PolicyRuntime
from hardened_server.policy.decisions import Rule
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.hosts import compile_host_allowlist, split_host_header
from hardened_server.policy.hub import (
    HUB_PROFILE,
    OAUTH_CALLBACK_ROUTE,
    non_owner_kind,
)
from hardened_server.policy.model import Policy
from hardened_server.policy.scopemap import ANY_METHOD, Requirement
from hardened_server.policy.scopes import ALL_SCOPES
from hardened_server.policy.startup import StartupFacts

# Identity: the hub's OAuth, with hardened-server's scopes on the user.

try:  # jupyterhub is an optional dependency: `pip install 'hardened-server[jupyterhub]'`
    from jupyterhub.services.auth import HubOAuth
    from jupyterhub.singleuser.extension import (
        JupyterHubIdentityProvider,
        JupyterHubLogoutHandler,
        JupyterHubOAuthCallbackHandler,
    )
    from jupyterhub.utils import url_path_join
except ImportError as exc:  # pragma: no cover - exercised by the refusal path only
    IMPORT_ERROR: ImportError | None = exc
    HubOAuth = JupyterHubIdentityProvider = object
    JupyterHubLogoutHandler = JupyterHubOAuthCallbackHandler = object
else:
    IMPORT_ERROR = None


def _policy_of(configurable: Any) -> Policy | None:
    """The policy of the server application above ``configurable`` (its traitlets parents)."""
    node = configurable
    while node is not None:
        policy = getattr(node, "policy", None)
        if isinstance(policy, Policy):
            return policy
        node = getattr(node, "parent", None)
    return None


class HardenedHubOAuth(HubOAuth):
    """The hub's OAuth client, with the policy's ``tokens.url_tokens = "never"`` honoured (the
    hub otherwise reads ``?token=`` on websocket handshakes, and everywhere when
    ``$JUPYTERHUB_ALLOW_TOKEN_IN_URL`` is set), and the access token of a fresh login kept on
    the callback handler for its audit record."""

    def _get_token_url(self, handler: web.RequestHandler) -> str:
        policy = _policy_of(self)
        if policy is None or policy.tokens.url_tokens == "never":
            return ""
        return str(super()._get_token_url(handler))

    def set_cookie(self, handler: web.RequestHandler, access_token: str) -> None:
        mark(handler, _hs_new_token=access_token)
        super().set_cookie(handler, access_token)


def server_owner() -> str:
    """The hub user who owns this server: ``$JUPYTERHUB_USER`` (``hardened-server singleuser``
    does not start without it: policy/hub.py's REQUIRED_ENV)."""
    return os.environ.get("JUPYTERHUB_USER", "")


def _mark_non_owner(handler: web.RequestHandler, model: Any) -> str | None:
    """Whether the hub's user ``model`` is someone other than this server's owner; the request
    carries the answer for every record made while answering it (recorder.py)."""
    kind = non_owner_kind(model, server_owner()) if isinstance(model, dict) else None
    mark(handler.request, hs_non_owner=kind)
    return kind


def _record(
    handler: web.RequestHandler,
    kind: str,
    rule_id: str,
    allowed: bool,
    reason: str,
    user: str | None,
) -> None:
    route = getattr(handler, "_hs_route", None)
    record_event(
        handler.request,
        kind,
        rule_id=rule_id,
        allowed=allowed,
        reason=reason,
        user=user,
        route_class=route.route_class if route is not None else "",
    )


class HardenedOAuthCallbackHandler(JupyterHubOAuthCallbackHandler):
    """The hub's OAuth callback (``/oauth_callback``, public in the ``jupyterhub`` profile:
    the browser has no cookie yet). A completed login is recorded with the hub user name."""

    hs_route_scopes: ClassVar[dict[str, Requirement]] = {ANY_METHOD: ("navigation", "read")}

    @allow_unauthenticated
    async def get(self) -> None:
        await super().get()
        token = getattr(self, "_hs_new_token", None)
        if not token:
            return  # an error, or a stale state of a user already logged in
        model = await self.hub_auth.user_for_token(
            token, session_id=self.hub_auth.get_session_id(self), sync=False
        )  # cached by the call the hub's handler just made: no second request to the hub
        if model:
            _mark_non_owner(self, model)  # an admin's "access server" login says so
            _record(
                self,
                "login_success",
                Rule.HUB_LOGIN,
                True,
                "JupyterHub OAuth login",
                str(model.get("name", "")),
            )


class HardenedHubLogoutHandler(JupyterHubLogoutHandler):
    """Clears this server's hub cookie and sends the browser to the hub's logout."""

    hs_route_scopes: ClassVar[dict[str, Requirement]] = {ANY_METHOD: ("navigation", "read")}

    @allow_unauthenticated
    def get(self) -> None:
        user = self.current_user
        name = getattr(user, "username", None) if user is not None else None
        _record(self, "logout", Rule.HUB_LOGOUT, True, "logout, continued at the hub", name)
        super().get()


class HubIdentityProvider(JupyterHubIdentityProvider):
    """JupyterHub's identity provider with hardened-server's contract on top.

    * A user the hub admits (its ``access:servers`` check against
      ``$JUPYTERHUB_OAUTH_ACCESS_SCOPES``) carries ``hs_scopes`` = every scope ``admin``
      implies (not ``audit:read``); one the hub does not admit gets no user (403, recorded
      once, with the hub user name).
    * The gate's login redirect (:meth:`hs_login_redirect`) goes to the hub's OAuth
      ``authorize`` endpoint with a fresh state cookie (and PKCE), and
      :attr:`hs_external_redirects` (set on the policy runtime) lets exactly that endpoint and
      the hub's logout through the redirect validator.
    """

    logout_handler_class = HardenedHubLogoutHandler
    hs_assigns_scopes = True  # the hub's OAuth scopes decide (get_user below)

    @default("hub_auth")
    def _default_hub_auth(self) -> Any:
        return HardenedHubOAuth(parent=self)

    async def get_user(self, handler: web.RequestHandler) -> Any:
        user = await super().get_user(handler)
        if user is not None:
            if not isinstance(getattr(user, "hs_scopes", None), frozenset):
                user.hs_scopes = ALL_SCOPES
            # Someone other than the owner (an admin's "access server", a service token):
            # every record of the request says so and names them (issue #19 item 8).
            model = getattr(user, "hub_user", None)
            kind = non_owner_kind(model, server_owner()) if isinstance(model, dict) else None
            mark(user, hs_non_owner=kind, hs_owner_name=server_owner())
            return user
        hub_user = getattr(handler, "_cached_hub_user", None)
        if hub_user and not getattr(handler, "_hs_hub_refused", False):
            # Authenticated by the hub, but its scopes do not include this server.
            mark(handler, _hs_hub_refused=True)
            _mark_non_owner(handler, hub_user)
            _record(
                handler,
                "login_failure",
                Rule.HUB_NOT_ALLOWED,
                False,
                "hub user lacks access to this server",
                str(hub_user.get("name", "")),
            )
        return None

    def hs_login_redirect(self, handler: web.RequestHandler) -> str:
        """Where the gate sends an anonymous page navigation: the hub's OAuth ``authorize``
        URL with a state cookie (the hub's own ``_patch_get_login_url`` logic). A user the hub
        already refused gets 403 instead (no redirect loop)."""
        if getattr(handler, "_hs_hub_refused", False):
            raise web.HTTPError(403)
        hub_auth = self.hub_auth
        params: dict[str, str] = {}
        verifier = None
        if getattr(hub_auth, "pkce_enabled", False):
            verifier, challenge, method = hub_auth.generate_pkce_code_challenge()
            params["code_challenge"] = challenge
            params["code_challenge_method"] = method
        next_url = handler.request.uri
        if verifier is not None:
            state = hub_auth.set_state_cookie(handler, next_url=next_url, code_verifier=verifier)
        else:  # jupyterhub < 6
            state = hub_auth.set_state_cookie(handler, next_url=next_url)
        params["state"] = state
        return str(url_concat(hub_auth.login_url, params))

    @property
    def hs_external_redirects(self) -> frozenset[str]:
        """The hub endpoints this server may redirect to: OAuth ``authorize`` and ``logout``."""
        hub_auth = self.hub_auth
        return frozenset(
            {
                hub_auth.oauth_authorization_url,
                hub_auth.hub_host + url_path_join(hub_auth.hub_prefix, "logout"),
            }
        )

    def get_handlers(self) -> list[tuple[Any, ...]]:
        return [
            ("/logout", self.logout_handler_class),
            (OAUTH_CALLBACK_ROUTE, HardenedOAuthCallbackHandler, {"hub_auth": self.hub_auth}),
        ]


# ---------------------------------------------------------------------------------------------
# The application.


class HardenedSingleUserApp(HardenedServerApp):
    """HardenedServerApp with JupyterHub's single-user server extension."""

    name = "hardened-server-singleuser"
    description = "hardened-server as a JupyterHub single-user server."

    def policy_layers(self) -> list[str]:
        """The shipped ``jupyterhub`` profile, then each ``--policy`` (over the default);
        start-up, reloads and the file watcher all read these."""
        files = super().policy_layers()
        return files if HUB_PROFILE in files else [HUB_PROFILE, *files]

    def init_server_extensions(self) -> None:
        # The hub extension always; a config that disables it cannot start a server without
        # the hub's authentication.
        self.jpserver_extensions["jupyterhub"] = True
        super().init_server_extensions()
        self._take_over_hub_config()

    def _take_over_hub_config(self) -> None:
        """Once the extension has linked (and merged its config): check it is in place, and
        put the policy's mechanisms where the extension switches stock ones off."""
        problems = []
        if not self.extension_manager.linked_extensions.get("jupyterhub"):
            problems.append(
                UnsafeStartup(
                    Rule.HUB_EXTENSION,
                    "JupyterHub's single-user server extension did not link (see the log "
                    "above): the server would run without the hub's authentication",
                    setting="ServerApp.jpserver_extensions['jupyterhub']",
                    fix="install a jupyterhub matching the hub's version in this environment",
                )
            )
        elif not (
            isinstance(self.identity_provider_class, type)
            and issubclass(self.identity_provider_class, JupyterHubIdentityProvider)
        ):
            problems.append(
                UnsafeStartup(
                    Rule.HUB_EXTENSION,
                    f"the identity provider is {self.identity_provider_class!r}, not the hub's",
                    setting="ServerApp.identity_provider_class",
                    fix="remove it from the configuration; under JupyterHub the hub's OAuth "
                    "identifies users",
                )
            )
        if problems:
            raise StartupRefused(problems)
        self.identity_provider_class = HubIdentityProvider
        if self.trust_xheaders:
            # Forced by the extension. Tornado would then believe X-Forwarded-For / X-Real-Ip
            # from any peer; the policy's server.trusted_proxies decides instead.
            self.log.info(
                "hardened-server: trust_xheaders set by the JupyterHub extension is replaced "
                "by the policy's server.trusted_proxies"
            )
            self.trust_xheaders = False

    # -- start-up checks ---------------------------------------------------------------------

    def _startup_facts(self, user_tornado_settings: frozenset[str]) -> StartupFacts:
        # The hub's OAuth authenticates every request. $JUPYTERHUB_API_TOKEN is this server's
        # credential towards the hub, never a login here: no token checks apply to it.
        facts = super()._startup_facts(user_tornado_settings)
        return replace(facts, token="", token_generated=False, has_password=False)

    def configuration_problems(
        self, policy: Policy, user_tornado_settings: frozenset[str] = frozenset()
    ) -> list[UnsafeStartup]:
        """The server's start-up checks, for start-up and every reload (SIGHUP, the file
        watcher), as they apply under the hub: no token and no password is how a hub-managed
        server is meant to run (HS-START-005 does not apply: the hub's OAuth authenticates every
        request), and a policy whose ``routes.public`` loses the OAuth callback is refused
        (HS-HUB-013: every hub login would loop)."""
        problems = [
            p
            for p in super().configuration_problems(policy, user_tornado_settings)
            if p.rule_id != Rule.START_NO_AUTH
        ]
        if OAUTH_CALLBACK_ROUTE not in policy.routes.public:
            problems.append(
                UnsafeStartup(
                    Rule.HUB_CALLBACK_NOT_PUBLIC,
                    f"routes.public does not list {OAUTH_CALLBACK_ROUTE!r}: the browser comes "
                    "back from the hub's login without a cookie, and every login would loop",
                    setting="routes.public (set by "
                    f"{policy.provenance.get('routes.public', '?')})",
                    fix=f"keep {OAUTH_CALLBACK_ROUTE!r} in routes.public (the shipped "
                    "jupyterhub profile lists it) when a policy file replaces that list",
                )
            )
        return problems

    def startup_banner(self, generated: bool) -> str:
        """Users log in through the hub, never with a token or password of this server."""
        return (
            f"hardened-server (JupyterHub single-user) is running at {self.display_url}; "
            "users log in through JupyterHub"
        )

    def _refuse(self, problems: list[UnsafeStartup]) -> None:
        if not isinstance(self.identity_provider, HubIdentityProvider):
            problems.append(
                UnsafeStartup(
                    Rule.HUB_EXTENSION,
                    "the hub's identity provider is not in place",
                    setting="ServerApp.identity_provider_class",
                    fix="remove it from the configuration",
                )
            )
        if problems:
            raise StartupRefused(problems)

    def harden_web_app(self) -> None:
        super().harden_web_app()
        runtime: PolicyRuntime = self.web_app.settings[SETTINGS_KEY]
        # _refuse stopped start-up unless the hub's provider is the one in place.
        provider = cast("HubIdentityProvider", self.identity_provider)
        runtime.external_redirects = provider.hs_external_redirects
        self._warn_public_host()

    def _warn_public_host(self) -> None:
        """The hub's public address, when the hub says it, should pass the Host allow-list."""
        allowed = compile_host_allowlist(self.policy.server.public_hostnames)
        for name in ("JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_HOST"):
            value = os.environ.get(name, "")
            host = urllib.parse.urlsplit(value).netloc if "://" in value else ""
            parsed = split_host_header(host) if host else None
            if parsed and parsed[0] not in allowed:
                self.log.warning(
                    "hardened-server: $%s names the host %s, which server.public_hostnames "
                    "does not list: requests with that Host will be refused (403)",
                    name,
                    parsed[0],
                )

    def verify_after_extensions(self) -> None:
        """The extension's ``initialize`` changed tornado settings after the snapshot: exactly
        those changes are undone (the policy's XSRF check and headers apply); any other change
        still stops the server (settings drift)."""
        settings = self.web_app.settings
        before = self._hs_snapshot
        if settings.get("xsrf_cookies") is False and before.get("xsrf_cookies") is True:
            settings["xsrf_cookies"] = True
        headers = settings.get("headers")
        if isinstance(headers, dict):
            from jupyterhub._version import __version__ as hub_version

            if headers.get("X-JupyterHub-Version") == hub_version:
                del headers["X-JupyterHub-Version"]  # version disclosure
            old = before.get("headers")
            if headers.get("Content-Security-Policy") == "frame-ancestors 'none'" and not (
                isinstance(old, dict) and "Content-Security-Policy" in old
            ):
                del headers["Content-Security-Policy"]  # the policy's CSP (frame-ancestors 'none')
            if not headers and "headers" not in before:
                del settings["headers"]
        super().verify_after_extensions()

    def start_app(self) -> None:
        super().start_app()
        self.log.critical(
            "hardened-server: JupyterHub single-user server for %s at %s (login through the hub)",
            os.environ.get("JUPYTERHUB_USER", "?"),
            self.base_url,
        )


def disable_user_config(app: HardenedSingleUserApp) -> None:
    """``Spawner.disable_user_config`` ($JUPYTERHUB_DISABLE_USER_CONFIG): no config from the
    user's home, as ``jupyterhub-singleuser`` does (before any config file is read)."""
    from jupyterhub.singleuser._disable_user_config import (
        _disable_user_config as disable,
    )
    from jupyterhub.utils import _bool_env

    if _bool_env("JUPYTERHUB_DISABLE_USER_CONFIG"):
        disable(app)
