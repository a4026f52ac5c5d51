"""What the static audit learns about a configuration: the facts every check reads.

Gathering is the only I/O of a static audit; the checks themselves are pure functions of
:class:`Facts`, so a test builds a ``Facts`` by hand (:func:`facts_for`) and runs one check.

What is read, and what is deliberately not:

* the layered policy (:func:`hardened_server.policy.loader.load_policy`): the shipped default, the
  ``HardenedServerApp.policy_files`` of the JSON Jupyter config, then each ``--policy`` file (the
  command line replaces the configured list, as traitlets does when serving);
* Jupyter config files ``jupyter_server_config.json`` and ``jupyter_server_config.d/*.json`` in
  every directory of :func:`jupyter_core.paths.jupyter_config_path` (plus ``--config-dir``),
  merged lowest priority first as traitlets does. ``jupyter_server_config.py`` files are **never
  executed** (an audit must not run the code it audits): their presence is reported;
* the environment (``JUPYTER_TOKEN``, ``JUPYTER_TOKEN_FILE``,
  ``JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS``, ``JUPYTERHUB_*``); a token is read to estimate
  its strength and is never copied into a finding;
* modes of the cookie secret, the runtime directory, the config directories and files, the token
  file and the policy files (``stat`` only);
* enabled server extensions (``ServerApp.jpserver_extensions``) and where their code is
  (``importlib.util.find_spec``: found, not imported);
* with ``--routes``: the route inventory (:mod:`hardened_server.audit.inventory`) of a
  :class:`~hardened_server.app.HardenedServerApp` initialised (never started) in a fresh
  interpreter;
* with ``--extensions``: bandit's medium and high findings over the extensions' code.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import stat
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import (
    baseline_policy,
    load_policy,
    loosenings,
    profiles_dir,
    resolve_policy_path,
    shipped_policy,
)
from hardened_server.policy.model import Policy

CONFIG_NAME = "jupyter_server_config"


@dataclass(frozen=True)
class PathInfo:
    path: str
    exists: bool = False
    is_dir: bool = False
    mode: int = 0  # permission bits only
    uid: int = -1

    @property
    def group_or_world_readable(self) -> bool:
        return bool(self.mode & (stat.S_IRGRP | stat.S_IROTH))

    @property
    def group_or_world_writable(self) -> bool:
        return bool(self.mode & (stat.S_IWGRP | stat.S_IWOTH))

    @property
    def sticky(self) -> bool:
        return bool(self.mode & stat.S_ISVTX)

    def describe_mode(self) -> str:
        kind = stat.S_IFDIR if self.is_dir else stat.S_IFREG
        return f"{self.path} is {stat.filemode(self.mode | kind)} ({oct(self.mode)})"


def path_info(path: str | os.PathLike[str]) -> PathInfo:
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError:
        return PathInfo(p)
    return PathInfo(p, True, stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid)


@dataclass(frozen=True)
class ConfigFile:
    path: str
    kind: str  # "json" | "py"
    data: Mapping[str, Any] | None = None
    error: str | None = None
    info: PathInfo | None = None


@dataclass(frozen=True)
class ExtensionInfo:
    name: str
    enabled: bool
    source: str  # the config file that enabled it
    module_path: str | None  # the package directory or module file, None if not importable


@dataclass(frozen=True)
class RouteRecord:
    """One rule of the configured application (``--routes``)."""

    pattern: str
    handler: str  # module.qualname of the original handler class
    mixin: str  # the hardened mixin first in the wrapped class's MRO, or "" if unwrapped
    route_class: str
    public: bool
    kinds: tuple[str, ...]
    methods: tuple[str, ...]
    undecorated: tuple[str, ...]  # methods with no authentication decorator
    decorators: Mapping[str, tuple[str, ...]]  # method -> decorator names found
    authorization: Mapping[str, str]  # method -> "resource:action" or "n/a"
    csp: str
    # method -> scopes the route map requires ("a+b", "none", "refused"), {"*": "unmapped"},
    # {} for a public route
    scopes: Mapping[str, str] = field(default_factory=dict)
    # where the scopes come from: builtin | policy | declared | authorized | unmapped (None for
    # a rule the wrapping missed)
    scope_source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "handler": self.handler,
            "mixin": self.mixin,
            "route_class": self.route_class,
            "public": self.public,
            "kinds": list(self.kinds),
            "methods": list(self.methods),
            "undecorated": list(self.undecorated),
            "decorators": {k: list(v) for k, v in self.decorators.items()},
            "authorization": dict(self.authorization),
            "scopes": dict(self.scopes),
            "scope_source": self.scope_source,
            "csp": self.csp,
        }


@dataclass(frozen=True)
class BanditIssue:
    extension: str
    test_id: str
    test_name: str
    severity: str  # MEDIUM | HIGH
    confidence: str
    text: str
    file: str
    line: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "extension": self.extension,
            "test_id": self.test_id,
            "test_name": self.test_name,
            "severity": self.severity,
            "confidence": self.confidence,
            "text": self.text,
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True)
class Facts:
    """Everything the static checks read. Built by :func:`gather_facts` (or by tests)."""

    policy: Policy | None
    default_policy: Policy
    policy_error: PolicyError | None = None
    policy_files: tuple[str, ...] = ()
    policy_file_infos: tuple[PathInfo, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    config_files: tuple[ConfigFile, ...] = ()
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # class -> trait -> v
    config_source: Mapping[str, str] = field(default_factory=dict)  # "Class.trait" -> file
    config_dirs: tuple[PathInfo, ...] = ()
    runtime_dir: PathInfo | None = None
    cookie_secret: PathInfo | None = None
    token_file: PathInfo | None = None
    token_store: PathInfo | None = None  # None: where tokens.store_file / the runtime dir say
    token: str | None = None  # the configured token (never reported), None: generated
    root_dir: str | None = None
    ip: str = "localhost"
    has_tls: bool = False
    extensions: tuple[ExtensionInfo, ...] = ()
    routes: tuple[RouteRecord, ...] | None = None
    routes_error: str | None = None
    route_problems: tuple[tuple[str, str, str], ...] = ()  # (rule id, message, fix)
    bandit: tuple[BanditIssue, ...] | None = None

    # -- helpers the checks use ----------------------------------------------------------------

    def setting(self, *names: str) -> tuple[Any, str] | None:
        """The value of the first configured ``Class.trait`` among ``names`` and its file."""
        for name in names:
            cls, _, trait = name.partition(".")
            section = self.config.get(cls)
            if isinstance(section, Mapping) and trait in section:
                return section[trait], self.config_source.get(name, "")
        return None

    def value(self, key: str) -> Any:
        assert self.policy is not None
        return self.policy.values.get(key)

    def loosened(self) -> list[tuple[str, Any, Any, str]]:
        if self.policy is None:
            return []
        return loosenings(self.policy)


# ---------------------------------------------------------------------------------------------
# Jupyter config files


def _merge(into: dict[str, Any], new: Mapping[str, Any], source: str,
           sources: dict[str, str]) -> None:
    """``{Class: {trait: value}}``; a later file wins trait by trait, and the Dict trait
    ``jpserver_extensions`` merges entry by entry (each package ships its own file)."""
    for cls, section in new.items():
        if not isinstance(section, Mapping):
            continue
        target = into.setdefault(cls, {})
        for trait, value in section.items():
            if trait == "jpserver_extensions" and isinstance(value, Mapping) and isinstance(
                target.get(trait), dict
            ):
                target[trait] = {**target[trait], **value}
                for name in value:
                    sources[f"{cls}.{trait}.{name}"] = source
            else:
                target[trait] = dict(value) if isinstance(value, Mapping) else value
                if trait == "jpserver_extensions" and isinstance(value, Mapping):
                    for name in value:
                        sources[f"{cls}.{trait}.{name}"] = source
            sources[f"{cls}.{trait}"] = source


def config_search_path(extra_dirs: Sequence[str] = ()) -> list[str]:
    """Highest priority first: ``--config-dir`` directories, then Jupyter's search path."""
    from jupyter_core.paths import jupyter_config_path

    out: list[str] = []
    for d in [*extra_dirs, *jupyter_config_path()]:
        d = os.path.abspath(os.path.expanduser(d))
        if d not in out:
            out.append(d)
    return out


