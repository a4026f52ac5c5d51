"""The compiled policy a running server consults, swapped as a whole on reload.

Everything a request needs is computed here once per policy (header sets, the Host and origin
allow-lists, per-route facts), so the hot path is dictionary look-ups. Handlers and the output
transform hold the :class:`PolicyRuntime`, never a ``Policy``: a reload replaces
``runtime.current`` in one assignment and the next request sees the new rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.headers import HeaderSet, compile_header_sets, csp_for
from hardened_server.policy.hosts import compile_host_allowlist
from hardened_server.policy.model import Policy
from hardened_server.policy.origins import normalize_origin
from hardened_server.policy.routes import RouteInfo, route_info

SETTINGS_KEY = "hardened_server"


@dataclass(frozen=True)
class Compiled:
    policy: Policy
    base_url: str
    headers: Mapping[tuple[str, bool], HeaderSet]
    csp: Mapping[str, str]
    hosts: frozenset[str]
    cors_origins: frozenset[str]
    public_routes: frozenset[str]
    _routes: dict[tuple[str, frozenset[str]], RouteInfo] = field(default_factory=dict)

    def route(self, pattern: str, kinds: frozenset[str]) -> RouteInfo:
        key = (pattern, kinds)
        info = self._routes.get(key)
        if info is None:
            info = route_info(pattern, kinds, self.public_routes)
            self._routes[key] = info
        return info


def compile_policy(policy: Policy, base_url: str) -> Compiled:
    return Compiled(
        policy=policy,
        base_url=base_url,
        headers=compile_header_sets(policy, base_url),
        csp={rc.value: csp_for(policy, rc.value, base_url) for rc in RouteClass},
        hosts=compile_host_allowlist(policy.server.public_hostnames),
        cors_origins=frozenset(
            o for o in (normalize_origin(x) for x in policy.cors.allow_origins) if o
        ),
        public_routes=frozenset(policy.routes.public),
    )


class PolicyRuntime:
    """Holds the current compiled policy of one application."""

    def __init__(self, policy: Policy, base_url: str) -> None:
        self.base_url = base_url
        self.current: Compiled = compile_policy(policy, base_url)

    def swap(self, policy: Policy) -> Compiled:
        compiled = compile_policy(policy, self.base_url)
        self.current = compiled
        return compiled
