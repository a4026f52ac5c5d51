"""Which server extensions with a shipped extension profile are installed and enabled.

An extension profile (``policies/extensions/<extension>.toml``, loaded by
:func:`hardened_server.policy.loader.load_policy`) is applied only for an extension that is both
enabled as a server extension and installed: enabled is what jupyter_server itself would load
(``ServerApp.jpserver_extensions``, merged from the ``jupyter_server_config.d`` files by
jupyter_server's own :class:`~jupyter_server.extension.config.ExtensionConfigManager`, with the
command line and config files winning), installed is that its module can be found. The server
and ``policy show``/``explain`` ask this function; the audit applies the same rule to the
configuration it reads itself (``hardened_server.audit.facts.enabled_extensions``, which honours
its ``--config-dir``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping

from hardened_server.policy.loader import extension_profiles


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it: profiled extensions are
    top-level modules, so nothing runs)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def profiled_extensions(
    config_paths: Iterable[str], overrides: Mapping[str, object] | None = None
) -> list[str]:
    """The server extensions that have a shipped profile and are enabled (in the
    ``jupyter_server_config`` files under ``config_paths``, then ``overrides``: the application's
    own ``jpserver_extensions``, command line included) and installed."""
    from jupyter_server.extension.config import ExtensionConfigManager

    manager = ExtensionConfigManager(read_config_path=list(config_paths))
    enabled: dict[str, object] = dict(manager.get_jpserver_extensions())
    enabled.update(overrides or {})
    shipped = extension_profiles()
    return sorted(n for n, on in enabled.items() if on and n in shipped and is_installed(n))
