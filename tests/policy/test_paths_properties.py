"""Hypothesis properties of the path policy: the invariants the example tests only sample.

The resolver is :class:`tests.support.strategies.PathFakeFS`, a pure stand-in for
``os.path.realpath`` with the symlinks that matter (into ``.ssh``, to ``/etc``, to ``..``, to the
sibling ``<root>secret``, a loop, the root under another name). Oracles are written independently of
the module under test: ``posixpath.commonpath`` for containment, an ``fnmatch``-per-segment matcher
for deny globs.

The last tests run the containment properties against a deliberately broken, string-prefix
containment check (the CVE-2026-35397 bug) and expect Hypothesis to find the counterexample:
proof that the properties have teeth.
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from hardened_server.policy import paths
from hardened_server.policy.loader import load_policy
from hardened_server.policy.paths import (
    ROOT_IMMUTABLE_OPS,
    WRITE_OPS,
    PathDecision,
    PathOp,
    PathPolicy,
    canonicalize,
    is_within,
)
from hardened_server.policy.rules import Rule
from tests.support.strategies import (
    PathFakeFS,
    path_clean_texts,
    path_default_links,
    path_link_maps,
    path_reencodings,
    path_roots,
    path_sibling_suffixes,
    path_texts,
)

ROOT = "/srv/root"
RESOLVE = PathFakeFS(path_default_links(ROOT))
DENY = load_policy().paths.deny
POLICIES: tuple[PathPolicy, ...] = (
    PathPolicy(allow_hidden=False, deny=DENY),  # the shipped default
    PathPolicy(allow_hidden=True, deny=DENY),  # deny must hold anyway
    PathPolicy(allow_hidden=False, deny=DENY, allow=(".config/app/**", ".ssh/**", ".hidden/*")),
)
policies = st.sampled_from(POLICIES)
ops = st.sampled_from(list(PathOp))
write_ops = st.sampled_from(sorted(WRITE_OPS))
any_paths = path_texts() | path_clean_texts()


def _decide(
    policy: PathPolicy, text: str, op: PathOp, *, decoded: bool = True, root: str = ROOT
) -> PathDecision:
    return policy.decide(text, op, root=root, resolve=RESOLVE, decoded=decoded)


# --- independent oracles --------------------------------------------------------------------------


def _inside(root: str, path: str) -> bool:
    path = posixpath.normpath(path)
    return posixpath.isabs(path) and posixpath.commonpath([root, path]) == root


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _hidden(path: str) -> bool:
    return any(s.startswith(".") or _nfkc(s).startswith(".") for s in path.split("/") if s)


@functools.cache
def _segment_matcher(pattern: str) -> Callable[[str], object]:
    return re.compile(fnmatch.translate(pattern), re.DOTALL).match


def _ref_glob_prefix(glob: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Does ``glob`` match ``parts`` or a prefix of it (an ancestor)? ``fnmatch`` per segment."""
    if not glob:
        return True
    head, rest = glob[0], glob[1:]
    if head == "**":
        return any(_ref_glob_prefix(rest, parts[i:]) for i in range(len(parts) + 1))
    if not parts or not _segment_matcher(head)(parts[0]):
        return False
    return _ref_glob_prefix(rest, parts[1:])


def ref_denied(path: str, globs: tuple[str, ...]) -> bool:
    """Reference deny matcher: the glob matches the path or an ancestor, case-insensitively,
    on the path as spelled and on its NFKC form."""
    if not path:
        return False
    for form in {path.casefold(), _nfkc(path).casefold()}:
        parts = tuple(form.split("/"))
        for glob in globs:
            g = tuple(p for p in glob.casefold().split("/") if p)
            if g and _ref_glob_prefix(g, parts):
                return True
    return False


# --- canonical form -----------------------------------------------------------------------------


