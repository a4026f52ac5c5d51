"""``hardened-server audit hash [--policy FILE]... TEXT``: the value an activity record holds for
TEXT (issue #20).

An auditor with a candidate text (the cell a user is said to have run, a command) computes its
HMAC under the deployment's key, found as the server finds it (``audit.hmac_key``, or the key
generated in the Jupyter data directory), normalised by the same function the server uses
(:func:`hardened_server.policy.activity.keep_text`), and looks for it in the trail: ``audit
query --format json | grep`` or ``code_hmac=`` in the text output. ``-`` reads TEXT from
standard input (a cell with several lines). The key id goes to standard error: it must match
the record's ``key_id`` (a rotated key gives another value).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hardened_server.enforcement.activity import resolve_key_path
from hardened_server.policy.activity import key_id, text_hmac
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import load_policy
from hardened_server.trail.hmackey import HmacKeyError, load_hmac_key

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hardened-server audit hash",
        description="Print the HMAC an activity record holds for TEXT (code_hmac, line_hmac).",
    )
    p.add_argument("--policy", action="append", default=[], metavar="FILE",
                   help="policy file layered over the default, as given to the server")
    p.add_argument("--data-dir", metavar="DIR",
                   help="the server's Jupyter data directory (default: as jupyter finds it), "
                   'where the generated key is when audit.hmac_key = ""')
    p.add_argument("text", metavar="TEXT", help="the text; - reads standard input")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        policy = load_policy(args.policy)
    except (PolicyError, OSError) as exc:
        sys.stderr.write(f"hardened-server audit hash: {exc}\n")
        return 2
    data_dir = args.data_dir
    if data_dir is None:
        from jupyter_core.paths import jupyter_data_dir

        data_dir = jupyter_data_dir()
    path = resolve_key_path(policy.audit, data_dir)
    try:
        key = load_hmac_key(path)
    except HmacKeyError as exc:
        sys.stderr.write(f"hardened-server audit hash: audit.hmac_key: {exc}\n")
        return 2
    text = sys.stdin.read() if args.text == "-" else args.text
    sys.stdout.write(text_hmac(key, text) + "\n")
    sys.stderr.write(f"key_id: {key_id(key)}\n")
    return 0
