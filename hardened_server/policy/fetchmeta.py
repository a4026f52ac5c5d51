"""Resource isolation: refuse cross-site requests, decided on Fetch Metadata, then Origin/Referer.

The attacks this stops are all "a page on another site makes the victim's browser send an
authenticated request here":

- XSSI of user files: ``<script src="http://localhost:8888/files/secret.js">`` on evil.example
  (JS-5 / CVE-2023-40170, notebook CVE-2019-9644); likewise nbconvert output and kernelspec
  resources;
- CSRF: a cross-site form POST with the victim's cookie (JupyterHub CVE-2020-36191). JupyterHub
  CVE-2026-40864 treated ``Sec-Fetch-Mode: no-cors`` as same-origin and let a cross-site form
  POST through: the mode says *how* a request is made, never *who* made it. Only
  ``Sec-Fetch-Site`` says that, so it is the one header decided on; the mode only ever narrows
  an exception (top-level navigations), it never grants one;
- cross-site websocket hijacking (the websocket handshake carries ``Sec-Fetch-Site`` too);
- sibling-subdomain attacks: ``same-site`` is treated as ``cross-site``, because in multi-user
  deployments the sibling is another user's server (JupyterHub CVE-2024-28233, cookie tossing).

Decision order (HS-XSITE-00N ids are defined here; Origin/Referer fall-backs use
``Rule.ORIGIN_*``):

1. ``Sec-Fetch-Site: same-origin`` -> allow (HS-XSITE-001).
2. ``Sec-Fetch-Site: none`` (typed URL, bookmark) -> allow GET/HEAD (HS-XSITE-001); a
   state-changing method must then carry one of our own origins in ``Origin``.
3. ``cross-site``/``same-site``: allow a top-level GET/HEAD navigation
   (``Sec-Fetch-Mode: navigate`` *and* ``Sec-Fetch-Dest: document``) to a page route
   (HS-XSITE-002); allow a ``cors`` or ``websocket`` mode request whose Origin is on the CORS
   allow-list (HS-XSITE-004: the CORS headers still decide what the page may read, and a listed
   origin may open kernel websockets, as the enforcement layer's ``check_origin`` allows);
   refuse everything else (HS-XSITE-003). An unknown ``Sec-Fetch-Site`` value is refused
   (HS-XSITE-005).
4. No ``Sec-Fetch-Site`` (old browsers, non-browser clients): for every state-changing method,
   and for GET/HEAD on api, files, nbconvert and kernelspec routes, the ``Origin`` header
   decides, else the ``Referer`` (ORIGIN_SAME/ORIGIN_LISTED allow, ORIGIN_FOREIGN deny). With
   neither: deny state-changing requests and GET/HEAD on files, nbconvert and kernelspec
   (ORIGIN_ABSENT: a browser including the resource cross-site under ``no-referrer`` looks like
   this). **GET/HEAD on api with no Origin, no Referer and no Sec-Fetch-* header at all is
   allowed (HS-XSITE-006)**: that is a non-browser client (curl, a kernel gateway, a JupyterHub
   service) with a token; every browser that could be made to send the request (Chromium 76+,
   Firefox 90+, Safari 16.4+) sends Sec-Fetch-Site, and a JSON API response is not executable
   cross-site anyway. GET/HEAD on page, static and error routes are not restricted
   (HS-XSITE-007).
"""

from __future__ import annotations

from hardened_server.policy.decisions import Decision, RouteClass, Rule, allow, deny
from hardened_server.policy.origins import normalize_origin, referer_origin

SAFE_METHODS: frozenset[str] = frozenset({"GET", "HEAD"})
#: Route classes whose GET/HEAD responses are worth stealing cross-site (user data, API JSON).
PROTECTED_READS: frozenset[str] = frozenset(
    {RouteClass.API, RouteClass.FILES, RouteClass.NBCONVERT, RouteClass.KERNELSPEC}
)
#: GET/HEAD on these is not restricted without Fetch Metadata; an unknown class is protected.
UNRESTRICTED_READS: frozenset[str] = frozenset(
    {RouteClass.PAGE, RouteClass.STATIC, RouteClass.ERROR}
)
#: Protected reads a non-browser client may make with no Origin/Referer/Sec-Fetch-* at all.
_NON_BROWSER_READS: frozenset[str] = frozenset({RouteClass.API})
#: Modes in which a request always carries a browser-set Origin (a listed one may go through).
_LISTED_MODES = frozenset({"cors", "websocket"})
_KNOWN_SITES = frozenset({"same-origin", "same-site", "cross-site", "none"})


