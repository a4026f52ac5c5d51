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
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.model import Policy

HeaderSet = tuple[tuple[str, str], ...]

# Headers a response must not carry whatever the handler did: ``Server`` gives the tornado
# version away (attackers pick advisories by version); ``X-Powered-By`` likewise.
REMOVED_HEADERS: tuple[str, ...] = ("Server", "X-Powered-By")


def csp_report_uri(base_url: str) -> str:
    return base_url.rstrip("/") + "/api/security/csp-report"


def csp_for(policy: Policy, route_class: str, base_url: str) -> str:
    directives: csp.Directives = policy.csp[route_class]
    if policy.headers.csp_report and directives:
        directives = csp.merge(directives, {"report-uri": (csp_report_uri(base_url),)})
    return csp.serialize(directives)


def _frame_options(policy: Policy, route_class: str) -> str:
    """X-Frame-Options agrees with the class's CSP frame-ancestors (which modern browsers use
    instead): a class that may be framed by our own pages (files shown in /view) gets
    SAMEORIGIN, everything else the policy's value."""
    ancestors = policy.csp[route_class].get("frame-ancestors", ())
    if ancestors == (csp.CSP.SELF,):
        return "SAMEORIGIN"
    return policy.headers.x_frame_options


def compile_header_sets(policy: Policy, base_url: str) -> Mapping[tuple[str, bool], HeaderSet]:
    """``(route_class, over_tls) -> headers`` for every route class."""
    h = policy.headers
    sets: dict[tuple[str, bool], HeaderSet] = {}
    for rc in ROUTE_CLASSES:
        common: list[tuple[str, str]] = [
            ("Content-Security-Policy", csp_for(policy, rc, base_url)),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", h.referrer_policy),
            ("X-Frame-Options", _frame_options(policy, rc)),
            ("Cross-Origin-Opener-Policy", h.cross_origin_opener_policy),
            ("Cross-Origin-Resource-Policy", h.cross_origin_resource_policy),
            ("Permissions-Policy", h.permissions_policy),
        ]
        if h.cache_control[rc]:
            common.append(("Cache-Control", h.cache_control[rc]))
        sets[(rc, False)] = tuple(common)
        tls = list(common)
        if h.hsts_max_age > 0:
            value = f"max-age={h.hsts_max_age}"
            if h.hsts_include_subdomains:
                value += "; includeSubDomains"
            tls.append(("Strict-Transport-Security", value))
        sets[(rc, True)] = tuple(tls)
    return MappingProxyType(sets)
