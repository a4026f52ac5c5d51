"""Example tests for the path policy: one per bypass class, on a real file system with symlinks.

Each test names the attack it pins. The invariants behind them are stated as Hypothesis
properties in ``test_paths_properties.py`` and hammered by ``fuzz/fuzz_paths.py``, whose seed
corpus is replayed here (``test_fuzz_corpus_replay``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from hardened_server.policy.decisions import Decision
from hardened_server.policy.loader import load_policy
from hardened_server.policy.paths import (
    MAX_NAME_BYTES,
    MAX_PATH_CHARS,
    MAX_SEGMENTS,
    PATH_RULES,
    ROOT_IMMUTABLE_OPS,
    WRITE_OPS,
    PathDecision,
    PathOp,
    PathPolicy,
    canonicalize,
    glob_to_regex,
    is_hidden_name,
    is_within,
)
from hardened_server.policy.rules import Rule

REPO = Path(__file__).resolve().parents[2]
FUZZ_HARNESS = REPO / "fuzz" / "fuzz_paths.py"
FUZZ_CORPUS = REPO / "fuzz" / "corpus" / "paths"
FUZZ_DICT = REPO / "fuzz" / "dicts" / "paths.dict"

SHIPPED = load_policy().paths
DEFAULT = PathPolicy.from_paths_policy(SHIPPED)
ALLOW_HIDDEN = PathPolicy(allow_hidden=True, deny=SHIPPED.deny)
NO_DENY = PathPolicy()  # hidden files refused, no deny list: isolates the hidden rule


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A served root with hidden files, and symlinks with innocent names pointing elsewhere.

    tmp/
      root/  notebook.ipynb  sub/a.txt  .ssh/id_rsa  .hidden/x.txt
             notes -> .ssh          (innocent name into a denied hidden directory)
             docs -> .hidden        (innocent name into a hidden directory)
             out -> ../outside      (out of the root)
             sib -> ../rootsecret   (the sibling whose name starts with the root's name)
             self -> .              (the root under another name)
      outside/secret.txt
      rootsecret/x.txt
    """
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / ".ssh").mkdir()
    (root / ".hidden").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "rootsecret").mkdir()
    (root / "notebook.ipynb").write_text("{}")
    (root / "sub" / "a.txt").write_text("a")
    (root / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    (root / ".hidden" / "x.txt").write_text("x")
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    (tmp_path / "rootsecret" / "x.txt").write_text("sibling")
    os.symlink(".ssh", root / "notes")
    os.symlink(".hidden", root / "docs")
    os.symlink(tmp_path / "outside", root / "out")
    os.symlink("../rootsecret", root / "sib")
    os.symlink(".", root / "self")
    return root


def decide(
    path: str,
    root: Path,
    op: PathOp = PathOp.READ,
    *,
    policy: PathPolicy = DEFAULT,
    decoded: bool = True,
) -> PathDecision:
    return policy.decide(path, op, root=str(root), decoded=decoded)


def refused(result: str | Decision) -> str:
    """The rule id of a canonicalize refusal (fails the test if it was not refused)."""
    assert isinstance(result, Decision), result
    assert not result.allowed
    return result.rule_id


# --- the shape of the API -------------------------------------------------------------------------


def test_rule_ids_are_the_stable_path_family() -> None:
    ids = [
        Rule.PATH_ALLOWED,
        Rule.PATH_HIDDEN,
        Rule.PATH_DENIED,
        Rule.PATH_ESCAPES_ROOT,
        Rule.PATH_MALFORMED,
        Rule.PATH_SYMLINK,
    ]
    assert ids == [f"HS-PATH-00{n}" for n in range(1, 7)]
    assert Rule.PATH_PROTECTED == "HS-PATH-008"  # HS-PATH-007 is the gate's raw-target rule
    assert set(PATH_RULES) == {*ids, Rule.PATH_PROTECTED}


def test_every_contents_entry_point_has_an_op() -> None:
    assert {op.value for op in PathOp} == {
        "read", "list", "write", "create", "copy-from", "copy-to", "rename-from", "rename-to",
        "delete", "checkpoint", "trust", "convert", "view", "resolve", "serve-static",
    }  # fmt: skip
    assert ROOT_IMMUTABLE_OPS <= WRITE_OPS


def test_a_plain_notebook_is_allowed_for_every_op(tree: Path) -> None:
    for op in PathOp:
        result = decide("notebook.ipynb", tree, op)
        assert result.allowed, (op, result)
        assert result.rule_id == Rule.PATH_ALLOWED
        assert result.path == "notebook.ipynb"
        assert result.resolved == "notebook.ipynb"


def test_a_refusal_carries_no_path_and_reads_as_false(tree: Path) -> None:
    result = decide(".ssh/id_rsa", tree)
    assert not result
    assert result.path is None
    assert result.resolved is None
    assert isinstance(result.decision, Decision)


def test_reasons_name_the_rule_not_the_file(tree: Path) -> None:
    """Reasons go to logs and audit records: the rule (and the deny glob, which is
    configuration), never the requested name or any content."""
    paths = (".ssh/authorized_keys", "notes/authorized_keys", "out/secret.txt", "%2e%2e/secret.txt")
    for path in paths:
        reason = decide(path, tree, decoded=False).reason
        assert "authorized_keys" not in reason
        assert "secret.txt" not in reason
        assert "PRIVATE" not in reason


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("/", ""),
        ("./", ""),
        ("a", "a"),
        ("/a/b.ipynb", "a/b.ipynb"),
        ("a//b/./c/", "a/b/c"),
        ("./a/./b", "a/b"),
        ("a/~b/c~", "a/~b/c~"),
        ("Ärger/naïve.txt", "Ärger/naïve.txt"),
        ("report\uff0eipynb", "report\uff0eipynb"),  # a fullwidth dot inside a name is harmless
    ],
)
def test_empty_and_dot_segments_collapse(raw: str, canonical: str) -> None:
    assert canonicalize(raw, decoded=True) == canonical
    assert canonicalize(canonical, decoded=True) == canonical  # idempotent


