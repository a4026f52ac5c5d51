"""Audit reports: the score and grade, and the text, JSON, SARIF and HTML renderings.

Scoring rubric (version 1)
==========================

The score starts at **100**. Every distinct check id that fired (and was not silenced) subtracts
once, by its severity, however many findings it produced (the HTTP Observatory scores per test,
not per header, in the same way):

============  =========
severity      penalty
============  =========
critical      40
error         20
warning       10
info          0 (shown, never scored)
============  =========

The score never goes below 0. The grade is read off the score, as the HTTP Observatory's chart:

====  =========  ====  =========  ====  =========
A+    100        B     70 - 79    D+    40 - 44
A     90 - 99    B-    65 - 69    D     30 - 39
A-    85 - 89    C+    60 - 64    D-    25 - 29
B+    80 - 84    C     50 - 59    F     below 25
                 C-    45 - 49
====  =========  ====  =========  ====  =========

and then capped: any **error** caps it at **B**, any **critical** at **D**. So **A+** means a
score of 100: no warning, error or critical finding at all (information findings allowed).

Silenced checks (``--silence ID``) still run; their findings are listed as silenced and neither
scored nor counted for ``--fail-on``.

JSON reports follow ``hardened_server/audit/schemas/audit-report-v1.json`` (versioned:
``report_version`` changes only with an incompatible change). SARIF reports follow SARIF 2.1.0.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardened_server import __version__
from hardened_server.audit.checks import (
    CRITICAL,
    ERROR,
    INFO,
    WARNING,
    Finding,
    Severity,
    registry,
)

RUBRIC_VERSION = 1
REPORT_VERSION = 1
REPORT_SCHEMA_ID = "https://hardened-server.invalid/schema/audit-report/v1"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

PENALTY: dict[Severity, int] = {CRITICAL: 40, ERROR: 20, WARNING: 10, INFO: 0}
GRADES: tuple[tuple[int, str], ...] = (
    (100, "A+"), (90, "A"), (85, "A-"), (80, "B+"), (70, "B"), (65, "B-"), (60, "C+"),
    (50, "C"), (45, "C-"), (40, "D+"), (30, "D"), (25, "D-"), (0, "F"),
)
GRADE_ORDER = [g for _, g in GRADES]
CAPS: tuple[tuple[Severity, str], ...] = ((CRITICAL, "D"), (ERROR, "B"))

RUBRIC_TEXT = (
    "Score starts at 100; each distinct check that fired subtracts once: critical 40, error 20, "
    "warning 10, info 0. Grade: A+ 100, A >=90, A- >=85, B+ >=80, B >=70, B- >=65, C+ >=60, "
    "C >=50, C- >=45, D+ >=40, D >=30, D- >=25, F below; any error caps the grade at B, any "
    "critical at D. A+ therefore means no warning, error or critical finding. Silenced checks "
    "are listed but not scored."
)


def grade_for(score: int) -> str:
    for minimum, grade in GRADES:
        if score >= minimum:
            return grade
    return "F"  # pragma: no cover - the last row is 0


def score_findings(findings: Iterable[Finding]) -> tuple[int, str]:
    worst: dict[str, Severity] = {}
    for f in findings:
        if not f.silenced:
            worst[f.check_id] = max(f.severity, worst.get(f.check_id, INFO))
    score = max(0, 100 - sum(PENALTY[s] for s in worst.values()))
    grade = grade_for(score)
    for severity, cap in CAPS:
        if severity in worst.values() and GRADE_ORDER.index(grade) < GRADE_ORDER.index(cap):
            grade = cap
    return score, grade


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    out = {s.label: 0 for s in sorted(Severity, reverse=True)}
    for f in findings:
        if not f.silenced:
            out[f.severity.label] += 1
    return out


@dataclass
class Report:
    modes: list[str]
    findings: list[Finding]
    checks_run: list[str]
    seconds: float
    target: dict[str, Any] = field(default_factory=dict)
    silenced_ids: list[str] = field(default_factory=list)
    routes: list[dict[str, Any]] | None = None
    extensions: list[dict[str, Any]] | None = None
    probes: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    generated_at: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )

    @property
    def active(self) -> list[Finding]:
        return [f for f in self.findings if not f.silenced]

    @property
    def silenced(self) -> list[Finding]:
        return [f for f in self.findings if f.silenced]

    @property
    def score(self) -> int:
        return score_findings(self.findings)[0]

    @property
    def grade(self) -> str:
        return score_findings(self.findings)[1]

    @property
    def counts(self) -> dict[str, int]:
        return counts(self.findings)

    def worst(self) -> Severity | None:
        active = self.active
        return max((f.severity for f in active), default=None)

    def fails(self, level: Severity | None) -> bool:
        worst = self.worst()
        return level is not None and worst is not None and worst >= level


# ---------------------------------------------------------------------------------------------
# JSON


def to_json_doc(report: Report) -> dict[str, Any]:
    worst = report.worst()
    return {
        "$schema": REPORT_SCHEMA_ID,
        "report_version": REPORT_VERSION,
        "tool": {"name": "hardened-server", "version": __version__,
                 "rubric_version": RUBRIC_VERSION},
        "generated_at": report.generated_at,
        "duration_seconds": round(report.seconds, 3),
        "modes": list(report.modes),
        "target": report.target,
        "summary": {
            "score": report.score,
            "grade": report.grade,
            "counts": report.counts,
            "total": len(report.active),
            "silenced": len(report.silenced),
            "worst": worst.label if worst is not None else None,
        },
        "rubric": {
            "version": RUBRIC_VERSION,
            "start": 100,
            "penalties": {s.label: PENALTY[s] for s in sorted(Severity, reverse=True)},
            "grades": [{"grade": g, "min_score": m} for m, g in GRADES],
            "caps": [{"severity": s.label, "grade": g} for s, g in CAPS],
            "text": RUBRIC_TEXT,
        },
        "checks_run": list(report.checks_run),
        "silenced_ids": list(report.silenced_ids),
        "findings": [f.as_dict() for f in report.findings],
        "routes": report.routes,
        "extensions": report.extensions,
        "probes": report.probes,
        "notes": list(report.notes),
    }


def render_json(report: Report) -> str:
    return json.dumps(to_json_doc(report), indent=2, sort_keys=False) + "\n"


def report_schema() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "schemas" / "audit-report-v1.json").read_text(
        encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# SARIF 2.1.0

SARIF_LEVEL = {CRITICAL: "error", ERROR: "error", WARNING: "warning", INFO: "note"}


def _artifact_uri(path: str) -> str:
    p = Path(path)
    if not p.is_absolute():
        p = Path(os.path.abspath(p))
    return p.as_uri()


def _sarif_locations(f: Finding) -> list[dict[str, Any]]:
    loc = f.location
    if loc is None:
        return []
    if loc.url:
        return [{"physicalLocation": {"artifactLocation": {"uri": loc.url}}}]
    out: dict[str, Any] = {}
    if loc.file:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _artifact_uri(loc.file)}}
        if loc.line:
            physical["region"] = {"startLine": int(loc.line)}
        out["physicalLocation"] = physical
    if loc.key:
        out["logicalLocations"] = [{"fullyQualifiedName": loc.key, "kind": "member"}]
    return [out] if out else []


def to_sarif(report: Report) -> dict[str, Any]:
    checks = list(registry().values())
    index = {c.id: i for i, c in enumerate(checks)}
    rules = [
        {
            "id": c.id,
            "name": "".join(w.capitalize() for w in c.title.replace("'", "").split()
                            if w.isalnum())[:120] or c.id,
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": c.doc},
            "help": {"text": f"{c.doc}\n\nFix: {c.fix}",
                     "markdown": f"{c.doc}\n\n**Fix:** {c.fix}"},
            "defaultConfiguration": {"level": SARIF_LEVEL[c.severity]},
            "properties": {"severity": c.severity.label, "kind": c.kind,
                           "tags": ["security", *c.tags]},
        }
        for c in checks
    ]
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.check_id,
            "level": SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.title}: {f.evidence}"},
            "properties": {"severity": f.severity.label, "fix": f.fix, "kind": f.kind},
        }
        if f.check_id in index:
            result["ruleIndex"] = index[f.check_id]
        locations = _sarif_locations(f)
        if locations:
            result["locations"] = locations
        if f.silenced:
            result["suppressions"] = [{"kind": "external", "status": "accepted",
                                       "justification": "silenced with --silence"}]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "hardened-server audit",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": True,
                                 "endTimeUtc": report.generated_at}],
                "results": results,
                "properties": {"score": report.score, "grade": report.grade,
                               "modes": list(report.modes), "rubric": RUBRIC_TEXT},
            }
        ],
    }


def render_sarif(report: Report) -> str:
    return json.dumps(to_sarif(report), indent=2) + "\n"


def sarif_schema() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "sarif-2.1.0.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Text

_WIDTH = 100


def _wrap(label: str, text: str, indent: int) -> list[str]:
    prefix = " " * indent + (f"{label:<10}" if label else "")
    width = max(40, _WIDTH - len(prefix))
    lines = textwrap.wrap(text, width) or [""]
    return [prefix + lines[0]] + [" " * len(prefix) + rest for rest in lines[1:]]


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    widths = [min(w, 60) for w in widths]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c[:w].ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return out


def render_text(report: Report) -> str:
    lines = [
        f"hardened-server audit ({', '.join(report.modes)}): grade {report.grade}, "
        f"score {report.score}/100",
    ]
    for key, value in report.target.items():
        if value not in (None, "", [], {}):
            joiner = " -> " if key == "policy_layers" else ", "
            shown = joiner.join(value) if isinstance(value, list) else str(value)
            lines.append(f"{key.replace('_', ' ')}: {shown}")
    c = report.counts
    lines.append("  ".join(f"{k} {v}" for k, v in c.items())
                 + f"  (silenced {len(report.silenced)})")
    lines.append("")
    if report.findings:
        lines += ["SEVERITY  ID              FINDING", "--------  --------------  " + "-" * 60]
        for f in report.findings:
            sev = f.severity.label + (" (silenced)" if f.silenced else "")
            lines.append(f"{sev:<8}  {f.check_id:<14}  {f.title}")
            lines += _wrap("evidence:", f.evidence, 26)
            if f.location is not None:
                lines += _wrap("where:", f.location.describe(), 26)
            lines += _wrap("fix:", f.fix, 26)
    else:
        lines.append("No findings.")
    if report.routes is not None:
        lines += ["", f"ROUTES ({len(report.routes)})"]
        rows = [
            [
                r["pattern"], r["route_class"], "public" if r["public"] else "login",
                r["handler"].rsplit(".", 1)[-1], r["mixin"] or "-",
                ",".join(sorted({d for ds in r["decorators"].values() for d in ds})) or "-",
                ",".join(r["undecorated"]) or "-",
                ",".join(sorted(set(r["authorization"].values()))) or "n/a",
                " ".join(f"{m}={v}" for m, v in r.get("scopes", {}).items()) or "-",
                r.get("scope_source") or "-",
            ]
            for r in report.routes
        ]
        lines += _table(rows, ["PATTERN", "CLASS", "ACCESS", "HANDLER", "MIXIN", "DECORATORS",
                               "UNDECORATED", "RESOURCE:ACTION", "SCOPES", "SOURCE"])
    if report.extensions is not None:
        lines += ["", f"EXTENSIONS ({len(report.extensions)})"]
        rows = [[e["name"], "enabled" if e["enabled"] else "disabled",
                 e.get("module_path") or "(not found)", str(e.get("bandit_issues", "-"))]
                for e in report.extensions]
        lines += _table(rows, ["NAME", "STATE", "CODE", "BANDIT M/H"])
    if report.probes is not None:
        lines += ["", f"PROBES ({len(report.probes)})"]
        rows = [[p["name"], p["method"], p["path"][:60], str(p["status"]), f"{p['ms']:.0f}"]
                for p in report.probes]
        lines += _table(rows, ["PROBE", "METHOD", "PATH", "STATUS", "MS"])
    for note in report.notes:
        lines += _wrap("note:", note, 0)
    lines += [
        "",
        f"Audit identified {len(report.active)} issue(s) ({len(report.silenced)} silenced) "
        f"in {report.seconds:.2f} s; {len(report.checks_run)} checks ran.",
        "",
        *_wrap("Rubric:", RUBRIC_TEXT, 0),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# HTML


def render_html(report: Report) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("report.html.j2")
    return template.render(
        report=report,
        doc=to_json_doc(report),
        rubric_rows=[{"grade": g, "min": m} for m, g in GRADES],
        penalties=[(s.label, PENALTY[s]) for s in sorted(Severity, reverse=True)],
        caps=[(s.label, g) for s, g in CAPS],
        rubric_text=RUBRIC_TEXT,
    )


RENDERERS = {"text": render_text, "json": render_json, "sarif": render_sarif, "html": render_html}