@given(text=any_paths, decoded=st.booleans())
@example(text="%2e%2e/x", decoded=False).via("encoded dot segments")
@example(text="%252e%252e/x", decoded=False).via("double encoding: one decode only")
@example(text="a/\x00/../b", decoded=True).via("NUL vanishes in posixpath.normpath")
def test_canonical_form_is_clean_and_idempotent(text: str, decoded: bool) -> None:
    result = canonicalize(text, decoded=decoded)
    if not isinstance(result, str):
        assert not result.allowed
        return
    assert canonicalize(result, decoded=True) == result
    if result:
        for seg in result.split("/"):
            assert seg not in ("", ".", "..")
            assert not any(c in seg for c in "\\\x00")
            assert not seg.endswith((".", " "))
            assert all(unicodedata.category(c) not in ("Cc", "Cs") for c in seg)
    assert _inside(ROOT, posixpath.join(ROOT, result))


# --- re-encoding ------------------------------------------------------------------------------


@given(text=any_paths, op=ops, policy=policies, data=st.data())
def test_decision_is_stable_under_reencoding(
    text: str, op: PathOp, policy: PathPolicy, data: st.DataObject
) -> None:
    """Percent-encoding any subset of the characters (and every ``%``) of a decoded path, then
    decoding once, decides exactly as the decoded path: one decode, no second chance."""
    raw = data.draw(path_reencodings(text), label="raw")
    assert _decide(policy, raw, op, decoded=False) == _decide(policy, text, op, decoded=True)


# --- the main invariant -------------------------------------------------------------------------


@given(text=any_paths, op=ops, policy=policies, decoded=st.booleans())
@example(text="notes/authorized_keys", op=PathOp.WRITE, policy=POLICIES[1], decoded=True)
@example(text="sib/x", op=PathOp.READ, policy=POLICIES[0], decoded=True)
@example(text="sub/back", op=PathOp.READ, policy=POLICIES[2], decoded=True)
@example(text="docs/ok", op=PathOp.READ, policy=POLICIES[2], decoded=True)
def test_an_allowed_path_stays_inside_and_is_neither_hidden_nor_denied(
    text: str, op: PathOp, policy: PathPolicy, decoded: bool
) -> None:
    result = _decide(policy, text, op, decoded=decoded)
    if not result.allowed:
        assert result.path is None
        assert result.resolved is None
        return
    assert result.rule_id == Rule.PATH_ALLOWED
    assert result.path is not None
    assert result.resolved is not None
    apparent = posixpath.join(ROOT, result.path) if result.path else ROOT
    real = RESOLVE(apparent)
    assert _inside(ROOT, apparent)
    assert _inside(RESOLVE(ROOT), real)
    rel = posixpath.relpath(real, RESOLVE(ROOT))
    assert result.resolved == ("" if rel == "." else rel)
    for form in (result.path, result.resolved):
        assert not ref_denied(form, DENY), form
        if not policy.allow_hidden and not policy.allowed_by(form):
            assert not _hidden(form), form


@given(data=st.data(), root=path_roots, op=ops, policy=policies)
def test_no_symlink_layout_lets_an_allowed_path_out_or_into_hidden(
    data: st.DataObject, root: str, op: PathOp, policy: PathPolicy
) -> None:
    """The same invariant over random symlink layouts: links with innocent names into hidden
    and denied directories, out of the root, to ``<root>secret``, to the root itself, loops."""
    resolve = PathFakeFS(data.draw(path_link_maps(root), label="links"))
    text = data.draw(path_clean_texts() | path_texts(), label="path")
    result = policy.decide(text, op, root=root, resolve=resolve)
    if not result.allowed:
        return
    assert result.path is not None
    assert result.resolved is not None
    real = resolve(posixpath.join(root, result.path) if result.path else root)
    assert _inside(root, real), (real, result)
    for form in (result.path, result.resolved):
        assert not ref_denied(form, DENY), form
        if not policy.allow_hidden and not policy.allowed_by(form):
            assert not _hidden(form), form
    if op in ROOT_IMMUTABLE_OPS:
        assert result.resolved != "", "the root itself is never written, deleted or renamed"


