"""One path policy for every file access, over real HTTP (issue 5).

A real server on 127.0.0.1 with ``HardenedContentsManager`` serves a temporary root that holds
secrets every way stock jupyter_server leaks them (research notes §2.5): dot-directories, a
``paths.deny`` glob, innocently named symlinks into a hidden directory and out of the root, a
sibling ``<root>secret`` directory (CVE-2026-35397) and the runtime file with the server token
(CVE-2022-29241). Every entry point that names a path is then driven with every bypass class,
over raw sockets so that no client normalises ``..``, ``%2e`` or invalid bytes away, and checked
three ways: a 4xx answer, no secret's marker anywhere in the response, and the file system
unchanged (a snapshot before and after every request).

A refused path must also be indistinguishable from a missing one: the same path answers
byte-for-byte the same (status and body) whether the secret is there or not, and a symlink
into ``.hiddendir`` answers exactly like the same name once the link is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.live

CM = (
    "--ServerApp.contents_manager_class="
    "hardened_server.enforcement.contents.HardenedContentsManager"
)
NO_TRASH = "--FileContentsManager.delete_to_trash=False"  # a refused delete must not even try

MARKERS = {
    "ssh": "MARKER-SSH-PRIVATE-KEY-5b1e",
    "hidden": "MARKER-HIDDEN-FILE-93aa",
    "hidden_nb": "MARKER-HIDDEN-NOTEBOOK-c4d0",
    "pem": "MARKER-PEM-SECRET-11f2",
    "outside": "MARKER-ROOTSECRET-7d3c",
    "token": "MARKER-RUNTIME-TOKEN-e8b9",
    "static": "MARKER-STATIC-HIDDEN-40fe",
    "kernelspec": "MARKER-KERNELSPEC-HIDDEN-2a77",
}
RUNTIME_JSON = ".local/share/jupyter/runtime/jpserver-1234.json"
CWD_LOGGER = "import os; open(os.environ['HS_CWD_LOG'], 'a').write(os.getcwd() + chr(10))"


def notebook(text: str) -> str:
    return json.dumps(
        {
            "cells": [{"cell_type": "markdown", "id": "c1", "metadata": {}, "source": text}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def build_tree(workdir: Path, root: Path) -> dict[str, Path]:
    """The served root, the sibling ``rootsecret``, an extra static directory, a kernelspec."""
    (root / ".ssh").mkdir()
    (root / ".ssh/id_rsa").write_text(MARKERS["ssh"])
    (root / ".ssh/authorized_keys").write_text("ssh-ed25519 AAAA original\n")
    (root / ".hiddendir").mkdir()
    (root / ".hiddendir/secret.txt").write_text(MARKERS["hidden"])
    (root / ".hiddendir/nb.ipynb").write_text(notebook(MARKERS["hidden_nb"]))
    runtime = root / RUNTIME_JSON
    runtime.parent.mkdir(parents=True)
    runtime.write_text(json.dumps({"token": MARKERS["token"], "pid": 1234}))
    (root / "secret.pem").write_text(MARKERS["pem"])
    (root / "ok.txt").write_text("hello, public file\n")
    (root / "nb.ipynb").write_text(notebook("public notebook"))
    (root / "__pycache__").mkdir()
    (root / "__pycache__/m.cpython-311.pyc").write_bytes(b"\0pyc")
    (root / "work").mkdir()
    (root / "linkssh").symlink_to(".ssh")
    (root / "linkhidden").symlink_to(".hiddendir")
    (root / "innocent.txt").symlink_to(".hiddendir/secret.txt")
    (root / "innocent.ipynb").symlink_to(".hiddendir/nb.ipynb")
    (root / "outlink").symlink_to("../rootsecret")
    (root / "outfile.txt").symlink_to("../rootsecret/secret.txt")
    (root / "goodlink.txt").symlink_to("ok.txt")
    secret_dir = workdir / "rootsecret"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text(MARKERS["outside"])
    (secret_dir / "secret.ipynb").write_text(notebook(MARKERS["outside"]))
    static = workdir / "static"
    static.mkdir()
    (static / "hs-visible.txt").write_text("public static asset\n")
    (static / ".hs-hidden.txt").write_text(MARKERS["static"])
    (static / "hs-secret.pem").write_text(MARKERS["static"])
    (static / "hs-outlink.txt").symlink_to(secret_dir / "secret.txt")
    kernels = workdir / "jupyter" / "data" / "kernels" / "hs-test"
    kernels.mkdir(parents=True)
    # A "kernel" that writes down the directory it was started in, then exits.
    argv = [sys.executable, "-c", CWD_LOGGER, "{connection_file}"]
    spec = {"argv": argv, "display_name": "HS", "language": "python"}
    spec["env"] = {"HS_CWD_LOG": str(workdir / "kernel-cwd.log")}
    (kernels / "kernel.json").write_text(json.dumps(spec))
    (kernels / ".hs-secret.txt").write_text(MARKERS["kernelspec"])
    (kernels / "hs-outlink.txt").symlink_to(secret_dir / "secret.txt")
    return {"root": root, "rootsecret": secret_dir, "static": static, "kernels": kernels}


# -- raw HTTP: nothing between the test and the server normalises the request ---------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        line, _, rest = data.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def send(
    server: ServerProcess,
    method: str,
    target: str | bytes,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    auth: bool = True,
) -> Reply:
    """One request on a fresh connection, the target sent byte for byte as given."""
    if isinstance(target, str):
        target = target.encode("ascii")
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [
        method.encode("ascii") + b" " + target + b" HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}".encode(),
        b"Connection: close",
        b"Accept: */*",
        f"Content-Length: {len(payload)}".encode(),
    ]
    if body is not None:
        lines.append(b"Content-Type: application/json")
    if auth and server.token:
        lines.append(f"Authorization: token {server.token}".encode())
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}".encode())
    request = b"\r\n".join(lines) + b"\r\n\r\n" + payload
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body_bytes = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    if parsed.get("transfer-encoding", "").lower() == "chunked":
        body_bytes = _dechunk(body_bytes)
    return Reply(int(status_line.split()[1]), parsed, body_bytes, raw)


def leaked(reply: Reply) -> list[str]:
    return [name for name, marker in MARKERS.items() if marker.encode() in reply.raw]


# -- file system snapshots -------------------------------------------------------------------------


def snapshot(*bases: Path) -> dict[str, tuple[Any, ...]]:
    """Everything below ``bases``: kind, size, content hash and mtime (links: their target)."""
    out: dict[str, tuple[Any, ...]] = {}
    for base in bases:
        out[str(base)] = ("dir", base.stat().st_mtime_ns)
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                path = Path(dirpath, name)
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    out[str(path)] = ("link", os.readlink(path))
                elif stat.S_ISDIR(st.st_mode):
                    out[str(path)] = ("dir", st.st_mtime_ns)
                else:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    out[str(path)] = ("file", st.st_size, st.st_mtime_ns, digest)
    return out


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [
        f"{k}: {before.get(k)} -> {after.get(k)}" for k in keys if before.get(k) != after.get(k)
    ]


# -- the servers -----------------------------------------------------------------------------------


@dataclass
class Site:
    server: ServerProcess
    dirs: dict[str, Path]

    @property
    def root(self) -> Path:
        return self.dirs["root"]

    def watched(self) -> tuple[Path, ...]:
        return (
            self.dirs["root"],
            self.dirs["rootsecret"],
            self.dirs["static"],
            self.dirs["kernels"],
        )

    def send(self, method: str, target: str | bytes, **kwargs: Any) -> Reply:
        return send(self.server, method, target, **kwargs)

    def unchanged(self, method: str, target: str | bytes, **kwargs: Any) -> Reply:
        """Send, and fail unless the watched trees are exactly as before."""
        before = snapshot(*self.watched())
        reply = self.send(method, target, **kwargs)
        changes = diff(before, snapshot(*self.watched()))
        assert not changes, f"{method} {target!r} changed the file system: {changes}"
        return reply


def start_site(workdir: Path, extra_args: list[str], policy_text: str | None = None) -> Site:
    args = [CM, NO_TRASH, f"--ServerApp.extra_static_paths={workdir / 'static'}", *extra_args]
    if policy_text is not None:
        policy = workdir / "policy.toml"
        policy.write_text(policy_text)
        args.insert(0, f"--policy={policy}")
    server = ServerProcess(workdir, args)
    dirs = build_tree(workdir, server.root)
    server.start()
    return Site(server, dirs)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = start_site(tmp_path_factory.mktemp("paths"), [])
    yield s
    s.server.stop()


@pytest.fixture(scope="module")
def hidden_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """``paths.allow_hidden = true``: the deny list and the symlink rules still hold."""
    s = start_site(
        tmp_path_factory.mktemp("paths-hidden"), [], policy_text="[paths]\nallow_hidden = true\n"
    )
    yield s
    s.server.stop()


# -- the matrix: every entry point x every bypass class --------------------------------------------

# (id, path as sent in the URL, the same path as a client puts it in a JSON body)
BYPASSES: list[tuple[str, str, str]] = [
    ("dot-ssh", ".ssh/id_rsa", ".ssh/id_rsa"),
    ("dot-hiddendir", ".hiddendir/secret.txt", ".hiddendir/secret.txt"),
    ("dot-hidden-notebook", ".hiddendir/nb.ipynb", ".hiddendir/nb.ipynb"),
    ("dot-dir-itself", ".hiddendir", ".hiddendir"),
    ("deny-glob", "secret.pem", "secret.pem"),
    ("cve-2022-29241-runtime", RUNTIME_JSON, RUNTIME_JSON),
    ("pct-2e", "%2essh/id_rsa", ".ssh/id_rsa"),
    ("pct-2E-hidden", "%2Ehiddendir/secret.txt", ".hiddendir/secret.txt"),
    ("pct-252e", "%252essh/id_rsa", "%2essh/id_rsa"),
    ("symlink-dir-to-ssh", "linkssh/id_rsa", "linkssh/id_rsa"),
    ("symlink-dir-itself", "linkssh", "linkssh"),
    ("symlink-file-to-hidden", "innocent.txt", "innocent.txt"),
    ("symlink-notebook-to-hidden", "innocent.ipynb", "innocent.ipynb"),
    ("symlink-dir-to-hidden", "linkhidden/secret.txt", "linkhidden/secret.txt"),
    ("symlink-out-of-root-dir", "outlink/secret.txt", "outlink/secret.txt"),
    ("symlink-out-of-root-file", "outfile.txt", "outfile.txt"),
    ("sibling-prefix-dotdot", "../rootsecret/secret.txt", "../rootsecret/secret.txt"),
    ("sibling-prefix-pct", "%2e%2e/rootsecret/secret.txt", "../rootsecret/secret.txt"),
    ("sibling-prefix-pct-slash", "..%2frootsecret%2fsecret.txt", "../rootsecret/secret.txt"),
    ("sibling-prefix-notebook", "../rootsecret/secret.ipynb", "../rootsecret/secret.ipynb"),
    ("dotdot-inside-root", "work/../.ssh/id_rsa", "work/../.ssh/id_rsa"),
    ("nul", "secret.pem%00.txt", "secret.pem\x00.txt"),
    ("nul-hidden", ".ssh%00/id_rsa", ".ssh\x00/id_rsa"),
    ("backslash", "..%5crootsecret%5csecret.txt", "..\\rootsecret\\secret.txt"),
    ("backslash-hidden", ".ssh%5cid_rsa", ".ssh\\id_rsa"),
    ("unc-cve-2024-35178", "%5c%5c127.0.0.1%5cshare%5cx", "\\\\127.0.0.1\\share\\x"),
    ("drive-letter", "C:%5cWindows%5cwin.ini", "C:\\Windows\\win.ini"),
    ("trailing-dot", "secret.pem.", "secret.pem."),
    ("trailing-space", "secret.pem%20", "secret.pem "),
    ("trailing-dot-dir", "linkssh./id_rsa", "linkssh./id_rsa"),
    ("fullwidth-full-stop", "%EF%BC%8Essh/id_rsa", "\uff0essh/id_rsa"),
    (
        "one-dot-leaders",
        "%E2%80%A4%E2%80%A4/rootsecret/secret.txt",
        "\u2024\u2024/rootsecret/secret.txt",
    ),
    ("two-dot-leader", "%E2%80%A5/rootsecret/secret.txt", "\u2025/rootsecret/secret.txt"),
    (
        "division-slash",
        "..%E2%88%95rootsecret%E2%88%95secret.txt",
        "..\u2215rootsecret\u2215secret.txt",
    ),
    (
        "fullwidth-solidus",
        "..%EF%BC%8Frootsecret%EF%BC%8Fsecret.txt",
        "..\uff0frootsecret\uff0fsecret.txt",
    ),
]

Request = tuple[str, str, Any]  # method, target, JSON body
_FILE_BODY = {"type": "file", "format": "text", "content": "PWNED"}

ENTRY_POINTS: dict[str, Callable[[str, str], Request]] = {
    "contents-get": lambda u, b: ("GET", f"/api/contents/{u}", None),
    "contents-get-nocontent": lambda u, b: ("GET", f"/api/contents/{u}?content=0", None),
    "contents-put": lambda u, b: ("PUT", f"/api/contents/{u}", _FILE_BODY),
    "contents-put-notebook": lambda u, b: (
        "PUT",
        f"/api/contents/{u}",
        {"type": "notebook", "content": json.loads(notebook("PWNED"))},
    ),
    "contents-post-untitled": lambda u, b: ("POST", f"/api/contents/{u}", {"type": "file"}),
    "contents-copy-from": lambda u, b: ("POST", "/api/contents/work", {"copy_from": b}),
    "contents-copy-to": lambda u, b: ("POST", f"/api/contents/{u}", {"copy_from": "ok.txt"}),
    "contents-rename-from": lambda u, b: ("PATCH", f"/api/contents/{u}", {"path": "work/x.txt"}),
    "contents-rename-to": lambda u, b: ("PATCH", "/api/contents/ok.txt", {"path": b}),
    "contents-delete": lambda u, b: ("DELETE", f"/api/contents/{u}", None),
    "checkpoints-list": lambda u, b: ("GET", f"/api/contents/{u}/checkpoints", None),
    "checkpoints-create": lambda u, b: ("POST", f"/api/contents/{u}/checkpoints", None),
    "checkpoints-restore": lambda u, b: ("POST", f"/api/contents/{u}/checkpoints/checkpoint", None),
    "checkpoints-delete": lambda u, b: (
        "DELETE",
        f"/api/contents/{u}/checkpoints/checkpoint",
        None,
    ),
    "trust": lambda u, b: ("POST", f"/api/contents/{u}/trust", None),
    "files": lambda u, b: ("GET", f"/files/{u}", None),
    "files-download": lambda u, b: ("GET", f"/files/{u}?download=1", None),
    "files-head": lambda u, b: ("HEAD", f"/files/{u}", None),
    "view": lambda u, b: ("GET", f"/view/{u}", None),
    "nbconvert-html": lambda u, b: ("GET", f"/nbconvert/html/{u}", None),
    "nbconvert-download": lambda u, b: ("GET", f"/nbconvert/html/{u}?download=true", None),
    "resolve-path": lambda u, b: ("GET", f"/api/resolvePath?path={u}", None),
}


def _no_resolution(reply: Reply) -> bool:
    return reply.status == 200 and reply.json() == {"resolved": []}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(
    ("url_form", "body_form"), [b[1:] for b in BYPASSES], ids=[b[0] for b in BYPASSES]
)
def test_bypass_is_refused_everywhere(
    site: Site, entry: str, url_form: str, body_form: str
) -> None:
    """4xx (resolvePath: nothing resolved), no secret in the answer, nothing on disk changed."""
    method, target, body = ENTRY_POINTS[entry](url_form, body_form)
    reply = site.unchanged(method, target, body=body)
    if entry == "resolve-path":
        assert reply.status < 500, reply.raw[:600]
        assert reply.status >= 400 or _no_resolution(reply), reply.raw[:600]
    else:
        assert 400 <= reply.status < 500, reply.raw[:600]
    assert not leaked(reply), f"{method} {target} leaked {leaked(reply)}"


# -- a refused path answers exactly like a missing one ---------------------------------------------

# Read-side entry points, plus the mutating ones whose "missing" answer is a 404 too.
IDENTICAL_ON = {
    "contents-get": lambda p: ("GET", f"/api/contents/{p}", None),
    "contents-get-dir-type": lambda p: ("GET", f"/api/contents/{p}?type=directory", None),
    "files": lambda p: ("GET", f"/files/{p}", None),
    "view": lambda p: ("GET", f"/view/{p}", None),
    "resolve-path": lambda p: ("GET", f"/api/resolvePath?path={p}", None),
    "nbconvert-html": lambda p: ("GET", f"/nbconvert/html/{p}", None),
    "contents-delete": lambda p: ("DELETE", f"/api/contents/{p}", None),
    "contents-rename-from": lambda p: ("PATCH", f"/api/contents/{p}", {"path": "work/moved"}),
    "contents-copy-from": lambda p: ("POST", "/api/contents/work", {"copy_from": p}),
    "checkpoints-list": lambda p: ("GET", f"/api/contents/{p}/checkpoints", None),
    "checkpoints-create": lambda p: ("POST", f"/api/contents/{p}/checkpoints", None),
    "trust": lambda p: ("POST", f"/api/contents/{p}/trust", None),
}


def _answer(site: Site, entry: str, path: str) -> tuple[int, bytes]:
    method, target, body = IDENTICAL_ON[entry](path)
    reply = site.unchanged(method, target, body=body)
    assert not leaked(reply), reply.raw
    return reply.status, reply.body


@pytest.mark.parametrize("entry", list(IDENTICAL_ON))
@pytest.mark.parametrize(
    "target",
    [".hiddendir/secret.txt", "../rootsecret/secret.txt", "secret.pem"],
    ids=["hidden", "outside-root", "deny-glob"],
)
def test_symlink_refusal_answers_like_missing(site: Site, entry: str, target: str) -> None:
    """``flip`` as a symlink to a refused file, then removed: byte-identical answers. The
    second request is for a path the policy allows, so this compares a refusal with a plain
    missing file, not two refusals."""
    link = site.root / "flip"
    link.symlink_to(target)
    try:
        refused = _answer(site, entry, "flip")
    finally:
        link.unlink()
    missing = _answer(site, entry, "flip")
    assert refused == missing
    assert refused[0] in (404, 200)  # resolvePath answers 200 {"resolved": []}


@pytest.mark.parametrize("entry", list(IDENTICAL_ON))
@pytest.mark.parametrize(
    ("existing", "absent"),
    [
        (".hiddendir/secret.txt", ".hiddendir/absent.txt"),
        ("secret.pem", "absent.pem"),
        ("../rootsecret/secret.txt", "../rootsecret/absent.txt"),
        (RUNTIME_JSON, RUNTIME_JSON.replace("1234", "9999")),
        (".ssh", ".ssx"),
    ],
    ids=["hidden", "deny-glob", "outside-root", "cve-2022-29241-pid", "hidden-dir"],
)
def test_refused_path_answers_like_absent_one(
    site: Site, entry: str, existing: str, absent: str
) -> None:
    """No existence oracle: a refused file that exists answers exactly like a refused name
    that does not (modulo the name itself), e.g. brute-forcing the ``jpserver-<pid>.json``
    of CVE-2022-29241 learns nothing."""
    assert len(existing) == len(absent)
    status_e, body_e = _answer(site, entry, existing)
    status_a, body_a = _answer(site, entry, absent)
    assert status_e == status_a
    assert body_e == body_a.replace(absent.encode(), existing.encode())


def test_hidden_name_answers_like_missing_plain_name(site: Site) -> None:
    """``.hiddendir/secret.txt`` (exists, refused) and ``xhiddendir/secret.txt`` (no such
    directory) get the same answers, names aside, on the read entry points."""
    for entry in ("contents-get", "files", "view", "resolve-path", "nbconvert-html"):
        status_r, body_r = _answer(site, entry, ".hiddendir/secret.txt")
        status_m, body_m = _answer(site, entry, "xhiddendir/secret.txt")
        assert status_r == status_m, entry
        assert body_r == body_m.replace(b"xhiddendir", b".hiddendir"), entry


# -- the stock bypasses of the research table (jupyter_server 2.21.1) ------------------------------


def test_symlink_into_ssh_cannot_be_read(site: Site) -> None:
    """Stock: ``GET /api/contents/linkssh/id_rsa`` → 200 with the key."""
    for target in (
        "/api/contents/linkssh/id_rsa",
        "/api/contents/linkssh",
        "/files/linkssh/id_rsa",
    ):
        reply = site.unchanged("GET", target)
        assert reply.status == 404, reply.raw
        assert not leaked(reply)


def test_symlink_into_ssh_cannot_be_written(site: Site) -> None:
    """Stock: ``PUT /api/contents/linkssh/authorized_keys`` → 201, the key file replaced."""
    keys = site.root / ".ssh/authorized_keys"
    before = keys.read_bytes()
    for body in (_FILE_BODY, {**_FILE_BODY, "chunk": 1}, {**_FILE_BODY, "chunk": -1}):
        reply = site.unchanged("PUT", "/api/contents/linkssh/authorized_keys", body=body)
        assert reply.status == 404, reply.raw
    assert keys.read_bytes() == before


@pytest.mark.parametrize(
    "body", [None, {"type": "file"}, {"type": "notebook"}, {"type": "directory"}, {"ext": ".py"}]
)
@pytest.mark.parametrize("directory", [".hiddendir", "linkhidden", "%2ehiddendir", ".ssh"])
def test_new_untitled_in_hidden_dir_creates_nothing(
    site: Site, directory: str, body: dict[str, str] | None
) -> None:
    """Stock: POST into ``.hiddendir`` answers 404 *after* creating ``untitled`` there."""
    reply = site.unchanged("POST", f"/api/contents/{directory}", body=body)
    assert reply.status == 404, reply.raw


def test_checkpoints_of_hidden_notebook_are_refused(site: Site) -> None:
    """Stock: create → 201 and a copy under ``.hiddendir/.ipynb_checkpoints``."""
    for method in ("GET", "POST"):
        reply = site.unchanged(method, "/api/contents/.hiddendir/nb.ipynb/checkpoints")
        assert reply.status == 404, reply.raw
    assert not (site.root / ".hiddendir/.ipynb_checkpoints").exists()


def test_view_and_resolve_path_are_no_existence_oracle(site: Site) -> None:
    """Stock: ``/view/.ssh/id_rsa`` → 200 page, ``resolvePath`` → the path."""
    for path in (".ssh/id_rsa", RUNTIME_JSON, "linkssh/id_rsa", "innocent.txt", "outfile.txt"):
        assert site.unchanged("GET", f"/view/{path}").status == 404
        assert _no_resolution(site.unchanged("GET", f"/api/resolvePath?path={path}"))


def test_resolve_path_refuses_absolute_and_home_forms(site: Site) -> None:
    root = site.root
    for path in (f"{root}/.ssh/id_rsa", f"{root}/{RUNTIME_JSON}", f"{root}secret/secret.txt"):
        assert _no_resolution(site.unchanged("GET", f"/api/resolvePath?path={path}")), path
    assert site.send("GET", f"/api/resolvePath?path={root}/ok.txt").json() == {
        "resolved": [{"scope": "server", "path": "ok.txt"}]
    }


def _kernel_cwd(site: Site, path: str) -> str:
    """Start a session for ``path``; the directory its kernel was started in."""
    log = site.server.workdir / "kernel-cwd.log"
    log.write_text("")
    body = {"path": path, "type": "notebook", "name": "nb", "kernel": {"name": "hs-test"}}
    reply = site.unchanged("POST", "/api/sessions", body=body)
    assert reply.status == 201, reply.raw
    try:
        deadline = time.monotonic() + 10
        while not log.read_text():
            assert time.monotonic() < deadline, "the kernel never started"
            time.sleep(0.05)
        return log.read_text().splitlines()[0]
    finally:
        site.send("DELETE", f"/api/sessions/{reply.json()['id']}")


@pytest.mark.parametrize(
    ("refused", "missing", "cwd"),
    [
        (".hiddendir/nb.ipynb", "nothere/nb.ipynb", ""),
        ("linkhidden/nb.ipynb", "nolink/nb.ipynb", ""),
        ("outlink/secret.ipynb", "noout/secret.ipynb", ""),
        (".local/share/jupyter/runtime/x.ipynb", "nolocal/share/x.ipynb", ""),
        ("work/.hidden/nb.ipynb", "work/nothere/nb.ipynb", "work"),
    ],
)
def test_session_kernel_never_starts_in_a_refused_directory(
    site: Site, refused: str, missing: str, cwd: str
) -> None:
    """A session's path picks the kernel's cwd (``get_kernel_path``). A refused path gets what
    a missing one gets: the nearest allowed directory that exists (stock: the hidden one)."""
    expected = str(site.root / cwd) if cwd else str(site.root)
    assert _kernel_cwd(site, refused) == expected
    assert _kernel_cwd(site, missing) == expected


# -- listings ------------------------------------------------------------------------------------


def test_listing_omits_hidden_denied_and_escaping_entries(site: Site) -> None:
    reply = site.unchanged("GET", "/api/contents/")
    names = {entry["name"] for entry in reply.json()["content"]}
    assert {"ok.txt", "nb.ipynb", "work", "goodlink.txt"} <= names
    refused = {
        ".ssh", ".hiddendir", ".local", "secret.pem", "linkssh", "linkhidden", "innocent.txt",
        "innocent.ipynb", "outlink", "outfile.txt", "__pycache__",
    }  # fmt: skip
    assert not names & refused
    assert not leaked(reply)


# -- allow_hidden = true: the deny list and the symlink rules still hold ---------------------------


def test_allow_hidden_opens_dotfiles_but_not_the_deny_list(hidden_site: Site) -> None:
    site = hidden_site
    reply = site.unchanged("GET", "/api/contents/.hiddendir/secret.txt")
    assert reply.status == 200
    assert reply.json()["content"] == MARKERS["hidden"]
    listing = {e["name"] for e in site.send("GET", "/api/contents/").json()["content"]}
    assert {".hiddendir", "linkhidden", "innocent.txt"} <= listing
    assert not listing & {".ssh", "linkssh", "secret.pem", "outlink", "outfile.txt"}
    for path in (".ssh/id_rsa", "linkssh/id_rsa", RUNTIME_JSON, "secret.pem", "outfile.txt"):
        for method, target in (
            ("GET", f"/api/contents/{path}"),
            ("GET", f"/files/{path}"),
            ("GET", f"/view/{path}"),
            ("GET", f"/nbconvert/html/{path}"),
        ):
            answer = site.unchanged(method, target)
            assert answer.status == 404, (target, answer.raw[:300])
            assert not leaked(answer), target
        assert _no_resolution(site.unchanged("GET", f"/api/resolvePath?path={path}"))
        put = site.unchanged("PUT", f"/api/contents/{path}", body=_FILE_BODY)
        assert put.status == 404


# -- nothing legitimate broke ----------------------------------------------------------------------


def test_allowed_operations_still_work(site: Site) -> None:
    """The ordinary life of a file in ``work/``: create, write, read, copy, rename,
    checkpoint, trust, convert, serve, resolve, delete."""
    s = site.send
    assert s("PUT", "/api/contents/work/a.txt", body={**_FILE_BODY, "content": "A"}).status == 201
    assert s("GET", "/api/contents/work/a.txt").json()["content"] == "A"
    assert s("PUT", "/api/contents/work/a.txt", body={**_FILE_BODY, "content": "B"}).status == 200
    untitled = s("POST", "/api/contents/work", body={"type": "notebook"})
    assert untitled.status == 201
    nb_path = untitled.json()["path"]
    copy = s("POST", "/api/contents/work", body={"copy_from": "work/a.txt"})
    assert copy.status == 201
    assert copy.json()["path"] == "work/a-Copy1.txt"
    moved = s("PATCH", "/api/contents/work/a-Copy1.txt", body={"path": "work/b.txt"})
    assert moved.status == 200
    assert moved.json()["path"] == "work/b.txt"
    created = s("POST", f"/api/contents/{nb_path}/checkpoints")
    assert created.status == 201
    checkpoint = created.json()["id"]
    assert [c["id"] for c in s("GET", f"/api/contents/{nb_path}/checkpoints").json()] == [
        checkpoint
    ]
    assert s("POST", f"/api/contents/{nb_path}/checkpoints/{checkpoint}").status == 204
    assert s("DELETE", f"/api/contents/{nb_path}/checkpoints/{checkpoint}").status == 204
    assert s("POST", f"/api/contents/{nb_path}/trust").status == 201
    converted = s("GET", f"/nbconvert/html/{nb_path}")
    assert converted.status == 200
    assert b"<html" in converted.body
    assert s("GET", "/files/work/a.txt").body == b"B"
    assert s("GET", "/view/work/a.txt").status == 200
    assert s("GET", "/api/resolvePath?path=work/b.txt").json()["resolved"] == [
        {"scope": "server", "path": "work/b.txt"}
    ]
    assert s("GET", "/api/contents/goodlink.txt").json()["content"] == "hello, public file\n"
    assert s("DELETE", "/api/contents/work/b.txt").status == 204
    assert not (site.root / "work/b.txt").exists()
    listing = {e["name"] for e in s("GET", "/api/contents/work").json()["content"]}
    assert {"a.txt", nb_path.rsplit("/", 1)[1]} <= listing


def test_chunked_upload_is_decided_on_every_chunk(site: Site) -> None:
    """Chunk 1 lands on an allowed name; the name is then swapped for a link into ``.ssh``
    (stock appends chunk 2+ through ``os.readlink``): the next chunk is refused."""
    target = "/api/contents/work/upload.txt"
    assert site.send("PUT", target, body={**_FILE_BODY, "content": "one", "chunk": 1}).status in (
        200,
        201,
    )
    assert site.send("PUT", target, body={**_FILE_BODY, "content": "two", "chunk": 2}).status == 200
    assert (site.root / "work/upload.txt").read_text() == "onetwo"
    upload = site.root / "work/upload.txt"
    upload.unlink()
    upload.symlink_to("../.ssh/authorized_keys")
    try:
        reply = site.unchanged("PUT", target, body={**_FILE_BODY, "content": "x", "chunk": -1})
        assert reply.status == 404, reply.raw
    finally:
        upload.unlink()


def test_directory_copy_leaves_refused_entries_behind(site: Site) -> None:
    """Stock ``copytree`` follows links: copying a directory holding ``linkssh -> ../../.ssh``
    would put the keys under an innocent name."""
    proj = site.root / "work/proj"
    proj.mkdir()
    (proj / "a.txt").write_text("a")
    (proj / ".env").write_text(MARKERS["hidden"])
    (proj / "keys").symlink_to("../../.ssh")
    (proj / "out").symlink_to("../../../rootsecret")
    (proj / "same.txt").symlink_to("a.txt")
    reply = site.send("POST", "/api/contents/work", body={"copy_from": "work/proj"})
    assert reply.status == 201, reply.raw
    copied = site.root / reply.json()["path"]
    assert sorted(p.name for p in copied.iterdir()) == ["a.txt", "same.txt"]
    assert (copied / "same.txt").is_symlink()


# -- /files never runs a user's file as active content (issue 3, item 3) ---------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "attachment"),
    [
        ("x.html", "text/plain; charset=UTF-8", False),
        ("x.htm", "text/plain; charset=UTF-8", False),
        ("x.xhtml", "text/plain; charset=UTF-8", False),
        ("x.xml", "text/plain; charset=UTF-8", False),
        ("x.js", "text/plain; charset=UTF-8", False),
        ("x.mjs", "text/plain; charset=UTF-8", False),
        ("x.svg", "image/svg+xml", True),
        ("x.png", "image/png", False),
        ("x.txt", "text/plain; charset=UTF-8", False),
        ("x.ipynb", "application/x-ipynb+json", True),
    ],
)
def test_files_serves_active_content_inert(
    site: Site, name: str, content_type: str, attachment: bool
) -> None:
    (site.root / "work" / name).write_text("<script>alert(document.domain)</script>")
    reply = site.send("GET", f"/files/work/{name}")
    assert reply.status == 200
    assert reply.headers["content-type"] == content_type
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert ("attachment" in reply.headers.get("content-disposition", "")) is attachment
    download = site.send("GET", f"/files/work/{name}?download=1")
    assert "attachment" in download.headers["content-disposition"]
    assert download.headers["content-type"] == content_type


def test_files_judges_the_served_file_not_just_the_link_name(site: Site) -> None:
    """tornado serves a symlink's target with the target's type: the link name must not
    launder ``page.html`` into an executable page, nor ``pic.svg`` into an inline image."""
    work = site.root / "work"
    (work / "page.html").write_text("<script>alert(1)</script>")
    (work / "pic.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>")
    (work / "notes.txt").symlink_to("page.html")
    (work / "pic.png").symlink_to("pic.svg")
    notes = site.send("GET", "/files/work/notes.txt")
    assert notes.headers["content-type"] == "text/plain; charset=UTF-8"
    picture = site.send("GET", "/files/work/pic.png")
    assert picture.headers["content-type"] == "image/svg+xml"
    assert picture.headers["content-disposition"].startswith("attachment")


# -- odd paths: a 4xx everywhere, never a 5xx ------------------------------------------------------

ODD_PATHS: dict[str, bytes] = {
    "nul": b"a%00b",
    "nul-raw-escape-end": b"ok.txt%00",
    "invalid-utf8-raw": b"\xff\xfe",
    "invalid-utf8-escaped": b"%ff%fe",
    "overlong-utf8-dot": b"%c0%ae%c0%ae/x",
    "lone-surrogate": b"%ed%a0%80",
    "bad-escape": b"%zz",
    "truncated-escape": b"a%4",
    "lone-percent": b"%",
    "overlong-path": b"a/" * 2500 + b"x",
    "overlong-name": b"n" * 300,
    "ten-thousand-segments": b"a/" * 10_000,
    "control-chars": b"a%0d%0aSet-Cookie:%20x=1",
    "bidi-override": b"%e2%80%aetxt.exe",
}

ODD_ENTRY_POINTS: dict[str, Callable[[bytes], tuple[str, bytes, Any]]] = {
    "contents-get": lambda p: ("GET", b"/api/contents/" + p, None),
    "contents-put": lambda p: ("PUT", b"/api/contents/" + p, _FILE_BODY),
    "contents-post": lambda p: ("POST", b"/api/contents/" + p, {"type": "file"}),
    "contents-patch": lambda p: ("PATCH", b"/api/contents/" + p, {"path": "work/odd"}),
    "contents-delete": lambda p: ("DELETE", b"/api/contents/" + p, None),
    "checkpoints-list": lambda p: ("GET", b"/api/contents/" + p + b"/checkpoints", None),
    "checkpoints-create": lambda p: ("POST", b"/api/contents/" + p + b"/checkpoints", None),
    "trust": lambda p: ("POST", b"/api/contents/" + p + b"/trust", None),
    "files": lambda p: ("GET", b"/files/" + p, None),
    "view": lambda p: ("GET", b"/view/" + p, None),
    "nbconvert-html": lambda p: ("GET", b"/nbconvert/html/" + p, None),
    "resolve-path": lambda p: ("GET", b"/api/resolvePath?path=" + p, None),
}


# tornado turns some of these into ordinary names before any handler runs ("%zz" stays "%zz", a
# raw 0xff byte becomes "\u00ff"); the request gate refuses them from the raw request line
# (HS-PATH-007) before they can become a file name.


def _odd_params() -> list[Any]:
    params = []
    for odd in ODD_PATHS:
        for entry in ODD_ENTRY_POINTS:
            params.append(pytest.param(odd, entry, id=f"{odd}-{entry}"))
    return params


@pytest.mark.parametrize(("odd", "entry"), _odd_params())
def test_odd_path_gets_a_4xx(site: Site, entry: str, odd: str) -> None:
    method, target, body = ODD_ENTRY_POINTS[entry](ODD_PATHS[odd])
    names = set(os.listdir(site.root))
    try:
        reply = site.unchanged(method, target, body=body)
    finally:  # a regression must not leave its file to later tests
        for name in set(os.listdir(site.root)) - names:
            (site.root / name).unlink()
    if entry == "resolve-path" and reply.status == 200:
        # tornado's get_argument strips control characters: ?path=ok.txt%00 names ok.txt.
        resolved = reply.json()["resolved"]
        assert resolved in ([], [{"scope": "server", "path": "ok.txt"}]), reply.raw
    else:
        assert 400 <= reply.status < 500, reply.raw[:600]
    assert "x=1" not in reply.headers.get("set-cookie", "")


def test_odd_json_paths_get_a_4xx(site: Site) -> None:
    """Paths from JSON bodies (copy_from, the rename target) are never URL-decoded by
    tornado, so they get their own pass."""
    odd = ["a\x00b", "\udcff", "a/" * 10_000, "n" * 300, "..", "a/../b", "~/.ssh/id_rsa"]
    for value in [*odd, "/etc/passwd"]:
        for method, target, body in (
            ("POST", "/api/contents/work", {"copy_from": value}),
            ("PATCH", "/api/contents/ok.txt", {"path": value}),
        ):
            reply = site.unchanged(method, target, body=body)
            assert 400 <= reply.status < 500, (value[:20], target, reply.raw[:300])


# -- static handlers: PathGuardMixin once wrap_handler adds it -------------------------------------



@pytest.mark.parametrize("name", [".hs-hidden.txt", "hs-secret.pem", "%2ehs-hidden.txt"])
def test_static_hidden_and_denied_are_404(site: Site, name: str) -> None:
    reply = site.unchanged("GET", f"/static/{name}", auth=False)
    assert reply.status == 404, reply.raw[:300]
    assert not leaked(reply)


def test_static_symlink_out_of_root_answers_like_missing(site: Site) -> None:
    """Stock (tornado >= 6.5.9) answers 403 for a link out of the root and 404 for a missing
    file: an oracle for which names are links."""
    link = site.unchanged("GET", "/static/hs-outlink.txt", auth=False)
    missing = site.unchanged("GET", "/static/hs-nothere.txt", auth=False)
    assert (link.status, link.body) == (missing.status, missing.body)
    assert link.status == 404
    assert not leaked(link)


@pytest.mark.parametrize("name", [".hs-secret.txt", "hs-outlink.txt"])
def test_kernelspec_resource_hidden_or_escaping_is_404(site: Site, name: str) -> None:
    reply = site.unchanged("GET", f"/kernelspecs/hs-test/{name}")
    assert reply.status == 404, reply.raw[:300]
    assert not leaked(reply)


def test_static_assets_still_served(site: Site) -> None:
    """Stays green before and after the wiring: ordinary assets and kernelspec files."""
    assert site.send("GET", "/static/hs-visible.txt", auth=False).status == 200
    assert site.send("GET", "/kernelspecs/hs-test/kernel.json").status == 200
    assert site.send("GET", "/api/spec.yaml").status == 200


def test_denials_are_recorded(site: Site) -> None:
    site.send("GET", "/api/contents/innocent.txt")
    expected = "policy denial rule=HS-PATH-006 class=contents op=read path=innocent.txt"
    deadline = time.monotonic() + 5
    while expected not in site.server.log():
        if time.monotonic() > deadline:
            pytest.fail("no denial record for innocent.txt")
        time.sleep(0.1)
    assert not [m for m in MARKERS.values() if m in site.server.log()]
