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
from hardened_server.policy.hub import EXIT_REFUSED, check_hub_environment
from hardened_server.policy.rules import Rule


def main(argv: Sequence[str]) -> int:
    """``hardened-server singleuser ARGS``: 0 after a clean stop, 2 when refused."""
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
