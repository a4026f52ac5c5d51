"""The identity provider: jupyter_server's password provider with its token leaks closed.

* The token is read from the ``Authorization`` header; a ``?token=`` in the URL only on GET/HEAD
  (the login URL printed at start-up) and never when the policy says ``tokens.url_tokens =
  "never"``; never from a form body (stock's ``get_argument`` reads bodies too, so a cross-site
  form could authenticate with a token it learned).
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

_QUERY_TOKEN_METHODS = frozenset({"GET", "HEAD"})


class HardenedIdentityProvider(PasswordIdentityProvider):
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
        if handler.request.method in _QUERY_TOKEN_METHODS and self._url_tokens_allowed():
            values = handler.request.query_arguments.get("token")
            if values:
                return values[-1].decode("utf-8", "replace")
        return ""

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        token = self.token
        if not token:
            return None
        user_token = self.get_token(handler)
        if not user_token or not hmac.compare_digest(
            user_token.encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")
        ):
            return None
        user = self.get_user_cookie(handler)
        if isinstance(user, t.Awaitable):
            user = await user
        if user is None:
            user = self.generate_anonymous_user(handler)
        return t.cast("User", user)
