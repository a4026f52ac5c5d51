"""``audit --routes``: the route inventory of a configured application, initialised and never
started, in a fresh interpreter.

Why a child process: :class:`~hardened_server.app.HardenedServerApp` is a traitlets singleton,
initialising it imports and loads every enabled server extension (which keep module state), and
it writes a cookie secret into the runtime directory. The audit must see the configuration as
``hardened-server serve`` would, with none of that leaking into (or coming from) the auditing
process. So :func:`run_inventory` runs this module (``python -m hardened_server.audit.inventory
ARGV``), whose :func:`main` initialises the application with ``ARGV`` and prints one line,
``ROUTES-JSON`` followed by JSON: each route is
:meth:`hardened_server.enforcement.inventory.RouteEntry.as_dict` plus what only the audit asks
(the decorators found on each method, the ``@authorized`` resource and action, the CSP of the
route class). A start-up refusal does not stop the inventory: the problems are reported with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hardened_server.enforcement.handlers import authorized_claim
from hardened_server.enforcement.inventory import RouteEntry, compiled_policy, route_inventory

MARKER = "ROUTES-JSON"
_MAX_WRAPPERS = 16  # how far down a method's __wrapped__ chain to look


def decorator_names(method: Any) -> list[str]:
    """The tornado and jupyter_server decorators on ``method`` (``authenticated``,
    ``authorized``, ``ws_authenticated``, ``allow_unauthenticated`` ...), outermost first,
    found by walking ``__wrapped__`` (each decorator is a ``functools.wraps`` wrapper)."""
    names: list[str] = []
    layer, seen = method, 0
    if hasattr(method, "__allow_unauthenticated"):
        names.append("allow_unauthenticated")
    while layer is not None and seen < _MAX_WRAPPERS:
        code = getattr(layer, "__code__", None)
        if code is not None:
            fn = code.co_filename.replace("\\", "/")
            qual = getattr(code, "co_qualname", code.co_name)
            if fn.endswith(("tornado/web.py", "jupyter_server/auth/decorator.py")):
                name = qual.split(".<locals>")[0]
                if name not in names:
                    names.append(name)
        layer, seen = getattr(layer, "__wrapped__", None), seen + 1
    return names


def authorization(cls: type, http_method: str) -> str:
    """``resource:action`` of the ``@authorized`` decorator on ``cls``'s ``http_method`` (as
    :func:`hardened_server.enforcement.handlers.authorized_claim` reads it for the route map),
    or ``n/a``."""
    claim = authorized_claim(cls, http_method)
    return "n/a" if claim is None else f"{claim[0]}:{claim[1]}"


def audit_route(entry: RouteEntry, csp: Mapping[str, str]) -> dict[str, Any]:
    """One route as the audit reports it (the entry, then what only the audit asks)."""
    original = entry.original
    return {
        **entry.as_dict(),
        "decorators": {m: decorator_names(getattr(original, m.lower())) for m in entry.methods},
        "authorization": {
            m: authorization(original, m) for m in entry.methods
        },
        "csp": csp[entry.route_class.value],
    }


def _problem_rows(problems: Sequence[Any]) -> list[list[str]]:
    return [[p.rule_id, str(p), p.fix] for p in problems]


def inventory_document(argv: Sequence[str]) -> dict[str, Any]:
    """Initialise (never start) a HardenedServerApp with ``argv``; its routes and the start-up
    problems it found, or the refusal that stopped initialisation."""
    from hardened_server.app import HardenedServerApp, StartupRefused
    from hardened_server.policy.errors import UnsafeStartup

    problems: list[UnsafeStartup] = []

    class AuditedApp(HardenedServerApp):
        def verify_after_extensions(self) -> None:
            try:
                super().verify_after_extensions()
            except StartupRefused as exc:
                problems.extend(exc.problems)

    app = AuditedApp()
    try:
        app.initialize(argv=list(argv), new_httpserver=False)
    except StartupRefused as exc:
        return {"error": str(exc), "problems": _problem_rows(exc.problems)}
    csp = compiled_policy(app.web_app.settings).csp
    return {
        "routes": [audit_route(e, csp) for e in route_inventory(app.web_app)],
        "problems": _problem_rows(problems),
    }


def main(argv: Sequence[str] | None = None) -> int:
    doc = inventory_document(sys.argv[1:] if argv is None else argv)
    sys.stdout.write(MARKER + json.dumps(doc) + "\n")
    sys.stdout.flush()
    return 0


@dataclass(frozen=True)
class InventoryResult:
    routes: list[dict[str, Any]] | None  # None: no inventory (see error)
    problems: tuple[tuple[str, str, str], ...]  # (rule id, message, fix) of start-up checks
    error: str | None


def run_inventory(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: str | None = None,
    timeout: float = 120,
    python: str | os.PathLike[str] | None = None,
) -> InventoryResult:
    """Run :func:`main` in a fresh interpreter (this one's, or ``python``: another venv's, with
    the extensions installed there) with ``argv`` and ``env``; parse what it said."""
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module, argv is ours
        # -P: the current directory (an auditor may stand in a user's folder) is not put on
        # sys.path, so a `jupyter_server.py` or `hardened_server/` there is never imported.
        [os.fspath(python or sys.executable), "-P", "-m", "hardened_server.audit.inventory", *argv],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            doc = json.loads(line[len(MARKER) :])
            problems = tuple((str(a), str(b), str(c)) for a, b, c in doc.get("problems", []))
            if "error" in doc:
                return InventoryResult(None, problems, doc["error"])
            return InventoryResult(doc["routes"], problems, None)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
    return InventoryResult(
        None,
        (),
        f"the application could not be initialised (exit {proc.returncode}): "
        + " | ".join(tail),
    )


if __name__ == "__main__":  # pragma: no cover - run by run_inventory in a child process
    sys.exit(main())