# --- hidden files and the deny list ---------------------------------------------------------------


@pytest.mark.parametrize("path", [".hidden", ".hidden/x.txt", "sub/.cache/x", "a/b/.c"])
def test_a_dot_prefixed_component_is_hidden(tree: Path, path: str) -> None:
    """GHSA-q874-g24w-4q9g: hidden files must be unreachable, not merely unlisted."""
    assert decide(path, tree).rule_id == Rule.PATH_HIDDEN
    assert any(is_hidden_name(segment) for segment in path.split("/"))


def test_allow_hidden_opens_hidden_files_but_never_denied_ones(tree: Path) -> None:
    assert decide(".hidden/x.txt", tree, policy=ALLOW_HIDDEN).allowed
    assert decide(".ssh/id_rsa", tree, policy=ALLOW_HIDDEN).rule_id == Rule.PATH_DENIED


def test_deny_holds_even_when_an_allow_glob_matches(tree: Path) -> None:
    policy = PathPolicy(allow_hidden=True, deny=SHIPPED.deny, allow=(".ssh/**", ".ssh/id_rsa"))
    assert decide(".ssh/id_rsa", tree, policy=policy).rule_id == Rule.PATH_DENIED
    assert policy.allowed_by(".ssh/id_rsa")  # the allow glob does match...
    assert policy.denied_by(".ssh/id_rsa") == ".ssh/**"  # ...and deny wins


@pytest.mark.parametrize("op", [PathOp.LIST, PathOp.READ, PathOp.DELETE, PathOp.RENAME_FROM])
@pytest.mark.parametrize("path", [".ssh", "sub/.ssh", ".git", "a/b/.git", ".jupyter"])
def test_deny_covers_the_directory_itself(tree: Path, path: str, op: PathOp) -> None:
    """Denying ``.ssh/**`` must deny ``.ssh`` too, or the directory could be listed/renamed."""
    assert decide(path, tree, op, policy=ALLOW_HIDDEN).rule_id == Rule.PATH_DENIED


@pytest.mark.parametrize(
    "path",
    [
        ".local/share/jupyter/runtime/jpserver-1234.json",
        ".local/share/jupyter/runtime",
        "work/jpserver-99.json",
        "work/jpserver-99-open.html",
        "deep/er/jupyter_cookie_secret",
        ".ipython/profile_default/startup/00-evil.py",
    ],
)
def test_runtime_and_startup_files_are_denied(tree: Path, path: str) -> None:
    """CVE-2022-29241: the runtime file holds the server's token (and the cookie secret sits
    next to it); IPython startup files run code in every new kernel."""
    assert decide(path, tree, policy=ALLOW_HIDDEN).rule_id == Rule.PATH_DENIED


