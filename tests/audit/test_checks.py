"""Every static, route and extension check of ``hardened-server audit``: one case where it fires
and one where it stays quiet, from the registry (a meta-test keeps the tables complete).

The checks are pure functions of :class:`~hardened_server.audit.facts.Facts`; each case
builds real facts (policy files written to disk and loaded by the loader, Jupyter config files read
by the audit's own reader, real file modes), then runs only the check's kind.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hardened_server.audit.checks import (
    KIND_LIVE,
    REGISTRY,
    Finding,
    Severity,
    registry,
    run_checks,
)
from hardened_server.audit.facts import (
    BanditIssue,
    ExtensionInfo,
    Facts,
    RouteRecord,
    configured_token,
    facts_for,
    path_info,
    read_config_files,
)

# The shipped default with its documented info finding turned off: nothing fires on it.
CLEAN_POLICY = """
[tokens]
url_tokens = "never"
"""
SMALL_LIMITS = {"ServerApp": {"max_body_size": 1 << 24, "max_buffer_size": 1 << 24}}


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in a.items()}
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def clean(
    tmp: Path,
    policy: str | None = None,
    *,
    config: dict[str, Any] | None = None,
    limits: bool = True,
    base_policy: bool = True,
    env: dict[str, str] | None = None,
    **changes: Any,
) -> Facts:
    """Facts of a clean deployment (quiet for every check), changed as the case says."""
    root = tmp / "root"
    root.mkdir(exist_ok=True)
    runtime = changes.pop("runtime", tmp / "runtime")
    runtime.mkdir(parents=True, exist_ok=True)
    os.chmod(runtime, 0o700)
    secret = runtime / "jupyter_cookie_secret"
    secret.write_bytes(b"\0" * 32)
    os.chmod(secret, 0o600)
    cfg_dir = tmp / "cfg"
    cfg_dir.mkdir(exist_ok=True)
    data = _deep_merge(SMALL_LIMITS if limits else {}, config or {})
    if data:
        (cfg_dir / "jupyter_server_config.json").write_text(json.dumps(data))
    files, merged, sources = read_config_files([str(cfg_dir)])
    env = dict(env or {})
    audit = ""
    if base_policy:  # a clean deployment signs its audit trail with a private key
        key = _signing_key(tmp, None)
        # ... and keeps a copy out of the server user's reach (stdout to a collector)
        audit = f'[audit]\nsigning_key = "{key}"\nstdout = true\n'
    texts = ([CLEAN_POLICY + audit] if base_policy else []) + ([policy] if policy else [])
    base: dict[str, Any] = {
        "env": env,
        "config_files": files,
        "config": merged,
        "config_source": sources,
        "runtime_dir": path_info(runtime),
        "cookie_secret": path_info(secret),
        "token": configured_token(env, merged),
        "root_dir": str(root),
        "ip": "127.0.0.1",
    }
    base.update(changes)
    return facts_for(texts, tmpdir=tmp, **base)


def _signing_key(tmp: Path, mode: int | None = 0o600) -> Path:
    """An Ed25519 private key file; ``mode=None`` keeps the mode of an existing one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp / "audit-key.pem"
    if not path.exists():
        path.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(path, 0o600)
    if mode is not None:
        os.chmod(path, mode)
    return path


def _audit_file(tmp: Path, where: str, mode: int = 0o600) -> Facts:
    """An audit file written by the server's own writer, in ``root`` or next to it."""
    from hardened_server.trail.chain import ChainedFileSink

    directory = tmp / where
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "audit.jsonl"
    ChainedFileSink(path, fsync="never").close()
    _chmod(path, mode)
    return clean(tmp, f'[audit]\nfile = "{path}"')


def _chmod(path: Path, mode: int) -> Path:
    os.chmod(path, mode)
    return path


def _token_file(tmp: Path, mode: int) -> Facts:
    f = tmp / "token"
    f.write_text(secrets.token_hex(32))
    _chmod(f, mode)
    return clean(tmp, env={"JUPYTER_TOKEN_FILE": str(f)}, token_file=path_info(f))


def _store(tmp: Path, *, mode: int = 0o600, scopes: tuple[str, ...] = ("contents:read",),
           lifetime: float | None = 30 * 86400, inside_root: bool = False) -> Facts:
    """A real token store written by the server's own code, with one token."""
    from hardened_server.enforcement.identity.tokenstore import TokenStore

    (tmp / "root").mkdir(exist_ok=True)
    path = (tmp / "root" if inside_root else tmp / "runtime") / "tokens.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    TokenStore(path).create("ci-bot", scopes, lifetime)
    _chmod(path, mode)
    return clean(tmp, token_store=path_info(path))


