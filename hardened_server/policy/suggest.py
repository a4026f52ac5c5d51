"""Drafts of ``scopes.routes`` for routes the route map does not know (pure: text from facts).

Two readers: the start-up warning for an unmapped route (HS-SCOPE-002) prints
:func:`hint_entry`, and ``hardened-server policy suggest`` writes :func:`draft_layer`, a policy
layer for every unmapped route of the configured application, for a person to review.

What a draft proposes is strict on purpose: every method the handler really implements (read
off the class by :mod:`hardened_server.enforcement.inventory`, OPTIONS left out: preflights are
never scope-checked) needs ``admin``, so a draft applied unread opens the routes to the owner and
to nobody else. The comments say what each handler is and, where the handler's own
``@authorized`` names a resource the reviewed table does not know, what it asks for; narrowing a
method to a smaller scope is the reviewer's decision, not the tool's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hardened_server.policy.rules import Rule
from hardened_server.policy.scopemap import METHODS
from hardened_server.policy.scopes import ADMIN

#: What a draft asks of every method until someone narrows it.
DRAFT_SCOPE = ADMIN


@dataclass(frozen=True)
class UnmappedRoute:
    """One route the route map does not know, as the inventory describes it."""

    pattern: str
    handler: str  # module.qualname of the handler as written
    methods: tuple[str, ...]  # the methods the handler implements
    websocket: bool = False
    undecorated: tuple[str, ...] = ()  # methods with no authentication decorator
    authorization: Mapping[str, str] = field(default_factory=dict)  # method -> resource:action


def mapped_methods(methods: Iterable[str]) -> list[str]:
    """The methods a ``scopes.routes`` entry can name, in the map's order (HEAD follows GET,
    so it is listed only when the handler has HEAD without GET)."""
    have = set(methods)
    return [m for m in METHODS if m in have and not (m == "HEAD" and "GET" in have)]


def toml_key(pattern: str) -> str:
    """A route pattern as a TOML key: a literal string (regexes read as written) when it can
    be one, else a basic string."""
    if "'" not in pattern and pattern.isprintable() and "\n" not in pattern:
        return f"'{pattern}'"
    return json.dumps(pattern)


def entry_text(methods: Iterable[str], scope: str = DRAFT_SCOPE) -> str:
    """``{ GET = "admin", POST = "admin" }`` for the methods the handler implements."""
    names = mapped_methods(methods) or ["*"]
    return "{ " + ", ".join(f'{_method_key(m)} = "{scope}"' for m in names) + " }"


def _method_key(method: str) -> str:
    return '"*"' if method == "*" else method


def hint_entry(pattern: str, methods: Iterable[str]) -> str:
    """What the start-up warning suggests: the route with the methods it really has."""
    return f"scopes.routes = {{ {json.dumps(pattern)} = {entry_text(methods)} }}"


def draft_layer(
    routes: Sequence[UnmappedRoute],
    *,
    header: Sequence[str] = (),
    keep_accepted: Sequence[str] = (),
) -> str:
    """A policy layer (TOML) mapping every route in ``routes``, commented for review.
    ``keep_accepted``: the ``routes.accept_undecorated`` entries the files give now (a file's
    list replaces theirs, so a commented proposal repeats them)."""
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [
        "# A DRAFT for review: every method below needs admin (owner only) until you narrow it",
        "# to the scope the handler really needs (SECURITY.md, 'Scopes and the route map').",
        "# Check with `hardened-server policy validate FILE`; load with --policy FILE.",
    ]
    if not routes:
        lines += ["", "# Every route of the configured application is mapped: nothing to draft."]
        return "\n".join(lines) + "\n"
    accept = [*keep_accepted, *sorted({r.pattern for r in routes if r.undecorated})]
    lines += ["", "[scopes.routes]"]
    for route in routes:
        kind = "websocket" if route.websocket else "route"
        lines.append(f"# {kind} of {route.handler}; methods: {', '.join(route.methods) or '-'}")
        claims = {m: a for m, a in route.authorization.items() if a and a != "n/a"}
        if claims:
            asked = ", ".join(f"{m} {a}" for m, a in sorted(claims.items()))
            lines.append(f"#   its @authorized asks: {asked} (not in the reviewed table)")
        if route.undecorated:
            lines.append(
                f"#   {', '.join(route.undecorated)} carry no authentication decorator: see "
                "routes.accept_undecorated below"
            )
        lines.append(f"{toml_key(route.pattern)} = {entry_text(route.methods)}")
    if accept:
        lines += [
            "",
            "# These handlers have methods without an authentication decorator and stop the",
            f"# server ({Rule.START_UNAUTHENTICATED_ROUTE}). Accept one only after reading it "
            "authenticate in its own",
            "# code. A file's list replaces the one in force, whose entries come first here.",
            "# [routes]",
            "# accept_undecorated = [",
        ]
        lines += [f"#     {toml_key(p)}," for p in accept]
        lines.append("# ]")
    return "\n".join(lines) + "\n"
