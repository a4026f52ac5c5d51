"""The hub environment a single-user server needs, checked before anything is imported.

``hardened-server singleuser`` (:mod:`hardened_server.cli.singleuser`): hardened-server as
JupyterHub's single-user server.

    hardened-server singleuser [--policy FILE]... [--allow-root] [--ServerApp.x=y ...]

The Spawner starts this command instead of ``jupyterhub-singleuser``. It runs
:class:`HardenedSingleUserApp`, a :class:`~hardened_server.app.HardenedServerApp`, with
JupyterHub's own server extension (``jupyterhub.singleuser.extension``, enabled as
``jpserver_extensions={"jupyterhub": True}``):

* the hub's OAuth replaces the token login: :class:`HubIdentityProvider` (a subclass of the
  extension's ``JupyterHubIdentityProvider``) admits whom the hub's ``access:servers`` scopes
  admit (``$JUPYTERHUB_OAUTH_ACCESS_SCOPES``: the owner, and whoever the hub granted access to
  this server), and gives each such user every hardened-server scope
  (:data:`~hardened_server.policy.scopes.ALL_SCOPES`): the hub has one level of access to a
  server, and it includes running code. No start-up login URL, no token of ours;
* the policy still applies on top: Host allow-list, headers and CSP, paths, the session-bound
  XSRF token, the cross-site and origin checks, limits. The shipped ``jupyterhub`` profile is
  layered over the default before any ``--policy`` file;
* what the extension forces and the policy does instead: ``trust_xheaders`` (the policy's
  ``server.trusted_proxies`` decides, and tornado believes nobody), ``allow_remote_access``
  (our Host check never turns off), ``xsrf_cookies=False`` and the ``X-JupyterHub-Version`` /
  default ``Content-Security-Policy`` headers (undone: the policy's headers and XSRF check
  apply);
* it fails closed: without the hub's environment (:data:`REQUIRED_ENV`) it exits with code 2
  before it creates a socket, and it refuses to start when the extension did not link or its
  identity provider is not in place.

The hub-facing classes are in :mod:`hardened_server.hub`; this module is pure (it reads a
mapping), so that the command checks the environment first and a refusal costs no
jupyter_server import.

Audit: a hub login (the OAuth callback) is a ``login_success`` event with the hub user name, a
hub user the hub says may not use this server a ``login_failure``, the logout a ``logout``.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping

from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.rules import Rule

#: The shipped profile layered under every ``--policy`` file (``policies/jupyterhub.toml``).
HUB_PROFILE = "jupyterhub"
#: The route the hub sends the browser back to; it must be public (the user has no cookie yet).
OAUTH_CALLBACK_ROUTE = "/oauth_callback"

EXIT_REFUSED = 2

#: What the Spawner sets and this command cannot run without (name, what it is for).
REQUIRED_ENV: tuple[tuple[str, str], ...] = (
    ("JUPYTERHUB_API_TOKEN", "this server's credential towards the hub API"),
    ("JUPYTERHUB_API_URL", "where the hub API is (OAuth token checks)"),
    ("JUPYTERHUB_SERVICE_PREFIX", "the URL prefix the proxy routes to this server"),
    ("JUPYTERHUB_SERVICE_URL", "the address this server listens on"),
    ("JUPYTERHUB_USER", "the hub user who owns this server"),
    ("JUPYTERHUB_CLIENT_ID", "this server's OAuth client id (and cookie name)"),
)
ACCESS_SCOPES_ENV = ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", "JUPYTERHUB_OAUTH_SCOPES")


def _http_url(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_hub_environment(environ: Mapping[str, str]) -> list[UnsafeStartup]:
    """Everything wrong with the hub's environment, before anything else starts."""
    problems: list[UnsafeStartup] = []
    missing = [name for name, _why in REQUIRED_ENV if not environ.get(name, "").strip()]
    scopes_var = next((v for v in ACCESS_SCOPES_ENV if environ.get(v, "").strip()), None)
    if scopes_var is None:
        missing.append(ACCESS_SCOPES_ENV[0])
    if missing:
        why = dict(REQUIRED_ENV)
        why[ACCESS_SCOPES_ENV[0]] = "the hub scopes that admit a user to this server"
        problems.append(
            UnsafeStartup(
                Rule.HUB_ENV_MISSING,
                "not started by JupyterHub: the hub's environment is missing"
                + "".join(f"\n    ${name}: {why[name]}" for name in missing),
                setting="environment " + ", ".join(missing),
                fix="let JupyterHub's Spawner start `hardened-server singleuser` (it sets these); "
                "to run without a hub, use `hardened-server serve`",
            )
        )
        return problems
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_URL"):
        if not _http_url(environ[name]):
            problems.append(
                UnsafeStartup(
                    Rule.HUB_ENV_MALFORMED,
                    f"${name}={environ[name]!r} is not an http(s) URL with a host",
                    setting=f"environment {name}",
                    fix="check the hub's configuration (JupyterHub sets it)",
                )
            )
    prefix = environ["JUPYTERHUB_SERVICE_PREFIX"]
    if not (prefix.startswith("/") and prefix.endswith("/")) or "//" in prefix:
        problems.append(
            UnsafeStartup(
                Rule.HUB_ENV_MALFORMED,
                f"$JUPYTERHUB_SERVICE_PREFIX={prefix!r} is not a path like /user/NAME/",
                setting="environment JUPYTERHUB_SERVICE_PREFIX",
                fix="check the hub's configuration (JupyterHub sets it)",
            )
        )
    assert scopes_var is not None
    try:
        scopes = json.loads(environ[scopes_var])
    except ValueError:
        scopes = None
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        problems.append(
            UnsafeStartup(
                Rule.HUB_ENV_MALFORMED,
                f"${scopes_var} is not a non-empty JSON list of scopes: no hub user could use "
                "this server",
                setting=f"environment {scopes_var}",
                fix="check the hub's configuration (JupyterHub sets it, e.g. "
                '["access:servers!server=NAME/"])',
            )
        )
    return problems


# -- who, other than the owner, is using this server (issue #19 item 8) -----------------------

#: The ``non_owner`` field of an audit record: the request was made by a hub *user* who is not
#: the server's owner (an admin's "access server", a user the server was shared with), or by a
#: hub *service*'s token (jupyterhub-idle-culler, a backup job, any service with
#: ``access:servers``). Absent from every record of the owner.
NON_OWNER_USER = "user"
NON_OWNER_SERVICE = "service"
NON_OWNER_KINDS: frozenset[str] = frozenset({NON_OWNER_USER, NON_OWNER_SERVICE})


def non_owner_kind(hub_model: Mapping[str, object], owner: str) -> str | None:
    """Who the hub says made a request, measured against the server's owner
    (``$JUPYTERHUB_USER``): None for the owner, :data:`NON_OWNER_SERVICE` for any service (a
    service is never the owner, even one that shares the owner's name), :data:`NON_OWNER_USER`
    for any other hub user. A model without a usable name is not the owner either."""
    kind = hub_model.get("kind", "user")
    if kind == "service":
        return NON_OWNER_SERVICE
    name = hub_model.get("name")
    if kind == "user" and isinstance(name, str) and name and name == owner:
        return None
    return NON_OWNER_USER
