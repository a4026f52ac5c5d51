"""Policy files -> a validated, layered :class:`~hardened_server.policy.model.Policy`.

Layers apply in order: the shipped default profile (which sets every key), then each ``--policy``
file. A later layer wins key by key (a CSP class wins directive by directive). A list written as a
list replaces the one before it; written as ``key = { extend = [...] }`` its items are appended
(duplicates dropped), so adding one ``routes.accept_undecorated`` entry keeps the shipped ones.
Either way :attr:`Policy.history` keeps what each layer did (``policy explain`` shows it),
including the items a replacement dropped. Unknown keys, wrong types and bad values are errors
that name the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hardened_server.policy import csp
from hardened_server.policy.decisions import ROUTE_CLASSES
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.model import MergeStep, Policy
from hardened_server.policy.schema import (
    FIELDS,
    SCHEMA,
    ItemError,
    Kind,
    Loosen,
    Schema,
    describe_allowed,
    validate_value,
)

DEFAULT_PROFILE = "default"
EXTENSIONS_DIR = "extensions"  # policies/extensions/<server extension>.toml
#: What an extension profile may set: which scopes its routes need and which of its handlers
#: were reviewed as authenticating in their own code. Nothing that loosens a protection.
PROFILE_KEYS: frozenset[str] = frozenset({"scopes.routes", "routes.accept_undecorated"})
DISABLED_PROFILES_KEY = "scopes.disabled_extension_profiles"


def profiles_dir() -> Path:
    """Where the shipped profiles are: inside the installed package (the wheel copies
    ``policies/`` to ``hardened_server/_profiles``), else the source checkout's ``policies/``."""
    here = Path(__file__).resolve().parent.parent
    installed = here / "_profiles"
    if installed.is_dir():
        return installed
    return here.parent / "policies"


def shipped_profiles() -> dict[str, Path]:
    return {p.stem: p for p in sorted(profiles_dir().glob("*.toml"))}


def resolve_policy_path(name: str | os.PathLike[str]) -> Path:
    """A file path, or the bare name of a shipped profile (``behind-proxy``)."""
    path = Path(name)
    if path.exists() or os.sep in str(name) or str(name).endswith(".toml"):
        return path
    profiles = shipped_profiles()
    if str(name) in profiles:
        return profiles[str(name)]
    return path


@dataclass(frozen=True)
class Layer:
    source: str  # what provenance will say: the file path as given
    values: Mapping[str, Any]  # flat "section.key" -> validated value
    profile: str | None = None  # the server extension, for a shipped extension profile


def extension_profiles() -> dict[str, Path]:
    """The shipped extension profiles: server extension module name -> file."""
    return {p.stem: p for p in sorted((profiles_dir() / EXTENSIONS_DIR).glob("*.toml"))}


def profile_source(name: str, path: Path) -> str:
    """What provenance says for a key an extension profile set."""
    return f"{path} (extension profile for {name})"


def read_extension_profile(name: str) -> Layer:
    """The shipped profile of server extension ``name``: a policy layer that may set only
    :data:`PROFILE_KEYS` (a profile that tries anything else is a packaging bug; refused)."""
    path = extension_profiles()[name]
    layer = read_layer(path)
    source = profile_source(name, path)
    for key in layer.values:
        if key not in PROFILE_KEYS:
            raise PolicyError(
                source,
                key,
                "an extension profile may only say what routes need",
                allowed=", ".join(sorted(PROFILE_KEYS)),
                fix="remove the key from the profile",
            )
    return Layer(source, layer.values, profile=name)


#: The one key of the table that extends a list instead of replacing it.
EXTEND = "extend"


@dataclass(frozen=True, slots=True)
class Extend:
    """``key = { extend = [...] }`` in a layer: items appended to the list the layers before it
    set (an item already there is not added twice)."""

    items: tuple[Any, ...]


