"""CSP violation reports, parsed into a few bounded, loggable fields.

Browsers send two formats: the CSP2 ``application/csp-report`` body ``{"csp-report": {...}}``
(``report-uri``) and the Reporting API ``application/reports+json`` list
``[{"type": "csp-violation", "body": {...}}]`` (``report-to``). Either is attacker-controlled
text: stock jupyter_server logs the raw body at WARNING, which lets any page forge log lines
(a newline in the body) and fills logs without bound. Here a report is reduced to the violated
directive (a name from a fixed alphabet), the blocked resource as ``scheme://host/path`` (no
query or fragment, which could carry a token) and the path of the document it happened on;
everything else is dropped.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass

MAX_REPORT_BYTES = 16 * 1024
MAX_REPORTS_PER_BODY = 20
_DIRECTIVE = re.compile(r"[a-z][a-z-]{0,40}\Z")
_KEYWORD_BLOCKED = frozenset(
    {"inline", "eval", "self", "data", "blob", "wasm-eval", "trusted-types-sink"}
)


class CSPReportError(ValueError):
    """Not a CSP report we accept (the handler answers 400)."""


@dataclass(frozen=True, slots=True)
class CSPViolation:
    directive: str
    blocked: str
    document_path: str


def _url_without_secrets(value: object, *, path_only: bool = False) -> str:
    if not isinstance(value, str) or not value:
        return ""
    if value in _KEYWORD_BLOCKED:
        return value
    try:
        parts = urllib.parse.urlsplit(value[:2048])
    except ValueError:
        return "invalid"
    path = parts.path[:200]
    if path_only:
        return path
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.hostname or ''}{path}"[:300]
    return parts.scheme + ":" if parts.scheme else path


def _one(body: object) -> CSPViolation:
    if not isinstance(body, dict):
        raise CSPReportError("a report body is a JSON object")
    directive = body.get("effective-directive") or body.get("effectiveDirective") or body.get(
        "violated-directive"
    ) or ""
    if not isinstance(directive, str):
        raise CSPReportError("the directive is not a string")
    directive = directive.split()[0].lower() if directive.strip() else ""
    if not _DIRECTIVE.match(directive):
        directive = "unknown"
    blocked = body.get("blocked-uri", body.get("blockedURL", ""))
    document = body.get("document-uri", body.get("documentURL", ""))
    return CSPViolation(
        directive=directive,
        blocked=_url_without_secrets(blocked),
        document_path=_url_without_secrets(document, path_only=True),
    )


def parse_reports(body: bytes, content_type: str) -> list[CSPViolation]:
    """Both formats; raises :class:`CSPReportError` for anything else."""
    if len(body) > MAX_REPORT_BYTES:
        raise CSPReportError("report body too large")
    mime = content_type.split(";")[0].strip().lower()
    if mime not in ("application/csp-report", "application/reports+json", "application/json"):
        raise CSPReportError("not a CSP report content type")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CSPReportError("the body is not JSON") from None
    if isinstance(doc, dict) and "csp-report" in doc:
        return [_one(doc["csp-report"])]
    if isinstance(doc, list):
        out = []
        for item in doc[:MAX_REPORTS_PER_BODY]:
            if isinstance(item, dict) and item.get("type") == "csp-violation":
                out.append(_one(item.get("body")))
        if out:
            return out
    raise CSPReportError("no CSP violation in the report")
