"""Per-response CSP nonces (``routes.script_nonce``).

A route listed in ``routes.script_nonce`` gets a fresh nonce for every response: drawn here
when its handler is created (:func:`new_nonce`, 144 bits from :mod:`secrets`), carried on the
request (``hs_csp_nonce``), added to that response's ``Content-Security-Policy`` only by the
output transform (:mod:`hardened_server.enforcement.transform`, through
:func:`hardened_server.policy.csp.with_nonce`) and offered to the templates that render the
page:

* jupyter_server's own templates (``JupyterHandler.render_template``) see ``csp_nonce`` in
  their namespace (``None`` on a route without one);
* templates rendered by an nbconvert exporter (Voila's pages) have no handler in reach: the
  Jinja filter :func:`nonce_filter` looks the nonce up through jupyter_server's
  ``CallContext`` (the handler of the request being served) and marks the ``<script>`` tags of
  the trusted text it is applied to. With no request, or no nonce on it (a page rendered ahead
  of time, a route not listed), it changes nothing: those scripts stay blocked.

What a nonce never reaches: a notebook's content. The templates apply the filter to their own
macros and lines only (``share/jupyter/voila/templates/hardened``), and an output's
``<script>``, re-created by the front-end or written by a Markdown cell, carries no nonce and is
refused (SECURITY.md, "Per-response nonces").
"""

from __future__ import annotations

import secrets
from typing import Any

from hardened_server.enforcement.context import current_request
from hardened_server.policy.csp import mark_scripts

__all__ = ["NONCE_ATTR", "NONCE_BYTES", "current_nonce", "new_nonce", "nonce_filter", "nonce_of"]

#: The request attribute that carries the response's nonce.
NONCE_ATTR = "hs_csp_nonce"
#: 144 bits: 24 base64url characters, no padding (CSP3 asks for at least 128).
NONCE_BYTES = 18


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


def nonce_of(request: Any) -> str | None:
    nonce = getattr(request, NONCE_ATTR, None)
    return nonce if isinstance(nonce, str) and nonce else None


def current_nonce() -> str | None:
    """The nonce of the response the current request context is producing, if it has one."""
    return nonce_of(current_request())


def nonce_filter(trusted_html: Any) -> Any:
    """Jinja filter ``hs_nonce``: the ``<script>`` tags of ``trusted_html`` marked with this
    response's nonce (unchanged without one). Apply it to a template's own text only, never to
    anything that holds a notebook's content."""
    nonce = current_nonce()
    if nonce is None:
        return trusted_html
    # A plain string: nbconvert's environment does not autoescape (where one does, the page
    # shows the markup instead of running it: broken, never opened).
    return mark_scripts(str(trusted_html), nonce)