@pytest.mark.parametrize("path", [".SSH/id_rsa", ".Ssh", "keys/SERVER.PEM", ".Git/config"])
def test_deny_is_case_insensitive(tree: Path, path: str) -> None:
    """APFS and NTFS are case-insensitive by default: ``.SSH`` opens ``.ssh``."""
    assert decide(path, tree, policy=ALLOW_HIDDEN).rule_id == Rule.PATH_DENIED


def test_allow_glob_is_an_exception_to_the_hidden_rule_as_spelled(tree: Path) -> None:
    policy = PathPolicy(deny=SHIPPED.deny, allow=(".config/app/**",))
    assert decide(".config/app/settings.json", tree, policy=policy).allowed
    assert decide(".config/app", tree, PathOp.LIST, policy=policy).allowed  # the dir itself
    assert decide(".config/other", tree, policy=policy).rule_id == Rule.PATH_HIDDEN
    # Exceptions are never widened by case folding or normalisation.
    assert decide(".CONFIG/app/x", tree, policy=policy).rule_id == Rule.PATH_HIDDEN
    # And they never beat deny.
    assert decide(".config/gcloud/x", tree, policy=policy).rule_id == Rule.PATH_DENIED


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("**/*.pem", ["a.pem", "a/b/c.pem"], ["a.pem.txt", "a/pem"]),
        ("*.txt", ["a.txt"], ["a/b.txt", "a.txt/b"]),
        ("a/?.py", ["a/b.py"], ["a/bc.py", "a/.py", "a/b/c.py"]),
        (".ssh/**", [".ssh", ".ssh/id_rsa", ".ssh/a/b"], [".sshx", "a/.ssh"]),
        ("a/**/b", ["a/b", "a/x/b", "a/x/y/b"], ["a/xb", "ab"]),
        ("a[1].txt", ["a[1].txt"], ["a1.txt"]),  # no character classes: '[' is literal
        ("**", ["", "a", "a/b"], []),
    ],
)
def test_glob_semantics(glob: str, matches: list[str], misses: list[str]) -> None:
    rx = re.compile(glob_to_regex(glob), re.DOTALL)
    for path in matches:
        assert rx.fullmatch(path), (glob, path)
    for path in misses:
        assert not rx.fullmatch(path), (glob, path)


def test_a_deny_glob_covers_everything_below_what_it_matches() -> None:
    policy = PathPolicy(deny=(".env*", "**/*.key"))
    assert policy.denied_by(".envrc.d/inner") == ".env*"
    assert policy.denied_by("a/b.key/c") == "**/*.key"
    assert policy.denied_by("a/.env") is None  # no leading "**/": anchored at the root


@pytest.mark.parametrize("glob", ["/etc/**", "../x", "a/../b", "a\\b", "", "a\x00"])
def test_malformed_globs_are_refused_at_compile_time(glob: str) -> None:
    with pytest.raises(ValueError, match="path glob"):
        PathPolicy(deny=(glob,))


# --- encoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("%2e%2e/x", Rule.PATH_ESCAPES_ROOT),
        ("%2E%2E%2Fx", Rule.PATH_ESCAPES_ROOT),
        (".%2e/x", Rule.PATH_ESCAPES_ROOT),
        ("%2e./x", Rule.PATH_ESCAPES_ROOT),
        ("sub/%2e%2e/x", Rule.PATH_MALFORMED),  # inside the root, still refused
        ("%2essh/id_rsa", Rule.PATH_DENIED),
        ("%2ehidden/x.txt", Rule.PATH_HIDDEN),
        ("sub%2f%2ehidden", Rule.PATH_HIDDEN),
    ],
)
def test_an_encoded_dot_is_decoded_once_and_then_judged(tree: Path, raw: str, rule: str) -> None:
    assert decide(raw, tree, decoded=False).rule_id == rule


