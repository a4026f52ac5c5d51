"""``hardened-server token create|list|revoke|rotate``: the token store from the command line.

The secret of a new or rotated token is printed once, alone on stdout (so that
``TOKEN=$(hardened-server token create ...)`` works); everything else goes to stderr. The store
is ``--store FILE``, else the policy's ``tokens.store_file``, else
``hardened-server-tokens.json`` in the Jupyter runtime directory, which is where a server
started by the same user looks too. A running server sees every change at its next request.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Literal

from hardened_server.enforcement.identity.tokenstore import (
    TokenRecord,
    TokenStore,
    TokenStoreError,
    parse_duration,
    store_path_for,
)
from hardened_server.enforcement.recorder import record_event
from hardened_server.policy.loader import load_policy
from hardened_server.policy.rules import Rule
from hardened_server.policy.scopes import SCOPES
from hardened_server.trail.record import EventKind

EXIT_USAGE = 1
EXIT_REFUSED = 2


def store_path(store: str | None, policy_files: list[str]) -> Path:
    if store:
        return store_path_for(store)
    return store_path_for(configured=load_policy(policy_files).tokens.store_file)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _describe(rec: TokenRecord) -> str:
    return (
        f"id={rec.id} name={rec.name!r} scopes={','.join(rec.scopes)} expires={_when(rec.expires)}"
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser(
        "token", help="create, list, revoke and rotate stored API tokens (hashes in a 0600 file)"
    )
    tsub = token.add_subparsers(dest="token_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", metavar="FILE", help="the token store file")
        p.add_argument("--policy", action="append", default=[], metavar="FILE")

    create = tsub.add_parser("create", help="a new token; prints its secret once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE",
        required=True,
        help="repeatable; one of: " + ", ".join(SCOPES),
    )
    create.add_argument(
        "--expires",
        default="30d",
        metavar="DURATION",
        help="30m, 12h, 7d, 2w or never (default 30d)",
    )
    common(create)
    create.set_defaults(func=cmd_create)
    lst = tsub.add_parser("list", help="every stored token (never the secrets)")
    lst.add_argument("--json", action="store_true")
    common(lst)
    lst.set_defaults(func=cmd_list)
    revoke = tsub.add_parser("revoke", help="delete a token; refused from the next request on")
    revoke.add_argument("id")
    common(revoke)
    revoke.set_defaults(func=cmd_revoke)
    rotate = tsub.add_parser("rotate", help="a new secret for a token; the old one stops working")
    rotate.add_argument("id")
    rotate.add_argument(
        "--expires",
        default=None,
        metavar="DURATION",
        help="new lifetime (default: the token's original lifetime, from now)",
    )
    common(rotate)
    rotate.set_defaults(func=cmd_rotate)


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(store_path(args.store, args.policy))


def _fail(exc: Exception) -> int:
    sys.stderr.write(f"hardened-server token: {exc}\n")
    return EXIT_USAGE


def cmd_create(args: argparse.Namespace) -> int:
    try:
        lifetime = parse_duration(args.expires)
        secret, rec = _store(args).create(args.name, args.scope, lifetime)
    except TokenStoreError as exc:
        return _fail(exc)
    record_event(
        None,
        EventKind.TOKEN_CREATED,
        rule_id=Rule.ID_TOKEN_CREATED,
        allowed=True,
        reason="token created with the CLI",
        token_id=rec.id,
        scopes=",".join(rec.scopes),
    )
    sys.stderr.write(f"created {_describe(rec)}\nthe secret is shown once:\n")
    sys.stdout.write(secret + "\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    try:
        records = _store(args).list()
    except TokenStoreError as exc:
        return _fail(exc)
    if args.json:
        sys.stdout.write(json.dumps([r.public() for r in records], indent=2) + "\n")
        return 0
    sys.stdout.write(
        f"{'ID':12}  {'NAME':20}  {'CREATED':20}  {'EXPIRES':20}  {'LAST USED':20}  SCOPES\n"
    )
    for r in records:
        sys.stdout.write(
            f"{r.id:12}  {r.name[:20]:20}  {_when(r.created):20}  {_when(r.expires):20}  "
            f"{_when(r.last_used):20}  {','.join(r.scopes)}\n"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    try:
        rec = _store(args).revoke(args.id)
    except TokenStoreError as exc:
        return _fail(exc)
    record_event(
        None,
        EventKind.TOKEN_REVOKED,
        rule_id=Rule.ID_TOKEN_REVOKED,
        allowed=True,
        reason="token revoked with the CLI",
        token_id=rec.id,
    )
    sys.stderr.write(f"revoked {_describe(rec)}\n")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    try:
        lifetime: float | Literal["keep"] | None = (
            "keep" if args.expires is None else parse_duration(args.expires)
        )
        secret, rec = _store(args).rotate(args.id, lifetime)
    except TokenStoreError as exc:
        return _fail(exc)
    record_event(
        None,
        EventKind.TOKEN_CREATED,
        rule_id=Rule.ID_TOKEN_ROTATED,
        allowed=True,
        reason="token rotated with the CLI",
        token_id=rec.id,
    )
    sys.stderr.write(f"rotated {_describe(rec)}\nthe new secret is shown once:\n")
    sys.stdout.write(secret + "\n")
    return 0


# -- hardened-server password --------------------------------------------------------------------


def add_password_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pw = sub.add_parser(
        "password",
        help="print an argon2id hash of a password read from the terminal (asked twice) or "
        "from stdin (first line); never from the command line",
    )
    pw.set_defaults(func=cmd_password)


def read_password() -> str | None:
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            sys.stderr.write("hardened-server password: the two entries differ\n")
            return None
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_password(_args: argparse.Namespace) -> int:
    from hardened_server.enforcement.identity.passwords import hash_password

    password = read_password()
    if password is None:
        return EXIT_USAGE
    if len(password) < 8:
        sys.stderr.write("hardened-server password: use at least 8 characters\n")
        return EXIT_USAGE
    sys.stdout.write(hash_password(password) + "\n")
    sys.stderr.write(
        "configure it with: hardened-server serve --password-file FILE (the hash alone in the "
        "file; the server replaces it there when the hashing parameters grow) or "
        "--PasswordIdentityProvider.hashed_password='<hash>'\n"
    )
    return 0
