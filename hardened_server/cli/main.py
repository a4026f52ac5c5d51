"""``hardened-server``: serve, and inspect policies.

    hardened-server serve [--policy FILE]... [--ip IP] [--port N] [--root-dir DIR]
                          [--certfile F --keyfile F] [--ServerApp.x=y ...]
    hardened-server singleuser [--policy FILE]... [--ServerApp.x=y ...]   (started by JupyterHub)
    hardened-server policy show [--policy FILE]... [--json]
    hardened-server policy explain KEY [--policy FILE]...
    hardened-server policy validate FILE... [--pubkey PEM]...
    hardened-server policy keygen PATH          (writes PATH, mode 0600, and PATH.pub)
    hardened-server policy sign --key PEM FILE...   (writes FILE.sig)
    hardened-server policy verify --pubkey PEM... FILE...
    hardened-server policy schema
    hardened-server policy reference
    hardened-server audit [--policy FILE]... [--url URL] [--routes] [--extensions]
                          [--format text|json|sarif|html] [--fail-on LEVEL] [--silence ID]...
    hardened-server audit verify-log [--stream] FILE... [--public-key PEM]
    hardened-server audit query FILE... [--user U] [--since T] [--until T] [--kind K]
                                [--path GLOB] [--format text|json|csv|html]
    hardened-server audit hash [--policy FILE]... TEXT   (the HMAC a record holds for TEXT)
    hardened-server token create --name N --scope S [--scope S]... [--expires 7d] [--store F]
    hardened-server token list [--json] | revoke ID | rotate ID [--expires D]
    hardened-server password            (reads the password from the terminal or stdin)
    hardened-server list [--json]       running servers: URL, how to log in, how to stop
    hardened-server stop PORT|SOCKET    graceful stop (SIGTERM) of this user's server there

Exit codes: 0 ok, 1 usage (audit: a finding at or above --fail-on), 2 a bad policy or a refused
start-up (audit: usage or an unreachable target).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hardened_server import __version__
from hardened_server.fsutil import atomic_write
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import (
    baseline_policy,
    build_policy,
    default_layer,
    load_policy,
    loosening_verb,
    loosenings,
    read_layer,
    shipped_profiles,
    unscoped_entries,
)
from hardened_server.policy.schema import (
    FIELDS,
    SCHEMA,
    Kind,
    Schema,
    describe_allowed,
    json_schema,
)
from hardened_server.policy.signing import (
    KeyFileError,
    PolicyVerifier,
    generate_keypair,
    load_private_key,
    sign_bytes,
    signature_path,
)

EXIT_USAGE = 1
EXIT_REFUSED = 2


def _fmt(value: Any) -> str:
    if value is None:
        return "false (directive removed)"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return json.dumps(value)


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def cmd_serve(argv: Sequence[str]) -> int:
    from hardened_server.app import HardenedServerApp, StartupRefused

    try:
        HardenedServerApp.launch_instance(argv=list(argv))
    except (PolicyError, KeyFileError) as exc:
        _err(f"hardened-server: bad policy\n{exc}")
        return EXIT_REFUSED
    except StartupRefused as exc:
        _err(f"hardened-server: refusing to start\n{exc}")
        return EXIT_REFUSED
    return 0


def _load_with_profiles(files: Sequence[str]) -> Any:
    """The policy as ``serve`` would build it here: the shipped extension profiles of the server
    extensions installed and enabled in this environment's Jupyter configuration included."""
    from jupyter_core.paths import jupyter_config_path

    from hardened_server.enforcement.extensions import profiled_extensions

    return load_policy(files, extensions=profiled_extensions(jupyter_config_path()))


def _profile_lines(policy: Any) -> list[str]:
    out = []
    for name in policy.profiles:
        out.append(f"extension profile: {name}")
    for entry, source in sorted(policy.entry_provenance.items()):
        out.append(f"  {entry}    # {source}")
    return out


