"""Writing and signing a notebook with less work than nbformat, for byte-identical answers.

Profiling a save of a 1 MiB, 250-cell notebook (#22, BENCHMARKS.md) put most of stock's CPU
in two nbformat functions that do more than their answer needs:

* ``nbformat.v4.writes`` deep-copies the whole notebook (so that splitting lines and stripping
  transient fields do not touch the caller's), then serialises it with ``indent=1``, which
  makes the standard library fall back from its C encoder to the pure-Python, generator-based
  one. :func:`writes_v4` builds the split and stripped structure without copying what it
  does not change, and serialises it with one recursive function over the same C string
  encoder. The text is the same, character for character.
* ``NotebookNotary.compute_signature`` (on every open, to mark trusted cells, and on every
  save, to sign) feeds the HMAC one ``bytes`` per string through a recursive generator
  (``nbformat.sign.yield_everything``). :class:`FastNotebookNotary` feeds it the same bytes
  joined once: the same digest.

* ``nbformat.reads`` (every open) parses the JSON into plain dicts, then walks the whole tree
  again to turn every dict into a ``NotebookNode`` (``from_dict``). :func:`reads_notebook`
  parses straight into ``NotebookNode`` (``json.loads``' ``object_pairs_hook``): the same
  tree, half the time.
* Validation (on every open and every save) asks :func:`~hardened_server.enforcement.nbschema.
  certainly_valid` first, an exact predicate compiled from nbformat's own schemas that answers
  the valid case in a fifth of the time; whenever it is not sure, ``nbformat.validate`` runs as
  before and its ``ValidationError`` is logged and captured as nbformat does, its repairs
  (missing or duplicate cell ids) made by nbformat.

All of them fall back to nbformat's own code for anything outside the plain JSON shapes they
handle (another nbformat version, bytes, non-string keys, a cell without the fields nbformat's
writer dereferences, a file that is not a JSON object): such a notebook then gets exactly
nbformat's answer, errors included. ``tests/enforcement/test_notebooks.py`` and
``tests/enforcement/test_nbschema.py`` pin the equalities, with Hypothesis.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import IO, Any

import nbformat
from nbformat import NO_CONVERT, NotebookNode, ValidationError
from nbformat.reader import get_version
from nbformat.sign import NotebookNotary, SQLiteSignatureStore, signature_removed
from nbformat.v4.rwbase import _is_json_mime
from traitlets import default

from hardened_server.enforcement import nbschema

__all__ = [
    "FastNotebookNotary",
    "OneCommitSignatureStore",
    "reads_notebook",
    "signed_bytes",
    "write_notebook",
    "writes_v4",
]

# nbformat.v4.rwbase: what split_lines splits in a mime bundle besides text/*
_NON_TEXT_SPLIT = frozenset({"application/javascript", "image/svg+xml"})
_INFINITY = float("inf")


class _Fallback(Exception):
    """Not a plain shape: let nbformat's own code answer (and fail) as it would."""


# -- signing -------------------------------------------------------------------------------------


def _collect(obj: Any, out: list[str]) -> None:
    if isinstance(obj, dict):
        for key in sorted(obj):
            if not isinstance(key, str):
                raise _Fallback  # nbformat asserts; let it
            out.append(key)
            value = obj[key]
            if type(value) is str:  # most values: no call for them
                out.append(value)
            else:
                _collect(value, out)
    elif isinstance(obj, list | tuple):
        for element in obj:
            if type(element) is str:
                out.append(element)
            else:
                _collect(element, out)
    elif isinstance(obj, str):
        out.append(obj)
    else:
        out.append(str(obj))


def signed_bytes(nb: Any) -> bytes:
    """The concatenation of what ``nbformat.sign.yield_everything(nb)`` yields."""
    pieces: list[str] = []
    _collect(nb, pieces)
    return "".join(pieces).encode("utf8")


