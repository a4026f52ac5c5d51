"""enforcement/nbschema.py is sound (#22): whenever ``certainly_valid`` says so, nbformat's
``validate`` (either backend) raises nothing and changes nothing. Checked on valid notebooks of
every v4 minor version and on mutations of them; and the fast path is taken where it should be
(the benchmark's notebook, nbformat's own new notebooks), so a silent fallback fails here."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbformat.validator import get_validator

from bench import fixtures
from hardened_server.enforcement import nbschema
from hardened_server.enforcement.nbschema import certainly_valid

_WORD = st.text(alphabet="abcXYZ019-_,./+ \n", min_size=0, max_size=8)
_TEXT = _WORD | st.text(max_size=12) | st.sampled_from(["", "\n", "a\n", "a\nb", "é🙂", "x" * 70])
_LEAF = _TEXT | st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False)
_JSON = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
# Values that are not plain JSON, or sit on the edges where the validators differ.
_ODD = st.sampled_from(
    [(), ("a",), b"x", 1.0, 0.0, -1, True, False, 1, 0, "", "a\n", "a,b", "x" * 65, None,
     {"a": 1}, [], ["a", "a"], [1], {1: "a"}, float("inf"), "auto", "code", "stream"]
)  # fmt: skip
_MULTILINE = _TEXT | st.lists(_TEXT, max_size=3)
_MIME = st.sampled_from(
    ["text/plain", "text/html", "image/png", "application/json", "application/vnd.x+json",
     "application/jsonx", "text/plain\n", "application/json\n"]
)  # fmt: skip
_BUNDLE = st.dictionaries(_MIME, _MULTILINE, max_size=3) | st.dictionaries(_MIME, _JSON, max_size=3)
_OUTPUT = st.one_of(
    st.fixed_dictionaries(
        {"output_type": st.just("stream"), "name": _WORD, "text": _MULTILINE}
    ),
    st.fixed_dictionaries(
        {"output_type": st.just("display_data"), "data": _BUNDLE,
         "metadata": st.dictionaries(_MIME, _JSON, max_size=2)},
        optional={"transient": _JSON},
    ),
    st.fixed_dictionaries(
        {"output_type": st.just("execute_result"), "data": _BUNDLE,
         "metadata": st.dictionaries(_MIME, _JSON, max_size=2),
         "execution_count": st.integers(-1, 5) | st.none()}
    ),
    st.fixed_dictionaries(
        {"output_type": st.just("error"), "ename": _WORD, "evalue": _WORD,
         "traceback": st.lists(_WORD, max_size=2)}
    ),
)  # fmt: skip
_CELL_META = st.fixed_dictionaries(
    {},
    optional={
        "collapsed": st.booleans(),
        "scrolled": st.sampled_from([True, False, "auto", 1, 0]),
        "name": _WORD,
        "tags": st.lists(_WORD, max_size=3),
        "jupyter": st.dictionaries(st.sampled_from(["source_hidden", "outputs_hidden", "x"]),
                                   _LEAF, max_size=2),
        "execution": st.dictionaries(_WORD, _TEXT | st.integers(0, 2), max_size=2),
        "format": _WORD,
        "other": _JSON,
    },
)  # fmt: skip
_ID = st.from_regex(r"\A[a-zA-Z0-9_-]{1,8}\Z") | _WORD


@st.composite
def _cell(draw: st.DrawFn, minor: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["code", "markdown", "raw"]))
    cell: dict[str, Any] = {"cell_type": kind, "metadata": draw(_CELL_META),
                            "source": draw(_MULTILINE)}  # fmt: skip
    if kind == "code":
        cell["outputs"] = draw(st.lists(_OUTPUT, max_size=3))
        cell["execution_count"] = draw(st.integers(0, 9) | st.none())
    elif draw(st.booleans()):
        cell["attachments"] = draw(st.dictionaries(_WORD, _BUNDLE, max_size=2))
    if minor >= 5 or draw(st.integers(0, 9)) == 0:
        cell["id"] = draw(_ID)
    return cell


@st.composite
def _notebook(draw: st.DrawFn) -> dict[str, Any]:
    minor = draw(st.integers(0, 5) | st.sampled_from([6, -1]))
    meta = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "kernelspec": st.fixed_dictionaries({"name": _WORD, "display_name": _WORD}),
                "language_info": st.fixed_dictionaries(
                    {"name": _WORD},
                    optional={"codemirror_mode": _WORD | st.dictionaries(_WORD, _JSON),
                              "file_extension": _WORD},
                ),
                "title": _WORD,
                "authors": st.lists(st.fixed_dictionaries({"name": _WORD}), max_size=2),
                "orig_nbformat": st.integers(0, 4),
                "custom": _JSON,
            },
        )
    )  # fmt: skip
    cells = draw(st.lists(_cell(minor), max_size=5))
    if minor >= 5 and draw(st.booleans()):
        for i, cell in enumerate(cells):  # mostly unique ids, as real notebooks have
            cell["id"] = f"c{i}"
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": minor}


def _locations(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        for key in list(node):
            out.append((node, key))
            _locations(node[key], out)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out.append((node, i))
            _locations(item, out)
    return out


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    nb = draw(_notebook())
    for _ in range(draw(st.integers(0, 3))):
        places = _locations(nb, [])
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "delete", "add", "duplicate-id"]))
        if action == "replace":
            container[key] = copy.deepcopy(draw(_ODD | _JSON))
        elif action == "delete":
            del container[key]
        elif action == "add" and isinstance(container, dict):
            name = draw(_WORD | st.sampled_from(["id", "outputs", "text", "data"]))
            container[name] = copy.deepcopy(draw(_ODD | _JSON))
        elif action == "duplicate-id" and isinstance(cells := nb.get("cells"), list):
            first, second = [*cells, None, None][:2]
            if isinstance(first, dict) and isinstance(second, dict) and "id" in first:
                second["id"] = first["id"]
    return nb


def _nbformat_accepts_unchanged(doc: dict[str, Any]) -> None:
    """What ``certainly_valid`` promises, asked of nbformat itself (both of its backends)."""
    nb = copy.deepcopy(doc)
    before = repr(nb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing or duplicate id repair warns
        nbformat.validate(nb)
    assert repr(nb) == before, "nbformat changed a notebook certainly_valid accepted"
    strict = get_validator(4, doc["nbformat_minor"], name="jsonschema")
    strict.validate(copy.deepcopy(doc))
    fast = get_validator(4, doc["nbformat_minor"], name="fastjsonschema")
    fast.validate(copy.deepcopy(doc))


@settings(max_examples=400, deadline=None)
@given(_notebook())
def test_certainly_valid_notebooks_are_valid_and_left_alone(doc: dict[str, Any]) -> None:
    if certainly_valid(doc):
        _nbformat_accepts_unchanged(doc)


@settings(max_examples=800, deadline=None)
@given(_mutated())
def test_certainly_valid_mutated_notebooks_are_valid_and_left_alone(doc: dict[str, Any]) -> None:
    if certainly_valid(doc):
        _nbformat_accepts_unchanged(doc)


@settings(max_examples=300, deadline=None)
@given(_notebook())
def test_notebook_nodes_get_the_answer_plain_dicts_get(doc: dict[str, Any]) -> None:
    assert certainly_valid(nbformat.from_dict(doc)) == certainly_valid(doc)


def _bench_notebook() -> Any:
    """The benchmark's notebook as an open reads it (lines rejoined)."""
    text = nbformat.writes(nbformat.from_dict(fixtures.notebook_document()))
    return nbformat.reads(text, as_version=4)