def _py_config(tmp: Path) -> Facts:
    d = tmp / "pycfg"
    d.mkdir()
    (d / "jupyter_server_config.py").write_text("c.ServerApp.ip = '0.0.0.0'\n")
    files, _merged, _sources = read_config_files([str(d)])
    return clean(tmp, config_files=files)


def _broken_json(tmp: Path) -> Facts:
    d = tmp / "badcfg"
    d.mkdir()
    (d / "jupyter_server_config.json").write_text("{not json")
    files, _merged, _sources = read_config_files([str(d)])
    return clean(tmp, config_files=files)


def _config_dir(tmp: Path, mode: int) -> Facts:
    d = tmp / "confdir"
    d.mkdir()
    _chmod(d, mode)
    return clean(tmp, config_dirs=(path_info(d),))


def _policy_mode(tmp: Path, mode: int) -> Facts:
    facts = clean(tmp, "[paths]\nallow_hidden = false\n")
    for p in facts.policy_files:
        _chmod(Path(p), mode)
    return clean(tmp, "[paths]\nallow_hidden = false\n",
                 policy_file_infos=tuple(path_info(p) for p in facts.policy_files))


def _runtime_in_root(tmp: Path, rel: str, policy: str | None = None) -> Facts:
    return clean(tmp, policy, runtime=tmp / "root" / rel)


def _config_dir_in_root(tmp: Path, rel: str, policy: str | None = None) -> Facts:
    d = tmp / "root" / rel
    d.mkdir(parents=True)
    return clean(tmp, policy, config_dirs=(path_info(d),))


def _route(pattern: str, route_class: str, public: bool) -> RouteRecord:
    return RouteRecord(pattern, "x.Handler", "HardenedJupyterMixin", route_class, public, (),
                       ("GET",), (), {"GET": ("authenticated",)}, {"GET": "n/a"}, "")


def _bandit(severity: str) -> BanditIssue:
    return BanditIssue("ext", "B602", "subprocess_popen_with_shell_equals_true", severity,
                       "HIGH", "subprocess call with shell=True", "/x/ext/handlers.py", 12)


RESTRICTIVE_DENY = '[paths]\ndeny = [".ssh/**"]\n'
Builder = Callable[[Path], Facts]

