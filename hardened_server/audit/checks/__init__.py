"""The audit's check registry, in the style of Django's ``check --deploy``.

Every check has a **stable id**, one **severity**, a one-line **title**, a **fix** (the policy key
or setting to change) and a short **doc** saying why it matters. A check is a small pure
function over :class:`~hardened_server.audit.facts.Facts` (what the audit learnt about a
configuration) that yields :class:`Hit` s; the runner turns hits into :class:`Finding` s. Live
checks (black-box, :mod:`hardened_server.audit.probes`) are registered here too, without a
function: the probes report findings against their ids, so the SARIF rules, the HTML report and
``--list-checks`` describe all of them from one table.

Check ids
---------

``HS-<AREA>-<NNN>``. Numbers below 100 are taken by the request-time decision rules
(:class:`hardened_server.policy.rules.Rule`, ``HS-PATH-00N``, ``HS-XSITE-00N`` ...), which name
*why a request was decided*, in audit records. Audit checks name *what is wrong with a
configuration or a server* and number from 101:

* ``1NN``: static checks of the effective configuration (policy, Jupyter config, environment,
  files on disk);
* ``2NN``: live checks, found by probing a running server over HTTP;
* ``3NN``: checks of the route inventory (``--routes``) and of extension code (``--extensions``).

An id is never renumbered or reused; a retired check keeps its id reserved. Like Django, a check
has one severity: a condition that deserves another severity is another check (``HS-CSP-204``
and ``HS-CSP-103`` are both ``'unsafe-eval'`` on application pages: information when a live
probe finds it on any Jupyter server, where stock JupyterLab needs it, and a warning when a
hardened-server policy grants it through ``routes.unsafe_eval``, which nothing needs).

Silencing is by id only (``--silence HS-CSP-103``), as Django's ``SILENCED_SYSTEM_CHECKS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from hardened_server.audit.facts import Facts


class Severity(IntEnum):
    """Django's levels (``INFO=20 ... CRITICAL=50``), without DEBUG."""

    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown severity {text!r}; one of " + ", ".join(s.label for s in cls)
            ) from None


INFO, WARNING, ERROR, CRITICAL = Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL

KIND_STATIC = "static"
KIND_LIVE = "live"
KIND_ROUTES = "routes"
KIND_EXTENSIONS = "extensions"
KINDS = (KIND_STATIC, KIND_LIVE, KIND_ROUTES, KIND_EXTENSIONS)


@dataclass(frozen=True)
class Location:
    """Where a finding points: a file (policy, Jupyter config, extension module) with the key
    and line when known, or the URL a live probe requested."""

    file: str | None = None
    key: str | None = None
    line: int | None = None
    url: str | None = None

    def describe(self) -> str:
        if self.url:
            return self.url
        parts = [self.file or ""]
        if self.line:
            parts[0] += f":{self.line}"
        if self.key:
            parts.append(f"[{self.key}]")
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Hit:
    """What a check function yields: the evidence, and optionally where and a more precise fix."""

    evidence: str
    location: Location | None = None
    fix: str | None = None


@dataclass(frozen=True)
class Finding:
    check_id: str
    severity: Severity
    title: str
    evidence: str
    fix: str
    kind: str
    location: Location | None = None
    silenced: bool = False

    def as_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "id": self.check_id,
            "severity": self.severity.label,
            "title": self.title,
            "evidence": self.evidence,
            "fix": self.fix,
            "kind": self.kind,
            "silenced": self.silenced,
            "location": None
            if loc is None
            else {"file": loc.file, "key": loc.key, "line": loc.line, "url": loc.url},
        }


CheckFunc = Callable[["Facts"], Iterable[Hit]]


@dataclass(frozen=True)
class Check:
    id: str
    severity: Severity
    title: str
    fix: str
    doc: str
    kind: str
    tags: tuple[str, ...] = ()
    func: CheckFunc | None = field(default=None, compare=False)

    def finding(
        self,
        evidence: str,
        location: Location | None = None,
        fix: str | None = None,
        *,
        silenced: bool = False,
    ) -> Finding:
        return Finding(
            self.id,
            self.severity,
            self.title,
            evidence,
            fix or self.fix,
            self.kind,
            location,
            silenced,
        )


#: Every check, by id, in registration order.
REGISTRY: dict[str, Check] = {}


def _register(chk: Check) -> Check:
    if chk.id in REGISTRY and REGISTRY[chk.id] != chk:
        raise ValueError(f"check id {chk.id} registered twice")
    if chk.kind not in KINDS:
        raise ValueError(f"{chk.id}: unknown kind {chk.kind!r}")
    REGISTRY[chk.id] = chk
    return chk


def check(
    check_id: str,
    severity: Severity,
    title: str,
    *,
    fix: str,
    doc: str,
    tags: tuple[str, ...] = (),
    kind: str = KIND_STATIC,
) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check function (decorator)."""

    def deco(func: CheckFunc) -> CheckFunc:
        _register(Check(check_id, severity, title, fix, doc, kind, tags, func))
        return func

    return deco


def declare(
    check_id: str,
    severity: Severity,
    title: str,
    *,
    fix: str,
    doc: str,
    tags: tuple[str, ...] = (),
    kind: str = KIND_LIVE,
) -> Check:
    """Register a check evaluated elsewhere (the live probes report against its id)."""
    return _register(Check(check_id, severity, title, fix, doc, kind, tags, None))


_MODULES = (
    "hardened_server.audit.checks.policy",
    "hardened_server.audit.checks.env",
    "hardened_server.audit.checks.identity",
    "hardened_server.audit.checks.live",
)


def registry() -> dict[str, Check]:
    """The full registry (importing the modules that register checks)."""
    for name in _MODULES:
        importlib.import_module(name)
    return REGISTRY


def checks_of(kind: str) -> list[Check]:
    return [c for c in registry().values() if c.kind == kind]


def run_checks(
    facts: Facts, kinds: Iterable[str] = (KIND_STATIC,), silence: Iterable[str] = ()
) -> list[Finding]:
    """Run every registered check of ``kinds`` over ``facts``. A silenced id still runs (the
    report counts silenced findings, as Django does) but is marked ``silenced``."""
    silenced = set(silence)
    wanted = set(kinds)
    findings: list[Finding] = []
    for chk in registry().values():
        if chk.kind not in wanted or chk.func is None:
            continue
        for hit in _hits(chk, facts):
            findings.append(
                chk.finding(hit.evidence, hit.location, hit.fix, silenced=chk.id in silenced)
            )
    return sort_findings(findings)


def _hits(chk: Check, facts: Facts) -> Iterator[Hit]:
    assert chk.func is not None
    yield from chk.func(facts)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first, then by id (stable output for diffs and tests)."""
    return sorted(findings, key=lambda f: (-int(f.severity), f.check_id, f.evidence))


def apply_silence(findings: Iterable[Finding], silence: Iterable[str]) -> list[Finding]:
    silenced = set(silence)
    out = []
    for f in findings:
        if f.check_id in silenced and not f.silenced:
            f = Finding(
                f.check_id, f.severity, f.title, f.evidence, f.fix, f.kind, f.location, True
            )
        out.append(f)
    return out
