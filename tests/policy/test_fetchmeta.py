"""Resource isolation on Fetch Metadata, with Origin/Referer fall-backs.

JS-5 (CVE-2023-40170): ``<script src=".../files/secret.js">`` on another site read user files.
JupyterHub CVE-2026-40864: ``Sec-Fetch-Mode: no-cors`` was taken for same-origin and a cross-site
form POST went through. JupyterHub CVE-2024-28233: a sibling subdomain is another user.
"""

from __future__ import annotations

import pytest

from hardened_server.policy.decisions import RouteClass, Rule
from hardened_server.policy.fetchmeta import (
    cross_site_decision,
)

OWN = frozenset({"http://localhost:8888", "http://127.0.0.1:8888"})
LISTED = frozenset({"https://trusted.example.com"})


def decide(
    method: str = "GET",
    route: str = RouteClass.API,
    site: str | None = None,
    mode: str | None = None,
    dest: str | None = None,
    origin: str | None = None,
    referer: str | None = None,
) -> tuple[bool, str]:
    d = cross_site_decision(
        method, route, site, mode, dest, origin, referer, own_origins=OWN, cors_origins=LISTED
    )
    return d.allowed, d.rule_id


# -- Fetch Metadata present --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("route", [c.value for c in RouteClass])
def test_same_origin_is_allowed(method: str, route: str) -> None:
    assert decide(method, route, "same-origin", "cors", "empty") == (True, Rule.XSITE_SAME_ORIGIN)


def test_user_initiated_navigation_is_allowed() -> None:
    assert decide("GET", RouteClass.FILES, "none", "navigate", "document") == (
        True,
        Rule.XSITE_SAME_ORIGIN,
    )


def test_state_changing_with_site_none_needs_our_origin() -> None:
    assert decide("POST", RouteClass.API, "none", origin="http://localhost:8888")[0]
    assert decide("POST", RouteClass.API, "none") == (False, Rule.XSITE_REFUSED)
    assert decide("POST", RouteClass.API, "none", origin="https://evil.example") == (
        False,
        Rule.XSITE_REFUSED,
    )


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_top_level_navigation_to_a_page_is_allowed(site: str, method: str) -> None:
    assert decide(method, RouteClass.PAGE, site, "navigate", "document") == (
        True,
        Rule.XSITE_NAVIGATION,
    )


@pytest.mark.parametrize(
    ("method", "route", "mode", "dest"),
    [
        ("GET", RouteClass.FILES, "no-cors", "script"),  # JS-5: XSSI of user files
        ("GET", RouteClass.FILES, "navigate", "document"),  # only page routes are navigable
        ("GET", RouteClass.NBCONVERT, "navigate", "document"),
        ("GET", RouteClass.KERNELSPEC, "no-cors", "image"),
        ("GET", RouteClass.PAGE, "navigate", "iframe"),  # framing is not a top-level navigation
        ("GET", RouteClass.PAGE, "no-cors", "script"),
        ("POST", RouteClass.PAGE, "navigate", "document"),  # cross-site form POST
        ("POST", RouteClass.API, "no-cors", "empty"),  # CVE-2026-40864
        ("POST", RouteClass.PAGE, "no-cors", "document"),
        ("GET", RouteClass.API, "websocket", "websocket"),  # cross-site websocket hijacking
        ("GET", RouteClass.API, "websocket", "empty"),
        ("GET", RouteClass.API, "cors", "empty"),  # CORS from an unlisted origin
        ("GET", RouteClass.STATIC, "no-cors", "script"),
    ],
)
@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_other_cross_site_requests_are_refused(
    method: str, route: str, mode: str, dest: str, site: str
) -> None:
    assert decide(method, route, site, mode, dest, origin="https://evil.example") == (
        False,
        Rule.XSITE_REFUSED,
    )


def test_mode_never_grants_on_its_own() -> None:
    """CVE-2026-40864: a cross-site request claiming ``no-cors``/``same-origin`` mode."""
    for mode in ("no-cors", "same-origin", "navigate", "cors", None):
        allowed, _ = decide("POST", RouteClass.API, "cross-site", mode, "empty")
        assert not allowed, mode


def test_cors_request_from_a_listed_origin_is_allowed() -> None:
    assert decide(
        "PUT", RouteClass.API, "cross-site", "cors", "empty", origin="https://trusted.example.com"
    ) == (True, Rule.XSITE_CORS_LISTED)
    assert decide(
        "PUT",
        RouteClass.API,
        "cross-site",
        "no-cors",
        "empty",
        origin="https://trusted.example.com",
    ) == (False, Rule.XSITE_REFUSED)