def test_decoded_input_is_not_decoded_again(tree: Path) -> None:
    """A path already decoded by tornado: ``%2e%2e`` is a literal (odd) name, never ``..``."""
    result = decide("%2e%2e/x", tree, decoded=True)
    assert result.allowed
    assert result.path == "%2e%2e/x"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("%252e%252e/%252e%252e/etc/passwd", "%2e%2e/%2e%2e/etc/passwd"),
        ("%252e%252e", "%2e%2e"),
        ("%252essh/config", "%2essh/config"),
        ("%25252e", "%252e"),
    ],
)
def test_double_encoded_dot_is_a_harmless_name_not_a_dot(
    tree: Path, raw: str, canonical: str
) -> None:
    """Decoded exactly once, ``%252e`` is the literal name ``%2e``: it must neither count as
    ``..`` nor as hidden, and it cannot leave the root."""
    result = decide(raw, tree, decoded=False)
    assert result.allowed, result
    assert result.path == canonical
    assert result.resolved == canonical
    assert is_within(os.path.realpath(tree), os.path.join(os.path.realpath(tree), canonical))


@pytest.mark.parametrize(
    "raw", ["%ff%fe", "%c0%ae%c0%ae/x", "%e0%80%ae", "%ed%a0%80", "a/%80", "%f4%90%80%80"]
)
def test_invalid_utf8_after_decoding_is_refused(tree: Path, raw: str) -> None:
    """Overlong ``%c0%ae`` is a ``.`` to a lenient decoder; ``%ed%a0%80`` a surrogate."""
    result = decide(raw, tree, decoded=False)
    assert result.rule_id == Rule.PATH_MALFORMED
    assert "UTF-8" in result.reason


@pytest.mark.parametrize("raw", ["%zz", "%4", "%", "a%2", "%g0/x", "x%"])
def test_invalid_escapes_are_refused(tree: Path, raw: str) -> None:
    assert decide(raw, tree, decoded=False).rule_id == Rule.PATH_MALFORMED
    assert decide(raw, tree, decoded=True).rule_id in (Rule.PATH_ALLOWED, Rule.PATH_MALFORMED)


# --- traversal and containment --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "/../root/x", "../rootsecret/x.txt"])
def test_dotdot_leaving_the_root_is_refused(tree: Path, path: str) -> None:
    assert decide(path, tree).rule_id == Rule.PATH_ESCAPES_ROOT


@pytest.mark.parametrize("path", ["a/..", "sub/../notebook.ipynb", "a/b/../../c"])
def test_dotdot_inside_the_root_is_refused_too(tree: Path, path: str) -> None:
    """We refuse every ``..`` rather than resolve it: no second resolver to disagree with."""
    assert decide(path, tree).rule_id == Rule.PATH_MALFORMED


def test_sibling_prefix_directory_is_outside_the_root(tree: Path) -> None:
    """CVE-2026-35397: ``<root>secret`` starts with ``<root>`` as a string but is not inside."""
    root = os.path.realpath(tree)
    assert not is_within(root, root + "secret")
    assert not is_within(root, root + "secret/x.txt")
    assert is_within(root, root)
    assert is_within(root, root + "/secret")
    assert not is_within(root, "relative/path")
    assert decide("../rootsecret/x.txt", tree).rule_id == Rule.PATH_ESCAPES_ROOT
    result = decide("sib/x.txt", tree)  # through the symlink, on a real file system
    assert result.rule_id == Rule.PATH_SYMLINK
    assert "outside the root" in result.reason


def test_symlink_with_innocent_name_into_a_denied_dir_is_refused(tree: Path) -> None:
    """Stock ``is_hidden`` looks at names only: ``linkssh/id_rsa`` was served (200) and
    ``linkssh/authorized_keys`` written (201) through a symlink into ``.ssh``."""
    for policy in (DEFAULT, ALLOW_HIDDEN):
        for op in (PathOp.READ, PathOp.WRITE, PathOp.LIST):
            result = decide("notes/authorized_keys", tree, op, policy=policy)
            assert result.rule_id == Rule.PATH_SYMLINK, (policy, op, result)
            assert "paths.deny" in result.reason
    assert decide("notes", tree, PathOp.LIST).rule_id == Rule.PATH_SYMLINK


def test_symlink_with_innocent_name_into_a_hidden_dir(tree: Path) -> None:
    result = decide("docs/x.txt", tree)
    assert result.rule_id == Rule.PATH_SYMLINK
    assert "hidden" in result.reason
    allowed = decide("docs/x.txt", tree, policy=ALLOW_HIDDEN)
    assert allowed.allowed
    assert allowed.path == "docs/x.txt"
    assert allowed.resolved == ".hidden/x.txt"