@given(text=any_paths, op=write_ops, policy=policies, decoded=st.booleans())
def test_allowed_for_write_implies_allowed_for_read(
    text: str, op: PathOp, policy: PathPolicy, decoded: bool
) -> None:
    if _decide(policy, text, op, decoded=decoded).allowed:
        read = _decide(policy, text, PathOp.READ, decoded=decoded)
        assert read.allowed
        assert read.rule_id == Rule.PATH_ALLOWED


def _no_dot_segments(text: str) -> bool:
    return not any(seg in (".", "..") for seg in text.split("/"))


@given(
    globs=st.lists(
        st.from_regex(r"(?:\*\*/)?(?:[a.*?]{1,3}/){0,2}[a.*?]{1,3}(?:/\*\*)?", fullmatch=True)
        .filter(_no_dot_segments),
        min_size=1,
        max_size=4,
    ),
    path=st.from_regex(r"[aA.b]{1,3}(?:/[aA.b]{1,3}){0,3}", fullmatch=True).filter(
        _no_dot_segments
    ),
)
def test_deny_matcher_agrees_with_a_reference_matcher(globs: list[str], path: str) -> None:
    """Differential: the compiled alternation against one ``fnmatch`` per segment."""
    policy = PathPolicy(allow_hidden=True, deny=tuple(globs))
    assert (policy.denied_by(path) is not None) == ref_denied(path, tuple(globs))


# --- containment is by component, never by string prefix ------------------------------------------


def _property_settings(*, mutant: bool) -> settings:
    """No example database (a mutant's counterexample must not be replayed by the real test);
    for a mutant, stop at the first shrunk failure instead of explaining it."""
    if mutant:
        return settings(
            database=None,
            report_multiple_bugs=False,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow],
        )
    return settings(database=None, suppress_health_check=[HealthCheck.too_slow])


def containment_property(
    within: Callable[[str, str], bool], *, mutant: bool = False
) -> Callable[[], None]:
    """The containment property, parameterised by the implementation under test."""

    @_property_settings(mutant=mutant)
    @given(root=path_roots, suffix=path_sibling_suffixes, tail=st.sampled_from(["", "/x", "/a/b"]))
    def prop(root: str, suffix: str, tail: str) -> None:
        sibling = root + suffix  # "/srv/root" + "secret": a string prefix, not a parent
        assert not within(root, sibling + tail), (root, sibling + tail)
        assert within(root, root + "/" + suffix + tail)
        assert within(root, root)

    return prop


def test_containment_is_by_component_not_prefix() -> None:
    containment_property(is_within)()


def sibling_symlink_property(*, mutant: bool = False) -> Callable[[], None]:
    """No path through a symlink to the sibling ``<root><suffix>`` is ever allowed."""

    @_property_settings(mutant=mutant)
    @given(root=path_roots, suffix=path_sibling_suffixes, tail=path_clean_texts(), op=ops)
    def prop(root: str, suffix: str, tail: str, op: PathOp) -> None:
        resolve = PathFakeFS({f"{root}/lnk": root + suffix})
        path = "lnk/" + tail if tail else "lnk"
        result = POLICIES[1].decide(path, op, root=root, resolve=resolve)
        assert not result.allowed, (root, suffix, path, result)
        assert result.rule_id == Rule.PATH_SYMLINK

    return prop


def test_a_symlink_to_a_sibling_prefix_directory_is_never_allowed() -> None:
    sibling_symlink_property()()


# --- mutants: the properties must catch the CVE-2026-35397 bug ------------------------------------


def _prefix_is_within(root: str, candidate: str) -> bool:
    """The broken check of jupyter_server <= 2.17.0: a string prefix (CVE-2026-35397)."""
    return candidate.startswith(root)


def test_mutant_prefix_containment_is_caught_by_the_property() -> None:
    with pytest.raises(AssertionError):
        containment_property(_prefix_is_within, mutant=True)()


def _prefix_contained(root: tuple[str, list[str]], candidate: tuple[str, list[str]]) -> bool:
    """The same bug on the split form ``decide`` uses: joined back, then a string prefix."""
    return "/".join(candidate[1]).startswith("/".join(root[1]))


