"""The pieces of the accountability records (issue #20) without a server: what a record keeps of
a text (policy/activity.py), the HMAC key's start-up checks (HS-ACCT-010/011), and the parser
that finds an execute_request in each kernel websocket framing."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import (
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

from hardened_server.enforcement.activity import V1_PROTOCOL, execute_request_of, open_activity_for
from hardened_server.policy import activity as activity_policy
from hardened_server.policy.activity import keep_text, key_id, normalise_text, text_hmac
from hardened_server.policy.errors import UnsafeStartup
from hardened_server.policy.loader import load_policy
from hardened_server.policy.rules import Rule
from hardened_server.trail.hmackey import DEFAULT_KEY_NAME

KEY = b"k" * 32


def _policy(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "p.toml"
    path.write_text(text)
    return load_policy([path])


def test_hmac_mode_keeps_no_text_and_full_mode_keeps_it() -> None:
    kept = keep_text("x = 1\r\n", "hmac", KEY, 1024, field="code")
    assert kept == {"mode": "hmac", "size": 5, "code_hmac": text_hmac(KEY, "x = 1"),
                    "key_id": key_id(KEY)}
    assert keep_text("x = 1", "full", KEY, 1024, field="code") == {
        "mode": "full", "size": 5, "code": "x = 1"}
    assert keep_text("x = 1", "off", KEY, 1024, field="code") == {"mode": "off", "size": 5}


def test_a_huge_text_is_kept_as_hash_and_size_only() -> None:
    big = "y" * 2000
    kept = keep_text(big, "full", KEY, 1024, field="code")
    assert "code" not in kept
    assert kept["truncated"] is True
    assert kept["size"] == 2000
    assert kept["code_hmac"] == text_hmac(KEY, big)


def test_normalisation_and_key_id() -> None:
    assert normalise_text("a\r\nb\rc\n\n") == "a\nb\nc"
    assert text_hmac(KEY, "a\r\nb\n") == text_hmac(KEY, "a\nb")
    assert text_hmac(KEY, "a") != text_hmac(b"j" * 32, "a")
    assert key_id(KEY).startswith("hmac-sha256:")
    assert len(key_id(KEY)) == 28
    assert KEY.decode() not in key_id(KEY)


def test_the_digest_is_hmac_sha256_and_the_key_id_is_hashed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every 'hmac' record carries the HMAC (the one-shot ``hmac.digest``: the bytes of
    ``hmac.new(...).hexdigest()``) and the key id, computed once per key, not per record."""
    expected = hmac.new(KEY, b"hardened-server-audit-text\x00v1\x00x = 1", hashlib.sha256)
    assert text_hmac(KEY, "x = 1\r\n") == expected.hexdigest()
    hashed: list[bytes] = []
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(
        activity_policy.hashlib, "sha256", lambda data=b"": hashed.append(data) or real_sha256(data)
    )
    activity_policy.key_id.cache_clear()
    kept = [keep_text("x = 1", "hmac", KEY, 1024, field="code") for _ in range(5)]
    assert {k["code_hmac"] for k in kept} == {expected.hexdigest()}
    assert {k["key_id"] for k in kept} == {
        "hmac-sha256:"
        + real_sha256(b"hardened-server-audit-key-id\x00v1\x00" + KEY).hexdigest()[:16]
    }
    assert len(hashed) == 1


def _execute(code: str) -> dict:  # type: ignore[type-arg]
    msg = Session().msg("execute_request", {"code": code, "silent": False})
    msg["header"]["date"] = str(msg["header"]["date"])
    msg["parent_header"] = {}
    return msg


