"""JSON request bodies of the REST API: the shape each handler assumes, checked before it runs.

jupyter_server's handlers read their JSON bodies with ``model.get(...)`` and ``model["..."]``
and trust the types: a list where an object is expected, ``{"path": {}}`` in a rename, a
``type`` that is an object, no body at all for ``PUT /api/config/<section>``, ``{"content": 1}``
for a notebook, base64 that is not base64: each one is an ``AttributeError``, ``TypeError`` or
``KeyError`` deep in the handler or the contents manager, answered 500 (schemathesis found the
first ones, ``tests/hostile``). Here each body is checked against a small schema written from
``jupyter_server/services/api/api.yaml`` and the handlers' own code, and a mismatch is a 400
whose message names the field and what was expected.

The schemas are deliberately minimal: they check types and required fields, never restrict
what a well-formed client sends (unknown fields are allowed: JupyterLab sends whole models), and
leave every semantic check (does the path exist, is the kernel known) to the handler.

Pure: no tornado. ``check_body`` takes the handler's class names (its MRO), the method and the
raw body, and returns ``None`` or the message for the 400.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_ARTICLE = {"object": "an object", "array": "an array", "integer": "an integer"}


def _describe(types: str | tuple[str, ...]) -> str:
    names = (types,) if isinstance(types, str) else types
    return " or ".join(_ARTICLE.get(n, n if n == "null" else f"a {n}") for n in names)


def check(schema: Schema, value: Any, where: str = "body") -> str | None:
    """The first way ``value`` does not fit ``schema``, as a message naming ``where``; ``None``
    if it fits. Keywords: ``type`` (a name or a tuple of names), ``properties``, ``required``,
    ``values`` (every value of an object), ``items``, ``enum`` and ``check`` (a function
    returning a message or ``None``)."""
    types = schema.get("type")
    if types is not None:
        single = type(types) is str
        fits = _TYPES[types](value) if single else any(_TYPES[n](value) for n in types)
        if not fits:
            return f"{where} must be {_describe(types)}, not {_json_type(value)}"
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        return f"{where} must be one of {allowed}"
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                return f"{where} must have the field {name!r}"
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                problem = check(sub, value[name], f"{where}.{name}")
                if problem:
                    return problem
    if isinstance(value, dict) and "values" in schema:
        for name, item in value.items():
            problem = check(schema["values"], item, f"{where}[{_key(name)}]")
            if problem:
                return problem
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problem = check(schema["items"], item, f"{where}[{i}]")
            if problem:
                return problem
    custom = schema.get("check")
    if custom is not None:
        custom_problem: str | None = custom(value, where)
        return custom_problem
    return None


def _fits_all(parts: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    if not parts:
        return lambda value: True
    if len(parts) == 1:
        return parts[0]
    frozen = tuple(parts)

    def fits(value: Any) -> bool:
        for part in frozen:  # noqa: SIM110  # in order, as check returns at the first problem
            if not part(value):
                return False
        return True

    return fits


def compile_fits(schema: Schema) -> Callable[[Any], bool]:
    """``check(schema, value) is None`` as a predicate compiled once: the same keywords tested
    in the same order with the same functions, without building a ``where`` string or
    interpreting the schema per value (a 1 MiB notebook's save: 2.9 ms -> 0.8 ms, #22). The
    message of a refusal still comes from :func:`check`."""
    parts: list[Callable[[Any], bool]] = []
    types = schema.get("type")
    if types is not None:
        if type(types) is str:
            parts.append(_TYPES[types])
        else:
            alternatives = tuple(_TYPES[name] for name in types)
            parts.append(lambda value: any(fits(value) for fits in alternatives))
    if "enum" in schema:
        allowed = schema["enum"]
        parts.append(lambda value: value in allowed)
    required = tuple(schema.get("required", ()))
    properties = tuple(
        (name, compile_fits(sub)) for name, sub in schema.get("properties", {}).items()
    )
    if required or properties:

        def object_fits(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for name in required:
                if name not in value:
                    return False
            for name, sub_fits in properties:
                if name in value and not sub_fits(value[name]):
                    return False
            return True

        parts.append(object_fits)
    if "values" in schema:
        value_fits = compile_fits(schema["values"])
        parts.append(
            lambda value: not isinstance(value, dict) or all(map(value_fits, value.values()))
        )
    if "items" in schema:
        item_fits = compile_fits(schema["items"])
        parts.append(lambda value: not isinstance(value, list) or all(map(item_fits, value)))
    custom = schema.get("check")
    if custom is not None:
        # the message is not wanted here, only whether there is one
        parts.append(lambda value: custom(value, "body") is None)
    return _fits_all(parts)


def _key(name: str) -> str:
    """A client-chosen key in a message: quoted, printable, short (messages are logged)."""
    text = name if name.isascii() and name.isprintable() and len(name) <= 40 else "..."
    return json.dumps(text)


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return _describe(name)
    return type(value).__name__  # pragma: no cover - json.loads makes nothing else


# -- the schemas ------------------------------------------------------------------------------

STRING = {"type": "string"}
OPT_STRING = {"type": ("string", "null")}

_MIME_BUNDLE: Schema = {"type": "object"}


def _stream_has_text(output: Any, where: str) -> str | None:
    if output.get("output_type") == "stream" and "text" not in output:
        return f"{where} is a stream output and must have the field 'text'"
    return None


_OUTPUT: Schema = {
    "type": "object",
    "required": ("output_type",),
    "properties": {
        "output_type": {
            "type": "string",
            "enum": ("execute_result", "display_data", "stream", "error"),
        },
        "data": _MIME_BUNDLE,
        "metadata": {"type": "object"},
        "text": {"type": ("string", "array"), "items": STRING},
        "traceback": {"type": "array", "items": STRING},
    },
    "check": _stream_has_text,
}


def _code_cell_has_outputs(cell: Any, where: str) -> str | None:
    if cell.get("cell_type") == "code" and "outputs" not in cell:
        return f"{where} is a code cell and must have the field 'outputs'"
    return None


#: A notebook as nbformat 4 needs it to be signed and written (found by fuzz/fuzz_bodies.py:
#: a cell without metadata, a code cell without outputs, an output without output_type,
#: non-object data or attachments and nbformat 3 or 99 are exceptions in nbformat's notary and
#: writer, which the contents manager turns into 500). Full validation stays nbformat's (it
#: reports, the save still happens).
NOTEBOOK: Schema = {
    "type": "object",
    "required": ("cells", "metadata", "nbformat", "nbformat_minor"),
    "properties": {
        "cells": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ("cell_type", "source", "metadata"),
                "properties": {
                    "cell_type": {"type": "string", "enum": ("code", "markdown", "raw")},
                    "source": {"type": ("string", "array"), "items": STRING},
                    "metadata": {"type": "object"},
                    "outputs": {"type": "array", "items": _OUTPUT},
                    "attachments": {"type": ("object", "null"), "values": _MIME_BUNDLE},
                },
                "check": _code_cell_has_outputs,
            },
        },
        "metadata": {"type": "object"},
        "nbformat": {"type": "integer", "enum": (4,)},
        "nbformat_minor": {"type": "integer"},
    },
}


def _base64(value: Any, where: str) -> str | None:
    try:
        # as the contents manager decodes it (decodebytes: line breaks tolerated)
        binascii.a2b_base64(value.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return f"{where} is not base64 (format is 'base64')"
    return None


_NOTEBOOK_FITS = compile_fits(NOTEBOOK)


def _content_fits_type(model: Any, where: str) -> str | None:
    """``content`` of a contents model, by ``type`` and ``format`` (the contents manager
    dereferences it by type: a string for a text file, an object for a notebook)."""
    if "content" not in model:
        return None  # the manager makes an empty one, or answers 400
    if "type" not in model:
        # the manager would take it from the path's extension (new()), and a string would then
        # be a notebook: found by fuzz/fuzz_bodies.py
        return f"{where}.type is required with content"
    content, kind, fmt = model["content"], model["type"], model.get("format")
    if kind in (None, ""):
        return None  # the manager answers 400 ("Unhandled contents type")
    if kind == "directory":
        return None if content is None else f"{where}.content must be null for a directory"
    if content is None:
        return f"{where}.content must not be null for a file or a notebook"
    if kind == "notebook":
        if fmt not in (None, "json"):
            return f"{where}.format must be 'json' for a notebook"
        if _NOTEBOOK_FITS(content):
            return None
        return check(NOTEBOOK, content, f"{where}.content")
    # "file", and any other type: the handler turns an unknown type into "file"
    if fmt not in ("text", "base64"):
        return f"{where}.format must be 'text' or 'base64' for a file with content"
    problem = check(STRING, content, f"{where}.content")
    if problem is None and fmt == "base64":
        problem = _base64(content, f"{where}.content")
    return problem


#: ``PUT /api/contents/<path>``: save or upload (api.yaml ``ContentsPut``).
CONTENTS_PUT: Schema = {
    "type": "object",
    "properties": {
        "name": STRING,
        "path": STRING,
        "type": {"type": ("string", "null")},
        "format": {"type": ("string", "null")},
        "chunk": {"type": "integer"},
    },
    "check": _content_fits_type,
}
#: ``POST /api/contents/<path>``: new untitled or copy (api.yaml ``ContentsPost``).
CONTENTS_POST: Schema = {
    "type": ("object", "null"),
    "properties": {"copy_from": STRING, "ext": STRING, "type": OPT_STRING},
}
#: ``PATCH /api/contents/<path>``: rename (api.yaml ``ContentsPatch``).
CONTENTS_PATCH: Schema = {"type": "object", "properties": {"path": STRING}}
#: ``PUT``/``PATCH /api/config/<section>``: a config section is an object.
CONFIG_SECTION: Schema = {"type": "object"}

_KERNEL_REF: Schema = {
    "type": ("object", "null"),
    "properties": {"name": OPT_STRING, "id": OPT_STRING},
}
_SESSION_FIELDS: dict[str, Schema] = {
    "path": STRING,
    "name": OPT_STRING,
    "type": STRING,
    "kernel": _KERNEL_REF,
    "notebook": {"type": "object", "properties": {"path": STRING, "name": STRING}},
}
#: ``POST /api/sessions`` (api.yaml ``Session``).
SESSION_POST: Schema = {"type": "object", "properties": _SESSION_FIELDS}
#: ``PATCH /api/sessions/<id>``.
SESSION_PATCH: Schema = {"type": "object", "properties": _SESSION_FIELDS}
#: ``POST /api/kernels``: start a kernel (api.yaml: ``name``, ``path``).
KERNEL_POST: Schema = {
    "type": ("object", "null"),
    "properties": {"name": STRING, "path": OPT_STRING, "kernel_id": OPT_STRING},
}
#: ``PATCH /api/me``: the updatable identity fields.
IDENTITY_PATCH: Schema = {
    "type": "object",
    "properties": {
        name: OPT_STRING for name in ("name", "display_name", "initials", "avatar_url", "color")
    },
}
#: ``POST /nbconvert/<format>``: a notebook to convert.
NBCONVERT_POST: Schema = {
    "type": "object",
    "required": ("content",),
    "properties": {"name": STRING, "content": NOTEBOOK},
}
#: ``PUT /lab/api/workspaces/<name>`` (jupyterlab_server): ``data`` and ``metadata.id``.
WORKSPACE_PUT: Schema = {
    "type": "object",
    "required": ("data", "metadata"),
    "properties": {
        "data": {"type": "object"},
        "metadata": {"type": "object", "required": ("id",), "properties": {"id": STRING}},
    },
}


@dataclass(frozen=True)
class BodyRule:
    schema: Schema
    optional: bool = False  # an empty body is allowed (the handler has a default)
    merges_config: bool = False  # merged into a stored config section (see merge_conflict)
    fits: Callable[[Any], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fits", compile_fits(self.schema))

    def problem(self, value: Any) -> str | None:
        """``check(self.schema, value)``: the compiled test first, the message only when
        there is one."""
        return None if self.fits(value) else check(self.schema, value)


def merge_conflict(current: Any, patch: Any) -> str | None:
    """jupyter_server merges a config ``PATCH`` with ``recursive_update``, which fails (500) when
    the patch has an object where the stored section has something else. The message names no
    client-chosen key (it ends up in the log line of the 400)."""
    if not isinstance(current, dict) or not isinstance(patch, dict):
        return None
    for key, value in patch.items():
        if not isinstance(value, dict):
            continue
        if key in current and not isinstance(current[key], dict):
            return (
                "the patch merges an object into a config value that is not an object; "
                "PUT the whole section instead"
            )
        problem = merge_conflict(current.get(key), value)
        if problem:
            return problem
    return None


#: ``(handler class, method) -> rule``; the class by ``module.qualname``, matched anywhere in the
#: handler's MRO, so a subclass (an extension's, or a wrapped one) is checked too.
RULES: dict[tuple[str, str], BodyRule] = {
    ("jupyter_server.services.contents.handlers.ContentsHandler", "PUT"): BodyRule(
        CONTENTS_PUT, optional=True
    ),
    ("jupyter_server.services.contents.handlers.ContentsHandler", "POST"): BodyRule(
        CONTENTS_POST, optional=True
    ),
    ("jupyter_server.services.contents.handlers.ContentsHandler", "PATCH"): BodyRule(
        CONTENTS_PATCH
    ),
    ("jupyter_server.services.config.handlers.ConfigHandler", "PUT"): BodyRule(CONFIG_SECTION),
    ("jupyter_server.services.config.handlers.ConfigHandler", "PATCH"): BodyRule(
        CONFIG_SECTION, merges_config=True
    ),
    ("jupyter_server.services.sessions.handlers.SessionRootHandler", "POST"): BodyRule(
        SESSION_POST
    ),
    ("jupyter_server.services.sessions.handlers.SessionHandler", "PATCH"): BodyRule(SESSION_PATCH),
    ("jupyter_server.services.kernels.handlers.MainKernelHandler", "POST"): BodyRule(
        KERNEL_POST, optional=True
    ),
    ("jupyter_server.services.api.handlers.IdentityHandler", "PATCH"): BodyRule(IDENTITY_PATCH),
    ("jupyter_server.nbconvert.handlers.NbconvertPostHandler", "POST"): BodyRule(NBCONVERT_POST),
    ("jupyterlab_server.workspaces_handler.WorkspacesHandler", "PUT"): BodyRule(WORKSPACE_PUT),
}

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
# A surrogate code point left in a parsed string (json.loads joins the valid pairs): one C-level
# search per string instead of a Python loop per character (emoji in a notebook's text make
# the escape above match, and the loop cost 17 ms on a 1 MiB notebook).
_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE_CHAR.search(value) is not None
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    return False


def rule_for(class_names: Iterable[str], method: str) -> BodyRule | None:
    for name in class_names:
        rule = RULES.get((name, method))
        if rule is not None:
            return rule
    return None


def parse_body(body: bytes) -> Any:
    """The body as the handlers read it (``get_json_body``: stripped of ASCII whitespace, then
    UTF-8 JSON). Call only on a body :func:`check_body` accepted and found non-empty."""
    return json.loads(body.strip().decode("utf-8"))


def check_body(rule: BodyRule, body: bytes) -> str | None:
    """``None`` if ``body`` fits ``rule``; otherwise the message of the 400."""
    return parse_and_check_body(rule, body)[0]


#: The second item of :func:`parse_and_check_body` when the body was empty or did not parse.
NOT_PARSED: Any = object()


def parse_and_check_body(rule: BodyRule, body: bytes) -> tuple[str | None, Any]:
    """:func:`check_body`, and the parsed body (:data:`NOT_PARSED` if it is empty or no JSON),
    so that the handler need not parse a 1 MiB notebook a second time."""
    raw = body.strip()
    if not raw:
        return (None if rule.optional else "a JSON body is required"), NOT_PARSED
    try:
        value = parse_body(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "the body is not valid JSON", NOT_PARSED
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        # "\ud800" parses to a string no file, log or kernel message can be written with
        return "the body has a string with an unpaired surrogate (\\ud800-\\udfff)", value
    return rule.problem(value), value
