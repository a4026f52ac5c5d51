"""The one shape every policy answer takes.

A ``Decision`` is what a pure policy function returns and what the audit trail records: whether
the request may go on, the stable id of the rule that decided, and a short reason a human can read.
Rule ids are stable API (audit records, metrics labels and ``policy explain`` refer to them), so
they are declared once, in :mod:`hardened_server.policy.rules`; ``Rule`` is re-exported here for
the modules that build decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hardened_server.policy.rules import Rule

__all__ = ["ROUTE_CLASSES", "Decision", "RouteClass", "Rule", "allow", "deny"]


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