def parse_layer(source: str, document: Mapping[str, Any], *, schema: Schema = SCHEMA) -> Layer:
    """Validate one parsed TOML document (pure: used by the loader and by the properties)."""
    flat: dict[str, Any] = {}
    fields, tables = schema.fields, schema.tables

    def walk(prefix: str, table: Mapping[str, Any]) -> None:
        for name, value in table.items():
            key = f"{prefix}.{name}" if prefix else name
            if not name or "." in name:
                # A quoted "cors.allow_origins" key would give one file two values for one key
                # (the [cors] table's and this one), and either could win: refuse it.
                raise PolicyError(
                    source,
                    key,
                    "a key name cannot be empty or contain '.'",
                    value=value,
                    fix="write nested keys as [table] headers or bare (unquoted) dotted keys",
                )
            if key in fields:
                field = fields[key]
                if field.kind == Kind.LIST and isinstance(value, Mapping):
                    flat[key] = _extend(source, key, field, value)
                    continue
                try:
                    flat[key] = validate_value(field, value)
                except ItemError as exc:
                    raise PolicyError(
                        source,
                        key,
                        str(exc),
                        value=value,
                        allowed=describe_allowed(field),
                        fix=f"set {key} to {describe_allowed(field) or 'a valid value'}",
                    ) from None
            elif key in tables:
                if not isinstance(value, Mapping):
                    raise PolicyError(
                        source,
                        key,
                        "is a table, not a value",
                        value=value,
                        allowed=f"keys under [{key}]",
                        fix=f"write it as a [{key}] table",
                    )
                walk(key, value)
            else:
                known = (
                    [k for k in (*fields, *tables) if k.startswith(prefix)] if prefix else tables
                )
                suggestion = difflib.get_close_matches(key, list(known), n=1)
                siblings = sorted(
                    k[len(prefix) + 1 :].split(".")[0] if prefix else k.split(".")[0]
                    for k in (*fields, *tables)
                    if (k.startswith(prefix + ".") if prefix else True)
                )
                raise PolicyError(
                    source,
                    key,
                    "unknown key",
                    value=value,
                    allowed=", ".join(dict.fromkeys(siblings)),
                    fix=(f"did you mean {suggestion[0]}?" if suggestion else "remove it"),
                )

    if not isinstance(document, Mapping):
        raise PolicyError(source, "", "a policy file is a TOML document of tables")
    walk("", document)
    return Layer(source, MappingProxyType(flat))


def _extend(source: str, key: str, field: Any, table: Mapping[str, Any]) -> Extend:
    """``key = { extend = [...] }``: exactly one key, ``extend``, holding a valid list."""
    syntax = f"{key} = [...] replaces the list; {key} = {{ {EXTEND} = [...] }} adds to it"
    if set(table) != {EXTEND}:
        raise PolicyError(
            source,
            key,
            f"a list key takes a list, or a table with the one key '{EXTEND}'",
            value=dict(table),
            allowed=describe_allowed(field),
            fix=syntax,
        )
    try:
        return Extend(validate_value(field, table[EXTEND]))
    except ItemError as exc:
        raise PolicyError(
            source,
            key,
            f"{EXTEND}: {exc}",
            value=table[EXTEND],
            allowed=describe_allowed(field),
            fix=syntax,
        ) from None


