"""Response headers on every response, whatever produced it.

``set_default_headers`` only runs for ``AuthenticatedHandler`` subclasses, and jupyter_server
catches (and logs) any exception there, silently dropping the CSP (tornado#3240). Plain
``RequestHandler`` routes, redirects, error pages and 404s would go out bare. A tornado
``OutputTransform`` sees the first chunk of every response the application writes, so the
policy's header set is applied here, last, over whatever the handler set.

A response of a ``routes.script_nonce`` route gets its own nonce added to the page CSP here
(:mod:`hardened_server.enforcement.nonce`); an error response of that route does not.

It is also the last line of the redirect rule: a 3xx whose ``Location`` did not come through a
mixin's ``redirect()`` (a handler that set the header itself, an unwrapped error path) is checked
here with the same validator and sent to base_url if it would leave the origin.

One answer never passes through the application: when ``tornado/http1connection.py`` cannot
parse a request (a bad ``Content-Length``, bad chunked encoding, a chunked body past the body
limit) it writes a bare ``HTTP/1.1 400 Bad Request`` to the socket itself and closes it.
:class:`PolicyHTTPServer` watches each connection's stream for exactly those bytes and writes
instead a short 400 with the error class's header set (:func:`bad_request_answer`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.iostream import IOStream, SSLIOStream
from tornado.web import OutputTransform

from hardened_server.enforcement.gate import checked_location
from hardened_server.enforcement.nonce import nonce_of
from hardened_server.enforcement.recorder import record_denial
from hardened_server.enforcement.runtime import PolicyRuntime
from hardened_server.policy.decisions import RouteClass
from hardened_server.policy.headers import PAGE_EVAL, REMOVED_HEADERS
from hardened_server.policy.redirects import strip_token_params
from hardened_server.policy.routeclass import classify_path

_ERROR_CLASS_FOR = frozenset({RouteClass.PAGE, RouteClass.STATIC})


class SecurityHeadersTransform(OutputTransform):
    """Bound to one application's :class:`PolicyRuntime` by :func:`transform_for`."""

    runtime: ClassVar[PolicyRuntime]

    def __init__(self, request: HTTPServerRequest) -> None:
        self.request = request

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        compiled = self.runtime.current
        route_class: Any = getattr(self.request, "hs_route_class", None)
        if route_class is None:
            route_class = classify_path(self.request.path, compiled.base_url)
        if status_code >= 400 and route_class in _ERROR_CLASS_FOR:
            route_class = RouteClass.ERROR
        over_tls = self.request.protocol == "https"
        header_key = route_class
        if route_class == RouteClass.PAGE and getattr(self.request, "hs_unsafe_eval", False):
            header_key = PAGE_EVAL  # a page route listed in routes.unsafe_eval
        for name, value in compiled.headers[(header_key, over_tls)]:
            headers[name] = value
        nonce = nonce_of(self.request)
        if nonce is not None and route_class == RouteClass.PAGE:
            # routes.script_nonce: this response's nonce, in this response's header only; a
            # page carrying one is never stored (a cached copy would replay the nonce).
            headers["Content-Security-Policy"] = compiled.csp_with_nonce(header_key, nonce)
            headers["Cache-Control"] = "no-store"
        if getattr(self.request, "hs_no_referrer", False):
            headers["Referrer-Policy"] = "no-referrer"  # a URL token was just stripped
        for name in REMOVED_HEADERS:
            if name in headers:
                del headers[name]
        if 300 <= status_code < 400 and "Location" in headers:
            location = headers["Location"]
            target, decision = checked_location(
                location, self.request, compiled.base_url, external=self.runtime.external_redirects
            )
            if not decision:
                record_denial(self.request, decision, route_class)
                headers["Location"] = target
            elif strip_token_params(location) != location:
                headers["Location"] = target  # the same target without its token
        return status_code, headers, chunk

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        return chunk


def transform_for(runtime: PolicyRuntime) -> type[SecurityHeadersTransform]:
    return type("SecurityHeadersTransform", (SecurityHeadersTransform,), {"runtime": runtime})


#: What tornado's HTTP1Connection writes itself for a request it cannot parse (and nothing
#: else writes: every response of the application has header fields).
BARE_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"
_BAD_REQUEST_BODY = b"400 Bad Request\n"


def bad_request_answer(runtime: PolicyRuntime, over_tls: bool) -> bytes:
    """The 400 sent in place of tornado's bare one: the error class's headers (CSP, nosniff,
    frame protection, ``Cache-Control: no-store``, HSTS over TLS), a short plain-text body,
    and ``Connection: close`` (tornado closes the connection right after)."""
    fields = [
        ("Content-Type", "text/plain; charset=UTF-8"),
        ("Content-Length", str(len(_BAD_REQUEST_BODY))),
        ("Connection", "close"),
        *runtime.current.headers[(RouteClass.ERROR, over_tls)],
    ]
    head = "HTTP/1.1 400 Bad Request\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields)
    return (head + "\r\n").encode("latin-1") + _BAD_REQUEST_BODY


class PolicyHTTPServer(HTTPServer):
    """tornado's ``HTTPServer`` whose connections answer an unparseable request with
    :func:`bad_request_answer`. Bound to one application's runtime by :func:`http_server_for`.

    tornado offers no hook for that answer (``HTTP1Connection._read_message`` writes it from
    its ``except HTTPInputError``), so the stream's ``write`` is wrapped: one length comparison
    per write, and the exact bytes compared only when the length matches."""

    runtime: ClassVar[PolicyRuntime]

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        write = stream.write
        runtime = self.runtime
        over_tls = isinstance(stream, SSLIOStream)

        def write_with_policy(data: Any) -> Any:
            if len(data) == len(BARE_BAD_REQUEST) and bytes(data) == BARE_BAD_REQUEST:
                data = bad_request_answer(runtime, over_tls)
            return write(data)

        stream.write = write_with_policy  # type: ignore[method-assign]
        super().handle_stream(stream, address)


def http_server_for(runtime: PolicyRuntime) -> type[PolicyHTTPServer]:
    return type("PolicyHTTPServer", (PolicyHTTPServer,), {"runtime": runtime})