# id -> facts on which the check fires
FIRE: dict[str, Builder] = {
    "HS-NBC-101": lambda t: clean(t, "[nbconvert]\nsanitize_html = false"),
    "HS-SESSION-104": lambda t: clean(t, "[sessions]\nidle_minutes = 1440"),
    "HS-SESSION-105": lambda t: clean(t, "[sessions]\nlifetime_minutes = 10080"),
    "HS-AUDIT-101": lambda t: clean(t, "[audit]\nenabled = false"),
    "HS-ACCT-101": lambda t: clean(t, "[audit]\nactivity = false"),
    "HS-ACCT-102": lambda t: clean(t, '[audit]\nterminal_input = "full"'),
    "HS-AUDIT-102": lambda t: _audit_file(t, "root/.audit"),
    "HS-AUDIT-103": lambda t: _audit_file(t, "log", mode=0o644),
    "HS-AUDIT-104": lambda t: clean(t, '[audit]\nfsync = "never"'),
    "HS-AUDIT-105": lambda t: clean(t, '[audit]\nsigning_key = ""'),
    "HS-AUDIT-107": lambda t: clean(t, '[audit]\nrequire = []'),
    "HS-AUDIT-108": lambda t: clean(t, '[audit]\nstdout = false'),
    "HS-AUDIT-106": lambda t: (_signing_key(t, 0o644), clean(t))[1],
    "HS-METRICS-102": lambda t: clean(t, '[scopes]\nroutes = { "/metrics" = { GET = [] } }'),
    "HS-SCOPE-101": lambda t: clean(t, '[scopes]\nroutes = { "/hello" = { GET = [] } }'),
    "HS-SCOPE-102": lambda t: clean(t, "[scopes]\nclient_event_schemas = "
                                       "[\"https://events.jupyter.org/jupyter_server/"
                                       "contents_service/v1\"]"),
    "HS-SCOPE-103": lambda t: clean(t, "[tokens]\nowner_scopes = [\"contents:read\"]"),
    "HS-SCOPE-106": lambda t: clean(t, '[identity]\nsite_provider = "owner"'),
    "HS-TOKEN-108": lambda t: _store(t, mode=0o644),
    "HS-TOKEN-109": lambda t: _store(t, inside_root=True),
    "HS-TOKEN-110": lambda t: _store(t, lifetime=None),
    "HS-TOKEN-111": lambda t: _store(t, scopes=("admin",)),
    "HS-LOGIN-101": lambda t: clean(t, "[login]\nfree_attempts = 50\nmax_delay_seconds = 5"),
    "HS-CSP-101": lambda t: clean(t, "[csp.page]\nscript-src = [\"'self'\", \"'unsafe-inline'\"]"),
    "HS-CSP-102": lambda t: clean(t, "[csp.static]\nscript-src = [\"'self'\", \"'unsafe-eval'\"]"),
    "HS-CSP-103": lambda t: clean(t, "[routes]\nunsafe_eval = [\"/tree(.*)\"]"),
    "HS-CSP-104": lambda t: clean(t, "[csp.error]\ndefault-src = false"),
    "HS-CSP-105": lambda t: clean(t, "[csp.api]\ndefault-src = false"),
    "HS-CSP-106": lambda t: clean(t, "[csp.error]\nbase-uri = false"),
    "HS-CSP-107": lambda t: clean(t, "[csp.api]\nframe-ancestors = false"),
    "HS-CSP-108": lambda t: clean(t, "[csp.page]\nframe-ancestors = [\"https://portal.example\"]"),
    "HS-CSP-109": lambda t: clean(t, "[csp.page]\nscript-src = [\"'self'\", \"https:\"]"),
    "HS-CSP-110": lambda t: clean(t, "[csp.page]\nconnect-src = [\"*\"]"),
    "HS-CSP-111": lambda t: clean(t, "[csp.files]\nsandbox = false"),
    "HS-CSP-112": lambda t: clean(t, "[csp.files]\nsandbox = [\"allow-scripts\", "
                                     "\"allow-same-origin\"]"),
    "HS-CSP-113": lambda t: clean(t, "[csp.nbconvert]\nsandbox = [\"allow-top-navigation\"]"),
    "HS-CSP-114": lambda t: clean(t, "[headers]\ncsp_report = false"),
    "HS-CSP-115": lambda t: clean(t, "[csp.page]\nform-action = false"),
    "HS-CSP-116": lambda t: clean(t, "[csp.page]\nimg-src = [\"'self'\", \"http://cdn.example\"]"),
    "HS-CSP-117": lambda t: clean(t, "[routes]\nscript_nonce = [\"/voila/render/(.*)\"]"),
    "HS-CORS-101": lambda t: clean(t, "[cors]\nallow_origins = [\"https://portal.example\"]"),
    "HS-CORS-102": lambda t: clean(t, "[cors]\nallow_origins = [\"https://portal.example\"]\n"
                                      "allow_credentials = true"),
    "HS-CORS-103": lambda t: clean(t, "[cors]\nallow_origins = [\"http://portal.example\"]"),
    "HS-CORS-104": lambda t: clean(t, "[cors]\nallow_origins = [\"null\"]"),
    "HS-CORS-105": lambda t: clean(t, "[cors]\nallow_credentials = true"),
    "HS-CORS-106": lambda t: clean(t, config={"ServerApp": {"allow_origin": "*"}}),
    "HS-HOST-101": lambda t: clean(t, "[server]\ntrusted_proxies = [\"10.1.2.3/32\"]",
                                   ip="0.0.0.0"),
    "HS-PROXY-101": lambda t: clean(t, "[server]\ntrusted_proxies = [\"0.0.0.0/0\"]"),
    "HS-PROXY-102": lambda t: clean(t, "[server]\ntrusted_proxies = [\"10.0.0.0/8\"]"),
    "HS-PROXY-103": lambda t: clean(t, "[server]\ntrusted_proxies = [\"8.8.8.0/24\"]"),
    "HS-PROXY-104": lambda t: clean(t, config={"ServerApp": {"trust_xheaders": True}}),
    "HS-TLS-101": lambda t: clean(t, "[server]\nallow_insecure_remote = true"),
    "HS-TLS-102": lambda t: clean(t, "[server]\nallow_insecure_remote = true", ip="0.0.0.0"),
    "HS-TLS-103": lambda t: clean(t, ip="0.0.0.0"),
    "HS-TLS-104": lambda t: clean(t, "[headers]\nhsts_max_age = 0"),
    "HS-TLS-105": lambda t: clean(t, "[headers]\nhsts_max_age = 86400"),
    "HS-TLS-106": lambda t: clean(t, "[headers]\nhsts_include_subdomains = false"),
    "HS-HDR-101": lambda t: clean(t, "[headers]\ncross_origin_resource_policy = \"cross-origin\""),
    "HS-HDR-102": lambda t: clean(t, "[headers]\ncross_origin_opener_policy = \"unsafe-none\""),
    "HS-HDR-103": lambda t: clean(t, "[headers.cache_control]\napi = \"\""),
    "HS-HDR-104": lambda t: clean(t, "[headers]\npermissions_policy = \"\""),
    "HS-HDR-105": lambda t: clean(t, "[headers]\nreferrer_policy = "
                                     "\"strict-origin-when-cross-origin\""),
    "HS-PATH-101": lambda t: clean(t, "[paths]\nallow_hidden = true"),
    "HS-PATH-102": lambda t: clean(t, RESTRICTIVE_DENY),
    "HS-PATH-103": lambda t: clean(t, "[paths]\nallow = [\".jupyter/lab/**\"]"),
    "HS-PATH-104": lambda t: clean(t, "[paths]\nallow = [\"**\"]"),
    "HS-PATH-105": lambda t: _runtime_in_root(t, ".local/share/jupyter/runtime"),
    "HS-PATH-106": lambda t: _runtime_in_root(t, "runtime", RESTRICTIVE_DENY),
    # paths.protected covers jupyter_server_config.py anywhere: only a policy that drops it
    # (HS-PATH-108) leaves a config directory below the root writable
    "HS-PATH-107": lambda t: _config_dir_in_root(t, "jupyter-config", "[paths]\nprotected = []"),
    "HS-PATH-108": lambda t: clean(t, "[paths]\nprotected = [\"**/.ssh\"]"),
    "HS-TOKEN-101": lambda t: clean(t, env={"JUPYTER_TOKEN": "huggingface"}),
    "HS-TOKEN-102": lambda t: clean(t, config={"IdentityProvider": {"token": ""}}),
    "HS-TOKEN-103": lambda t: clean(t, base_policy=False),
    "HS-TOKEN-112": lambda t: clean(t, "[tokens]\nwebsocket_url_tokens = \"stored-scoped\""),
    "HS-TOKEN-104": lambda t: clean(t, config={"IdentityProvider": {
        "token": secrets.token_hex(32)}}),
    "HS-TOKEN-105": lambda t: _token_file(t, 0o644),
    "HS-TOKEN-106": lambda t: clean(t, config={"PasswordIdentityProvider": {
        "hashed_password": "sha1:0123abcd:0123456789abcdef0123456789abcdef01234567"}}),
    "HS-TOKEN-107": lambda t: clean(t, config={"PasswordIdentityProvider": {
        "allow_password_change": True}}),
    "HS-SESSION-101": lambda t: clean(t, config={"IdentityProvider": {
        "cookie_options": {"samesite": "None"}}}),
    "HS-SESSION-102": lambda t: clean(t, config={"ServerApp": {"cookie_secret": "abc"}}),
    "HS-SESSION-103": lambda t: clean(
        t, cookie_secret=path_info(_chmod(_secret(t), 0o644))),
    "HS-TERM-101": lambda t: clean(t, "[terminals]\nenabled = true"),
    "HS-TERM-102": lambda t: clean(t, config={"ServerApp": {"terminals_enabled": True}}),
    "HS-XSITE-101": lambda t: clean(t, config={"ServerApp": {"disable_check_xsrf": True}}),
    "HS-XSITE-102": lambda t: clean(t, config={"ServerApp": {
        "jinja_environment_options": {"autoescape": False}}}),
    "HS-AUTH-101": lambda t: clean(t, env={"JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS": "1"}),
    "HS-ROUTE-101": lambda t: clean(t, "[routes]\npublic = [\"/login\", \"/static/(.*)\", "
                                       "\"/api/status\"]"),
    "HS-ROUTE-102": lambda t: clean(t, "[routes]\naccept_undecorated = [\"/hello\"]"),
    "HS-METRICS-101": lambda t: clean(t, "[routes]\npublic = [\"/login\", \"/metrics\"]"),
    "HS-SCOPE-104": lambda t: clean(t, '[scopes]\nroutes = { "/hello" = { GET = "admin" } }'),
    "HS-SCOPE-105": lambda t: clean(
        t, '[scopes]\nclient_event_schemas = ["https://e.example/x/v1"]'
    ),
    "HS-SCOPE-301": lambda t: clean(t, routes=(_route("/hello", "api", False),)),
    "HS-CONF-101": _py_config,
    "HS-CONF-102": _broken_json,
    "HS-CONF-103": lambda t: clean(t, config={"ServerApp": {
        "tornado_settings": {"xsrf_cookies": False}}}),
    "HS-CONF-104": lambda t: clean(t, config={"ServerApp": {"allow_root": True}}),
    "HS-CONF-105": lambda t: clean(t, config={"ServerApp": {"extra_static_paths": ["/srv/x"]}}),
    "HS-CONF-106": lambda t: _config_dir(t, 0o777),
    "HS-CONF-107": lambda t: clean(t, "[cors]\nallow_origin = [\"https://typo.example\"]"),
    "HS-CONF-108": lambda t: _policy_mode(t, 0o666),
    "HS-CONF-110": lambda t: clean(t, runtime_dir=path_info(_chmod(_runtime(t), 0o755))),
    "HS-LIMIT-101": lambda t: clean(t, "[limits]\nmax_body_bytes = 536870912"),
    "HS-LIMIT-102": lambda t: clean(t, "[limits]\nunauthenticated_requests_per_minute = 6000"),
    "HS-LIMIT-103": lambda t: clean(t, "[limits]\nwebsocket_max_message_bytes = 1073741824"),
    "HS-LIMIT-104": lambda t: clean(t, "[limits]\nheader_timeout_seconds = 120"),
    "HS-CORS-107": lambda t: clean(t, "[cors]\nallow_origin_patterns = "
                                      "[\"https://[a-z0-9-]+\\\\.portal\\\\.example\"]"),
    "HS-PROXY-105": lambda t: clean(t, "[server]\ntrusted_proxies = [\"10.1.2.3/32\"]\n"
                                       "client_header = \"x-real-ip\""),
    "HS-HUB-101": lambda t: clean(t, env={"JUPYTERHUB_API_TOKEN": "x" * 32}),
    "HS-HUB-102": lambda t: clean(t, env={"JUPYTERHUB_API_URL": "http://hub.example:8081/hub/api"}),
    "HS-EXT-101": lambda t: clean(t, extensions=(
        ExtensionInfo("jupyterlab", True, "/etc/jupyter/x.json", "/site/jupyterlab"),)),
    "HS-EXT-102": lambda t: clean(t, extensions=(
        ExtensionInfo("no_such_extension", True, "/etc/jupyter/x.json", None),)),
    "HS-EXT-301": lambda t: clean(t, bandit=(_bandit("MEDIUM"),)),
    "HS-EXT-302": lambda t: clean(t, bandit=(_bandit("HIGH"),)),
    "HS-ROUTE-301": lambda t: clean(t, route_problems=((
        "HS-START-001",
        "[HS-START-001] refusing to start: GET of ext.Handler on route '/x' has no "
        "authentication decorator",
        "decorate it",
    ),)),
    "HS-ROUTE-302": lambda t: clean(t, routes=(_route("/api/status", "api", True),)),
    "HS-ROUTE-304": lambda t: clean(t, routes_error="the application could not be initialised"),
}


