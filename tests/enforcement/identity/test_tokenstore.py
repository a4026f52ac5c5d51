"""The token store: file format, atomicity, permissions, and the token lifecycle as a state
machine (create, use, expire, revoke, rotate, restart)."""

from __future__ import annotations

import json
import os
import stat
import string
from pathlib import Path

import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from hardened_server.enforcement.identity.tokenstore import (
    PREFIX,
    STORE_FILENAME,
    TokenStore,
    TokenStoreError,
    check_scopes,
    parse_duration,
    parse_token_id,
    store_path_for,
)
from hardened_server.fsutil import atomic_write
from hardened_server.policy.scopes import SCOPES


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_file_is_0600_holds_only_hashes_and_the_secret_is_256_bits(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "run" / "tokens.json")
    secret, rec = store.create("ci", ["contents:read"], 3600)
    assert secret.startswith(PREFIX + rec.id + "_")
    random_part = secret[len(PREFIX + rec.id + "_") :]
    assert len(random_part) == 43  # 32 random bytes, base64url
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600, oct(mode)
    text = store.path.read_text()
    assert secret not in text
    assert random_part not in text
    doc = json.loads(text)
    entry = doc["tokens"][0]
    assert set(entry) == {"id", "name", "scopes", "created", "expires", "last_used", "sha256"}
    assert entry["scopes"] == ["contents:read"]
    again = TokenStore(store.path).authenticate(secret)
    assert again is not None
    assert again.id == rec.id
    assert again.scopes == ("contents:read",)


def test_unknown_scope_and_bad_durations_are_refused_clearly() -> None:
    with pytest.raises(TokenStoreError, match=r"unknown scope 'contents:raed'.*contents:read"):
        check_scopes(["contents:raed"])
    with pytest.raises(TokenStoreError, match="at least one"):
        check_scopes([])
    assert check_scopes(["admin", "contents:read"]) == ("contents:read", "admin")
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("never") is None
    for bad in ("0d", "7", "-1d", "7 days", "1y"):
        with pytest.raises(TokenStoreError, match="positive duration"):
            parse_duration(bad)


