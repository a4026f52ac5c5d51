"""Issue #16: jupyterlab-git under the strict default, through its reviewed extension profile
(policies/extensions/jupyterlab_git.toml).

* the owner gets the status of a git repository through ``/git/<repo>/status`` and commits;
* every route and method of the profile refuses (403, HS-SCOPE-001) a token that lacks any one
  of the scopes the profile asks for, and the admin routes refuse every scope but admin;
* a contents-write token cannot reach ``/git/config`` (git's configuration names commands) nor,
  without kernels:execute, run git at all;
* ``policy show`` and ``policy explain scopes.routes`` name the profile as the source.

That every route jupyterlab-git registers is mapped by the profile (and nothing else) is
test_profiles.py's job (``PROFILED``).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from hardened_server.enforcement.identity.tokenstore import STORE_FILENAME, TokenStore
from hardened_server.policy.loader import read_extension_profile
from hardened_server.policy.rules import Rule
from hardened_server.policy.scopes import ADMIN, ALL_SCOPES, KNOWN_SCOPES
from tests.support.server import ServerProcess, isolated_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PROFILE = "jupyterlab_git"
WRITE = ("contents:read", "contents:write")
#: the contents scopes a client without kernels:execute may hold: never enough to run git
CONTENTS_ONLY = frozenset(WRITE)


def _scopes(value: str | list[str]) -> frozenset[str]:
    return frozenset([value] if isinstance(value, str) else value)


def _entries() -> list[tuple[str, str, frozenset[str]]]:
    routes = read_extension_profile(PROFILE).values["scopes.routes"]
    return [
        (pattern, method, _scopes(scopes))
        for pattern, methods in sorted(routes.items())
        for method, scopes in sorted(methods.items())
    ]


ENTRIES = _entries()


def _url(pattern: str, repo: str) -> str:
    """A concrete URL for a route pattern: the repository as the ``path`` group, ``origin`` as
    a remote name."""
    url = pattern.replace("(?P<path>(?:(?:/[^/]+)+|/?))", f"/{repo}")
    return url.replace(r"(?P<name>\w+)", "origin")


class Tokens:
    """Stored tokens of the shared ecosystem server, one per scope set."""

    def __init__(self, server: ServerProcess) -> None:
        self.store = TokenStore(Path(server.env["JUPYTER_RUNTIME_DIR"]) / STORE_FILENAME)
        self.made: dict[frozenset[str], str] = {}

    def __call__(self, scopes: frozenset[str]) -> str:
        if scopes not in self.made:
            name = f"git-{len(self.made)}"
            self.made[scopes] = self.store.create(name, tuple(sorted(scopes)), 3600)[0]
        return self.made[scopes]


@pytest.fixture(scope="module")
def tokens(eco_server: ServerProcess) -> Tokens:
    return Tokens(eco_server)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", os.fspath(repo), *args], check=True, capture_output=True,
                   timeout=60)  # fmt: skip


@pytest.fixture(scope="module")
def repo(eco_server: ServerProcess) -> str:
    """A git repository in the server's root: one commit, one modified and one new file."""
    path = eco_server.root / "gitrepo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "Test Owner")
    _git(path, "config", "user.email", "owner@example.org")
    (path / "tracked.txt").write_text("one\n")
    _git(path, "add", "tracked.txt")
    _git(path, "commit", "-q", "-m", "first")
    (path / "tracked.txt").write_text("two\n")
    (path / "new.txt").write_text("new\n")
    return path.name


def _call(server: ServerProcess, method: str, url: str, token: str) -> requests.Response:
    return requests.request(
        method, server.url + url, json={}, timeout=60,
        headers={"Authorization": f"token {token}"},
    )  # fmt: skip


def _refused_for_scope(response: requests.Response) -> bool:
    return response.status_code == 403 and Rule.SCOPE_MISSING in response.text


def test_owner_gets_the_status_of_a_repository(eco_server: ServerProcess, repo: str) -> None:
    response = _call(eco_server, "POST", f"/git/{repo}/status", eco_server.token)
    assert response.status_code == 200, response.text
    files = {f["to"]: (f["x"], f["y"]) for f in response.json()["files"]}
    assert files["tracked.txt"] == (" ", "M")
    assert files["new.txt"] == ("?", "?")


