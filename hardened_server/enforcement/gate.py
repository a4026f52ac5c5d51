"""The request gate at request time: the glue between tornado and the pure gate decisions.

Two places call in here.

**The application**, for every request, as soon as its headers have arrived and before any
handler is chosen (:meth:`HardenedWebApplication.find_handler
<hardened_server.app.HardenedWebApplication.find_handler>` calls :func:`admit`):

1. *Who is asking* (:func:`resolve_client`): forwarding headers are believed only from a peer in
   ``server.trusted_proxies`` (:mod:`hardened_server.policy.proxies`), and then rewrite
   ``request.remote_ip``, ``request.protocol`` and ``request.host``, so that everything after
   (Secure cookies, HSTS, the origin checks, logs, the rate limit) sees the client. From anybody
   else they are ignored and the attempt is recorded (HS-PROXY-002).
2. *Host allow-list* (HS-HOST-002): a foreign Host (DNS rebinding) is refused here, so no handler
   class is even instantiated. Then the raw path (HS-PATH-007, 400): a bad percent-escape, a path
   that is not UTF-8 once decoded, or a control character is refused before tornado decodes it
   into handler arguments.
3. *Sizes*: a request target longer than ``limits.max_url_bytes`` (414, HS-LIMIT-003), header
   fields over ``limits.max_header_bytes`` (431, HS-LIMIT-002), a ``Content-Length`` over
   ``limits.max_body_bytes`` (413, HS-LIMIT-001), and one over ``limits.anonymous_body_bytes``
   from a request that carries no credential or is a login form POST (413, HS-LIMIT-005), all
   answered before a byte of the body is read. Such a request that is let through is held to
   the anonymous limit by tornado too (a chunked body is cut off past it).
4. *Rate limit*: a client whose unauthenticated budget is spent and who presents no credential
   at all gets 429 with ``Retry-After`` (HS-LIMIT-004) at once; a form POST (a login attempt)
   is refused as soon as the budget cannot pay for a failed credential.

A refused request is served by :class:`GateRefusalHandler`, a small handler that streams (and
drops) any body and runs no policy code but its own.

**The handler mixins** (:mod:`hardened_server.enforcement.handlers`), from ``prepare`` and the
hooks jupyter_server and tornado call: the cross-site decision
(:func:`request_cross_site_decision`), the origin check, CORS response headers, the session-bound
XSRF token and the redirect validator (:func:`checked_location`). The mixins stay thin: they hold
the tornado plumbing, this module the rules.

Rule ids defined here (the pure modules define the others): HS-LIMIT-001..005 and
HS-XSRF-001..003. Like every rule id they are stable API.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import itertools
import json
import os
import re
import socket
import time
import urllib.parse
from typing import Any, NamedTuple

from tornado import httputil, web
from tornado.httputil import HTTPServerRequest

from hardened_server.enforcement.context import assign_request_id
from hardened_server.enforcement.marks import mark
from hardened_server.enforcement.recorder import record_denial, record_ignored
from hardened_server.enforcement.runtime import SETTINGS_KEY, Compiled, PolicyRuntime, client_key
from hardened_server.policy import fetchmeta
from hardened_server.policy.cors import (
    cors_decision,
    cors_headers,
    is_allowed_origin,
    listed_origin_set,
)
from hardened_server.policy.decisions import Decision, RouteClass, Rule, allow, deny
from hardened_server.policy.hosts import UNIX_SOCKET_ALLOWED, is_allowed_host
from hardened_server.policy.model import LimitsPolicy
from hardened_server.policy.origins import normalize_origin, referer_origin
from hardened_server.policy.proxies import ClientAddress, client_address
from hardened_server.policy.redirects import redirect_decision, safe_redirect, strip_token_params
from hardened_server.policy.routeclass import classify_path

#: What an unauthenticated request that *presented* a credential (a token, a password, a login
#: cookie) costs in the rate limit: guessing is what the limit is for, browsing the login page
#: is not.
FAILED_CREDENTIAL_COST = 10

SAFE_METHODS = frozenset({"GET", "HEAD"})
# GateRefusalHandler answers these from its method handler once a body of at most
# DRAINED_BODY_BYTES is read (and dropped); anything else from prepare, closing the connection.
_ANSWERED_AFTER_BODY = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The methods tornado routes to a handler's ``prepare`` (``RequestHandler.SUPPORTED_METHODS``);
#: any other gets 405 before it, and is charged to the rate limit by :func:`admit` instead.
ROUTED_METHODS = frozenset(web.RequestHandler.SUPPORTED_METHODS)
DRAINED_BODY_BYTES = 65536

# What a proxy says about its own hop, and the headers that name a client.
_PEER_OWN_HEADERS = ("X-Forwarded-Proto", "X-Scheme", "X-Forwarded-Host")
# The same names as tornado's HTTPHeaders keys them (``httputil._normalize_header``), so that
# "does the request carry any of them" is one set operation over its names, not three
# case-insensitive look-ups on every request.
_PEER_OWN_KEYS = frozenset(
    "-".join(word.capitalize() for word in name.split("-")) for name in _PEER_OWN_HEADERS
)
_CLIENT_HEADERS = frozenset({"x-forwarded-for", "x-real-ip", "forwarded"})

#: Short bodies for refusals: they say what kind of refusal it is and nothing about why in
#: detail (the decision record has the rule id and the reason).
MESSAGES: dict[int, str] = {
    403: "Forbidden",
    413: "Request body too large",
    414: "Request URI too long",
    429: "Too many requests",
    431: "Request header fields too large",
}


# ---------------------------------------------------------------------------------------------
# Application level: before routing.


class Refusal(NamedTuple):
    status: int
    decision: Decision
    retry_after: int | None = None


def resolve_client(request: HTTPServerRequest, compiled: Compiled) -> ClientAddress:
    """Decide who sent ``request`` and rewrite it to say so (idempotent).

    ``request.remote_ip`` is the TCP peer when this runs (``ServerApp.trust_xheaders``, which
    would have tornado believe the headers from anybody, is refused at start-up). The peer is
    kept as ``request.hs_peer_ip`` for the record.
    """
    cached: ClientAddress | None = getattr(request, "hs_client", None)
    if cached is not None:
        return cached
    peer = request.remote_ip or ""
    client = client_address(peer, request.headers, compiled.trusted, scheme=request.protocol)
    if (
        client.trusted_hops == 0
        and not client.ignored_headers
        and not client.malformed
        and compiled.trusted.client_header != "forwarded"
        and not _PEER_OWN_KEYS.isdisjoint(request.headers)
    ):
        # A trusted proxy that names no client (a TLS terminator that only adds
        # X-Forwarded-Proto) is itself the client, and what it says about its own hop is
        # believed: exactly what the rules give when it lists itself as the client.
        own = {k: v for k, v in request.headers.items() if k.lower() not in _CLIENT_HEADERS}
        own[compiled.trusted.client_header] = peer
        client = client_address(peer, own, compiled.trusted, scheme=request.protocol)
    mark(request, hs_peer_ip=peer, hs_client=client)
    # The audit record's id: a trusted proxy's X-Request-ID (its access log has it), else ours.
    assign_request_id(request, from_trusted_proxy=bool(client.trusted_hops or client.malformed))
    request.remote_ip = client.ip
    request.protocol = client.scheme
    if client.trusted_hops and client.host and client.host != request.host:
        # X-Forwarded-Host / Forwarded host= from a trusted proxy that rewrote Host. The
        # Host allow-list still decides on it.
        request.host = client.host
        request.host_name = httputil.split_host_and_port(client.host.lower())[0]
    if client.ignored_headers or client.malformed:
        record_ignored(request, client.decision())
    return client


def header(headers: httputil.HTTPHeaders, name: str) -> str | None:
    """``headers.get(name)`` without the ``KeyError`` that tornado's ``HTTPHeaders.get`` raises
    and catches inside for every absent name: most of the names the gate asks about
    (``Authorization``, ``Content-Length``, ``Origin``, the preflight fields) are absent from
    most requests, and an absent one costs a ``KeyError`` four times what this test does."""
    return headers[name] if name in headers else None  # noqa: SIM401 - the point of it


def header_bytes(headers: httputil.HTTPHeaders) -> int:
    """Each field as ``name: value`` and its CRLF, summed (for ``limits.max_header_bytes``).

    ``get_all`` yields the pairs of ``HTTPHeaders._as_list`` (name -> its field lines), one
    Python generator step per field; when every name has one line (nearly every request) the
    sum is taken over that dict directly, in three C-level passes. Anything else (a repeated
    field, a tornado without ``_as_list``) is summed pair by pair as before."""
    fields = getattr(headers, "_as_list", None)
    if type(fields) is dict:
        values = list(itertools.chain.from_iterable(fields.values()))
        if len(values) == len(fields):
            return sum(map(len, fields)) + sum(map(len, values)) + 4 * len(values)
    total = 0
    for name, value in headers.get_all():
        total += len(name) + len(value) + 4
    return total


def _content_length(headers: httputil.HTTPHeaders) -> int | None:
    """The declared body length, or ``None`` if absent or malformed (tornado answers a
    malformed one with 400 itself)."""
    raw = header(headers, "Content-Length")
    if raw is None:
        return None
    pieces = [p.strip() for p in raw.split(",")]
    if not pieces or not all(p.isascii() and p.isdigit() for p in pieces):
        return None
    return max(int(p) for p in pieces)


# tornado's signed value, version 2 (``set_secure_cookie``: jupyter_server's login cookie,
# JupyterHub's): ``2|1:<key version>|<n>:<timestamp>|<n>:<name>|...``.
_SIGNED_COOKIE_V2 = re.compile(r"2\|1:[0-9]+\|[0-9]{1,3}:[0-9]+\|")
# An Authorization value names a scheme and a credential ("token abc", "Bearer abc").
_AUTHORIZATION = re.compile(r"[!-~]+ +[!-~]")


def may_authenticate(request: HTTPServerRequest, xsrf_cookie_name: str = "_xsrf") -> bool:
    """Could the identity layer accept this request, as far as a syntactic look at its headers
    tells (nothing is verified here)? An ``Authorization`` header with a scheme and a
    credential, or a cookie (not the XSRF cookie) in tornado's signed format, which the login
    cookie always is. The XSRF cookie authenticates nobody (the login page sets it for every
    visitor), and a made-up ``Cookie: a=b`` must buy a client neither the large body limit
    (:func:`body_limit`) nor a pass by the spent-budget refusal (:func:`admit`). tornado's own
    cookie parse is used (cached on the request: the handler reuses it). The answer is kept
    on the request too: :func:`admit` asks twice (its body limit and its budget check)."""
    cached: tuple[str, bool] | None = getattr(request, "_hs_may_authenticate", None)
    if cached is not None and cached[0] == xsrf_cookie_name:
        return cached[1]
    answer = _may_authenticate(request, xsrf_cookie_name)
    mark(request, _hs_may_authenticate=(xsrf_cookie_name, answer))
    return answer


def _may_authenticate(request: HTTPServerRequest, xsrf_cookie_name: str) -> bool:
    headers = request.headers
    authorization = header(headers, "Authorization")
    if authorization is not None and _AUTHORIZATION.match(authorization):
        return True
    if "Cookie" not in headers:
        return False
    return any(
        name != xsrf_cookie_name and _SIGNED_COOKIE_V2.match(morsel.value)
        for name, morsel in request.cookies.items()
    )


def is_login_post(request: HTTPServerRequest, base_url: str) -> bool:
    """A POST to the login page (the password form): anonymous by nature, whatever cookie
    the browser still sends."""
    if request.method != "POST":
        return False
    return (request.path or "").rstrip("/") == base_url.rstrip("/") + "/login"


def body_limit(
    request: HTTPServerRequest,
    limits: LimitsPolicy,
    base_url: str,
    xsrf_cookie_name: str = "_xsrf",
) -> tuple[int, Rule]:
    """The body limit of this request and the rule that refuses more: the anonymous one for
    a request that cannot authenticate and for the login form, else ``limits.max_body_bytes``.
    Bodies are read into memory before authentication runs, so without this any client could
    make the server buffer the large limit per request (six parallel 64 MiB posts: +350 MiB)."""
    if is_login_post(request, base_url) or not may_authenticate(request, xsrf_cookie_name):
        return min(limits.anonymous_body_bytes, limits.max_body_bytes), Rule.LIMIT_ANONYMOUS_BODY
    return limits.max_body_bytes, Rule.LIMIT_BODY


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _expected_cost(request: HTTPServerRequest) -> float:
    """What the handler will charge this anonymous request, as far as headers tell: a form
    POST is how a password arrives (the login form; tornado reads ``password`` from form
    bodies only), and a failed credential costs :data:`FAILED_CREDENTIAL_COST`. Peeking at that
    cost refuses here, cheaply, the login attempts the handler would refuse anyway once the
    budget cannot pay for one, instead of routing each of them to the login page first."""
    if request.method == "POST":
        content_type = request.headers.get("Content-Type", "")
        if content_type.lower().startswith(_FORM_TYPES):
            return float(FAILED_CREDENTIAL_COST)
    return 1.0


_BAD_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def raw_path_problem(path: str) -> str | None:
    """What is wrong with a request path as it arrived, before tornado decodes it into
    handler arguments: tornado turns ``%zz``, a lone ``%`` and raw non-UTF-8 bytes into
    ordinary (and different) names, so a PUT could create a file the path policy never saw
    under that name. One strict decoding, refused early, removes the ambiguity."""
    if "%" not in path and path.isascii():
        # Nothing to decode (the usual path): the decoded path is the path itself.
        return "control character in the path" if _CONTROL.search(path) else None
    if _BAD_ESCAPE.search(path):
        return "bad percent-escape in the path"
    try:
        decoded = urllib.parse.unquote_to_bytes(path.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return "the path is not UTF-8"
    if _CONTROL.search(decoded):
        return "control character in the path"
    return None


def over_own_unix_socket(request: HTTPServerRequest, socket_host: str) -> bool:
    """A request that arrived on the server's Unix socket and names that socket as its Host
    (``%2Fpath%2Fto.sock``, what jupyter_server's own Unix-socket clients send). Only on the
    socket: a proxy that forwards a browser's Host over the socket forwards a host name, which
    the allow-list still decides (HS-HOST-002)."""
    if not socket_host or request.host != socket_host:
        return False
    context = getattr(request.connection, "context", None)
    return getattr(context, "address_family", None) == socket.AF_UNIX


def host_decision(
    request: HTTPServerRequest, compiled: Compiled, runtime: PolicyRuntime
) -> Decision:
    """The Host decision of the gate and of every handler: the allow-list, or the server's own
    Unix socket named as Host (HS-HOST-005)."""
    host = is_allowed_host(request.host, compiled.hosts)
    if not host and over_own_unix_socket(request, runtime.unix_socket_host):
        return UNIX_SOCKET_ALLOWED
    return host


def admit(
    request: HTTPServerRequest, runtime: PolicyRuntime, *, xsrf_cookie_name: str = "_xsrf"
) -> Refusal | None:
    """The application-level checks, in order; ``None`` lets the request be routed."""
    compiled = runtime.current
    client = resolve_client(request, compiled)
    host = host_decision(request, compiled, runtime)
    if not host:
        return Refusal(403, host)
    problem = raw_path_problem(request.path or "")
    if problem is not None:
        return Refusal(400, deny(Rule.PATH_RAW, problem))
    limits = compiled.limits
    if len(request.uri or "") > limits.max_url_bytes:
        return Refusal(414, deny(Rule.LIMIT_URL, "request target longer than limits.max_url_bytes"))
    if header_bytes(request.headers) > limits.max_header_bytes:
        return Refusal(
            431, deny(Rule.LIMIT_HEADERS, "header fields larger than limits.max_header_bytes")
        )
    length = _content_length(request.headers)
    body_max, body_rule = body_limit(request, limits, compiled.base_url, xsrf_cookie_name)
    if length is not None and length > body_max:
        if body_rule == Rule.LIMIT_ANONYMOUS_BODY:
            # An anonymous refusal is charged like any anonymous request: a flood of large
            # bodies spends the client's budget and then gets the rate limit's 429, whose
            # flooding clients are held (one answer per connection and second), so the log
            # and the trail grow with connections, not with the requests a loop can send.
            wait = runtime.limiter.charge(client_key(client.ip), 1.0)
            if wait is not None:
                return Refusal(
                    429,
                    deny(Rule.LIMIT_RATE, "unauthenticated request budget of this client is spent"),
                    wait,
                )
            reason = "Content-Length above limits.anonymous_body_bytes (no credential or login)"
        else:
            reason = "Content-Length above limits.max_body_bytes"
        return Refusal(413, deny(body_rule, reason))
    if request.method not in ROUTED_METHODS:
        # tornado answers a method no handler supports with 405 before ``prepare``, where the
        # rate limit is charged: charged here instead, credentials or not (none is ever
        # checked on such a request), so a flood of ``FOO /`` runs out like any other
        # (issue #18).
        wait = runtime.limiter.charge(client_key(client.ip), 1.0)
        if wait is not None:
            return Refusal(
                429,
                deny(Rule.LIMIT_RATE, "unauthenticated request budget of this client is spent"),
                wait,
            )
    elif not may_authenticate(request, xsrf_cookie_name):
        wait = runtime.limiter.peek(client_key(client.ip), _expected_cost(request))
        if wait is not None:
            return Refusal(
                429,
                deny(Rule.LIMIT_RATE, "unauthenticated request budget of this client is spent"),
                wait,
            )
    if body_max < limits.max_body_bytes:
        # A chunked (or compressed) body has no length to refuse up front: tornado cuts it
        # off once it passes the anonymous limit (the connection's limit is per request).
        set_max = getattr(request.connection, "set_max_body_size", None)
        if set_max is not None:
            set_max(body_max)
    return None


def is_api_path(request: HTTPServerRequest, base_url: str) -> bool:
    return classify_path(request.path or "/", base_url) == RouteClass.API


@web.stream_request_body
class GateRefusalHandler(web.RequestHandler):
    """Answers a request the application-level gate refused: no handler of the route is
    instantiated, no body is buffered (it streams into :meth:`data_received` and is dropped),
    and the answer is short (JSON on API paths). The output transform adds the policy's
    headers like on every response."""

    _hs_gate_refusal = True

    def initialize(self, refusal: Refusal, base_url: str) -> None:
        self._refusal = refusal
        self._base_url = base_url
        # Whatever the method, the answer is the refusal (not tornado's 405).
        self.SUPPORTED_METHODS = (self.request.method or "GET",)

    def check_xsrf_cookie(self) -> None:
        """Nothing to protect: the request is refused anyway."""

    async def prepare(self) -> None:
        if (
            self._refusal.status == 413
            or self._large_body()
            or self.request.method not in _ANSWERED_AFTER_BODY
        ):
            # Refused before the body is read: tornado then closes the connection (the only
            # way not to read the body), and the answer says so. A flooding client's 429 is
            # held first, as below (its unread body waits in the socket meanwhile).
            await self._hold_if_flooding()
            self._refuse()
        # No body, or a small one (streamed into data_received and dropped): answered from
        # the method below once tornado has read it, so the connection stays open. A flooding
        # client then costs no new connection per refusal, and a browser's next request on
        # it does not find it closed.

    def _large_body(self) -> bool:
        """A body of unknown length, or longer than :data:`DRAINED_BODY_BYTES`."""
        headers = self.request.headers
        if "Transfer-Encoding" in headers:
            return True
        if "Content-Length" not in headers:
            return False
        length = _content_length(headers)
        return length is None or length > DRAINED_BODY_BYTES

    async def _hold_if_flooding(self) -> None:
        if self._refusal.status == 429:
            runtime: PolicyRuntime | None = self.application.settings.get(SETTINGS_KEY)
            limiter = runtime.limiter if runtime is not None else None
            if limiter is not None and limiter.flooding(client_key(self.request.remote_ip or "")):
                await limiter.hold()

    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self._hold_if_flooding()
        self._refuse()

    head = post = put = patch = delete = options = get

    def _refuse(self) -> None:
        refusal = self._refusal
        if refusal.status == 413:
            # Tornado would answer an oversized Content-Length with its own bare 400 as soon as
            # it starts on the body; let it drain instead. Nothing is buffered: the body goes to
            # data_received, and finishing before the body is read closes the connection.
            set_max = getattr(self.request.connection, "set_max_body_size", None)
            if set_max is not None:
                set_max(_content_length(self.request.headers) or 0)
        record_denial(
            self.request, refusal.decision, classify_path(self.request.path or "/", self._base_url)
        )
        raise web.HTTPError(refusal.status)

    def data_received(self, chunk: bytes) -> None:
        """Dropped."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self._refusal.retry_after is not None:
            self.set_header("Retry-After", str(self._refusal.retry_after))
        if status_code in (413, 414, 431) or self._large_body():
            self.set_header("Connection", "close")
        write_refusal_body(self, status_code, is_api_path(self.request, self._base_url))


def write_refusal_body(handler: web.RequestHandler, status_code: int, api: bool) -> None:
    message = MESSAGES.get(status_code) or httputil.responses.get(status_code, "Error")
    if api:
        handler.set_header("Content-Type", "application/json")
        web.RequestHandler.finish(handler, json.dumps({"message": message, "reason": None}))
    else:
        handler.set_header("Content-Type", "text/plain; charset=UTF-8")
        web.RequestHandler.finish(handler, f"{status_code} {message}\n")


# ---------------------------------------------------------------------------------------------
# Handler level: origins, cross-site requests, CORS.


def own_origin(request: HTTPServerRequest) -> str | None:
    """This server's origin as the client addressed it: scheme after the trusted-proxy rules,
    Host already on the allow-list."""
    origin = normalize_origin(f"{request.protocol}://{request.host}")
    return None if origin == "null" else origin


def request_origin(request: HTTPServerRequest) -> str | None:
    """``Origin``, else the legacy websocket ``Sec-Websocket-Origin`` (jupyter_server's
    ``get_origin``)."""
    headers = request.headers
    if "Origin" in headers:
        return headers["Origin"]
    return header(headers, "Sec-Websocket-Origin")


def origin_decision(request: HTTPServerRequest, compiled: Compiled) -> Decision:
    """Same origin, or on the CORS allow-list (exact, or a full-match pattern), compared on
    normalised forms, never by prefix (CVE-2026-40110). No Origin header: not decided here
    (the cross-site decision handles requests without one)."""
    origin = request_origin(request)
    if not origin:
        return _ORIGIN_ABSENT
    norm = normalize_origin(origin)
    if norm is not None and norm != "null" and norm == own_origin(request):
        return _ORIGIN_SAME
    if is_allowed_origin(origin, compiled.cors):
        return _ORIGIN_LISTED
    return deny(Rule.ORIGIN_FOREIGN, "Origin is neither this server nor listed")


# The allowing answers of origin_decision, built once (a Decision is immutable).
_ORIGIN_ABSENT = allow(Rule.ORIGIN_ABSENT, "no Origin header")
_ORIGIN_SAME = allow(Rule.ORIGIN_SAME, "Origin is this server")
_ORIGIN_LISTED = allow(Rule.ORIGIN_LISTED, "Origin is listed in cors.allow_origins")


def request_cross_site_decision(
    request: HTTPServerRequest, route_class: str, compiled: Compiled
) -> Decision:
    """The pure :func:`hardened_server.policy.fetchmeta.cross_site_decision` asked about this
    request (this function only reads its headers and origins): ``Sec-Fetch-Site`` decides
    when present (never ``Sec-Fetch-Mode`` alone), else Origin, else Referer."""
    headers = request.headers
    origin = request_origin(request)
    own = own_origin(request)
    return fetchmeta.cross_site_decision(
        request.method or "GET",
        route_class,
        header(headers, "Sec-Fetch-Site"),
        header(headers, "Sec-Fetch-Mode"),
        header(headers, "Sec-Fetch-Dest"),
        origin,
        header(headers, "Referer"),
        own_origins=frozenset({own}) if own else frozenset(),
        cors_origins=listed_origin_set(compiled.cors, origin),
    )


def _preflight_fields(request: HTTPServerRequest) -> tuple[str | None, str | None]:
    headers = request.headers
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in headers:
        return (
            headers["Access-Control-Request-Method"],
            header(headers, "Access-Control-Request-Headers"),
        )
    return None, None


def cors_response_headers(
    request: HTTPServerRequest, compiled: Compiled
) -> tuple[tuple[str, str], ...]:
    """The CORS headers for this request (always ``Vary: Origin``; ``Access-Control-*`` only
    for a listed origin, never reflected)."""
    request_method, request_headers = _preflight_fields(request)
    return cors_headers(
        compiled.cors,
        origin=header(request.headers, "Origin"),
        method=request.method or "GET",
        request_method=request_method,
        request_headers=request_headers,
    )


def preflight_decision(request: HTTPServerRequest, compiled: Compiled) -> Decision:
    request_method, request_headers = _preflight_fields(request)
    return cors_decision(
        compiled.cors,
        origin=header(request.headers, "Origin"),
        method=request.method or "OPTIONS",
        request_method=request_method,
        request_headers=request_headers,
    )


# ---------------------------------------------------------------------------------------------
# The session-bound XSRF token.
#
# Tornado's XSRF defence is a double submit: any ``_xsrf`` cookie plus the same value as an
# argument passes. A sibling subdomain can set (toss) a cookie for the parent domain, so it can
# pick both halves (jupyter_server#1459, JupyterHub CVE-2024-28233). Here the expected value is
# HMAC(cookie secret, session identity): a tossed cookie and a matching argument prove nothing.
# The ``_xsrf`` cookie itself carries that bound value (JupyterLab reads the cookie and sends it
# back as X-XSRFToken), in tornado's masked version-2 format.

_XSRF_CONTEXT = b"hardened-server/xsrf/v1\x00"
_XSRF_V2 = re.compile(r"2\|([0-9a-fA-F]{8})\|([0-9a-fA-F]{2,256})\|([0-9]{1,20})\Z")


def session_identity(user: Any) -> str | None:
    """What the XSRF token is bound to: the logged-in user's name. jupyter_server's password
    and token provider makes a fresh random user for every login, so this is per login there;
    it stays the same when the login cookie is re-signed (``PATCH /api/me``), so open pages keep
    working. ``None`` for an anonymous request (the login form)."""
    if user is None:
        return None
    name = user if isinstance(user, str) else getattr(user, "username", None)
    if not name or not isinstance(name, str):
        return None
    return "user:" + name


def bound_xsrf_raw(secret: bytes | str, identity: str) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    message = _XSRF_CONTEXT + identity.encode("utf-8", "surrogateescape")
    return hmac.new(key, message, hashlib.sha256).digest()


def _mask(mask: bytes, data: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def encode_xsrf(raw: bytes) -> bytes:
    """Tornado's version-2 form ``2|mask|masked|timestamp``: a fresh mask per response, so the
    token in a compressed page is never the same bytes twice (BREACH)."""
    mask = os.urandom(4)
    return b"|".join(
        [
            b"2",
            binascii.b2a_hex(mask),
            binascii.b2a_hex(_mask(mask, raw)),
            str(int(time.time())).encode("ascii"),
        ]
    )


def decode_xsrf(value: str | bytes | None) -> bytes | None:
    """The raw token of a version-2 value, or ``None`` for anything else."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    m = _XSRF_V2.match(value.strip())
    if not m or len(m.group(2)) % 2:
        return None
    mask = binascii.a2b_hex(m.group(1))
    return _mask(mask, binascii.a2b_hex(m.group(2)))


def xsrf_decision(supplied: str | None, expected: bytes) -> Decision:
    if not supplied:
        return deny(Rule.XSRF_MISSING, "no _xsrf argument or X-XSRFToken header")
    raw = decode_xsrf(supplied)
    if raw is None or not hmac.compare_digest(raw, expected):
        return deny(Rule.XSRF_MISMATCH, "XSRF token is not bound to this session")
    return allow(Rule.XSRF_BOUND, "XSRF token bound to this session")


# ---------------------------------------------------------------------------------------------
# Redirects.

_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def _normal_base(base_url: str) -> str:
    inner = base_url.strip("/")
    return f"/{inner}/" if inner else "/"


#: Characters never sent in a Location to an outside login endpoint (see ``external`` below).
_EXTERNAL_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def checked_location(
    url: str | bytes,
    request: HTTPServerRequest,
    base_url: str,
    *,
    external: frozenset[str] = frozenset(),
) -> tuple[str, Decision]:
    """Every ``Location`` this server sends: a same-origin path under ``base_url``
    (:func:`hardened_server.policy.redirects.safe_redirect`), or ``base_url`` itself.

    An absolute ``http(s)://`` URL is accepted only when its origin is this server's (as the
    client addressed it) and is then reduced to its path; anything else that names a scheme
    (``javascript:``, ``https:evil``, ``//evil``) is refused. Any ``token=`` parameter is
    removed first (:func:`hardened_server.policy.redirects.strip_token_params`).

    ``external``: the exact endpoints (URL or path, without query) of an outside login the
    identity provider runs, e.g. JupyterHub's OAuth ``authorize`` and ``logout``; a target
    whose part before ``?`` is one of them verbatim is sent as is. Set by the server, never
    from the request.
    """
    if isinstance(url, bytes):
        url = url.decode("utf-8", "replace")
    # No token in any Location, wherever the target came from (policy/redirects.py).
    url = strip_token_params(url)
    if external and url.split("?", 1)[0] in external and not _EXTERNAL_UNSAFE.search(url):
        return url, allow(Rule.REDIRECT_EXTERNAL, "login endpoint of the identity provider")
    base = _normal_base(base_url)
    candidate = url
    if _ABSOLUTE.match(url):
        origin = referer_origin(url) if "://" in url else None
        if origin is None or origin != own_origin(request):
            return base, deny(Rule.REDIRECT_NOT_A_PATH, "absolute URL to another origin")
        after = url[url.find("://") + 3 :]
        cut = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
        candidate = after[cut:]
        if not candidate.startswith("/"):
            candidate = "/" + candidate
    decision = redirect_decision(candidate, base_url=base)
    if not decision:
        return base, decision
    return safe_redirect(candidate, base_url=base, default=base), decision