def read_config_files(dirs: Sequence[str]) -> tuple[tuple[ConfigFile, ...], dict, dict]:
    """Every ``jupyter_server_config`` file in ``dirs`` (highest priority first), and the JSON
    ones merged lowest priority first (a later file wins, as traitlets loads them)."""
    files: list[ConfigFile] = []
    for d in reversed(dirs):
        base = Path(d)
        candidates = sorted((base / f"{CONFIG_NAME}.d").glob("*.json")) if (
            base / f"{CONFIG_NAME}.d"
        ).is_dir() else []
        candidates += [base / f"{CONFIG_NAME}.py", base / f"{CONFIG_NAME}.json"]
        for path in candidates:
            if not path.is_file():
                continue
            info = path_info(path)
            if path.suffix == ".py":
                files.append(ConfigFile(str(path), "py", None, None, info))
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("the top level is not an object")
            except (OSError, ValueError) as exc:
                files.append(ConfigFile(str(path), "json", None, str(exc), info))
                continue
            files.append(ConfigFile(str(path), "json", data, None, info))
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for cf in files:
        if cf.data is not None:
            _merge(merged, cf.data, cf.path, sources)
    return tuple(files), merged, sources


# ---------------------------------------------------------------------------------------------
# Extensions


def enabled_extensions(config: Mapping[str, Any], sources: Mapping[str, str]) -> tuple[
    ExtensionInfo, ...
]:
    exts = config.get("ServerApp", {}).get("jpserver_extensions", {})
    out = []
    if not isinstance(exts, Mapping):
        return ()
    for name, enabled in sorted(exts.items()):
        out.append(
            ExtensionInfo(
                str(name),
                bool(enabled),
                sources.get(f"ServerApp.jpserver_extensions.{name}",
                            sources.get("ServerApp.jpserver_extensions", "")),
                module_location(str(name)),
            )
        )
    return tuple(out)


