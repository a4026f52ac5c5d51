"""The path decision for handlers that serve files straight from disk.

Every tornado ``StaticFileHandler`` subclass funnels the file it is about to open through
``validate_absolute_path(root, absolute_path)``: jupyter_server's ``AuthenticatedFileHandler``
(``/files`` for file-based contents managers), ``FileFindHandler`` (``/static``, extension static
paths, JupyterLab's labextensions and themes), ``KernelSpecResourceHandler`` (``/kernelspecs``) and
``APISpecHandler``. :class:`PathGuardMixin` puts the one
:class:`~hardened_server.policy.paths.PathPolicy` in front of that hook: the requested path,
relative to the root it would be served from, is decided (``read`` for user content under
``/files``, ``serve-static`` for everything else) before tornado touches the file system, and a
refusal is the plain 404 a missing file gets, so the two cannot be told apart. Stock serves
``/static/.anything`` and kernelspec dotfiles, and checks hidden names on ``/files`` only.

:class:`HardenedFileHandler` is ``/files`` itself (the default ``files_handler_class`` of
:class:`~hardened_server.enforcement.contents.HardenedContentsManager`). It also keeps user files
from running as active content in the server's origin (issue 3, item 3):

* scripts and documents that run script when opened (JavaScript, HTML, XHTML, XML and XSLT) are
  served as ``text/plain``: ``<script src="/files/x.js">`` and a link to ``/files/x.html`` must
  not execute a user's file with the server's cookies (and ``/view`` then shows the source);
* SVG keeps its image type, so ``<img>`` and Markdown images still render it (scripts never run
  in an SVG image), but is an attachment, so opening it as a page downloads it;
* every response carries ``X-Content-Type-Options: nosniff``; ``?download`` is an attachment.

:func:`path_guard_mixins` is what ``wrap_handler`` calls to give every static route, extension
ones included, the mixin.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from jupyter_core.paths import is_hidden
from jupyter_server.base.handlers import AuthenticatedFileHandler
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.utils import filefind
from tornado import web

from hardened_server.enforcement.pathpolicy import (
    default_paths_policy,
    path_policy_for,
    record_path_denial,
    root_resolver,
)
from hardened_server.enforcement.recorder import record_denial
from hardened_server.enforcement.runtime import SETTINGS_KEY
from hardened_server.policy.decisions import Decision
from hardened_server.policy.model import Policy
from hardened_server.policy.paths import (
    PathDecision,
    PathOp,
    PathPolicy,
    canonicalize,
    is_within,
)
from hardened_server.policy.rules import Rule

__all__ = [
    "PATH_GUARDED_BASES",
    "HardenedFileHandler",
    "PathGuardMixin",
    "path_guard_mixins",
]

# Handler classes whose file access goes through validate_absolute_path.
PATH_GUARDED_BASES: tuple[type, ...] = (web.StaticFileHandler,)


def path_guard_mixins(cls: type) -> tuple[type, ...]:
    """The mixins ``wrap_handler`` puts between the hardened mixin and ``cls``:
    ``(PathGuardMixin,)`` for a static-file handler that does not have it yet, else ``()``
    (listing it twice would make the MRO inconsistent)."""
    if issubclass(cls, PATH_GUARDED_BASES) and not issubclass(cls, PathGuardMixin):
        return (PathGuardMixin,)
    return ()


def _identity(path: str) -> str:
    return path


# Mixed in before a StaticFileHandler subclass (path_guard_mixins): to the type checker it is one.
if TYPE_CHECKING:
    _StaticFileHandlerBase = web.StaticFileHandler
else:
    _StaticFileHandlerBase = object


def _below(base: str, absolute_path: str) -> str:
    """``absolute_path`` relative to ``base`` (a root it is within, :func:`is_within`), with
    ``/`` separators, ``""`` for the root itself: ``os.path.relpath``'s answer. Both are
    normalised absolute paths here, so the part after the root and its separator is that
    answer without relpath's second ``abspath`` of each, split and common-prefix scan (a fifth
    of the guard's own time on ``GET /files``, issue #22). Anything else is relpath's."""
    target = os.path.abspath(absolute_path)
    prefix = base if base.endswith(os.sep) else base + os.sep
    if target == base:
        return ""
    if target.startswith(prefix) and os.path.normcase(base) == base:
        return target[len(prefix) :].replace(os.sep, "/")
    located = os.path.relpath(absolute_path, base).replace(os.sep, "/")
    return "" if located == "." else located


class PathGuardMixin(_StaticFileHandlerBase):
    """``validate_absolute_path`` asks the path policy first (404 on refusal), then tornado."""

    # -- which policy, which op --------------------------------------------------------------

    def path_guard_policy(self) -> PathPolicy:
        settings = self.settings
        runtime = settings.get(SETTINGS_KEY)
        policy = getattr(getattr(runtime, "current", None), "policy", None)
        if isinstance(policy, Policy):
            return path_policy_for(policy.paths)
        # The hardened contents manager's own policy (HardenedContentsManager.path_policy),
        # asked by attribute: importing the manager here would be an import cycle.
        managed = getattr(settings.get("contents_manager"), "path_policy", None)
        if isinstance(managed, PathPolicy):
            return managed
        return path_policy_for(default_paths_policy())

    def path_guard_op(self) -> PathOp:
        """``read`` for user content (``/files``), ``serve-static`` for application assets."""
        if isinstance(self, AuthenticatedFileHandler | FilesHandler):
            return PathOp.READ
        return PathOp.SERVE_STATIC

    def _pg_resolver(self, root: str) -> Any:
        # FileFindHandler(follow_dir_symlinks=True) serves JupyterLab's labextensions, which
        # `jupyter labextension develop` links to a source tree outside the root; tornado
        # confines those links itself (allowed_symlink_directory). Names are still decided.
        if getattr(self, "follow_dir_symlinks", False):
            return _identity
        # os.path.realpath's answer, without resolving the (fixed) root on every request.
        return root_resolver(root)

    # -- the hook ------------------------------------------------------------------------------

    def validate_absolute_path(self, root: Any, absolute_path: str) -> str | None:
        """Decide before tornado stats, resolves or redirects anything.

        ``root`` is a directory, or (``FileFindHandler``) the tuple of search roots, of which
        the one that holds ``absolute_path`` counts. Both the path as requested (``self.path``,
        already percent-decoded by tornado) and the path as located below the root are
        decided, so a subclass that maps one onto another cannot slip a refused file past.
        """
        if absolute_path:
            absolute_path = self._pg_own_copy(root, absolute_path)
            self._pg_guard(root, absolute_path)
        return super().validate_absolute_path(root, absolute_path)

    def _resolve_symlink_target(  # type: ignore[override]  # tornado's staticmethod, via self
        self, absolute_path: str, allowed_symlink_directories: list[str], path_message: str
    ) -> str:
        """tornado's symlink check (``StaticFileHandler._resolve_symlink_target``: the file's
        real path must stay inside the directory it is served from), with the root's
        :class:`~hardened_server.enforcement.pathpolicy.RootResolver` in place of its two
        ``os.path.realpath`` calls.

        tornado resolves the file and the root from ``/`` on every request, in Python: ten
        ``lstat`` calls for a file one level below a root four levels deep, 33 µs of each
        ``GET /files`` (issue #22), for stock as well. The resolver's answers are realpath's
        (one ``stat`` of the root, an ``lstat`` per component below it, realpath itself at the
        first symlink), so the check, its 403 and the path returned are tornado's. A handler
        that follows directory symlinks (``FileFindHandler(follow_dir_symlinks=True)``), a
        configured list of directories or a root that is not a normalised absolute path is
        tornado's own check."""
        if getattr(self, "follow_dir_symlinks", False) or len(allowed_symlink_directories) != 1:
            return super()._resolve_symlink_target(
                absolute_path, allowed_symlink_directories, path_message
            )
        allowed = allowed_symlink_directories[0]
        base = allowed.rstrip(os.sep) if isinstance(allowed, str) else ""
        if not base or not os.path.isabs(base) or os.path.normpath(base) != base:
            return super()._resolve_symlink_target(
                absolute_path, allowed_symlink_directories, path_message
            )
        real_root, resolved_path = root_resolver(base).resolve_with_root(base, absolute_path)
        if not real_root.endswith(os.sep):
            real_root += os.sep
        if (resolved_path + os.sep).startswith(real_root):
            return resolved_path
        # tornado's error, word for word: a caller cannot tell which way a path left the root.
        raise web.HTTPError(403, "%s is not in root static directory", path_message)

    #: Files found again in the search roots of the handler that asked: (roots, path) -> file.
    _pg_refound: ClassVar[dict[tuple[tuple[str, ...], str], str]] = {}

    def _pg_own_copy(self, root: Any, absolute_path: str) -> str:
        """The file under this handler's own search roots when the shared lookup cache answered
        with another handler's.

        jupyter_server's ``FileFindHandler.get_absolute_path`` caches what it found in one dict
        shared by every subclass and keyed by the URL path alone (``_static_paths``,
        jupyter_server/base/handlers.py). JupyterLab and Notebook 7 ship files of the same
        content-hashed names (their fonts: ``/static/lab/<hash>.woff2`` and
        ``/static/notebook/<hash>.woff2``), so whichever front-end asked second was handed the
        first one's file, outside its own roots: stock serves it, the guard refused it (404,
        HS-PATH-004) and Notebook 7 opened after Lab, or Lab after Notebook 7, had no icon
        fonts (issue #16, tests/e2e/ecosystem/test_browser_walk.py). Such a file is looked up
        again in this handler's roots (once: kept by roots and path); what is not there stays
        outside and is refused as before. A single-directory root is tornado's own lookup,
        which shares nothing: left alone, as is a path inside the handler's roots."""
        if isinstance(root, str) or not isinstance(getattr(self, "path", None), str):
            return absolute_path
        roots = tuple(r for r in root if isinstance(r, str))
        if self._pg_matching_root(self.path_guard_roots(root), absolute_path) is not None:
            return absolute_path
        key = (roots, self.path)
        refound = self._pg_refound.get(key)
        if refound is None:
            try:
                refound = os.path.abspath(filefind(self.path, roots))
            except OSError:
                return absolute_path  # not in this handler's roots: refused by the guard
            self._pg_refound[key] = refound
        return refound

    def parse_url_path(self, url_path: str) -> str:
        """The URL path, decided lexically (``..``, control characters, drive letters ...)
        before the handler maps it onto a file: a subclass may parse it first and fail on what
        it did not expect. Voila's ``TemplateStaticFileHandler`` splits it and asserts on the
        parts, so ``/voila/templates/..%2f../static/x`` was a 500 with a traceback (issue
        #16). Refused the way :meth:`validate_absolute_path` refuses: 404, with a record."""
        canonical = canonicalize(url_path, decoded=True)
        if isinstance(canonical, Decision):
            self._pg_refuse(PathDecision(canonical), self.path_guard_op(), url_path)
        return super().parse_url_path(url_path)

    def path_guard_roots(self, root: Any) -> list[str]:
        """The directories this handler serves from: ``root`` (a directory, or
        ``FileFindHandler``'s tuple of search roots), then the handler's own ``roots`` list if
        it keeps one. Voila's ``TemplateStaticFileHandler`` hands tornado a placeholder root
        (``/fake-root/voila-template-system/``) and looks files up in ``self.roots``, the
        static directories of the requested template; its ``MultiStaticFileHandler`` keeps
        its directories there too. Judging the file against the placeholder alone refused
        every Voila template asset (issue #16)."""
        roots = [root] if isinstance(root, str) else list(root or ())
        own = getattr(self, "roots", None)
        if isinstance(own, list | tuple):
            roots.extend(r for r in own if isinstance(r, str) and r not in roots)
        return roots

    def _pg_guard(self, root: Any, absolute_path: str) -> None:
        matched = self._pg_matching_root(self.path_guard_roots(root), absolute_path)
        if matched is None:
            outside = Decision(
                False,
                Rule.PATH_ESCAPES_ROOT,
                "the file is outside every directory this handler serves from",
            )
            self._pg_refuse(PathDecision(outside), PathOp.SERVE_STATIC, absolute_path)
        op = self.path_guard_op()
        policy = self.path_guard_policy()
        resolve = self._pg_resolver(matched)
        located = _below(matched, absolute_path)
        requested = getattr(self, "path", None)
        candidates = [located]
        if isinstance(requested, str):
            if os.sep != "/":
                requested = requested.replace(os.sep, "/")
            if requested != located:
                candidates.insert(0, requested)
        for candidate in candidates:
            decision = policy.decide(candidate, op, root=matched, resolve=resolve)
            if not decision.allowed:
                self._pg_refuse(decision, op, candidate)

    @staticmethod
    def _pg_matching_root(roots: list[str], absolute_path: str) -> str | None:
        for candidate in roots:
            base = os.path.abspath(candidate)
            if is_within(base, os.path.abspath(absolute_path)):
                return base
        return None

    def _pg_refuse(self, decision: PathDecision | None, op: PathOp, path: str) -> NoReturn:
        if decision is not None:
            deny = getattr(self, "_hs_deny", None)  # the wrapped handler's audit hook
            if callable(deny):
                deny(decision.decision)
            elif self.request is not None:
                route_class = "files" if op == PathOp.READ else "static"
                record_denial(self.request, decision.decision, route_class)
            else:  # pragma: no cover - tornado always has a request here
                record_path_denial(decision, op, path)
        # Exactly what tornado raises for a file that does not exist.
        raise web.HTTPError(404)


# Served as text/plain: a browser executes these (as a script, or as a page with scripts) in
# the server's origin.
_SCRIPT_OR_DOCUMENT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "application/xslt+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/ecmascript",
        "application/ecmascript",
        "text/jscript",
        "application/x-ecmascript",
        "message/rfc822",  # .mht/.mhtml: a saved web page
        "multipart/related",
    }
)
_SCRIPT_OR_DOCUMENT_EXTENSIONS = frozenset(
    {
        ".html",
        ".htm",
        ".shtml",
        ".xhtml",
        ".xht",
        ".xml",
        ".xsl",
        ".xslt",
        ".js",
        ".mjs",
        ".cjs",
        ".jsm",
        ".mht",
        ".mhtml",
    }
)
# Kept as images (they render in <img>, where scripts never run) but never shown as a page.
_ATTACHMENT_TYPES = frozenset({"image/svg+xml"})
_ATTACHMENT_EXTENSIONS = frozenset({".svg", ".svgz"})

