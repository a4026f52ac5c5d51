"""``hardened-server audit``: grade a configuration, a live server, its routes and extensions.

    hardened-server audit [--policy FILE]... [--config-dir DIR]... [--root-dir DIR] [--ip IP]
                          [--certfile F --keyfile F] [--routes] [--extensions [--extension N]...]
    hardened-server audit --url URL [--token-file FILE] [--ca-file PEM] [--no-websocket]
    common:               [--silence ID]... [--fail-on LEVEL] [--format text|json|sarif|html]
                          [--output FILE] [--list-checks]
    hardened-server audit verify-log ...      (the audit trail's own command)
    hardened-server audit query FILE... [--user U] [--since T] [--until T] [--kind K]
                                [--path GLOB] [--format text|json|csv|html]
    hardened-server audit hash [--policy FILE]... TEXT

The static audit (the default) evaluates the effective configuration the way hardened-server will
start with it: the layered policy, the Jupyter config files and environment, file permissions,
and the enabled extensions; ``--routes`` adds the inventory of every route of the configured
application, ``--extensions`` bandit over the extensions' code. ``--url`` audits a running server
(hardened-server or a stock Jupyter) from the outside instead. The token for a live audit comes
from ``JUPYTER_TOKEN`` or ``--token-file``, never from the command line.

Exit codes: 0 no finding at or above ``--fail-on`` (default: error), 1 there is one, 2 usage
errors and targets that cannot be audited.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from hardened_server.audit.checks import (
    KIND_EXTENSIONS,
    KIND_LIVE,
    KIND_ROUTES,
    KIND_STATIC,
    Severity,
    apply_silence,
    registry,
    run_checks,
)
from hardened_server.audit.report import RENDERERS, Report

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

FAIL_LEVELS = ("info", "warning", "error", "critical", "none")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hardened-server audit",
        description="Grade a configuration, a live server, its routes and its extensions.",
        allow_abbrev=False,  # "--token" must never be read as an abbreviation of --token-file
    )
    static = p.add_argument_group("static audit (default)")
    static.add_argument("--policy", action="append", default=[], metavar="FILE",
                        help="policy file layered over the default (repeatable)")
    static.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                        help="extra Jupyter config directory, searched first (repeatable)")
    static.add_argument("--root-dir", metavar="DIR", help="the directory the server will serve")
    static.add_argument("--ip", help="the address the server will bind to")
    static.add_argument("--certfile", help="TLS certificate the server will use")
    static.add_argument("--keyfile", help="TLS key the server will use")
    static.add_argument("--routes", action="store_true",
                        help="inventory every route of the configured application")
    static.add_argument("--extensions", action="store_true",
                        help="run bandit over the enabled server extensions' code (slow)")
    static.add_argument("--extension", action="append", default=[], metavar="NAME",
                        help="only this extension (repeatable; implies --extensions)")
    live = p.add_argument_group("live audit")
    live.add_argument("--url", help="audit the running server at this URL instead")
    live.add_argument("--token-file", metavar="FILE",
                      help="file holding the token (default: $JUPYTER_TOKEN)")
    live.add_argument("--token", dest="token_refused", metavar="TOKEN", nargs="?",
                      const="", default=None, help=argparse.SUPPRESS)
    live.add_argument("--ca-file", metavar="PEM", help="CA bundle for an https URL")
    live.add_argument("--timeout", type=float, default=8.0, help=argparse.SUPPRESS)
    live.add_argument("--no-websocket", action="store_true",
                      help="skip the websocket probe (it starts and deletes one kernel)")
    out = p.add_argument_group("output")
    out.add_argument("--silence", action="append", default=[], metavar="ID",
                     help="silence a check id (repeatable)")
    out.add_argument("--fail-on", default="error", choices=FAIL_LEVELS,
                     help="exit 1 if a finding is at or above this level (default: error)")
    out.add_argument("--format", default="text", choices=sorted(RENDERERS))
    out.add_argument("--output", metavar="FILE", help="write the report here (default: stdout)")
    out.add_argument("--list-checks", action="store_true", help="list every check and exit")
    return p


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _list_checks() -> str:
    lines = []
    for c in registry().values():
        lines.append(f"{c.id:<15} {c.severity.label:<8} {c.kind:<10} {c.title}")
    return "\n".join(lines) + "\n"


def _read_token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise _UsageError(f"cannot read --token-file: {exc.strerror}") from None
    return os.environ.get("JUPYTER_TOKEN") or None


def _static(args: argparse.Namespace) -> Report:
    from hardened_server.audit.facts import gather_facts

    start = time.perf_counter()
    extensions = args.extensions or bool(args.extension)
    facts = gather_facts(
        policy_files=args.policy,
        config_dirs=args.config_dir,
        root_dir=args.root_dir,
        ip=args.ip,
        certfile=args.certfile,
        keyfile=args.keyfile,
        routes=args.routes,
        extensions=extensions,
        extension_names=args.extension,
    )
    kinds = [KIND_STATIC]
    if args.routes:
        kinds.append(KIND_ROUTES)
    if extensions:
        kinds.append(KIND_EXTENSIONS)
    findings = run_checks(facts, kinds, args.silence)
    policy = facts.policy
    target: dict[str, Any] = {
        "policy_layers": list(policy.sources) if policy else ["default", *facts.policy_files],
        "policy_fingerprint": policy.fingerprint if policy else None,
        "config_files": [c.path for c in facts.config_files],
        "root_dir": facts.root_dir,
        "ip": facts.ip,
    }
    extension_rows = None
    if extensions:
        per_ext: dict[str, list[int]] = {}
        for i in facts.bandit or ():
            counts = per_ext.setdefault(i.extension, [0, 0])
            counts[0 if i.severity.upper() == "MEDIUM" else 1] += 1
        extension_rows = [
            {"name": e.name, "enabled": e.enabled, "source": e.source,
             "module_path": e.module_path,
             "bandit_issues": "/".join(map(str, per_ext.get(e.name, [0, 0])))}
            for e in facts.extensions
        ]
    notes = []
    if facts.routes_error:
        notes.append(f"route inventory unavailable: {facts.routes_error}")
    return Report(
        modes=kinds,
        findings=findings,
        checks_run=[c.id for c in registry().values() if c.kind in kinds],
        seconds=time.perf_counter() - start,
        target=target,
        silenced_ids=list(args.silence),
        routes=[r.as_dict() for r in facts.routes] if facts.routes is not None else (
            [] if args.routes else None
        ),
        extensions=extension_rows,
        notes=notes,
    )


def _live(args: argparse.Namespace) -> Report:
    from hardened_server.audit.probes import run_live

    token = _read_token(args)
    start = time.perf_counter()
    result = run_live(args.url, token, ca_file=args.ca_file, timeout=args.timeout,
                      websocket=not args.no_websocket)
    findings = apply_silence(result.findings, args.silence)
    return Report(
        modes=[KIND_LIVE],
        findings=findings,
        checks_run=[c.id for c in registry().values() if c.kind == KIND_LIVE],
        seconds=time.perf_counter() - start,
        target={"url": result.url,
                "server_header": ", ".join(result.server.get("server_headers", []))},
        silenced_ids=list(args.silence),
        probes=[p.as_dict() for p in result.probes],
        notes=result.notes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify-log":
        from hardened_server.trail.verify import main as verify_main

        return int(verify_main(argv[1:]))
    if argv and argv[0] == "query":
        from hardened_server.trail.query import main as query_main

        return int(query_main(argv[1:]))
    if argv and argv[0] == "hash":
        from hardened_server.audit.texthash import main as hash_main

        return int(hash_main(argv[1:]))
    try:
        args = build_parser().parse_args(argv)
        if args.token_refused is not None or any(
            a == "--token" or a.startswith("--token=") for a in argv
        ):
            raise _UsageError(
                "--token is refused: a token on the command line is visible to every user of "
                "this machine (ps, /proc) and kept in shell history. Put it in JUPYTER_TOKEN or "
                "in a file given with --token-file (mode 0600)."
            )
        if args.list_checks:
            _write(_list_checks(), args.output)
            return EXIT_OK
        unknown = [s for s in args.silence if s not in registry()]
        if unknown:
            raise _UsageError("--silence: unknown check id(s) " + ", ".join(unknown)
                              + " (see --list-checks)")
        if args.url and (args.routes or args.extensions or args.extension or args.policy):
            raise _UsageError("--url audits a running server; --policy, --routes and "
                              "--extensions are for the static audit")
        if bool(args.certfile) != bool(args.keyfile):
            raise _UsageError("--certfile and --keyfile go together")
        report = _live(args) if args.url else _static(args)
    except _UsageError as exc:
        _err(f"hardened-server audit: {exc}")
        return EXIT_USAGE
    except Exception as exc:
        from hardened_server.audit.probes import LiveAuditError

        if isinstance(exc, LiveAuditError):
            _err(f"hardened-server audit: {exc}")
            return EXIT_USAGE
        raise
    _write(RENDERERS[args.format](report), args.output)
    fail_on = None if args.fail_on == "none" else Severity.parse(args.fail_on)
    return EXIT_FINDINGS if report.fails(fail_on) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
