"""The identity provider: jupyter_server's password provider with its token leaks closed.

* Tokens are read from the ``Authorization: token|Bearer`` header. A ``?token=`` in the URL
  counts only on a GET navigation to a page route (the login URL printed at start-up), which is
  exchanged for a session and redirected to the same URL without the token; never when the
  policy says ``tokens.url_tokens = "never"``; never on API, files or websocket requests, and
  never from a form body (stock's ``get_argument`` reads bodies too, so a cross-site form could
  authenticate with a token it learned).
* Two kinds of token: the start-up token (``JUPYTER_TOKEN``, the token file, or the generated one
  in the login URL), which carries the owner's scopes (``tokens.owner_scopes``), and stored
  tokens (``hst_<id>_<secret>``, :mod:`hardened_server.enforcement.identity.tokenstore`), each
  with its own scopes and expiry, accepted from the header only. Both are compared in constant time.
* A header-authenticated request never mints a cookie (stock mints one on every API call).
* Password change at the login page is off by default (a token holder could persist a
  password into the config file).

Hooks meant to be overridden (the JupyterHub provider does): :meth:`owner_user`,
:meth:`user_for_stored_token`, :meth:`owner_scopes`.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import math
import typing as t
import uuid
from pathlib import Path

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import PasswordIdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.auth.logout import LogoutHandler
from tornado import web
from traitlets import Unicode, default

from hardened_server.enforcement.connections import Binding
from hardened_server.enforcement.identity.passwords import (
    hash_password_async,
    same_secret,
    verify_password,
    verify_password_async,
)
from hardened_server.enforcement.identity.sessions import SessionStore
from hardened_server.enforcement.identity.tokenstore import (
    TokenRecord,
    TokenStore,
    looks_like_stored_token,
    parse_token_id,
    store_path_for,
)
from hardened_server.enforcement.marks import mark
from hardened_server.enforcement.recorder import record_event
from hardened_server.enforcement.runtime import SETTINGS_KEY, client_key
from hardened_server.fsutil import atomic_write
from hardened_server.policy.decisions import Decision, RouteClass, deny
from hardened_server.policy.loader import shipped_policy
from hardened_server.policy.model import Policy
from hardened_server.policy.routeclass import KIND_WEBSOCKET
from hardened_server.policy.rules import Rule
from hardened_server.policy.scopes import ADMIN, has_scope
from hardened_server.policy.throttle import LoginThrottle
from hardened_server.policy.tokens import parse_authorization
from hardened_server.trail.record import EventKind

if t.TYPE_CHECKING:
    from jupyter_server.base.handlers import AuthenticatedHandler

_QUERY_TOKEN_METHODS = frozenset({"GET", "HEAD"})
#: The source of a token read from a websocket handshake's URL under
#: ``tokens.websocket_url_tokens = "stored-scoped"``. Like a header token it is no ambient
#: credential (a page cannot make a browser attach it), so it needs no cross-site check beyond
#: the origin check, and it never mints a cookie.
WEBSOCKET_URL = "websocket-url"


def _jupyter_handler(handler: web.RequestHandler) -> AuthenticatedHandler:
    """The provider's hooks are typed with tornado's base class, but jupyter_server calls them
    only from its own handlers (``AuthenticatedHandler.get_current_user`` and subclasses)."""
    return t.cast("AuthenticatedHandler", handler)


def with_scopes(user: User, scopes: t.Iterable[str]) -> User:
    """Attach the scopes contract (:mod:`hardened_server.policy.scopes`) to a user."""
    mark(user, hs_scopes=frozenset(scopes))
    return user


class HardenedIdentityProvider(PasswordIdentityProvider):
    #: Every user this provider returns carries its scopes (a site's provider gets them from
    #: the policy's [identity] table instead: enforcement/identity/site.py).
    hs_assigns_scopes = True

    token_store_file = Unicode(
        "",
        config=True,
        help="The token store file (overrides the policy's tokens.store_file). Default: "
        "hardened-server-tokens.json in the Jupyter runtime directory.",
    )

    password_file = Unicode(
        "",
        config=True,
        help="A file holding the password hash (`hardened-server password > FILE`). When set, "
        "an outdated hash is replaced there (atomically) after a successful login.",
    )

    _token_store: TokenStore | None = None
    _login_throttle: LoginThrottle | None = None
    _sessions: SessionStore | None = None

    @default("token")
    def _token_default(self) -> str:
        # JUPYTER_TOKEN_FILE is read as is; a trailing newline (``echo $TOKEN > file``) would
        # otherwise be part of the token and no client could ever send it.
        return super()._token_default().strip()

    @default("allow_password_change")
    def _default_allow_password_change(self) -> bool:
        return False

    # -- policy ----------------------------------------------------------------------------------

    def _policy(self) -> Policy:
        """The parent app's policy; with no hardened parent (a bare provider, a test), the
        shipped default profile's: never "no policy", and no default number copied here."""
        policy = getattr(self.parent, "policy", None)
        return policy if isinstance(policy, Policy) else shipped_policy()

    def _url_tokens_allowed(self) -> bool:
        return self._policy().tokens.url_tokens != "never"

    def owner_scopes(self) -> frozenset[str]:
        """What the owner (start-up token, password) may do: ``tokens.owner_scopes``."""
        return frozenset(self._policy().tokens.owner_scopes)

    # -- the token store -------------------------------------------------------------------------

    def token_store_path(self) -> Path:
        return store_path_for(
            self.token_store_file, configured=self._policy().tokens.store_file
        )

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
        user = with_scopes(
            User(username=name, name="owner", display_name="Owner"), self.owner_scopes()
        )
        mark(user, hs_owner=True)
        return user

    def hs_refresh_scopes(self, user: User) -> None:
        """An owner principal's scopes follow ``tokens.owner_scopes`` of the policy in force:
        a reload that lowers them applies to existing sessions and open websockets, not only
        to the next login. Other principals (stored tokens) carry their own, fixed scopes."""
        if getattr(user, "hs_owner", False):
            scopes = self.owner_scopes()
            if getattr(user, "hs_scopes", None) != scopes:
                with_scopes(user, scopes)

    # -- open connections (connections.py) -----------------------------------------------------

    def hs_before_sweep(self) -> None:
        """Once per re-check of the open websockets: one ``stat`` of the token store file, so
        a ``token revoke`` or ``rotate`` by the CLI is seen within a sweep."""
        if self._token_store is not None:
            self._token_store.refresh()

    def hs_credential_decision(self, binding: Binding) -> Decision | None:
        """Whether the credential an open websocket was opened with still stands: its session
        (not revoked, not idle or past its lifetime; the check is not activity), or its stored
        token (still in the store, with the same secret, not expired). The start-up token
        changes only with a restart."""
        if binding.session_id is not None and not self.sessions.alive(binding.session_id):
            return deny(
                Rule.ID_CONNECTION_SESSION_ENDED,
                "session ended (logout, log out everywhere, idle or lifetime expiry)",
            )
        if binding.token_id is not None:
            record = self.token_store.lookup(binding.token_id)
            if record is None or record.sha256 != binding.token_sha256:
                return deny(Rule.ID_CONNECTION_TOKEN_ENDED, "stored token revoked or rotated")
            if record.expired(self.token_store.clock()):
                return deny(Rule.ID_CONNECTION_TOKEN_ENDED, "stored token expired")
        return None

    def user_for_stored_token(self, record: TokenRecord) -> User:
        return with_scopes(
            User(username=f"token-{record.id}", name=record.name, display_name=record.name),
            record.scopes,
        )

    # -- tokens ----------------------------------------------------------------------------------

    def get_token(self, handler: web.RequestHandler) -> str | None:
        return self.token_and_source(handler)[0]

    def token_and_source(self, handler: web.RequestHandler) -> tuple[str, str | None]:
        """The presented token and where it was read from: ``"header"`` (``Authorization:
        token|Bearer``) or ``"url"`` (``?token=`` on a page navigation); ``("", None)`` for
        none. The source is where the token *was read*, never inferred from which headers
        happen to be present: an ``Authorization: Basic`` (which a browser sends on every
        request behind an HTTP-Basic proxy) does not make a URL token a header token
        (issue #18)."""
        header = parse_authorization(handler.request.headers.get("Authorization"))
        if header is not None:
            return header, "header"
        values = handler.request.query_arguments.get("token")
        if not values:
            return "", None
        if self._is_token_navigation(handler):
            return values[-1].decode("utf-8", "replace"), "url"
        if self._is_websocket_url_token_allowed(handler):
            return values[-1].decode("utf-8", "replace"), WEBSOCKET_URL
        return "", None

    def _is_websocket_url_token_allowed(self, handler: web.RequestHandler) -> bool:
        """``tokens.websocket_url_tokens = "stored-scoped"``: a websocket handshake (an
        ``Upgrade: websocket`` GET of a websocket route) may carry a token in its URL; which
        tokens count is decided in :meth:`get_user_token` (stored ones only)."""
        if self._policy().tokens.websocket_url_tokens != "stored-scoped":
            return False
        if handler.request.method != "GET":
            return False
        if handler.request.headers.get("Upgrade", "").lower() != "websocket":
            return False
        return KIND_WEBSOCKET in getattr(handler, "_hs_kinds", frozenset())

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

    def _refused_token(
        self,
        handler: web.RequestHandler,
        reason: str,
        rule_id: Rule = Rule.ID_TOKEN_REFUSED,
        **extra: t.Any,
    ) -> None:
        mark(handler, _hs_token_failed=True)
        record_event(
            handler.request,
            EventKind.LOGIN_FAILURE,
            rule_id=rule_id,
            allowed=False,
            reason=reason,
            route_class=self._route_class(handler),
            **extra,
        )

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        presented, source = self.token_and_source(handler)
        if not presented:
            return None
        if source == WEBSOCKET_URL and not looks_like_stored_token(presented):
            # The opt-in is for stored, scoped tokens: the owner's start-up token (every
            # scope, no expiry, no revocation short of a restart) never travels in a URL.
            self._refused_token(
                handler,
                "only a stored token is accepted in a websocket URL "
                "(tokens.websocket_url_tokens = 'stored-scoped')",
                Rule.ID_TOKEN_MISPLACED,
            )
            return None
        if looks_like_stored_token(presented):
            if source not in ("header", WEBSOCKET_URL):
                # A stored token in a URL (logs, history, Referer): refused as misplaced.
                self._refused_token(
                    handler,
                    "stored tokens are accepted in the header only",
                    Rule.ID_TOKEN_MISPLACED,
                )
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
            # What an open websocket is bound to (connections.py): this token's id and the
            # hash of this very secret (a rotation changes it).
            mark(handler, _hs_token_id=record.id, _hs_token_sha256=record.sha256)
            if first_use:
                record_event(
                    handler.request,
                    EventKind.TOKEN_USED,
                    rule_id=Rule.ID_TOKEN_USED,
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
        mark(handler, _hs_token_source=source)
        return user

    async def _get_user(self, handler: web.RequestHandler) -> User | None:
        """The token (header, or URL on a navigation) first, then the login cookie. A header
        token never mints a cookie; a URL token is exchanged for a session."""
        current = getattr(handler, "_jupyter_current_user", None)
        if current:
            return t.cast("User", current)
        token_user = await self.get_user_token(handler)
        if token_user is not None:
            mark(handler, _token_authenticated=True)
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
        return cookie_user

    def identity_model(self, user: User) -> dict[str, t.Any]:
        """``GET /api/me`` also says which scopes this request carries (the caller's own)."""
        model = super().identity_model(user)
        model["scopes"] = sorted(getattr(user, "hs_scopes", ()))
        return model

    # -- sessions --------------------------------------------------------------------------------

    @property
    def sessions(self) -> SessionStore:
        if self._sessions is None:
            sessions = self._policy().sessions
            self._sessions = SessionStore(
                sessions.idle_minutes * 60.0, sessions.lifetime_minutes * 60.0
            )
        return self._sessions

    def get_cookie_name(self, handler: web.RequestHandler) -> str:
        """Stock's ``username-<host>`` over plain HTTP; over TLS (direct, or as a trusted
        proxy says) ``__Host-username-<host>``: the browser then accepts it only with Secure,
        ``Path=/`` and no Domain, so a sibling subdomain cannot plant or shadow it
        (JupyterHub CVE-2024-28233)."""
        if self.cookie_name:
            return self.cookie_name
        name = super().get_cookie_name(handler)
        return "__Host-" + name if handler.request.protocol == "https" else name

    def _cookie_options(self, handler: web.RequestHandler) -> dict[str, t.Any]:
        options: dict[str, t.Any] = dict(self.cookie_options)
        options["samesite"] = self._policy().sessions.samesite
        options["httponly"] = True
        if handler.request.protocol == "https":
            options["secure"] = True
            options["path"] = "/"
            options.pop("domain", None)
        else:
            options.setdefault("path", _jupyter_handler(handler).base_url)
        return options

    def set_login_cookie(self, handler: web.RequestHandler, user: User) -> None:
        """A new server-side session for ``user``; the cookie holds only its id (signed), and
        is a browser-session cookie (no Expires: the server decides the lifetime). A request
        that authenticated with the Authorization header gets no cookie at all (stock mints
        one on every token-authenticated API call)."""
        if getattr(handler, "_hs_token_source", None) == "header":
            return
        session = self.sessions.create(user)
        mark(handler, _hs_session_id=session.id)
        handler.set_signed_cookie(
            self.get_cookie_name(handler),
            session.id,
            expires_days=None,
            **self._cookie_options(handler),
        )

    def _session_id(self, handler: web.RequestHandler) -> str | None:
        raw = handler.get_signed_cookie(
            self.get_cookie_name(handler), **self.get_secure_cookie_kwargs
        )
        if not raw:
            return None
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            return None

    def get_user_cookie(self, handler: web.RequestHandler) -> User | None:
        session_id = self._session_id(handler)
        if session_id is None:
            return None
        session = self.sessions.get(session_id)
        if session is None:
            record_event(
                handler.request,
                EventKind.LOGIN_FAILURE,
                rule_id=Rule.ID_SESSION_REFUSED,
                allowed=False,
                reason="expired, revoked or unknown session",
                route_class=self._route_class(handler),
            )
            return None
        mark(handler, _hs_session_id=session_id)
        self.hs_refresh_scopes(session.user)
        return t.cast("User", session.user)

    def persist_user_model(self, handler: web.RequestHandler) -> None:
        """``PATCH /api/me`` changed the user in place, and the session holds that very
        object: nothing to re-issue (stock re-signs the cookie)."""

    def clear_login_cookie(self, handler: web.RequestHandler) -> None:
        """Logout: the session is revoked on the server, then the cookie is cleared."""
        session_id = getattr(handler, "_hs_session_id", None) or self._session_id(handler)
        if session_id:
            self.sessions.revoke(session_id)
        options = self._cookie_options(handler)
        handler.clear_cookie(
            self.get_cookie_name(handler),
            path=options["path"],
            secure=options.get("secure", False),
            samesite=options["samesite"],
            httponly=True,
        )

    # -- passwords -------------------------------------------------------------------------------

    @default("hashed_password")
    def _default_hashed_password(self) -> str:
        if self.password_file:
            return Path(self.password_file).read_text().strip()
        return ""

    @default("login_handler_class")
    def _default_login_handler_class(self) -> type:
        return HardenedLoginHandler

    @default("logout_handler_class")
    def _default_logout_handler_class(self) -> type:
        return HardenedLogoutHandler

    @property
    def login_throttle(self) -> LoginThrottle:
        if self._login_throttle is None:
            login = self._policy().login
            self._login_throttle = LoginThrottle(
                login.free_attempts, float(login.max_delay_seconds)
            )
        return self._login_throttle

    def passwd_check(self, password: str) -> bool:
        """Synchronous check (stock's hook); the login handler uses :meth:`check_login`."""
        return verify_password(self.hashed_password, password)[0]

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        """Synchronous form check (stock's hook): the start-up token or the password. The
        login handler uses :meth:`check_login`, which hashes off the event loop."""
        typed = handler.get_body_argument("password", default="") or ""
        if self._is_startup_token(typed) or self.passwd_check(typed):
            return self.owner_user(handler)
        return None

    def _is_startup_token(self, typed: str) -> bool:
        return bool(self.token) and bool(typed) and same_secret(typed, self.token)

    async def check_login(self, handler: web.RequestHandler) -> User | None:
        """The login form's ``password`` field (from the body only, never the URL): the
        start-up token, compared in constant time, or the password, verified with argon2id in
        a thread pool. An outdated hash is replaced after a successful login
        (:meth:`store_rehashed_password`)."""
        typed = handler.get_body_argument("password", default="") or ""
        if not typed:
            return None
        if self._is_startup_token(typed):
            return self.owner_user(handler)
        stored = self.hashed_password
        if not stored:
            return None
        ok, outdated = await verify_password_async(stored, typed)
        if not ok:
            return None
        if outdated:
            await self.store_rehashed_password(handler, stored, await hash_password_async(typed))
        return self.owner_user(handler)

    async def store_rehashed_password(
        self, handler: web.RequestHandler, old: str, new: str
    ) -> None:
        """Where the re-hash goes: the ``--password-file`` (replaced atomically: temporary
        file, fsync, rename), else memory only, with a warning to run
        ``hardened-server password`` and update the configuration."""
        if self.hashed_password != old:
            return  # another login re-hashed it meanwhile
        self.hashed_password = new
        if self.password_file:
            atomic_write(Path(self.password_file), (new + "\n").encode())
            where = "password file"
        else:
            self.log.warning(
                "The configured password hash is outdated; a stronger hash is in use until "
                "restart. Run `hardened-server password` and configure its output (or use "
                "--password-file so the server can replace it)."
            )
            where = "memory"
        record_event(
            handler.request,
            EventKind.LOGIN_SUCCESS,
            rule_id=Rule.ID_PASSWORD_REHASHED,
            allowed=True,
            reason=f"outdated password hash replaced ({where})",
            route_class=self._route_class(handler),
        )


#: The one message of every failed or throttled login (which check failed is in the record).
LOGIN_FAILED_MESSAGE = "Invalid credentials, or too many attempts: wait and try again."


class HardenedLoginHandler(LoginFormHandler):
    """``POST /login`` with throttling before hashing and hashing off the event loop.

    1. A client over its budget (:class:`~hardened_server.policy.throttle.LoginThrottle`) is
       answered 429 at once, with ``Retry-After``: no hash is computed for it.
    2. The attempt is charged to the client and to the account before anything is checked
       (so concurrent attempts cannot all pass before the first failure counts).
    3. If the account is throttled (attempts from many clients), the attempt waits its turn
       with ``asyncio.sleep``: the event loop serves everyone else meanwhile.
    4. The password is verified in the argon2 thread pool.

    Every failure gets the same message; success forgives both counters."""

    ACCOUNT = "account:owner"

    @allow_unauthenticated
    async def post(self) -> None:
        provider = t.cast("HardenedIdentityProvider", self.identity_provider)
        throttle = provider.login_throttle
        client = "client:" + client_key(self.request.remote_ip or "")
        route_class = provider._route_class(self)
        wait = throttle.retry_after(client)
        if wait > 0:
            record_event(
                self.request,
                EventKind.LOGIN_FAILURE,
                rule_id=Rule.ID_LOGIN_THROTTLED,
                allowed=False,
                reason="client is throttled; answered before hashing",
                route_class=route_class,
            )
            self.set_header("Retry-After", str(math.ceil(wait)))
            self.set_status(429)
            self._render(message={"error": LOGIN_FAILED_MESSAGE})
            return
        throttle.charge(client)
        account_wait = throttle.retry_after(self.ACCOUNT)
        throttle.charge(self.ACCOUNT)
        if account_wait > 0:
            await asyncio.sleep(min(account_wait, throttle.max_delay))
        user = await provider.check_login(self)
        if user is None:
            record_event(
                self.request,
                EventKind.LOGIN_FAILURE,
                rule_id=Rule.ID_LOGIN_FAILED,
                allowed=False,
                reason="wrong password or token",
                route_class=route_class,
            )
            self.set_status(401)
            self._render(message={"error": LOGIN_FAILED_MESSAGE})
            return
        throttle.clear(client)
        throttle.clear(self.ACCOUNT)
        self.current_user = user
        record_event(
            self.request,
            EventKind.LOGIN_SUCCESS,
            rule_id=Rule.ID_LOGIN_OK,
            allowed=True,
            reason="logged in with the login form",
            user=user.username,
            route_class=route_class,
        )
        provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))


