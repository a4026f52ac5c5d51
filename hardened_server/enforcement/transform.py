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
:class:`hardened_server.enforcement.httpserver.PolicyHTTPServer` gives that answer the error
class's header set.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tornado.httputil import HTTPHeaders, HTTPServerRequest
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