@pytest.mark.parametrize("path", ["out", "out/secret.txt", "out/new-file.txt"])
def test_symlink_out_of_the_root_is_refused(tree: Path, path: str) -> None:
    for op in (PathOp.READ, PathOp.CREATE, PathOp.RENAME_TO):
        assert decide(path, tree, op).rule_id == Rule.PATH_SYMLINK


def test_a_new_file_is_decided_on_its_resolved_parent(tree: Path) -> None:
    """Writes name files that do not exist yet; realpath resolves the existing prefix."""
    assert decide("sub/new.ipynb", tree, PathOp.CREATE).allowed
    assert decide("notes/authorized_keys", tree, PathOp.WRITE).rule_id == Rule.PATH_SYMLINK


def test_a_symlinked_root_is_resolved_too(tmp_path: Path, tree: Path) -> None:
    link_root = tmp_path / "root-link"
    os.symlink(tree, link_root)
    assert decide("notebook.ipynb", link_root).allowed
    assert decide("sib/x.txt", link_root).rule_id == Rule.PATH_SYMLINK


@pytest.mark.parametrize("op", sorted(ROOT_IMMUTABLE_OPS))
def test_the_root_itself_cannot_be_deleted_renamed_or_overwritten(tree: Path, op: PathOp) -> None:
    """A DELETE of the empty API path would remove the served directory itself."""
    assert decide("", tree, op).rule_id == Rule.PATH_ESCAPES_ROOT
    assert decide("/", tree, op).rule_id == Rule.PATH_ESCAPES_ROOT
    assert decide("self", tree, op).rule_id == Rule.PATH_ESCAPES_ROOT  # nor under another name


@pytest.mark.parametrize("op", [PathOp.LIST, PathOp.READ, PathOp.CREATE, PathOp.COPY_TO])
def test_the_root_can_be_listed_and_created_into(tree: Path, op: PathOp) -> None:
    result = decide("", tree, op)
    assert result.allowed
    assert result.path == ""
    assert result.resolved == ""


@pytest.mark.parametrize(
    "resolver",
    [
        lambda p: (_ for _ in ()).throw(OSError(40, "too many levels of symbolic links")),
        lambda p: (_ for _ in ()).throw(ValueError("embedded null byte")),
        lambda p: "relative/path",
    ],
    ids=["oserror", "valueerror", "relative"],
)
def test_a_failing_resolver_refuses_instead_of_raising(resolver: Callable[[str], str]) -> None:
    result = DEFAULT.decide("a.txt", PathOp.READ, root="/srv/root", resolve=resolver)
    assert result.rule_id == Rule.PATH_SYMLINK


def test_caller_mistakes_raise() -> None:
    with pytest.raises(ValueError, match="root must be an absolute path"):
        DEFAULT.decide("a", PathOp.READ, root="relative/root")
    with pytest.raises(ValueError, match="bogus"):
        DEFAULT.decide("a", "bogus", root="/srv/root")


def test_op_may_be_given_as_its_string_value(tree: Path) -> None:
    assert DEFAULT.decide("notebook.ipynb", "copy-from", root=str(tree)).allowed


# --- malformed inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "decoded"),
    [("a\x00b", True), ("%00", False), ("a/b.ipynb%00.txt", False), ("..\x00", True)],
)
def test_nul_is_refused(tree: Path, path: str, decoded: bool) -> None:
    """``posixpath.normpath('a/\\x00/../b') == 'a/b'``; ``realpath`` raises on NUL (a 500)."""
    result = decide(path, tree, decoded=decoded)
    assert result.rule_id == Rule.PATH_MALFORMED


@pytest.mark.parametrize(
    ("path", "decoded"),
    [("..\\x", True), ("a\\b", True), ("..%5cx", False), ("%5C%5Cserver%5Cshare", False)],
)
def test_backslash_is_refused(tree: Path, path: str, decoded: bool) -> None:
    """``ntpath.normpath('a/..\\\\b') == 'b'``: a separator on Windows and for browsers."""
    result = decide(path, tree, decoded=decoded)
    assert result.rule_id == Rule.PATH_MALFORMED
    assert "backslash" in result.reason


