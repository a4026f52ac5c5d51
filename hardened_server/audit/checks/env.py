"""Static checks of everything around the policy: the Jupyter configuration and environment the
server will start with, file permissions, JupyterHub variables, extensions and routes.

Where hardened-server would refuse to start, the check says so: the same pure function decides
(:func:`hardened_server.policy.startup.check_configuration` over facts read from the config files
and the environment), so the audit and the start-up can never disagree.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from hardened_server.audit.checks import (
    CRITICAL,
    ERROR,
    INFO,
    KIND_EXTENSIONS,
    KIND_ROUTES,
    WARNING,
    Hit,
    Location,
    check,
)
from hardened_server.audit.checks.policy import where
from hardened_server.audit.facts import Facts, PathInfo, path_info
from hardened_server.policy.decisions import Rule
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.hosts import is_loopback_bind
from hardened_server.policy.paths import (
    SERVER_FILE_RULES,
    PathPolicy,
    ServerFile,
    path_below_root,
    served_file_problem,
)
from hardened_server.policy.scopemap import RouteMap
from hardened_server.policy.startup import StartupFacts, check_configuration

# ---------------------------------------------------------------------------------------------
# Start-up refusals, decided by the server's own function


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def startup_facts(facts: Facts) -> StartupFacts:
    server = facts.config.get("ServerApp", {})
    policy = facts.policy or facts.default_policy
    unauth_cfg = facts.setting("ServerApp.allow_unauthenticated_access")
    unauth = _truthy(unauth_cfg[0]) if unauth_cfg else _truthy(
        facts.env.get("JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS")
    )
    password = facts.setting(
        "PasswordIdentityProvider.hashed_password",
        "HardenedIdentityProvider.hashed_password",
        "ServerApp.password",
    )
    terminals = facts.setting("ServerApp.terminals_enabled")
    tornado_settings = server.get("tornado_settings", {})
    values: dict[str, Any] = {
        "ip": facts.ip,
        "has_tls": facts.has_tls,
        "user_tornado_settings": frozenset(tornado_settings)
        if isinstance(tornado_settings, Mapping)
        else frozenset(),
        "allow_origin": str(server.get("allow_origin", "") or ""),
        "allow_origin_pat": str(server.get("allow_origin_pat", "") or ""),
        "allow_credentials": bool(server.get("allow_credentials", False)),
        "disable_check_xsrf": bool(server.get("disable_check_xsrf", False)),
        "allow_unauthenticated_access": unauth,
        "token": facts.token if facts.token is not None else "<generated>",
        "token_generated": facts.token is None,
        "has_password": bool(password and password[0]),
        "terminals_enabled": _truthy(terminals[0]) if terminals else bool(
            policy.values.get("terminals.enabled")
        ),
        "sock": str(server.get("sock", "") or ""),
        "trust_xheaders": bool(server.get("trust_xheaders", False)),
    }
    known = {f.name for f in dataclasses.fields(StartupFacts)}
    return StartupFacts(**{k: v for k, v in values.items() if k in known})


def startup_problems(facts: Facts) -> list[UnsafeStartup]:
    return check_configuration(startup_facts(facts), facts.policy or facts.default_policy)


def _config_location(facts: Facts, setting: str) -> Location:
    for name in (s.strip() for s in re.split(r"[ /()]+", setting) if s.strip()):
        if "." in name and name in facts.config_source:
            return Location(file=facts.config_source[name], key=name)
        if name.startswith(("JUPYTER", "JUPYTERHUB")) and name in facts.env:
            return Location(key=f"environment {name}")
    return Location(key=setting or None)


def _refusals(facts: Facts, rule: str, *, setting_is: str | None = None,
              setting_not: str | None = None) -> Iterator[Hit]:
    for problem in startup_problems(facts):
        if problem.rule_id != rule:
            continue
        if setting_is is not None and problem.setting != setting_is:
            continue
        if setting_not is not None and problem.setting == setting_not:
            continue
        message = str(problem).split("\n")[0].split("refusing to start: ", 1)[-1]
        yield Hit(f"{message} (hardened-server refuses to start: {rule})",
                  _config_location(facts, problem.setting), problem.fix or None)


REFUSED = "hardened-server will refuse to start"


@check(
    "HS-CORS-106",
    ERROR,
    "Jupyter's own CORS settings are configured",
    fix="remove ServerApp.allow_origin/allow_origin_pat/allow_credentials; list exact origins in "
    "cors.allow_origins",
    doc=f"{REFUSED}: stock's allow_origin '*' turns the origin checks off entirely and "
    "allow_origin_pat is a regular expression (prefix matches, CVE-2026-40110).",
    tags=("cors", "config"),
)
def cfg_cors(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_ALLOW_ORIGIN)


@check(
    "HS-CONF-103",
    ERROR,
    "ServerApp.tornado_settings overrides a security setting",
    fix="remove the key from ServerApp.tornado_settings; the policy sets it",
    doc=f"{REFUSED}: tornado_settings is applied after the security defaults and can replace "
    "xsrf_cookies, cookie_secret, headers, allow_origin and more.",
    tags=("config",),
)
def cfg_tornado_settings(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_SETTING_OVERRIDE,
                         setting_not="ServerApp.trust_xheaders")


@check(
    "HS-PROXY-104",
    ERROR,
    "ServerApp.trust_xheaders is set",
    fix="remove it; list the reverse proxies in server.trusted_proxies",
    doc=f"{REFUSED}: tornado would believe X-Forwarded-For/-Proto from any peer (spoofed client "
    "address in the audit trail, spoofed scheme for cookies).",
    tags=("proxies", "config"),
)
def cfg_trust_xheaders(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_SETTING_OVERRIDE, setting_is="ServerApp.trust_xheaders")


@check(
    "HS-XSITE-101",
    ERROR,
    "XSRF protection is disabled",
    fix="remove ServerApp.disable_check_xsrf; API clients use the Authorization header",
    doc=f"{REFUSED}: in jupyter_server disable_check_xsrf also drops the origin check of "
    "non-API POSTs (/api/shutdown, /nbconvert, /login).",
    tags=("xsite", "config"),
)
def cfg_xsrf(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_DISABLE_XSRF)


@check(
    "HS-AUTH-101",
    ERROR,
    "unauthenticated access is switched on",
    fix="unset JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS / ServerApp."
    "allow_unauthenticated_access; list public routes in routes.public",
    doc=f"{REFUSED}: the switch lets undecorated handlers answer anonymous requests.",
    tags=("auth", "config"),
)
def cfg_unauthenticated(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_UNAUTHENTICATED_ACCESS)


@check(
    "HS-TOKEN-101",
    ERROR,
    "the configured token is weak",
    fix="use a random token (python -c \"import secrets; print(secrets.token_hex(32))\") or "
    "unset it to have one generated",
    doc=f"{REFUSED}: a guessable token is a guessable shell. The estimate never credits a token "
    "with more entropy than its alphabet and length allow (tokens.min_entropy_bits).",
    tags=("tokens", "config"),
)
def cfg_weak_token(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_WEAK_TOKEN)


@check(
    "HS-TOKEN-102",
    CRITICAL,
    "no token and no password",
    fix="remove the empty IdentityProvider.token (a strong token is then generated) or set a "
    "password hash",
    doc=f"{REFUSED}: anyone who reaches the port runs code as this user.",
    tags=("tokens", "auth", "config"),
)
def cfg_no_auth(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_NO_AUTH)


@check(
    "HS-TERM-102",
    ERROR,
    "terminals are switched on outside the policy",
    fix="remove ServerApp.terminals_enabled, or set terminals.enabled = true in the policy",
    doc=f"{REFUSED}: the Jupyter config enables terminals the policy forbids.",
    tags=("terminals", "config"),
)
def cfg_terminals(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_TERMINALS)


@check(
    "HS-TLS-103",
    ERROR,
    "bound beyond loopback without TLS or a proxy",
    fix="give --certfile/--keyfile, or a TLS proxy in server.trusted_proxies, or bind to "
    "127.0.0.1",
    doc=f"{REFUSED}: tokens and cookies would cross the network in clear.",
    tags=("tls", "config"),
)
def cfg_insecure_remote(facts: Facts) -> Iterator[Hit]:
    yield from _refusals(facts, Rule.START_INSECURE_REMOTE)


# ---------------------------------------------------------------------------------------------
# Jupyter config files


def _cfg_loc(facts: Facts, name: str) -> Location:
    return Location(file=facts.config_source.get(name), key=name)


@check(
    "HS-CONF-101",
    INFO,
    "a Python config file was not audited",
    fix="review it by hand, or move its settings to jupyter_server_config.json",
    doc="jupyter_server_config.py is code; the audit never executes it, so settings made there "
    "are invisible to these checks (the server still refuses unsafe ones at start-up).",
    tags=("config",),
)
def cfg_python_files(facts: Facts) -> Iterator[Hit]:
    for cf in facts.config_files:
        if cf.kind == "py":
            yield Hit(f"{cf.path} exists", Location(file=cf.path))


@check(
    "HS-CONF-102",
    WARNING,
    "a JSON config file cannot be read",
    fix="fix the JSON syntax (jupyter refuses to start on it)",
    doc="A broken config file is not read by the audit; Jupyter may fail on it at start-up.",
    tags=("config",),
)
def cfg_broken_json(facts: Facts) -> Iterator[Hit]:
    for cf in facts.config_files:
        if cf.error:
            yield Hit(f"{cf.path}: {cf.error}", Location(file=cf.path))


@check(
    "HS-CONF-104",
    WARNING,
    "running as root is allowed",
    fix="remove ServerApp.allow_root and run the server as an unprivileged user",
    doc="Every kernel and terminal then runs as root: a notebook compromise is a host "
    "compromise.",
    tags=("config",),
)
def cfg_allow_root(facts: Facts) -> Iterator[Hit]:
    value = facts.setting("ServerApp.allow_root")
    if value and _truthy(value[0]):
        yield Hit("ServerApp.allow_root = true", _cfg_loc(facts, "ServerApp.allow_root"))


@check(
    "HS-CONF-105",
    WARNING,
    "extra static directories are served publicly",
    fix="remove ServerApp.extra_static_paths (or make sure nothing private is below them)",
    doc="/static/ is public in the shipped routes.public: every file below an extra static path "
    "is served to anyone who can reach the port.",
    tags=("config", "routes"),
)
def cfg_extra_static(facts: Facts) -> Iterator[Hit]:
    value = facts.setting("ServerApp.extra_static_paths")
    if value and value[0]:
        yield Hit(f"ServerApp.extra_static_paths = {value[0]!r}",
                  _cfg_loc(facts, "ServerApp.extra_static_paths"))


@check(
    "HS-CONF-107",
    ERROR,
    "the policy does not load",
    fix="fix the file and key named in the evidence (`hardened-server policy validate FILE`)",
    doc="hardened-server refuses to start with a policy it cannot load; no other policy check "
    "ran.",
    tags=("config", "policy"),
)
def cfg_policy_error(facts: Facts) -> Iterator[Hit]:
    err = facts.policy_error
    if err is not None:
        yield Hit(str(err).replace("\n", "; "),
                  Location(file=err.source or None, key=err.key or None), err.fix or None)


@check(
    "HS-XSITE-102",
    ERROR,
    "template autoescaping is switched off",
    fix="remove autoescape from ServerApp.jinja_environment_options",
    doc="Every value rendered into a page (file names, error messages, the next URL) becomes an "
    "HTML injection.",
    tags=("xsite", "config"),
)
def cfg_autoescape(facts: Facts) -> Iterator[Hit]:
    value = facts.setting("ServerApp.jinja_environment_options")
    if value and isinstance(value[0], Mapping) and "autoescape" in value[0] and not value[0][
        "autoescape"
    ]:
        yield Hit("ServerApp.jinja_environment_options.autoescape = false",
                  _cfg_loc(facts, "ServerApp.jinja_environment_options"))


# ---------------------------------------------------------------------------------------------
# Secrets in config, sessions


@check(
    "HS-TOKEN-104",
    WARNING,
    "the token is written in a config file",
    fix="remove the token from the config file; use JUPYTER_TOKEN_FILE (mode 0600) or let "
    "the server generate one",
    doc="Config files are copied, committed and backed up; a token in one outlives every "
    "rotation.",
    tags=("tokens", "config"),
)
def cfg_token_in_file(facts: Facts) -> Iterator[Hit]:
    for name in ("IdentityProvider.token", "PasswordIdentityProvider.token",
                 "HardenedIdentityProvider.token", "ServerApp.token"):
        value = facts.setting(name)
        if value and isinstance(value[0], str) and value[0]:
            yield Hit(f"{name} is set (value not shown)", _cfg_loc(facts, name))


@check(
    "HS-TOKEN-105",
    WARNING,
    "the token file is readable by other users",
    fix="chmod 600 the file named by JUPYTER_TOKEN_FILE",
    doc="Anyone who can read the token file can log in.",
    tags=("tokens", "permissions"),
)
def token_file_mode(facts: Facts) -> Iterator[Hit]:
    info = facts.token_file
    if info is not None and info.exists and info.group_or_world_readable:
        yield Hit(info.describe_mode(), Location(file=info.path, key="JUPYTER_TOKEN_FILE"))


@check(
    "HS-TOKEN-106",
    WARNING,
    "the password hash uses a legacy algorithm",
    fix="re-hash the password with `hardened-server password` (argon2)",
    doc="sha1 password hashes (jupyter's pre-argon2 format) fall to a GPU in hours.",
    tags=("tokens", "passwords", "config"),
)
def cfg_legacy_password(facts: Facts) -> Iterator[Hit]:
    for name in ("PasswordIdentityProvider.hashed_password",
                 "HardenedIdentityProvider.hashed_password", "ServerApp.password"):
        value = facts.setting(name)
        if value and isinstance(value[0], str) and value[0] and not value[0].startswith(
            "argon2:"
        ):
            algorithm = value[0].split(":", 1)[0] if ":" in value[0] else "unknown"
            yield Hit(f"{name} is a {algorithm!r} hash", _cfg_loc(facts, name))


@check(
    "HS-TOKEN-107",
    WARNING,
    "the login page lets a token holder set a password",
    fix="remove allow_password_change (hardened-server's default is false)",
    doc="Whoever holds the token once (a leaked URL) can persist a password of their own into "
    "the config file.",
    tags=("tokens", "passwords", "config"),
)
def cfg_password_change(facts: Facts) -> Iterator[Hit]:
    for name in ("PasswordIdentityProvider.allow_password_change",
                 "HardenedIdentityProvider.allow_password_change",
                 "ServerApp.allow_password_change"):
        value = facts.setting(name)
        if value and _truthy(value[0]):
            yield Hit(f"{name} = true", _cfg_loc(facts, name))


def _weak_cookie(options: Mapping[str, Any]) -> list[str]:
    bad = []
    lowered = {str(k).lower(): v for k, v in options.items()}
    if str(lowered.get("samesite", "lax")).lower() == "none":
        bad.append("SameSite=None")
    if "httponly" in lowered and not lowered["httponly"]:
        bad.append("HttpOnly off")
    if "secure" in lowered and not lowered["secure"]:
        bad.append("Secure off")
    return bad


@check(
    "HS-SESSION-101",
    WARNING,
    "cookie options weaken the session cookie",
    fix="remove cookie_options (the default is SameSite=Lax, HttpOnly)",
    doc="SameSite=None sends the session cookie on cross-site requests (CSRF, cross-site "
    "websocket hijacking); HttpOnly off hands it to any script injection.",
    tags=("sessions", "config"),
)
def cfg_cookie_options(facts: Facts) -> Iterator[Hit]:
    for name in ("IdentityProvider.cookie_options", "PasswordIdentityProvider.cookie_options",
                 "HardenedIdentityProvider.cookie_options", "ServerApp.cookie_options"):
        value = facts.setting(name)
        if value and isinstance(value[0], Mapping):
            bad = _weak_cookie(value[0])
            if bad:
                yield Hit(f"{name}: " + ", ".join(bad), _cfg_loc(facts, name))


@check(
    "HS-SESSION-102",
    WARNING,
    "the cookie secret is fixed in a config file",
    fix="remove ServerApp.cookie_secret; the server keeps its secret in the runtime directory "
    "(mode 0600)",
    doc="Whoever reads the config file can forge session cookies for as long as the secret "
    "lives, which for a config value is forever.",
    tags=("sessions", "config"),
)
def cfg_cookie_secret(facts: Facts) -> Iterator[Hit]:
    value = facts.setting("ServerApp.cookie_secret")
    if value and value[0]:
        yield Hit("ServerApp.cookie_secret is set (value not shown)",
                  _cfg_loc(facts, "ServerApp.cookie_secret"))


# ---------------------------------------------------------------------------------------------
# Permissions


@check(
    "HS-SESSION-103",
    ERROR,
    "the cookie secret can be read by other users",
    fix="chmod 600 the cookie secret file (jupyter writes it so; something changed it)",
    doc="With the cookie secret anyone can forge a session cookie for any user name.",
    tags=("sessions", "permissions"),
)
def perm_cookie_secret(facts: Facts) -> Iterator[Hit]:
    info = facts.cookie_secret
    if info is not None and info.exists and (
        info.group_or_world_readable or info.group_or_world_writable
    ):
        yield Hit(info.describe_mode(), Location(file=info.path))


@check(
    "HS-CONF-110",
    WARNING,
    "the runtime directory is open to other users",
    fix="chmod 700 the Jupyter runtime directory",
    doc="The runtime directory holds the cookie secret, jpserver-<pid>.json (with the token) "
    "and kernel connection files (with their HMAC keys).",
    tags=("permissions",),
)
def perm_runtime(facts: Facts) -> Iterator[Hit]:
    info = facts.runtime_dir
    if info is not None and info.exists and info.mode & 0o077:
        yield Hit(info.describe_mode(), Location(file=info.path))


def _others_can_write(info: PathInfo | None) -> bool:
    if info is None or not info.exists or not info.group_or_world_writable:
        return False
    return not (info.is_dir and info.sticky and not info.mode & 0o020)


@check(
    "HS-CONF-106",
    ERROR,
    "Jupyter config can be changed by other users",
    fix="chmod go-w the config directory and files",
    doc="A jupyter_server_config.py dropped into a writable config directory runs as you at "
    "the next start (and can switch any protection off).",
    tags=("config", "permissions"),
)
def perm_config(facts: Facts) -> Iterator[Hit]:
    for info in facts.config_dirs:
        if _others_can_write(info):
            yield Hit(info.describe_mode(), Location(file=info.path))
    for cf in facts.config_files:
        if _others_can_write(cf.info):
            assert cf.info is not None
            yield Hit(cf.info.describe_mode(), Location(file=cf.path))


@check(
    "HS-CONF-108",
    ERROR,
    "a policy file can be changed by other users",
    fix="chmod go-w the policy file",
    doc="Whoever can write the policy can loosen every protection at the next start or reload.",
    tags=("policy", "permissions"),
)
def perm_policy(facts: Facts) -> Iterator[Hit]:
    for info in facts.policy_file_infos:
        if _others_can_write(info):
            yield Hit(info.describe_mode(), Location(file=info.path))


# ---------------------------------------------------------------------------------------------
# Served root vs the server's own files


def _inside(root: str, directory: str) -> str | None:
    """``directory`` (which exists) relative to ``root`` when it lies below it, else None (the
    root itself too: these checks look for server directories *under* what is served)."""
    rel = path_below_root(root, directory, resolve_leaf=True)
    return None if rel in (None, ".") else rel


def _reachable(facts: Facts, rel: str) -> bool:
    """Would the policy serve ``rel`` (deny list, then the hidden-file rule)?"""
    policy = facts.policy or facts.default_policy
    pp = PathPolicy.from_paths_policy(policy.paths)
    return pp.denied_by(rel) is None and not pp.is_hidden_path(rel)


@check(
    "HS-PATH-105",
    WARNING,
    "the runtime directory is inside the served root",
    fix="serve a project directory (--root-dir), not your home, or move JUPYTER_RUNTIME_DIR "
    "out of it",
    doc="The runtime directory holds jpserver-<pid>.json with the token and the cookie secret; "
    "under the served root only paths.deny keeps them from the contents API (CVE-2022-29241).",
    tags=("paths",),
)
def runtime_in_root(facts: Facts) -> Iterator[Hit]:
    if facts.runtime_dir is None or not facts.root_dir:
        return
    rel = _inside(facts.root_dir, facts.runtime_dir.path)
    if rel is not None:
        yield Hit(f"{facts.runtime_dir.path} is {rel!r} below the root {facts.root_dir}",
                  Location(file=facts.runtime_dir.path))


@check(
    "HS-PATH-106",
    ERROR,
    "the token and cookie secret files can be read through the contents API",
    fix="add \"**/jpserver-*.json\" and \"**/jupyter_cookie_secret\" back to paths.deny",
    doc="The runtime directory is inside the served root and neither paths.deny nor the "
    "hidden-file rule covers its files: a user or a cross-site read gets the token.",
    tags=("paths", "sessions"),
)
def runtime_files_reachable(facts: Facts) -> Iterator[Hit]:
    if facts.runtime_dir is None or not facts.root_dir:
        return
    rel = _inside(facts.root_dir, facts.runtime_dir.path)
    if rel is None:
        return
    for name in ("jpserver-12345.json", "jupyter_cookie_secret"):
        if _reachable(facts, f"{rel}/{name}"):
            yield Hit(f"{rel}/{name} would be served", where(facts, "paths.deny"))


@check(
    "HS-PATH-107",
    WARNING,
    "the Jupyter config directory is writable through the contents API",
    fix="keep \".jupyter/**\" in paths.deny, or serve a directory that does not contain it",
    doc="A jupyter_server_config.py written through the API runs at the next start: one "
    "cross-site write becomes persistent code execution.",
    tags=("paths", "config"),
)
def config_dir_reachable(facts: Facts) -> Iterator[Hit]:
    if not facts.root_dir:
        return
    for info in facts.config_dirs:
        rel = _inside(facts.root_dir, info.path)
        if rel is not None and _reachable(facts, f"{rel}/jupyter_server_config.py"):
            yield Hit(f"{rel}/jupyter_server_config.py would be writable below the root",
                      where(facts, "paths.deny"))


# ---------------------------------------------------------------------------------------------
# JupyterHub


@check(
    "HS-HUB-101",
    WARNING,
    "a JupyterHub API token is in a standalone server's environment",
    fix="run `hardened-server singleuser` under JupyterHub, or unset JUPYTERHUB_API_TOKEN",
    doc="Without the rest of the JupyterHub environment the server is not a single-user "
    "server, yet every kernel and terminal inherits the hub credential and can call the hub "
    "API with it.",
    tags=("jupyterhub", "environment"),
)
def hub_stray_token(facts: Facts) -> Iterator[Hit]:
    env = facts.env
    if env.get("JUPYTERHUB_API_TOKEN") and not (
        env.get("JUPYTERHUB_API_URL") and env.get("JUPYTERHUB_SERVICE_PREFIX")
    ):
        missing = [v for v in ("JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_PREFIX") if not env.get(v)]
        yield Hit("JUPYTERHUB_API_TOKEN is set; missing " + ", ".join(missing),
                  Location(key="environment JUPYTERHUB_API_TOKEN"))


@check(
    "HS-HUB-102",
    WARNING,
    "the hub API is reached over plain HTTP on the network",
    fix="use an https:// JUPYTERHUB_API_URL (or the hub on loopback)",
    doc="The hub token and OAuth codes travel to JUPYTERHUB_API_URL on every request.",
    tags=("jupyterhub", "environment", "tls"),
)
def hub_cleartext(facts: Facts) -> Iterator[Hit]:
    url = facts.env.get("JUPYTERHUB_API_URL", "")
    if url.startswith("http://"):
        host = urlsplit(url).hostname or ""
        if not (host == "localhost" or is_loopback_bind(host)):
            yield Hit(f"JUPYTERHUB_API_URL = {url}", Location(key="environment JUPYTERHUB_API_URL"))


# ---------------------------------------------------------------------------------------------
# Extensions


@check(
    "HS-EXT-101",
    INFO,
    "server extensions are enabled",
    fix="disable the ones you do not use (`jupyter server extension disable NAME`)",
    doc="Each extension adds routes (which the policy wraps) and runs code in the server; the "
    "list is the attack surface to review (`audit --routes`, `audit --extensions`).",
    tags=("extensions",),
)
def ext_enabled(facts: Facts) -> Iterator[Hit]:
    enabled = [e for e in facts.extensions if e.enabled]
    if enabled:
        yield Hit("enabled: " + ", ".join(e.name for e in enabled),
                  Location(file=enabled[0].source or None, key="ServerApp.jpserver_extensions"))


@check(
    "HS-EXT-102",
    WARNING,
    "an enabled server extension is not installed",
    fix="`jupyter server extension disable NAME`, or install it",
    doc="A missing extension is a start-up error in Jupyter, and a name someone could later "
    "satisfy with a package of their own (dependency confusion).",
    tags=("extensions",),
)
def ext_missing(facts: Facts) -> Iterator[Hit]:
    for e in facts.extensions:
        if e.enabled and e.module_path is None:
            yield Hit(f"{e.name} is enabled in {e.source or 'the config'} but cannot be found",
                      Location(file=e.source or None, key="ServerApp.jpserver_extensions"))


@check(
    "HS-EXT-301",
    INFO,
    "bandit: a medium-severity pattern in extension code",
    fix="review the line; report it to the extension's authors if it is reachable from a "
    "request",
    doc="bandit's medium-severity findings (subprocess with a shell, weak hashes, "
    "hard-coded temporary paths ...) in the code of an enabled extension.",
    tags=("extensions", "bandit"),
    kind=KIND_EXTENSIONS,
)
def ext_bandit_medium(facts: Facts) -> Iterator[Hit]:
    for i in facts.bandit or ():
        if i.severity.upper() == "MEDIUM":
            yield Hit(f"{i.extension}: {i.test_id} {i.test_name}: {i.text} "
                      f"(confidence {i.confidence.lower()})",
                      Location(file=i.file, line=i.line or None))


@check(
    "HS-EXT-302",
    WARNING,
    "bandit: a high-severity pattern in extension code",
    fix="review the line; report it to the extension's authors if it is reachable from a "
    "request",
    doc="bandit's high-severity findings (shell=True with input, eval, exec, disabled TLS "
    "verification, unsafe deserialisation ...) in the code of an enabled extension.",
    tags=("extensions", "bandit"),
    kind=KIND_EXTENSIONS,
)
def ext_bandit_high(facts: Facts) -> Iterator[Hit]:
    for i in facts.bandit or ():
        if i.severity.upper() == "HIGH":
            yield Hit(f"{i.extension}: {i.test_id} {i.test_name}: {i.text} "
                      f"(confidence {i.confidence.lower()})",
                      Location(file=i.file, line=i.line or None))


# ---------------------------------------------------------------------------------------------
# Routes (--routes)


@check(
    "HS-ROUTE-301",
    ERROR,
    "a route has no authentication decorator",
    fix="decorate the handler method (@tornado.web.authenticated), or review it and add the "
    "pattern to routes.accept_undecorated",
    doc=f"{REFUSED}: an extension route whose methods carry no authentication decorator and "
    "which the policy does not list as public or reviewed.",
    tags=("routes", "auth"),
    kind=KIND_ROUTES,
)
def route_undecorated(facts: Facts) -> Iterator[Hit]:
    for rule_id, message, fix in facts.route_problems:
        if rule_id == Rule.START_UNAUTHENTICATED_ROUTE:
            text = message.split("\n")[0].split("refusing to start: ", 1)[-1]
            yield Hit(text, Location(key="routes.accept_undecorated"), fix or None)


_ASSET_CLASSES = ("static",)


@check(
    "HS-ROUTE-302",
    WARNING,
    "a public route serves more than login and assets",
    fix="remove the pattern from routes.public",
    doc="A public API, files, nbconvert or page route (other than /login) answers anonymous "
    "requests with data or functionality.",
    tags=("routes", "auth"),
    kind=KIND_ROUTES,
)
def route_public_non_asset(facts: Facts) -> Iterator[Hit]:
    for r in facts.routes or ():
        if r.public and r.route_class not in _ASSET_CLASSES and r.pattern not in ("/login",):
            yield Hit(f"{r.pattern} ({r.handler}, class {r.route_class}) is public",
                      Location(key="routes.public"))


@check(
    "HS-SCOPE-301",
    WARNING,
    "a route is not in the route map",
    fix="map the route in scopes.routes, e.g. scopes.routes = { \"/pattern\" = { GET = "
    "\"contents:read\" } }, or disable the extension",
    doc="hardened-server knows which scopes the core, JupyterLab, Notebook 7, jupyter_lsp and "
    "terminal routes need, not what an extension's routes do: every request to an unmapped "
    f"route is refused (403, {Rule.SCOPE_UNMAPPED}), so the extension does not work until it "
    "is mapped.",
    tags=("routes", "scopes"),
    kind=KIND_ROUTES,
)
def route_unmapped(facts: Facts) -> Iterator[Hit]:
    if facts.policy is None:
        return
    route_map = RouteMap(facts.policy.scopes.routes)
    for r in facts.routes or ():
        # the inventory's own answer counts the handler's declaration (hardened-server's own
        # handlers say what they need); records built without it ask the map
        unmapped = (
            r.scopes.get("*") == "unmapped"
            if r.scopes
            else not route_map.lookup(r.pattern, r.handler).mapped
        )
        if not r.public and unmapped:
            yield Hit(f"{r.pattern} ({r.handler}) is refused for everyone",
                      Location(key="scopes.routes"))


@check(
    "HS-ROUTE-304",
    ERROR,
    "the application cannot be initialised",
    fix="fix the configuration named in the evidence",
    doc="The route inventory comes from initialising the configured application; it refused "
    "(hardened-server would not start either).",
    tags=("routes",),
    kind=KIND_ROUTES,
)
def route_init_failed(facts: Facts) -> Iterator[Hit]:
    if facts.routes_error:
        yield Hit(facts.routes_error.replace("\n", "; ")[:2000])


# ---------------------------------------------------------------------------------------------
# The audit trail's files


def _audit_files(facts: Facts) -> list[PathInfo]:
    """The audit file(s) the policy names: ``audit.file`` (and its rotated files), or the
    default ``hardened-server-audit-<port>.jsonl`` files in the runtime directory."""
    policy = facts.policy
    if policy is None or not policy.audit.enabled:
        return []
    if policy.audit.file:
        base = os.path.expanduser(policy.audit.file)
        names = [base, *sorted(glob.glob(glob.escape(base) + ".[0-9]*"))]
    elif facts.runtime_dir is not None:
        pattern = os.path.join(glob.escape(facts.runtime_dir.path), "hardened-server-audit-*")
        names = sorted(glob.glob(pattern)) or [
            os.path.join(facts.runtime_dir.path, "hardened-server-audit-<port>.jsonl")
        ]
    else:
        return []
    return [path_info(n) for n in names]


@check(
    "HS-AUDIT-102",
    ERROR,
    "the audit file is inside the served root",
    fix=f"{SERVER_FILE_RULES[ServerFile.AUDIT_FILE].fix} (hardened-server refuses to start: "
    f"{Rule.AUDIT_FILE_IN_ROOT})",
    doc="Inside the root and under no paths.deny glob, the contents API could read, rewrite "
    "or delete the evidence.",
    tags=("audit", "paths"),
)
def audit_file_in_root(facts: Facts) -> Iterator[Hit]:
    if not facts.root_dir:
        return
    policy = facts.policy or facts.default_policy
    for info in _audit_files(facts)[:1]:
        # the same test as the start-up refusal (HS-AUDIT-001)
        if served_file_problem(ServerFile.AUDIT_FILE, info.path, facts.root_dir, policy.paths):
            key = "audit.file" if facts.policy and facts.policy.audit.file else None
            yield Hit(
                f"{info.path} is below the root {facts.root_dir}",
                where(facts, key) if key else Location(file=info.path),
            )


@check(
    "HS-AUDIT-103",
    WARNING,
    "the audit file can be read or written by other users",
    fix="chmod 600 the audit files (the server creates them 0600 and tightens them at start)",
    doc="Records name users, client addresses and refused paths; another local user must not "
    "read them, let alone append forged lines.",
    tags=("audit",),
)
def audit_file_open(facts: Facts) -> Iterator[Hit]:
    for info in _audit_files(facts):
        if info.exists and (info.group_or_world_readable or info.group_or_world_writable):
            yield Hit(info.describe_mode(), Location(file=info.path))


@check(
    "HS-AUDIT-106",
    ERROR,
    "the audit signing key is missing or readable by others",
    fix="point audit.signing_key at an Ed25519 private key (PEM) that only the server's user "
    "can read (chmod 600)",
    doc=f"A missing key stops the start-up ({Rule.AUDIT_OPEN_FAILED}); a key others can read "
    "lets them sign a rewritten trail.",
    tags=("audit",),
)
def audit_key(facts: Facts) -> Iterator[Hit]:
    policy = facts.policy
    if policy is None or not policy.audit.enabled or not policy.audit.signing_key:
        return
    info = path_info(os.path.expanduser(policy.audit.signing_key))
    if not info.exists:
        yield Hit(f"{info.path} does not exist", where(facts, "audit.signing_key"))
    elif info.group_or_world_readable or info.group_or_world_writable:
        yield Hit(info.describe_mode(), Location(file=info.path))
