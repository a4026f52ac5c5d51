"""What-if: a 429 on a page route costs no template.

A client over its unauthenticated budget that still POSTs /login is refused by the handler
(``_Hardened._hs_rate_limit``), and ``_Hardened.write_error`` hands a page-route error to
jupyter_server, which renders ``error.html`` (Jinja, the page template, its namespace) for every
refused request: a refusal costs more than stock's wrong-password answer. Proposed for real:
``write_error`` answers 429 with the gate's short body (``gate.write_refusal_body``).
"""

from hardened_server.enforcement import gate, handlers

_write_error = handlers._Hardened.write_error


def write_error(self, status_code, **kwargs):  # type: ignore[no-untyped-def]
    if status_code == 429:
        if self._hs_retry_after is not None:
            self.set_header("Retry-After", str(self._hs_retry_after))
        gate.write_refusal_body(self, status_code, self._hs_route.route_class == "api")
        return
    _write_error(self, status_code, **kwargs)


handlers._Hardened.write_error = write_error