@pytest.mark.parametrize("path", ["secret.", "secret ", "dir./x", "dir /x", "...", ". .", ".. "])
def test_trailing_dot_or_space_is_refused(tree: Path, path: str) -> None:
    """Win32 strips them at open time: ``secret.`` opens ``secret`` past a deny glob."""
    assert decide(path, tree).rule_id == Rule.PATH_MALFORMED
    assert decide(path.replace(" ", "%20"), tree, decoded=False).rule_id == Rule.PATH_MALFORMED


@pytest.mark.parametrize(
    "path",
    [
        "\u2024\u2024/x",  # ONE DOT LEADER x2: NFKC '..'
        "\uff0e\uff0e/x",  # FULLWIDTH FULL STOP x2
        "\u2025/x",  # TWO DOT LEADER: NFKC '..'
        "sub/\ufe52",  # SMALL FULL STOP: NFKC '.'
        "a\u2215b",  # DIVISION SLASH
        "a\uff0fb",  # FULLWIDTH SOLIDUS: NFKC '/'
        "a\u2044b",  # FRACTION SLASH
        "a\u29f8b",  # BIG SOLIDUS
        "a\uff3cb",  # FULLWIDTH REVERSE SOLIDUS: NFKC '\\'
        "\u2100",  # ACCOUNT OF: NFKC 'a/c'
        "secret\u00a0",  # NO-BREAK SPACE: NFKC ' ', a trailing space in disguise
        "name\u2488",  # DIGIT ONE FULL STOP: NFKC '1.', a trailing dot in disguise
    ],
)
def test_unicode_lookalikes_of_dot_and_slash_are_refused(tree: Path, path: str) -> None:
    """A later layer that normalises (macOS APIs, some frameworks) would see a different path."""
    assert decide(path, tree).rule_id == Rule.PATH_MALFORMED
    raw = "".join(c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode()) for c in path)
    assert decide(raw, tree, decoded=False).rule_id == Rule.PATH_MALFORMED


@pytest.mark.parametrize("path", ["\uff0ehidden/x", "\u2024hidden", "sub/\ufe52cache"])
def test_a_name_whose_nfkc_form_starts_with_a_dot_is_hidden(tree: Path, path: str) -> None:
    assert decide(path, tree, policy=NO_DENY).rule_id == Rule.PATH_HIDDEN
    assert decide(path, tree, policy=ALLOW_HIDDEN).allowed


def test_a_lookalike_dot_does_not_slip_past_deny(tree: Path) -> None:
    assert decide("\uff0essh/id_rsa", tree, policy=ALLOW_HIDDEN).rule_id == Rule.PATH_DENIED
    assert decide("keys/server\uff0epem", tree, policy=ALLOW_HIDDEN).rule_id == Rule.PATH_DENIED


@pytest.mark.parametrize(
    "path", ["C:", "C:/Windows/win.ini", "c:x", "/D:/x", "sub/e:", "\uff23\uff1a/x"]
)
def test_drive_letters_are_refused(tree: Path, path: str) -> None:
    """``ntpath.join('C:\\\\root', 'D:evil') == 'D:evil'``."""
    assert decide(path, tree).rule_id == Rule.PATH_MALFORMED


@pytest.mark.parametrize(
    ("path", "decoded"),
    [
        ("//server/share", True),
        ("//server/share/x.ipynb", True),
        ("///x", True),
        ("%2f%2fserver/share", False),
        ("%2F/server/share", False),
        ("\\\\server\\share", True),
        ("\\\\?\\C:\\x", True),
    ],
)
def test_unc_forms_are_refused(tree: Path, path: str, decoded: bool) -> None:
    """CVE-2024-35178: a UNC path made a Windows server authenticate (NTLM) to ``server``."""
    assert decide(path, tree, decoded=decoded).rule_id == Rule.PATH_MALFORMED


@pytest.mark.parametrize("path", ["key.pem::$DATA", "d:$I30:$INDEX_ALLOCATION/x", "x::y"])
def test_ntfs_stream_syntax_is_refused(tree: Path, path: str) -> None:
    assert decide(path, tree, policy=ALLOW_HIDDEN).rule_id == Rule.PATH_MALFORMED


def test_a_named_stream_suffix_does_not_slip_past_deny(tree: Path) -> None:
    assert decide("keys/server.pem:x", tree).rule_id == Rule.PATH_DENIED


@pytest.mark.parametrize("path", ["~", "~root/.bashrc", "~/x", "/~user"])
def test_a_leading_tilde_is_refused(tree: Path, path: str) -> None:
    """``expanduser`` anywhere downstream would turn ``~root`` into another home."""
    assert decide(path, tree).rule_id == Rule.PATH_MALFORMED


