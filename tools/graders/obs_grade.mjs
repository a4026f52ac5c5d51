// Mozilla HTTP Observatory (MDN, algorithm v4), offline, as a JSON-printing grader.
// usage: NODE_EXTRA_CA_CERTS=ca.pem node obs_grade.mjs 127.0.0.1:PORT[/path]
// Prints {host, grade, score, tests}; exit 0 on a completed scan, 2 on error.
// Calls the library directly: bin/wrapper.js would replace NODE_EXTRA_CA_CERTS (our test CA).
import { scan } from "@mdn/mdn-http-observatory";

const [host] = process.argv.slice(2);
try {
  const r = await scan(host);
  const tests = Object.fromEntries(
    Object.entries(r.tests).map(([k, t]) => [k, { result: t.result, pass: t.pass, modifier: t.scoreModifier }]),
  );
  console.log(JSON.stringify({ host, grade: r.scan.grade, score: r.scan.score, tests }));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ host, error: String((e && e.message) || e) }));
  process.exit(2);
}