def test_mutant_prefix_containment_inside_decide_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Swap the broken check into the policy itself: a link to ``<root>secret`` gets through,
    and the property notices."""
    monkeypatch.setattr(paths, "_contained", _prefix_contained)
    with pytest.raises(AssertionError):
        sibling_symlink_property(mutant=True)()


@given(root=path_roots, suffix=path_sibling_suffixes)
def test_an_apparent_sibling_path_never_reaches_the_resolver(root: str, suffix: str) -> None:
    """``../<name><suffix>`` is refused before any resolution: no ``..`` survives."""
    name = posixpath.basename(root)
    seen: list[str] = []

    def resolve(path: str) -> str:
        seen.append(path)
        return path

    result = POLICIES[1].decide(f"../{name}{suffix}/x", PathOp.READ, root=root, resolve=resolve)
    assert not result.allowed
    assert seen == []


# --- paths.protected: execution persistence and secrets (issue #18) ------------------------------

PROTECTED = load_policy().paths.protected


def _member(glob: str, prefix: str, tail: str) -> str:
    """A concrete path the protected ``glob`` covers: below ``prefix``, and ``tail`` below it."""
    body = glob.removeprefix("**/").replace("python*", "python3.11").replace("*", "x")
    return "/".join(part for part in (prefix, body, tail) if part)


@given(
    glob=st.sampled_from(PROTECTED),
    prefix=st.sampled_from(["", "proj", "home/u", "a/b/c"]),
    tail=st.sampled_from(["", "startup/00-evil.py", "kernel.json", "x/y.py"]),
    op=ops,
    allow_hidden=st.booleans(),
    allow=st.sampled_from([(), ("**",), (".ipython/**", ".local/**", ".ssh/**")]),
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_a_protected_path_is_refused_whatever_allow_hidden_and_allow_say(
    glob: str, prefix: str, tail: str, op: PathOp, allow_hidden: bool, allow: tuple[str, ...]
) -> None:
    """Every operation on every member of the shipped paths.protected set is refused under the
    protected rule, with hidden files allowed or not and whatever paths.allow re-exposes; no
    paths.deny glob is needed for it (a policy that shortens paths.deny keeps this)."""
    policy = PathPolicy(allow_hidden=allow_hidden, deny=(), allow=allow, protected=PROTECTED)
    path = _member(glob, prefix, tail)
    result = policy.decide(path, op, root=ROOT, resolve=posixpath.normpath)
    assert not result.allowed, path
    assert result.rule_id == Rule.PATH_PROTECTED, (path, result.reason)


def test_the_protected_set_names_what_the_issue_lists() -> None:
    """The documented set: IPython profiles, Jupyter config, data and runtime folders (kernels,
    labextensions, notebook_secret), shell and Python start-up files, git hooks, .ssh,
    autostart."""
    policy = PathPolicy(protected=PROTECTED)
    for path in (
        ".ipython/profile_default/ipython_config.py",
        ".ipython/profile_default/startup/00.py",
        ".jupyter/jupyter_server_config.py",
        ".local/share/jupyter/kernels/python3/kernel.json",
        ".local/share/jupyter/labextensions/evil/package.json",
        ".local/share/jupyter/runtime/jpserver-1.json",
        ".local/share/jupyter/notebook_secret",
        "venv/share/jupyter/kernels/k/kernel.json",
        ".bashrc",
        ".profile",
        "proj/sitecustomize.py",
        ".local/lib/python3.12/site-packages/evil.pth",
        "repo/.git/hooks/post-checkout",
        ".gitconfig",
        ".ssh/authorized_keys",
        ".config/autostart/x.desktop",
        "venv/lib/python3.11/site-packages/evil.pth",
        "project/.jupytext.py",  # jupytext executes it in the server process
    ):
        assert policy.denied_by(path) is not None, path
    # data that merely shares a name pattern stays reachable: a model checkpoint is no .pth
    # start-up file outside a site directory
    for path in ("notes.ipynb", "data/table.csv", "src/module.py", "bashrc.txt", "models/m.pth",
                 "project/jupytext.toml"):
        assert policy.denied_by(path) is None, path
