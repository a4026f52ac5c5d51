"""``hardened-server singleuser``: hardened-server as JupyterHub's single-user server.

    hardened-server singleuser [--policy FILE]... [--allow-root] [--ServerApp.x=y ...]

The environment is checked first (:func:`hardened_server.policy.hub.check_hub_environment`), so
that a refusal costs no jupyter_server import; the app is
:class:`hardened_server.hub.HardenedSingleUserApp`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from hardened_server.policy.errors import PolicyError
from hardened_server.policy.hub import (
    ACCESS_SCOPES_ENV,
    EXIT_REFUSED,
    REQUIRED_ENV,
    check_hub_environment,
)
from hardened_server.policy.rules import Rule

HELP_FLAGS = frozenset({"-h", "--help", "--help-all"})


def usage() -> str:
    """What ``singleuser --help`` prints: the command line and the environment it needs."""
    lines = [
        "usage: hardened-server singleuser [--policy FILE]... [--allow-root] [--ServerApp.x=y ...]",
        "",
        "hardened-server as JupyterHub's single-user server: set the Spawner's cmd to",
        "`hardened-server singleuser`; the hub's spawner sets this environment, without which",
        "the command refuses to start (exit 2):",
    ]
    width = max(len(name) for name, _ in REQUIRED_ENV)
    lines += [f"  ${name:<{width}}  {why}" for name, why in REQUIRED_ENV]
    lines.append(
        f"  ${ACCESS_SCOPES_ENV[0]} (or ${ACCESS_SCOPES_ENV[1]}): the hub scopes that admit a "
        "user to this server"
    )
    lines += [
        "",
        "The jupyterhub policy profile is applied on top of the embedded defaults; `--policy`",
        "layers are applied after it. To run without a hub, use `hardened-server serve`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    """``hardened-server singleuser ARGS``: 0 after a clean stop, 2 when refused."""
    if HELP_FLAGS.intersection(argv):
        sys.stdout.write(usage())
        return 0
    problems = check_hub_environment(os.environ)
    if problems:
        sys.stderr.write(
            "hardened-server singleuser: refusing to start\n"
            + "\n".join(str(p) for p in problems)
            + "\n"
        )
        return EXIT_REFUSED
    # Imported only now: a refusal above costs no jupyter_server import.
    from hardened_server.app import StartupRefused
    from hardened_server.hub import IMPORT_ERROR, HardenedSingleUserApp, disable_user_config

    if IMPORT_ERROR is not None:
        sys.stderr.write(
            "hardened-server singleuser: refusing to start\n"
            f"[{Rule.HUB_EXTENSION}] JupyterHub is not installed ({IMPORT_ERROR})\n"
            "  fix: pip install 'hardened-server[jupyterhub]' (the same jupyterhub version as "
            "the hub)\n"
        )
        return EXIT_REFUSED
    try:
        app = HardenedSingleUserApp.instance()
        disable_user_config(app)
        app.initialize(list(argv))
        app.start()
    except PolicyError as exc:
        sys.stderr.write(f"hardened-server singleuser: bad policy\n{exc}\n")
        return EXIT_REFUSED
    except StartupRefused as exc:
        sys.stderr.write(f"hardened-server singleuser: refusing to start\n{exc}\n")
        return EXIT_REFUSED
    return 0
