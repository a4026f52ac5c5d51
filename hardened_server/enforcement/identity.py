"""The identity provider: jupyter_server's password provider with its token leaks closed.

* Tokens are read from the ``Authorization: token|Bearer`` header. A ``?token=`` in the URL
  counts only on a GET navigation to a page route (the login URL printed at start-up), which is
  exchanged for a session and redirected to the same URL without the token; never when the
  policy says ``tokens.url_tokens = "never"``; never on API, files or websocket requests, and
  never from a form body (stock's ``get_argument`` reads bodies too, so a cross-site form could
  authenticate with a token it learned).
* Two kinds of token: the start-up token (``JUPYTER_TOKEN``, the token file, or the generated one
  in the login URL), which carries the owner's scopes (``tokens.owner_scopes``), and stored
  tokens (``hst_<id>_<secret>``, :mod:`hardened_server.enforcement.tokenstore`), each with its
  own scopes and expiry, accepted from the header only. Both are compared in constant time.
* A header-authenticated request never mints a cookie (stock mints one on every API call).
* Password change at the login page is off by default (a token holder could persist a
  password into the config file).

Hooks meant to be overridden (the JupyterHub provider does): :meth:`owner_user`,
:meth:`user_for_stored_token`, :meth:`owner_scopes`.
"""

from __future__ import annotations

import hmac
import typing as t
import uuid
from pathlib import Path

from jupyter_server.auth.identity import PasswordIdentityProvider, User
from tornado import web
from traitlets import Unicode, default

from hardened_server.enforcement.record import record_event
from hardened_server.enforcement.tokenstore import (
    TokenRecord,
    TokenStore,
    default_store_path,
    looks_like_stored_token,
    parse_token_id,
)
from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.identity import IdRule
from hardened_server.policy.scopes import ADMIN

_QUERY_TOKEN_METHODS = frozenset({"GET", "HEAD"})


def with_scopes(user: User, scopes: t.Iterable[str]) -> User:
    """Attach the scopes contract (:mod:`hardened_server.policy.scopes`) to a user."""
    user.hs_scopes = frozenset(scopes)  # type: ignore[attr-defined]
    return user