def _runtime(t: Path) -> Path:
    p = t / "runtime"
    p.mkdir(exist_ok=True)
    return p


def _secret(t: Path) -> Path:
    p = _runtime(t) / "jupyter_cookie_secret"
    p.write_bytes(b"\0" * 32)
    return p


# id -> facts on which the check stays quiet, where the clean deployment is not the telling case
QUIET: dict[str, Builder] = {
    "HS-SESSION-104": lambda t: clean(t, "[sessions]\nidle_minutes = 30"),
    "HS-SESSION-105": lambda t: clean(t, "[sessions]\nlifetime_minutes = 480"),
    "HS-AUDIT-101": lambda t: clean(t, "[audit]\nenabled = true"),
    "HS-ACCT-101": lambda t: clean(t, "[audit]\nenabled = false\nactivity = false"),
    "HS-ACCT-102": lambda t: clean(t, '[audit]\ncode = "off"\nterminal_input = "hmac"'),
    "HS-AUDIT-102": lambda t: _audit_file(t, "log"),
    "HS-AUDIT-103": lambda t: _audit_file(t, "log", mode=0o600),
    "HS-AUDIT-104": lambda t: clean(t, '[audit]\nfsync = "always"'),
    "HS-AUDIT-107": lambda t: clean(t, '[audit]\nrequire = ["file", "stdout"]'),
    "HS-AUDIT-108": lambda t: clean(t, '[audit]\nstdout = false\nsyslog = "127.0.0.1:6514"'),
    "HS-METRICS-102": lambda t: clean(
        t, '[scopes]\nroutes = { "/metrics" = { GET = "metrics:read" } }'
    ),
    "HS-SCOPE-101": lambda t: clean(t, '[scopes]\nroutes = { "/hello" = { GET = '
                                       '"contents:read" } }'),
    "HS-SCOPE-102": lambda t: clean(t, "[scopes]\nclient_event_schemas = "
                                       "[\"https://events.example.org/my-extension/click/v1\"]"),
    "HS-SCOPE-106": lambda t: clean(
        t, '[identity]\nsite_provider = "mapped"\nusers = { alice = ["contents:read"] }'
    ),
    "HS-TOKEN-108": lambda t: _store(t, mode=0o600),
    "HS-TOKEN-109": lambda t: _store(t),
    "HS-TOKEN-110": lambda t: _store(t, lifetime=30 * 86400),
    "HS-TOKEN-111": lambda t: _store(t, scopes=("contents:read", "kernels:execute")),
    "HS-LOGIN-101": lambda t: clean(t, "[login]\nfree_attempts = 3\nmax_delay_seconds = 120"),
    "HS-SCOPE-301": lambda t: clean(
        t,
        '[scopes]\nroutes = { "/hello" = { GET = "frontend:read" } }',
        routes=(
            _route("/hello", "api", False),
            _route("/login", "page", True),
            RouteRecord("/api/status", "jupyter_server.services.api.handlers.APIStatusHandler",
                        "HardenedJupyterMixin", "api", False, (), ("GET",), (),
                        {"GET": ("authenticated",)}, {"GET": "api:read"}, ""),
        ),
    ),
    "HS-CSP-102": lambda t: clean(t, "[csp.page]\nscript-src = [\"'self'\", \"'unsafe-eval'\"]"),
    "HS-CSP-108": lambda t: clean(t, "[csp.files]\nframe-ancestors = [\"'self'\"]"),
    "HS-CSP-112": lambda t: clean(t, "[csp.files]\nsandbox = [\"allow-scripts\"]"),
    "HS-CORS-102": lambda t: clean(t, "[cors]\nallow_origins = [\"https://portal.example\"]"),
    "HS-CORS-103": lambda t: clean(t, "[cors]\nallow_origins = [\"http://localhost:3000\"]"),
    "HS-CORS-105": lambda t: clean(t, "[cors]\nallow_origins = [\"https://portal.example\"]\n"
                                      "allow_credentials = true"),
    "HS-HOST-101": lambda t: clean(t, "[server]\npublic_hostnames = [\"jupyter.example\"]\n"
                                      "trusted_proxies = [\"10.1.2.3/32\"]", ip="0.0.0.0"),
    "HS-PROXY-102": lambda t: clean(t, "[server]\ntrusted_proxies = [\"10.20.0.0/16\"]"),
    "HS-PROXY-105": lambda t: clean(t, "[server]\ntrusted_proxies = [\"10.1.2.3/32\"]\n"
                                       "client_header = \"forwarded\""),
    "HS-LIMIT-101": lambda t: clean(t, "[limits]\nmax_body_bytes = 268435456"),
    "HS-LIMIT-104": lambda t: clean(t, "[limits]\nheader_timeout_seconds = 5\n"
                                       "connections_per_client = 64\nmax_connections = 500"),
    "HS-PROXY-103": lambda t: clean(t, "[server]\ntrusted_proxies = [\"172.16.0.0/12\"]"),
    "HS-TLS-102": lambda t: clean(t, "[server]\nallow_insecure_remote = true",
                                  ip="0.0.0.0", has_tls=True),
    "HS-TLS-103": lambda t: clean(t, "[server]\ntrusted_proxies = [\"10.1.2.3/32\"]",
                                  ip="0.0.0.0"),
    "HS-TLS-105": lambda t: clean(t, "[headers]\nhsts_max_age = 63072000"),
    "HS-PATH-104": lambda t: clean(t, "[paths]\nallow = [\".jupyter/lab/**\"]"),
    "HS-PATH-106": lambda t: _runtime_in_root(t, "runtime"),
    "HS-PATH-107": lambda t: _config_dir_in_root(t, ".jupyter"),
    "HS-TOKEN-101": lambda t: clean(t, env={"JUPYTER_TOKEN": secrets.token_hex(32)}),
    "HS-TOKEN-105": lambda t: _token_file(t, 0o600),
    "HS-TOKEN-106": lambda t: clean(t, config={"PasswordIdentityProvider": {
        "hashed_password": "argon2:$argon2id$v=19$m=10240,t=10,p=8$abc$def"}}),
    "HS-SESSION-101": lambda t: clean(t, config={"IdentityProvider": {
        "cookie_options": {"samesite": "Strict"}}}),
    "HS-TERM-102": lambda t: clean(t, "[terminals]\nenabled = true",
                                   config={"ServerApp": {"terminals_enabled": True}}),
    "HS-CONF-106": lambda t: _config_dir(t, 0o700),
    "HS-CONF-108": lambda t: _policy_mode(t, 0o644),
    "HS-HUB-101": lambda t: clean(t, env={"JUPYTERHUB_API_TOKEN": "x" * 32,
                                          "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
                                          "JUPYTERHUB_SERVICE_PREFIX": "/user/a/"}),
    "HS-HUB-102": lambda t: clean(t, env={"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api"}),
    "HS-EXT-101": lambda t: clean(t, extensions=(
        ExtensionInfo("jupyterlab", False, "/etc/jupyter/x.json", "/site/jupyterlab"),)),
    "HS-EXT-102": lambda t: clean(t, extensions=(
        ExtensionInfo("jupyterlab", True, "/etc/jupyter/x.json", "/site/jupyterlab"),)),
    "HS-EXT-301": lambda t: clean(t, bandit=(_bandit("HIGH"),)),
    "HS-EXT-302": lambda t: clean(t, bandit=(_bandit("MEDIUM"),)),
    "HS-ROUTE-302": lambda t: clean(t, routes=(_route("/static/(.*)", "static", True),
                                               _route("/login", "page", True),
                                               _route("/api/status", "api", False))),
}


