"""jupyter_server's Authorizer, answering from the route map.

``@authorized`` handlers (and handlers that call ``self.authorizer.is_authorized`` themselves:
the kernel and terminal websockets, jupyter_lsp, the events websocket, ``GET /api/me``'s
permission query) ask ``is_authorized(handler, user, action, resource)``. The answer comes from
the same table the route map resolves through (:data:`~hardened_server.policy.scopemap.
RESOURCE_SCOPES`), so an ``@authorized`` route and ``prepare()`` cannot disagree; a resource the
table does not know is refused unless the operator mapped the handler's route in
``scopes.routes`` (an extension's own resource name). Stock ``AllowAllAuthorizer`` says yes to
everything.

``prepare()`` has already checked the route's own requirement before any of this runs: the
Authorizer is the second check, not the only one (JupyterLab's ``/lab/api/*`` handlers never
call it).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer

from hardened_server.policy.scopemap import RouteScopes, authorizer_scopes
from hardened_server.policy.scopes import has_scopes


class HardenedAuthorizer(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        route: RouteScopes | None = getattr(handler, "_hs_scopes", None)
        method = getattr(getattr(handler, "request", None), "method", "") or ""
        required = authorizer_scopes(resource, action, route, method)
        if required is None:
            self.log.debug(
                "hardened-server: refused %r on unknown resource %r (not in the route map)",
                action[:40],
                resource[:40],
            )
            return False
        return has_scopes(user, required)
