"""Start-up refusals, as pure functions of what the application is about to run.

The server does not start, and says which setting and which policy key to change, when its
configuration would undo the policy. The application gathers the facts
(:class:`StartupFacts`, :class:`RouteFact`, settings snapshots); these functions decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hardened_server.policy.decisions import Rule
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.hosts import is_loopback_bind
from hardened_server.policy.model import Policy
from hardened_server.policy.schema import SITE_PROVIDER_MAPPED, SITE_PROVIDER_REFUSE
from hardened_server.policy.tokens import estimate_entropy_bits

# Tornado settings that carry security. Set only by hardened-server itself: a value coming from
# ServerApp.tornado_settings, or changed by an extension after start-up, is refused.
SECURITY_SETTINGS: tuple[str, ...] = (
    "xsrf_cookies",
    "xsrf_cookie_kwargs",
    "xsrf_cookie_version",
    "cookie_secret",
    "headers",
    "allow_origin",
    "allow_origin_pat",
    "allow_credentials",
    "disable_check_xsrf",
    "static_handler_class",
    "login_url",
    "allow_unauthenticated_access",
    "allow_remote_access",
    "local_hostnames",
    "cookie_options",
    "get_secure_cookie_kwargs",
    "identity_provider",
    "authorizer",
    "contents_manager",
    "login_handler_class",
    "logout_handler_class",
    "default_handler_class",
    "default_handler_args",
    "serve_traceback",
    "debug",
    "autoescape",
    "jinja2_env",
    "websocket_max_message_size",
    "websocket_ping_interval",
    "websocket_ping_timeout",
    "nbconvert_csp_sandbox",
    "token",
    "allow_password_change",
    "authenticate_prometheus",
    "hardened_server",
)


@dataclass(frozen=True)
class StartupFacts:
    ip: str
    has_tls: bool
    user_tornado_settings: frozenset[str]
    allow_origin: str
    allow_origin_pat: str
    allow_credentials: bool
    disable_check_xsrf: bool
    allow_unauthenticated_access: bool
    token: str
    token_generated: bool
    has_password: bool
    terminals_enabled: bool
    sock: str = ""
    trust_xheaders: bool = False
    #: the contents manager's class (module.qualname), and whether it is built on
    #: HardenedContentsManager (the application decides; policy/ cannot import enforcement/)
    contents_manager: str = ""
    contents_manager_composed: bool = True
    # module.qualname of ServerApp.identity_provider_class when it is not one of ours ("")
    site_identity_provider: str = ""
    # module.qualname of a ServerApp.login_handler_class that no provider runs ("")
    legacy_login_handler: str = ""


@dataclass(frozen=True)
class RouteFact:
    pattern: str  # relative to base_url
    handler: str  # module.qualname of the original handler class
    undecorated: tuple[str, ...] = field(default=())  # HTTP methods with no auth decorator


def identity_problems(facts: StartupFacts, policy: Policy) -> list[UnsafeStartup]:
    """A site's own identity provider must have scopes from the policy (``identity.*``), or
    every user it authenticates would be refused everything: a silent lock-out. A legacy
    ``ServerApp.login_handler_class`` that no provider runs is refused, not ignored."""
    problems: list[UnsafeStartup] = []
    identity = policy.identity
    provider = facts.site_identity_provider
    if provider and identity.site_provider == SITE_PROVIDER_REFUSE:
        problems.append(
            UnsafeStartup(
                Rule.START_SITE_PROVIDER,
                f"ServerApp.identity_provider_class = {provider} is a site identity provider "
                "and the policy does not say what its users may do (identity.site_provider = "
                '"refuse"): every request of every user would be refused (403)',
                setting="ServerApp.identity_provider_class / policy key identity.site_provider",
                fix='set identity.site_provider = "owner" (a single-user provider: its user '
                'gets tokens.owner_scopes) or "mapped" with [identity.users] / '
                "[identity.groups] tables of scopes; or drop the setting to use "
                "hardened-server's own provider",
            )
        )
    elif (
        provider
        and identity.site_provider == SITE_PROVIDER_MAPPED
        and not identity.users
        and not identity.groups
    ):
        problems.append(
            UnsafeStartup(
                Rule.START_SITE_PROVIDER,
                f'identity.site_provider = "mapped" for {provider}, but identity.users and '
                "identity.groups are empty: every user would be refused (403)",
                setting="ServerApp.identity_provider_class / policy keys identity.users, "
                "identity.groups",
                fix='list users, e.g. identity.users = { alice = ["contents:read"] }, or '
                "groups in identity.groups",
            )
        )
    if facts.legacy_login_handler:
        problems.append(
            UnsafeStartup(
                Rule.START_LEGACY_LOGIN_HANDLER,
                f"ServerApp.login_handler_class = {facts.legacy_login_handler} (deprecated "
                "since jupyter_server 2.0) would be ignored: hardened-server's identity "
                "provider has its own login",
                setting="ServerApp.login_handler_class / policy key identity.site_provider",
                fix="remove it, or run it through jupyter_server's legacy path: "
                "ServerApp.identity_provider_class = "
                '"jupyter_server.auth.identity.PasswordIdentityProvider" (stock then uses '
                "LegacyIdentityProvider with your handler) and identity.site_provider = "
                '"owner"',
            )
        )
    return problems


def check_configuration(facts: StartupFacts, policy: Policy) -> list[UnsafeStartup]:
    problems: list[UnsafeStartup] = identity_problems(facts, policy)
    overridden = sorted(facts.user_tornado_settings & set(SECURITY_SETTINGS))
    for key in overridden:
        problems.append(
            UnsafeStartup(
                Rule.START_SETTING_OVERRIDE,
                f"ServerApp.tornado_settings sets the security setting {key!r}",
                setting=f"ServerApp.tornado_settings[{key!r}]",
                fix="remove it; hardened-server sets it from the policy "
                "(see `hardened-server policy show`)",
            )
        )
    for which, value in (
        ("ServerApp.allow_origin", facts.allow_origin),
        ("ServerApp.allow_origin_pat", facts.allow_origin_pat),
        ("ServerApp.allow_credentials", facts.allow_credentials),
    ):
        if not value:
            continue
        problems.append(
            UnsafeStartup(
                Rule.START_ALLOW_ORIGIN,
                f"{which}={value!r} would bypass the CORS allow-list"
                + (" and disable the origin checks entirely" if value == "*" else ""),
                setting=which,
                fix="list exact origins in the policy key cors.allow_origins "
                "(and cors.allow_credentials) instead",
            )
        )
    if facts.trust_xheaders:
        problems.append(
            UnsafeStartup(
                Rule.START_SETTING_OVERRIDE,
                "ServerApp.trust_xheaders=True makes tornado believe X-Forwarded-For/-Proto "
                "from any peer (spoofed client address and scheme)",
                setting="ServerApp.trust_xheaders",
                fix="remove it; list your reverse proxies in the policy key "
                "server.trusted_proxies instead",
            )
        )
    if facts.disable_check_xsrf:
        problems.append(
            UnsafeStartup(
                Rule.START_DISABLE_XSRF,
                "ServerApp.disable_check_xsrf=True turns off cross-site request forgery "
                "protection (and, in jupyter_server, the origin check with it)",
                setting="ServerApp.disable_check_xsrf",
                fix="remove it; API clients authenticate with an Authorization header, which "
                "needs no XSRF token",
            )
        )
    if facts.allow_unauthenticated_access:
        problems.append(
            UnsafeStartup(
                Rule.START_UNAUTHENTICATED_ACCESS,
                "ServerApp.allow_unauthenticated_access=True lets undecorated handlers answer "
                "anonymous requests",
                setting="ServerApp.allow_unauthenticated_access "
                "(or JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS)",
                fix="remove it; list the routes that must be public in the policy key "
                "routes.public",
            )
        )
    if not facts.token and not facts.has_password:
        problems.append(
            UnsafeStartup(
                Rule.START_NO_AUTH,
                "the token is empty and no password is set: anyone who reaches the port "
                "runs code as this user",
                setting="IdentityProvider.token / JUPYTER_TOKEN",
                fix="unset JUPYTER_TOKEN (a strong token is generated) or set a token of at "
                "least 32 random hex characters, or set a password hash",
            )
        )
    elif facts.token and not facts.token_generated:
        bits = estimate_entropy_bits(facts.token)
        if bits < policy.tokens.min_entropy_bits:
            problems.append(
                UnsafeStartup(
                    Rule.START_WEAK_TOKEN,
                    f"the configured token has about {bits:.0f} bits of entropy, less than "
                    f"the {policy.tokens.min_entropy_bits} bits the policy requires",
                    setting="JUPYTER_TOKEN / JUPYTER_TOKEN_FILE / IdentityProvider.token",
                    fix="use a random token, e.g. `python -c \"import secrets; "
                    "print(secrets.token_hex(32))\"`, or unset it to have one generated "
                    "(policy key: tokens.min_entropy_bits)",
                )
            )
    if facts.terminals_enabled and not policy.terminals.enabled:
        problems.append(
            UnsafeStartup(
                Rule.START_TERMINALS,
                "terminals are enabled but the policy does not allow them",
                setting="ServerApp.terminals_enabled",
                fix="remove --ServerApp.terminals_enabled=True, or set terminals.enabled = true "
                "in the policy",
            )
        )
    problems += check_contents_manager(facts.contents_manager, facts.contents_manager_composed)
    if (
        not facts.sock
        and not is_loopback_bind(facts.ip)
        and not facts.has_tls
        and not policy.server.trusted_proxies
        and not policy.server.allow_insecure_remote
    ):
        problems.append(
            UnsafeStartup(
                Rule.START_INSECURE_REMOTE,
                f"binding to {facts.ip or 'all interfaces'!r} with neither TLS nor a trusted "
                "proxy: tokens and cookies would cross the network in clear",
                setting="--ip",
                fix="give --certfile and --keyfile, or put a TLS proxy in front and list it in "
                "server.trusted_proxies, or bind to 127.0.0.1 (server.allow_insecure_remote = "
                "true accepts the risk explicitly)",
            )
        )
    return problems


def check_routes(routes: Iterable[RouteFact], policy: Policy) -> list[UnsafeStartup]:
    """A handler method without an authentication decorator on a route the policy does not list
    as public (extension routes included) stops the server."""
    exempt = set(policy.routes.public) | set(policy.routes.accept_undecorated)
    dropped = _dropped_by("routes.accept_undecorated", policy)
    problems = []
    for route in routes:
        if route.undecorated and route.pattern not in exempt:
            methods = ", ".join(route.undecorated)
            if route.pattern in dropped:
                # A layer replaced the list and lost this entry: say which, and the way to add.
                problems.append(
                    UnsafeStartup(
                        Rule.START_UNAUTHENTICATED_ROUTE,
                        f"{methods} of {route.handler} on route {route.pattern!r} has no "
                        f"authentication decorator; {dropped[route.pattern]} replaced "
                        "routes.accept_undecorated and dropped it",
                        setting=f"routes.accept_undecorated in {dropped[route.pattern]}",
                        fix="add to the list instead of replacing it: [routes] "
                        'accept_undecorated = { extend = ["..."] } (or keep '
                        f"{route.pattern!r} in your list)",
                    )
                )
                continue
            problems.append(
                UnsafeStartup(
                    Rule.START_UNAUTHENTICATED_ROUTE,
                    f"{methods} of {route.handler} on route {route.pattern!r} has no "
                    "authentication decorator",
                    setting=f"route {route.pattern!r}",
                    fix="decorate the method with @tornado.web.authenticated (websockets: "
                    "@jupyter_server.auth.decorator.ws_authenticated); if it authenticates in "
                    f"its own code, add {route.pattern!r} to routes.accept_undecorated after "
                    f"review; if it really must be public, add {route.pattern!r} to "
                    "routes.public (a JupyterHandler method then also needs "
                    "@jupyter_server.auth.decorator.allow_unauthenticated)",
                )
            )
    return problems


#: Server extensions refused at start-up, with why and what to use instead. A front-end that
#: cannot run under the page CSP would otherwise start and show blank pages, or tempt its
#: operator into the one loosening the policy refuses ('unsafe-inline' in script-src).
REFUSED_EXTENSIONS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        # nbclassic's templates (page.html, tree.html, notebook.html, edit.html ...) run
        # inline scripts with per-request values (require.config with base and static URLs,
        # the notebook path), and its nbextensions load through RequireJS from the
        # notebook directory tree: neither a hash nor a nonce on the server's own templates
        # makes it work, only 'unsafe-inline', which the floor refuses.
        "nbclassic": (
            "nbclassic (the Notebook 6 front-end) runs inline scripts with per-request values "
            "in every page, which the page CSP blocks (no 'unsafe-inline', by the floor): "
            "its pages cannot work under the strict policy",
            "use Notebook 7 (the notebook package, already served at /tree) instead, and "
            "disable nbclassic: `jupyter server extension disable nbclassic`, or "
            "--ServerApp.jpserver_extensions=nbclassic=False",
        ),
    }
)


def check_extensions(enabled: Iterable[str]) -> list[UnsafeStartup]:
    """An enabled server extension listed in :data:`REFUSED_EXTENSIONS` stops the server."""
    problems = []
    for name in sorted(set(enabled)):
        if name in REFUSED_EXTENSIONS:
            why, instead = REFUSED_EXTENSIONS[name]
            problems.append(
                UnsafeStartup(
                    Rule.START_REFUSED_EXTENSION,
                    why,
                    setting=f"server extension {name!r} (ServerApp.jpserver_extensions)",
                    fix=instead,
                )
            )
    return problems


def _dropped_by(key: str, policy: Policy) -> dict[str, str]:
    """Items of list ``key`` that a layer's replacement dropped -> that layer (the last one to
    drop each)."""
    out: dict[str, str] = {}
    for step in policy.history.get(key, ()):
        for item in step.dropped:
            out[str(item)] = step.source
    return out


def check_drift(
    before: Mapping[str, Any], after: Mapping[str, Any], *, who: str = "a server extension"
) -> list[UnsafeStartup]:
    """Security settings changed between the hardened snapshot and now.

    Compared by :func:`same_setting`: plain data by value, every other object by identity. A
    foreign object's ``__eq__`` is never called: it is extension code, it may raise (jupytext's
    contents manager compares attributes ours does not have) or answer ``True`` to anything."""
    problems = []
    for key in SECURITY_SETTINGS:
        if not same_setting(before.get(key, _MISSING), after.get(key, _MISSING)):
            problems.append(
                UnsafeStartup(
                    Rule.START_SETTINGS_DRIFT,
                    f"{who} changed the security setting {key!r} after hardened-server set it",
                    setting=f"web application setting {key!r}",
                    fix="disable that extension or remove the setting from its configuration; "
                    "security settings come from the policy",
                )
            )
    return problems


#: Exactly these types are compared by value (``bool`` and ``int`` compare across each other as
#: Python does, so a setting flipped from ``1`` to ``True`` is not drift).
_PLAIN_TYPES: tuple[type, ...] = (str, bytes, int, float, bool, type(None))


def same_setting(before: object, after: object) -> bool:
    """Identity, or equal plain data: ``str``, ``bytes``, numbers, ``None`` (exactly those types:
    a subclass may override ``__eq__``), and dicts, lists and tuples of those, compared
    element by element by this function through the built-in types' own methods. Any other
    object is the same only if it is the same object."""
    if before is after:
        return True
    if type(before) in _PLAIN_TYPES and type(after) in _PLAIN_TYPES:
        return bool(before == after)
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(dict.keys(before)), list(dict.keys(after))
        # Keys of a settings dict are strings; a key of another type makes the dicts differ
        # rather than letting its __eq__/__hash__ run.
        if not all(type(k) is str for k in (*keys[0], *keys[1])) or set(keys[0]) != set(keys[1]):
            return False
        return all(
            same_setting(dict.__getitem__(before, k), dict.__getitem__(after, k))
            for k in keys[0]
        )
    if isinstance(before, list) and isinstance(after, list):
        a, b = list(list.__iter__(before)), list(list.__iter__(after))
    elif isinstance(before, tuple) and isinstance(after, tuple):
        a, b = list(tuple.__iter__(before)), list(tuple.__iter__(after))
    else:
        return False
    return len(a) == len(b) and all(same_setting(i, j) for i, j in zip(a, b, strict=True))


def check_contents_manager(
    manager: str, composed: bool, *, who: str = "the configuration"
) -> list[UnsafeStartup]:
    """The contents manager must carry the path policy: be
    ``hardened_server.enforcement.contents.HardenedContentsManager`` or a class built on it
    (jupytext's server extension builds its manager on whatever class is configured, so it
    composes by itself). ``composed`` is that fact, established by the application; ``who``
    says where the manager came from."""
    if composed:
        return []
    return [
        UnsafeStartup(
            Rule.START_CONTENTS_MANAGER,
            f"{who} sets the contents manager {manager}, which is not built on "
            "HardenedContentsManager: the paths policy (hidden and denied files) would not "
            "decide its operations",
            setting="ServerApp.contents_manager_class"
            + ("" if who == "the configuration" else f" (replaced by {who})"),
            fix="leave ServerApp.contents_manager_class unset (extensions that derive their "
            "manager from the configured one, such as jupytext, then compose with it), or "
            "derive the class from hardened_server.enforcement.contents.HardenedContentsManager"
            " (for a class factory: factory(HardenedContentsManager)), or disable the "
            "extension (SECURITY.md, \"Contents managers from extensions\")",
        )
    ]


_MISSING = object()
