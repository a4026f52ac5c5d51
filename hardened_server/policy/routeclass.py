"""Routes: which class of response a route produces and whether it is public.

A route is identified by its pattern as registered with tornado, relative to ``base_url``
(``/api/contents(.*)``, ``/static/(.*)``): that is what ``routes.public`` lists and what the
start-up check and ``audit --routes`` print, so an author copies the exact string. Decided once per
route when the application is wrapped, never per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardened_server.policy.decisions import RouteClass

# Facts about a handler class the enforcement layer reads off its MRO.
KIND_API = "api"  # an APIHandler
KIND_WEBSOCKET = "websocket"  # a tornado WebSocketHandler
KIND_FILES = "files"  # serves user files raw (AuthenticatedFileHandler, FilesHandler)
KIND_STATIC = "static"  # a StaticFileHandler serving application assets
KIND_KERNELSPEC = "kernelspec"  # KernelSpecResourceHandler
KIND_NBCONVERT = "nbconvert"  # nbconvert's HTML-producing handlers
KIND_PLAIN = "plain"  # a plain RequestHandler: none of JupyterHandler's checks of its own


@dataclass(frozen=True, slots=True)
class RouteInfo:
    pattern: str  # relative to base_url, without the trailing '$'
    route_class: RouteClass
    public: bool
    unsafe_eval: bool = False  # a page route listed in routes.unsafe_eval
    script_nonce: bool = False  # a page route listed in routes.script_nonce


def relative_pattern(pattern: str, base_url: str) -> str:
    """``/jp/api/contents(.*)$`` with base ``/jp/`` -> ``/api/contents(.*)``."""
    if pattern.endswith("$"):
        pattern = pattern[:-1]
    prefix = base_url.rstrip("/")
    if prefix and pattern.startswith(prefix + "/"):
        pattern = pattern[len(prefix) :]
    return pattern or "/"


def classify(pattern: str, kinds: frozenset[str]) -> RouteClass:
    """The route class of a relative route pattern served by a handler of ``kinds``."""
    if KIND_KERNELSPEC in kinds or pattern.startswith("/kernelspecs/"):
        return RouteClass.KERNELSPEC
    if KIND_FILES in kinds or pattern.startswith("/files/"):
        return RouteClass.FILES
    if KIND_NBCONVERT in kinds or pattern.startswith("/nbconvert/"):
        return RouteClass.NBCONVERT
    if KIND_API in kinds or KIND_WEBSOCKET in kinds or pattern.startswith("/api/"):
        return RouteClass.API
    if KIND_STATIC in kinds:
        return RouteClass.STATIC
    return RouteClass.PAGE


def route_info(
    pattern: str,
    kinds: frozenset[str],
    public: frozenset[str],
    unsafe_eval: frozenset[str] = frozenset(),
    script_nonce: frozenset[str] = frozenset(),
) -> RouteInfo:
    route_class = classify(pattern, kinds)
    page = route_class == RouteClass.PAGE
    return RouteInfo(
        pattern,
        route_class,
        pattern in public,
        page and pattern in unsafe_eval,
        page and pattern in script_nonce,
    )


def classify_path(path: str, base_url: str) -> RouteClass:
    """Fallback for responses no wrapped handler produced (an unknown route, a handler an
    extension slipped past the wrapping): classify by the request path alone."""
    rel = relative_pattern(path, base_url)
    if rel == "/api" or rel.startswith("/api/"):
        return RouteClass.API
    for prefix, rc in (
        ("/files/", RouteClass.FILES),
        ("/nbconvert/", RouteClass.NBCONVERT),
        ("/kernelspecs/", RouteClass.KERNELSPEC),
        ("/static/", RouteClass.STATIC),
    ):
        if rel.startswith(prefix):
            return rc
    return RouteClass.PAGE
