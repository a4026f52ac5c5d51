"""The rule-id registry (hardened_server/policy/rules.py) is the one home of every rule id.

Rule ids are stable API (audit records, metrics labels, ``policy explain``): a second definition
of an id somewhere else is how two modules end up disagreeing about one, so the package's source
is scanned for id strings outside the registry.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hardened_server.policy import decisions, rules
from hardened_server.policy.rules import RULE_ID_PATTERN, Family, Rule

PACKAGE = Path(rules.__file__).resolve().parent.parent
REGISTRY = Path(rules.__file__).resolve()

#: A runtime rule id: number 0NN. The audit command's own check ids (1NN static, 2NN live,
#: 3NN environment) live with their checks in hardened_server/audit/.
RUNTIME_ID = re.compile(r"HS-[A-Z]+-0[0-9]{2}")


def test_every_id_is_well_formed_unique_and_in_its_family() -> None:
    values = [rule.value for rule in Rule]
    assert len(values) == len(set(values)) == len(Rule.__members__)  # no alias, no duplicate
    for rule in Rule:
        assert re.fullmatch(RULE_ID_PATTERN, rule.value), rule
        assert RUNTIME_ID.fullmatch(rule.value), rule  # 1NN-3NN belong to the audit command
        assert isinstance(rule.family, Family), rule
        assert rule.value.split("-")[1] == rule.family.value, rule
        assert rule.name.startswith(f"{rule.family.name}_"), rule
        assert rule.meaning, rule
        assert "\n" not in rule.meaning, rule
    assert {rule.family for rule in Rule} == set(Family)  # no family without a rule


def test_a_rule_is_its_id_string() -> None:
    """Records, metrics labels and log lines carry the id itself, whatever the member type."""
    rule = Rule.HOST_FOREIGN
    assert rule == "HS-HOST-002"
    assert isinstance(rule, str)
    assert f"[{rule}]" == "[HS-HOST-002]"
    assert "%s" % rule == "HS-HOST-002"  # noqa: UP031 - the logging module's formatting
    assert Rule("HS-HOST-002") is rule
    assert decisions.Rule is Rule  # the decisions module re-exports the registry's enum
    assert decisions.deny(rule, "x").rule_id == "HS-HOST-002"


def _documentation(tree: ast.AST) -> set[int]:
    """ids of the string constants that are documentation: docstrings and other bare string
    statements (attribute docstrings). Everything else is a value the program uses."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def _id_strings(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    docs = _documentation(tree)
    return [
        (node.lineno, found)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docs
        for found in RUNTIME_ID.findall(node.value)
    ]


def test_the_scanner_sees_values_and_skips_documentation() -> None:
    source = (
        '"""Module doc: HS-HOST-001."""\n'
        "X = 'HS-HOST-002'\n"
        "def f():\n"
        '    """Function doc: HS-HOST-003."""\n'
        "    return f'[HS-HOST-004] {X}', 'HS-CSP-101'\n"
    )
    assert _id_strings(source) == [(2, "HS-HOST-002"), (5, "HS-HOST-004")]


def test_no_module_but_the_registry_writes_a_rule_id() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {rule_id}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.resolve() != REGISTRY
        for line, rule_id in _id_strings(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "import the id from hardened_server.policy.rules instead"


TESTS = Path(__file__).resolve().parents[1]


def _mentions(rule: Rule) -> re.Pattern[str]:
    """The id string, or the constant ``Rule.NAME`` (a whole name: ``Rule.ID_LOGOUT`` is not
    found inside ``Rule.ID_LOGOUT_EVERYWHERE``)."""
    return re.compile(rf"(?<![A-Z0-9-]){re.escape(rule.value)}(?![0-9])|\bRule\.{rule.name}\b")


def test_the_mention_scan_takes_whole_ids_and_whole_names() -> None:
    logout = _mentions(Rule.ID_LOGOUT)
    assert logout.search("assert rule == Rule.ID_LOGOUT\n")
    assert logout.search('{"rule_id": "HS-ID-020"}')
    assert not logout.search("Rule.ID_LOGOUT_EVERYWHERE")
    assert not logout.search("HS-ID-0201")


def test_every_id_that_is_not_reserved_is_exercised_by_a_test() -> None:
    """A new id fails the suite until some test outside this file names it (its string or its
    ``Rule.NAME``), which in this suite means a test asserting the decision or record that
    carries it. Reserved ids (declared, emitted nowhere yet) are the only exemption."""
    texts = [
        path.read_text(encoding="utf-8", errors="replace")
        for path in sorted(TESTS.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.resolve() != Path(__file__).resolve()
    ]
    unexercised = [
        f"{rule.value} ({rule.name})"
        for rule in Rule
        if not rule.reserved and not any(_mentions(rule).search(text) for text in texts)
    ]
    assert unexercised == [], "write a test that asserts the decision or record carrying it"


def test_reserved_ids_are_few_and_emitted_nowhere() -> None:
    """``reserved`` is for an id no code emits: a reserved id that the package uses has to drop
    the flag (and then needs its test)."""
    reserved = {rule for rule in Rule if rule.reserved}
    assert reserved == {Rule.AUTH_PUBLIC_ROUTE}
    sources = [path.read_text(encoding="utf-8") for path in sorted(PACKAGE.rglob("*.py"))]
    for rule in reserved:
        used = [s for s in sources if re.search(rf"\bRule(?:Id)?\.{rule.name}\b", s)]
        assert used == [], rule
