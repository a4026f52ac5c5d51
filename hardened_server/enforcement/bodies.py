"""The tornado side of :mod:`hardened_server.policy.bodies`: one call from the Jupyter mixin's
``prepare``, after authentication and the gate, before the handler method runs."""

from __future__ import annotations

import functools
from typing import Any

from tornado import web

from hardened_server.policy.bodies import (
    NOT_PARSED,
    BodyRule,
    merge_conflict,
    parse_and_check_body,
    rule_for,
)

#: Where check_json_body leaves the body it parsed, for the handler's get_json_body.
PARSED_ATTR = "_hs_parsed_json_body"


@functools.cache
def _rule(cls: type, method: str) -> BodyRule | None:
    # Wrapped handler classes keep the original's module and qualname (handlers.wrap_handler).
    names = [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]
    return rule_for(names, method)


def check_json_body(handler: Any) -> None:
    """400, naming the field, when the request's JSON body does not fit what its handler
    assumes; nothing for routes and methods without a rule, or an answered request."""
    if getattr(handler, "_finished", False):
        return
    handler_class: type = type(handler)
    rule = _rule(handler_class, handler.request.method or "")
    if rule is None:
        return
    body = handler.request.body or b""
    problem, value = parse_and_check_body(rule, body)
    if problem is None and rule.merges_config:
        section = handler.path_kwargs.get("section_name", "")
        current = handler.config_manager.write_config_manager.get(section)
        problem = merge_conflict(current, value)
    if problem is not None:
        raise web.HTTPError(400, problem)
    if value is not NOT_PARSED:
        # Handed once to the handler's get_json_body (the mixin's), which otherwise parses the
        # same bytes again: 17 ms of a 1 MiB notebook save.
        setattr(handler, PARSED_ATTR, value)
