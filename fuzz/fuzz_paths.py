#!/usr/bin/env python3
"""atheris harness for :mod:`hardened_server.policy.paths`: hidden files and root containment.

The input is the path itself (UTF-8; bytes that are not UTF-8 become lone surrogates, which the
policy must refuse), so seed files and dictionary tokens are plain text. Two knobs reuse bytes of
the input instead of consuming them: the first byte picks the policy variant and whether the text
is treated as raw (percent-encoded) or already decoded; the last byte picks the operation.

The resolver is a pure fake file system (``FakeFS``) with the symlinks that matter: a link with an
innocent name into ``.ssh``, links to ``/etc``, to ``..``, to the sibling ``/srv/rootsecret``
(CVE-2026-35397), a loop, and harmless links inside the root.

Invariants asserted (an AssertionError is a finding, exit code 77 under atheris):

* ``decide`` never raises for any path text: refusals are Decisions, not exceptions;
* a refusal carries no path; an allowed decision carries a canonical path that is idempotent
  under :func:`canonicalize` and contains no empty, ``.``, ``..``, control or backslash segment;
* the apparent and the resolved absolute paths of an allowed path are inside the (resolved) root,
  checked with ``os.path.commonpath``, not with the code under test;
* neither form has a hidden component (unless the variant allows it) nor matches a deny glob
  according to a small reference matcher written independently (``fnmatch`` per segment);
* allowed for a write-like operation implies allowed for read;
* the decision of a raw path equals the decision of its decoded canonical path, and of that path
  percent-encoded again (exactly one decode, stable under re-encoding).

Run: ``./fuzz/fuzz_paths.py -dict=fuzz/dicts/paths.dict -max_total_time=60 SCRATCH
fuzz/corpus/paths`` (see fuzz/README.md). Replayed without atheris by
``tests/policy/test_paths.py::test_fuzz_corpus_replay``.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import posixpath
import re
import sys
import unicodedata
import urllib.parse
from collections.abc import Callable
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # run as ./fuzz/fuzz_paths.py from a checkout
    sys.path.insert(0, str(_REPO))

if __name__ == "__main__":
    import atheris

    with atheris.instrument_imports(include=["hardened_server"]):
        from hardened_server.policy import paths as P
        from hardened_server.policy.loader import load_policy
        from hardened_server.policy.rules import Rule
else:  # imported by the test suite: no atheris needed
    from hardened_server.policy import paths as P
    from hardened_server.policy.loader import load_policy
    from hardened_server.policy.rules import Rule

ROOT = "/srv/root"
REAL_ROOT = ROOT

LINKS: dict[str, str] = {
    f"{ROOT}/notes": ".ssh",  # innocent name into a denied hidden directory
    f"{ROOT}/docs": ".hidden",  # innocent name into a hidden (not denied) directory
    f"{ROOT}/etc": "/etc",  # out of the root
    f"{ROOT}/up": "..",  # out of the root, relative
    f"{ROOT}/sib": "/srv/rootsecret",  # sibling prefix, CVE-2026-35397
    f"{ROOT}/sib2": "../rootsecret/x",
    f"{ROOT}/loop": "loop",  # ELOOP
    f"{ROOT}/self": ".",  # the root under another name
    f"{ROOT}/data": "sub",  # harmless, inside
    f"{ROOT}/abs": f"{ROOT}/sub",  # harmless, absolute
    f"{ROOT}/sub/back": "../.ssh/id_rsa",
    f"{ROOT}/sub/key": "../keys/server.pem",
    f"{ROOT}/.hidden/out": "/home/user/.aws",
}


class FakeFS:
    """A pure ``os.path.realpath`` over a map of symlinks (absolute link path -> target)."""

    def __init__(self, links: dict[str, str]) -> None:
        self.links = links
        self._cache: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        real = self._resolve(path)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[path] = real
        return real

    def _resolve(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("absolute paths only")
        pending = [p for p in path.split("/") if p][::-1]
        cur = "/"
        hops = 0
        while pending:
            comp = pending.pop()
            if comp == ".":
                continue
            if comp == "..":
                cur = posixpath.dirname(cur)
                continue
            nxt = posixpath.join(cur, comp)
            target = self.links.get(nxt)
            if target is None:
                cur = nxt
                continue
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, "too many levels of symbolic links")
            if target.startswith("/"):
                cur = "/"
            pending.extend(reversed([p for p in target.split("/") if p]))
        return cur


RESOLVE = FakeFS(LINKS)
DENY: tuple[str, ...] = load_policy().paths.deny
ALLOW: tuple[str, ...] = (".config/app/**", ".hidden/ok.txt")
VARIANTS: tuple[P.PathPolicy, ...] = (
    P.PathPolicy(allow_hidden=False, deny=DENY),  # the shipped default
    P.PathPolicy(allow_hidden=True, deny=DENY),  # deny must still hold
    P.PathPolicy(allow_hidden=False, deny=DENY, allow=(*ALLOW, ".ssh/**")),  # allow < deny
)
OPS: tuple[P.PathOp, ...] = tuple(P.PathOp)
_RULES = frozenset(P.PATH_RULES)


def _nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s)


@functools.cache
def _segment_matcher(pattern: str) -> Callable[[str], object]:
    return re.compile(fnmatch.translate(pattern)).match


def _ref_glob_prefix(glob: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Reference matcher: does ``glob`` match ``parts`` or a prefix of it (an ancestor)? One
    ``fnmatch`` pattern per segment; a ``**`` segment spans zero or more segments."""
    if not glob:
        return True  # the glob matched an ancestor (or the path): everything below is covered
    head, rest = glob[0], glob[1:]
    if head == "**":
        return any(_ref_glob_prefix(rest, parts[i:]) for i in range(len(parts) + 1))
    if not parts or not _segment_matcher(head)(parts[0]):
        return False
    return _ref_glob_prefix(rest, parts[1:])