def test_the_fast_path_is_taken_for_the_benchmark_notebook() -> None:
    assert certainly_valid(_bench_notebook())
    assert certainly_valid(fixtures.notebook_document())  # as a save sends it


@pytest.mark.parametrize("minor", range(6))
def test_the_fast_path_is_taken_for_every_minor_version(minor: int) -> None:
    nb = nbformat.v4.new_notebook(nbformat_minor=minor)
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3"})
    cells = [
        nbformat.v4.new_code_cell(
            "print(1)",
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text="1\n"),
                nbformat.v4.new_output("display_data", data={"text/plain": ["a\n", "b"],
                                                             "application/json": {"a": [1]}}),
                nbformat.v4.new_output("execute_result", data={"text/html": "<b>"},
                                       execution_count=1),
                nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["t"]),
            ],
            execution_count=1,
            metadata={"tags": ["a", "b"], "collapsed": False, "scrolled": "auto"},
        ),
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_raw_cell("raw"),
    ]  # fmt: skip
    for cell in cells:
        if minor < 5:
            del cell["id"]
    nb.cells = cells
    nbformat.validate(copy.deepcopy(nb))  # the example itself is valid
    assert certainly_valid(nb)


@pytest.mark.parametrize(
    "change",
    [
        lambda nb: nb.cells[1].pop("id"),  # nbformat would add a random id
        lambda nb: nb.cells[1].__setitem__("id", nb.cells[0]["id"]),  # and replace a duplicate
        lambda nb: nb.__setitem__("nbformat_minor", 6),  # the future: a relaxed schema
        lambda nb: nb.__setitem__("nbformat_minor", True),
        lambda nb: nb.cells[0].metadata.__setitem__("scrolled", 1),  # 1 == True
        lambda nb: nb.cells[0].__setitem__("outputs", ()),  # a tuple
        lambda nb: nb.cells[0].metadata.__setitem__("tags", ["a\n"]),  # $ and \Z differ
    ],
)
def test_doubtful_notebooks_are_left_to_nbformat(change: Any) -> None:
    nb = _bench_notebook()
    change(nb)
    assert not certainly_valid(nb)


def test_validate_runs_nbformat_when_in_doubt(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _bench_notebook()
    calls: list[Any] = []
    monkeypatch.setattr(nbformat, "validate", calls.append)
    nbschema.validate(nb)
    assert calls == []
    nb.cells[1]["id"] = nb.cells[0]["id"]
    nbschema.validate(nb)
    assert calls == [nb]


def test_a_changed_nbformat_means_no_fast_path_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The schema loader is nbformat's private function: if a release renames it, every
    notebook goes through nbformat.validate, none fails."""
    nb = _bench_notebook()
    monkeypatch.delattr(nbformat.validator, "_get_schema_json")
    nbschema._predicate.cache_clear()
    try:
        assert not certainly_valid(nb)
    finally:
        monkeypatch.undo()
        nbschema._predicate.cache_clear()
    assert certainly_valid(nb)


@pytest.mark.parametrize("keyword", ["minContains", "x-new-rule", "format", "not"])
def test_a_keyword_the_compiler_does_not_know_means_no_fast_path(keyword: str) -> None:
    """A later nbformat could add a validation keyword to its schema files: any keyword the
    compiler neither implements nor knows as an annotation makes the whole version unsure
    (an allow-list, not a deny-list), so such a schema never yields "certainly valid"."""
    schema = nbformat.validator._get_schema_json(nbformat.v4, version=4, version_minor=5)
    schema = copy.deepcopy(schema)
    schema["definitions"]["markdown_cell"][keyword] = 1
    with pytest.raises(nbschema._Unsupported):
        nbschema._Compiler(schema).compile(schema)
    # the unmodified schema compiles
    clean = nbformat.validator._get_schema_json(nbformat.v4, version=4, version_minor=5)
    assert nbschema._Compiler(clean).compile(clean)[0] is not None
