"""The identity provider: jupyter_server's password provider with its token leaks closed.

* The token is read from the ``Authorization`` header; a ``?token=`` in the URL only on a GET
  navigation to a page route (the login URL printed at start-up), which the handler then
  redirects to the same URL without the token; never when the policy says
  ``tokens.url_tokens = "never"``; never from a form body (stock's ``get_argument`` reads bodies
  too, so a cross-site form could authenticate with a token it learned).
* Tokens are compared with ``hmac.compare_digest`` (stock uses ``==``).
* Password change at the login page is off by default (a token holder could persist a
  password into the config file).
"""

from __future__ import annotations

import hmac
import typing as t

from jupyter_server.auth.identity import PasswordIdentityProvider, User
from tornado import web
from traitlets import default

from hardened_server.policy.decisions import RouteClass

_QUERY_TOKEN_METHODS = frozenset({"GET", "HEAD"})


class HardenedIdentityProvider(PasswordIdentityProvider):
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

    def _url_tokens_allowed(self) -> bool:
        policy = getattr(self.parent, "policy", None)
        return policy is None or policy.tokens.url_tokens != "never"

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
        dest = handler.request.headers.get("Sec-Fetch-Dest")
        return dest is None or dest == "document"

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        token = self.token
        if not token:
            return None
        user_token = self.get_token(handler)
        if not user_token or not hmac.compare_digest(
            user_token.encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")
        ):
            return None
        # Remember where the token came from: only a URL token (a navigation) is exchanged
        # for a session cookie; a header token authenticates this request and nothing more.
        handler._hs_token_source = (  # type: ignore[attr-defined]
            "header" if handler.request.headers.get("Authorization") else "url"
        )
        user = self.get_user_cookie(handler)
        if isinstance(user, t.Awaitable):
            user = await user
        if user is None:
            user = self.generate_anonymous_user(handler)
        return t.cast("User", user)

    def set_login_cookie(self, handler: web.RequestHandler, user: User) -> None:
        """Stock mints a new login cookie on every token-authenticated API call; a request
        that authenticated with the Authorization header gets no cookie at all."""
        if getattr(handler, "_hs_token_source", None) == "header":
            return
        super().set_login_cookie(handler, user)
