"""Which paths below the served root may be read, listed, written, renamed or served.

One decision, called from every entry point (contents API, ``/files``, ``/view``, nbconvert,
``resolvePath``, checkpoints, trust, static serving), instead of stock jupyter_server's scattered
checks. Stock jupyter_server's ``is_hidden`` looks at names only and never resolves symlinks, so an
innocently named link into ``.ssh`` is served and written through; several async contents
operations (new untitled file, checkpoints, trust) and ``/view`` and ``/api/resolvePath`` skip the
check entirely (GHSA-q874-g24w-4q9g: hidden files unlisted but reachable).

The module is PURE: no tornado, and the only I/O (symlink resolution) is injected as the
``resolve`` callable of :meth:`PathPolicy.decide` (``os.path.realpath`` by default), so Hypothesis
and atheris can drive it with a fake file system at full speed.

How a path is decided
=====================

1. :func:`canonicalize` turns the API path into a canonical relative path (``"a/b.ipynb"``, ``""``
   for the root), or refuses it with a :class:`~hardened_server.policy.decisions.Decision`.

   * ``decoded=False``: the path is still percent-encoded as it arrived in the URL; it is decoded
     **exactly once**, strictly (invalid escapes such as ``%zz`` or a truncated ``%4`` and bytes
     that are not UTF-8, ``%ff%fe`` or the overlong ``%c0%ae``, are refused). ``%252e`` decodes to
     the literal name ``%2e``: an odd but harmless name, never a dot.
   * ``decoded=True``: the path was already decoded (tornado's path arguments, JSON bodies such as
     ``copy_from`` or the ``path`` of a rename); ``%`` is then an ordinary character.

   Empty and ``.`` segments collapse. Every ``..`` is refused, even one that would stay inside the
   root (``a/../b``): resolving it buys nothing for a legitimate client and every resolver we do
   not write ourselves is a chance to disagree (CVE-2026-35397). See :func:`canonicalize` for the
   full list of refusals (NUL and control characters, backslashes, drive letters, UNC, Windows
   aliases, Unicode look-alikes, overlong paths and names).

   Unicode look-alikes: names are *not* required to be NFKC-stable (fullwidth letters and digits
   are common in CJK file names). Instead every check that matters is run on the NFKC form too:
   a segment whose NFKC form is a dot segment, ends with a dot or space, looks like a drive or
   contains a separator (``\u2024\u2024``, ``\uff0e``, ``\u2100`` = ``a/c``) is refused; one
   whose NFKC form starts with ``.`` is hidden; deny globs match the NFKC form. Slash look-alikes
   that NFKC leaves alone (U+2044, U+2215, U+29F8 ...) are refused outright.

2. The rules run on the canonical path and again on the symlink-resolved path (relative to the
   resolved root); both must stay inside the root. Containment compares path *components*, never
   string prefixes: ``/srv/rootsecret`` is not inside ``/srv/root`` (CVE-2026-35397).

   * ``paths.deny`` globs hold **always**: with ``allow_hidden = true`` and even when an
     ``paths.allow`` glob matches. A deny glob also covers everything below what it matches, and a
     trailing ``/**`` covers the directory itself (denying ``.ssh/**`` refuses listing ``.ssh``).
     Deny globs are matched case-insensitively and also against the NFKC form of the path, so that
     ``.SSH`` on a case-insensitive file system and ``\\uff0essh`` do not slip past.
   * A component whose name, or whose NFKC form, starts with ``.`` is hidden; hidden paths are
     refused unless ``paths.allow_hidden`` is true or an ``paths.allow`` glob matches the path.

Globs (``paths.deny``, ``paths.allow``) are relative to the root with ``/`` separators: ``*`` and
``?`` stay within one segment, a ``**`` segment spans any number of segments (zero included).
Everything else, ``[`` included, is literal. A deny glob matches a path or any of its ancestors;
an allow glob matches the path itself, and a trailing ``/**`` also matches the directory.

Entry points: ``PathPolicy.from_paths_policy(policy.paths).decide(path, op, root=root,
resolve=os.path.realpath, decoded=True) -> PathDecision``; :func:`canonicalize` and
:func:`is_within` on their own.

Rule ids (stable; audit records and ``policy explain`` refer to them):

* ``HS-PATH-001`` allowed
* ``HS-PATH-002`` hidden component (apparent path)
* ``HS-PATH-003`` matches a ``paths.deny`` glob (apparent path)
* ``HS-PATH-004`` not strictly inside the root: a ``..`` that would leave it, or overwriting,
  deleting, renaming, checkpointing or trusting the root itself
* ``HS-PATH-005`` malformed: NUL/control/bidi characters, backslash, drive letter, UNC, invalid
  escape or UTF-8, ``..`` inside the root, Windows aliases, look-alikes, overlong
* ``HS-PATH-006`` the symlink-resolved path leaves the root, is hidden or denied, or cannot be
  resolved

What this module cannot see: hard links, Windows 8.3 short names and NTFS case aliases are only
caught on the resolved form (``os.path.realpath`` on Windows returns the long, on-disk name); the
``UF_HIDDEN``/``FILE_ATTRIBUTE_HIDDEN`` attributes and a symlink swapped between this decision and
the ``open`` (TOCTOU) are the enforcement layer's to handle, e.g. by opening what ``resolved``
names, with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import unquote

from hardened_server.policy.decisions import Decision, allow, deny
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.model import PathsPolicy
from hardened_server.policy.rules import Rule

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_CHARS",
    "MAX_SEGMENTS",
    "PATH_RULES",
    "ROOT_IMMUTABLE_OPS",
    "SERVER_FILE_RULES",
    "WRITE_OPS",
    "PathDecision",
    "PathOp",
    "PathPolicy",
    "ServerFile",
    "ServerFileRule",
    "canonicalize",
    "glob_to_regex",
    "is_hidden_name",
    "is_within",
    "path_below_root",
    "served_file_problem",
    "served_relative_path",
]

# --- rule ids -------------------------------------------------------------------------------------
# Declared in policy/rules.py with their meaning; these are the ids a path decision can carry
# (HS-PATH-007, a malformed raw request target, is the gate's).

PATH_RULES: Mapping[str, str] = {
    rule: rule.meaning
    for rule in (
        Rule.PATH_ALLOWED,
        Rule.PATH_HIDDEN,
        Rule.PATH_DENIED,
        Rule.PATH_PROTECTED,
        Rule.PATH_ESCAPES_ROOT,
        Rule.PATH_MALFORMED,
        Rule.PATH_SYMLINK,
    )
}

# --- limits ---------------------------------------------------------------------------------------

MAX_PATH_CHARS = 4096  # PATH_MAX on Linux; longer requests are attacks or bugs
MAX_NAME_BYTES = 255  # NAME_MAX (bytes, UTF-8) on every common file system
MAX_SEGMENTS = 256  # bounds the per-request work, whatever the path looks like
# Cheap bound before decoding: a 4096-character path is at most 12 escaped bytes per character.
_MAX_RAW_CHARS = MAX_PATH_CHARS * 12


class PathOp(StrEnum):
    """What the caller is about to do with the path (one per contents/files entry point)."""

    READ = "read"  # GET /api/contents/<file>, /files/<p>
    LIST = "list"  # GET /api/contents/<dir>
    WRITE = "write"  # PUT /api/contents/<p> (save, overwrite)
    CREATE = "create"  # POST /api/contents/<dir> (new untitled), PUT of a new file
    COPY_FROM = "copy-from"  # POST with copy_from: the source
    COPY_TO = "copy-to"  # POST with copy_from: the destination
    RENAME_FROM = "rename-from"  # PATCH /api/contents/<p>: the old path
    RENAME_TO = "rename-to"  # PATCH: the new path from the body
    DELETE = "delete"  # DELETE /api/contents/<p>
    CHECKPOINT = "checkpoint"  # /api/contents/<p>/checkpoints[/<id>]
    TRUST = "trust"  # POST /api/contents/<p>/trust
    CONVERT = "convert"  # /nbconvert/<format>/<p>
    VIEW = "view"  # /view/<p> (an existence oracle in stock jupyter_server)
    RESOLVE = "resolve"  # /api/resolvePath?path= (idem)
    SERVE_STATIC = "serve-static"  # static and kernelspec resource handlers


# Operations that change what lives at the path. Every path allowed for one of them is allowed
# for READ too (a property the tests pin): the rules are the same, only the root is special.
WRITE_OPS: frozenset[PathOp] = frozenset(
    {
        PathOp.WRITE,
        PathOp.CREATE,
        PathOp.COPY_TO,
        PathOp.RENAME_FROM,
        PathOp.RENAME_TO,
        PathOp.DELETE,
        PathOp.CHECKPOINT,
        PathOp.TRUST,
    }
)

# The root itself can be listed, read, created and copied into (CREATE and COPY_TO name the
# directory that receives a new file), never overwritten, deleted, renamed, checkpointed or
# trusted: jupyter_server's DELETE of "" would remove the served directory.
ROOT_IMMUTABLE_OPS: frozenset[PathOp] = frozenset(
    {
        PathOp.WRITE,
        PathOp.DELETE,
        PathOp.RENAME_FROM,
        PathOp.RENAME_TO,
        PathOp.CHECKPOINT,
        PathOp.TRUST,
    }
)

# --- character classes ----------------------------------------------------------------------------

# Refused anywhere in the decoded path (the reason text comes from _forbidden_reason):
#   C0/C1 controls and DEL: NUL truncates in C and vanishes in posixpath.normpath("a/\x00/../b"),
#     os.path.realpath raises ValueError on it (a 500 in jupyter_server 2.21.1); CR/LF forge logs.
#   U+2028/2029 line separators: log forging.
#   Bidi controls (U+061C, U+200E/F, U+202A-E, U+2066-9): a name that displays as "txt.exe" is
#     "exe.txt" (Trojan Source); U+FEFF is invisible.
#   Surrogates: not encodable as UTF-8, so not a real file name (surrogateescape'd bytes).
#   Backslash and its look-alikes: a separator on Windows (ntpath.normpath("a/..\\b") == "b") and
#     for browsers in special URLs.
#   Slash look-alikes without an NFKC mapping (U+2044, U+2215, U+29F8 ...): a later layer that
#     "helpfully" maps them, or a human reading the log, sees a different path.
_FORBIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\\\\\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ufeff\ud800-\udfff\u2044\u2215\u2216\u29f5\u29f8\u29f9\ufe68\uff0f\uff3c]"
)
_SLASH_LOOKALIKES = frozenset("\u2044\u2215\u2216\u29f5\u29f8\u29f9\ufe68\uff0f\uff3c")
_BIDI_AND_INVISIBLE = frozenset(
    "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
# A '%' not followed by two hex digits: "%zz", a truncated "%4", a lone "%". urllib's unquote
# leaves these as they are, so a second decoder elsewhere could read them differently.
_BAD_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")
_SURROGATE = re.compile("[\ud800-\udfff]")
# "C:", "c:x": a drive-relative path on Windows; ntpath.join("C:\\root", "D:evil") == "D:evil".
_DRIVE = re.compile("[A-Za-z]:")
# One scan of the whole canonical path (and of its NFKC form) for the segment-level refusals, so
# that the common, clean path costs a few C-level regex searches rather than a Python loop per
# segment; _segment_problem then names the reason (slow path, refusals only):
#   a segment starting with a drive letter, NTFS stream syntax ("::", ":$") anywhere, a segment
#   ending with "." or " " (also every all-dots segment, e.g. the NFKC form of "\u2024\u2024").
_SUSPECT_SEGMENT = re.compile(r"(?:\A|/)[A-Za-z]:|::|:\$|[. ](?:/|\Z)")
_HIDDEN_COMPONENT = re.compile(r"(?:\A|/)\.")
_SKIP_SEGMENTS = frozenset({"", "."})


def _forbidden_reason(ch: str) -> str:
    if ch == "\x00":
        return "NUL byte in path"
    if ch == "\\":
        return "backslash in path (a separator on Windows and in browsers)"
    if ch in _SLASH_LOOKALIKES:
        return "Unicode look-alike of '/' or '\\' in path"
    if "\ud800" <= ch <= "\udfff":
        return "path is not valid UTF-8 (lone surrogate)"
    if ch in _BIDI_AND_INVISIBLE:
        return "bidirectional or invisible control character in path"
    return "control character in path"


def _malformed(reason: str) -> Decision:
    return deny(Rule.PATH_MALFORMED, reason)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def is_hidden_name(name: str) -> bool:
    """True for a name that is hidden by convention: it, or its NFKC form, starts with ``.``.

    The NFKC form counts because ``\\uff0essh`` (FULLWIDTH FULL STOP) and ``\\u2024ssh`` (ONE DOT
    LEADER) become ``.ssh`` for any layer that normalises (macOS file name APIs, some frameworks).
    """
    if name.startswith("."):
        return True
    return not name.isascii() and _nfkc(name).startswith(".")


def _has_hidden_component(path: str) -> bool:
    """:func:`is_hidden_name` for any ``/``-separated component of ``path``, in one scan."""
    if _HIDDEN_COMPONENT.search(path):
        return True
    return not path.isascii() and _HIDDEN_COMPONENT.search(_nfkc(path)) is not None


def _segment_problem(seg: str) -> str | None:
    """Why one (non-empty, not ``.``/``..``) segment is refused, or ``None``.

    Checked on the segment and, for non-ASCII segments, on its NFKC form too, so that look-alikes
    (``\\u2025`` TWO DOT LEADER is ``..``, ``\\uff23\\uff1a`` is ``C:``, ``\\u2100`` is ``a/c``) are
    judged by what a normalising layer would see.
    """
    forms = (seg,) if seg.isascii() else (seg, _nfkc(seg))
    for form in forms:
        if form.strip(".") == "":
            # "...", or the NFKC form of "\u2024\u2024" / "\uff0e": a dot segment in disguise.
            return "a path component is a dot segment in disguise (look-alike or '...')"
        if "/" in form or "\\" in form:
            return "a path component contains a look-alike of '/' or '\\'"
        if form is not seg and _FORBIDDEN.search(form):
            return "a path component normalises (NFKC) to a forbidden character"
        if form[-1] in ". ":
            # Win32 strips a trailing dot or space at open time: "secret." opens "secret", which
            # a deny glob for "secret" never sees.
            return "a path component ends with a dot or a space (a Windows alias)"
        if _DRIVE.match(form):
            # "C:", "c:x": drive-relative on Windows (CVE-2024-35178 is the UNC sibling).
            return "a path component looks like a Windows drive letter"
        if "::" in form or ":$" in form:
            # NTFS stream syntax: "key.pem::$DATA" reads key.pem past a "*.pem" glob;
            # "dir:$I30:$INDEX_ALLOCATION" opens a directory under another name.
            return "a path component uses NTFS alternate-stream syntax"
    return None


def _first_segment_problem(segments: list[str]) -> str:
    for seg in segments:
        problem = _segment_problem(seg)
        if problem is not None:
            return problem
    return "a path component is ambiguous"  # pragma: no cover - the scan and the loop agree


def _dotdot_refusal(segments: list[str]) -> Decision:
    """``HS-PATH-004`` if the ``..`` segments climb above the root, else ``HS-PATH-005``."""
    depth = 0
    for seg in segments:
        depth += -1 if seg == ".." else 1
        if depth < 0:
            # "../x", "a/../../x", "../rootsecret/x" (CVE-2026-35397's sibling prefix).
            return deny(Rule.PATH_ESCAPES_ROOT, "'..' leaves the served root")
    return _malformed("'..' segments are refused, even inside the root")


def canonicalize(raw: str, *, decoded: bool) -> str | Decision:
    """The canonical relative API path for ``raw``, or a deny decision: see
    :func:`_canonicalize`. Pure, so answered from a bounded cache keyed on the whole input
    (exact ``str`` values up to :data:`_CACHEABLE_PATH_CHARS` characters): a listing and the
    requests that follow it ask about the same few hundred paths."""
    if type(raw) is str and len(raw) <= _CACHEABLE_PATH_CHARS:
        return _canonicalize_cached(raw, bool(decoded))
    return _canonicalize(raw, decoded=decoded)


_CACHEABLE_PATH_CHARS = 512
_CACHE_SIZE = 4096


def _canonicalize(raw: str, *, decoded: bool) -> str | Decision:
    """The canonical relative API path for ``raw``, or a deny :class:`Decision` saying why not.

    ``decoded=False``: ``raw`` is percent-encoded as it arrived in the URL and is decoded exactly
    once here. ``decoded=True``: ``raw`` is already decoded and ``%`` is an ordinary character.
    Never call this twice on the same string with ``decoded=False``: decoding twice is the
    double-encoding bug class (``%252e%252e`` → ``%2e%2e`` → ``..``).

    The result has no leading or trailing ``/``, no empty, ``.`` or ``..`` segments, and ``""``
    names the root. ``canonicalize(c, decoded=True) == c`` for every result ``c`` (idempotent).

    Refused (``HS-PATH-005`` unless said otherwise):

    * more than :data:`MAX_PATH_CHARS` characters, more than :data:`MAX_SEGMENTS` segments or a
      name longer than :data:`MAX_NAME_BYTES` UTF-8 bytes (bounded work per request);
    * invalid escapes and decoded bytes that are not strict UTF-8 (``%c0%ae`` is an overlong
      ``.``);
    * NUL, C0/C1 controls, DEL, bidi controls, lone surrogates, ``\\`` and slash look-alikes
      (see ``_FORBIDDEN``);
    * a leading ``//`` — a UNC path ``//server/share`` on Windows, which leaks the NTLM hash of
      the server's account to ``server`` (CVE-2024-35178);
    * a drive letter (``C:``), NTFS stream syntax (``::$DATA``), a trailing dot or space;
    * a first segment starting with ``~`` (``expanduser`` in any later layer turns ``~root/``
      into another user's home);
    * ``..`` anywhere: ``HS-PATH-004`` if it would leave the root, ``HS-PATH-005`` otherwise;
    * a segment whose NFKC form is a dot segment (``\\u2024\\u2024``, ``\\uff0e\\uff0e``), ends
      with a dot or space, is a drive letter or contains a separator (``\\u2100`` is ``a/c``).
    """
    if len(raw) > _MAX_RAW_CHARS:
        return _malformed(f"path is longer than {MAX_PATH_CHARS} characters")
    if not decoded and "%" in raw:
        if _BAD_ESCAPE.search(raw):
            return _malformed("invalid percent-escape in path (e.g. '%zz' or a truncated '%4')")
        if _SURROGATE.search(raw):
            return _malformed("path is not valid UTF-8 (lone surrogate)")
        try:
            # Exactly one decode, strict: "%ff%fe" and the overlong "%c0%ae" raise here.
            raw = unquote(raw, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            return _malformed("percent-decoded path is not valid UTF-8")
    path = raw
    if len(path) > MAX_PATH_CHARS:
        return _malformed(f"path is longer than {MAX_PATH_CHARS} characters")
    bad = _FORBIDDEN.search(path)
    if bad:
        return _malformed(_forbidden_reason(bad.group()))
    if path.startswith("//"):
        return _malformed("UNC form '//server/share' (CVE-2024-35178)")
    parts = path.split("/")
    if len(parts) > MAX_SEGMENTS + 2:  # +2: a leading and a trailing '/' give empty parts
        return _malformed(f"path has more than {MAX_SEGMENTS} segments")
    # "a//b", "./a", "a/.": empty and "." segments collapse (the filter only runs when needed).
    if "" in parts or "." in parts:
        segments = [seg for seg in parts if seg not in _SKIP_SEGMENTS]
    else:
        segments = parts
    if ".." in segments:
        return _dotdot_refusal(segments)
    if len(segments) > MAX_SEGMENTS:
        return _malformed(f"path has more than {MAX_SEGMENTS} segments")
    canonical = "/".join(segments)
    if not canonical:
        return canonical
    if max(map(len, canonical.encode("utf-8").split(b"/"))) > MAX_NAME_BYTES:
        return _malformed(f"a path component is longer than {MAX_NAME_BYTES} bytes")
    if _SUSPECT_SEGMENT.search(canonical):
        return _malformed(_first_segment_problem(segments))
    if not canonical.isascii():
        # Judge look-alikes by what a normalising layer would see: "\uff0e\uff0e" is "..",
        # "\uff23\uff1a" is "C:", "\u2100" is "a/c".
        folded = _nfkc(canonical)
        if folded != canonical and (
            folded.count("/") != canonical.count("/")
            or _FORBIDDEN.search(folded)
            or _SUSPECT_SEGMENT.search(folded)
        ):
            return _malformed(_first_segment_problem(segments))
    if canonical.startswith("~"):
        return _malformed("a path starting with '~' (home directory expansion)")
    return canonical


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _canonicalize_cached(raw: str, decoded: bool) -> str | Decision:
    return _canonicalize(raw, decoded=decoded)


# --- containment ----------------------------------------------------------------------------------


# Windows compares names case-insensitively (os.path.normcase lowers); POSIX compares bytes.
_CASE_FOLDING_OS = os.path.normcase("A") == "a"
_ALT_SEP = os.altsep is not None

_Split = tuple[str, tuple[str, ...]]  # (drive, components) of an absolute path


def _split_abs(path: str) -> _Split | None:
    """(drive, components) of a normalised absolute OS path as spelled, or ``None`` if the path
    is relative."""
    if not os.path.isabs(path):
        return None
    drive, rest = os.path.splitdrive(os.path.normpath(path))
    return drive, tuple(filter(None, rest.split(os.sep)))


# The resolved root is the same string on every decision of a server: split it once.
_split_root = functools.lru_cache(maxsize=64)(_split_abs)

_NOT_A_NAME = frozenset({"", ".", ".."})


def _split_below(root: str, root_split: _Split, path: str) -> _Split | None:
    """``_split_abs(path)``, given ``root_split == _split_abs(root)``.

    What a resolver returns for a path inside the root is usually the resolved root, a
    separator and plain names (``<root>/dir/file``): its components are then the root's and
    those names, and ``normpath`` (the bulk of :func:`_split_abs`) has nothing to do. Anything
    else (another prefix, an empty, ``.`` or ``..`` name, a drive, an OS with an alternative
    separator or case-folding names) is split by :func:`_split_abs` as before."""
    if _ALT_SEP or _CASE_FOLDING_OS:
        return _split_abs(path)
    prefix = root if root.endswith(os.sep) else root + os.sep
    if not path.startswith(prefix) or root_split[0]:
        return _split_abs(path)
    names = path[len(prefix) :].split(os.sep)
    if not _NOT_A_NAME.isdisjoint(names):
        return _split_abs(path)
    return root_split[0], root_split[1] + tuple(names)


def _contained(root: _Split, candidate: _Split) -> bool:
    """Whole components: same drive, and the root's components are a prefix of the candidate's
    (compared case-insensitively where the OS is)."""
    (root_drive, root_parts), (cand_drive, cand_parts) = root, candidate
    if _CASE_FOLDING_OS:
        root_drive, cand_drive = os.path.normcase(root_drive), os.path.normcase(cand_drive)
        root_parts = tuple(os.path.normcase(p) for p in root_parts)
        cand_parts = tuple(os.path.normcase(p) for p in cand_parts)
    n = len(root_parts)
    return root_drive == cand_drive and len(cand_parts) >= n and cand_parts[:n] == root_parts


def is_within(root: str, candidate: str) -> bool:
    """True if absolute ``candidate`` is ``root`` or below it, comparing whole path components.

    Never a string-prefix test: ``"/srv/rootsecret/x".startswith("/srv/root")`` is true, and that
    exact test let ``../rootsecret/x`` out of the root in jupyter_server <= 2.17.0
    (CVE-2026-35397). Both paths must be absolute; a relative one is never within.
    """
    root_split = _split_abs(root)
    cand_split = _split_abs(candidate)
    return root_split is not None and cand_split is not None and _contained(root_split, cand_split)


# --- globs ----------------------------------------------------------------------------------------


def _check_glob(glob: str) -> None:
    if not glob or glob.startswith("/") or "\\" in glob or "\x00" in glob:
        raise ValueError(f"path glob {glob!r}: relative to the root, with '/' separators")
    if ".." in glob.split("/"):
        raise ValueError(f"path glob {glob!r}: '..' has no meaning in a path rule")


def _glob_body(parts: list[str]) -> str:
    """Regex source for glob segments (no trailing ``**``): ``*``/``?`` within a segment, a
    ``**`` segment for zero or more whole segments, everything else literal."""
    out: list[str] = []
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if part == "**":
            out.append("(?:[^/]+/)*")  # zero or more whole segments, each followed by '/'
            continue
        out.append(
            "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        )
        if i != last:
            out.append("/")
    return "".join(out)


def _strip_tail(glob: str) -> tuple[list[str], bool]:
    """Glob segments without trailing ``**`` segments, and whether there were any."""
    _check_glob(glob)
    parts = [p for p in glob.split("/") if p]  # "a//b", "a/": empty segments carry nothing
    tail_any = False
    while parts and parts[-1] == "**":
        parts.pop()
        tail_any = True
    return parts, tail_any


def glob_to_regex(glob: str) -> str:
    """Regex source (for ``fullmatch``) of a root-relative glob; a trailing ``/**`` also matches
    the directory itself (``.ssh/**`` matches ``.ssh``, ``.ssh/id_rsa`` and deeper).

    ``*`` and ``?`` never cross ``/``; a ``**`` segment spans zero or more whole segments; every
    other character is literal.
    """
    parts, tail_any = _strip_tail(glob)
    if not parts:  # "**", "**/**": everything
        return ".*"
    return _glob_body(parts) + ("(?:/.*)?" if tail_any else "")


_SKIP_SEGMENTS_RE = "(?:[^/]+/)*?"  # a lazy skip of zero or more whole segments


def _deny_body(glob: str) -> tuple[bool, str]:
    """(floating, regex source) of a deny glob, to be used with ``match``.

    The source matches when the glob matches the path or one of its ancestors: the glob's body,
    then the end or a ``/`` (everything below is covered too). ``floating`` is true for a glob
    with a leading ``**/``: its body may start at any segment, so all such globs can share a
    single segment skip in the combined regex.
    """
    parts, _ = _strip_tail(_fold_glob(glob))
    floating = False
    while parts and parts[0] == "**":
        parts.pop(0)
        floating = True
    if not parts:  # "**": everything
        return False, ""
    return floating, f"(?:{_glob_body(parts)})(?=/|\\Z)"


def _deny_regex(glob: str) -> str:
    """Regex source (for ``match``) true when ``glob`` matches a path or one of its ancestors."""
    floating, body = _deny_body(glob)
    return _SKIP_SEGMENTS_RE + body if floating else body


def _fold_glob(glob: str) -> str:
    """A deny glob in the space the path forms are compared in: case-folded, and for non-ASCII
    globs NFKC-normalised as well (so that an NFC glob matches an NFD name from HFS+)."""
    if glob.isascii():
        return glob.lower()
    return _nfkc(_nfkc(glob).casefold())


def _path_forms_for_deny(path: str) -> tuple[str, ...]:
    """The spellings a deny glob is matched against: case-folded (``.SSH`` opens ``.ssh`` on
    APFS and NTFS), NFKC (``\\uff0essh``), and with NTFS stream suffixes cut (``key.pem:x``)."""
    if path.isascii():
        forms = [path.lower()]
    else:
        folded = path.casefold()
        nfkc = _nfkc(path)
        forms = [folded, nfkc.casefold(), _nfkc(nfkc.casefold())]
    if ":" in path:
        forms += ["/".join(s.split(":", 1)[0] for s in f.split("/")) for f in forms]
    return tuple(dict.fromkeys(forms))


# --- the policy -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathDecision:
    """A path :class:`Decision` plus what the caller may use when it is allowed.

    ``path`` is the canonical relative API path (``/``-separated, ``""`` for the root) and
    ``resolved`` the symlink-resolved path relative to the resolved root (``/``-separated); both
    are ``None`` when refused, so a refused path cannot be used by accident.
    """

    decision: Decision
    path: str | None = None
    resolved: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def rule_id(self) -> str:
        return self.decision.rule_id

    @property
    def reason(self) -> str:
        return self.decision.reason

    def __bool__(self) -> bool:
        return self.decision.allowed


@dataclass(frozen=True, slots=True)
class PathPolicy:
    """``[paths]`` compiled once; :meth:`decide` only looks things up.

    Safe defaults: hidden files refused, nothing allowed back. Build it from the loaded policy
    with :meth:`from_paths_policy` to get the shipped deny list.
    """

    allow_hidden: bool = False
    deny: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    _deny_any: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _deny_each: tuple[tuple[str, re.Pattern[str]], ...] = field(
        init=False, repr=False, compare=False
    )
    _allow_any: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    # _rules' answers by path: pure in (this policy, the path), asked on every decision.
    _rules_cache: dict[str, tuple[str, str] | None] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        # paths.protected globs are deny globs with their own rule id (HS-PATH-008)
        deny_globs = tuple(dict.fromkeys((*self.deny, *self.protected)))
        allow_globs = tuple(self.allow)
        # A deny glob covers what it matches and everything below it: a path inside a denied
        # directory is denied whatever the rest of its name.
        deny_each = tuple((g, re.compile(_deny_regex(g), re.DOTALL)) for g in deny_globs)
        # One alternation for the fast "no" of the common case; anchored globs first, then
        # every "**/..." glob behind a single shared segment skip.
        bodies = [_deny_body(g) for g in deny_globs]
        alternatives = [body for floating, body in bodies if not floating]
        floating = [body for is_floating, body in bodies if is_floating]
        if floating:
            alternatives.append(f"{_SKIP_SEGMENTS_RE}(?:{'|'.join(floating)})")
        deny_any = re.compile("|".join(alternatives), re.DOTALL) if deny_each else None
        allow_any = (
            re.compile("|".join(f"(?:{glob_to_regex(g)})" for g in allow_globs), re.DOTALL)
            if allow_globs
            else None
        )
        object.__setattr__(self, "deny", tuple(self.deny))
        object.__setattr__(self, "protected", tuple(self.protected))
        object.__setattr__(self, "allow", allow_globs)
        object.__setattr__(self, "_deny_each", deny_each)
        object.__setattr__(self, "_deny_any", deny_any)
        object.__setattr__(self, "_allow_any", allow_any)
        object.__setattr__(self, "_rules_cache", {})

    @classmethod
    def from_paths_policy(cls, paths: PathsPolicy) -> PathPolicy:
        return cls(
            allow_hidden=paths.allow_hidden,
            deny=paths.deny,
            allow=paths.allow,
            protected=paths.protected,
        )

    # -- the rules on one relative path ------------------------------------------------------------

    def denied_by(self, path: str) -> str | None:
        """The first ``paths.deny`` or ``paths.protected`` glob matching ``path`` or one of its
        ancestors, or ``None``."""
        if self._deny_any is None:
            return None
        forms = _path_forms_for_deny(path)
        if not any(self._deny_any.match(f) for f in forms):
            return None
        for glob, pattern in self._deny_each:
            if any(pattern.match(f) for f in forms):
                return glob
        return None  # pragma: no cover - the alternation matched, so one glob does

    def allowed_by(self, path: str) -> bool:
        """True if a ``paths.allow`` glob matches ``path`` exactly as spelled (exceptions to the
        hidden rule are never widened by case folding or normalisation)."""
        return self._allow_any is not None and self._allow_any.fullmatch(path) is not None

    def is_hidden_path(self, path: str) -> bool:
        """True if a component of relative ``path`` is hidden and no allow rule exempts it."""
        if self.allow_hidden or not _has_hidden_component(path):
            return False
        return not self.allowed_by(path)

    def _rules(self, path: str) -> tuple[str, str] | None:
        """(rule id, detail) of the first rule refusing relative ``path``, or ``None``: from a
        bounded cache (exact ``str`` paths up to :data:`_CACHEABLE_PATH_CHARS` characters; a
        full cache is emptied), since a server asks about the same paths again and again."""
        if type(path) is not str or len(path) > _CACHEABLE_PATH_CHARS:
            return self._rules_uncached(path)
        cache = self._rules_cache
        try:
            return cache[path]
        except KeyError:
            pass
        answer = self._rules_uncached(path)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[path] = answer
        return answer

    def _rules_uncached(self, path: str) -> tuple[str, str] | None:
        """(rule id, detail) of the first rule refusing relative ``path``, or ``None``.

        Deny first: it is the stronger statement and holds whatever allow_hidden says.
        """
        glob = self.denied_by(path)
        if glob is not None:
            if glob not in self.deny:
                return Rule.PATH_PROTECTED, f"matches paths.protected {glob!r}"
            return Rule.PATH_DENIED, f"matches paths.deny {glob!r}"
        if self.is_hidden_path(path):
            return Rule.PATH_HIDDEN, "has a hidden component and paths.allow_hidden is false"
        return None

    # -- the decision ----------------------------------------------------------------------------

    def decide(
        self,
        path: str,
        op: PathOp | str,
        *,
        root: str,
        resolve: Callable[[str], str] = os.path.realpath,
        decoded: bool = True,
    ) -> PathDecision:
        """Decide whether ``op`` may act on API ``path`` below the absolute directory ``root``.

        ``decoded`` says whether ``path`` is already percent-decoded (see :func:`canonicalize`).
        ``resolve`` maps an absolute OS path to its symlink-free form; inject a fake one in
        tests. It is called on the root and on the joined path, and the resolved path must stay
        inside the resolved root (an innocently named link to ``/etc`` or to the sibling
        ``<root>secret`` is refused) and pass the same hidden and deny rules (a link ``notes`` →
        ``.ssh`` is refused even though its name is not hidden: stock ``is_hidden`` only looks
        at names). An exception from ``resolve`` (``OSError``, ``ValueError``, ``RuntimeError``)
        refuses the path instead of becoming a 500.

        Raises ``ValueError`` only for caller mistakes: an unknown ``op`` or a relative ``root``.
        """
        if type(op) is not PathOp:
            # A str ("read"): a dict look-up instead of Enum's call; anything else as before.
            op = (_OPS.get(op) if type(op) is str else None) or PathOp(op)
        if not (
            root.startswith(os.sep) if type(root) is str and not _ALT_SEP else os.path.isabs(root)
        ):
            raise ValueError("root must be an absolute path")
        canonical = canonicalize(path, decoded=decoded)
        if isinstance(canonical, Decision):
            return PathDecision(canonical)
        if not canonical and op in ROOT_IMMUTABLE_OPS:
            return PathDecision(
                deny(Rule.PATH_ESCAPES_ROOT, f"{op}: the root itself cannot be {_VERB[op]}")
            )

        refused = self._rules(canonical)
        if refused is not None:
            return PathDecision(deny(refused[0], f"{op}: path {refused[1]}"))

        # The apparent path is inside the root by construction: no '..', no absolute part, no
        # drive (canonicalize). Now the real one: symlinks anywhere along the path.
        if not canonical:
            joined = root
        elif _ALT_SEP or type(root) is not str:
            joined = os.path.join(root, canonical.replace("/", os.sep))
        else:  # os.path.join of an absolute root and a relative path, without its generality
            joined = root + canonical if root.endswith(os.sep) else root + os.sep + canonical
        try:
            # A resolver may answer both at once (enforcement's RootResolver checks the root
            # with one stat instead of two); the answers are the two calls'.
            both = getattr(resolve, "resolve_with_root", None)
            if both is not None:
                real_root, real = both(root, joined)
            else:
                real_root = resolve(root)
                real = resolve(joined)
        except (OSError, ValueError, RuntimeError):
            return PathDecision(deny(Rule.PATH_SYMLINK, f"{op}: path could not be resolved"))
        if type(real_root) is str:
            root_split = _split_root(real_root)
        else:
            root_split = _split_abs(real_root) if isinstance(real_root, str) else None
        if not isinstance(real, str):
            real_split = None
        elif root_split is not None and type(real_root) is str:
            real_split = _split_below(real_root, root_split, real)
        else:
            real_split = _split_abs(real)
        if root_split is None or real_split is None:
            detail = f"{op}: the resolver returned no absolute path"
            return PathDecision(deny(Rule.PATH_SYMLINK, detail))
        # Components, never a string prefix: a link to "<root>secret" (CVE-2026-35397).
        if not _contained(root_split, real_split):
            return PathDecision(
                deny(Rule.PATH_SYMLINK, f"{op}: a symlink on the path leads outside the root")
            )
        resolved = "/".join(real_split[1][len(root_split[1]) :])
        if resolved != canonical:
            refused = self._rules(resolved)
            if refused is not None:
                detail = f"{op}: a symlink on the path resolves to a path that {refused[1]}"
                return PathDecision(deny(Rule.PATH_SYMLINK, detail))
        if not resolved and op in ROOT_IMMUTABLE_OPS:
            # "link" -> "." would otherwise let DELETE remove the root under another name.
            return PathDecision(
                deny(Rule.PATH_ESCAPES_ROOT, f"{op}: the path resolves to the root itself")
            )
        return PathDecision(_ALLOWED[op], canonical, resolved)


# An op given as its value ("read"), looked up without Enum's call machinery.
_OPS: Mapping[str, PathOp] = {op.value: op for op in PathOp}

# Decisions are immutable: the allowing one of each op is built once.
_ALLOWED: Mapping[PathOp, Decision] = {
    op: allow(Rule.PATH_ALLOWED, f"{op}: path allowed") for op in PathOp
}

_VERB: Mapping[PathOp, str] = {
    PathOp.WRITE: "overwritten",
    PathOp.DELETE: "deleted",
    PathOp.RENAME_FROM: "renamed",
    PathOp.RENAME_TO: "replaced by a rename",
    PathOp.CHECKPOINT: "checkpointed",
    PathOp.TRUST: "trusted",
}


def served_relative_path(root: str, path: str, paths: PathsPolicy) -> str | None:
    """``path`` relative to ``root`` (``/`` separators) when the contents and files APIs could
    reach it under ``paths``: it resolves inside the root and no ``paths.deny`` glob covers it.
    ``None`` when it lies outside the root, or inside it under a deny glob (which holds even
    with ``allow_hidden = true`` and against ``paths.allow``).

    This is the test for the server's own files (token store, audit trail): serving a home
    directory puts the Jupyter runtime directory inside the root, where the shipped
    ``.local/share/jupyter/runtime/**`` deny glob keeps it out of reach; moving the runtime
    directory elsewhere below the root, or removing that glob, makes it reachable. The hidden
    rule alone does not count: ``allow_hidden`` and ``paths.allow`` can lift it. The file need
    not exist; its directory is resolved (a symlinked directory counts)."""
    rel = path_below_root(root, path)
    if rel is None:
        return None
    if rel != "." and PathPolicy.from_paths_policy(paths).denied_by(rel) is not None:
        return None
    return rel


def path_below_root(root: str, path: str, *, resolve_leaf: bool = False) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators (``"."`` for the root itself) when it
    lies inside the root once resolved, else ``None``: the one "inside the served root" test of
    the start-up refusals, the audit file's placement and the audit's checks.

    The root and the path's directory are resolved (``os.path.realpath``: a symlinked directory
    counts); the last component only with ``resolve_leaf``, for a directory that exists (the
    runtime directory, a config directory), not for a file that may not exist yet. A start-up
    check, not a request-time decision: it reads the file system."""
    root_real = os.path.realpath(root)
    if resolve_leaf:
        real = os.path.realpath(path)
    else:
        real = os.path.join(os.path.realpath(os.path.dirname(path) or "."), os.path.basename(path))
    try:
        rel = os.path.relpath(real, root_real)
    except ValueError:
        return None
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return "." if rel == os.curdir else rel.replace(os.sep, "/")



class ServerFile(StrEnum):
    """The server's own files that the contents API must never reach: with the token store
    (hashes only, but replaceable) a ``contents:write`` client could mint a token with every
    scope; with the audit file it could read, rewrite or delete the evidence."""

    TOKEN_STORE = "token store"  # noqa: S105 - a file kind, not a secret
    AUDIT_FILE = "audit file"
    HMAC_KEY = "audit HMAC key"  # with it a reader tests guesses against every hmac record


@dataclass(frozen=True, slots=True)
class ServerFileRule:
    """How a reachable server file is refused: the rule id, the setting that places the file
    and the fix. The start-up refusal, the reload refusal and the audit's checks (HS-TOKEN-109,
    the audit-file check) all read this table."""

    rule: Rule
    setting: str
    fix: str


SERVER_FILE_RULES: Mapping[ServerFile, ServerFileRule] = {
    ServerFile.TOKEN_STORE: ServerFileRule(
        Rule.ID_TOKEN_STORE_SERVED,
        "tokens.store_file / --token-store",
        "put the token store outside the root directory (the default is the Jupyter runtime "
        "directory), or cover it with a paths.deny glob",
    ),
    ServerFile.AUDIT_FILE: ServerFileRule(
        Rule.AUDIT_FILE_IN_ROOT,
        "audit.file",
        "set audit.file to a path outside the served root (e.g. under /var/log) or under a "
        "paths.deny glob, or move JUPYTER_RUNTIME_DIR out of it",
    ),
    ServerFile.HMAC_KEY: ServerFileRule(
        Rule.ACCT_KEY_IN_ROOT,
        "audit.hmac_key",
        "set audit.hmac_key to a file outside the served root (e.g. /etc/jupyter/audit.key), "
        'or "" for the generated key in the Jupyter data directory, or move '
        "JUPYTER_DATA_DIR out of the root",
    ),
}


def served_file_problem(
    kind: ServerFile,
    path: str,
    root: str,
    paths: PathsPolicy | None,
    *,
    what: str = "",
    setting: str = "",
) -> UnsafeStartup | None:
    """The one refusal for a server file the contents API could reach, or ``None``.

    With ``paths`` (the policy in force, or the one a reload proposes) the test is
    :func:`served_relative_path`: inside the root and under no ``paths.deny`` glob. Without it
    (the audit file is placed before the path rules are compiled) anywhere inside the root
    counts. ``what`` names the file in the message (default: ``the <kind>``); ``setting``
    overrides the table's (a reload names ``paths.deny``, the key it changed)."""
    if not root:
        return None
    if paths is not None:
        rel = served_relative_path(root, path, paths)
        tail = " and no paths.deny glob covers it"
    else:
        rel = path_below_root(root, path)
        tail = ""
    if rel is None:
        return None
    rule = SERVER_FILE_RULES[kind]
    return UnsafeStartup(
        rule.rule,
        f"{what or 'the ' + kind.value} {path} is inside the served root "
        f"{os.path.realpath(root)} ({rel!r}){tail}",
        setting=setting or rule.setting,
        fix=rule.fix,
    )
