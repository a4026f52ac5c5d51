"""The git configuration every git the server starts runs with (pure: the caller applies it).

git runs programs a repository names: ``core.fsmonitor`` (on ``git status``, ``diff``, ``add``),
hooks, diff and filter drivers. ``paths.deny`` and ``paths.protected`` keep ``.git/config`` and
``.git/hooks`` out of the contents API's reach, but git also finds a repository with no ``.git``
at all: a directory holding plain ``HEAD``, ``config``, ``objects/`` and ``refs/`` is a "bare"
repository, and with ``core.bare = false`` and ``core.worktree`` in that ``config`` it has a
work tree, so ``git status`` there runs its ``core.fsmonitor`` command. A principal with
``contents:write`` alone can write such a directory; the owner's Git panel (jupyterlab-git),
nbdime's git diff or a kernel's ``git status`` would then run the command as the server's
user. git's own answer (since 2.38) is ``safe.bareRepository = explicit``: a bare repository is
used only when named (``--git-dir``, ``GIT_DIR``), never found by walking up from the current
directory. It is honoured only from protected configuration (system, global, command line);
``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_<n>`` / ``GIT_CONFIG_VALUE_<n>`` count as command line
and reach every git started by the server's process and its children (extensions, kernels,
terminals), which inherit the environment.
"""

from __future__ import annotations

from collections.abc import Mapping

#: (key, value) pairs every git the server starts gets; see the module docstring
SAFE_GIT_CONFIG: tuple[tuple[str, str], ...] = (("safe.bareRepository", "explicit"),)


def git_config_entries(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """The ``GIT_CONFIG_KEY_<n>`` entries ``environ`` already sets: index -> (key, value)."""
    try:
        count = int(environ.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    return {
        str(i): (environ.get(f"GIT_CONFIG_KEY_{i}", ""), environ.get(f"GIT_CONFIG_VALUE_{i}", ""))
        for i in range(max(count, 0))
    }


def safe_git_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``environ`` so that git runs with :data:`SAFE_GIT_CONFIG`:
    entries appended after those it already has, which stay as they are. git takes the last
    value of a key, so an earlier ``safe.bareRepository = all`` in the server's environment
    does not undo this; nothing is added where the last value already is the wanted one (a
    server started from another one's terminal)."""
    entries = git_config_entries(environ)
    last = {key.lower(): value for key, value in entries.values()}
    wanted = [(k, v) for k, v in SAFE_GIT_CONFIG if last.get(k.lower()) != v]
    if not wanted:
        return {}
    count = len(entries)
    added: dict[str, str] = {}
    for offset, (key, value) in enumerate(wanted):
        added[f"GIT_CONFIG_KEY_{count + offset}"] = key
        added[f"GIT_CONFIG_VALUE_{count + offset}"] = value
    added["GIT_CONFIG_COUNT"] = str(count + len(wanted))
    return added
