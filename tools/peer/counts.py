"""Count a peer suite's outcomes from pytest's JUnit XML: stock run against hardened run.

    tools/peer/run.sh SUITE --hs-peer-stock --junitxml=stock.xml
    tools/peer/run.sh SUITE --junitxml=hardened.xml
    python tools/peer/counts.py stock.xml hardened.xml

prints passed (stock, hardened), the expected failures per class (the ``[class]`` prefix the
plugin puts in each xfail reason), unexpected failures and skips, and lists every test that
passes on stock and does not pass hardened without being expected to: what SECURITY.md's
"Differences from stock" counts are made from.
"""

from __future__ import annotations

import collections
import re
import sys
import xml.etree.ElementTree as ET


def outcomes(path: str) -> dict[str, tuple[str, str]]:
    """node id -> (outcome, message); outcome one of passed, failed, skipped, xfailed."""
    result: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).iter("testcase"):  # noqa: S314
        classname, name = case.get("classname", ""), case.get("name", "")
        parts = classname.split(".")
        # tests.services.api.test_api -> tests/services/api/test_api.py (classes kept apart)
        index = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
        node = "/".join(parts[: index + 1]) + ".py::" + "::".join([*parts[index + 1 :], name])
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message", "")
            elif child.tag == "skipped":
                kind = child.get("type", "")
                outcome = "xfailed" if kind == "pytest.xfail" else "skipped"
                message = child.get("message", "")
        if outcome == "failed" or node not in result:
            result[node] = (outcome, message)
    return result


def main(stock_xml: str, hardened_xml: str) -> int:
    stock, hardened = outcomes(stock_xml), outcomes(hardened_xml)
    classes: collections.Counter[str] = collections.Counter()
    for outcome, message in hardened.values():
        if outcome == "xfailed":
            found = re.search(r"\[([\w-]+)\]", message)
            classes[found.group(1) if found else "?"] += 1
    count = collections.Counter(o for o, _ in hardened.values())
    stock_count = collections.Counter(o for o, _ in stock.values())
    print(f"stock:    {dict(stock_count)}")
    print(f"hardened: {dict(count)}")
    print(f"expected failures by class: {dict(sorted(classes.items()))}")
    for node, (outcome, message) in sorted(hardened.items()):
        if stock.get(node, ("?", ""))[0] == "passed" and outcome == "failed":
            print(f"UNEXPECTED {node}: {message[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
