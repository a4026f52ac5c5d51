#!/usr/bin/env python3
"""atheris harness for :mod:`hardened_server.policy.bodies`: the JSON body schemas.

The input is a request body (any bytes). It is checked against every rule (the last byte picks
one to look at first), and also wrapped as the ``content`` of a notebook save, so that seeds
written as notebooks mean something.

Invariants (an AssertionError or any other exception is a finding, exit code 77 under atheris):

* ``check_body`` never raises, and answers ``None`` or a non-empty message;
* a contents ``PUT`` body it accepts survives what jupyter_server's ``FileContentsManager``
  does with it before writing (:func:`simulate_save`: the handler's type fallback, ``new()``'s
  defaults, ``nbformat.from_dict``, the notary's ``check_cells``/``sign``, ``nbformat.writes``,
  text encoding, base64 decoding), so a body the schema lets through cannot be a 500 there;
* a config ``PATCH`` that passes ``merge_conflict`` merges with ``recursive_update`` without an
  exception.

Run: ``./fuzz/fuzz_bodies.py -dict=fuzz/dicts/bodies.dict -max_total_time=60 SCRATCH
fuzz/corpus/bodies``. Replayed without atheris by ``tests/verification/test_fuzz_corpus.py``.
"""

from __future__ import annotations

import copy
import sys
import warnings
from base64 import decodebytes
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as ./fuzz/fuzz_bodies.py from a checkout
    sys.path.insert(0, str(_REPO))

import nbformat  # noqa: E402
from jupyter_server.config_manager import recursive_update  # noqa: E402
from nbformat.sign import NotebookNotary  # noqa: E402

if __name__ == "__main__":
    import atheris

    with atheris.instrument_imports(include=["hardened_server"]):
        from hardened_server.policy.bodies import RULES, check_body, merge_conflict, parse_body
else:  # imported by the test suite: no atheris needed
    from hardened_server.policy.bodies import RULES, check_body, merge_conflict, parse_body

CONTENTS = "jupyter_server.services.contents.handlers.ContentsHandler"
CONFIG = "jupyter_server.services.config.handlers.ConfigHandler"
PUT = RULES[(CONTENTS, "PUT")]
PATCH_CONFIG = RULES[(CONFIG, "PATCH")]
RULE_KEYS = sorted(RULES)
NOTARY = NotebookNotary(db_file=":memory:", secret=b"fuzz")
STORED_CONFIG = {"a": "flat", "b": {"c": 1, "d": {"e": [1]}}, "n": None}


def simulate_save(model: dict[str, Any], path: str) -> None:
    """What ContentsHandler.put + FileContentsManager.new/save do with an accepted model, up
    to the bytes written (jupyter_server 2.21.1); an exception here is a 500 there."""
    if model.get("copy_from"):
        return  # the handler answers 400
    if model.get("type", "") not in {None, "", "directory", "file", "notebook"}:
        model["type"] = "file"
    # new() for a path that does not exist yet
    model.setdefault("type", "notebook" if path.endswith(".ipynb") else "file")
    if "content" not in model and model["type"] != "directory":
        if model["type"] == "notebook":
            model["content"] = nbformat.v4.new_notebook()
            model["format"] = "json"
        else:
            model["content"] = ""
            model["type"] = "file"
            model["format"] = "text"
    kind = model["type"]
    if kind == "notebook":
        nb = nbformat.from_dict(model["content"])
        if NOTARY.check_cells(nb):
            NOTARY.sign(nb)
        nbformat.writes(nb, version=nbformat.NO_CONVERT)
    elif kind == "file":
        fmt = model.get("format")
        if fmt not in {"text", "base64"}:
            return  # the manager answers 400
        content = model["content"]
        if fmt == "text":
            content.encode("utf8")
        else:
            decodebytes(content.encode("ascii"))


def TestOneInput(data: bytes) -> None:  # the name atheris and OSS-Fuzz expect
    first = RULE_KEYS[data[-1] % len(RULE_KEYS)] if data else RULE_KEYS[0]
    for key in (first, *RULE_KEYS):
        problem = check_body(RULES[key], data)
        assert problem is None or (isinstance(problem, str) and problem), (key, problem)

    wrapped = b'{"type": "notebook", "format": "json", "content": ' + data + b"}"
    for body, path in ((data, "a.txt"), (data, "a.ipynb"), (wrapped, "a.ipynb")):
        if check_body(PUT, body) is not None or not body.strip():
            continue
        model = parse_body(body)
        if model is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nbformat's MissingIDFieldWarning and the like
                simulate_save(copy.deepcopy(model), path)

    if check_body(PATCH_CONFIG, data) is None and data.strip():
        patch = parse_body(data)
        if merge_conflict(STORED_CONFIG, patch) is None:
            recursive_update(copy.deepcopy(STORED_CONFIG), patch)


def main() -> None:
    atheris.enabled_hooks.add("str")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
