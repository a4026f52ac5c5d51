// Google CSP Evaluator, offline. usage: node csp_grade.cjs "<csp header value>"
// Prints {policy, worst, findings:[{type, severity, directive, value, description}]}.
const { CspEvaluator, DEFAULT_CHECKS } = require("csp_evaluator/dist/evaluator.js");
const { CspParser } = require("csp_evaluator/dist/parser.js");
const { Severity, Type } = require("csp_evaluator/dist/finding.js");
const { Version } = require("csp_evaluator/dist/csp.js");

const policy = process.argv[2];
const parsed = new CspParser(policy).csp;
const seen = new Set();
const findings = new CspEvaluator(parsed, Version.CSP3)
  .evaluate(undefined, DEFAULT_CHECKS)
  .filter((f) => {
    const k = [f.type, f.directive, f.value].join("|");
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
const worst = findings.length ? Math.min(...findings.map((f) => f.severity)) : Severity.NONE;
console.log(
  JSON.stringify({
    policy,
    worst: Severity[worst],
    findings: findings.map((f) => ({
      type: Type[f.type],
      severity: Severity[f.severity],
      directive: f.directive,
      value: f.value,
      description: f.description,
    })),
  }),
);