def test_damaged_file_fails_closed_and_a_write_never_leaves_half_a_file(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    secret, _ = store.create("a", ["admin"], None)
    server = TokenStore(store.path)
    assert server.authenticate(secret) is not None
    store.path.write_text('{"version": 1, "tokens": [')  # truncated by hand
    assert server.authenticate(secret) is None
    with pytest.raises(TokenStoreError, match="not JSON"):
        store.create("b", ["admin"], None)

    class Boom(Exception):
        pass

    target = tmp_path / "atomic.json"
    target.write_text("old")
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise Boom

    os.fsync = failing_fsync  # type: ignore[assignment]
    try:
        with pytest.raises(Boom):
            atomic_write(target, b"new")
    finally:
        os.fsync = real_fsync  # type: ignore[assignment]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_revoke_by_the_cli_is_not_undone_by_the_servers_last_used_write(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "tokens.json"
    secret, rec = TokenStore(path, clock).create("a", ["admin"], None)
    server = TokenStore(path, clock)
    assert server.authenticate(secret) is not None
    TokenStore(path, clock).revoke(rec.id)
    clock.now += 3600  # the next use would write last_used
    assert server.authenticate(secret) is None
    assert TokenStore(path).list() == []


def test_tampered_and_malformed_tokens_never_authenticate(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    secret, rec = store.create("a", ["admin"], None)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in (
        flipped,
        secret + "x",
        secret[:-1],
        secret.upper(),
        "",
        PREFIX,
        f"{PREFIX}{rec.id}_",
        secret.replace(rec.id, "0" * 12),
    ):
        assert store.authenticate(bad) is None, bad
    assert parse_token_id(secret) == rec.id


# -- the state machine --------------------------------------------------------------------------

_names = st.text(string.ascii_letters + string.digits, min_size=1, max_size=12)
_scopes = st.lists(st.sampled_from(SCOPES), min_size=1, max_size=3, unique=True)
_lifetimes = st.one_of(st.none(), st.integers(min_value=1, max_value=10_000).map(float))


class TokenLifecycle(RuleBasedStateMachine):
    """The running server holds one ``TokenStore`` (``server``); every CLI command opens its
    own (``cli()``), as ``hardened-server token ...`` does; ``restart`` reopens the server's
    from the file. The model: token id -> (live secret, expiry). A secret that was revoked or
    rotated out, or whose token expired, never authenticates; a live one always does, with its
    scopes."""

    live = Bundle("live")

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="hs-tokens-"))
        self.path = self.dir / "tokens.json"
        self.clock = Clock()
        self.server = TokenStore(self.path, self.clock)
        self.model: dict[str, tuple[str, float | None, tuple[str, ...]]] = {}
        self.dead: list[str] = []

    def cli(self) -> TokenStore:
        return TokenStore(self.path, self.clock)

    @rule(target=live, name=_names, scopes=_scopes, lifetime=_lifetimes)
    def create(self, name: str, scopes: list[str], lifetime: float | None) -> str:
        secret, rec = self.cli().create(name, scopes, lifetime)
        self.model[rec.id] = (secret, rec.expires, rec.scopes)
        return rec.id

    @rule(token_id=live)
    def use(self, token_id: str) -> None:
        if token_id not in self.model:
            return
        secret, expires, scopes = self.model[token_id]
        rec = self.server.authenticate(secret)
        alive = expires is None or self.clock.now < expires
        note(f"use {token_id} alive={alive} got={rec}")
        if alive:
            assert rec is not None
            assert rec.id == token_id
            assert rec.scopes == scopes
        else:
            assert rec is None
            self.dead.append(secret)

    @rule(seconds=st.integers(min_value=1, max_value=20_000))
    def advance_clock(self, seconds: int) -> None:
        self.clock.now += seconds

    @rule(token_id=consumes(live))
    def revoke(self, token_id: str) -> None:
        secret, _, _ = self.model.pop(token_id)
        self.cli().revoke(token_id)
        self.dead.append(secret)

    @rule(token_id=live, lifetime=st.one_of(st.just("keep"), _lifetimes))
    def rotate(self, token_id: str, lifetime: float | str | None) -> None:
        old, _expires, scopes = self.model[token_id]
        secret, rec = self.cli().rotate(token_id, lifetime)
        assert secret != old
        assert rec.scopes == scopes
        self.model[token_id] = (secret, rec.expires, scopes)
        self.dead.append(old)

    @rule()
    def restart(self) -> None:
        self.server = TokenStore(self.path, self.clock)

    @rule(token_id=live)
    def use_tampered(self, token_id: str) -> None:
        secret = self.model[token_id][0]
        tampered = secret[:-2] + ("xy" if secret[-2:] != "xy" else "yz")
        assert self.server.authenticate(tampered) is None

    @invariant()
    def dead_secrets_never_authenticate(self) -> None:
        for secret in self.dead[-20:]:
            assert self.server.authenticate(secret) is None

    @invariant()
    def list_matches_the_model(self) -> None:
        assert {r.id for r in self.cli().list()} == set(self.model)

    def teardown(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


TokenLifecycle.TestCase.settings = settings(
    max_examples=min(settings().max_examples, 60), stateful_step_count=25, deadline=None
)
test_token_lifecycle = TokenLifecycle.TestCase


@given(st.text(max_size=80))
def test_arbitrary_strings_never_authenticate(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    assume(not text.startswith(PREFIX) or len(text) > 3)
    store = TokenStore(tmp_path_factory.getbasetemp() / "arbitrary.json")
    assert store.authenticate(text) is None


def test_the_store_path_is_the_override_then_the_policy_then_the_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One answer for the server, ``hardened-server token`` and the audit (HS-TOKEN-1xx)."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
    assert store_path_for() == tmp_path / "rt" / STORE_FILENAME
    assert store_path_for(runtime_dir="/run/x") == Path("/run/x") / STORE_FILENAME
    assert store_path_for(configured="/srv/tokens.json", runtime_dir="/run/x") == Path(
        "/srv/tokens.json"
    )
    assert store_path_for("/opt/t.json", configured="/srv/tokens.json") == Path("/opt/t.json")
    assert store_path_for("", configured="") == tmp_path / "rt" / STORE_FILENAME
