"""An exact "certainly valid" predicate for nbformat v4 notebooks: nbformat's answer, less work.

``nbformat.validate`` on a 1 MiB, 250-cell notebook costs about 10 ms (#22, BENCHMARKS.md), all
of it in the schema check that ``fastjsonschema`` compiled: every ``oneOf`` (a cell, an output,
each ``source`` and ``text``) tries each alternative under ``try``/``except`` to count how many
match. :func:`certainly_valid` answers the same question for the valid case in a fraction of it:
each ``oneOf`` is decided by the one alternative that the discriminating field (``cell_type``,
``output_type``, the JSON type of a string or a list) leaves standing.

Soundness is the whole point, so the predicate only ever says "certainly valid" or "do not know":

* It is compiled from **nbformat's own schema files** (``nbformat.v4.nbformat_schema``), the
  version chosen from ``nbformat``/``nbformat_minor`` exactly as ``nbformat.validate`` chooses it.
  Minor versions from the future (which nbformat validates with a relaxed schema), another major
  version, a non-``int`` version number: "do not know".
* Any keyword the compiler neither implements nor knows as an annotation makes the whole
  version "do not know" (a new nbformat release can add one; the fallback then answers every
  time).
* Types are JSON's, exactly (``type(x) is str``, ``int`` but never ``bool`` ...): where the two
  validators nbformat can use (``fastjsonschema`` and ``jsonschema``) differ on Python values
  (tuples, bools as numbers, ``1 == True`` in an ``enum``), the answer is "do not know".
* ``pattern``: ``fastjsonschema`` reads ``$`` as ``\\Z``, ``jsonschema`` as Python's ``$``; the two
  differ only on a string with a newline, which is "do not know" wherever a pattern applies.
* A ``oneOf`` is "valid" only when one alternative is certainly valid and every other is
  certainly *invalid* (a missing required key, a JSON type or a string outside an ``enum``).
* Beyond the schema, ``nbformat.validate`` repairs missing and duplicate cell ids of v4.5+
  notebooks in place (random ids). Such a notebook is "do not know", so nbformat repairs it.

Whenever it says "do not know", the caller runs ``nbformat.validate`` as before, so the error
messages, logs and repairs stay nbformat's. ``tests/enforcement/test_nbschema.py`` checks the
property "certainly valid ⇒ ``nbformat.validate`` raises nothing and changes nothing" with
Hypothesis, on valid notebooks of every minor version and on mutations of them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import nbformat
from nbformat import v4

__all__ = ["certainly_valid", "validate"]

Check = Callable[[Any], bool]
#: (certainly valid, certainly invalid or None when nothing refutes)
Pair = tuple[Check, "Check | None"]


class _Unsupported(Exception):
    """A schema construct this compiler does not implement: no fast path for that version."""


# Draft-4 (and later) validation keywords the compiler does not implement: meeting one makes
# the version unsupported, and so does any keyword outside _SUPPORTED and _ANNOTATIONS.
_SUPPORTED = frozenset(
    {
        "type", "enum", "properties", "patternProperties", "additionalProperties", "required",
        "items", "uniqueItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
        "oneOf", "$ref",
    }
)  # fmt: skip
_UNSUPPORTED = frozenset(
    {
        "additionalItems", "minItems", "maxItems", "exclusiveMinimum", "exclusiveMaximum",
        "multipleOf", "minProperties", "maxProperties", "dependencies", "dependentRequired",
        "dependentSchemas", "allOf", "anyOf", "not", "format", "const", "contains",
        "propertyNames", "if", "then", "else", "prefixItems", "unevaluatedItems",
        "unevaluatedProperties", "$dynamicRef", "$recursiveRef", "contentMediaType",
        "contentEncoding", "id", "$id",
    }
)  # fmt: skip
# Keywords both validators treat as annotations (no effect on validity), the misspelt ones in
# nbformat's schemas included. Any keyword in none of these sets makes the version "do not know".
_ANNOTATIONS = frozenset(
    {
        "$schema", "description", "title", "default", "examples", "$comment", "definitions",
        "item", "source_hidden", "outputs_hidden",
    }
)  # fmt: skip
#: JSON kinds that no numeric or boolean schema type can also accept under either validator.
_REFUTING = frozenset({"object", "array", "string", "null"})
_OBJECT_KEYWORDS = ("properties", "patternProperties", "additionalProperties", "required")

# The JSON kind of a value, for exactly the Python types both validators agree on.
_KIND = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def _kind(x: Any) -> str | None:
    kind = _KIND.get(type(x))
    if kind is not None:
        return kind
    if isinstance(x, dict):
        return "object"
    if isinstance(x, list):
        return "array"
    return None


def _is_type(name: str) -> Check:
    if name == "string":
        return lambda x: type(x) is str
    if name == "integer":
        return lambda x: type(x) is int
    if name == "number":
        return lambda x: type(x) is int or type(x) is float
    if name == "boolean":
        return lambda x: type(x) is bool
    if name == "null":
        return lambda x: x is None
    if name == "object":
        return lambda x: isinstance(x, dict)
    if name == "array":
        return lambda x: isinstance(x, list)
    raise _Unsupported(f"type {name!r}")


def _true(x: Any) -> bool:
    return True


def _all(checks: list[Check]) -> Check:
    checks = [c for c in checks if c is not _true]
    if not checks:
        return _true
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda x: first(x) and second(x)
    frozen = tuple(checks)

    def check(x: Any) -> bool:
        for c in frozen:  # noqa: SIM110  # a loop: no generator object per call (hot path)
            if not c(x):
                return False
        return True

    return check


def _any(refutes: list[Check | None]) -> Check | None:
    present = tuple(r for r in refutes if r is not None)
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def refute(x: Any) -> bool:
        for r in present:  # noqa: SIM110  # a loop: no generator object per call
            if r(x):
                return True
        return False

    return refute


class _Compiler:
    """Compiles one schema document into ``(valid, invalid)`` pairs: ``valid(x)`` ⇒ both
    validators accept ``x``; ``invalid(x)`` ⇒ both refuse it (``None``: never sure)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Pair] = {}
        self.compiling: set[str] = set()

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise _Unsupported(f"$ref {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise _Unsupported(f"$ref {ref!r}")
            node = node[part]
        return node

    def ref(self, ref: str) -> Pair:
        if ref not in self.refs:
            if ref in self.compiling:
                raise _Unsupported("a recursive schema")  # none of nbformat's is
            self.compiling.add(ref)
            self.refs[ref] = self.compile(self.resolve(ref))
        return self.refs[ref]

    def target(self, schema: Any) -> Any:
        """``schema`` with its ``$ref`` followed (for finding discriminators)."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 16:
            schema = self.resolve(schema["$ref"])
            seen += 1
        return schema

    def compile(self, schema: Any) -> Pair:
        if not isinstance(schema, dict):
            raise _Unsupported("a schema that is not an object")
        for keyword in schema:
            if keyword in _UNSUPPORTED or not (keyword in _SUPPORTED or keyword in _ANNOTATIONS):
                # an unknown keyword may be a validation keyword a later nbformat adds: unsure
                raise _Unsupported(keyword)
        if "$ref" in schema:
            if any(k in _SUPPORTED for k in schema if k != "$ref"):
                raise _Unsupported("$ref with siblings")  # draft 4 ignores them; be sure
            return self.ref(schema["$ref"])
        checks: list[Check] = []
        refutes: list[Check | None] = []
        types = schema.get("type")
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            if not names or not all(isinstance(n, str) for n in names):
                raise _Unsupported("type")
            kinds = [_is_type(name) for name in names]
            if len(kinds) == 1:
                checks.append(kinds[0])
            else:
                alternatives = tuple(kinds)

                def any_kind(x: Any) -> bool:
                    return any(kind(x) for kind in alternatives)

                checks.append(any_kind)
            if {"integer", "number", "boolean"}.isdisjoint(names):
                # no numeric or boolean type allowed: any other JSON kind certainly refutes
                allowed = frozenset(names)
                refutes.append(lambda x: (_kind(x) or "") in _REFUTING and _kind(x) not in allowed)
        keyword_checks: list[Check] = []
        if "enum" in schema:
            keyword_checks.append(self.enum(schema["enum"]))
            values = schema["enum"]
            if all(type(v) is str for v in values):
                strings = frozenset(values)
                refutes.append(lambda x: type(x) is str and x not in strings)
        for keyword in ("minLength", "maxLength", "pattern"):
            if keyword in schema:
                keyword_checks.append(self.string(keyword, schema[keyword]))
        for keyword in ("minimum", "maximum"):
            if keyword in schema:
                keyword_checks.append(self.number(keyword, schema[keyword]))
        if "items" in schema or "uniqueItems" in schema:
            keyword_checks.append(self.array(schema))
        if any(k in schema for k in _OBJECT_KEYWORDS):
            valid, invalid = self.object(schema)
            keyword_checks.append(valid)
            refutes.append(invalid)
        if "oneOf" in schema:
            keyword_checks.append(self.one_of(schema["oneOf"]))
        if keyword_checks and types is None:
            # Keywords apply by the value's kind; a value the two validators type apart
            # (a tuple, bytes ...) is "do not know".
            checks.append(lambda x: _kind(x) is not None)
        return _all(checks + keyword_checks), _any(refutes)

    @staticmethod
    def enum(values: Any) -> Check:
        if not isinstance(values, list) or not values:
            raise _Unsupported("enum")
        if all(type(v) is str for v in values):
            strings = frozenset(values)
            return lambda x: type(x) is str and x in strings
        plain = tuple(v for v in values if type(v) in (str, int, float, bool, type(None)))
        if len(plain) != len(values):
            raise _Unsupported("enum of containers")
        # type-exact equality: 1 == True in Python, and jsonschema tells them apart
        return lambda x: any(type(x) is type(v) and x == v for v in plain)

    @staticmethod
    def string(keyword: str, value: Any) -> Check:
        if keyword == "pattern":
            if not isinstance(value, str):
                raise _Unsupported("pattern")
            search = re.compile(value).search
            return lambda x: type(x) is not str or ("\n" not in x and search(x) is not None)
        if type(value) is not int:
            raise _Unsupported(keyword)
        if keyword == "minLength":
            return lambda x: type(x) is not str or len(x) >= value
        return lambda x: type(x) is not str or len(x) <= value

    @staticmethod
    def number(keyword: str, value: Any) -> Check:
        if type(value) not in (int, float):
            raise _Unsupported(keyword)
        if keyword == "minimum":
            return lambda x: (type(x) is not int and type(x) is not float) or x >= value
        return lambda x: (type(x) is not int and type(x) is not float) or x <= value

    def array(self, schema: dict[str, Any]) -> Check:
        items = schema.get("items")
        each: Check | None = None
        if items is not None:
            if not isinstance(items, dict):
                raise _Unsupported("items as a list")
            each = self.compile(items)[0]
        unique = schema.get("uniqueItems", False)
        if type(unique) is not bool:
            raise _Unsupported("uniqueItems")

        def check(x: Any) -> bool:
            if not isinstance(x, list):
                return True  # the keywords apply to arrays only (the kind was checked)
            if each is not None:
                for item in x:
                    if not each(item):
                        return False
            if unique:
                # both validators agree on strings; anything else is "do not know"
                return all(type(i) is str for i in x) and len(set(x)) == len(x)
            return True

        return check

    def object(self, schema: dict[str, Any]) -> Pair:
        properties = schema.get("properties", {})
        patterns_in = schema.get("patternProperties", {})
        additional_in = schema.get("additionalProperties", True)
        required = schema.get("required", [])
        if not (
            isinstance(properties, dict)
            and isinstance(patterns_in, dict)
            and isinstance(required, list)
            and all(type(k) is str for k in required)
        ):
            raise _Unsupported("object keywords")
        compiled = {name: self.compile(sub) for name, sub in properties.items()}
        props = {name: pair[0] for name, pair in compiled.items()}
        prop_refutes = tuple(
            (name, pair[1]) for name, pair in compiled.items() if pair[1] is not None
        )
        patterns = tuple(
            (re.compile(p).search, self.compile(sub)[0]) for p, sub in patterns_in.items()
        )
        additional: Check | None = None
        closed = False
        if additional_in is False:
            closed = True
        elif additional_in is not True:
            additional = self.compile(additional_in)[0]
        needed = tuple(required)
        simple = not patterns and additional is None and not closed
        checked = tuple((name, check) for name, check in props.items() if check is not _true)

        def valid(x: Any) -> bool:
            if not isinstance(x, dict):
                return True  # the keywords apply to objects only (the kind was checked)
            for name in needed:
                if name not in x:
                    return False
            if simple:
                for name, check in checked:  # noqa: SIM110  # no generator per call
                    if name in x and not check(x[name]):
                        return False
                return True
            for key, value in x.items():
                if type(key) is not str:
                    return False
                matched = False
                by_name = props.get(key)
                if by_name is not None:
                    if not by_name(value):
                        return False
                    matched = True
                if patterns:
                    if "\n" in key:
                        return False
                    for search, pattern_check in patterns:
                        if search(key) is not None:
                            if not pattern_check(value):
                                return False
                            matched = True
                if not matched:
                    if closed:
                        return False
                    if additional is not None and not additional(value):
                        return False
            return True

        def invalid(x: Any) -> bool:
            if not isinstance(x, dict):
                return False
            for name in needed:
                if name not in x:
                    return True
            for name, refute in prop_refutes:  # noqa: SIM110  # no generator per call
                if name in x and refute(x[name]):
                    return True
            return False

        return valid, invalid

    def one_of(self, alternatives: Any) -> Check:
        if not isinstance(alternatives, list) or not alternatives:
            raise _Unsupported("oneOf")
        pairs = tuple(self.compile(sub) for sub in alternatives)
        by_tag = self.discriminated(alternatives, pairs)
        if by_tag is not None:
            return by_tag

        def check(x: Any) -> bool:
            candidate: Check | None = None
            for valid, invalid in pairs:
                if invalid is not None and invalid(x):
                    continue
                if candidate is not None:
                    return False  # two alternatives left standing: do not know
                candidate = valid
            return candidate is not None and candidate(x)

        return check

    def discriminated(self, alternatives: list[Any], pairs: tuple[Pair, ...]) -> Check | None:
        """The ``oneOf`` as a lookup, when a field tells the alternatives apart for certain.

        * By JSON kind: every alternative is ``{"type": K, ...}`` with distinct kinds among
          object, array, string, null (a value of kind K is refused by every other one).
        * By tag: every alternative requires the same property, whose schema is an ``enum`` of
          strings, the enums disjoint (a string in one enum is refused by every other one).
        Otherwise ``None``: the generic loop decides."""
        targets = [self.target(sub) for sub in alternatives]
        kinds = [t.get("type") if isinstance(t, dict) else None for t in targets]
        if all(isinstance(k, str) and k in _REFUTING for k in kinds) and len(set(kinds)) == len(
            kinds
        ):
            by_kind = {str(k): pair[0] for k, pair in zip(kinds, pairs, strict=True)}

            def check_kind(x: Any) -> bool:
                valid = by_kind.get(_kind(x) or "")
                return valid is not None and valid(x)

            return check_kind
        if not all(isinstance(t, dict) for t in targets):
            return None
        common = set.intersection(*(set(t.get("required", ())) for t in targets))
        for tag in sorted(common):
            enums = []
            for t in targets:
                sub = self.target(t.get("properties", {}).get(tag))
                values = sub.get("enum") if isinstance(sub, dict) else None
                if not (
                    isinstance(values, list) and values and all(type(v) is str for v in values)
                ):
                    break
                enums.append(values)
            else:
                table: dict[str, Check] = {}
                for values, pair in zip(enums, pairs, strict=True):
                    for value in values:
                        if value in table:
                            break
                        table[value] = pair[0]
                    else:
                        continue
                    break
                else:

                    def check_tag(x: Any, tag: str = tag, table: dict[str, Check] = table) -> bool:
                        if not isinstance(x, dict):
                            return False
                        value = x.get(tag)
                        if type(value) is not str:
                            return False
                        valid = table.get(value)
                        return valid is not None and valid(x)

                    return check_tag
        return None


@functools.cache
def _predicate(minor: int) -> Check | None:
    """The compiled predicate for nbformat 4.``minor`` (``None``: no fast path)."""
    try:
        if (4, minor) not in v4.nbformat_schema or minor > v4.nbformat_minor:
            return None  # a future minor is validated with a relaxed schema: nbformat decides
        # nbformat's own loader (a private name): whatever a later nbformat changes there,
        # any failure here only means "no fast path", never a different answer
        schema = nbformat.validator._get_schema_json(v4, version=4, version_minor=minor)
        return _Compiler(schema).compile(schema)[0]
    except Exception:  # _Unsupported, re.error, OSError, a renamed private function ...
        return None


def certainly_valid(nb: Any) -> bool:
    """``True`` only if ``nbformat.validate(nb)`` would raise nothing and change nothing."""
    if not isinstance(nb, dict):
        return False
    major = nb.get("nbformat", 1)
    minor = nb.get("nbformat_minor", 0)
    if type(major) is not int or major != 4 or type(minor) is not int or minor < 0:
        return False
    check = _predicate(minor)
    if check is None or not check(nb):
        return False
    if minor >= 5:
        # nbformat repairs (with random ids) what the schema cannot see: duplicate ids
        # (missing ones the schema refuses already).
        cells = nb["cells"]
        if len({cell["id"] for cell in cells}) != len(cells):
            return False
    return True


def validate(nb: Any) -> None:
    """``nbformat.validate(nb)``, skipped when :func:`certainly_valid` says it would pass."""
    if not certainly_valid(nb):
        nbformat.validate(nb)