def test_execute_request_found_in_every_framing() -> None:
    msg = _execute("print(1)")
    parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata",
                                                    "content")]
    v1 = serialize_msg_to_ws_v1(parts, "shell")
    found = execute_request_of(v1, V1_PROTOCOL)
    assert found is not None
    assert found[1] == "print(1)"
    assert found[0]["msg_id"] == msg["header"]["msg_id"]
    legacy = json.dumps({**msg, "channel": "shell"})
    assert execute_request_of(legacy, None)[1] == "print(1)"  # type: ignore[index]
    binary = serialize_binary_message({**msg, "channel": "shell", "buffers": [b"zz"]})
    assert execute_request_of(binary, None)[1] == "print(1)"  # type: ignore[index]


def test_comm_messages_other_channels_and_garbage_are_not_execute_requests() -> None:
    comm = Session().msg("comm_msg", {"comm_id": "c", "data": {"code": "execute_request"}})
    comm["header"]["date"] = str(comm["header"]["date"])
    assert execute_request_of(json.dumps({**comm, "channel": "shell"}), None) is None
    parts = [json.dumps(_execute("1")[k]).encode() for k in ("header", "parent_header",
                                                             "metadata", "content")]
    assert execute_request_of(serialize_msg_to_ws_v1(parts, "control"), V1_PROTOCOL) is None
    for junk in (b"", b"\xff" * 9, b"\x06" + b"\x00" * 7, '{"execute_request"', "[]"):
        assert execute_request_of(junk, V1_PROTOCOL if isinstance(junk, bytes) else None) is None


def test_generated_key_is_private_and_reused(tmp_path: Path) -> None:
    policy = load_policy([])
    data, root = tmp_path / "data", tmp_path / "root"
    root.mkdir()
    first = open_activity_for(policy.audit, data_dir=str(data), root_dir=str(root),
                              paths=policy.paths)
    key_file = data / DEFAULT_KEY_NAME
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    again = open_activity_for(policy.audit, data_dir=str(data), root_dir=str(root),
                              paths=policy.paths)
    assert first.key == again.key
    assert first.key is not None
    assert len(first.key) >= 32


def test_a_key_inside_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    key = root / "hmac-material.bin"  # a *.key would be under the shipped paths.deny
    key.write_bytes(os.urandom(32).hex().encode())
    key.chmod(0o600)
    policy = _policy(tmp_path, f'[audit]\nhmac_key = "{key}"\n')
    with pytest.raises(UnsafeStartup) as refused:
        open_activity_for(policy.audit, data_dir=str(tmp_path / "d"), root_dir=str(root),
                          paths=policy.paths, source="p.toml")
    assert refused.value.rule_id == Rule.ACCT_KEY_IN_ROOT
    assert "audit.hmac_key" in str(refused.value)


@pytest.mark.parametrize(
    ("mode", "content", "why"),
    [(0o640, b"a" * 40, "readable or writable by others"), (0o600, b"short", "at least 32"),
     (None, b"", "cannot open")],
)
def test_an_unusable_key_is_refused(tmp_path: Path, mode: int | None, content: bytes,
                                    why: str) -> None:
    key = tmp_path / "keys" / "audit.key"
    key.parent.mkdir()
    if mode is not None:
        key.write_bytes(content)
        key.chmod(mode)
    policy = _policy(tmp_path, f'[audit]\nhmac_key = "{key}"\n')
    with pytest.raises(UnsafeStartup) as refused:
        open_activity_for(policy.audit, data_dir=str(tmp_path / "d"),
                          root_dir=str(tmp_path / "root"), paths=policy.paths)
    assert refused.value.rule_id == Rule.ACCT_KEY_UNUSABLE
    assert why in str(refused.value)
    assert "audit.hmac_key" in str(refused.value)
    if content:
        assert content.decode() not in str(refused.value)  # the key is never in a message


def test_recording_off_needs_no_key(tmp_path: Path) -> None:
    policy = _policy(tmp_path, '[audit]\nactivity = false\nhmac_key = "/nonexistent/key"\n')
    config = open_activity_for(policy.audit, data_dir=str(tmp_path), root_dir=str(tmp_path),
                               paths=policy.paths)
    assert config.enabled is False
    assert config.key is None
