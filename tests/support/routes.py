"""Route inventory of a configured app, and sample URLs that match each route pattern."""

from __future__ import annotations

import re
from typing import Any

from hardened_server.audit.inventory import run_inventory

try:  # Python 3.11+: the regex parser lives here
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

SAMPLE_GROUPS = {
    "path": "/x",
    "kernel_id": "00000000-0000-0000-0000-000000000001",
    "session_id": "00000000-0000-0000-0000-000000000002",
    "checkpoint_id": "checkpoint",
    "kernel_name": "python3",
    "format": "html",
    "section_name": "notebook",
    "action": "interrupt",
    "term_name": "1",
    "schema_name": "x",
    "language_server": "pylsp",
}


def dump_routes(argv: list[str], env: dict[str, str], cwd: str) -> list[dict[str, Any]]:
    """Initialise (not start) a HardenedServerApp with ``argv`` in a fresh interpreter and
    return its route inventory, read off the application's own rules: each route is
    :meth:`hardened_server.enforcement.inventory.RouteEntry.as_dict` (``served_methods`` are
    the methods the served class answers, ``is_subclass`` that it subclasses the original)."""
    found = run_inventory(argv, env, cwd=cwd)
    if found.routes is None or found.problems:
        raise RuntimeError(f"route dump failed: {found.error or found.problems}")
    return found.routes


def _shortest(parsed: Any, groups: dict[int, str], names: dict[int, str]) -> str:
    out = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("x" if chr(arg) != "x" else "y")
        elif name == "ANY":
            out.append("x")
        elif name == "IN":
            out.append(_in_sample(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, _hi, sub = arg
            out.append(_shortest(sub, groups, names) * max(lo, 0))
        elif name == "SUBPATTERN":
            gid, _a, _b, sub = arg
            sample = _shortest(sub, groups, names)
            if gid is not None and names.get(gid) in SAMPLE_GROUPS:
                candidate = SAMPLE_GROUPS[names[gid]]
                sample = candidate
            out.append(sample)
        elif name == "BRANCH":
            out.append(_shortest(arg[1][0], groups, names))
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        elif name == "GROUPREF":
            out.append(groups.get(arg, ""))
        else:  # pragma: no cover - a construct no route uses yet
            raise ValueError(f"cannot sample {name}")
    return "".join(out)


def _in_sample(items: list[Any]) -> str:
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            return chr(arg)
        if name == "RANGE":
            return chr(arg[0])
        if name == "CATEGORY":
            return "a" if "WORD" in str(arg) or "NOT_SPACE" in str(arg) else "1"
        if name == "NEGATE":
            continue
    return "x"


SPECIAL = {"(.*)": "/no-such-route", "/?": "/", "/.*/": "/tree/"}


def sample_path(pattern: str) -> str:
    """A path that the route regex matches in full (named groups get realistic values)."""
    if pattern in SPECIAL:
        return SPECIAL[pattern]
    regex = re.compile(pattern + "$")
    parsed = sre_parse.parse(pattern)
    names = {v: k for k, v in regex.groupindex.items()}
    candidate = _shortest(parsed, {}, names)
    if regex.fullmatch(candidate):
        return candidate
    # realistic values did not fit this route: fall back to the plain shortest match
    plain = _shortest(parsed, {}, {})
    if regex.fullmatch(plain):
        return plain
    raise ValueError(f"no sample for {pattern!r}: tried {candidate!r}, {plain!r}")
