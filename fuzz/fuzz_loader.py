#!/usr/bin/env python3
"""atheris harness for the policy loader: :mod:`hardened_server.policy.loader` and
:mod:`~hardened_server.policy.schema`.

The input is the bytes of a policy file, given to :func:`loader.layer_from_bytes` (what
``--policy FILE`` reads) and layered over the shipped default with :func:`loader.build_policy`.
Seed files and dictionary tokens are plain TOML.

Invariants (an AssertionError or any other exception is a finding, exit code 77 under atheris):

* the only exception is :class:`PolicyError`, whose message starts with the file name, names the
  key (``key`` is empty only for file-level problems: not UTF-8, not TOML, nested too deeply),
  and says how to fix it (``fix``);
* a key the error names is a policy key or a policy table, or the error is about that key itself
  (unknown, or a quoted name with a dot), so the message points at a line of the file;
* a loaded policy satisfies the CSP floor of every route class, every integer is within its
  schema bounds, every key the file set is attributed to the file (provenance), and the
  loosening comparison (``loosens``, what ``hardened-server audit`` reports) runs on every key;
* normalisation is idempotent: the validated values written back as TOML load to the same
  values and the same policy fingerprint (``parse(serialise(parse(x))) == parse(x)``).

Run: ``./fuzz/fuzz_loader.py -dict=fuzz/dicts/loader.dict -max_total_time=60 SCRATCH
fuzz/corpus/loader``. Replayed without atheris by ``tests/verification/test_fuzz_corpus.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as ./fuzz/fuzz_loader.py from a checkout
    sys.path.insert(0, str(_REPO))

if __name__ == "__main__":
    import atheris

    with atheris.instrument_imports(include=["hardened_server"]):
        from hardened_server.policy import csp
        from hardened_server.policy.decisions import ROUTE_CLASSES
        from hardened_server.policy.errors import PolicyError
        from hardened_server.policy.loader import (
            Extend,
            build_policy,
            default_layer,
            layer_from_bytes,
            loosens,
        )
        from hardened_server.policy.schema import FIELDS, TABLES
else:  # imported by the test suite: no atheris needed
    from hardened_server.policy import csp
    from hardened_server.policy.decisions import ROUTE_CLASSES
    from hardened_server.policy.errors import PolicyError
    from hardened_server.policy.loader import (
        Extend,
        build_policy,
        default_layer,
        layer_from_bytes,
        loosens,
    )
    from hardened_server.policy.schema import FIELDS, TABLES

SOURCE = "fuzz.toml"
DEFAULT = default_layer()
DEFAULT_VALUES = build_policy([DEFAULT]).values
MAX_INPUT = 64 * 1024  # a policy file is small; larger inputs only slow the fuzzer down


def toml_string(text: str) -> str:
    """A TOML basic string (escapes what TOML requires: quote, backslash, controls, DEL)."""
    out = ['"']
    for c in text:
        if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    if value is None:
        return "false"  # a removed CSP directive
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Extend):  # a list key written as { extend = [...] }
        return "{ extend = " + toml_value(value.items) + " }"
    if isinstance(value, dict):  # scopes.routes: an inline table of inline tables
        items = ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + (f" {items} " if items else "") + "}"
    raise AssertionError(f"a validated value of unexpected type: {value!r}")


def serialise(values: Any) -> bytes:
    lines = []
    for key, value in values.items():
        field = FIELDS[key]
        if field.kind == "directive" and value == ():
            text = "true" if key.endswith(".upgrade-insecure-requests") else "[]"
        else:
            text = toml_value(value)
        lines.append(f"{key} = {text}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def check_error(exc: PolicyError) -> None:
    text = str(exc)
    assert text.startswith(exc.source), text
    assert exc.source in (SOURCE, DEFAULT.source), text
    assert exc.problem, text
    assert exc.fix, ("no fix given", text)
    if not exc.key:
        return
    assert exc.key in text, text
    if exc.key in FIELDS or exc.key in TABLES:
        return
    # otherwise the error is about the key itself (its dotted path as written in the file)
    assert exc.problem in ("unknown key", "a key name cannot be empty or contain '.'"), text


def check_policy(layer: Any, policy: Any) -> None:
    for rc in ROUTE_CLASSES:
        assert csp.floor_problems(rc, policy.csp[rc]) == [], (rc, dict(policy.csp[rc]))
        header = csp.serialize(policy.csp[rc])
        assert header.isascii(), header
        assert header.isprintable(), header
        assert csp.parse(header) == dict(policy.csp[rc]), header
    for key, value in layer.values.items():
        assert key in FIELDS, key
        assert policy.provenance[key] == SOURCE, key
        steps = policy.history[key]
        assert steps[-1].source == SOURCE, (key, steps)
        if isinstance(value, Extend):
            # extending never drops: the default's items first, then every extended item
            before = DEFAULT_VALUES.get(key, ())
            effective = policy.values[key]
            assert effective[: len(before)] == before, (key, effective)
            assert set(value.items) <= set(effective), (key, effective)
            assert steps[-1].how == "extend", (key, steps)
            assert steps[-1].dropped == (), (key, steps)
        else:
            assert policy.values[key] == value, key
    for key, field in FIELDS.items():
        value = policy.values.get(key)
        if field.kind == "int":
            assert isinstance(value, int), (key, value)
            assert not isinstance(value, bool), (key, value)
            assert field.minimum is None or value >= field.minimum, (key, value)
            assert field.maximum is None or value <= field.maximum, (key, value)
        if key in policy.values or key in DEFAULT_VALUES:
            loosens(key, value, DEFAULT_VALUES.get(key))


def TestOneInput(data: bytes) -> None:  # the name atheris and OSS-Fuzz expect
    if len(data) > MAX_INPUT:
        return
    try:
        layer = layer_from_bytes(SOURCE, data)
        policy = build_policy([DEFAULT, layer])
    except PolicyError as exc:
        check_error(exc)
        return
    check_policy(layer, policy)
    again = layer_from_bytes(SOURCE, serialise(layer.values))
    assert dict(again.values) == dict(layer.values), (dict(layer.values), dict(again.values))
    assert build_policy([DEFAULT, again]).fingerprint == policy.fingerprint


def main() -> None:
    atheris.enabled_hooks.add("str")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
