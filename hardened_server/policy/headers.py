"""The response headers of each route class, computed once per policy.

Every response gets the set of its route class: CSP, ``X-Content-Type-Options``,
``Referrer-Policy``, frame protection, COOP, CORP, ``Permissions-Policy``, ``Cache-Control`` where
the class asks for it, and HSTS when the request arrived over TLS. The sets are tuples of
``(name, value)`` built when the policy loads; a request only looks its set up.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hardened_server.policy import csp
from hardened_server.policy.decisions import ROUTE_CLASSES, RouteClass
from hardened_server.policy.model import Policy

#: The least HSTS max-age (one year) that the HSTS preload list and the HTTP Observatory accept;
#: the audit grades policies and live servers against it.
HSTS_MIN_MAX_AGE = 31_536_000

HeaderSet = tuple[tuple[str, str], ...]

# Headers a response must not carry whatever the handler did: ``Server`` gives the tornado
# version away (attackers pick advisories by version); ``X-Powered-By`` likewise.
REMOVED_HEADERS: tuple[str, ...] = ("Server", "X-Powered-By")


def csp_report_uri(base_url: str) -> str:
    return base_url.rstrip("/") + "/api/security/csp-report"


#: The header-set key of page routes listed in ``routes.unsafe_eval``: the page CSP with
#: ``'unsafe-eval'`` added to ``script-src`` (see SECURITY.md, accepted risk).
PAGE_EVAL = "page-eval"


def csp_directives_for(
    policy: Policy,
    route_class: str,
    base_url: str,
    *,
    script_hashes: tuple[str, ...] = (),
    unsafe_eval: bool = False,
) -> csp.Directives:
    """The CSP of a route class as directives. ``script_hashes`` (``'sha256-...'`` sources of
    the inline scripts of trusted templates) and ``'unsafe-eval'`` are added to ``script-src``
    of the page class only, and only where it has a ``script-src`` to add to."""
    directives: csp.Directives = policy.csp[route_class]
    if route_class == RouteClass.PAGE and "script-src" in directives:
        extra: tuple[str, ...] = ()
        if policy.headers.csp_template_hashes:
            extra += script_hashes
        if unsafe_eval:
            extra += (csp.CSP.UNSAFE_EVAL,)
        if extra:
            sources = tuple(s for s in directives["script-src"] if s != csp.CSP.NONE)
            directives = csp.merge(directives, {"script-src": (*sources, *extra)})
    if policy.headers.csp_report and directives:
        directives = csp.merge(directives, {"report-uri": (csp_report_uri(base_url),)})
    return directives


def csp_for(
    policy: Policy,
    route_class: str,
    base_url: str,
    *,
    script_hashes: tuple[str, ...] = (),
    unsafe_eval: bool = False,
) -> str:
    """The CSP header value of a route class (:func:`csp_directives_for`, serialised)."""
    return csp.serialize(
        csp_directives_for(
            policy, route_class, base_url, script_hashes=script_hashes, unsafe_eval=unsafe_eval
        )
    )


def _frame_options(policy: Policy, route_class: str) -> str:
    """X-Frame-Options agrees with the class's CSP frame-ancestors (which modern browsers use
    instead): a class that may be framed by our own pages (files shown in /view) gets
    SAMEORIGIN, everything else the policy's value."""
    ancestors = policy.csp[route_class].get("frame-ancestors", ())
    if ancestors == (csp.CSP.SELF,):
        return "SAMEORIGIN"
    return policy.headers.x_frame_options


def compile_header_sets(
    policy: Policy, base_url: str, *, script_hashes: tuple[str, ...] = ()
) -> Mapping[tuple[str, bool], HeaderSet]:
    """``(route_class, over_tls) -> headers`` for every route class, plus :data:`PAGE_EVAL`."""
    h = policy.headers
    sets: dict[tuple[str, bool], HeaderSet] = {}
    for key in (*ROUTE_CLASSES, PAGE_EVAL):
        rc = RouteClass.PAGE.value if key == PAGE_EVAL else key
        policy_csp = csp_for(
            policy, rc, base_url, script_hashes=script_hashes, unsafe_eval=key == PAGE_EVAL
        )
        common: list[tuple[str, str]] = [
            ("Content-Security-Policy", policy_csp),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", h.referrer_policy),
            ("X-Frame-Options", _frame_options(policy, rc)),
            ("Cross-Origin-Opener-Policy", h.cross_origin_opener_policy),
            ("Cross-Origin-Resource-Policy", h.cross_origin_resource_policy),
            ("Permissions-Policy", h.permissions_policy),
        ]
        if h.cache_control[rc]:
            common.append(("Cache-Control", h.cache_control[rc]))
        sets[(key, False)] = tuple(common)
        tls = list(common)
        if h.hsts_max_age > 0:
            value = f"max-age={h.hsts_max_age}"
            if h.hsts_include_subdomains:
                value += "; includeSubDomains"
            tls.append(("Strict-Transport-Security", value))
        sets[(key, True)] = tuple(tls)
    return MappingProxyType(sets)