_LOGOUT_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Log out</title></head>
<body><main>
<h1>{title}</h1>
{body}
</main></body></html>
"""


class HardenedLogoutHandler(LogoutHandler):
    """``GET /logout`` shows a form and changes nothing (a link, an ``<img>`` or a prefetch
    must not log anyone out); ``POST /logout`` with the XSRF token revokes this session on the
    server and clears the cookie. ``everywhere=1`` revokes every session of this server ("log
    out everywhere"): with the session cookie and XSRF token, or with an ``admin`` token in
    the Authorization header (``curl -X POST -H "Authorization: token ..." -d everywhere=1
    .../logout``)."""

    hs_route_scopes: t.ClassVar[dict[str, tuple[str, str]]] = {
        "GET": ("navigation", "read"),
        "POST": ("navigation", "read"),
    }

    def _page(self, title: str, body: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(_LOGOUT_PAGE.format(title=html.escape(title), body=body))

    @web.authenticated
    def get(self) -> None:
        action = html.escape(self.base_url + "logout", quote=True)
        xsrf = self.xsrf_form_html()
        self._page(
            "Log out?",
            f'<form method="post" action="{action}">{xsrf}'
            '<button type="submit" name="everywhere" value="0">Log out</button> '
            '<button type="submit" name="everywhere" value="1">'
            "Log out everywhere (every browser)</button></form>",
        )

    @web.authenticated
    def post(self) -> None:
        provider = t.cast("HardenedIdentityProvider", self.identity_provider)
        user = self.current_user
        everywhere = self.get_body_argument("everywhere", "0") in ("1", "true", "yes", "on")
        route_class = provider._route_class(self)
        if everywhere:
            if not has_scope(user, ADMIN):
                raise web.HTTPError(403, "logging out everywhere needs the admin scope")
            count = provider.sessions.revoke_all()
            record_event(
                self.request,
                EventKind.LOGOUT,
                rule_id=Rule.ID_LOGOUT_EVERYWHERE,
                allowed=True,
                reason=f"every session revoked ({count})",
                user=getattr(user, "username", None),
                route_class=route_class,
            )
        else:
            record_event(
                self.request,
                EventKind.LOGOUT,
                rule_id=Rule.ID_LOGOUT,
                allowed=True,
                reason="session revoked",
                user=getattr(user, "username", None),
                route_class=route_class,
            )
        if getattr(self, "_hs_token_source", None) != "header":
            provider.clear_login_cookie(self)
        # The websockets this session (or every session) opened close now, not at the next
        # sweep (connections.py).
        runtime = self.settings.get(SETTINGS_KEY)
        if runtime is not None:
            runtime.connections.sweep()
        login = html.escape(self.base_url + "login", quote=True)
        self._page("Logged out", f'<p><a href="{login}">Log in again</a></p>')
