"""What the contents manager and the file handlers share: the compiled path policy in force, the
root resolver, and the record of a refused path operation.

Its own module so that :mod:`hardened_server.enforcement.contents` (whose default
``files_handler_class`` is :class:`~hardened_server.enforcement.files.HardenedFileHandler`) and
:mod:`hardened_server.enforcement.files` (which needs these) import it, not each other: the two
used to import each other (``tests/test_layers.py`` forbids import cycles).
"""

from __future__ import annotations

import functools
import logging
import os
import stat

from hardened_server.enforcement.context import current_request
from hardened_server.enforcement.recorder import record_denial
from hardened_server.policy.decisions import Decision
from hardened_server.policy.model import PathsPolicy
from hardened_server.policy.paths import PathDecision, PathOp, PathPolicy

__all__ = [
    "RootResolver",
    "default_paths_policy",
    "path_policy_for",
    "record_path_denial",
    "root_resolver",
]

log = logging.getLogger("hardened_server.decisions")


def _log_text(text: str, limit: int = 300) -> str:
    """Like :func:`hardened_server.enforcement.recorder._safe`: nothing a client sent can start a
    log line or hide in one."""
    return text[:limit].encode("unicode_escape", "backslashreplace").decode("ascii")


def record_path_denial(decision: PathDecision | Decision, op: PathOp | str, path: str) -> None:
    """Write down one refused path operation (the manager has no request to hand).

    A log line in the shape of :func:`hardened_server.enforcement.recorder.record_denial`'s, and,
    during a request (the handler is in jupyter_server's ``CallContext``), that request's
    denial on the audit trail, once, with the operation and path as the subject.
    """
    log.warning(
        "policy denial rule=%s class=contents op=%s path=%s reason=%s",
        decision.rule_id,
        str(op),
        _log_text(path.strip("/")),
        decision.reason,
    )
    request = current_request()
    if request is not None:
        plain = decision.decision if isinstance(decision, PathDecision) else decision
        record_denial(request, plain, "", subject=f"{op} {path.strip('/')}", log_line=False)


class RootResolver:
    """``os.path.realpath`` for the paths below one served root, without resolving the root on
    every decision.

    :meth:`PathPolicy.decide <hardened_server.policy.paths.PathPolicy.decide>` resolves the
    root and then the path joined onto it; ``os.path.realpath`` walks every component of both
    from ``/`` in Python, although the root's components are the same for every request. Here
    the root's real path is computed once and checked on every call with one ``stat`` (the
    directory it leads to must still be the one resolved; if the root was swapped, it is
    resolved again). Below the root each component is ``lstat``-ed, and the first one that is a
    symlink, does not exist or is not a plain name hands the whole path to
    ``os.path.realpath``: the answer is always realpath's.
    """

    __slots__ = ("_base", "_identity", "_prefix", "real_root", "root")

    def __init__(self, root: str) -> None:
        self.root = root
        self._base = root.rstrip(os.sep)
        self._prefix = self._base + os.sep
        self._identity: tuple[int, int] | None = None
        self.real_root = root
        self._refresh()

    def _refresh(self) -> None:
        self.real_root = os.path.realpath(self.root)
        try:
            st = os.stat(self.real_root)
        except OSError:
            self._identity = None
            return
        self._identity = (st.st_dev, st.st_ino)

    def _real_root_now(self) -> str:
        try:
            st = os.stat(self.root)
        except OSError:
            self._identity = None
            return os.path.realpath(self.root)
        if (st.st_dev, st.st_ino) != self._identity:
            self._refresh()
        return self.real_root

    def __call__(self, path: str) -> str:
        real_root = self._real_root_now()
        if path == self.root:
            return real_root
        return self._below(path, real_root)

    def resolve_with_root(self, root: str, path: str) -> tuple[str, str]:
        """``(self(root), self(path))`` with the root checked once: what
        :meth:`PathPolicy.decide <hardened_server.policy.paths.PathPolicy.decide>` asks for
        on every decision (it used to cost two ``stat`` calls of the root)."""
        if root != self.root:
            return self(root), self(path)
        real_root = self._real_root_now()
        return real_root, (real_root if path == self.root else self._below(path, real_root))

    def _below(self, path: str, real_root: str) -> str:
        if self._identity is None or not path.startswith(self._prefix):
            return os.path.realpath(path)
        rest = path[len(self._prefix) :]
        names = rest.split(os.sep)
        if not _NOT_A_NAME.isdisjoint(names):  # realpath's answer, without lstat-ing first
            return os.path.realpath(path)
        current = self._base
        lstat, is_link = os.lstat, stat.S_ISLNK
        for name in names:
            current = current + os.sep + name
            try:
                if is_link(lstat(current).st_mode):
                    return os.path.realpath(path)
            except (OSError, ValueError):
                return os.path.realpath(path)
        return real_root.rstrip(os.sep) + os.sep + rest


_NOT_A_NAME = frozenset({"", ".", ".."})


@functools.lru_cache(maxsize=64)
def root_resolver(root: str) -> RootResolver:
    """The :class:`RootResolver` of an absolute root (one per root: the contents root, each
    static directory)."""
    return RootResolver(root)


def path_policy_for(paths: PathsPolicy) -> PathPolicy:
    """The compiled :class:`PathPolicy` of a ``[paths]`` section (compiled once per section).

    Every decision asks for it: the section in force is answered by identity (hashing the
    policy for the cache costs more than the rules of a decision); a reload brings a new
    section object, which goes through the cache."""
    global _last_path_policy
    last = _last_path_policy
    if last is not None and last[0] is paths:
        return last[1]
    compiled = _compile_path_policy(paths)
    _last_path_policy = (paths, compiled)
    return compiled


_last_path_policy: tuple[PathsPolicy, PathPolicy] | None = None


@functools.lru_cache(maxsize=16)
def _compile_path_policy(paths: PathsPolicy) -> PathPolicy:
    return PathPolicy.from_paths_policy(paths)


def default_paths_policy() -> PathsPolicy:
    """``[paths]`` of the shipped default profile: what a manager without a hardened parent uses
    (never "no policy")."""
    from hardened_server.policy.loader import shipped_policy

    return shipped_policy().paths
