"""``HardenedServerApp``: jupyter_server's ``ServerApp`` with the policy in front of every route.

jupyter_server has no trait for the web application class: ``ServerApp.init_webapp`` builds a
``ServerWebApplication`` itself. So this app lets it, then takes the application over:

1. before: refuse unsafe configuration
   (:func:`~hardened_server.policy.startup.check_configuration`);
2. after: give the application a hardened class (``add_handlers`` wraps what extensions add,
   ``find_handler`` runs the application-level request gate before any route is chosen),
   re-point every existing rule at a hardened handler subclass, add the header transform, set
   the websocket limits, and snapshot the security settings;
3. after the extensions load: wrap again (for routes added behind ``add_handlers``' back),
   refuse undecorated non-public routes and any drift of the snapshot;
4. the HTTP server gets the policy's size limits (body, header block), so an oversized request
   is refused before it is buffered;
5. on SIGHUP (and, with ``policy_watch_interval``, when a policy file changes) the policy is
   re-read, signature-checked, validated, checked like at start-up and swapped in as a whole
   (:meth:`HardenedServerApp.reload_policy`); a refused reload keeps the old policy in force.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import hashlib
import inspect
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jupyter_server
from jupyter_server.auth.login import LoginHandler
from jupyter_server.serverapp import ServerApp, ServerWebApplication
from jupyter_server.serverapp import aliases as server_aliases
from jupyter_server.serverapp import flags as server_flags
from tornado import ioloop, web
from traitlets import Bool, Float, List, Unicode, default

from hardened_server import __version__
from hardened_server.enforcement.accesslog import log_success_unwritten
from hardened_server.enforcement.activity import install_activity, open_activity_for
from hardened_server.enforcement.auditfile import (
    audit_state,
    install,
    open_trail_for,
    uninstall,
)
from hardened_server.enforcement.contents import HardenedContentsManager
from hardened_server.enforcement.context import current_request
from hardened_server.enforcement.cspreport import replace_csp_report_handler
from hardened_server.enforcement.extensions import profiled_extensions as find_profiled
from hardened_server.enforcement.gate import GateRefusalHandler, admit
from hardened_server.enforcement.handlers import (
    UNREGISTERED,
    iter_handler_rules,
    wrap_handler,
    wrap_rules,
)
from hardened_server.enforcement.health import HealthProbeHandler, probe_decision
from hardened_server.enforcement.httpserver import PolicyHTTPServer, http_server_for
from hardened_server.enforcement.identity.authorizer import HardenedAuthorizer
from hardened_server.enforcement.identity.provider import HardenedIdentityProvider
from hardened_server.enforcement.identity.site import (
    assigns_scopes,
    provider_name,
    scope_site_provider,
)
from hardened_server.enforcement.inventory import is_wrapped, route_inventory
from hardened_server.enforcement.kernelsessions import HardenedSessionManager
from hardened_server.enforcement.marks import mark
from hardened_server.enforcement.recorder import folded, record_event
from hardened_server.enforcement.runtime import SETTINGS_KEY, PolicyRuntime
from hardened_server.enforcement.templates import trusted_script_hashes
from hardened_server.enforcement.transform import transform_for
from hardened_server.policy.connlimits import max_connections_for
from hardened_server.policy.errors import PolicyError, UnsafeStartup
from hardened_server.policy.fsync import FsyncPolicy
from hardened_server.policy.gitenv import safe_git_environment
from hardened_server.policy.hosts import unix_socket_host
from hardened_server.policy.loader import load_policy, resolve_policy_path
from hardened_server.policy.model import Policy
from hardened_server.policy.paths import ServerFile, served_file_problem
from hardened_server.policy.reload import (
    restart_only_changes,
)
from hardened_server.policy.routeclass import classify_path
from hardened_server.policy.rules import Rule
from hardened_server.policy.signing import KeyFileError, PolicyVerifier, signature_path
from hardened_server.policy.startup import (
    SECURITY_SETTINGS,
    RouteFact,
    StartupFacts,
    check_configuration,
    check_contents_manager,
    check_drift,
    check_extensions,
    check_routes,
)
from hardened_server.policy.suggest import hint_entry
from hardened_server.trail.metrics import default_metrics
from hardened_server.trail.record import EventKind
from hardened_server.trail.scrub import ScrubLogFilter, install_log_scrubbing
from hardened_server.trail.writer import AuditTrail

if TYPE_CHECKING:
    from tornado.platform.asyncio import BaseAsyncIOLoop



#: Voila's page route (voila/server_extension.py) and the template that marks its inline
#: scripts with the response's CSP nonce (share/jupyter/voila/templates/hardened).
VOILA_RENDER_ROUTE = "/voila/render/(.*)"
VOILA_TEMPLATE = "hardened"

#: The prebuilt JupyterLab extensions shipped inside the package (built from labextension/ by
#: labextension/build.sh; tests/test_labextension.py checks they match that source).
LABEXTENSIONS = Path(__file__).parent / "labextensions"



def voila_page_config(page_config: dict[str, Any], **_context: Any) -> dict[str, Any]:
    """Voila's page config without the MathJax 2 source: its MathJax 2 plugin loads MathJax
    from a CDN (``fullMathjaxUrl``) that the page CSP refuses. Without a URL that plugin does
    not start and the bundled MathJax 3 plugin renders the math. Installed as
    ``VoilaConfiguration.page_config_hook`` unless one is configured."""
    return {**page_config, "fullMathjaxUrl": ""}


def open_files_limit() -> int:
    """The soft ``RLIMIT_NOFILE`` of this process (-1: unlimited)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return -1 if soft == resource.RLIM_INFINITY else int(soft)


