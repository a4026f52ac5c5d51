"""The one shape every policy answer takes.

A ``Decision`` is what a pure policy function returns and what the audit trail records: whether
the request may go on, the stable id of the rule that decided, and a short reason a human can read.
Rule ids are stable API (audit records, metrics labels and ``policy explain`` refer to them), so
they are constants here rather than strings scattered through the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RouteClass(StrEnum):
    """What kind of response a route produces; each class has its own header set and CSP."""

    PAGE = "page"  # HTML application pages: /lab, /tree, /login, redirects to them
    API = "api"  # JSON APIs and websockets
    FILES = "files"  # user content served raw: /files
    NBCONVERT = "nbconvert"  # user notebooks rendered to HTML and other formats
    KERNELSPEC = "kernelspec"  # kernelspec resources (logos, js) from possibly user-writable dirs
    STATIC = "static"  # application assets: /static, /lab/extensions, themes
    ERROR = "error"  # error responses of page and static routes


ROUTE_CLASSES: tuple[str, ...] = tuple(c.value for c in RouteClass)


class Rule(StrEnum):
    """Stable rule ids. Never renumber; add new ones at the end of their family."""

    HOST_ALLOWED = "HS-HOST-001"
    HOST_FOREIGN = "HS-HOST-002"
    AUTH_REQUIRED = "HS-AUTH-001"
    AUTH_PUBLIC_ROUTE = "HS-AUTH-002"
    ORIGIN_SAME = "HS-ORIGIN-001"
    ORIGIN_LISTED = "HS-ORIGIN-002"
    ORIGIN_FOREIGN = "HS-ORIGIN-003"
    ORIGIN_ABSENT = "HS-ORIGIN-004"
    CORS_LISTED = "HS-CORS-001"
    CORS_NOT_LISTED = "HS-CORS-002"
    START_UNAUTHENTICATED_ROUTE = "HS-START-001"
    START_SETTING_OVERRIDE = "HS-START-002"
    START_ALLOW_ORIGIN = "HS-START-003"
    START_DISABLE_XSRF = "HS-START-004"
    START_NO_AUTH = "HS-START-005"
    START_TERMINALS = "HS-START-006"
    START_INSECURE_REMOTE = "HS-START-007"
    START_SETTINGS_DRIFT = "HS-START-008"
    START_WEAK_TOKEN = "HS-START-009"  # noqa: S105 - a rule id, not a secret
    START_UNAUTHENTICATED_ACCESS = "HS-START-010"
    SCOPE_MISSING = "HS-SCOPE-001"  # the principal lacks a scope the route map requires
    SCOPE_UNMAPPED = "HS-SCOPE-002"  # a route (or method) the route map does not know
    SCOPE_EVENT_SCHEMA = "HS-SCOPE-003"  # POST /api/events with a schema not listed for clients
    SCOPE_GRANTED = "HS-SCOPE-004"  # allowed (for explain and tests; not recorded per request)


@dataclass(frozen=True, slots=True)
class Decision:
    """One policy answer: allowed or not, by which rule, and why (no secrets in ``reason``)."""

    allowed: bool
    rule_id: str
    reason: str

    def __bool__(self) -> bool:  # a Decision reads naturally in an ``if``
        return self.allowed


def allow(rule: Rule | str, reason: str) -> Decision:
    return Decision(True, str(rule), reason)


def deny(rule: Rule | str, reason: str) -> Decision:
    return Decision(False, str(rule), reason)