def _run(check_id: str, facts: Facts) -> list[Finding]:
    chk = registry()[check_id]
    return [f for f in run_checks(facts, [chk.kind]) if f.check_id == check_id]


NON_LIVE = sorted(c.id for c in registry().values() if c.kind != KIND_LIVE)


def test_every_check_has_a_fire_case():
    """Meta-test: the tables cover the registry exactly (a new check needs a fire case here,
    or in the live table of test_probes_live.py)."""
    from tests.audit.test_probes_live import LIVE_FIRE, LIVE_QUIET

    registered = set(registry())
    covered = set(FIRE) | set(LIVE_FIRE)
    assert registered - covered == set(), "checks without a fire case"
    assert covered - registered == set(), "fire cases for unknown checks"
    assert set(LIVE_FIRE) == {c.id for c in registry().values() if c.kind == KIND_LIVE}
    assert set(LIVE_QUIET) <= set(LIVE_FIRE)
    assert set(QUIET) <= set(FIRE)


def test_there_are_at_least_forty_real_checks():
    static = [c for c in registry().values() if c.kind != KIND_LIVE]
    assert len(static) >= 40
    assert len(registry()) >= 40 + 30


@pytest.mark.parametrize("check_id", sorted(FIRE))
def test_check_fires(check_id, tmp_path):
    findings = _run(check_id, FIRE[check_id](tmp_path))
    assert findings, f"{check_id} did not fire"
    chk = REGISTRY[check_id]
    for f in findings:
        assert f.severity == chk.severity
        assert f.title == chk.title
        assert f.evidence
        assert f.fix