PLAIN_TEXT = "text/plain; charset=UTF-8"


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_script_or_document(name: str, content_type: str) -> bool:
    base = _base_type(content_type)
    ext = os.path.splitext(name)[1].lower()
    return (
        base in _SCRIPT_OR_DOCUMENT_TYPES
        or (base.endswith("+xml") and base not in _ATTACHMENT_TYPES)
        or ext in _SCRIPT_OR_DOCUMENT_EXTENSIONS
    )


def is_attachment_only(name: str, content_type: str) -> bool:
    return (
        _base_type(content_type) in _ATTACHMENT_TYPES
        or os.path.splitext(name)[1].lower() in _ATTACHMENT_EXTENSIONS
    )


#: Whether ``stat`` reports BSD file flags (``UF_HIDDEN``, macOS and the BSDs): there
#: jupyter_core's ``is_hidden`` looks at them on every directory up to the root.
_STAT_HAS_FLAGS = hasattr(os.stat_result, "st_flags")


def stock_hidden(abs_path: str, abs_root: str) -> bool:
    """jupyter_core's ``is_hidden(abs_path, abs_root)`` for the regular file tornado's
    ``validate_absolute_path`` settled on (resolved, inside the root), by string.

    ``is_hidden`` builds a dozen ``pathlib`` objects and calls ``stat`` on the file and on each
    directory up to the root: 38 µs of each ``GET /files`` (issue #22), for stock as well. What
    it can answer for a regular file inside the root, where ``stat`` has no flags (Linux): hidden
    exactly when a component below the root starts with ``.`` (its directory checks look at the
    directory flags and at whether a directory can be listed; neither applies to a file, and the
    ``lstat`` of a directory the file was just found in succeeds). Anything else, a path not
    written below the root (a root reached through a symlink: ``is_hidden`` raises, as for
    stock) or a system with file flags, is ``is_hidden``'s own answer."""
    prefix = abs_root if abs_root.endswith(os.sep) else abs_root + os.sep
    if _STAT_HAS_FLAGS or not abs_path.startswith(prefix) or os.path.normpath(abs_path) != abs_path:
        return is_hidden(abs_path, abs_root)
    return any(part.startswith(".") for part in abs_path[len(prefix) :].split(os.sep))