class RefDeny:
    """Reference deny matcher, independent of the glob compiler under test (``fnmatch`` per
    segment). Single-segment globs, the bulk of the shipped list, are folded into one
    ``fnmatch`` alternation per position (first segment, any segment) to keep the harness fast;
    the others go through :func:`_ref_glob_prefix`."""

    def __init__(self, globs: tuple[str, ...]) -> None:
        first: list[str] = []
        anywhere: list[str] = []
        self.complex: list[tuple[str, ...]] = []
        for glob in globs:
            parts = [p for p in glob.casefold().split("/") if p]
            while parts and parts[-1] == "**":
                parts.pop()  # what a glob matches, everything below it is denied too
            if len(parts) == 1 and parts[0] != "**":
                first.append(parts[0])
            elif len(parts) == 2 and parts[0] == "**" and parts[1] != "**":
                anywhere.append(parts[1])
            else:
                self.complex.append(tuple(parts))
        self.first = self._alternation(first)
        self.anywhere = self._alternation(anywhere)

    @staticmethod
    def _alternation(patterns: list[str]) -> Callable[[str], object] | None:
        if not patterns:
            return None
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match

    def __call__(self, path: str) -> bool:
        """Does a glob match ``path`` or an ancestor (case-folded, and NFKC)?"""
        if not path:
            return False
        for form in {path.casefold(), _nfkc(path).casefold()}:
            parts = tuple(form.split("/"))
            if self.first is not None and self.first(parts[0]):
                return True
            if self.anywhere is not None and any(map(self.anywhere, parts)):
                return True
            if any(_ref_glob_prefix(g, parts) for g in self.complex):
                return True
        return False


ref_denied = RefDeny(DENY)


def _hidden(path: str) -> bool:
    return any(s.startswith(".") or _nfkc(s).startswith(".") for s in path.split("/") if s)


def _inside(root: str, path: str) -> bool:
    path = posixpath.normpath(path)
    return posixpath.isabs(path) and posixpath.commonpath([root, path]) == root


def check_allowed(policy: P.PathPolicy, op: P.PathOp, r: P.PathDecision) -> None:
    """Every invariant an allowed decision must satisfy."""
    assert r.rule_id == Rule.PATH_ALLOWED, r
    path, resolved = r.path, r.resolved
    assert isinstance(path, str), r
    assert isinstance(resolved, str), r
    assert P.canonicalize(path, decoded=True) == path, r
    if path:
        for seg in path.split("/"):
            assert seg not in ("", ".", ".."), r
            assert not seg.endswith((".", " ")), r
            assert all(c != "\\" and ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in seg), r
    apparent = posixpath.join(ROOT, path) if path else ROOT
    assert _inside(ROOT, apparent), r
    real = RESOLVE(apparent)
    assert _inside(REAL_ROOT, real), (r, real)
    rel = posixpath.relpath(real, REAL_ROOT)
    assert resolved == ("" if rel == "." else rel), (r, real)
    for form in (path, resolved):
        assert not ref_denied(form), (r, form)
        if not policy.allow_hidden and not policy.allowed_by(form):
            assert not _hidden(form), (r, form)
    if op in P.WRITE_OPS:
        assert policy.decide(path, P.PathOp.READ, root=ROOT, resolve=RESOLVE), r
    # Exactly one decode, stable under re-encoding: the canonical path percent-encoded again
    # (every character outside the unreserved set, '%' included) decides the same.
    encoded = urllib.parse.quote(path, safe="/")
    assert policy.decide(encoded, op, root=ROOT, resolve=RESOLVE, decoded=False) == r, r


def TestOneInput(data: bytes) -> None:
    """One path text; see the module docstring for the knobs and the invariants."""
    if not data:
        return
    text = data.decode("utf-8", "surrogateescape")
    knob = data[0]
    decoded = bool(knob & 1)
    policy = VARIANTS[(knob >> 1) % len(VARIANTS)]
    op = OPS[data[-1] % len(OPS)]
    r = policy.decide(text, op, root=ROOT, resolve=RESOLVE, decoded=decoded)
    assert isinstance(r, P.PathDecision), r
    assert r.rule_id in _RULES, r
    assert r.reason, r
    if r.allowed:
        check_allowed(policy, op, r)
    else:
        assert r.path is None, r
        assert r.resolved is None, r


def main() -> None:
    atheris.instrument_func(urllib.parse.unquote)
    atheris.enabled_hooks.add("str")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