def module_location(name: str) -> str | None:
    """The package directory (or module file) of an importable module, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        locations = list(spec.submodule_search_locations)
        return locations[0] if locations else None
    return spec.origin


# ---------------------------------------------------------------------------------------------
# Policy


def effective_policy_files(cli_files: Sequence[str], config: Mapping[str, Any]) -> list[str]:
    if cli_files:
        return list(cli_files)
    configured = config.get("HardenedServerApp", {}).get("policy_files", [])
    if isinstance(configured, list) and all(isinstance(p, str) for p in configured):
        return list(configured)
    return []


def _load(
    files: Sequence[str], extensions: Sequence[str] = ()
) -> tuple[Policy | None, PolicyError | None]:
    """The policy as written (CSP floors not enforced, so every check can look at it) and the
    error the server itself would stop on, if any (HS-CONF-107 reports it). ``extensions``: the
    installed and enabled server extensions, whose shipped profiles the server would apply."""
    try:
        policy = load_policy(files, enforce_floors=False, extensions=extensions)
    except PolicyError as exc:
        return None, exc
    try:
        load_policy(files, extensions=extensions)
    except PolicyError as exc:
        return policy, exc
    return policy, None


# ---------------------------------------------------------------------------------------------
# The whole gathering


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def configured_token(env: Mapping[str, str], config: Mapping[str, Any]) -> str | None:
    """The token the server would use unless it generates one (``None`` then), in stock's order:
    ``IdentityProvider.token`` config, else ``JUPYTER_TOKEN``, else ``JUPYTER_TOKEN_FILE``."""
    for cls in ("HardenedIdentityProvider", "PasswordIdentityProvider", "IdentityProvider",
                "ServerApp"):
        section = config.get(cls, {})
        if isinstance(section, Mapping) and isinstance(section.get("token"), str):
            return str(section["token"])
    if env.get("JUPYTER_TOKEN"):
        return env["JUPYTER_TOKEN"]
    token_file = env.get("JUPYTER_TOKEN_FILE")
    if token_file:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return Path(token_file).read_text(encoding="utf-8").strip()
    return None


def gather_facts(
    *,
    policy_files: Sequence[str] = (),
    config_dirs: Sequence[str] = (),
    root_dir: str | None = None,
    ip: str | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    env: Mapping[str, str] | None = None,
    routes: bool = False,
    extensions: bool = False,
    extension_names: Sequence[str] = (),
) -> Facts:
    from jupyter_core.paths import jupyter_config_dir, jupyter_runtime_dir

    env = dict(os.environ if env is None else env)
    dirs = config_search_path(config_dirs)
    files, merged, sources = read_config_files(dirs)
    server = merged.get("ServerApp", {})
    effective_files = effective_policy_files(policy_files, merged)
    exts = enabled_extensions(merged, sources)
    profiled = [e.name for e in exts if e.enabled and e.module_path is not None]
    policy, error = _load(effective_files, profiled)
    # What loosenings are measured against: the shipped default and the shipped extension
    # profiles this configuration applies (a reviewed profile is not a loosening).
    default = baseline_policy(policy.profiles) if policy is not None else shipped_policy()

    user_dirs = {os.path.abspath(jupyter_config_dir()), *map(os.path.abspath, config_dirs)}
    runtime = Path(jupyter_runtime_dir())
    secret = server.get("cookie_secret_file") or str(runtime / "jupyter_cookie_secret")
    tls = bool((certfile or server.get("certfile")) and (keyfile or server.get("keyfile")))
    root = root_dir or server.get("root_dir") or os.getcwd()
    token_file = env.get("JUPYTER_TOKEN_FILE")
    facts = Facts(
        policy=policy,
        default_policy=default,
        policy_error=error,
        policy_files=tuple(effective_files),
        policy_file_infos=tuple(
            path_info(resolve_policy_path(p)) for p in effective_files
        ),
        env=env,
        config_files=files,
        config=merged,
        config_source=sources,
        config_dirs=tuple(path_info(d) for d in sorted(user_dirs)),
        runtime_dir=path_info(runtime),
        cookie_secret=path_info(secret),
        token_file=path_info(token_file) if token_file else None,
        token=configured_token(env, merged),
        root_dir=os.path.abspath(os.path.expanduser(str(root))),
        ip=ip or str(server.get("ip", "localhost")),
        has_tls=tls,
        extensions=exts,
    )
    if routes:
        records, problems, err = route_inventory(
            effective_files, root_dir=root_dir, config_dirs=config_dirs, env=env
        )
        facts = _replace(facts, routes=records, route_problems=problems, routes_error=err)
    if extensions:
        wanted = [e for e in exts if e.enabled and (not extension_names or e.name in
                                                     extension_names)]
        for name in extension_names:
            if not any(e.name == name for e in wanted):
                wanted.append(ExtensionInfo(name, True, "--extension", module_location(name)))
        facts = _replace(facts, extensions=tuple({e.name: e for e in [*exts, *wanted]}.values()),
                         bandit=tuple(run_bandit(wanted)))
    return facts


def _replace(facts: Facts, **changes: Any) -> Facts:
    from dataclasses import replace

    return replace(facts, **changes)


def facts_for(
    policy_texts: Sequence[str] = (),
    *,
    tmpdir: str | os.PathLike[str] | None = None,
    **changes: Any,
) -> Facts:
    """Facts for a policy given as TOML texts over the default (tests and ``policy`` tooling)."""
    files = []
    if policy_texts:
        base = Path(tmpdir or tempfile.mkdtemp(prefix="hs-audit-"))
        for i, text in enumerate(policy_texts):
            p = base / f"policy{i}.toml"
            p.write_text(text, encoding="utf-8")
            files.append(str(p))
    policy, error = _load(files)
    facts = Facts(
        policy=policy,
        default_policy=shipped_policy(),
        policy_error=error,
        policy_files=tuple(files),
        policy_file_infos=tuple(path_info(p) for p in files),
    )
    return _replace(facts, **changes) if changes else facts


def default_profile_path() -> str:
    return str(profiles_dir() / "default.toml")


# ---------------------------------------------------------------------------------------------
# Route inventory: a HardenedServerApp initialised in a fresh interpreter, never started
# (:mod:`hardened_server.audit.inventory`).


def route_inventory(
    policy_files: Sequence[str],
    *,
    root_dir: str | None,
    config_dirs: Sequence[str],
    env: Mapping[str, str],
    timeout: float = 120,
) -> tuple[tuple[RouteRecord, ...] | None, tuple[tuple[str, str, str], ...], str | None]:
    from hardened_server.audit.inventory import run_inventory

    argv = [f"--policy={p}" for p in policy_files]
    if root_dir:
        argv.append(f"--root-dir={root_dir}")
    argv.append("--ServerApp.open_browser=False")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    child_env = dict(env)
    if config_dirs:
        child_env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            [*config_dirs, *([child_env["JUPYTER_CONFIG_PATH"]] if child_env.get(
                "JUPYTER_CONFIG_PATH") else [])]
        )
    with tempfile.TemporaryDirectory(prefix="hs-audit-runtime-") as runtime:
        # Initialising writes a cookie secret into the runtime directory: never the real one.
        child_env["JUPYTER_RUNTIME_DIR"] = runtime
        found = run_inventory(argv, child_env, timeout=timeout)
    if found.routes is None:
        return None, found.problems, found.error
    records = tuple(
        RouteRecord(
            pattern=r["pattern"],
            handler=r["handler"],
            mixin=r["mixin"],
            route_class=r["route_class"],
            public=r["public"],
            kinds=tuple(r["kinds"]),
            methods=tuple(r["methods"]),
            undecorated=tuple(r["undecorated"]),
            decorators={k: tuple(v) for k, v in r["decorators"].items()},
            authorization=dict(r["authorization"]),
            csp=r["csp"],
            scopes=dict(r.get("scopes", {})),
            scope_source=r.get("scope_source"),
        )
        for r in found.routes
    )
    return records, found.problems, None


# ---------------------------------------------------------------------------------------------
# bandit over extension code

#: Directories inside an extension package that are not server code.
BANDIT_EXCLUDED = ("tests", "test", "node_modules", "staging", "static", "labextension",
                   "schemas", "themes")


def run_bandit(extensions: Sequence[ExtensionInfo]) -> list[BanditIssue]:
    """bandit, as a library, over each extension's code; MEDIUM and HIGH severity only."""
    # bandit's plugin loader (stevedore) warns about its own deprecated arguments: noise for
    # the audit's user, and an error under ``-W error``.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _run_bandit(extensions)


def _run_bandit(extensions: Sequence[ExtensionInfo]) -> list[BanditIssue]:
    from bandit.core import config as b_config
    from bandit.core import manager as b_manager

    issues: list[BanditIssue] = []
    conf = b_config.BanditConfig()
    for ext in extensions:
        if not ext.module_path:
            continue
        target = ext.module_path
        mgr = b_manager.BanditManager(conf, "file", quiet=True)
        excluded = ",".join(os.path.join(target, d) for d in BANDIT_EXCLUDED)
        mgr.discover_files([target], recursive=True, excluded_paths=excluded)
        mgr.run_tests()
        for issue in mgr.get_issue_list(sev_level="MEDIUM", conf_level="LOW"):
            issues.append(
                BanditIssue(
                    extension=ext.name,
                    test_id=issue.test_id,
                    test_name=issue.test,
                    severity=issue.severity,
                    confidence=issue.confidence,
                    text=issue.text,
                    file=issue.fname,
                    line=int(issue.lineno or 0),
                )
            )
    return issues