class _StockHiddenCheck(_StaticFileHandlerBase):
    """jupyter_server's ``AuthenticatedFileHandler.validate_absolute_path`` (tornado's checks,
    then a 404 for a hidden file unless ``ContentsManager.allow_hidden``), with
    :func:`stock_hidden` in place of ``is_hidden``: same answer, same log line."""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        abs_path = web.StaticFileHandler.validate_absolute_path(self, root, absolute_path)
        if abs_path is None:  # tornado redirected (a directory with a default file)
            return None
        handler: Any = self
        if not handler.contents_manager.allow_hidden and stock_hidden(
            abs_path, os.path.abspath(root)
        ):
            handler.log.info(
                "Refusing to serve hidden file, via 404 Error, use flag "
                "'ContentsManager.allow_hidden' to enable"
            )
            raise web.HTTPError(404)
        return abs_path


class HardenedFileHandler(  # type: ignore[misc]  # the mixin's validate_absolute_path: str here
    PathGuardMixin, _StockHiddenCheck, AuthenticatedFileHandler
):
    """``/files``: the path policy (``read``), and user files never run as active content."""

    def _pg_names(self) -> tuple[str, str]:
        """The name as requested and the name of the file served (tornado resolves symlinks:
        ``notes.txt -> page.html`` is served with page.html's type)."""
        requested = os.path.basename(self.path or "")
        return requested, os.path.basename(self.absolute_path or "") or requested

    #: (names, type) of the last get_content_type: tornado's set_headers and set_extra_headers
    #: both ask, and mimetypes' guess is not free.
    _pg_content_type: tuple[tuple[Any, ...], str] | None = None

    def get_content_type(self) -> str:
        names = self._pg_names()
        key = (self.absolute_path, *names)
        cached = self._pg_content_type
        if cached is not None and cached[0] == key:
            return cached[1]
        content_type = super().get_content_type()
        if any(is_script_or_document(name, content_type) for name in names):
            content_type = PLAIN_TEXT
        self._pg_content_type = (key, content_type)
        return content_type

    def set_extra_headers(self, path: str) -> None:
        super().set_extra_headers(path)
        self.set_header("X-Content-Type-Options", "nosniff")
        requested, served = self._pg_names()
        content_type = self.get_content_type()
        if is_attachment_only(requested, content_type) or is_attachment_only(served, ""):
            self.set_attachment_header(requested)