@pytest.mark.parametrize(
    "path",
    ["\x1b[31m", "a\nb", "a\rb", "a\tb", "\x7f", "a\u0085b", "a\u202eb", "\ufeffa", "a\u2028"],
)
def test_controls_and_bidi_characters_are_refused(tree: Path, path: str) -> None:
    assert decide(path, tree).rule_id == Rule.PATH_MALFORMED


@pytest.mark.parametrize(("path", "decoded"), [("\udcff", True), ("a\udcff%41", False)])
def test_lone_surrogates_are_refused(tree: Path, path: str, decoded: bool) -> None:
    """``surrogateescape``-decoded bytes are not a name the file system can hold as UTF-8."""
    assert decide(path, tree, decoded=decoded).rule_id == Rule.PATH_MALFORMED


def test_ten_thousand_segments_are_refused_quickly(tree: Path) -> None:
    assert decide("a/" * 10_000, tree).rule_id == Rule.PATH_MALFORMED
    assert decide("%2e/" * 10_000, tree, decoded=False).rule_id == Rule.PATH_MALFORMED
    assert decide("/".join(["a"] * MAX_SEGMENTS), tree).allowed
    assert decide("/".join(["a"] * (MAX_SEGMENTS + 1)), tree).rule_id == Rule.PATH_MALFORMED
    assert decide("/" * (MAX_SEGMENTS + 10) + "a", tree).rule_id == Rule.PATH_MALFORMED


def test_overlong_paths_and_names_are_refused(tree: Path) -> None:
    assert decide("a" * MAX_NAME_BYTES, tree).allowed
    assert decide("a" * (MAX_NAME_BYTES + 1), tree).rule_id == Rule.PATH_MALFORMED
    assert decide("é" * 128, tree).rule_id == Rule.PATH_MALFORMED  # 256 bytes in UTF-8
    long_path = "/".join(["b" * 200] * 21)  # 4220 characters
    assert len(long_path) > MAX_PATH_CHARS
    assert decide(long_path, tree).rule_id == Rule.PATH_MALFORMED
    assert decide("%41" * 20_000, tree, decoded=False).rule_id == Rule.PATH_MALFORMED


def test_canonicalize_refusals_are_decisions_not_exceptions() -> None:
    assert refused(canonicalize("../x", decoded=True)) == Rule.PATH_ESCAPES_ROOT
    assert refused(canonicalize("%zz", decoded=False)) == Rule.PATH_MALFORMED
    assert canonicalize("%zz", decoded=True) == "%zz"


# --- the fuzz corpus ------------------------------------------------------------------------------


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_paths_harness", FUZZ_HARNESS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("fuzz_paths_harness", None)
    spec.loader.exec_module(module)
    return module


def test_fuzz_corpus_replay() -> None:
    """Every seed of fuzz/corpus/paths goes through the harness and its invariants, every
    policy variant and both decoding modes (the knob is the first byte, varied here)."""
    harness = _load_harness()
    seeds = sorted(p for p in FUZZ_CORPUS.iterdir() if p.is_file())
    assert len(seeds) >= 12
    allowed = 0
    for seed in seeds:
        data = seed.read_bytes()
        harness.TestOneInput(data)
        for knob in range(6):  # 2 decoding modes x 3 policy variants, same path text
            harness.TestOneInput(bytes([knob]) + data)
        if DEFAULT.decide(
            data.decode("utf-8", "surrogateescape"),
            PathOp.READ,
            root=harness.ROOT,
            resolve=harness.RESOLVE,
        ):
            allowed += 1
    assert 0 < allowed < len(seeds)  # the corpus exercises both outcomes


def test_fuzz_dictionary_is_well_formed() -> None:
    """libFuzzer refuses to start on a bad dictionary line."""
    line_re = re.compile(r'[A-Za-z0-9_]+="(?:[^"\\]|\\\\|\\"|\\x[0-9a-fA-F]{2})*"')
    entries = 0
    for line in FUZZ_DICT.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assert line_re.fullmatch(line), line
        entries += 1
    assert entries >= 40


# -- served_relative_path: may the contents API reach one of the server's own files? ----------