def test_a_token_with_the_profiles_scopes_adds_and_commits(
    eco_server: ServerProcess, repo: str, tokens: Tokens
) -> None:
    """contents:read + contents:write + kernels:execute (no admin) is enough to stage and
    commit: the profile is not stricter than it says."""
    token = tokens(frozenset({*WRITE, "kernels:execute"}))
    added = requests.post(
        f"{eco_server.url}/git/{repo}/add", json={"add_all": True}, timeout=60,
        headers={"Authorization": f"token {token}"},
    )  # fmt: skip
    assert added.status_code == 200, added.text
    committed = requests.post(
        f"{eco_server.url}/git/{repo}/commit", json={"commit_msg": "second"}, timeout=60,
        headers={"Authorization": f"token {token}"},
    )  # fmt: skip
    assert committed.status_code == 200, committed.text
    log = subprocess.run(["git", "-C", os.fspath(eco_server.root / repo), "log", "--format=%s"],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    assert log.stdout.split() == ["second", "first"]


def test_a_contents_write_token_cannot_set_git_config_or_run_git(
    eco_server: ServerProcess, repo: str, tokens: Tokens
) -> None:
    """git config names commands (core.hooksPath, core.sshCommand, credential.helper), and git
    runs what a repository it is pointed at says: a token that may only edit files reaches
    neither."""
    token = tokens(CONTENTS_ONLY)
    config = requests.post(
        f"{eco_server.url}/git/{repo}/config",
        json={"options": {"user.name": "mallory"}}, timeout=60,
        headers={"Authorization": f"token {token}"},
    )  # fmt: skip
    assert _refused_for_scope(config), config.text
    assert "admin" in config.text
    status = _call(eco_server, "POST", f"/git/{repo}/status", token)
    assert _refused_for_scope(status), status.text
    assert "kernels:execute" in status.text
    name = subprocess.run(["git", "-C", os.fspath(eco_server.root / repo), "config", "user.name"],
                          capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    assert name.stdout.strip() == "Test Owner"


def _short_of(required: frozenset[str]) -> list[frozenset[str]]:
    """For each scope ``required`` asks for, a token holding every other scope but that one (and
    never admin, which implies them all): each scope of the entry is needed on its own."""
    return [frozenset(ALL_SCOPES - {ADMIN, scope}) for scope in sorted(required)]


@pytest.mark.parametrize(
    ("pattern", "method", "required"),
    ENTRIES,
    ids=[f"{m} {p.split(')')[-1] or p}" for p, m, _ in ENTRIES],
)
def test_every_profile_entry_refuses_a_token_short_of_its_scopes(
    eco_server: ServerProcess, repo: str, tokens: Tokens,
    pattern: str, method: str, required: frozenset[str],
) -> None:  # fmt: skip
    url = _url(pattern, repo)
    for scopes in _short_of(required):
        response = _call(eco_server, method, url, tokens(scopes))
        assert _refused_for_scope(response), (method, url, sorted(scopes), response.text)


def test_the_profile_maps_each_route_once_with_known_scopes() -> None:
    assert len(ENTRIES) == len({(p, m) for p, m, _ in ENTRIES})
    assert {m for _, m, _ in ENTRIES} <= {"GET", "POST", "DELETE"}
    for _, _, required in ENTRIES:
        assert required
        assert required <= KNOWN_SCOPES
    # every route that runs git in a repository needs what running code needs
    repository_routes = [(p, r) for p, _, r in ENTRIES if "(?P<path>" in p]
    assert repository_routes
    for pattern, required in repository_routes:
        assert ADMIN in required or "kernels:execute" in required, pattern


def _hs(eco_python: Path, tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [os.fspath(eco_python), "-m", "hardened_server", "policy", *args],
        env=isolated_env(tmp_path / "jupyter"), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_policy_show_and_explain_name_the_git_profile(eco_python: Path, tmp_path: Path) -> None:
    shown = _hs(eco_python, tmp_path, "show")
    assert "extension profile: jupyterlab_git" in shown
    explained = _hs(eco_python, tmp_path, "explain", "scopes.routes")
    lines = [line for line in explained.splitlines() if "/git" in line]
    assert lines, explained
    source = re.compile(r"jupyterlab_git\.toml \(extension profile for jupyterlab_git\)")
    assert source.search(explained), explained
    assert any("/config" in line for line in lines), explained



def _put(server: ServerProcess, token: str, path: str, model: dict[str, str]) -> None:
    response = requests.put(
        f"{server.url}/api/contents/{path}", json=model, timeout=60,
        headers={"Authorization": f"token {token}"},
    )  # fmt: skip
    assert response.status_code in (200, 201), response.text


def test_a_bare_layout_written_through_contents_does_not_run_when_the_owner_runs_git(
    eco_server: ServerProcess, tokens: Tokens, tmp_path: Path
) -> None:
    """A contents:write token writes plain files HEAD and config (core.worktree, core.fsmonitor
    = a command) and folders objects/ and refs/: git takes that for a repository with a work
    tree and runs its fsmonitor on `git status`. The owner's Git panel asks for the status of
    the folder it shows; the server's git runs with safe.bareRepository=explicit, so the
    command does not run. (That plain git would run it is checked first: the layout is live.)"""
    marker = tmp_path / "fsmonitor-ran"
    token = tokens(CONTENTS_ONLY)
    text = {"type": "file", "format": "text"}
    _put(eco_server, token, "planted", {"type": "directory"})
    for folder in ("objects", "refs", "refs/heads"):
        _put(eco_server, token, f"planted/{folder}", {"type": "directory"})
    _put(eco_server, token, "planted/HEAD", {**text, "content": "ref: refs/heads/main\n"})
    config = (
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = .\n"
        f"\tfsmonitor = \"touch {marker}; false\"\n"
    )
    _put(eco_server, token, "planted/config", {**text, "content": config})
    planted = eco_server.root / "planted"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GIT_CONFIG")}
    subprocess.run(["git", "status"], cwd=planted, env=clean, capture_output=True, timeout=60,
                   check=False)  # fmt: skip
    assert marker.exists(), "the planted layout is not a live repository: the test proves nothing"
    marker.unlink()

    status = _call(eco_server, "POST", "/git/planted/status", eco_server.token)
    assert not marker.exists(), status.text
    assert "safe.bareRepository" in status.text, status.text
