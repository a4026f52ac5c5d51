"""Which policy changes a live reload applies, and which need a restart (pure)."""

from __future__ import annotations

from pathlib import Path

from hardened_server.policy.loader import load_policy
from hardened_server.policy.reload import RESTART_ONLY, restart_only_changes


def _policy(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / f"p{abs(hash(text))}.toml"
    path.write_text(text)
    return load_policy([path])


def test_per_request_keys_are_live(tmp_path: Path) -> None:
    old = load_policy()
    new = _policy(
        tmp_path,
        '[cors]\nallow_origins = ["https://a.example.com"]\n'
        '[server]\npublic_hostnames = ["jupyter.example.org"]\n'
        "[paths]\nallow_hidden = true\n[csp.page]\nimg-src = [\"'self'\"]\n",
    )
    assert restart_only_changes(old, new) == []


def test_each_restart_only_key_is_named_with_its_reason(tmp_path: Path) -> None:
    old = load_policy()
    new = _policy(tmp_path, "[terminals]\nenabled = true\n[limits]\nmax_body_bytes = 1048576\n")
    changes = restart_only_changes(old, new)
    assert len(changes) == 2
    assert changes[0].startswith("limits.max_body_bytes (67108864 -> 1048576): ")
    assert changes[1].startswith("terminals.enabled (False -> True): ")
    assert all(key in old.values for key in RESTART_ONLY)