@pytest.mark.parametrize("check_id", NON_LIVE)
def test_check_stays_quiet(check_id, tmp_path):
    builder = QUIET.get(check_id, clean)
    assert _run(check_id, builder(tmp_path)) == []


def test_scope_102_fires_on_the_audit_trails_own_schema(tmp_path):
    """HS-SCOPE-102 once looked for ``https://hardened-server.`` and never saw the trail's own
    schema id: letting clients post it would let them forge audit records. The audit now asks
    the same list as the request floor (:mod:`hardened_server.policy.eventschemas`)."""
    from hardened_server.policy.eventschemas import DECISION_SCHEMA_ID

    facts = clean(tmp_path, f'[scopes]\nclient_event_schemas = ["{DECISION_SCHEMA_ID}"]')
    findings = _run("HS-SCOPE-102", facts)
    assert [f.evidence for f in findings] == [f"{DECISION_SCHEMA_ID} is a server schema"]


@pytest.mark.parametrize(
    ("source", "fires"),
    [("wss:", True), ("ws:", True), ("https://*", True), ("https://*.example.com", False)],
)
def test_csp_109_agrees_with_the_loaders_floor(tmp_path, source, fires):
    """HS-CSP-109 and the loader's floor ask the same question (csp.is_broad_script_source):
    the audit once flagged *.example.com, which the loader accepts, and the loader once
    accepted wss:, which matches every https: URL (CSP3 scheme-part matching)."""
    facts = clean(tmp_path, f"[csp.page]\nscript-src = [\"'self'\", \"{source}\"]")
    assert bool(_run("HS-CSP-109", facts)) is fires