class StartupRefused(RuntimeError):
    """One or more start-up checks failed; the server does not start."""

    def __init__(self, problems: list[UnsafeStartup]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @property
    def rule_ids(self) -> list[str]:
        return [p.rule_id for p in self.problems]


class PolicyReloadRefused(RuntimeError):
    """A new policy file is valid but cannot be applied to this running server."""


class HardenedWebApplication(ServerWebApplication):
    """The application class ``init_webapp`` built, with ``add_handlers`` going through the same
    wrapping as the core routes, the request gate in ``find_handler``, and a last-resort wrap of
    any handler class that reaches the router some other way."""

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        """Tornado calls this once the request's headers are in, before the body is read and
        before any handler exists. The liveness probe (``GET /hs-health``,
        :mod:`hardened_server.policy.health`) is answered first, unrecorded; for everything
        else the client address is settled (trusted proxies), and a
        foreign Host, an oversized request or a client over its rate limit is answered by
        :class:`~hardened_server.enforcement.gate.GateRefusalHandler` instead of a route."""
        runtime: PolicyRuntime = self.settings[SETTINGS_KEY]
        probe = probe_decision(request, runtime.current.hosts)
        if probe is not None:
            # The liveness probe (policy/health.py): answered before the gate, not recorded.
            return self.get_handler_delegate(request, HealthProbeHandler, {"decision": probe})
        refusal = admit(
            request, runtime, xsrf_cookie_name=self.settings.get("xsrf_cookie_name", "_xsrf")
        )
        if refusal is not None:
            return self.get_handler_delegate(
                request,
                GateRefusalHandler,
                {"refusal": refusal, "base_url": runtime.base_url},
            )
        return super().find_handler(request, **kwargs)

    def log_request(self, handler: web.RequestHandler) -> None:
        """jupyter_server's access log line, then the request's duration on
        ``hardened_server_request_duration_seconds`` by route class (a fixed label set).
        jupyter_server's line for a success is DEBUG: when no handler would take it, only its
        metric is observed (:mod:`hardened_server.enforcement.accesslog`), the line is not
        built to be dropped."""
        if not log_success_unwritten(self.settings.get("log_function"), handler):
            super().log_request(handler)
        request = handler.request
        route_class = getattr(request, "hs_route_class", None)
        if route_class is None:  # answered before routing (the gate) or by a bare handler
            route_class = classify_path(request.path or "/", self.settings.get("base_url", "/"))
        with contextlib.suppress(ValueError):  # a route class outside the fixed label set
            default_metrics().observe_request(str(route_class), request.request_time())

    def add_handlers(self, host_pattern: str, host_handlers: Sequence[Any]) -> None:
        super().add_handlers(host_pattern, host_handlers)
        self.hardened_route_facts.extend(
            wrap_rules(self.default_router, self.settings.get("base_url", "/"))
        )

    def get_handler_delegate(
        self, request: Any, target_class: type[web.RequestHandler], *args: Any, **kwargs: Any
    ) -> Any:
        if not is_wrapped(target_class) and not issubclass(
            target_class, (GateRefusalHandler, HealthProbeHandler)
        ):
            # Reached only by a rule inserted behind add_handlers' back: never public.
            target_class = wrap_handler(target_class, UNREGISTERED)
        return super().get_handler_delegate(request, target_class, *args, **kwargs)

    hardened_route_facts: list[RouteFact]


def _recorded_kernel_start(start_kernel: Any) -> Any:
    async def start(*args: Any, **kwargs: Any) -> Any:
        result = start_kernel(*args, **kwargs)
        kernel_id = await result if inspect.isawaitable(result) else result
        record_event(
            current_request(),
            EventKind.KERNEL_STARTED,
            rule_id=Rule.KERNEL_STARTED,
            allowed=True,
            reason="kernel started",
            subject=f"kernel_id={kernel_id}",
            kernel_name=kwargs.get("kernel_name"),
        )
        return kernel_id

    mark(start, _hs_recorded=True)
    return start


def _recorded_kernel_action(method: Any, kind: EventKind, rule: Rule, reason: str) -> Any:
    """``method`` (the manager's ``restart_kernel`` or ``interrupt_kernel``), recording one
    event once it has succeeded. Sync stays sync and async stays async: jupyter_client's
    ``interrupt_kernel`` is a plain method, jupyter_server's ``restart_kernel`` a coroutine."""

    def record(kernel_id: Any) -> None:
        record_event(
            current_request(),
            kind,
            rule_id=rule,
            allowed=True,
            reason=reason,
            subject=f"kernel_id={kernel_id}",
        )

    async def then_record(result: Any, kernel_id: Any) -> Any:
        value = await result
        record(kernel_id)
        return value

    def recorded(kernel_id: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(kernel_id, *args, **kwargs)
        if inspect.isawaitable(result):
            return then_record(result, kernel_id)
        record(kernel_id)
        return result

    mark(recorded, _hs_recorded=True)
    return recorded


def _recorded_terminal_close(terminate: Any) -> Any:
    async def closed(name: Any, *args: Any, **kwargs: Any) -> Any:
        result = await terminate(name, *args, **kwargs)
        record_event(
            current_request(),
            EventKind.TERMINAL_CLOSED,
            rule_id=Rule.TERM_CLOSED,
            allowed=True,
            reason="terminal closed",
            subject=f"terminal={name}",
        )
        return result

    mark(closed, _hs_recorded=True)
    return closed


def _recorded_config_write(method: Any, how: str) -> Any:
    """``ConfigManager.set`` / ``update``: a frontend config section written (``/api/config``
    PUT and PATCH, or a server extension), one record naming the section."""

    def written(section_name: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(section_name, *args, **kwargs)
        record_event(
            current_request(),
            EventKind.CONFIG_CHANGED,
            rule_id=Rule.SERVER_CONFIG_CHANGED,
            allowed=True,
            reason=f"frontend config section {how}",
            subject=f"section={section_name}",
        )
        return result

    mark(written, _hs_recorded=True)
    return written


def _recorded_terminal_create(create: Any) -> Any:
    def created(*args: Any, **kwargs: Any) -> Any:
        model = create(*args, **kwargs)
        name = model.get("name") if isinstance(model, dict) else None
        record_event(
            current_request(),
            EventKind.TERMINAL_OPENED,
            rule_id=Rule.TERM_OPENED,
            allowed=True,
            reason="terminal created",
            subject=f"terminal={name}",
        )
        return model

    mark(created, _hs_recorded=True)
    return created


aliases = dict(server_aliases)
aliases.update(
    {
        "policy": "HardenedServerApp.policy_files",
        "policy-pubkey": "HardenedServerApp.policy_public_keys",
        "policy-watch-interval": "HardenedServerApp.policy_watch_interval",
        "root-dir": "ServerApp.root_dir",
        "token-store": "HardenedIdentityProvider.token_store_file",
        "password-file": "HardenedIdentityProvider.password_file",
    }
)
flags = dict(server_flags)
flags["require-signed-policy"] = (
    {"HardenedServerApp": {"require_signed_policy": True}},
    "Refuse any --policy file without a good detached signature (FILE.sig) by a key given "
    "with --policy-pubkey.",
)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any) -> bool:
    return isinstance(value, str | bytes | int | float | bool | type(None) | dict | list | tuple)


def snapshot_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Copies of plain-data security settings (so in-place edits show), identities of objects."""
    return {
        key: copy.deepcopy(settings[key]) if _plain(settings[key]) else settings[key]
        for key in SECURITY_SETTINGS
        if key in settings
    }


def token_store_problems(
    store_path: str, root_dir: str, policy: Policy, *, setting: str = ""
) -> list[UnsafeStartup]:
    """HS-ID-040 when the contents API could reach the token store: inside the served root and
    not under a ``paths.deny`` glob (serving a home directory is fine: the shipped deny list
    covers the runtime directory below it)."""
    problem = served_file_problem(
        ServerFile.TOKEN_STORE,
        os.path.realpath(store_path),
        root_dir,
        policy.paths,
        setting=setting,
    )
    return [problem] if problem else []


class HardenedServerApp(ServerApp):
    """Jupyter Server made strict by default."""

    name = "hardened-server"
    # jupyter_server's version, as stock reports it (jpserver-*.json, `--version`, what clients
    # and extensions compare against); ours is `hardened_version` (and in server_info).
    version = jupyter_server.__version__
    hardened_version = __version__
    description = "Jupyter Server with one policy engine in front of every route."
    aliases = aliases
    flags = flags
    # Every class an alias points at must be listed, or `--help` fails with KeyError while
    # building the alias table (--token-store, --password-file name HardenedIdentityProvider).
    classes = [*ServerApp.classes, HardenedIdentityProvider]

    policy_files = List(
        Unicode(),
        config=True,
        help="Policy files layered in order over the shipped default profile (--policy FILE, "
        "repeatable).",
    )

    policy_public_keys = List(
        Unicode(),
        config=True,
        help="Ed25519 public keys (PEM, from `hardened-server policy keygen`) trusted to sign "
        "policy files (--policy-pubkey FILE, repeatable). Giving one turns "
        "require_signed_policy on.",
    )

    require_signed_policy = Bool(
        config=True,
        help="Every --policy file must have a good detached signature FILE.sig by one of "
        "policy_public_keys, at start-up and on every reload; an unsigned or altered file is "
        "refused, naming the file. Shipped profiles named by their bare name are part of the "
        "package and exempt. Set it where the policy files cannot reach: the command line or "
        "a root-owned jupyter_server_config (a key inside the policy file could be deleted by "
        "whoever edits the file).",
    )

    @default("require_signed_policy")
    def _default_require_signed_policy(self) -> bool:
        return bool(self.policy_public_keys)

    policy_watch_interval = Float(
        0.0,
        config=True,
        help="Seconds between checks of the policy files (and their signatures) for changes; a "
        "change reloads the policy like SIGHUP does. 0 (the default): reload on SIGHUP only. "
        "Files are compared by content, so a Kubernetes ConfigMap's symlink swap is seen.",
    )

    _policy: Policy | None = None
    _verifier: PolicyVerifier | None = None

    # -- policy ------------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """Loaded on first use, after the command line and config files have been read; replaced
        by a successful reload."""
        if self._policy is None:
            self._policy = load_policy(
                self.policy_layers(),
                verifier=self.policy_verifier(),
                extensions=self.profiled_extensions(),
            )
        return self._policy

    _profiled: list[str] | None = None

    def profiled_extensions(self) -> list[str]:
        """The installed, enabled server extensions whose shipped profile applies (found once:
        a reload re-reads the policy files, not the extension configuration)."""
        if self._profiled is None:
            self._profiled = find_profiled(self.config_file_paths, dict(self.jpserver_extensions))
        return self._profiled

    def policy_layers(self) -> list[str]:
        """The policy files over the shipped default, in order: what start-up loads and every
        reload re-reads. A subclass that adds a layer (a shipped profile) overrides this, not
        :attr:`policy`, so that reloads and the file watcher see the same layers."""
        return list(self.policy_files)

    def policy_verifier(self) -> PolicyVerifier | None:
        """The signature check of policy files, if required. The trusted keys are read once,
        at start-up: a reload never changes which keys are trusted."""
        if not self.require_signed_policy:
            return None
        if self._verifier is None:
            if not self.policy_public_keys:
                raise KeyFileError(
                    "require_signed_policy is on but no trusted public key is given "
                    "(--policy-pubkey FILE)"
                )
            self._verifier = PolicyVerifier.from_paths(self.policy_public_keys)
        return self._verifier

    # -- strict defaults ---------------------------------------------------------------------

    @default("config_file_name")
    def _default_config_file_name(self) -> str:
        # A drop-in replacement must read (and refuse, where unsafe) the operator's existing
        # jupyter_server_config.{py,json}, not a hardened_server_config nobody wrote.
        return "jupyter_server_config"

    @default("identity_provider_class")
    def _default_identity_provider_class(self) -> type:
        return HardenedIdentityProvider

    @default("authorizer_class")
    def _default_authorizer_class(self) -> type:
        return HardenedAuthorizer

    @default("contents_manager_class")
    def _default_contents_manager_class(self) -> type:
        return HardenedContentsManager

    @default("session_manager_class")
    def _default_session_manager_class(self) -> Any:
        if self.gateway_config.gateway_enabled:
            return super()._default_session_manager_class()
        return HardenedSessionManager

    @default("terminals_enabled")
    def _default_terminals_enabled(self) -> bool:
        return self.policy.terminals.enabled

    @default("allow_unauthenticated_access")
    def _default_allow_unauthenticated_access(self) -> bool:
        # Read the stock environment switch so that setting it is refused, not ignored.
        value = os.environ.get("JUPYTER_SERVER_ALLOW_UNAUTHENTICATED_ACCESS", "")
        return value.lower() in ("1", "true", "yes")

    @default("default_url")
    def _default_default_url(self) -> str:
        # JupyterLab's page only when its server extension is enabled (read by init_webapp,
        # after the extensions are found): jupyterlab being importable is not enough, and a
        # redirect of `/` to a /lab that does not exist is a 404.
        manager = getattr(self, "extension_manager", None)
        found = getattr(manager, "extensions", {}) if manager is not None else {}
        lab = found.get("jupyterlab")
        return "/lab" if lab is not None and lab.enabled else "/"

    @default("port_retries")
    def _default_port_retries(self) -> int:
        return 0  # never land on a port nobody expects (and no proxy points at)

    @default("no_browser_open_file")
    def _default_no_browser_open_file(self) -> bool:
        return True  # the open-file would hold a token-bearing URL on disk

    # -- start-up checks ---------------------------------------------------------------------

    def _startup_facts(self, user_tornado_settings: frozenset[str]) -> StartupFacts:
        provider = self.identity_provider
        return StartupFacts(
            ip=self.ip,
            has_tls=bool(self.certfile and self.keyfile) or bool(self.ssl_options),
            user_tornado_settings=user_tornado_settings,
            allow_origin=self.allow_origin,
            allow_origin_pat=self.allow_origin_pat,
            allow_credentials=self.allow_credentials,
            disable_check_xsrf=self.disable_check_xsrf,
            allow_unauthenticated_access=self.allow_unauthenticated_access,
            token=provider.token or "",
            token_generated=bool(getattr(provider, "token_generated", False)),
            has_password=bool(getattr(provider, "hashed_password", "")),
            terminals_enabled=bool(self.terminals_enabled),
            sock=self.sock,
            trust_xheaders=bool(self.trust_xheaders),
            contents_manager=_qualname(type(self.contents_manager)),
            contents_manager_composed=isinstance(self.contents_manager, HardenedContentsManager),
            site_identity_provider=""
            if assigns_scopes(provider)
            else provider_name(type(provider)),
            legacy_login_handler=self._unused_login_handler(),
        )

    def configuration_problems(
        self, policy: Policy, user_tornado_settings: frozenset[str] = frozenset()
    ) -> list[UnsafeStartup]:
        """The start-up checks of this server's settings under ``policy``: what stops the
        start-up, and what refuses a reload to ``policy``. The one list both ask, so that a
        subclass whose authentication is elsewhere (the single-user app: the hub's OAuth)
        adjusts it once, for start-up and every reload alike."""
        return check_configuration(self._startup_facts(user_tornado_settings), policy)

    def _unused_login_handler(self) -> str:
        """``ServerApp.login_handler_class`` (legacy, pre-2.0) when no provider runs it. Stock
        runs it through ``LegacyIdentityProvider`` only when ``identity_provider_class`` is
        stock's ``PasswordIdentityProvider``, and otherwise logs that it is "superseded" and
        ignores it: here that is refused, not a log line."""
        configured = self.login_handler_class
        if configured is None or configured is LoginHandler:
            return ""
        provider_handler = getattr(self.identity_provider, "login_handler_class", None)
        if provider_handler is configured:
            return ""  # honoured: jupyter_server's legacy path, our checks in front
        return provider_name(configured)

    def _refuse(self, problems: list[UnsafeStartup]) -> None:
        """Stop start-up on any problem (the single-user app adds its own first)."""
        if problems:
            raise StartupRefused(problems)

    #: What stock wrote into ``tornado_settings`` itself (key -> the object written): its
    #: ``init_webapp`` (``allow_origin``, ``cookie_options``, ``token``, ...) and, on its legacy
    #: login path, ``init_configurables`` (``password``, ``token``). Not the user's settings.
    _hs_stock_settings: dict[str, Any]

    def user_tornado_settings(self) -> frozenset[str]:
        """The ``tornado_settings`` keys the user set: all of them, except those that still
        hold exactly what stock wrote (on this or an earlier ``initialize()``). A value changed
        since is the user's again."""
        written = getattr(self, "_hs_stock_settings", {})
        return frozenset(
            key
            for key, value in self.tornado_settings.items()
            if key not in written or written[key] is not value
        )

    def _stock_writes(self, call: Any) -> None:
        """Run a stock step and remember what it wrote into ``tornado_settings``."""
        user_keys = self.user_tornado_settings()
        before = dict(self.tornado_settings)
        call()
        written = {
            k: v for k, v in getattr(self, "_hs_stock_settings", {}).items() if k not in user_keys
        }
        written.update(
            (key, value)
            for key, value in self.tornado_settings.items()
            if key not in user_keys and (key not in before or before[key] is not value)
        )
        self._hs_stock_settings = written

    def init_configurables(self) -> None:
        self._stock_writes(super().init_configurables)

    def init_webapp(self) -> None:
        user_keys = self.user_tornado_settings()
        problems = self.configuration_problems(self.policy, user_keys)
        self._refuse(problems + self._token_store_problems())
        self.apply_nbconvert_policy()
        self.apply_voila_policy()
        self.apply_safe_git_environment()
        self.add_labextensions()
        self._stock_writes(super().init_webapp)
        self.harden_web_app()

    def apply_safe_git_environment(self) -> None:
        """Every git this process starts (jupyterlab-git, nbdime, kernels, terminals) runs with
        ``safe.bareRepository = explicit``: a directory a ``contents:write`` principal wrote
        as a bare repository is never taken for one by walking into it
        (:mod:`hardened_server.policy.gitenv`)."""
        added = safe_git_environment(os.environ)
        os.environ.update(added)
        if added:
            self.log.info("hardened-server: git runs with safe.bareRepository=explicit "
                          "(GIT_CONFIG_COUNT; SECURITY.md, jupyterlab-git)")

    def apply_nbconvert_policy(self) -> None:
        """``nbconvert.sanitize_html`` onto ``HTMLExporter.sanitize_html``: the nbconvert
        handlers build their exporter from this config on every request (HTMLExporter's
        subclasses, slides included, inherit it). The policy decides; a Jupyter config value
        that disagrees is overridden and named."""
        wanted = self.policy.nbconvert.sanitize_html
        section = self.config.get("HTMLExporter", {})
        configured = section.get("sanitize_html") if "sanitize_html" in section else None
        if configured is not None and bool(configured) != wanted:
            self.log.warning(
                "HTMLExporter.sanitize_html = %s in the Jupyter config is overridden by the "
                "policy key nbconvert.sanitize_html = %s",
                configured,
                str(wanted).lower(),
            )
        self.config.HTMLExporter.sanitize_html = wanted

    def add_labextensions(self) -> None:
        """Put the package's prebuilt JupyterLab extensions (``LABEXTENSIONS``: the setting
        registry that validates without ``new Function``, source in ``labextension/``) on the
        labextensions path of every linked JupyterLab-based front-end (JupyterLab, Notebook 7:
        ``jupyterlab_server``'s ``extra_labextensions_path``). Their ``package.json`` disables
        the core plugins they replace through the page config's ``disabledExtensions``. Set on
        the linked apps, after linking and before they load and build their handlers, so that
        a user's ``extra_labextensions_path`` in any config section is kept, not replaced.
        Only this server gets them: a stock ``jupyter lab`` in the same environment keeps its
        own settings plugin."""
        ours = str(LABEXTENSIONS)
        for apps in self.extension_manager.extension_apps.values():
            for app in apps:
                paths = getattr(app, "extra_labextensions_path", None)
                if isinstance(paths, list) and ours not in paths:
                    app.extra_labextensions_path = [ours, *paths]

    def apply_voila_policy(self) -> None:
        """``routes.script_nonce`` lists Voila's render route (``policies/voila.toml``): Voila
        renders with hardened-server's template ``hardened`` (Voila's ``lab`` page with its own
        inline scripts marked with the response's nonce; ``share/jupyter/voila/templates/
        hardened``), whose exporter gets the ``hs_nonce`` filter. Config only, set before the
        extensions load; without Voila installed nothing reads it. Another template chosen in
        the Jupyter config is kept and named: its inline scripts carry no nonce and stay
        blocked."""
        if VOILA_RENDER_ROUTE not in self.policy.routes.script_nonce:
            return
        filters = dict(self.config.get("VoilaExporter", {}).get("filters", {}) or {})
        filters["hs_nonce"] = "hardened_server.enforcement.nonce.nonce_filter"
        self.config.VoilaExporter.filters = filters
        configured = self.config.get("VoilaConfiguration", {}).get("template")
        if configured not in (None, "lab", VOILA_TEMPLATE):
            self.log.warning(
                "VoilaConfiguration.template = %r: its inline scripts carry no CSP nonce and "
                "stay blocked; hardened-server's %r template marks Voila's own "
                "(routes.script_nonce, SECURITY.md)",
                configured,
                VOILA_TEMPLATE,
            )
            return
        self.config.VoilaConfiguration.template = VOILA_TEMPLATE
        if "page_config_hook" not in self.config.get("VoilaConfiguration", {}):
            self.config.VoilaConfiguration.page_config_hook = voila_page_config

    def _served_file_problems(self, policy: Policy) -> list[UnsafeStartup]:
        """On reload: a new ``paths`` section must not bring the token store or the open audit
        file within the contents API's reach (serving a home directory and dropping the
        runtime directory's deny glob would)."""
        problems = []
        provider = self.identity_provider
        if hasattr(provider, "token_store_path"):
            problems += token_store_problems(
                provider.token_store_path(), self.root_dir, policy, setting="paths.deny"
            )
        trail = getattr(self, "audit_trail", None)
        sink = getattr(trail, "file_sink", None)
        audit_path = getattr(sink, "path", None)
        if audit_path:
            problem = served_file_problem(
                ServerFile.AUDIT_FILE, str(audit_path), self.root_dir, policy.paths,
                setting="paths.deny",
            )
            if problem:
                problems.append(problem)
        return problems

    def _token_store_problems(self) -> list[UnsafeStartup]:
        """The token store holds only hashes, but it must not be reachable (or replaceable)
        through the contents API: outside the served root, or under a ``paths.deny`` glob."""
        provider = self.identity_provider
        if not hasattr(provider, "token_store_path"):
            return []
        return token_store_problems(provider.token_store_path(), self.root_dir, self.policy)

    def server_info(self) -> dict[str, Any]:
        """The ``jpserver-<pid>.json`` file never holds the start-up token in clear (stock
        writes it there, next to anything the contents API may serve)."""
        info = super().server_info()
        info["token"] = ""
        info["hardened_server_version"] = self.hardened_version
        return info

    def harden_web_app(self) -> None:
        app = self.web_app
        # No page, page config or template gets the start-up token (Notebook 7 copies
        # settings["token"] into its page config): the browser works on the session cookie.
        app.settings["token"] = ""
        app.__class__ = HardenedWebApplication
        hardened = cast("HardenedWebApplication", app)  # what the line above made it
        runtime = PolicyRuntime(self.policy, self.base_url)
        if self.sock:
            runtime.unix_socket_host = unix_socket_host(self.sock)
        app.settings[SETTINGS_KEY] = runtime
        # A site's own identity provider (allowed by identity.site_provider, HS-START-013):
        # its users get the policy's scopes.
        scope_site_provider(self.identity_provider, runtime)
        for rule in iter_handler_rules(app.default_router):
            rule.target = replace_csp_report_handler(rule.target)
        hardened.hardened_route_facts = []
        hardened.hardened_route_facts.extend(wrap_rules(app.default_router, self.base_url))
        app.add_transform(transform_for(runtime))
        limits = self.policy.limits
        # tornado waits for a pong until the next ping at most, and cuts a longer timeout back
        # with a warning at every start; every websocket handler is tornado's, so that bound
        # holds for all of them (the key's text says so). jupyter_server's own kernel-channel
        # pings count missed pongs over several intervals: they get the value as set.
        tornado_ping_timeout = min(
            limits.websocket_ping_timeout_seconds, limits.websocket_ping_interval_seconds
        )
        app.settings.update(
            {
                # tornado's websocket handlers (seconds, bytes)
                "websocket_max_message_size": limits.websocket_max_message_bytes,
                "websocket_ping_interval": limits.websocket_ping_interval_seconds,
                "websocket_ping_timeout": tornado_ping_timeout,
                # jupyter_server's WebSocketMixin (kernel channels) counts milliseconds
                "ws_ping_interval": limits.websocket_ping_interval_seconds * 1000,
                "ws_ping_timeout": limits.websocket_ping_timeout_seconds * 1000,
            }
        )
        self._hs_snapshot = snapshot_settings(app.settings)

    # -- size limits -------------------------------------------------------------------------

    _POLICY_LIMITED_TRAITS = (
        "max_body_size",
        "max_buffer_size",
        "websocket_ping_interval",
        "websocket_ping_timeout",
    )

    def header_block_cap(self) -> int:
        """Bytes of request line and header fields tornado reads at most; beyond it the
        connection is closed unread. Up to it, the gate answers 414/431 itself."""
        limits = self.policy.limits
        return 2 * (limits.max_header_bytes + limits.max_url_bytes)

    def init_httpserver(self) -> None:
        """The policy's limits, not the traits': stock buffers 512 MiB bodies before any
        handler runs. A Content-Length over ``limits.max_body_bytes`` is answered 413 by the
        gate; a chunked body is cut off by tornado once it passes the same size."""
        for name in self._POLICY_LIMITED_TRAITS:
            if name in self.config.get("ServerApp", {}) or name in self.config.get(
                type(self).__name__, {}
            ):
                self.log.warning(
                    "ServerApp.%s is ignored: hardened-server takes it from the policy's "
                    "[limits] section (see `hardened-server policy show`)",
                    name,
                )
        limits = self.policy.limits
        self.max_body_size = limits.max_body_bytes
        self.max_buffer_size = limits.max_body_bytes + self.header_block_cap()
        super().init_httpserver()
        # tornado's own 400 for a request it cannot parse gets the policy's headers too
        # (enforcement/transform.py). The class is swapped on the instance jupyter_server built
        # so that every argument it passed stays as it is; no connection exists yet.
        self.http_server.__class__ = http_server_for(self.web_app.settings[SETTINGS_KEY])
        self.http_server.conn_params.max_header_size = self.header_block_cap()
        # Connection limits (enforcement/httpserver.py): the cap never lets accept reach EMFILE.
        try:
            cap = max_connections_for(limits.max_connections, open_files_limit())
        except UnsafeStartup as exc:
            raise StartupRefused([exc]) from None
        cast("PolicyHTTPServer", self.http_server).configure_limits(cap)
        self.open_audit_trail()

    # -- the audit trail ---------------------------------------------------------------------

    audit_trail: AuditTrail | None = None
    _audit_sync: Any = None
    _audit_watch: Any = None

    def _audit_tick(self, call: Callable[[], object]) -> Callable[[], None]:
        """A timer callback that logs (CRITICAL) instead of raising: the next record fails
        closed anyway."""

        def tick() -> None:
            try:
                call()
            except OSError as exc:
                self.log.critical("audit trail: %s", exc)

        return tick

    def open_audit_trail(self) -> AuditTrail:
        """Open the ``[audit]`` trail once the port is known (the default file is named after
        it), before the port is bound: a trail that cannot be opened, or a file inside the
        served root, stops the start-up. Installs it as the process's trail (every
        ``record_*`` call writes to it) and records the policy the server starts with."""
        policy = self.policy
        runtime: PolicyRuntime = self.web_app.settings[SETTINGS_KEY]
        provider = self.identity_provider
        try:
            trail = open_trail_for(
                policy.audit,
                runtime_dir=self.runtime_dir,
                port=self.port,
                root_dir=self.root_dir,
                paths=policy.paths,
                event_logger=self.event_logger,
                secrets=tuple(t for t in (provider.token,) if t),
                source=policy.provenance.get("audit.file", ""),
            )
        except UnsafeStartup as exc:
            raise StartupRefused([exc]) from None
        self.audit_trail = trail
        install(trail, runtime, fail_closed=policy.audit.fail_closed)
        try:
            install_activity(
                open_activity_for(
                    policy.audit,
                    data_dir=self.data_dir,
                    root_dir=self.root_dir,
                    paths=policy.paths,
                    source=policy.provenance.get("audit.hmac_key", ""),
                )
            )
        except UnsafeStartup as exc:
            raise StartupRefused([exc]) from None
        fsync = FsyncPolicy.parse(policy.audit.fsync)
        if trail.file_sink is not None and fsync.mode == "interval":
            # Bound the power-loss window when the server is idle, too.
            self._audit_sync = ioloop.PeriodicCallback(
                self._audit_tick(trail.sync), fsync.interval * 1000
            )
            self._audit_sync.start()
        if trail.file_sink is not None:
            # Notice a removed or replaced audit file without waiting for a request (#19).
            self._audit_watch = ioloop.PeriodicCallback(self._audit_tick(trail.check_file), 1000)
            self._audit_watch.start()
        self.bind_identity_gauges()
        head = trail.head
        record_event(
            None,
            EventKind.POLICY_LOADED,
            rule_id=Rule.POLICY_LOADED,
            allowed=True,
            reason="policy loaded at start-up",
            subject="sources=" + ",".join(os.path.basename(s) for s in policy.sources),
        )
        if trail.file_sink is not None:
            self.log.info(
                "audit trail: %s (chain %s, from record %s)",
                trail.file_sink.path,
                trail.file_sink.chain_id,
                head[0] if head else 0,
            )
        else:
            self.log.warning("audit trail: no audit file (audit.enabled = false)")
        return trail

    def bind_identity_gauges(self) -> None:
        """``hardened_server_live_tokens`` and ``hardened_server_active_sessions`` read the
        identity layer's stores at scrape time (counts only: no name or id becomes a label).
        A store the identity provider does not have reads as NaN, not as a reassuring 0."""
        provider = self.identity_provider
        metrics = default_metrics()

        def live_tokens() -> float:
            store = getattr(provider, "token_store", None)
            records = getattr(store, "list", None)
            if not callable(records):
                return float("nan")
            now = time.time()
            try:
                return float(sum(1 for r in records() if not r.expired(now)))
            except (OSError, ValueError):
                return float("nan")

        def active_sessions() -> float:
            for name in ("session_store", "sessions"):
                store = getattr(provider, name, None)
                count = getattr(store, "active_count", None)
                if callable(count):
                    return float(count())
                if store is not None and hasattr(store, "__len__"):
                    return float(len(store))
            return float("nan")

        metrics.bind_live_tokens(live_tokens)
        metrics.bind_active_sessions(active_sessions)

    def close_audit_trail(self) -> None:
        """Write the ``close`` record (and a last checkpoint) and release the file."""
        for timer in (self._audit_sync, self._audit_watch):
            if timer is not None:
                timer.stop()
        self._audit_sync = self._audit_watch = None
        trail, self.audit_trail = self.audit_trail, None
        if trail is None:
            return
        if audit_state().trail is trail:
            uninstall()
            install_activity(None)
        try:
            trail.close()
        except OSError as exc:
            self.log.error("audit trail: could not close cleanly: %s", exc)

    async def _cleanup(self) -> None:
        """A stop a client asked for (``POST /api/shutdown``, ``hardened-server stop``) is one
        record, HS-SERVER-001, with the user who asked; what the stop closed on the way (each
        terminal) is folded into it. A stop by signal has no request: its record is the
        trail's ``close``."""
        request = current_request()
        if request is None:
            try:
                await super()._cleanup()
            finally:
                self.close_audit_trail()
            return
        notes: list[str] = []
        try:
            with folded() as notes:
                await super()._cleanup()
        finally:
            record_event(
                request,
                EventKind.SERVER_STOP_REQUESTED,
                rule_id=Rule.SERVER_STOP_REQUESTED,
                allowed=True,
                reason="server stop requested"
                + (f" (closed with it: {'; '.join(notes)})" if notes else ""),
            )
            self.close_audit_trail()

    def init_signal(self) -> None:
        """Every stop signal goes through the shutdown path that writes the ``close`` record.

        Stock jupyter_server installs a SIGINT handler only when stdin is a TTY (the
        confirmation prompt); without one, SIGINT is a ``KeyboardInterrupt`` that ends the IO
        loop and skips ``_cleanup``. JupyterHub's spawners stop a server with SIGINT and no
        TTY (jupyterhub/jupyterhub#4864 routes it to ``_signal_stop`` for its own app), so
        every hub stop read as a crash in the trail (issue #19). On a TTY the prompt stays."""
        super().init_signal()
        if not (sys.stdin and sys.stdin.isatty()):
            signal.signal(signal.SIGINT, self._signal_stop)

    def start_ioloop(self) -> None:
        """Whatever ends the IO loop (a ``KeyboardInterrupt`` a handler did not catch, an
        extension stopping it), the trail is closed on the way out: a ``close`` record means
        the server stopped, its absence that it was killed.

        Before the loop starts, what start-up built (jupyter_server, the extensions, the
        compiled policy: most of the heap, and alive until the end) is moved out of the cyclic
        collector's generations (``gc.freeze``, Python's advice for a long-running process).
        Every full collection walked it again: pauses of 0.3-0.5 s under a connection flood,
        whose closed connections leave cyclic garbage (tests/hostile/test_connection_floods.py
        measures the owner's latency through one)."""
        gc.collect()
        gc.freeze()
        try:
            super().start_ioloop()
        finally:
            self.close_audit_trail()

    def load_server_extensions(self) -> None:
        super().load_server_extensions()
        self.verify_after_extensions()
        self.record_sensitive_allows()

    def record_sensitive_allows(self) -> None:
        """A kernel started, restarted, interrupted or shut down, a terminal created or closed
        and a frontend config section written are recorded like a file write: one record each,
        with the request and user of the handler that asked (``CallContext``). Hooked on the
        managers' instances, so every route that starts one (``/api/kernels``, ``/api/sessions``,
        ``/api/terminals``, ``/api/config``, an extension, the culler) is covered; a session
        operation folds its kernel's records into its own (enforcement/kernelsessions.py)."""
        km = getattr(self, "kernel_manager", None)
        if km is not None and not getattr(km.start_kernel, "_hs_recorded", False):
            km.start_kernel = _recorded_kernel_start(km.start_kernel)
        for name, kind, rule, reason in (
            (
                "restart_kernel",
                EventKind.KERNEL_RESTARTED,
                Rule.KERNEL_RESTARTED,
                "kernel restarted",
            ),
            (
                "interrupt_kernel",
                EventKind.KERNEL_INTERRUPTED,
                Rule.KERNEL_INTERRUPTED,
                "kernel interrupted",
            ),
            (
                "shutdown_kernel",
                EventKind.KERNEL_SHUTDOWN,
                Rule.KERNEL_SHUTDOWN,
                "kernel shut down",
            ),
        ):
            method = getattr(km, name, None) if km is not None else None
            if method is not None and not getattr(method, "_hs_recorded", False):
                setattr(km, name, _recorded_kernel_action(method, kind, rule, reason))
        tm = self.web_app.settings.get("terminal_manager")
        if tm is not None and not getattr(tm.create, "_hs_recorded", False):
            tm.create = _recorded_terminal_create(tm.create)
        if tm is not None and not getattr(tm.terminate, "_hs_recorded", False):
            tm.terminate = _recorded_terminal_close(tm.terminate)
        config = self.web_app.settings.get("config_manager")
        for name, how in (("set", "replaced"), ("update", "updated")):
            method = getattr(config, name, None) if config is not None else None
            if method is not None and not getattr(method, "_hs_recorded", False):
                setattr(config, name, _recorded_config_write(method, how))

    def enabled_extensions(self) -> list[str]:
        """The names of the server extensions that are enabled (``jpserver_extensions``)."""
        manager = getattr(self, "extension_manager", None)
        packages = getattr(manager, "extensions", {}) or {}
        return [name for name, package in packages.items() if getattr(package, "enabled", False)]

    def verify_after_extensions(self) -> None:
        # A front-end that cannot work strictly is refused first, with what to use instead
        # (its routes would otherwise be refused one by one, suggesting the wrong fix).
        self._refuse(check_extensions(self.enabled_extensions()))
        runtime: PolicyRuntime = self.web_app.settings[SETTINGS_KEY]
        # JupyterLab copies the start-up token into every page's config; blank it (an XSS
        # must not find a long-lived credential in the page).
        page_config = self.web_app.settings.get("page_config_data")
        if isinstance(page_config, dict) and "token" in page_config:
            page_config["token"] = ""
        runtime.set_script_hashes(trusted_script_hashes(self.web_app.settings))
        facts = wrap_rules(self.web_app.default_router, self.base_url)
        problems = check_routes(facts, self.policy)
        problems += self.accept_composed_contents_manager()
        problems += check_drift(self._hs_snapshot, snapshot_settings(self.web_app.settings))
        self._refuse(problems)
        self._hs_route_facts = facts
        self.warn_unmapped_routes()

    def accept_composed_contents_manager(self) -> list[UnsafeStartup]:
        """An extension may replace the contents manager after start-up (jupytext's server
        extension builds ``build_async_jupytext_contents_manager_class(<configured class>)``
        and swaps an instance into the app, the session manager and the web app's settings).
        Built on :class:`HardenedContentsManager`, the replacement still asks the path policy
        at every operation (the extension's code calls ours through ``super()`` for every file
        it touches): accepted, said in the log, and the drift snapshot follows it. Anything
        else is refused with HS-START-011 (and never compared with ``==``: see
        :func:`~hardened_server.policy.startup.same_setting`)."""
        before = self._hs_snapshot.get("contents_manager")
        holders = {
            "web application setting 'contents_manager'": self.web_app.settings.get(
                "contents_manager"
            ),
            "ServerApp.contents_manager": self.contents_manager,
            "SessionManager.contents_manager": getattr(
                self.session_manager, "contents_manager", None
            ),
        }
        current = holders["web application setting 'contents_manager'"]
        if all(manager is before for manager in holders.values()):
            return []
        # Decided here, one way or the other: the drift check does not report it again.
        self._hs_snapshot["contents_manager"] = current
        problems = []
        for holder, manager in holders.items():
            if manager is not before:
                problems += check_contents_manager(
                    _qualname(type(manager)),
                    isinstance(manager, HardenedContentsManager),
                    who=f"a server extension (in {holder})",
                )
        if problems:
            return problems
        if any(manager is not current for manager in holders.values()):
            return [
                UnsafeStartup(
                    Rule.START_SETTINGS_DRIFT,
                    "a server extension replaced the contents manager in some places but not "
                    "in others: " + ", ".join(sorted(holders)),
                    setting="ServerApp.contents_manager_class",
                    fix="disable the extension that replaces the contents manager, or set its "
                    "class as ServerApp.contents_manager_class (built on "
                    "HardenedContentsManager)",
                )
            ]
        self.log.info(
            "contents manager replaced by a server extension: %s, built on "
            "HardenedContentsManager; the paths policy still decides every operation",
            _qualname(type(current)),
        )
        return []

    def unmapped_routes(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(pattern, handler, methods it implements) of every non-public route the route map
        does not know: every request to it is refused (HS-SCOPE-002) until ``scopes.routes``
        maps it."""
        out: list[tuple[str, str, tuple[str, ...]]] = []
        seen: set[tuple[str, str]] = set()
        for entry in route_inventory(self.web_app):
            if entry.unmapped and (entry.pattern, entry.handler) not in seen:
                seen.add((entry.pattern, entry.handler))
                out.append((entry.pattern, entry.handler, entry.methods))
        return out

    def warn_unmapped_routes(self) -> None:
        for name in self.policy.profiles:
            self.log.info(
                "hardened-server: extension profile for %s applied (policies/extensions/%s.toml; "
                "off: scopes.disabled_extension_profiles)",
                name,
                name,
            )
        for pattern, handler, methods in self.unmapped_routes():
            self.log.warning(
                f"[{Rule.SCOPE_UNMAPPED}] route %r (%s) is not in the route map: every request "
                "to it is refused (403) until the policy maps it, e.g. %s, narrowed to what the "
                "handler needs (`hardened-server policy suggest` drafts every unmapped route; "
                'SECURITY.md, "Scopes and the route map")',
                pattern,
                handler,
                hint_entry(pattern, methods),
            )

    def route_facts(self) -> list[RouteFact]:
        """Every handler rule of the running application (the audit's route inventory)."""
        return wrap_rules(self.web_app.default_router, self.base_url)

    # -- the one login URL -------------------------------------------------------------------

    def _get_urlparts(
        self, path: str | None = None, include_token: bool = False, ip: str | None = None
    ) -> Any:
        """Stock prints the token in several banner lines and the browser-open file; here no
        URL jupyter_server builds carries it. :meth:`start_app` prints the login URL once."""
        return super()._get_urlparts(path=path, include_token=False, ip=ip)

    def login_url_once(self) -> str:
        parts = super()._get_urlparts(include_token=True)
        # Comparing, not binding: a wildcard bind is reached on loopback from this machine.
        if self.ip in ("", "0.0.0.0", "::"):  # noqa: S104  # nosec B104
            parts = parts._replace(netloc=f"127.0.0.1:{self.port}")
        return parts.geturl()

    # -- live reload ---------------------------------------------------------------------------

    def install_reload_signal(self) -> None:
        """SIGHUP reloads the policy. The handler runs as a callback of the event loop (asyncio's
        signal handling), between two requests, never inside one."""
        if not hasattr(signal, "SIGHUP"):
            return
        # Since tornado 5 every IOLoop is an asyncio one (tornado.platform.asyncio).
        loop = cast("BaseAsyncIOLoop", ioloop.IOLoop.current()).asyncio_loop
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload_policy, "SIGHUP")
        except (NotImplementedError, RuntimeError, ValueError) as exc:  # not the main thread
            self.log.warning("SIGHUP policy reload not available here: %s", exc)

    def reload_layers(self) -> list[str]:
        """Exactly the layers the policy in force was built from (its ``sources`` after the
        shipped default), so a reload re-reads what start-up read, however a subclass chose
        them."""
        if self._policy is None:
            return self.policy_layers()
        return list(self._policy.sources[1:])

    def _policy_file_digest(self) -> str:
        """Content digest of every policy file and its signature (missing files count)."""
        digest = hashlib.sha256()
        for name in self.reload_layers():
            path = resolve_policy_path(name)
            for candidate in (path, signature_path(path)):
                try:
                    with open(candidate, "rb") as fh:
                        digest.update(hashlib.sha256(fh.read()).digest())
                except OSError:
                    digest.update(b"-")
        return digest.hexdigest()

    _hs_watched_digest = ""

    def _watch_policy_files(self) -> None:
        if self._policy_file_digest() != self._hs_watched_digest:
            self.reload_policy("file change")

    def reload_policy(self, trigger: str = "SIGHUP") -> bool:
        """Re-read, verify, validate and check the policy files, then swap the compiled policy
        in as a whole: requests already running finish under the old one, the next request
        sees the new one. Anything wrong (unreadable, invalid, badly signed, unsafe for this
        server, or changing a key that only a restart can apply) keeps the old policy in force.
        Either way one ``policy_reloaded`` event is recorded."""
        runtime: PolicyRuntime = self.web_app.settings[SETTINGS_KEY]
        old = runtime.current.policy
        if self.policy_watch_interval > 0:
            # One attempt (and one record) per content, whatever triggered it.
            self._hs_watched_digest = self._policy_file_digest()
        try:
            new = load_policy(
                self.reload_layers(),
                verifier=self.policy_verifier(),
                extensions=self.profiled_extensions(),
            )
            pending = restart_only_changes(old, new)
            if pending:
                raise PolicyReloadRefused("needs a restart to change: " + "; ".join(pending))
            problems = self.configuration_problems(new)
            problems += check_routes(getattr(self, "_hs_route_facts", ()), new)
            problems += self._served_file_problems(new)
            if problems:
                raise PolicyReloadRefused(
                    "unsafe for this server: "
                    + " | ".join(str(p).replace("\n", " ") for p in problems)
                )
            runtime.swap(new)
            self._policy = new
        except (PolicyError, PolicyReloadRefused, KeyFileError) as exc:
            reason = str(exc).replace("\n", " ")
            self.log.error(
                "policy reload (%s) refused; the policy in force stays %s: %s",
                trigger,
                old.fingerprint,
                reason,
            )
            record_event(
                None,
                "policy_reloaded",
                rule_id=Rule.POLICY_RELOAD_REFUSED,
                allowed=False,
                reason=reason,
                fingerprint=old.fingerprint,
                trigger=trigger,
            )
            return False
        self.warn_unmapped_routes()
        changed = "unchanged" if new.fingerprint == old.fingerprint else f"was {old.fingerprint}"
        self.log.warning(
            "policy reloaded (%s): %s now in force (%s)", trigger, new.fingerprint, changed
        )
        record_event(
            None,
            "policy_reloaded",
            rule_id=Rule.POLICY_RELOAD_APPLIED,
            allowed=True,
            reason=f"policy {new.fingerprint} in force ({changed})",
            fingerprint=new.fingerprint,
            previous=old.fingerprint,
            trigger=trigger,
        )
        return True

    def running_server_info(self, kernel_count: bool = True) -> str:
        """Stock's lines without its "is running at: <url>" pair: that URL carries no token here
        (it would be the second of three URLs printed). :meth:`start_app` prints one banner."""
        info = super().running_server_info(kernel_count=kernel_count)
        url = self.display_url  # one line per address ("localhost" also shows 127.0.0.1)
        if url and info.endswith(url):
            info = info[: -len(url)].rstrip("\n").rpartition("\n")[0]
        return info

    def start_app(self) -> None:
        provider = self.identity_provider
        generated = bool(provider.token and getattr(provider, "token_generated", False))
        try:
            # Stock logs "To access the server, copy and paste one of these URLs" for a generated
            # token, with a URL _get_urlparts has stripped of it: the banner below replaces it.
            if generated:
                provider.token_generated = False
            super().start_app()
        finally:
            if generated:
                provider.token_generated = True
        self.install_reload_signal()
        if self.policy_watch_interval > 0:
            self._hs_watched_digest = self._policy_file_digest()
            self._hs_watcher = ioloop.PeriodicCallback(
                self._watch_policy_files, self.policy_watch_interval * 1000
            )
            self._hs_watcher.start()
        self.log.critical("%s", self.startup_banner(generated))
        self.install_log_scrubbing()

    def startup_banner(self, generated: bool) -> str:
        """The one banner: where the server is and how to log in (the URL that logs in when the
        token was generated here; otherwise how to use the token or password you gave), what
        the policy turned off that people look for, and how to stop it."""
        provider = self.identity_provider
        url = self.display_url.split("\n")[0].strip()
        if generated:
            login = (
                "Log in once with this URL (the token is exchanged for a session cookie):\n\n"
                f"        {self.login_url_once()}"
            )
        elif provider.token:
            source = "JUPYTER_TOKEN_FILE" if os.environ.get("JUPYTER_TOKEN_FILE") else (
                "JUPYTER_TOKEN" if os.environ.get("JUPYTER_TOKEN") else "your configured token"
            )
            login = (
                f"Log in with the token from {source}: open {url}?token=<the token> once, or "
                f"enter it at {self._login_page()}; scripts send 'Authorization: token <the "
                "token>'"
            )
        else:
            login = f"Log in with your password at {self._login_page()}"
        lines = [
            "",
            "",
            f"    hardened-server is running at {url}",
            "",
            "    " + login,
            "",
        ]
        if not self.terminals_enabled:
            lines.append(
                "    Terminals are off (policy key terminals.enabled; see `hardened-server "
                "policy explain terminals.enabled`)."
            )
        lines.append(
            f"    Stop it with Control-C or `hardened-server stop {self.sock or self.port}`."
        )
        return "\n".join(lines)

    def _login_page(self) -> str:
        parts = super()._get_urlparts(path=self.base_url + "login")
        if self.ip in ("", "0.0.0.0", "::"):  # noqa: S104  # nosec B104 - comparing, not binding
            parts = parts._replace(netloc=f"127.0.0.1:{self.port}")
        return str(parts.geturl())

    def install_log_scrubbing(self) -> None:
        """From here on no log line carries a token: not in a query string, not nested inside
        another parameter (``next=/lab%3Ftoken%3D...``), not in a Referer, fragment, cookie or
        Authorization value, and not the server token anywhere; client input is
        control-escaped (no forged lines). Installed after the one login URL above."""
        provider = self.identity_provider
        log_filter = ScrubLogFilter(lambda: tuple(t for t in (provider.token,) if t))
        # Every logger that writes somewhere: extension apps (LabApp, ...) log requests through
        # their own loggers and handlers, not the server's.
        with_handlers = [
            name
            for name, logger in logging.Logger.manager.loggerDict.items()
            if isinstance(logger, logging.Logger) and logger.handlers
        ]
        install_log_scrubbing(
            log_filter,
            (
                "",
                self.log.name,
                "tornado.access",
                "tornado.application",
                "tornado.general",
                "hardened_server",
                "hardened_server.decisions",
                *with_handlers,
            ),
        )


main = launch_new_instance = HardenedServerApp.launch_instance