class OneCommitSignatureStore(SQLiteSignatureStore):
    """``SQLiteSignatureStore`` whose ``store_signature`` commits once.

    Stock's asks whether the signature is known through ``check_signature``, which updates
    ``last_seen`` and commits, then updates ``last_seen`` again and commits again: two
    synchronous disk syncs per notebook save, on the server's event loop. Here the same
    ``SELECT``, then one ``UPDATE`` (or ``INSERT``) and one commit: the same rows (``last_seen``
    the time of the save), the same count and cull afterwards."""

    def store_signature(self, digest: str, algorithm: str) -> None:
        if self.db is None:
            return
        known = self.db.execute(
            "SELECT id FROM nbsignatures WHERE algorithm = ? AND signature = ?;",
            (algorithm, digest),
        ).fetchone()
        now = datetime.now(tz=UTC)
        if known is None:
            self.db.execute(
                "INSERT INTO nbsignatures (algorithm, signature, last_seen) VALUES (?, ?, ?)",
                (algorithm, digest, now),
            )
        else:
            self.db.execute(
                "UPDATE nbsignatures SET last_seen = ? WHERE algorithm = ? AND signature = ?;",
                (now, algorithm, digest),
            )
        self.db.commit()
        (count,) = self.db.execute("SELECT Count(*) FROM nbsignatures").fetchone()
        if count > self.cache_size:
            self.cull_db()


class FastNotebookNotary(NotebookNotary):
    """``NotebookNotary`` whose HMAC is fed the notebook's bytes in one call, and whose
    default store commits once per signature stored (:class:`OneCommitSignatureStore`)."""

    @default("store_factory")
    def _store_factory_default(self) -> Callable[[], Any]:
        stock = super()._store_factory_default()
        if nbformat.sign.sqlite3 is None:  # stock's warning and memory store
            return stock

        def factory() -> Any:
            return OneCommitSignatureStore(self.db_file)

        return factory

    def compute_signature(self, nb: Any) -> str:
        digest = hmac.new(self.secret, digestmod=self.digestmod)
        with signature_removed(nb):
            try:
                data = signed_bytes(nb)
            except (_Fallback, RecursionError):
                data = None
        if data is None:
            return str(super().compute_signature(nb))
        digest.update(data)
        return digest.hexdigest()


# -- writing -------------------------------------------------------------------------------------


def _split(value: Any) -> Any:
    return value.splitlines(True) if isinstance(value, str) else value


def _split_bundle(bundle: Any) -> Any:
    """``rwbase._split_mimebundle`` on a new dict (the caller's is left alone)."""
    if not isinstance(bundle, dict):
        raise _Fallback
    out = {}
    for key, value in bundle.items():
        if not isinstance(key, str):
            raise _Fallback
        if isinstance(value, str) and (key.startswith("text/") or key in _NON_TEXT_SPLIT):
            value = value.splitlines(True)
        out[key] = value
    return out


def _prepared(nb: Any) -> dict[str, Any]:
    """What ``nbformat.v4.writes`` serialises: ``strip_transient(split_lines(deepcopy(nb)))``,
    with new containers only where something changes."""
    if not isinstance(nb, dict):
        raise _Fallback
    cells_in, meta_in = nb.get("cells"), nb.get("metadata")
    if not isinstance(cells_in, list) or not isinstance(meta_in, dict):
        raise _Fallback
    cells = []
    for cell in cells_in:
        if not isinstance(cell, dict) or not isinstance(cell.get("metadata"), dict):
            raise _Fallback
        new = dict(cell)
        if "source" in new:
            new["source"] = _split(new["source"])
        if "attachments" in new:
            attachments = new["attachments"]
            if not isinstance(attachments, dict):
                raise _Fallback
            new["attachments"] = {k: _split_bundle(v) for k, v in attachments.items()}
        if "cell_type" not in new:
            raise _Fallback
        if new["cell_type"] == "code":
            outputs = new.get("outputs")
            if not isinstance(outputs, list):
                raise _Fallback
            new["outputs"] = [_prepared_output(output) for output in outputs]
        if "trusted" in new["metadata"]:
            new["metadata"] = {k: v for k, v in new["metadata"].items() if k != "trusted"}
        cells.append(new)
    out = dict(nb)
    out["cells"] = cells
    transient = ("orig_nbformat", "orig_nbformat_minor", "signature")
    out["metadata"] = {k: v for k, v in meta_in.items() if k not in transient}
    return out


