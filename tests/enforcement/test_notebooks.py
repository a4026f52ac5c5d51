"""enforcement/notebooks.py gives nbformat's answers (#22): the same file text, the same
signature, the same validation outcome, for valid, invalid and odd notebooks."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbformat.sign import NotebookNotary
from traitlets.config import Config

from hardened_server.enforcement.contents import HardenedContentsManager
from hardened_server.enforcement.notebooks import (
    FastNotebookNotary,
    reads_notebook,
    signed_bytes,
    write_notebook,
    writes_v4,
)

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40
) | st.sampled_from(["", "\n", "a\nb\n", "a\r\nb\rc", "line\u2028sep", 'tab\tq"uote\\', "é🙂"])
_LEAF = (
    _TEXT
    | st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
)
_JSON = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_BUNDLE = st.dictionaries(
    st.sampled_from(
        ["text/plain", "text/html", "image/png", "image/svg+xml", "application/javascript",
         "application/json", "application/vnd.custom+json"]
    ),
    _TEXT | _JSON,
    max_size=4,
)  # fmt: skip
_OUTPUT = st.one_of(
    st.fixed_dictionaries(
        {"output_type": st.just("stream"), "name": st.sampled_from(["stdout", "stderr"]),
         "text": _TEXT | st.lists(_TEXT, max_size=3)}
    ),
    st.fixed_dictionaries(
        {"output_type": st.sampled_from(["execute_result", "display_data"]), "data": _BUNDLE,
         "metadata": st.dictionaries(_TEXT, _JSON, max_size=2)},
        optional={"execution_count": st.integers(0, 99) | st.none()},
    ),
    st.fixed_dictionaries(
        {"output_type": st.just("error"), "ename": _TEXT, "evalue": _TEXT,
         "traceback": st.lists(_TEXT, max_size=3)}
    ),
    st.fixed_dictionaries({"output_type": _TEXT}, optional={"extra": _JSON}),
)  # fmt: skip
_META = st.dictionaries(
    st.sampled_from(["trusted", "tags", "collapsed", "x"]) | _TEXT, _JSON, max_size=3
)
_CELL = st.one_of(
    st.fixed_dictionaries(
        {"cell_type": st.just("code"), "metadata": _META, "source": _TEXT | st.lists(_TEXT),
         "outputs": st.lists(_OUTPUT, max_size=3),
         "execution_count": st.integers(0, 99) | st.none()},
        optional={"id": _TEXT},
    ),
    st.fixed_dictionaries(
        {"cell_type": st.sampled_from(["markdown", "raw", "other"]), "metadata": _META,
         "source": _TEXT | st.lists(_TEXT, max_size=3)},
        optional={"attachments": st.dictionaries(_TEXT, _BUNDLE, max_size=2), "id": _TEXT},
    ),
)  # fmt: skip
_NOTEBOOK = st.fixed_dictionaries(
    {
        "cells": st.lists(_CELL, max_size=4),
        "metadata": st.dictionaries(
            st.sampled_from(["orig_nbformat", "orig_nbformat_minor", "signature", "kernelspec"])
            | _TEXT,
            _JSON,
            max_size=4,
        ),
        "nbformat": st.just(4),
        "nbformat_minor": st.integers(0, 6),
    },
    optional={"extra": _JSON},
)


def _notebook(cells: int) -> dict[str, Any]:
    """A working notebook's shape: code cells with source and a stream output each (the
    benchmark's notebook, bench/fixtures.py, has 250 of them)."""
    return {
        "cells": [
            {"cell_type": "code", "execution_count": i + 1, "id": f"cell-{i:05d}",
             "metadata": {}, "source": f"# cell {i}\nprint(sum(range({i})))\n" * 5,
             "outputs": [{"name": "stdout", "output_type": "stream",
                          "text": f"{i} the quick brown fox\n" * 40}]}
            for i in range(cells)
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}, "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip


def _same_json(a: Any, b: Any) -> bool:
    """Equality that counts NaN equal to NaN (the documents hold NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(_NOTEBOOK)
def test_writes_v4_is_nbformats_text_and_leaves_the_notebook_alone(doc: dict[str, Any]) -> None:
    nb = nbformat.from_dict(doc)
    before = copy.deepcopy(nb)
    assert writes_v4(nb) == nbformat.v4.writes(nb)
    assert _same_json(nb, before)


@settings(max_examples=300, deadline=None)
@given(_NOTEBOOK)
def test_signature_is_nbformats(doc: dict[str, Any]) -> None:
    nb = nbformat.from_dict(doc)
    secret = b"k" * 32
    fast = FastNotebookNotary(secret=secret, db_file=":memory:")
    stock = NotebookNotary(secret=secret, db_file=":memory:")
    assert fast.compute_signature(nb) == stock.compute_signature(nb)


def test_the_benchmark_notebook_and_odd_shapes() -> None:
    """A notebook the size of the benchmark's (250 cells); bytes (BytesEncoder), a cell
    without outputs or cell_type (nbformat fails; so must we, the same way), non-string
    keys."""
    nb = nbformat.from_dict(_notebook(250))
    assert writes_v4(nb) == nbformat.v4.writes(nb)
    assert signed_bytes(nb) == b"".join(nbformat.sign.yield_everything(nb))
    with_bytes = nbformat.from_dict(_notebook(2))
    with_bytes.metadata["blob"] = b"\x00\x01"
    assert writes_v4(with_bytes) == nbformat.v4.writes(with_bytes)
    for broken in ({"cell_type": "code", "metadata": {}, "source": ""}, {"metadata": {}}):
        nb = nbformat.from_dict({"cells": [broken], "metadata": {}, "nbformat": 4,
                                 "nbformat_minor": 5})  # fmt: skip
        with pytest.raises(AttributeError):
            nbformat.v4.writes(nb)
        with pytest.raises(AttributeError):
            writes_v4(nb)
    keyed = nbformat.from_dict({"cells": [], "metadata": {1: "a"}, "extra": [math.inf, -0.0],
                                "nbformat": 4, "nbformat_minor": 5})  # fmt: skip
    assert writes_v4(keyed) == nbformat.v4.writes(keyed)


@pytest.mark.parametrize("valid", [True, False], ids=["valid", "invalid"])
def test_write_notebook_validates_as_nbformat_write(valid: bool) -> None:
    doc = _notebook(3)
    if not valid:
        doc["cells"][0]["execution_count"] = "one"  # the schema wants an integer
    theirs: dict[str, Any] = {}
    ours: dict[str, Any] = {}
    expected, got = io.StringIO(), io.StringIO()
    nbformat.write(nbformat.from_dict(doc), expected, version=nbformat.NO_CONVERT,
                   capture_validation_error=theirs)  # fmt: skip
    write_notebook(nbformat.from_dict(doc), got, capture_validation_error=ours)
    assert got.getvalue() == expected.getvalue()
    assert ("ValidationError" in ours) is (not valid)
    assert str(ours.get("ValidationError")) == str(theirs.get("ValidationError"))


@pytest.mark.parametrize("valid", [True, False], ids=["valid", "invalid"])
def test_save_answers_and_writes_what_stock_does(tmp_path: Path, valid: bool) -> None:
    """A save through the manager: the file on disk and the model (with stock's
    'Notebook validation failed' message for an invalid notebook) equal stock's."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    doc = _notebook(10)
    if not valid:
        doc["cells"][1]["outputs"][0]["output_type"] = "no-such-output"
    results = []
    for cls in (AsyncLargeFileManager, HardenedContentsManager):
        root = tmp_path / cls.__name__
        root.mkdir()
        cfg = Config()
        cfg.NotebookNotary.data_dir = str(tmp_path / f"{cls.__name__}-notary")
        cfg.NotebookNotary.secret = b"s" * 32
        cm = cls(config=cfg, root_dir=str(root))
        model = asyncio.run(
            cm.save({"type": "notebook", "content": copy.deepcopy(doc)}, "nb.ipynb")
        )
        opened = asyncio.run(cm.get("nb.ipynb", content=True))
        results.append(
            (
                (root / "nb.ipynb").read_text(),
                model.get("message"),
                opened.get("message"),
                json.dumps(opened["content"], sort_keys=True),
                cm.notary.check_signature(nbformat.read(root / "nb.ipynb", as_version=4)),
            )
        )
    assert results[0] == results[1]
    assert (results[1][1] is None) is valid


def _read_both(text: str) -> list[Any]:
    """``nbformat.reads`` and ``reads_notebook`` on ``text``: the tree (types included), the
    captured validation error, or the exception; nbformat's random id repairs numbered."""
    results = []
    for read in (lambda t, c: nbformat.reads(t, 4, capture_validation_error=c), reads_notebook):
        captured: dict[str, Any] = {}
        numbered = mock.patch.object(
            nbformat.validator,
            "generate_corpus_id",
            side_effect=[f"fixed-{i}" for i in range(10_000)],
        )
        try:
            with numbered, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nbformat's repair warnings
                nb = read(text, captured)
            outcome: Any = (_typed(nb), str(captured.get("ValidationError")))
        except Exception as e:  # the very exception is compared
            outcome = (type(e), str(e))
        results.append(outcome)
    return results


def _typed(value: Any) -> Any:
    """``value`` with every container's type kept, NaN comparable."""
    if isinstance(value, dict):
        return (type(value), [(k, _typed(v)) for k, v in value.items()], value.__dict__)
    if isinstance(value, list):
        return (type(value), [_typed(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return (type(value), value)


@settings(max_examples=300, deadline=None)
@given(_NOTEBOOK, st.sampled_from([None, 1]))
def test_reads_notebook_is_nbformats_reads(doc: dict[str, Any], indent: int | None) -> None:
    """The same NotebookNode tree, the same captured ValidationError (nbformat's message), the
    same exception; for files as nbformat writes them (lines split) and as plain JSON."""
    text = json.dumps(doc, indent=indent)
    ours, theirs = _read_both(text)[::-1]
    assert ours == theirs
    if isinstance(theirs[0], tuple) and doc["nbformat_minor"] != 6:
        # lines split as on disk
        try:
            on_disk = nbformat.v4.writes(nbformat.from_dict(doc))
        except (AttributeError, KeyError, TypeError):
            return
        ours, theirs = _read_both(on_disk)[::-1]
        assert ours == theirs


# Shapes nbformat's rejoin_lines and strip_transient trip on (each read again by nbformat).
_ODD_CELLS = [
     '"cells": {}', '"cells": ["x"]', '"cells": [{"cell_type": "raw", "source": "x"}]',
     '"cells": [{"metadata": [], "source": ["a", 1]}]',
     '"cells": [{"metadata": {}, "source": ["a", 1]}, {"source": "x"}]',
     '"cells": [{"metadata": {}, "attachments": null}]',
     '"cells": [{"metadata": {}, "attachments": {"a": []}}]',
     '"cells": [{"metadata": {}, "attachments": {"a": {"text/plain": ["a", 2]}}}]',
     '"cells": [{"metadata": {}, "cell_type": "code", "outputs": {"a": 1}}]',
     '"cells": [{"metadata": {}, "cell_type": "code", "outputs": null}]',
     '"cells": [{"metadata": {}, "cell_type": "code", "outputs": ["x"]}]',
     '"cells": [{"metadata": {}, "cell_type": "code", "outputs": [{"output_type": []}]}]',
     '"cells": [{"metadata": {}, "cell_type": "code", "outputs": [{"output_type": 1, '
     '"text": ["a", "b"]}]}]',
     '"cells": [{"metadata": {}, "cell_type": "code", "outputs": [{"output_type": '
     '"stream", "text": ["a", null]}]}]',
     '"cells": [{"metadata": {}, "cell_type": "code", "outputs": [{"output_type": '
     '"display_data", "data": ["a"]}]}]',
     '"cells": [{"metadata": {}, "cell_type": "code", "outputs": [{"output_type": '
     '"display_data", "data": {"application/json": ["a"], "application/x+json": ["b"], '
     '"text/plain": ["c", "d"], "image/png": ["e", 1]}}]}]',
]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", "1", "null", "{}", '{"nbformat": 4}', '{"nbformat": 4.0}',
     '{"nbformat": "4"}', '{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}',
     '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}',
     '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [], "cells": 1}',
     '{"nbformat": 4, "nbformat_minor": 4, "metadata": {"a": 1, "a": 2}, "cells": []}',
     '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "raw", '
     '"metadata": {}, "source": ["a", "b"]}, {"cell_type": "raw", "metadata": {}, '
     '"source": "", "id": "x"}, {"cell_type": "raw", "metadata": {}, "source": "", "id": "x"}]}',
     '{"nbformat": 5, "nbformat_minor": 0, "metadata": {}, "cells": []}',
     *('{"nbformat": 4, "nbformat_minor": 4, "metadata": {"signature": "x"}, ' + cells + "}"
       for cells in _ODD_CELLS),
     '{"nbformat": 4, "nbformat_minor": 4, "metadata": null, "cells": []}',
     '{"nbformat": 4, "nbformat_minor": 4, "cells": []}'],
)  # fmt: skip
def test_reads_notebook_odd_files_get_nbformats_answer(text: str) -> None:
    ours, theirs = _read_both(text)[::-1]
    assert ours == theirs


def test_open_of_the_benchmark_notebook_takes_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the benchmark's notebook (#22) never runs nbformat's validator and answers what
    stock answers; a notebook in doubt (a duplicate id) still goes through nbformat."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    from bench import fixtures

    doc = fixtures.notebook_document()
    models = []
    for cls in (AsyncLargeFileManager, HardenedContentsManager):
        root = tmp_path / cls.__name__
        root.mkdir()
        (root / "nb.ipynb").write_text(nbformat.writes(nbformat.from_dict(doc)))
        cfg = Config()
        cfg.NotebookNotary.data_dir = str(tmp_path / f"{cls.__name__}-notary")
        cfg.NotebookNotary.secret = b"s" * 32
        cm = cls(config=cfg, root_dir=str(root))
        models.append(asyncio.run(cm.get("nb.ipynb", content=True)))
    stock, ours = models
    assert _typed(ours["content"]) == _typed(stock["content"])
    assert "message" not in ours
    assert "message" not in stock

    calls: list[Any] = []
    real_validate = nbformat.validate

    def counting(nb: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(nb)
        return real_validate(nb, *args, **kwargs)

    monkeypatch.setattr(nbformat, "validate", counting)
    asyncio.run(cm.get("nb.ipynb", content=True))
    assert calls == []
    doc["cells"][1]["id"] = doc["cells"][0]["id"]
    (root / "nb.ipynb").write_text(json.dumps(doc))
    with pytest.warns(nbformat.warnings.DuplicateCellId):
        repaired = asyncio.run(cm.get("nb.ipynb", content=True))
    assert len(calls) == 1
    assert repaired["content"]["cells"][1]["id"] != doc["cells"][0]["id"]


def _rows(store: Any) -> list[tuple[Any, ...]]:
    return store.db.execute(
        "SELECT id, algorithm, signature FROM nbsignatures ORDER BY id"
    ).fetchall()


def test_signature_store_commits_once_per_save_and_keeps_stocks_rows() -> None:
    """Stock's store_signature commits twice for a known signature (a disk sync each, on the
    event loop); ours once, leaving the same rows, culled the same way."""
    from nbformat.sign import SQLiteSignatureStore

    from hardened_server.enforcement.notebooks import OneCommitSignatureStore

    notary = FastNotebookNotary(db_file=":memory:", secret=b"k" * 32)
    assert isinstance(notary.store, OneCommitSignatureStore)
    stores = [SQLiteSignatureStore(":memory:"), OneCommitSignatureStore(":memory:")]
    commits: list[list[str]] = []
    for store in stores:
        store.cache_size = 4
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        per_call = []
        for digest in ["a", "b", "a", "c", "d", "e", "b", "f", "a"]:
            before = statements.count("COMMIT")
            store.store_signature(digest, "sha256")
            per_call.append(statements.count("COMMIT") - before)
        commits.append(per_call)
        assert store.check_signature("a", "sha256")
        assert not store.check_signature("zz", "sha256")
    assert _rows(stores[0]) == _rows(stores[1])
    assert max(commits[0]) == 2  # stock, for a known signature
    assert commits[1] == [1] * 9
