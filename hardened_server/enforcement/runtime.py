"""The compiled policy a running server consults, swapped as a whole on reload.

Everything a request needs is computed here once per policy (header sets, the Host and origin
allow-lists, the CORS policy, the trusted proxy networks, per-route facts), so the hot path is
dictionary look-ups. Handlers and the output transform hold the :class:`PolicyRuntime`, never a
``Policy``: a reload replaces ``runtime.current`` in one assignment and the next request sees the
new rules. The runtime also holds the state that outlives a request: the per-client token
buckets of the unauthenticated rate limit (:class:`RateLimiter`) and the registry of open
websockets (:class:`~hardened_server.enforcement.connections.ConnectionRegistry`), re-checked
after every identity change and policy swap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hardened_server.enforcement.connections import ConnectionRegistry
from hardened_server.policy import csp as csp_policy
from hardened_server.policy.cors import CorsAllowList, compile_cors
from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.headers import (
    PAGE_EVAL,
    HeaderSet,
    compile_header_sets,
    csp_directives_for,
    csp_for,
)
from hardened_server.policy.hosts import compile_host_allowlist
from hardened_server.policy.model import LimitsPolicy, Policy
from hardened_server.policy.proxies import TrustedProxies, compile_trusted
from hardened_server.policy.routeclass import RouteInfo, route_info
from hardened_server.policy.scopemap import METHODS, Requirement, RouteMap, RouteScopes

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
    unsafe_eval_routes: frozenset[str]
    script_nonce_routes: frozenset[str]
    #: The page CSPs (``page`` and :data:`PAGE_EVAL`) as directives, for a per-response nonce.
    page_csp: Mapping[str, csp_policy.Directives]
    cors: CorsAllowList
    trusted: TrustedProxies
    limits: LimitsPolicy
    route_map: RouteMap
    client_event_schemas: frozenset[str]
    _routes: dict[tuple[str, frozenset[str]], RouteInfo] = field(default_factory=dict)

    def route(self, pattern: str, kinds: frozenset[str]) -> RouteInfo:
        key = (pattern, kinds)
        info = self._routes.get(key)
        if info is None:
            info = route_info(
                pattern,
                kinds,
                self.public_routes,
                self.unsafe_eval_routes,
                self.script_nonce_routes,
            )
            self._routes[key] = info
        return info

    def route_scopes(
        self,
        pattern: str,
        handler: str,
        implemented: frozenset[str] = frozenset(METHODS),
        declared: Mapping[str, Requirement] | None = None,
        authorized: Mapping[str, Requirement] | None = None,
    ) -> RouteScopes:
        """What each method of this route needs (compiled once per route and policy)."""
        return self.route_map.lookup(pattern, handler, implemented, declared, authorized)

    def csp_with_nonce(self, header_key: str, nonce: str) -> str:
        """The page CSP of ``header_key`` (``page`` or :data:`PAGE_EVAL`) with this response's
        nonce in its script directives (:func:`hardened_server.policy.csp.with_nonce`)."""
        return csp_policy.serialize(csp_policy.with_nonce(self.page_csp[header_key], nonce))


def _compiled_or_policy_error(policy: Policy, key: str, build: Callable[[], object]) -> object:
    """Each value was validated alone at load; a compile step that still refuses (a trusted
    proxy network of ``/0``, which trusts every peer) stops the server like a bad file does."""
    try:
        return build()
    except ValueError as exc:
        raise PolicyError(
            policy.provenance.get(key, "<policy>"), key, str(exc), fix=f"correct {key}"
        ) from None


def compile_policy(
    policy: Policy, base_url: str, *, script_hashes: tuple[str, ...] = ()
) -> Compiled:
    c = policy.cors
    cors = _compiled_or_policy_error(
        policy,
        "cors.allow_origins",
        lambda: compile_cors(
            c.allow_origins,
            allow_origin_patterns=c.allow_origin_patterns,
            allow_credentials=c.allow_credentials,
            allow_methods=c.allow_methods,
            allow_headers=c.allow_headers,
            max_age=c.max_age,
        ),
    )
    trusted = _compiled_or_policy_error(
        policy,
        "server.trusted_proxies",
        lambda: compile_trusted(
            policy.server.trusted_proxies, client_header=policy.server.client_header
        ),
    )
    hosts = _compiled_or_policy_error(
        policy,
        "server.public_hostnames",
        lambda: compile_host_allowlist(policy.server.public_hostnames),
    )
    assert isinstance(cors, CorsAllowList)
    assert isinstance(trusted, TrustedProxies)
    assert isinstance(hosts, frozenset)
    return Compiled(
        policy=policy,
        base_url=base_url,
        headers=compile_header_sets(policy, base_url, script_hashes=script_hashes),
        csp={
            **{
                rc.value: csp_for(policy, rc.value, base_url, script_hashes=script_hashes)
                for rc in RouteClass
            },
            PAGE_EVAL: csp_for(
                policy, RouteClass.PAGE, base_url, script_hashes=script_hashes, unsafe_eval=True
            ),
        },
        hosts=hosts,
        cors_origins=cors.origins,
        public_routes=frozenset(policy.routes.public),
        unsafe_eval_routes=frozenset(policy.routes.unsafe_eval),
        script_nonce_routes=frozenset(policy.routes.script_nonce),
        page_csp={
            RouteClass.PAGE.value: csp_directives_for(
                policy, RouteClass.PAGE, base_url, script_hashes=script_hashes
            ),
            PAGE_EVAL: csp_directives_for(
                policy, RouteClass.PAGE, base_url, script_hashes=script_hashes, unsafe_eval=True
            ),
        },
        cors=cors,
        trusted=trusted,
        limits=policy.limits,
        route_map=RouteMap(policy.scopes.routes),
        client_event_schemas=frozenset(policy.scopes.client_event_schemas),
    )


def client_key(ip: str) -> str:
    """The rate-limit key of a client address: IPv6 clients by their /64 (one subscriber gets
    a whole /64 and could otherwise rotate through fresh buckets), IPv4 and anything else as is."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class RateLimiter:
    """Token buckets, one per client key, in memory.

    A bucket holds up to ``burst`` tokens and refills at ``per_minute / 60`` tokens a second; a
    request that costs more than the bucket holds is refused with the seconds until it would fit.
    At most :attr:`MAX_CLIENTS` buckets are kept (least recently used dropped first), so a flood
    of distinct addresses cannot exhaust memory; a dropped bucket comes back full, which is the
    price of a bound.
    """

    MAX_CLIENTS = 65536
    #: A client refused more often than this within one second is flooding (a closed loop of
    #: attempts): its further refusals are held for :attr:`HOLD_SECONDS` before they are sent.
    FLOOD_REFUSALS_PER_SECOND = 50
    HOLD_SECONDS = 1.0
    #: At most this many refusals are held at a time (each holds a connection); beyond it they
    #: are answered at once.
    MAX_HELD = 256

    def __init__(
        self, per_minute: int, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._refusals: OrderedDict[str, tuple[float, int, bool]] = OrderedDict()
        self._held = 0
        self.configure(per_minute, burst)

    def configure(self, per_minute: int, burst: int) -> None:
        self.rate = max(per_minute, 1) / 60.0
        self.burst = float(max(burst, 1))

    def _tokens(self, key: str, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def _wait(self, missing: float) -> int:
        return max(1, math.ceil(missing / self.rate))

    def peek(self, key: str, cost: float = 1.0) -> int | None:
        """Seconds to wait if a request of ``cost`` would be refused now, else ``None``
        (nothing is charged)."""
        tokens = self._tokens(key, self._clock())
        return None if tokens >= cost else self._wait(cost - tokens)

    def charge(self, key: str, cost: float = 1.0) -> int | None:
        """Take ``cost`` tokens: ``None`` if they were there, else the seconds to wait (and
        nothing is taken)."""
        now = self._clock()
        tokens = self._tokens(key, now)
        refused = tokens < cost
        self._buckets[key] = (tokens if refused else tokens - cost, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return self._wait(cost - tokens) if refused else None

    def flooding(self, key: str) -> bool:
        """Count one refusal of ``key``; true once it has been refused more than
        :attr:`FLOOD_REFUSALS_PER_SECOND` times in the current one-second window, and for the
        whole next window after one in which it was (a held flood does not get a fresh burst
        of immediate answers every second)."""
        now = self._clock()
        start, count, before = self._refusals.get(key, (now, 0, False))
        if now - start >= 1.0:
            # A held flood comes back about once per connection and second, fewer than the
            # threshold: while held, a fifth of it keeps the client marked.
            bar = self.FLOOD_REFUSALS_PER_SECOND // 5 if before else self.FLOOD_REFUSALS_PER_SECOND
            before = count > bar and now - start < 2.0
            start, count = now, 0
        count += 1
        self._refusals[key] = (start, count, before)
        self._refusals.move_to_end(key)
        while len(self._refusals) > self.MAX_CLIENTS:
            self._refusals.popitem(last=False)
        return before or count > self.FLOOD_REFUSALS_PER_SECOND

    async def hold(self) -> None:
        """Delay a flooding client's refusal without blocking anyone else (``asyncio.sleep``):
        a closed loop of attempts then gets about one answer per connection and second instead
        of as many as the event loop can produce, and everybody else's requests are served
        meanwhile. Bounded by :attr:`MAX_HELD`."""
        if self._held >= self.MAX_HELD:
            return
        self._held += 1
        try:
            # Jittered, so the held connections of one flood do not all come back at once.
            jitter = random.uniform(0.5, 1.5)  # noqa: S311  # nosec B311 - timing, not a secret
            await asyncio.sleep(self.HOLD_SECONDS * jitter)
        finally:
            self._held -= 1


class PolicyRuntime:
    """Holds the current compiled policy of one application, and the rate limiter."""

    def __init__(self, policy: Policy, base_url: str) -> None:
        self.base_url = base_url
        self.script_hashes: tuple[str, ...] = ()
        # Endpoints of an outside login (JupyterHub's OAuth authorize and logout) that
        # redirects may name although they are not under base_url; set by the application.
        self.external_redirects: frozenset[str] = frozenset()
        # The Host a client of the server's Unix socket (ServerApp.sock) sends, or "".
        self.unix_socket_host = ""
        self.current: Compiled = compile_policy(policy, base_url)
        limits = policy.limits
        self.limiter = RateLimiter(
            limits.unauthenticated_requests_per_minute, limits.unauthenticated_burst
        )
        # Every open wrapped websocket, re-checked against its identity (connections.py).
        self.connections = ConnectionRegistry()

    def set_script_hashes(self, hashes: tuple[str, ...]) -> Compiled:
        """The hashes of the trusted templates' inline scripts, found once the extensions
        (and their template directories) are loaded; kept across policy swaps."""
        self.script_hashes = tuple(hashes)
        self.current = compile_policy(
            self.current.policy, self.base_url, script_hashes=self.script_hashes
        )
        return self.current

    def swap(self, policy: Policy) -> Compiled:
        compiled = compile_policy(policy, self.base_url, script_hashes=self.script_hashes)
        self.current = compiled
        self.limiter.configure(
            policy.limits.unauthenticated_requests_per_minute, policy.limits.unauthenticated_burst
        )
        return compiled
