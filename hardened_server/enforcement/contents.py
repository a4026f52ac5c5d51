"""``HardenedContentsManager``: every contents operation asks the one path decision first.

Stock jupyter_server checks hidden files piecemeal and by name only (research notes §2.5):

* ``jupyter_core.paths.is_hidden`` never resolves symlinks, so a link ``linkssh -> .ssh`` is read
  *and written* through ``/api/contents`` (GHSA-q874-g24w-4q9g, CVE-2022-29241 is the same class);
* the async manager's ``save`` has no hidden check, so ``POST /api/contents/.hiddendir`` creates
  ``untitled`` inside the hidden directory while answering 404;
* checkpoints and trust are not checked at all, and ``/view`` and ``/api/resolvePath`` answer
  differently for a hidden file that exists and one that does not (existence oracles).

Here one :class:`~hardened_server.policy.paths.PathPolicy`, built from the server's ``[paths]``
policy, is asked for **every** operation with the :class:`~hardened_server.policy.paths.PathOp`
that names it, *before* anything touches the file system. A refusal is recorded
(:func:`record_path_denial`) and raised as the 404 a missing file gets
(:func:`not_found`: ``No such file or directory: <path>``, stock ``get``'s message), and the
operations that stock answers differently for a missing path (rename, delete, copy, new untitled,
a write into a directory that does not exist, checkpoints) are made to answer with that same 404
too. So a denied path, a missing path and a path outside the root cannot be told apart, and a
refused write leaves nothing on disk.

Operation → op, checked here:

==========================================  ==============================================
``get`` (file / notebook, directory)        ``read`` / ``list``; listings omit every entry
                                            the policy refuses (hidden, denied, a symlink
                                            whose target is outside, hidden or denied)
``save`` (every chunk of an upload too)     ``write`` if the path exists, else ``create``
``new``, ``new_untitled``                   ``create`` (the target directory, then the file)
``copy``                                    ``copy-from`` and ``copy-to``; directory copies
                                            skip refused entries and never follow symlinks;
                                            a destination folder they make is ``create``
``rename`` / ``rename_file``                ``rename-from`` and ``rename-to``
``delete`` / ``delete_file``                ``delete``
checkpoints (create, list, restore, delete) ``checkpoint``
``trust_notebook``                          ``trust``
``file_exists``, ``dir_exists``, ``exists`` ``read``: a refused path does not exist
``resolve_path`` (``/api/resolvePath``)     ``resolve``: a refused path resolves to nothing
``get_kernel_path`` (session ``path``)      ``resolve``: refused → the nearest
                                            allowed directory (as for a missing path)
``_get_os_path``                            ``read`` (defence in depth: every stock code path
                                            and extension that maps an API path to a file)
==========================================  ==============================================

``is_hidden`` answers ``False`` for every path. The stock handlers use it only as an early gate
(``if not cm.allow_hidden and cm.is_hidden(path)``) that answers *400* for PUT, PATCH, POST and
DELETE, which would tell a refused path from a missing one; every operation behind that gate is
decided here, so letting it through changes nothing but the answer, which becomes the uniform 404.

``allow_hidden`` mirrors ``paths.allow_hidden`` (it is also true when ``paths.allow`` lists
exceptions, since stock's name-based checks would otherwise refuse the very paths the policy lets
through); a configured ``ContentsManager.allow_hidden`` that disagrees is overridden with a
warning. ``hide_globs`` still hides names from listings.

Every change is recorded once (issue #18), through :mod:`~hardened_server.enforcement.recorder`:
``file_written`` for a save, a new file or directory, a file copy, a checkpoint restore and a
directory copy (HS-CONTENTS-001; a file's record names its ``size`` and ``sha256`` as written,
:func:`content_digest`), ``file_renamed`` (002), ``file_deleted`` (003),
``checkpoint_created`` / ``checkpoint_deleted`` (005/006). A chunked upload (``chunk`` 1..n,
-1 for the last) is recorded twice, not per chunk: ``upload_started`` (004) for chunk 1 and
``file_written`` with the assembled file's size and sha256 for chunk -1; the chunks between
are not recorded one by one (each is decided like chunk 1), so an upload that never sent its
last chunk shows as an ``upload_started`` without a ``file_written`` after it.

What this cannot close: a symlink swapped between the decision and the ``open`` (TOCTOU), and
hard links (a hard link to a secret is a regular file under an innocent name).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import mimetypes
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from anyio.to_thread import run_sync
from jupyter_core.paths import is_file_hidden
from jupyter_server import _tz as tz
from jupyter_server.services.contents.fileio import (
    async_replace_file,
    path_to_intermediate,
    path_to_invalid,
)
from jupyter_server.services.contents.filemanager import _get_created_timestamp
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web
from traitlets import default, validate

from hardened_server.enforcement.context import current_request
from hardened_server.enforcement.notebooks import (
    FastNotebookNotary,
    reads_notebook,
    write_notebook,
)
from hardened_server.enforcement.pathpolicy import (
    RootResolver,
    default_paths_policy,
    path_policy_for,
    record_path_denial,
)
from hardened_server.enforcement.recorder import folded, record_event
from hardened_server.policy.decisions import Decision
from hardened_server.policy.model import PathsPolicy, Policy
from hardened_server.policy.paths import PathDecision, PathOp, PathPolicy, canonicalize
from hardened_server.policy.rules import Rule
from hardened_server.trail.record import EventKind

__all__ = [
    "MISSING_MESSAGE",
    "HardenedContentsManager",
    "display_path",
    "not_found",
]

# Stock AsyncFileContentsManager.get's message for a path that does not exist. Every refusal and
# every "missing" answer of this manager uses it, so the two cannot be told apart.
MISSING_MESSAGE = "No such file or directory: %s"

# Characters that would forge or garble a log line or an error page. PathPolicy refuses every
# path containing one of them, so escaping them never changes the message of a path that could
# be allowed (and therefore never makes a refused path distinguishable from a missing one).
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
    "\ud800-\udfff]"
)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display_path(path: str) -> str:
    """The API path as stock error messages show it (``/`` stripped), control characters
    escaped."""
    return _UNPRINTABLE.sub(_escape_char, path.strip("/"))


def not_found(path: str) -> web.HTTPError:
    """The 404 a missing ``path`` gets; raised for refused paths as well.

    Formatted eagerly, like stock, because the JSON error body carries ``log_message`` as is.
    """
    return web.HTTPError(404, MISSING_MESSAGE % display_path(path))


def _record_file_event(
    kind: EventKind, rule_id: str, subject: str, what: str, **detail: Any
) -> None:
    """A file changed through the contents API: one audit record (sensitive allow), with the
    request, user and client of the handler that asked (jupyter_server's ``CallContext``).
    ``detail`` (``size=``, ``sha256=``, ``checkpoint=``) goes into the subject as
    ``key=value``."""
    record_event(
        current_request(),
        kind,
        rule_id=rule_id,
        allowed=True,
        reason=f"file {what} through the contents API",
        subject=subject,
        **detail,
    )


#: Block size of :func:`content_digest`: large enough that hashing runs at SHA-256's speed.
_DIGEST_BLOCK = 1 << 20


def content_digest(os_path: str) -> dict[str, Any]:
    """``size`` and ``sha256`` of the file at ``os_path`` as it is on disk now: the content as
    written, whatever the format (a notebook as nbformat serialised it, an upload as its chunks
    were appended). Read once in blocks, the bytes counted as they are hashed, so the two
    always describe the same bytes. ``{}`` for a directory or a file that is gone (the record
    then names the path alone)."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_DIGEST_BLOCK)
    view = memoryview(buffer)
    try:
        with open(os_path, "rb") as f:
            while count := f.readinto(buffer):
                digest.update(view[:count])
                size += count
    except OSError:  # a directory (IsADirectoryError), vanished, unreadable
        return {}
    return {"size": size, "sha256": digest.hexdigest()}


# Reads already decided (and allowed) further up the current call chain: stripped API path →
# canonical path. Stock ``get`` maps the same path to a file five or six times (exists,
# _get_os_path, _base_model, is_writable ...); deciding it once per chain instead of each time
# halves the cost of a listing. Task-local, so one request never sees another's decisions.
_DECIDED_READS: ContextVar[Mapping[str, str]] = ContextVar(
    "hs_decided_reads", default=MappingProxyType({})
)
_READ_OPS = frozenset({PathOp.READ, PathOp.LIST})


def paths_policy_of(app: Any) -> PathsPolicy:
    """The ``[paths]`` policy in force for a server application object (``ServerApp`` or the
    tornado ``Application``'s settings owner), falling back to the shipped default."""
    web_app = getattr(app, "web_app", None)
    settings = getattr(web_app, "settings", None)
    if isinstance(settings, dict):
        from hardened_server.enforcement.runtime import SETTINGS_KEY

        runtime = settings.get(SETTINGS_KEY)
        policy = getattr(getattr(runtime, "current", None), "policy", None)
        if isinstance(policy, Policy):
            return policy.paths  # follows a policy reload
    policy = getattr(app, "policy", None)
    if isinstance(policy, Policy):
        return policy.paths
    return default_paths_policy()


_EPOCH = datetime(1970, 1, 1, 0, 0, tzinfo=tz.UTC)  # stock's fallback for a bad timestamp


class _Scanned(NamedTuple):
    """One directory entry as :func:`_scan` saw it."""

    name: str
    lstat: os.stat_result
    target: os.stat_result | None  # the stat through a symlink (the lstat otherwise)
    target_errno: int  # why there is no target (ENOENT: a dangling link, ELOOP: a loop)
    writable: bool


def _scan(os_dir: str) -> list[_Scanned]:
    """Every entry of ``os_dir`` that is a file, a folder or a symlink, with the system calls
    a listing needs (run in a worker thread, once per listing): ``lstat``, a ``stat`` through a
    symlink, ``os.access(W_OK)`` (stock's ``is_writable``)."""
    found = []
    with os.scandir(os_dir) as it:
        for dirent in it:
            try:
                info = dirent.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished, unreadable: stock skips it too
            mode = info.st_mode
            target: os.stat_result | None = info
            error = 0
            if stat.S_ISLNK(mode):
                try:
                    target = os.stat(dirent.path)
                except OSError as exc:
                    target, error = None, exc.errno or errno.EIO
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                continue  # FIFOs, sockets, devices: never listed (stock neither)
            try:
                writable = os.access(dirent.path, os.W_OK)
            except OSError:
                writable = False
            found.append(_Scanned(dirent.name, info, target, error, writable))
    return found


def _hidden_entry(os_path: str, entry: _Scanned) -> bool:
    """Stock leaves an entry out of a listing (with ``allow_hidden`` false) when
    ``is_file_hidden`` says so of its ``lstat`` (the listing's test) or of what it points to
    (``_base_model``'s ``is_hidden``; an error other than ENOENT there, such as a symlink
    loop, drops the entry as well). The folder's own ancestors passed ``is_hidden`` already."""
    try:
        if is_file_hidden(os_path, stat_res=entry.lstat):
            return True
        if entry.target is entry.lstat:
            return False
        if entry.target is None:
            return entry.target_errno != errno.ENOENT
        return bool(is_file_hidden(os_path, stat_res=entry.target))
    except OSError:
        return True


def _by_name(entry: _Scanned) -> str:
    return entry.name


def _join_os(real_root: str, relative: str) -> str:
    return real_root.rstrip(os.sep) + os.sep + relative.replace("/", os.sep)


class HardenedContentsManager(AsyncLargeFileManager):
    """``AsyncLargeFileManager`` with one path decision in front of every operation."""

    # -- the policy ----------------------------------------------------------------------------

    @property
    def paths_policy(self) -> PathsPolicy:
        return paths_policy_of(self.parent)

    @property
    def path_policy(self) -> PathPolicy:
        return path_policy_for(self.paths_policy)

    def _policy_allow_hidden(self) -> bool:
        paths = self.paths_policy
        return bool(paths.allow_hidden or paths.allow)

    @default("allow_hidden")
    def _default_allow_hidden(self) -> bool:
        return self._policy_allow_hidden()

    @validate("allow_hidden")
    def _validate_allow_hidden(self, proposal: Any) -> bool:
        wanted = self._policy_allow_hidden()
        if bool(proposal["value"]) != wanted:
            self.log.warning(
                "ContentsManager.allow_hidden=%s ignored: the policy's [paths] decides "
                "(allow_hidden=%s)",
                proposal["value"],
                wanted,
            )
        return wanted

    @default("files_handler_class")
    def _files_handler_class_default(self) -> type:
        from hardened_server.enforcement.files import HardenedFileHandler

        return HardenedFileHandler

    # -- notebooks: nbformat's answers with less work (enforcement/notebooks.py, #22) ----------

    @default("notary")
    def _notary_default(self) -> FastNotebookNotary:
        return FastNotebookNotary(parent=self)

    async def _read_notebook(
        self,
        os_path: str,
        as_version: int = 4,
        capture_validation_error: dict[str, Any] | None = None,
        raw: bool = False,
    ) -> Any:
        """Stock's ``_read_notebook`` (``AsyncFileManagerMixin``) with :func:`reads_notebook`
        for ``nbformat.reads``: the same notebook, the same validation outcome, parsed once;
        stock's recovery from an atomic-writing intermediate kept as it is."""
        if as_version != 4:
            return await super()._read_notebook(
                os_path, as_version, capture_validation_error=capture_validation_error, raw=raw
            )
        answer = await self._read_file(os_path, "text", raw)
        try:
            read = functools.partial(
                reads_notebook, capture_validation_error=capture_validation_error
            )
            nb = await run_sync(read, answer[0])
            return (nb, answer[2]) if raw else nb  # type: ignore[misc]
        except Exception as e:  # stock: any failure to read is "unreadable"
            e_orig = e
        tmp_path = path_to_intermediate(os_path)
        if not self.use_atomic_writing or not os.path.exists(tmp_path):
            raise web.HTTPError(400, f"Unreadable Notebook: {os_path} {e_orig!r}")
        # Move the bad file aside, restore the intermediate, and try again (as stock).
        invalid_file = path_to_invalid(os_path)
        await async_replace_file(os_path, invalid_file)
        await async_replace_file(tmp_path, os_path)
        return await self._read_notebook(
            os_path, as_version, capture_validation_error=capture_validation_error, raw=raw
        )

    async def _save_notebook(
        self, os_path: str, nb: Any, capture_validation_error: dict[str, Any] | None = None
    ) -> None:
        """Stock's ``_save_notebook`` with :func:`write_notebook` for ``nbformat.write``: the
        same validation, the same text."""
        write = functools.partial(write_notebook, capture_validation_error=capture_validation_error)
        with self.atomic_writing(os_path, encoding="utf-8") as f:
            await run_sync(write, nb, f)

    # -- the decision ----------------------------------------------------------------------------

    @property
    def _root(self) -> str:
        return self._resolver.root

    @property
    def _resolver(self) -> RootResolver:
        """The absolute root and its resolver, computed again whenever ``root_dir`` changes."""
        root_dir = self.root_dir
        cached = self.__dict__.get("_hs_resolver")
        if cached is not None and cached[0] == root_dir:
            return cached[1]
        resolver = RootResolver(os.path.abspath(root_dir))
        self.__dict__["_hs_resolver"] = (root_dir, resolver)
        return resolver

    def decide(self, path: str, op: PathOp) -> PathDecision:
        """The policy's answer for API ``path`` (already percent-decoded) and ``op``."""
        resolver = self._resolver
        return self.path_policy.decide(path, op, root=resolver.root, resolve=resolver, decoded=True)

    @contextmanager
    def _reads_decided(self, path: str, canonical: str) -> Iterator[None]:
        decided = {**_DECIDED_READS.get(), path.strip("/"): canonical}
        token = _DECIDED_READS.set(MappingProxyType(decided))
        try:
            yield
        finally:
            _DECIDED_READS.reset(token)

    @staticmethod
    def _already_read(path: str, op: PathOp) -> str | None:
        if op not in _READ_OPS:
            return None
        return _DECIDED_READS.get().get(path.strip("/"))

    def _refused(self, path: str, op: PathOp) -> PathDecision | None:
        """The refusing decision (recorded), or ``None`` if ``op`` may act on ``path``."""
        if self._already_read(path, op) is not None:
            return None
        decision = self.decide(path, op)
        if decision.allowed:
            return None
        record_path_denial(decision, op, path)
        return decision

    def require(self, path: str, op: PathOp, *, shown: str | None = None) -> str:
        """The canonical path if ``op`` may act on ``path``; else the missing-file 404 (naming
        ``shown`` instead of ``path`` where stock's missing answer names another path)."""
        already = self._already_read(path, op)
        if already is not None:
            return already
        decision = self.decide(path, op)
        if not decision.allowed or decision.path is None:
            record_path_denial(decision, op, path)
            raise not_found(path if shown is None else shown)
        return decision.path

    def _os(self, canonical: str) -> str:
        """OS path of a canonical (already decided) API path, without deciding again."""
        if not canonical:
            return self._root
        return os.path.join(self._root, *canonical.split("/"))

    def _lexists(self, canonical: str) -> bool:
        return os.path.lexists(self._os(canonical))

    def _parent_is_dir(self, canonical: str) -> bool:
        parent = canonical.rpartition("/")[0]
        return os.path.isdir(self._os(parent))

    def _os_path_unchecked(self, path: str) -> str:
        return super()._get_os_path(path)

    def _get_os_path(self, path: str) -> str:
        """Defence in depth: every stock code path (and any extension) that maps an API path to
        a file goes through here; a path that may not even be read has no file."""
        if self._refused(path, PathOp.READ) is not None:
            raise not_found(path)
        return super()._get_os_path(path)

    # -- existence oracles: a refused path does not exist ---------------------------------------

    def _visible(self, path: str) -> bool:
        """Whether ``path`` may be seen. A refused probe of a name that is not on disk is not
        recorded: extensions probe many refused names on every request (jupytext looks for
        ``.jupytext.toml`` and five more in each folder up to the root), the answer is
        ``False`` either way, and a denial record must mean that something refused exists.
        A refused path that exists, or that cannot be placed inside the root, is recorded."""
        if self._already_read(path, PathOp.READ) is not None:
            return True
        decision = self.decide(path, PathOp.READ)
        if decision.allowed:
            return True
        if self._probe_target_exists(path):
            record_path_denial(decision, PathOp.READ, path)
        return False

    def _probe_target_exists(self, path: str) -> bool:
        """``True`` unless ``path`` is a plain path inside the root with nothing on disk."""
        try:
            os_path = self._os_path_unchecked(path)  # stock mapping: 404 outside the root
        except web.HTTPError:
            return True
        return os.path.lexists(os_path)

    # Sync, as in FileContentsManager, which precedes AsyncContentsManager (async) in the MRO.
    def exists(self, path: str) -> bool:  # type: ignore[override]  # stock get calls it sync
        return self._visible(path) and bool(super().exists(path))

    async def file_exists(self, path: str) -> bool:
        return self._visible(path) and await super().file_exists(path)

    async def dir_exists(self, path: str) -> bool:
        return self._visible(path) and await super().dir_exists(path)

    async def is_hidden(self, path: str) -> bool:
        """Always ``False``: every operation is decided here and refused with the missing-file
        404, so the stock handlers' early (and differently answered) hidden gates must not
        fire. See the module docstring."""
        return False

    def resolve_path(self, path: str) -> str | None:  # type: ignore[override]  # sync, as exists
        """``/api/resolvePath``: the API path of an existing, allowed path, else ``None``."""
        if not path.startswith(("~", "/")) and self._refused(path, PathOp.RESOLVE) is not None:
            return None
        try:
            resolved = super().resolve_path(path)
        except (OSError, ValueError, RuntimeError, web.HTTPError):
            return None
        if resolved is None or self._refused(resolved, PathOp.RESOLVE) is not None:
            return None
        return resolved

    async def get_kernel_path(self, path: str, model: Any = None) -> str:
        """A session's ``path`` chooses the kernel's working directory.

        A refused path looks missing here too. For a missing path stock returns its parent and
        the kernel manager walks up to the nearest directory that exists; for a refused one the
        kernel starts in the nearest *allowed* directory that exists above it (the root at
        worst), never inside ``.hiddendir`` or through a link out of the root. Raising instead
        is no option: the sessions handler turns every exception into a 500.
        """
        if self._refused(path, PathOp.RESOLVE) is None:
            return await super().get_kernel_path(path, model)
        canonical = canonicalize(path, decoded=True)
        parts = [] if isinstance(canonical, Decision) else canonical.split("/")[:-1]
        while parts:
            candidate = "/".join(parts)
            decision = self.decide(candidate, PathOp.RESOLVE)
            if decision.allowed and os.path.isdir(self._os(candidate)):
                return candidate
            parts.pop()
        return ""

    # -- read ------------------------------------------------------------------------------------

    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> dict[str, Any]:
        op = PathOp.LIST if type == "directory" else PathOp.READ
        canonical = self.require(path, op)
        with self._reads_decided(path, canonical):
            return await super().get(
                path, content=content, type=type, format=format, require_hash=require_hash
            )

    async def _dir_model(self, path: str, content: bool = True) -> dict[str, Any]:
        self.require(path, PathOp.LIST)
        model = await super()._dir_model(path, content=False)
        if content:
            model["content"] = await self._list(path)
            model["format"] = "json"
        return model

    async def _list(self, path: str) -> list[dict[str, Any]]:
        """The entries of a listing, each the model stock ``get(entry, content=False)`` builds,
        with every entry the policy refuses left out.

        Stock builds each entry with a full ``get``: a thread hop for one ``lstat``, then
        ``exists``, ``isdir``, ``lstat`` again, ``is_hidden`` (another ``stat``) and
        ``os.access``, each through ``_get_os_path``. Here one worker-thread call scans the
        directory (:func:`_scan`: one ``lstat`` per entry, a ``stat`` through a symlink,
        ``os.access``) and each entry is decided and built on those answers. The decision is
        the full one (hidden, deny and protected rules on the name and on what a symlink
        resolves to); only the resolution of a plain (non-symlink) entry reuses its folder's
        resolved path instead of ``lstat``-ing every component again.
        ``tests/enforcement/test_contents_listing.py`` pins that every entry equals stock's.

        Stock's UF_HIDDEN and unreadable-folder tests are kept: the folder itself passed stock's
        ``is_hidden`` in ``_dir_model``, so an entry is hidden exactly when ``is_file_hidden``
        says so of the entry (on the ``stat`` through a link, as stock's ``is_hidden`` does).
        """
        resolver = self._resolver
        root = resolver.root
        decision = self.path_policy.decide(path, PathOp.LIST, root=root, resolve=resolver)
        if not decision.allowed or decision.path is None or decision.resolved is None:
            record_path_denial(decision, PathOp.LIST, path)
            raise not_found(path)
        canonical = decision.path
        os_dir = self._os(canonical)
        try:
            scanned = await run_sync(_scan, os_dir)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.ENOENT):
                self.log.warning("Error listing %r: %r", canonical, e)
            return []
        real_root = resolver(root)
        real_dir = real_root if not decision.resolved else _join_os(real_root, decision.resolved)
        plain = {entry.name for entry in scanned if not stat.S_ISLNK(entry.lstat.st_mode)}
        prefix = os_dir.rstrip(os.sep) + os.sep

        def resolve(os_path: str) -> str:
            """realpath, answered without system calls for the folder and its plain entries."""
            if os_path == root:
                return real_root
            if os_path.startswith(prefix):
                rest = os_path[len(prefix) :]
                if rest in plain:
                    return real_dir.rstrip(os.sep) + os.sep + rest
            elif os_path == os_dir:
                return real_dir
            return resolver(os_path)

        policy = self.path_policy
        check_hidden = not self.allow_hidden
        entries = []
        for entry in sorted(scanned, key=_by_name):
            name = entry.name
            if not self.should_list(name):
                continue
            api_path = f"{canonical}/{name}" if canonical else name
            allowed = policy.decide(api_path, PathOp.LIST, root=root, resolve=resolve)
            if not allowed.allowed or allowed.path is None:
                continue  # not recorded: listing is not an attempt on the entry
            os_path = os.path.join(os_dir, name)
            if check_hidden and _hidden_entry(os_path, entry):
                continue
            entries.append(self._entry_model(allowed.path, os_path, entry))
            self.emit(data={"action": "get", "path": allowed.path})  # as stock's get does
        return entries

    def _entry_model(self, api_path: str, os_path: str, entry: _Scanned) -> dict[str, Any]:
        """``get(api_path, content=False)``'s model from one scan of the entry (stock's
        ``_base_model`` plus what ``_dir_model``, ``_notebook_model`` and ``_file_model`` add
        without content)."""
        info = entry.lstat
        try:
            last_modified = tz.utcfromtimestamp(info.st_mtime)
        except (ValueError, OverflowError, OSError):
            last_modified = _EPOCH
        try:
            created = tz.utcfromtimestamp(_get_created_timestamp(info))
        except (ValueError, OverflowError, OSError):
            created = _EPOCH
        is_dir = stat.S_ISDIR(entry.target.st_mode) if entry.target is not None else False
        if is_dir:
            kind, size, mimetype = "directory", None, None
        elif api_path.endswith(".ipynb"):
            kind, size, mimetype = "notebook", info.st_size, None
        else:
            kind, size, mimetype = "file", info.st_size, mimetypes.guess_type(os_path)[0]
        return {
            "name": api_path.rsplit("/", 1)[-1],
            "path": api_path,
            "last_modified": last_modified,
            "created": created,
            "content": None,
            "format": None,
            "mimetype": mimetype,
            "size": size,
            "writable": entry.writable,
            "hash": None,
            "hash_algorithm": None,
            "type": kind,
        }

    # -- write -----------------------------------------------------------------------------------

    def _write_op(self, path: str) -> PathOp:
        canonical = canonicalize(path, decoded=True)
        if isinstance(canonical, Decision):
            return PathOp.WRITE
        return PathOp.WRITE if self._lexists(canonical) else PathOp.CREATE

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        """Decided before the pre-save hooks and before any byte is written; for chunked
        uploads every chunk is decided (stock follows a symlink when appending chunk 2+)."""
        op = self._write_op(path)
        canonical = self.require(path, op)
        if op == PathOp.CREATE and not self._parent_is_dir(canonical):
            # Stock: a 500 ("Unexpected error while saving file") from the failed open.
            raise not_found(path)
        kind = model.get("type") if isinstance(model, dict) else None
        if kind in ("file", "notebook") and os.path.isdir(self._os(canonical)):
            # Stock: a 500 from opening a directory for writing (IsADirectoryError).
            raise web.HTTPError(400, f"cannot save a {kind} over a directory: {display_path(path)}")
        # Stock saves a notebook's first checkpoint with it: part of this save's one record.
        with folded() as notes:
            saved = await super().save(model, path)
        chunk = model.get("chunk") if isinstance(model, dict) else None
        if chunk == 1:  # an upload begins: recorded, so one that never ends is visible
            _record_file_event(
                EventKind.UPLOAD_STARTED,
                Rule.CONTENTS_UPLOAD_STARTED,
                canonical,
                "upload started (chunk 1 written)",
            )
        elif chunk is None or chunk == -1:  # chunks 2..n: not recorded one by one
            what = "created" if op == PathOp.CREATE else "written"
            if chunk == -1:
                what += " (the last chunk of an upload)"
            if notes:
                what += f" (with it: {'; '.join(notes)})"
            _record_file_event(
                EventKind.FILE_WRITTEN,
                Rule.CONTENTS_FILE_WRITTEN,
                canonical,
                what,
                **await run_sync(content_digest, self._os(canonical)),
            )
        return saved

    async def new(self, model: dict[str, Any] | None = None, path: str = "") -> dict[str, Any]:
        self.require(path, self._write_op(path))
        return await super().new(model, path)

    async def new_untitled(
        self,
        path: str = "",
        type: str = "",
        ext: str = "",
    ) -> dict[str, Any]:
        """Stock async ``new_untitled`` creates the file in a hidden directory and answers 404
        afterwards. The directory is decided (``create``) and must exist before a name is
        chosen; ``save`` decides the chosen file again."""
        canonical = self.require(path, PathOp.CREATE)
        if not os.path.isdir(self._os(canonical)):
            raise not_found(path)
        return await super().new_untitled(path=path, type=type, ext=ext)

    async def copy(self, from_path: str, to_path: str | None = None) -> dict[str, Any]:
        source = self.require(from_path, PathOp.COPY_FROM)
        if not self._lexists(source):
            raise not_found(from_path)
        if to_path is None:
            self.require(source.rpartition("/")[0], PathOp.COPY_TO, shown=from_path)
        else:
            target = self.require(to_path, PathOp.COPY_TO)
            if not (os.path.isdir(self._os(target)) or self._parent_is_dir(target)):
                raise not_found(to_path)
        return await super().copy(from_path, to_path)

    async def _copy_dir(
        self, from_path: str, to_path_original: str, to_name: str, to_path: str
    ) -> dict[str, Any]:
        """Stock ``shutil.copytree`` follows symlinks and copies hidden and denied entries, so
        copying a directory holding ``linkssh -> ../.ssh`` or a link out of the root would put
        their contents under an innocent name. Here refused entries are skipped and symlinks
        are copied as links (still decided, on their target, whenever they are used)."""
        source = self.require(from_path, PathOp.COPY_FROM)
        target = self.require(to_path, PathOp.CREATE)
        if self._lexists(target):
            raise not_found(to_path)
        # Stock's copytree creates a destination folder that does not exist yet
        # (POST /api/contents/new {"copy_from": "dir"} makes new/dir; jupyter_server's own
        # test_copy_dir): each folder it would create is decided as a create first.
        ancestor, missing = target.rpartition("/")[0], []
        while ancestor and not self._lexists(ancestor):
            missing.append(ancestor)
            ancestor = ancestor.rpartition("/")[0]
        if not os.path.isdir(self._os(ancestor)):
            raise not_found(to_path)
        for folder in missing:
            self.require(folder, PathOp.CREATE, shown=to_path)
        ignore = self._copy_ignore(source)
        try:
            await run_sync(
                functools.partial(
                    shutil.copytree,
                    self._os(source),
                    self._os(target),
                    symlinks=True,
                    ignore=ignore,
                )
            )
        except (OSError, shutil.Error) as err:
            self.log.error("OSError in _copy_dir: %s", err)
            raise web.HTTPError(
                400, f"Can't copy '{from_path}' into read-only Folder '{to_path}'"
            ) from err
        # A file copy goes through save (one record); a directory copy writes a whole tree
        # without it: one record for the new directory, naming its source.
        _record_file_event(
            EventKind.FILE_WRITTEN,
            Rule.CONTENTS_FILE_WRITTEN,
            target,
            f"created as a copy of the directory {source}",
        )
        return await self.get(target, content=False)

    def _copy_ignore(self, source: str) -> Callable[[str, list[str]], set[str]]:
        resolver = self._resolver
        root = resolver.root

        def ignore(directory: str, names: list[str]) -> set[str]:
            rel = os.path.relpath(directory, self._os(source))
            base = source if rel == "." else f"{source}/{rel.replace(os.sep, '/')}"
            skipped = set()
            for name in names:
                api_path = f"{base}/{name}" if base else name
                if not self.path_policy.decide(
                    api_path, PathOp.COPY_FROM, root=root, resolve=resolver
                ):
                    skipped.add(name)
            return skipped

        return ignore

    async def rename_file(self, old_path: str, new_path: str) -> None:
        """Both ends decided; every failure answers like a missing ``old_path`` (stock's answer
        when the source or the target directory does not exist)."""
        old = self.require(old_path, PathOp.RENAME_FROM)
        new = self.require(new_path, PathOp.RENAME_TO, shown=old_path)
        if not self._lexists(old) or not self._parent_is_dir(new):
            raise not_found(old_path)
        if new.startswith(old + "/"):
            # Stock: a 500 from shutil.move naming both absolute paths.
            raise web.HTTPError(
                400, f"cannot move a directory into itself: {display_path(old_path)}"
            )
        await super().rename_file(old_path, new_path)
        _record_file_event(
            EventKind.FILE_RENAMED, Rule.CONTENTS_FILE_RENAMED, f"{old} -> {new}", "renamed"
        )

    async def delete(self, path: str) -> None:
        canonical = self.require(path, PathOp.DELETE)
        if not self._lexists(canonical):
            raise not_found(path)
        await super().delete(path)
        _record_file_event(EventKind.FILE_DELETED, Rule.CONTENTS_FILE_DELETED, canonical, "deleted")

    async def delete_file(self, path: str) -> None:
        canonical = self.require(path, PathOp.DELETE)
        if not self._lexists(canonical):
            raise not_found(path)
        await super().delete_file(path)

    # -- checkpoints and trust -------------------------------------------------------------------

    def _require_existing(self, path: str, op: PathOp) -> str:
        canonical = self.require(path, op)
        if not self._lexists(canonical):
            raise not_found(path)
        return canonical

    async def create_checkpoint(self, path: str) -> dict[str, Any]:
        canonical = self._require_existing(path, PathOp.CHECKPOINT)
        if os.path.isdir(self._os(canonical)):
            # Stock copies it like a file and answers 500 (IsADirectoryError from copy2).
            raise web.HTTPError(400, f"a directory has no checkpoints: {display_path(path)}")
        checkpoint = await super().create_checkpoint(path)
        _record_file_event(
            EventKind.CHECKPOINT_CREATED,
            Rule.CONTENTS_CHECKPOINT_CREATED,
            canonical,
            "checkpointed",
            checkpoint=checkpoint.get("id") if isinstance(checkpoint, dict) else None,
        )
        return checkpoint

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        """A refused or missing path has no checkpoints to list: 404 (stock: ``[]`` for a
        missing path, the list for a hidden one)."""
        self._require_existing(path, PathOp.CHECKPOINT)
        return await super().list_checkpoints(path)

    async def restore_checkpoint(self, checkpoint_id: str, path: str) -> None:
        canonical = self._require_existing(path, PathOp.CHECKPOINT)
        await super().restore_checkpoint(checkpoint_id, path)
        # The file's content is replaced, like a save: recorded like one.
        _record_file_event(
            EventKind.FILE_WRITTEN,
            Rule.CONTENTS_FILE_WRITTEN,
            canonical,
            "restored from a checkpoint",
            checkpoint=checkpoint_id,
            **await run_sync(content_digest, self._os(canonical)),
        )

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        canonical = self._require_existing(path, PathOp.CHECKPOINT)
        await super().delete_checkpoint(checkpoint_id, path)
        _record_file_event(
            EventKind.CHECKPOINT_DELETED,
            Rule.CONTENTS_CHECKPOINT_DELETED,
            canonical,
            "checkpoint deleted",
            checkpoint=checkpoint_id,
        )

    async def trust_notebook(self, path: str) -> None:
        self._require_existing(path, PathOp.TRUST)
        await super().trust_notebook(path)