def test_served_relative_path_outside_inside_and_denied(tmp_path):
    from hardened_server.policy.loader import load_policy
    from hardened_server.policy.paths import served_relative_path

    paths = load_policy().paths
    root = tmp_path / "home"
    runtime = root / ".local/share/jupyter/runtime"
    runtime.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    assert served_relative_path(str(root), str(tmp_path / "elsewhere" / "t.json"), paths) is None
    # below the root under the shipped deny glob: out of reach
    assert served_relative_path(str(root), str(runtime / "t.json"), paths) is None
    # below the root, hidden but under no deny glob: reachable (allow_hidden could lift it)
    assert served_relative_path(str(root), str(root / ".rt" / "t.json"), paths) == ".rt/t.json"
    assert served_relative_path(str(root), str(root / "t.json"), paths) == "t.json"
    # a symlinked directory from outside into the root counts as inside
    (tmp_path / "link").symlink_to(root / "work", target_is_directory=True)
    (root / "work").mkdir()
    assert served_relative_path(str(root), str(tmp_path / "link" / "a.jsonl"), paths) == (
        "work/a.jsonl"
    )


def test_served_file_problem_is_the_one_refusal_for_the_servers_own_files(tmp_path):
    """Start-up (HS-ID-040, HS-AUDIT-001), reload and the audit's checks share this refusal:
    the rule id, the setting and the fix come from SERVER_FILE_RULES."""
    from hardened_server.policy.loader import load_policy
    from hardened_server.policy.paths import (
        SERVER_FILE_RULES,
        ServerFile,
        served_file_problem,
    )

    paths = load_policy().paths
    root = tmp_path / "home"
    runtime = root / ".local/share/jupyter/runtime"
    runtime.mkdir(parents=True)
    (tmp_path / "out").mkdir()
    store = str(root / "tokens.json")
    problem = served_file_problem(ServerFile.TOKEN_STORE, store, str(root), paths)
    assert problem is not None
    assert problem.rule_id == Rule.ID_TOKEN_STORE_SERVED
    assert problem.setting == SERVER_FILE_RULES[ServerFile.TOKEN_STORE].setting
    assert problem.fix == SERVER_FILE_RULES[ServerFile.TOKEN_STORE].fix
    assert "'tokens.json'" in str(problem)
    assert "no paths.deny glob covers it" in str(problem)
    # under the shipped runtime deny glob, outside the root, or with no root: nothing to refuse
    for kind in ServerFile:
        assert served_file_problem(kind, str(runtime / "f"), str(root), paths) is None
        assert served_file_problem(kind, str(tmp_path / "out" / "f"), str(root), paths) is None
        assert served_file_problem(kind, store, "", paths) is None
    # without path rules (the audit file is placed before they compile) the deny glob does
    # not help: anywhere inside the root is refused
    audit = served_file_problem(ServerFile.AUDIT_FILE, str(runtime / "a.jsonl"), str(root), None)
    assert audit is not None
    assert audit.rule_id == Rule.AUDIT_FILE_IN_ROOT
    # a reload names the key it changed; a caller may name the file its own way
    reload = served_file_problem(
        ServerFile.AUDIT_FILE, store, str(root), paths, what="audit.file", setting="paths.deny"
    )
    assert reload is not None
    assert reload.setting == "paths.deny"
    assert "refusing to start: audit.file " in str(reload)


def test_path_below_root_resolves_the_directory_and_the_leaf_only_when_asked(tmp_path):
    """The one "inside the served root" test (start-up refusals, audit file, audit checks)."""
    from hardened_server.policy.paths import path_below_root

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    assert path_below_root(str(root), str(root)) == "."
    assert path_below_root(str(root), str(root / "sub" / "new.json")) == "sub/new.json"
    assert path_below_root(str(root), str(tmp_path / "out" / "x")) is None
    assert path_below_root(str(root), str(tmp_path / "rootx" / "x")) is None  # not a prefix test
    assert path_below_root("/", str(tmp_path / "out")) is not None
    # a directory linked from inside the root to outside: the link's name is inside, its target
    # is not; resolve_leaf follows it (an existing directory), the default does not (a file)
    (root / "rt").symlink_to(tmp_path / "out", target_is_directory=True)
    assert path_below_root(str(root), str(root / "rt")) == "rt"
    assert path_below_root(str(root), str(root / "rt"), resolve_leaf=True) is None
    assert path_below_root(str(root), str(root / "rt" / "f")) is None
