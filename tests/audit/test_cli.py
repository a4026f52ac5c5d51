"""``hardened-server audit`` (static): the command line, exit codes, silencing and the four
report formats, against real policy and Jupyter config files in an isolated environment."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from hardened_server.audit.checks import Finding, Severity, registry
from hardened_server.audit.cli import main
from hardened_server.audit.report import (
    GRADES,
    report_schema,
    sarif_schema,
    score_findings,
)

STATIC_BUDGET_SECONDS = 2.0

BAD_POLICY = """
[csp.page]
script-src = ["'self'", "'unsafe-inline'"]

[cors]
allow_origins = ["https://portal.example"]
allow_credentials = true
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Private Jupyter dirs (the installed packages' extension config still loads)."""
    for name in list(__import__("os").environ):
        if name.startswith(("JUPYTER", "JUPYTERHUB")):
            monkeypatch.delenv(name)
    for name in ("config", "runtime", "data", "root"):
        (tmp_path / name).mkdir()
    (tmp_path / "runtime").chmod(0o700)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return tmp_path


def audit(env: Path, *argv: str, fmt: str = "json") -> tuple[int, str, float]:
    out = env / f"report.{fmt}"
    start = time.perf_counter()
    rc = main(["--root-dir", str(env / "root"), *argv, "--format", fmt, "--output", str(out)])
    return rc, out.read_text(), time.perf_counter() - start


def write(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


# -- speed and the default -------------------------------------------------------------------------


def test_static_audit_of_the_default_is_fast_and_top_grade(env, capsys):
    rc, text, seconds = audit(env, "--fail-on", "warning")
    with capsys.disabled():
        sys.stdout.write(f"\n[timing] static audit: {seconds:.3f} s\n")
    assert seconds < STATIC_BUDGET_SECONDS
    report = json.loads(text)
    assert rc == 0
    assert report["summary"]["grade"] == "A+"
    assert report["summary"]["counts"]["warning"] == 0
    # the documented info of the shipped default; no 'unsafe-eval' anywhere (#21)
    ids = {f["id"] for f in report["findings"]}
    assert "HS-TOKEN-103" in ids
    assert "HS-CSP-103" not in ids


def test_fail_on_levels_and_exit_codes(env):
    policy = write(env / "bad.toml", BAD_POLICY)
    assert audit(env, "--policy", policy)[0] == 1  # default: error
    assert audit(env, "--policy", policy, "--fail-on", "critical")[0] == 0
    assert audit(env, "--policy", policy, "--fail-on", "none")[0] == 0
    assert audit(env, "--fail-on", "info")[0] == 1  # the default has infos
    assert audit(env, "--fail-on", "warning")[0] == 0


def test_silenced_checks_are_listed_but_not_scored(env):
    policy = write(env / "bad.toml", BAD_POLICY)
    # 'unsafe-inline' in script-src is below the page class's CSP floor: the audit reports it
    # (HS-CSP-101) and that the server would refuse the file (HS-CONF-107); silence both.
    rc, text, _ = audit(
        env, "--policy", policy, "--silence", "HS-CSP-101", "--silence", "HS-CONF-107"
    )
    report = json.loads(text)
    silenced = [f for f in report["findings"] if f["silenced"]]
    assert sorted(f["id"] for f in silenced) == ["HS-CONF-107", "HS-CSP-101"]
    assert report["summary"]["silenced"] == 2
    assert report["summary"]["counts"]["error"] == 0
    assert rc == 0  # the remaining worst is a warning (HS-CORS-102)
    assert report["summary"]["grade"] == "A"


def test_unknown_silence_id_is_a_usage_error(env, capsys):
    assert main(["--silence", "HS-NOPE-999"]) == 2
    assert "unknown check id" in capsys.readouterr().err


def test_list_checks_names_every_check(env, capsys):
    assert main(["--list-checks"]) == 0
    out = capsys.readouterr().out
    for check_id in registry():
        assert check_id in out


# -- what the static audit reads -------------------------------------------------------------------


def test_jupyter_config_files_are_read_and_located(env):
    cfg = env / "extra"
    cfg.mkdir()
    write(cfg / "jupyter_server_config.json", json.dumps(
        {"ServerApp": {"allow_origin": "*", "disable_check_xsrf": True}}))
    (cfg / "jupyter_server_config.py").write_text("raise SystemExit('never executed')\n")
    rc, text, _ = audit(env, "--config-dir", str(cfg))
    report = json.loads(text)
    by_id = {f["id"]: f for f in report["findings"]}
    assert by_id["HS-CORS-106"]["location"]["file"] == str(cfg / "jupyter_server_config.json")
    assert by_id["HS-CORS-106"]["location"]["key"] == "ServerApp.allow_origin"
    assert "HS-XSITE-101" in by_id
    assert by_id["HS-CONF-101"]["location"]["file"] == str(cfg / "jupyter_server_config.py")
    assert rc == 1


def test_policy_files_configured_in_jupyter_config_are_layered(env):
    policy = write(env / "p.toml", "[paths]\nallow_hidden = true\n")
    write(env / "config" / "jupyter_server_config.json",
          json.dumps({"HardenedServerApp": {"policy_files": [policy]}}))
    report = json.loads(audit(env)[1])
    assert policy in report["target"]["policy_layers"]
    assert "HS-PATH-101" in {f["id"] for f in report["findings"]}


def test_environment_token_strength(env, monkeypatch):
    monkeypatch.setenv("JUPYTER_TOKEN", "password123")
    rc, text, _ = audit(env)
    assert rc == 1
    assert "HS-TOKEN-101" in text
    assert "password123" not in text


def test_runtime_dir_inside_the_served_root(env, monkeypatch):
    runtime = env / "root" / ".local" / "share" / "jupyter" / "runtime"
    runtime.mkdir(parents=True)
    runtime.chmod(0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    report = json.loads(audit(env)[1])
    found = {f["id"] for f in report["findings"]}
    assert "HS-PATH-105" in found
    assert "HS-PATH-106" not in found  # the shipped deny list covers its files


def test_bad_policy_is_a_finding_not_a_crash(env):
    policy = write(env / "typo.toml", "[cors]\nallow_origin = []\n")
    rc, text, _ = audit(env, "--policy", policy)
    report = json.loads(text)
    (finding,) = [f for f in report["findings"] if f["id"] == "HS-CONF-107"]
    assert "unknown key" in finding["evidence"]
    assert finding["location"]["file"] == policy
    assert rc == 1


def test_verify_log_is_delegated_to_the_trail(monkeypatch):
    import hardened_server.trail.verify as verify

    seen = []
    monkeypatch.setattr(verify, "main", lambda argv: seen.append(argv) or 7)
    assert main(["verify-log", "--log", "x.jsonl"]) == 7
    assert seen == [["--log", "x.jsonl"]]


# -- formats ---------------------------------------------------------------------------------------


def test_json_report_validates_against_the_published_schema(env):
    policy = write(env / "bad.toml", BAD_POLICY)
    report = json.loads(audit(env, "--policy", policy, "--silence", "HS-CORS-101")[1])
    jsonschema.Draft202012Validator.check_schema(report_schema())
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    assert report["report_version"] == 1
    assert report["modes"] == ["static"]
    assert report["rubric"]["grades"][0] == {"grade": "A+", "min_score": 100}


def test_sarif_report_validates_and_points_at_the_policy_line(env):
    policy = write(env / "bad.toml", BAD_POLICY)
    _rc, text, _ = audit(env, "--policy", policy, "--silence", "HS-CORS-101", fmt="sarif")
    sarif = json.loads(text)
    jsonschema.Draft7Validator.check_schema(sarif_schema())
    jsonschema.Draft7Validator(sarif_schema()).validate(sarif)
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == set(registry())
    assert all(r["shortDescription"]["text"] and r["help"]["text"] for r in rules)
    results = {r["ruleId"]: r for r in run["results"]}
    inline = results["HS-CSP-101"]
    assert inline["level"] == "error"
    physical = inline["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == Path(policy).resolve().as_uri()
    assert physical["region"]["startLine"] == 3
    assert results["HS-CORS-102"]["level"] == "warning"
    assert results["HS-TOKEN-103"]["level"] == "note"
    assert results["HS-CORS-101"]["suppressions"][0]["kind"] == "external"
    assert rules[inline["ruleIndex"]]["id"] == "HS-CSP-101"


def test_sarif_levels_map_critical_and_error_to_error(env):
    from hardened_server.audit.report import SARIF_LEVEL

    assert SARIF_LEVEL == {Severity.CRITICAL: "error", Severity.ERROR: "error",
                           Severity.WARNING: "warning", Severity.INFO: "note"}


def test_html_report_summary_first_every_finding_and_escaped(env):
    policy = write(env / "bad.toml", BAD_POLICY)
    write(env / "config" / "jupyter_server_config.json", json.dumps(
        {"ServerApp": {"extra_static_paths": ["<script>alert(1)</script>"]}}))
    _rc, html, _ = audit(env, "--policy", policy, fmt="html")
    report = json.loads(audit(env, "--policy", policy)[1])
    assert html.index('id="summary"') < html.index('id="findings"') < html.index('id="rubric"')
    assert f'id="grade">{report["summary"]["grade"]}<' in html
    for severity, n in report["summary"]["counts"].items():
        assert f'id="count-{severity}">{n}<' in html
    assert html.count('<tr class="finding') == len(report["findings"])
    for f in report["findings"]:
        assert f'data-check="{f["id"]}"' in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "default-src 'none'" in html  # the report page itself runs nothing


def test_text_report_is_a_table_with_the_rubric(env):
    policy = write(env / "bad.toml", BAD_POLICY)
    _rc, text, _ = audit(env, "--policy", policy, fmt="text")
    # two errors (the 'unsafe-inline' finding, and HS-CONF-107: the server would refuse a
    # policy below the CSP floor) and a warning: 100 - 20 - 20 - 10
    assert text.splitlines()[0].startswith("hardened-server audit (static): grade C, score 50")
    assert "SEVERITY  ID              FINDING" in text
    for part in ("HS-CSP-101", "fix:", "where:", "Rubric:", "A+ 100"):
        assert part in text
    assert "Audit identified" in text


# -- the rubric ------------------------------------------------------------------------------------


def _f(check_id: str, severity: Severity, silenced: bool = False) -> Finding:
    return Finding(check_id, severity, "t", "e", "f", "static", None, silenced)


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        ([], (100, "A+")),
        ([_f("A", Severity.INFO)] * 3, (100, "A+")),
        ([_f("A", Severity.WARNING)], (90, "A")),
        ([_f("A", Severity.WARNING), _f("A", Severity.WARNING)], (90, "A")),  # per check id
        ([_f("A", Severity.WARNING), _f("B", Severity.WARNING)], (80, "B+")),
        ([_f("A", Severity.ERROR)], (80, "B")),  # capped at B
        ([_f("A", Severity.CRITICAL)], (60, "D")),  # capped at D
        ([_f("A", Severity.ERROR, silenced=True)], (100, "A+")),
        ([_f(c, Severity.ERROR) for c in "ABCDEF"], (0, "F")),
    ],
)
def test_rubric(findings, expected):
    assert score_findings(findings) == expected


def test_grade_chart_is_monotonic():
    minimums = [m for m, _ in GRADES]
    assert minimums == sorted(minimums, reverse=True)
    assert GRADES[0] == (100, "A+")