def _prepared_output(output: Any) -> Any:
    if not isinstance(output, dict) or "output_type" not in output:
        raise _Fallback
    kind = output["output_type"]
    if kind in ("execute_result", "display_data"):
        if "data" not in output:
            return output
        new = dict(output)
        new["data"] = _split_bundle(output["data"])
        return new
    if kind == "stream":
        if "text" not in output:
            raise _Fallback
        if isinstance(output["text"], str):
            new = dict(output)
            new["text"] = output["text"].splitlines(True)
            return new
    return output


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def _encode(value: Any, indent: str, out: list[str], esc: Callable[[str], str]) -> None:
    """``json.dumps(value, indent=1, sort_keys=True, separators=(",", ": "),
    ensure_ascii=False)`` appended to ``out``, ``indent`` being the current line's prefix
    (the branches in the order of ``json.encoder._make_iterencode``)."""
    if isinstance(value, str):
        out.append(esc(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = indent + " "
        try:
            # A list of strings (every split source and output text): one C-level join.
            # esc raises TypeError on anything but a str (subclasses included, as json does).
            joined = (",\n" + inner).join(map(esc, value))
        except TypeError:
            pass
        else:
            out.append("[\n" + inner + joined + "\n" + indent + "]")
            return
        out.append("[\n" + inner)
        first = True
        for item in value:
            if first:
                first = False
            else:
                out.append(",\n" + inner)
            if type(item) is str:
                out.append(esc(item))
            else:
                _encode(item, inner, out, esc)
        out.append("\n" + indent + "]")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        for key in value:
            if type(key) is not str:
                raise _Fallback  # json's key coercion and sorting rules: leave them to json
        inner = indent + " "
        out.append("{\n" + inner)
        first = True
        for key in sorted(value):
            if first:
                first = False
            else:
                out.append(",\n" + inner)
            out.append(esc(key) + ": ")
            item = value[key]
            if type(item) is str:
                out.append(esc(item))
            else:
                _encode(item, inner, out, esc)
        out.append("\n" + indent + "}")
    else:
        raise _Fallback  # bytes (BytesEncoder) and anything else: json's default hook


def writes_v4(nb: Any) -> str:
    """``nbformat.v4.writes(nb)``, the same string, without the deep copy and with one
    recursive pass instead of the pure-Python encoder's generators."""
    try:
        out: list[str] = []
        _encode(_prepared(nb), "", out, encode_basestring)
        return "".join(out)
    except (_Fallback, RecursionError):
        return str(nbformat.v4.writes(nb))


# -- validating and reading ---------------------------------------------------------------------


def _validate(nb: Any, capture_validation_error: dict[str, Any] | None) -> None:
    """What ``nbformat.reads`` and ``nbformat.writes`` do to validate: log and capture the
    ``ValidationError``; ``nbformat.validate`` itself only when the fast predicate is unsure."""
    if nbschema.certainly_valid(nb):
        return
    try:
        nbformat.validate(nb)
    except ValidationError as e:
        nbformat.get_logger().error("Notebook JSON is invalid: %s", e)
        if isinstance(capture_validation_error, dict):
            capture_validation_error["ValidationError"] = e


def _rejoin_bundle(bundle: Any) -> None:
    """``rwbase._rejoin_mimebundle`` on a plain-JSON bundle (anything else: nbformat's)."""
    if not isinstance(bundle, dict):
        raise _Fallback
    for key, value in list(bundle.items()):
        if type(value) is list and not _is_json_mime(key):
            for line in value:
                if type(line) is not str:
                    break
            else:
                dict.__setitem__(bundle, key, "".join(value))


def _rejoin_and_strip(nb: Any) -> Any:
    """``strip_transient(rejoin_lines(nb))`` on a freshly parsed tree, the same changes made
    with dict operations instead of ``NotebookNode`` attribute access (2.4 -> 0.6 ms on the
    1 MiB notebook, #22). Every value is a str there, so ``NotebookNode.__setitem__`` would
    store it as is. A shape nbformat's code would trip on raises :class:`_Fallback`, and the
    caller reads the file again with nbformat, which raises what it raises."""
    cells, metadata = nb.get("cells"), nb.get("metadata")
    if type(cells) is not list or type(metadata) is not NotebookNode:
        raise _Fallback
    for cell in cells:
        if type(cell) is not NotebookNode or type(cell.get("metadata")) is not NotebookNode:
            raise _Fallback
        source = cell.get("source")
        if type(source) is list:
            dict.__setitem__(cell, "source", "".join(source))  # TypeError: nbformat's too
        if "attachments" in cell:
            attachments = cell["attachments"]
            if type(attachments) is not NotebookNode:
                raise _Fallback
            for attachment in attachments.values():
                _rejoin_bundle(attachment)
        if cell.get("cell_type") == "code" and "outputs" in cell:
            outputs = cell["outputs"]
            if type(outputs) is not list:
                raise _Fallback
            for output in outputs:
                if type(output) is not NotebookNode:
                    raise _Fallback
                kind = output.get("output_type", "")
                if type(kind) is not str:
                    raise _Fallback
                if kind in ("execute_result", "display_data"):
                    _rejoin_bundle(output.get("data", {}))
                elif kind and type(output.get("text")) is list:
                    dict.__setitem__(output, "text", "".join(output["text"]))
    for key in ("orig_nbformat", "orig_nbformat_minor", "signature"):
        metadata.pop(key, None)
    for cell in cells:
        cell["metadata"].pop("trusted", None)
    return nb


def reads_notebook(s: str, capture_validation_error: dict[str, Any] | None = None) -> Any:
    """``nbformat.reads(s, as_version=4, capture_validation_error=...)``, the same
    ``NotebookNode`` tree, parsed once.

    ``from_dict(json.loads(s))`` and ``json.loads(s, object_pairs_hook=NotebookNode)`` build
    the same tree (JSON holds only objects, arrays and scalars; a repeated key keeps its first
    position and its last value either way). Anything but a version 4 notebook object, and any
    error on the way, is read again by ``nbformat.reads``, which raises what it raises."""
    try:
        nb = json.loads(s, object_pairs_hook=NotebookNode)
    except ValueError:
        nb = None
    major = nb.get("nbformat", 1) if isinstance(nb, NotebookNode) else None
    if type(major) is not int or major != 4:
        return nbformat.reads(s, 4, capture_validation_error=capture_validation_error)
    try:
        # nbformat.v4.to_notebook without its from_dict: the tree is NotebookNodes already
        nb = _rejoin_and_strip(nb)
    except Exception:  # a missing key (AttributeError) ...: nbformat's own error
        return nbformat.reads(s, 4, capture_validation_error=capture_validation_error)
    _validate(nb, capture_validation_error)
    return nb


def _writes(nb: Any, capture_validation_error: dict[str, Any] | None) -> str:
    """``nbformat.writes(nb, NO_CONVERT, capture_validation_error)``, version 4 by
    :func:`writes_v4`."""
    version, _ = get_version(nb)
    if version != 4:
        return str(nbformat.writes(nb, NO_CONVERT, capture_validation_error))
    _validate(nb, capture_validation_error)
    return writes_v4(nb)


def write_notebook(
    nb: Any, fp: IO[str], capture_validation_error: dict[str, Any] | None = None
) -> None:
    """``nbformat.write(nb, fp, version=NO_CONVERT, capture_validation_error=...)``."""
    s = _writes(nb, capture_validation_error)
    fp.write(s)
    if not s.endswith("\n"):
        fp.write("\n")
