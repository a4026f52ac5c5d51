"""The CSP report endpoint (``POST /api/security/csp-report``), bounded and log-safe.

Replaces jupyter_server's ``CSPReportHandler`` on its route: same URL, same authentication and
authorization, but the body is capped (16 KiB), each client is rate-limited, both report formats
are parsed (:mod:`hardened_server.policy.cspreport`; a body without a content type is
answered 200 like stock, recorded if it parses) and each violation becomes one structured
decision record; the raw body never reaches a log line.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.services.security.handlers import CSPReportHandler
from tornado import web

from hardened_server.enforcement.recorder import record_csp_violation
from hardened_server.enforcement.runtime import RateLimiter, client_key
from hardened_server.policy.cspreport import (
    MAX_REPORT_BYTES,
    CSPReportError,
    CSPViolation,
    parse_reports,
)
from hardened_server.policy.routeclass import classify_path

# Reports are a side channel, not a workload: 60 a minute per client, bursts of 120.
_LIMITER = RateLimiter(60, 120)


class HardenedCSPReportHandler(CSPReportHandler):
    @web.authenticated
    @authorized
    def post(self) -> None:
        wait = _LIMITER.charge(client_key(self.request.remote_ip or ""))
        if wait is not None:
            # answered here, not by raising: send_error would clear the Retry-After header
            self.set_status(429)
            self.set_header("Retry-After", str(max(1, int(wait))))
            self.set_header("Content-Type", "application/json")
            self.finish('{"message": "Too Many Requests", "reason": null}')
            return
        content_type = self.request.headers.get("Content-Type")
        if content_type is None:
            # Stock answers 200 to any body; clients that post without a content type (old
            # browsers' report-uri, jupyter_server's own tests) keep working. The body is
            # still capped (413) and charged to the rate limit above; what parses as a report
            # is recorded like any other, the rest is dropped unlogged.
            if len(self.request.body) > MAX_REPORT_BYTES:
                raise web.HTTPError(413, "report body too large")
            try:
                reports = parse_reports(self.request.body, "application/json")
            except CSPReportError:
                reports = []
            self._record(reports)
            self.finish()
            return
        try:
            reports = parse_reports(self.request.body, content_type)
        except CSPReportError as exc:
            raise web.HTTPError(413 if "too large" in str(exc) else 400, str(exc)) from None
        self._record(reports)
        self.set_status(204)
        self.finish()

    def _record(self, reports: list[CSPViolation]) -> None:
        base_url = self.settings.get("base_url", "/")
        for report in reports:
            route_class = classify_path(report.document_path or "/", base_url)
            record_csp_violation(self.request, report, route_class)


def replace_csp_report_handler(target: Any) -> Any:
    """The rule target to use instead of ``target`` (only jupyter_server's own class)."""
    return HardenedCSPReportHandler if target is CSPReportHandler else target