def layer_from_bytes(source: str, data: bytes, *, schema: Schema = SCHEMA) -> Layer:
    """Parse and validate the bytes of one policy file (pure: what :func:`read_layer` does once
    the file is read; the fuzz harness drives it directly). Raises :class:`PolicyError` only."""
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyError(source, "", "is not UTF-8 text", fix="save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, "", f"is not valid TOML ({exc})", fix="fix the syntax") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: "a = [[[[...": found by
        # fuzz/fuzz_loader.py, it escaped as a RecursionError instead of naming the file.
        raise PolicyError(
            source,
            "",
            "is nested too deeply to be a policy file",
            fix="policy values are flat lists of strings; remove the nesting",
        ) from None
    return parse_layer(source, document, schema=schema)


#: ``verifier(source, path, data)`` checks a policy file's bytes before they are parsed (a
#: detached signature, :class:`hardened_server.policy.signing.PolicyVerifier`); it raises
#: ``PolicyError`` to refuse the file.
Verifier = Callable[[str, Path, bytes], object]


def is_shipped_profile(path: Path) -> bool:
    """A profile inside the installed package (named on the command line by its bare name):
    as trusted as the code that reads it, so never asked for a signature."""
    try:
        return path.resolve().parent == profiles_dir().resolve()
    except OSError:
        return False


def read_layer(
    path: str | os.PathLike[str], *, verifier: Verifier | None = None, schema: Schema = SCHEMA
) -> Layer:
    """One policy file. The bytes are read once; ``verifier`` (if any) checks exactly those
    bytes, and exactly those bytes are parsed."""
    source = os.fspath(path)
    resolved = resolve_policy_path(path)
    try:
        with open(resolved, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise PolicyError(
            source, "", "file not found", fix="check the path given to --policy"
        ) from None
    except OSError as exc:
        raise PolicyError(source, "", f"cannot be read ({exc.strerror})") from None
    if verifier is not None and not is_shipped_profile(resolved):
        verifier(source, resolved, data)
    return layer_from_bytes(source, data, schema=schema)


def default_layer(*, schema: Schema = SCHEMA) -> Layer:
    path = profiles_dir() / f"{DEFAULT_PROFILE}.toml"
    return read_layer(path, schema=schema)


def _canonical(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    return value


def fingerprint_of(values: Mapping[str, Any]) -> str:
    blob = json.dumps(_canonical(dict(values)), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def build_policy(
    layers: Sequence[Layer], *, enforce_floors: bool = True, schema: Schema = SCHEMA
) -> Policy:
    """Merge layers key by key (later wins) and build the frozen model. The first layer must
    set every non-CSP key (the shipped default does; a test keeps it so)."""
    values: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    # Extension profiles add entries under whatever the files set (a --policy file that maps
    # one route of its own must not unmap every profiled route): kept apart, merged below.
    profiled: dict[str, dict[str, tuple[Any, str]]] = {key: {} for key in PROFILE_KEYS}
    history: dict[str, list[MergeStep]] = {}
    for layer in layers:
        if layer.profile is not None:
            for key, value in layer.values.items():
                entries = value.items() if isinstance(value, Mapping) else ((v, v) for v in value)
                for entry, item in entries:
                    profiled[key][entry] = (item, layer.source)
            continue
        for key, value in layer.values.items():
            before = values.get(key, ())
            if isinstance(value, Extend):
                added = tuple(item for item in value.items if item not in before)
                values[key] = (*before, *added)
                step = MergeStep(layer.source, "extend", added)
            else:
                dropped: tuple[Any, ...] = ()
                if isinstance(before, tuple) and isinstance(value, tuple):
                    dropped = tuple(item for item in before if item not in value)
                values[key] = value
                step = MergeStep(layer.source, "set", value, dropped)
            history.setdefault(key, []).append(step)
            provenance[key] = layer.source
    sources = tuple(layer.source for layer in layers if layer.profile is None)
    profiles = tuple(layer.profile for layer in layers if layer.profile is not None)
    entry_provenance = _merge_profiled(values, profiled)
    missing = [k for k, f in schema.fields.items() if f.kind != Kind.DIRECTIVE and k not in values]
    if missing:
        raise PolicyError(
            sources[0] if sources else "<no policy>",
            missing[0],
            "is not set by any layer",
            fix="the first layer must be a complete profile (start from policies/default.toml)",
        )
    # A directive set to false (None) is recorded (for provenance) but absent from the CSP.
    csp_classes: dict[str, csp.Directives] = {}
    for rc in ROUTE_CLASSES:
        directives = {
            key.rsplit(".", 1)[1]: value
            for key, value in values.items()
            if key.startswith(f"csp.{rc}.") and value is not None
        }
        try:
            csp_classes[rc] = csp.make_policy(directives)
            floor = csp.floor_problems(rc, csp_classes[rc])
        except csp.CSPError as exc:  # pragma: no cover - each value was validated alone
            where = provenance.get(f"csp.{rc}", sources[-1])
            raise PolicyError(where, f"csp.{rc}", str(exc)) from None
        if floor and enforce_floors:
            # Name first a directive the newest layer set: that is the line to fix.
            floor.sort(key=lambda p: provenance.get(f"csp.{rc}.{p[0]}") != sources[-1])
            directive, problem = floor[0]
            key = f"csp.{rc}.{directive}"
            raise PolicyError(
                provenance.get(key, sources[-1]),
                key,
                f"below the floor of the '{rc}' route class: {directive} {problem}",
                value=csp.serialize(csp_classes[rc]),
                fix=f"tighten csp.{rc}.{directive}; this class may be loosened only down to "
                "its floor (SECURITY.md, CSP per route class)",
            )

    policy = Policy(
        **schema.build_sections(values),
        csp=MappingProxyType(csp_classes),
        values=MappingProxyType(values),
        provenance=MappingProxyType(provenance),
        sources=sources,
        fingerprint=fingerprint_of(values),
        profiles=profiles,
        entry_provenance=MappingProxyType(entry_provenance),
        history=MappingProxyType({k: tuple(v) for k, v in history.items()}),
    )
    return policy


def _merge_profiled(
    values: dict[str, Any], profiled: Mapping[str, Mapping[str, tuple[Any, str]]]
) -> dict[str, str]:
    """Put the extension profiles' entries under the files' values (a file's entry for the same
    pattern wins); return where each surviving profile entry came from."""
    where: dict[str, str] = {}
    routes = profiled.get("scopes.routes", {})
    if routes:
        mine = dict(values.get("scopes.routes") or {})
        merged = {pattern: item for pattern, (item, _src) in routes.items()}
        merged.update(mine)
        values["scopes.routes"] = merged
        where.update(
            {f"scopes.routes {p}": src for p, (_i, src) in routes.items() if p not in mine}
        )
    accepted = profiled.get("routes.accept_undecorated", {})
    if accepted:
        mine_list = tuple(values.get("routes.accept_undecorated") or ())
        values["routes.accept_undecorated"] = tuple(dict.fromkeys((*mine_list, *accepted)))
        where.update(
            {
                f"routes.accept_undecorated {p}": src
                for p, (_i, src) in accepted.items()
                if p not in mine_list
            }
        )
    return where


@functools.cache
def baseline_policy(profiles: tuple[str, ...] = ()) -> Policy:
    """What a policy is compared with to tell a loosening: the shipped default profile plus the
    shipped extension profiles it applied (a reviewed profile declares what routes need; it is
    not a loosening, and neither is what it contains)."""
    if not profiles:
        return shipped_policy()
    return build_policy([default_layer(), *(read_extension_profile(n) for n in profiles)])


@functools.cache
def shipped_policy() -> Policy:
    """The shipped default profile as a policy: what code that needs a default value with no
    policy at hand reads (``shipped_policy().sessions.idle_minutes``), so that a default number
    lives in ``policies/default.toml`` only. Built once per process (frozen, shared)."""
    return build_policy([default_layer()])


def load_policy(
    paths: Iterable[str | os.PathLike[str]] = (),
    *,
    enforce_floors: bool = True,
    verifier: Verifier | None = None,
    extensions: Iterable[str] = (),
) -> Policy:
    """The shipped default profile, the shipped extension profiles of ``extensions`` (the
    server extensions installed and enabled, found by the caller), then each file in order.
    ``enforce_floors=False`` is for the audit only: it builds a policy the server would
    refuse, so that every way it falls below a route class's CSP floor can be reported, not
    just the first. ``verifier`` checks every file's signature (the shipped profiles are part
    of the package and exempt)."""
    default = default_layer()
    user = [read_layer(p, verifier=verifier) for p in paths]
    profiles = [read_extension_profile(n) for n in profile_names(default, user, extensions)]
    return build_policy([default, *profiles, *user], enforce_floors=enforce_floors)


def profile_names(default: Layer, user: Sequence[Layer], extensions: Iterable[str]) -> list[str]:
    """The shipped extension profiles to apply: one per installed and enabled server extension
    (``extensions``, found by the caller) that has one, minus those the last file that sets
    ``scopes.disabled_extension_profiles`` lists. A name there with no shipped profile is an
    error (a typo would otherwise leave a profile on that the operator meant to switch off)."""
    shipped = extension_profiles()
    disabled: tuple[str, ...] = default.values.get(DISABLED_PROFILES_KEY, ())
    source = default.source
    for layer in user:
        if DISABLED_PROFILES_KEY in layer.values:
            disabled, source = layer.values[DISABLED_PROFILES_KEY], layer.source
    for name in disabled:
        if name not in shipped:
            raise PolicyError(
                source,
                DISABLED_PROFILES_KEY,
                f"no shipped extension profile for {name!r}",
                value=list(disabled),
                allowed=", ".join(shipped) or "(none shipped)",
                fix="list only extensions that `hardened-server policy show` names as profiled",
            )
    return sorted({n for n in extensions if n in shipped and n not in disabled})


# ---------------------------------------------------------------------------------------------
# Loosening: how an effective value compares with the shipped default.


def loosens(key: str, value: Any, default: Any) -> bool:
    """True if ``value`` is looser than the shipped ``default`` for ``key`` (or, for keys with
    no order, merely different: those are reported as changes to review)."""
    if value == default:
        return False
    rule = FIELDS[key].loosen
    if rule == Loosen.IF_TRUE:
        return bool(value)
    if rule == Loosen.IF_FALSE:
        return not value
    if rule == Loosen.IF_GROWS:
        return bool(set(value or ()) - set(default or ()))
    if rule == Loosen.IF_SHRINKS:
        return bool(set(default or ()) - set(value or ()))
    if rule == Loosen.IF_HIGHER:
        higher: bool = value > default
        return higher
    if rule == Loosen.IF_LOWER:
        lower: bool = value < default
        return lower
    if rule == Loosen.NEVER:
        return False
    if rule == Loosen.IF_UNSCOPED:
        # Every added or changed entry opens a route the default refuses (or changes what one
        # needs): always shown; loosening_verb tells a review from a loosening.
        return True
    return True


def unscoped_entries(value: Any) -> list[str]:
    """``PATTERN METHOD`` of every scopes.routes entry that needs no scope at all."""
    return [
        f"{pattern} {method}"
        for pattern, methods in (value or {}).items()
        for method, scopes in methods.items()
        if not scopes
    ]


def loosening_verb(key: str, value: Any, default: Any) -> str:
    """How ``policy explain`` and ``policy show`` label a key: "" (as shipped, or tighter),
    "LOOSENED", or "CHANGED (review: may loosen)" for keys with no order."""
    if not loosens(key, value, default):
        return ""
    rule = FIELDS[key].loosen
    if rule == Loosen.IF_UNSCOPED:
        added = {p: m for p, m in (value or {}).items() if (default or {}).get(p) != m}
        if unscoped_entries(added):
            return "LOOSENED"
        return "CHANGED (review: may loosen)"
    if rule == Loosen.IF_CHANGED:
        return "CHANGED (review: may loosen)"
    return "LOOSENED"


def loosenings(policy: Policy) -> list[tuple[str, Any, Any, str]]:
    """Every key whose effective value loosens (or changes) the shipped default (with the
    extension profiles the policy applied): ``(key, value, default, source)``."""
    default = baseline_policy(policy.profiles)
    out = []
    for key in sorted(set(policy.values) | set(default.values)):
        value = policy.values.get(key)
        base = default.values.get(key)
        if loosens(key, value, base):
            out.append((key, value, base, policy.provenance.get(key, "")))
    return out