def test_clean_deployment_fires_nothing(tmp_path):
    facts = clean(tmp_path)
    assert run_checks(facts, ["static", "routes", "extensions"]) == []


def test_registry_entries_are_complete_and_ids_stable():
    for chk in registry().values():
        assert chk.id.startswith("HS-")
        number = int(chk.id.rsplit("-", 1)[1])
        assert 101 <= number <= 399, chk.id  # below 100: request-decision rule ids
        expected_band = {"static": 1, "live": 2, "routes": 3, "extensions": 3}[chk.kind]
        assert number // 100 == expected_band, chk.id
        assert chk.title
        assert len(chk.title) < 90
        assert "\n" not in chk.title
        assert chk.fix
        assert chk.doc
        assert isinstance(chk.severity, Severity)


def test_policy_findings_point_at_the_file_key_and_line(tmp_path):
    facts = clean(tmp_path, "[csp.page]\n# a comment\nscript-src = [\"'self'\", "
                  "\"'unsafe-inline'\"]\n")
    (finding,) = _run("HS-CSP-101", facts)
    assert finding.location is not None
    assert finding.location.file == facts.policy_files[-1]
    assert finding.location.key == "csp.page.script-src"
    assert finding.location.line == 3


def test_removed_deny_globs_are_each_listed(tmp_path):
    findings = _run("HS-PATH-102", clean(tmp_path, RESTRICTIVE_DENY))
    removed = {f.evidence for f in findings}
    assert "paths.deny no longer contains '**/jupyter_cookie_secret'" in removed
    assert "paths.deny no longer contains '.env*'" in removed
    assert not any("'.ssh/**'" in e for e in removed)