class HardenedIdentityProvider(PasswordIdentityProvider):
    token_store_file = Unicode(
        "",
        config=True,
        help="The token store file (overrides the policy's tokens.store_file). Default: "
        "hardened-server-tokens.json in the Jupyter runtime directory.",
    )

    _token_store: TokenStore | None = None

    @default("cookie_options")
    def _default_cookie_options(self) -> dict[str, str]:
        # A cross-site POST does not carry the session cookie (CSRF defence in depth).
        return {"samesite": "Lax"}

    @default("token")
    def _token_default(self) -> str:
        # JUPYTER_TOKEN_FILE is read as is; a trailing newline (``echo $TOKEN > file``) would
        # otherwise be part of the token and no client could ever send it.
        return super()._token_default().strip()

    @default("allow_password_change")
    def _default_allow_password_change(self) -> bool:
        return False

    # -- policy ----------------------------------------------------------------------------------

    def _policy(self) -> t.Any:
        return getattr(self.parent, "policy", None)

    def _url_tokens_allowed(self) -> bool:
        policy = self._policy()
        return policy is None or policy.tokens.url_tokens != "never"

    def owner_scopes(self) -> frozenset[str]:
        """What the owner (start-up token, password) may do: ``tokens.owner_scopes``."""
        policy = self._policy()
        return frozenset(policy.tokens.owner_scopes) if policy is not None else frozenset({ADMIN})

    # -- the token store -------------------------------------------------------------------------

    def token_store_path(self) -> Path:
        if self.token_store_file:
            return Path(self.token_store_file)
        policy = self._policy()
        if policy is not None and policy.tokens.store_file:
            return Path(policy.tokens.store_file)
        return default_store_path()

    @property
    def token_store(self) -> TokenStore:
        if self._token_store is None:
            self._token_store = TokenStore(self.token_store_path())
        return self._token_store

    # -- users -----------------------------------------------------------------------------------

    def owner_user(self, handler: web.RequestHandler | None = None) -> User:
        """A fresh principal for the owner: a new random name per login (the XSRF token is
        bound to it), with the owner's scopes."""
        name = uuid.uuid4().hex
        return with_scopes(
            User(username=name, name="owner", display_name="Owner"), self.owner_scopes()
        )

    def user_for_stored_token(self, record: TokenRecord) -> User:
        return with_scopes(
            User(username=f"token-{record.id}", name=record.name, display_name=record.name),
            record.scopes,
        )

    # -- tokens ----------------------------------------------------------------------------------

    def get_token(self, handler: web.RequestHandler) -> str | None:
        match = self.auth_header_pat.match(handler.request.headers.get("Authorization", ""))
        if match:
            return match.group(2).strip()
        if self._is_token_navigation(handler):
            values = handler.request.query_arguments.get("token")
            if values:
                return values[-1].decode("utf-8", "replace")
        return ""

    def _is_token_navigation(self, handler: web.RequestHandler) -> bool:
        """A URL token counts only on a GET/HEAD of a page route that is a top-level
        navigation (when the browser says what it is fetching): never on API, files or
        websocket requests, where it would end up in logs and Referers."""
        if handler.request.method not in _QUERY_TOKEN_METHODS or not self._url_tokens_allowed():
            return False
        route = getattr(handler, "_hs_route", None)
        if route is None or route.route_class != RouteClass.PAGE:
            return False
        if handler.request.headers.get("Upgrade", "").lower() == "websocket":
            return False
        dest = handler.request.headers.get("Sec-Fetch-Dest")
        return dest is None or dest == "document"

    def _route_class(self, handler: web.RequestHandler) -> str:
        route = getattr(handler, "_hs_route", None)
        return str(route.route_class) if route is not None else ""

    def _refused_token(self, handler: web.RequestHandler, reason: str, **extra: t.Any) -> None:
        handler._hs_token_failed = True  # type: ignore[attr-defined]
        record_event(
            handler.request,
            "auth.token_refused",
            rule_id=IdRule.TOKEN_REFUSED,
            allowed=False,
            reason=reason,
            route_class=self._route_class(handler),
            **extra,
        )

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        presented = self.get_token(handler)
        if not presented:
            return None
        source = "header" if handler.request.headers.get("Authorization") else "url"
        if looks_like_stored_token(presented):
            if source != "header":
                self._refused_token(handler, "stored tokens are accepted in the header only")
                return None
            record, first_use = self.token_store.check(presented)
            if record is None:
                self._refused_token(
                    handler,
                    "unknown, revoked or expired stored token",
                    token_id=parse_token_id(presented) or "-",
                )
                return None
            user = self.user_for_stored_token(record)
            if first_use:
                record_event(
                    handler.request,
                    "token.used",
                    rule_id=IdRule.TOKEN_USED,
                    allowed=True,
                    reason="stored token accepted",
                    user=user.username,
                    route_class=self._route_class(handler),
                    token_id=record.id,
                )
        else:
            startup = self.token
            if not startup or not hmac.compare_digest(
                presented.encode("utf-8", "surrogateescape"),
                startup.encode("utf-8", "surrogateescape"),
            ):
                self._refused_token(handler, "wrong token")
                return None
            user = self.owner_user(handler)
        # Remember where the token came from: only a URL token (a navigation) is exchanged
        # for a session cookie; a header token authenticates this request and nothing more.
        handler._hs_token_source = source  # type: ignore[attr-defined]
        return user

    async def _get_user(self, handler: web.RequestHandler) -> User | None:
        """The token (header, or URL on a navigation) first, then the login cookie. A header
        token never mints a cookie; a URL token is exchanged for a session."""
        if getattr(handler, "_jupyter_current_user", None):
            return t.cast("User", handler._jupyter_current_user)  # type: ignore[attr-defined]
        token_user = await self.get_user_token(handler)
        if token_user is not None:
            handler._token_authenticated = True  # type: ignore[attr-defined]
            if getattr(handler, "_hs_token_source", None) == "url":
                self.set_login_cookie(handler, token_user)
            return token_user
        cookie_user = self.get_user_cookie(handler)
        if isinstance(cookie_user, t.Awaitable):
            cookie_user = await cookie_user
        if cookie_user is None:
            cookie_name = self.get_cookie_name(handler)
            if handler.get_cookie(cookie_name) is not None:
                self.clear_login_cookie(handler)
            return None
        return t.cast("User", cookie_user)

    def identity_model(self, user: User) -> dict[str, t.Any]:
        """``GET /api/me`` also says which scopes this request carries (the caller's own)."""
        model = super().identity_model(user)
        model["scopes"] = sorted(getattr(user, "hs_scopes", ()))
        return model

    def user_from_cookie(self, cookie_value: str) -> User | None:
        """Only the owner logs in with a browser (token or password): the cookie's user has
        the owner's scopes."""
        user = super().user_from_cookie(cookie_value)
        return with_scopes(user, self.owner_scopes()) if user is not None else None

    def set_login_cookie(self, handler: web.RequestHandler, user: User) -> None:
        """Stock mints a new login cookie on every token-authenticated API call; a request
        that authenticated with the Authorization header gets no cookie at all."""
        if getattr(handler, "_hs_token_source", None) == "header":
            return
        super().set_login_cookie(handler, user)

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        """The login form: the start-up token (constant-time) or the password."""
        typed = handler.get_body_argument("password", default="") or ""
        if self.hashed_password and self.passwd_check(typed):
            return self.owner_user(handler)
        token = self.token
        if token and hmac.compare_digest(
            typed.encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")
        ):
            return self.owner_user(handler)
        return None