def _lower(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value or None


# The allowing answers, built once (a Decision is immutable): one per rule and reason.
_ORIGIN_SAME = allow(Rule.ORIGIN_SAME, "Origin is this server")
_ORIGIN_LISTED = allow(Rule.ORIGIN_LISTED, "Origin is listed in cors.allow_origins")
_REFERER_SAME = allow(Rule.ORIGIN_SAME, "Referer is on this server")
_SITE_SAME_ORIGIN = allow(Rule.XSITE_SAME_ORIGIN, "Sec-Fetch-Site: same-origin")
_SITE_NONE_SAFE = allow(Rule.XSITE_SAME_ORIGIN, "Sec-Fetch-Site: none (user-initiated)")
_NAVIGATION = allow(Rule.XSITE_NAVIGATION, "top-level navigation to a page")
_CORS_LISTED = allow(Rule.XSITE_CORS_LISTED, "CORS or websocket request from a listed origin")
_UNRESTRICTED = allow(Rule.XSITE_UNRESTRICTED, "GET/HEAD on a page, static or error route")
_NON_BROWSER_API = allow(
    Rule.XSITE_NON_BROWSER_API, "no Origin, Referer or Sec-Fetch-*: not a browser"
)


def _by_origin_headers(
    origin: str | None,
    referer: str | None,
    own_origins: frozenset[str],
    cors_origins: frozenset[str],
) -> Decision | None:
    """Origin first, then Referer; ``None`` when neither header is present."""
    if origin:
        norm = normalize_origin(origin)
        if norm is not None and norm != "null":
            if norm in own_origins:
                return _ORIGIN_SAME
            if norm in cors_origins:
                return _ORIGIN_LISTED
        return deny(Rule.ORIGIN_FOREIGN, "Origin is neither this server nor listed")
    if referer:
        ref = referer_origin(referer)
        if ref is not None and ref in own_origins:
            return _REFERER_SAME
        return deny(Rule.ORIGIN_FOREIGN, "Referer is not on this server")
    return None


def cross_site_decision(
    method: str,
    route_class: str,
    sec_fetch_site: str | None,
    sec_fetch_mode: str | None,
    sec_fetch_dest: str | None,
    origin: str | None,
    referer: str | None,
    *,
    own_origins: frozenset[str],
    cors_origins: frozenset[str] = frozenset(),
) -> Decision:
    """May this request be served, given where the browser says it comes from?

    ``own_origins`` are this server's origins, normalised (:func:`normalize_origin` of
    ``scheme://host[:port]`` for every name on the Host allow-list the server answers on);
    ``cors_origins`` the normalised ``cors.allow_origins``. ``route_class`` is a
    :class:`~hardened_server.policy.decisions.RouteClass` value. Header arguments are the raw
    header values or ``None`` when absent. See the module docstring for the order of rules.
    """
    method = method.upper()
    safe = method in SAFE_METHODS
    site = _lower(sec_fetch_site)
    mode = _lower(sec_fetch_mode)
    dest = _lower(sec_fetch_dest)

    if site is not None:
        if site not in _KNOWN_SITES:
            return deny(Rule.XSITE_UNKNOWN_SITE, "unknown Sec-Fetch-Site value")
        if site == "same-origin":
            return _SITE_SAME_ORIGIN
        if site == "none":
            if safe:
                return _SITE_NONE_SAFE
            checked = _by_origin_headers(origin, None, own_origins, frozenset())
            if checked is not None and checked.allowed:
                return checked
            return deny(Rule.XSITE_REFUSED, "state-changing request without a same-origin Origin")
        # cross-site or same-site: the mode never grants anything on its own (CVE-2026-40864).
        if safe and mode == "navigate" and dest == "document" and route_class == RouteClass.PAGE:
            return _NAVIGATION
        if mode in _LISTED_MODES and origin:
            norm = normalize_origin(origin)
            if norm is not None and norm != "null" and norm in cors_origins:
                return _CORS_LISTED
        return deny(Rule.XSITE_REFUSED, f"Sec-Fetch-Site: {site} request refused")

    # No Fetch Metadata: Origin, then Referer, where it matters.
    if safe and route_class in UNRESTRICTED_READS:
        return _UNRESTRICTED
    checked = _by_origin_headers(origin, referer, own_origins, cors_origins)
    if checked is not None:
        return checked
    if safe and route_class in _NON_BROWSER_READS and mode is None and dest is None:
        return _NON_BROWSER_API
    if safe:
        return deny(Rule.ORIGIN_ABSENT, "no Origin or Referer on a protected read")
    return deny(Rule.ORIGIN_ABSENT, "no Origin or Referer on a state-changing request")