def test_removed_protected_globs_are_each_an_error(tmp_path):
    findings = _run("HS-PATH-108", clean(tmp_path, "[paths]\nprotected = [\"**/.ssh\"]"))
    removed = {f.evidence for f in findings}
    assert "paths.protected no longer contains '**/.ipython'" in removed
    assert "paths.protected no longer contains '**/.bashrc'" in removed
    assert not any("'**/.ssh'" in e for e in removed)
    assert {f.severity.name for f in findings} == {"ERROR"}


def test_weak_token_value_never_appears_in_findings(tmp_path):
    token = "huggingface"
    facts = clean(tmp_path, env={"JUPYTER_TOKEN": token},
                  config={"IdentityProvider": {"token": token}})
    text = json.dumps([f.as_dict() for f in run_checks(facts, ["static"])])
    assert "HS-TOKEN-101" in text
    assert "HS-TOKEN-104" in text
    assert token not in text


def test_startup_refusals_agree_with_the_server(tmp_path):
    """The audit's refusal checks are the server's own start-up function: every UnsafeStartup
    the server would raise for these facts has an audit finding."""
    from hardened_server.audit.checks.env import startup_problems

    facts = clean(tmp_path, config={"ServerApp": {
        "disable_check_xsrf": True, "allow_origin": "*", "trust_xheaders": True,
        "terminals_enabled": True, "tornado_settings": {"headers": {}}}},
        env={"JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS": "true"}, ip="0.0.0.0")
    problems = startup_problems(facts)
    assert {p.rule_id for p in problems} >= {"HS-START-002", "HS-START-003", "HS-START-004",
                                             "HS-START-006", "HS-START-007", "HS-START-010"}
    fired = {f.check_id for f in run_checks(facts, ["static"])}
    assert {"HS-CONF-103", "HS-CORS-106", "HS-PROXY-104", "HS-XSITE-101", "HS-TERM-102",
            "HS-TLS-103", "HS-AUTH-101"} <= fired


def test_server_files_under_a_deny_glob_below_the_root_are_quiet(tmp_path):
    """Serving a home directory: the runtime directory below it is covered by the shipped
    `.local/share/jupyter/runtime/**` deny glob, so neither the token store nor the audit file
    is reachable and neither check fires (the start-up refusals agree)."""
    from hardened_server.enforcement.identity.tokenstore import TokenStore

    runtime = tmp_path / "root" / ".local/share/jupyter/runtime"
    runtime.mkdir(parents=True)
    store = runtime / "tokens.json"
    TokenStore(store).create("ci-bot", ("contents:read",), 86400)
    facts = clean(tmp_path, token_store=path_info(store), runtime=runtime)
    assert _run("HS-TOKEN-109", facts) == []
    assert _run("HS-AUDIT-102", facts) == []


def test_extension_profile_entries_are_not_reported_as_changes_to_review(tmp_path):
    """A shipped extension profile is reviewed with the package: its route map entries and its
    accepted handlers are measured against the default *with* that profile, so HS-SCOPE-104 and
    HS-ROUTE-102 report only what a file of the operator's adds; HS-SCOPE-101 still sees every
    entry (a profile with an unscoped entry would fire: none has one)."""
    import dataclasses

    from hardened_server.policy.loader import baseline_policy, load_policy

    facts = clean(tmp_path)
    profiled = load_policy(extensions=["jupyter_server_proxy", "jupyter_resource_usage"])
    with_profiles = dataclasses.replace(
        facts, policy=profiled, default_policy=baseline_policy(profiled.profiles)
    )
    for check_id in ("HS-SCOPE-104", "HS-ROUTE-102", "HS-SCOPE-101"):
        assert _run(check_id, with_profiles) == [], check_id
    # against the bare default the same entries would be reported
    bare = dataclasses.replace(facts, policy=profiled)
    assert _run("HS-SCOPE-104", bare)
    assert _run("HS-ROUTE-102", bare)