def test_websocket_from_a_listed_origin_is_allowed() -> None:
    """A listed origin (an embedding page) may open kernel websockets; others may not."""
    assert decide(
        "GET", RouteClass.API, "cross-site", "websocket", "websocket", origin=next(iter(LISTED))
    ) == (True, Rule.XSITE_CORS_LISTED)
    assert decide(
        "GET", RouteClass.API, "cross-site", "websocket", "websocket", origin="https://evil.example"
    ) == (False, Rule.XSITE_REFUSED)


def test_unknown_site_value_is_refused() -> None:
    assert decide("GET", RouteClass.PAGE, "bogus", "navigate", "document") == (
        False,
        Rule.XSITE_UNKNOWN_SITE,
    )


def test_header_values_are_case_insensitive() -> None:
    assert decide("GET", RouteClass.PAGE, "Cross-Site", "Navigate", "Document")[0]
    assert decide("get", RouteClass.FILES, " SAME-ORIGIN ")[0]


# -- no Fetch Metadata: Origin, then Referer ---------------------------------------------------


@pytest.mark.parametrize("route", [RouteClass.PAGE, RouteClass.STATIC, RouteClass.ERROR])
def test_reads_of_pages_and_assets_are_unrestricted(route: str) -> None:
    assert decide("GET", route, origin="https://evil.example") == (True, Rule.XSITE_UNRESTRICTED)


@pytest.mark.parametrize(
    "route", [RouteClass.API, RouteClass.FILES, RouteClass.NBCONVERT, RouteClass.KERNELSPEC]
)
def test_protected_reads_check_origin_then_referer(route: str) -> None:
    assert decide("GET", route, origin="http://localhost:8888") == (True, Rule.ORIGIN_SAME)
    assert decide("GET", route, origin="https://trusted.example.com") == (
        True,
        Rule.ORIGIN_LISTED,
    )
    assert decide("GET", route, origin="https://evil.example") == (False, Rule.ORIGIN_FOREIGN)
    assert decide("GET", route, origin="null") == (False, Rule.ORIGIN_FOREIGN)
    # Origin decides even when a same-origin Referer is sent alongside.
    assert decide(
        "GET", route, origin="https://evil.example", referer="http://localhost:8888/lab"
    ) == (False, Rule.ORIGIN_FOREIGN)
    assert decide("GET", route, referer="http://localhost:8888/lab") == (True, Rule.ORIGIN_SAME)
    assert decide("GET", route, referer="https://evil.example/x") == (False, Rule.ORIGIN_FOREIGN)
    assert decide("GET", route, referer="http://localhost:8888.evil.com/") == (
        False,
        Rule.ORIGIN_FOREIGN,
    )
    assert decide("GET", route, referer="http://localhost:8888@evil.com/") == (
        False,
        Rule.ORIGIN_FOREIGN,
    )


@pytest.mark.parametrize("route", [RouteClass.FILES, RouteClass.NBCONVERT, RouteClass.KERNELSPEC])
def test_user_content_read_without_origin_or_referer_is_refused(route: str) -> None:
    """What ``<script src>`` under ``Referrer-Policy: no-referrer`` looks like (JS-5)."""
    assert decide("GET", route) == (False, Rule.ORIGIN_ABSENT)
    assert decide("HEAD", route) == (False, Rule.ORIGIN_ABSENT)


def test_api_read_without_any_browser_header_is_a_non_browser_client() -> None:
    """Documented choice: curl or a hub service with a token sends none of these headers; every
    browser that could be made to send the request sends Sec-Fetch-Site."""
    assert decide("GET", RouteClass.API) == (True, Rule.XSITE_NON_BROWSER_API)
    assert decide("HEAD", RouteClass.API) == (True, Rule.XSITE_NON_BROWSER_API)
    # A partial set of Sec-Fetch-* headers is not a non-browser client.
    assert decide("GET", RouteClass.API, mode="no-cors") == (False, Rule.ORIGIN_ABSENT)
    assert decide("GET", RouteClass.API, dest="script") == (False, Rule.ORIGIN_ABSENT)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("route", [c.value for c in RouteClass])
def test_state_changing_requests_need_our_origin_or_referer(method: str, route: str) -> None:
    assert decide(method, route) == (False, Rule.ORIGIN_ABSENT)
    assert decide(method, route, origin="http://127.0.0.1:8888")[0]
    assert decide(method, route, referer="http://127.0.0.1:8888/lab")[0]
    assert not decide(method, route, origin="https://evil.example")[0]
    assert not decide(method, route, referer="https://evil.example/")[0]


def test_unknown_route_class_is_protected() -> None:
    assert decide("GET", "something-new") == (False, Rule.ORIGIN_ABSENT)