def cmd_policy_show(args: argparse.Namespace) -> int:
    policy = _load_with_profiles(args.policy)
    if args.json:
        doc = {
            "fingerprint": policy.fingerprint,
            "sources": list(policy.sources),
            "extension_profiles": list(policy.profiles),
            "entry_provenance": dict(policy.entry_provenance),
            "values": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in policy.values.items()
            },
            "provenance": dict(policy.provenance),
        }
        _out(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    _out(f"fingerprint: {policy.fingerprint}")
    layers = [policy.sources[0], *(f"{n} (extension profile)" for n in policy.profiles)]
    _out("layers: " + " -> ".join([*layers, *policy.sources[1:]]))
    for line in _profile_lines(policy):
        _out(line)
    for key in sorted(policy.values):
        _out(f"{key} = {_fmt(policy.values[key])}    # {policy.provenance[key]}")
    loose = loosenings(policy)
    if loose:
        _out("")
        _out("loosened or changed from the shipped default:")
        for key, _value, _default, source in loose:
            _out(f"  {key}    # {source}")
    return 0


def cmd_policy_explain(args: argparse.Namespace) -> int:
    policy = _load_with_profiles(args.policy)
    key = args.key
    if key not in FIELDS:
        matches = sorted(k for k in FIELDS if k.startswith(key + "."))
        if not matches:
            _err(f"unknown policy key {key!r}; see `hardened-server policy reference`")
            return EXIT_USAGE
        for sub in matches:
            if sub in policy.values:
                _explain_one(policy, sub)
        return 0
    _explain_one(policy, key)
    return 0


def _explain_one(policy: Any, key: str) -> None:
    field = FIELDS[key]
    default = baseline_policy(policy.profiles).values.get(key)
    value = policy.values.get(key)
    _out(f"{key} = {_fmt(value) if key in policy.values else '(not set)'}")
    _out(f"  set by: {policy.provenance.get(key, '(not set by any layer)')}")
    for entry, source in sorted(policy.entry_provenance.items()):
        if entry.startswith(key + " "):
            _out(f"  entry {entry[len(key) + 1:]} set by: {source}")
    shown = " with the extension profiles" if policy.profiles else ""
    _out(f"  shipped default{shown}: {_fmt(default)}")
    verb = loosening_verb(key, value, default)
    if verb:
        _out(f"  {verb} relative to the shipped default")
        unscoped = unscoped_entries(value) if field.kind == Kind.ROUTEMAP else []
        for entry in unscoped:
            _out(f"    {entry}: any logged-in user, no scope")
    steps = policy.history.get(key, ())
    if field.kind == Kind.LIST and steps:
        _out("  merge (layer by layer):")
        for step in steps:
            if step.how == "extend":
                _out(f"    {step.source}: extend + {_fmt(step.value)}")
            else:
                _out(f"    {step.source}: set {_fmt(step.value)}")
            if step.dropped:
                _out(f"      dropped {_fmt(step.dropped)} (write {key} = {{ extend = [...] }} "
                     "to add to the list instead)")
    _out(f"  allowed: {describe_allowed(field)}")
    _out(f"  meaning: {field.doc}")


def cmd_policy_validate(args: argparse.Namespace) -> int:
    verifier = PolicyVerifier.from_paths(args.pubkey) if args.pubkey else None
    status = 0
    for path in args.files:
        try:
            build_policy([default_layer(), read_layer(path, verifier=verifier)])
        except PolicyError as exc:
            _err(str(exc))
            status = EXIT_REFUSED
        else:
            _out(f"{path}: ok" + (" (signature good)" if verifier else ""))
    return status


def cmd_policy_suggest(args: argparse.Namespace) -> int:
    """A draft policy layer mapping every route of the configured application that the route
    map does not know (the installed extensions' routes no profile covers), with the methods
    each handler really implements; for a person to review (hardened_server/policy/suggest.py).
    The application is initialised, never started, in a child interpreter, as ``audit --routes``
    does (hardened_server/audit/inventory.py)."""
    from hardened_server.audit.facts import route_inventory
    from hardened_server.policy.suggest import UnmappedRoute, draft_layer

    policy = _load_with_profiles(args.policy)
    records, _problems, error = route_inventory(
        args.policy, root_dir=args.root_dir, config_dirs=(), env=os.environ
    )
    if records is None:
        _err(f"hardened-server: the application did not initialise: {error}")
        return EXIT_REFUSED
    seen: set[str] = set()
    routes = []
    for r in records:
        if r.public or r.scope_source != "unmapped" or r.pattern in seen:
            continue
        seen.add(r.pattern)
        routes.append(
            UnmappedRoute(
                pattern=r.pattern,
                handler=r.handler,
                methods=tuple(m for m in r.methods if m != "OPTIONS"),
                websocket="websocket" in r.kinds,
                undecorated=tuple(r.undecorated),
                authorization=dict(r.authorization),
            )
        )
    keep = [
        p
        for p in policy.routes.accept_undecorated
        if f"routes.accept_undecorated {p}" not in policy.entry_provenance
    ]
    header = [
        f"hardened-server policy suggest: {len(routes)} unmapped route(s)",
        "policy: " + " -> ".join([*policy.sources[:1], *policy.profiles, *policy.sources[1:]]),
    ]
    text = draft_layer(routes, header=header, keep_accepted=keep)
    if args.output:
        try:
            _write_new(args.output, text.encode(), 0o644)
        except FileExistsError:
            _err(f"{args.output}: exists; not overwriting (choose another path)")
            return EXIT_USAGE
        _out(f"{args.output}: {len(routes)} route(s) drafted; review, then --policy {args.output}")
    else:
        _out(text.rstrip("\n"))
    return 0


def _write_new(path: str, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode``; never overwrite (a key pair is not replaced by accident)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def cmd_policy_keygen(args: argparse.Namespace) -> int:
    private_pem, public_pem = generate_keypair()
    public_path = args.path + ".pub"
    for path in (args.path, public_path):
        if os.path.lexists(path):
            _err(f"{path}: exists; not overwriting a key (choose another path)")
            return EXIT_USAGE
    _write_new(args.path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    _out(f"private key: {args.path} (keep it off the server)")
    _out(f"public key:  {public_path} (give it to the server: --policy-pubkey)")
    return 0


def cmd_policy_sign(args: argparse.Namespace) -> int:
    key = load_private_key(args.key)
    status = 0
    for path in args.files:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            # Never sign what the server would refuse anyway.
            build_policy([default_layer(), read_layer(path)])
        except PolicyError as exc:
            _err(f"{exc}\nnot signed")
            status = EXIT_REFUSED
            continue
        except OSError as exc:
            _err(f"{path}: cannot be read ({exc.strerror}); not signed")
            status = EXIT_REFUSED
            continue
        sig = signature_path(path)
        atomic_write(os.fspath(sig), sign_bytes(data, key).encode("ascii"), 0o644)
        _out(f"{path}: signed -> {sig}")
    return status


def cmd_policy_verify(args: argparse.Namespace) -> int:
    verifier = PolicyVerifier.from_paths(args.pubkey)
    status = 0
    for path in args.files:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            _err(f"{path}: cannot be read ({exc.strerror})")
            status = EXIT_REFUSED
            continue
        try:
            kid = verifier(path, Path(path), data)
        except PolicyError as exc:
            _err(str(exc))
            status = EXIT_REFUSED
        else:
            _out(f"{path}: signature good (key {kid})")
    return status


def cmd_policy_schema(_args: argparse.Namespace) -> int:
    _out(json.dumps(json_schema(), indent=2))
    return 0


def reference_markdown(*, schema: Schema = SCHEMA) -> str:
    """The policy reference, generated from the schema and the default profile."""
    default = build_policy([default_layer(schema=schema)], schema=schema)
    fields = schema.fields
    lines = [
        "# Policy reference",
        "",
        "Generated by `hardened-server policy reference` from the schema "
        "(`hardened_server/policy/schema.py`) and the shipped default profile "
        "(`policies/default.toml`). Do not edit by hand: `make docs` regenerates it and a test "
        "fails when it is stale.",
        "",
        "Policy files are TOML. Layers apply in order: the default profile, then each "
        "`--policy FILE`; a later layer wins key by key (a CSP directive as a whole; a list as "
        "a whole, unless written `key = { extend = [...] }`, which appends to it). Unknown "
        "keys are errors. *Loosens when* says which change `policy explain` and `audit` report "
        "as a loosening.",
        "",
        "Shipped profiles: " + ", ".join(f"`{name}`" for name in shipped_profiles()) + ".",
        "",
    ]
    section = None
    groups_done: set[str] = set()
    for key, field in fields.items():
        top = key.split(".")[0]
        if top != section:
            section = top
            lines += [f"## [{top}]", ""]
        if field.group:
            if field.group in groups_done:
                continue
            groups_done.add(field.group)
            members = [f for f in fields.values() if f.group == field.group]
            lines += [f"### `{field.group}.*`", ""]
            if field.kind == Kind.DIRECTIVE:
                lines += [
                    f"CSP directives of the `{field.group.split('.')[1]}` route class. Each "
                    "key is a directive name ("
                    + ", ".join(f"`{m.key.rsplit('.', 1)[1]}`" for m in members)
                    + "); the value is a list of source tokens, `false` removes the "
                    "directive, `true` only for `upgrade-insecure-requests`. Tokens are "
                    "validated: no whitespace, `;`, `,`, quotes out of place, control or "
                    "non-ASCII characters. Loosens when: any change (review it).",
                    "",
                    "Default:",
                    "",
                ]
                for m in members:
                    if m.key in default.values and default.values[m.key] is not None:
                        name = m.key.rsplit(".", 1)[1]
                        lines.append(f"- `{name}` = `{_fmt(default.values[m.key])}`")
                lines.append("")
            else:
                lines += [field.doc.split(";")[0].replace(f"'{key.rsplit('.', 1)[1]}'", "each"), ""]
                for m in members:
                    name = m.key.rsplit(".", 1)[1]
                    lines.append(f"- `{name}` = `{_fmt(default.values.get(m.key))}`")
                lines.append("")
            continue
        lines += [
            f"### `{key}`",
            "",
            field.doc,
            "",
            f"- type: {field.kind}",
            f"- allowed: {describe_allowed(field)}",
            f"- default: `{_fmt(default.values.get(key))}`",
            f"- loosens when: {field.loosen}",
        ]
        if field.restart:
            lines.append(f"- reload: needs a restart: {field.restart}")
        lines.append("")
    return "\n".join(lines)


def cmd_policy_reference(_args: argparse.Namespace) -> int:
    _out(reference_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hardened-server", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the server (traitlets options pass through)", add_help=False)
    sub.add_parser(
        "singleuser",
        help="run as JupyterHub's single-user server (the Spawner's cmd; hub OAuth login)",
        add_help=False,
    )
    sub.add_parser(
        "audit",
        help="grade a configuration, a live server (--url), its routes and extensions; "
        "verify-log checks an audit log",
        add_help=False,
    )
    policy = sub.add_parser("policy", help="inspect and check policy files")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    show = psub.add_parser("show", help="the effective policy, with the file that set each key")
    show.add_argument("--policy", action="append", default=[], metavar="FILE")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_policy_show)
    explain = psub.add_parser("explain", help="one key: value, who set it, meaning, loosening")
    explain.add_argument("key")
    explain.add_argument("--policy", action="append", default=[], metavar="FILE")
    explain.set_defaults(func=cmd_policy_explain)
    validate = psub.add_parser("validate", help="check policy files (each over the default)")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument(
        "--pubkey",
        action="append",
        default=[],
        metavar="PEM",
        help="also require a good signature by one of these keys",
    )
    validate.set_defaults(func=cmd_policy_validate)
    keygen = psub.add_parser(
        "keygen", help="make an Ed25519 key pair for signing policies (PATH and PATH.pub)"
    )
    keygen.add_argument("path", metavar="PATH")
    keygen.set_defaults(func=cmd_policy_keygen)
    sign = psub.add_parser("sign", help="validate, then write a detached signature FILE.sig")
    sign.add_argument("--key", required=True, metavar="PEM", help="the private key")
    sign.add_argument("files", nargs="+", metavar="FILE")
    sign.set_defaults(func=cmd_policy_sign)
    verify = psub.add_parser("verify", help="check FILE.sig against trusted public keys")
    verify.add_argument(
        "--pubkey", action="append", required=True, metavar="PEM", help="a trusted public key"
    )
    verify.add_argument("files", nargs="+", metavar="FILE")
    verify.set_defaults(func=cmd_policy_verify)
    suggest = psub.add_parser(
        "suggest",
        help="a draft policy layer for the routes no table or profile maps (review it)",
    )
    suggest.add_argument("--policy", action="append", default=[], metavar="FILE")
    suggest.add_argument("--root-dir", default=None, metavar="DIR")
    suggest.add_argument(
        "--output", "-o", metavar="FILE", help="write the draft to FILE (never overwritten)"
    )
    suggest.set_defaults(func=cmd_policy_suggest)
    schema = psub.add_parser("schema", help="the JSON Schema of a policy file")
    schema.set_defaults(func=cmd_policy_schema)
    ref = psub.add_parser("reference", help="the policy reference (Markdown)")
    ref.set_defaults(func=cmd_policy_reference)
    from hardened_server.cli.tokens import add_parser as add_token_parser
    from hardened_server.cli.tokens import add_password_parser

    add_token_parser(sub)
    add_password_parser(sub)
    from hardened_server.cli.servers import add_parsers as add_server_parsers

    add_server_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        return cmd_serve(argv[1:])
    if argv and argv[0] == "singleuser":
        from hardened_server.cli.singleuser import main as singleuser_main

        return singleuser_main(argv[1:])
    if argv and argv[0] == "audit":
        from hardened_server.audit.cli import main as audit_main  # lazy: keeps `policy` fast

        return audit_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except PolicyError as exc:
        _err(str(exc))
        return EXIT_REFUSED
    except KeyFileError as exc:
        _err(str(exc))
        return EXIT_REFUSED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
