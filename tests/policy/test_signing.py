"""Signed policies: `policy keygen/sign/verify`, and the loader refusing an unsigned, altered or
foreign-signed file when signatures are required (Ed25519, detached FILE.sig)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hardened_server.cli.main import main
from hardened_server.policy.errors import PolicyError
from hardened_server.policy.loader import load_policy
from hardened_server.policy.signing import (
    KeyFileError,
    PolicyVerifier,
    generate_keypair,
    load_private_key,
    sign_bytes,
    signature_path,
)

POLICY = '[cors]\nallow_origins = ["https://a.example.com"]\n'


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "policy-key"
    assert main(["policy", "keygen", str(private)]) == 0
    return private, Path(str(private) + ".pub")


@pytest.fixture
def signed(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    policy = tmp_path / "site.toml"
    policy.write_text(POLICY)
    assert main(["policy", "sign", "--key", str(keys[0]), str(policy)]) == 0
    return policy


def verifier(keys: tuple[Path, Path]) -> PolicyVerifier:
    return PolicyVerifier.from_paths([keys[1]])


def test_keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites(
    keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes()
    assert b"PUBLIC KEY" in public.read_bytes()
    before = private.read_bytes()
    assert main(["policy", "keygen", str(private)]) != 0
    assert "exists" in capsys.readouterr().err
    assert private.read_bytes() == before


def test_signed_policy_verifies_and_loads(signed: Path, keys: tuple[Path, Path]) -> None:
    assert signature_path(signed).read_text().startswith("hardened-server-policy-signature v1\n")
    assert main(["policy", "verify", "--pubkey", str(keys[1]), str(signed)]) == 0
    policy = load_policy([signed], verifier=verifier(keys))
    assert policy.cors.allow_origins == ("https://a.example.com",)


def test_tampered_policy_is_refused_naming_the_file(
    signed: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    signed.write_text(POLICY.replace("a.example.com", "evil.example"))
    with pytest.raises(PolicyError) as err:
        load_policy([signed], verifier=verifier(keys))
    assert str(signed) in str(err.value)
    assert "changed after signing" in str(err.value)
    assert main(["policy", "verify", "--pubkey", str(keys[1]), str(signed)]) == 2
    assert str(signed) in capsys.readouterr().err


def test_a_single_appended_byte_is_tampering(signed: Path, keys: tuple[Path, Path]) -> None:
    with open(signed, "ab") as fh:
        fh.write(b"\n")
    with pytest.raises(PolicyError, match="changed after signing"):
        load_policy([signed], verifier=verifier(keys))


def test_unsigned_policy_is_refused_when_signatures_are_required(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    policy = tmp_path / "unsigned.toml"
    policy.write_text(POLICY)
    with pytest.raises(PolicyError) as err:
        load_policy([policy], verifier=verifier(keys))
    assert str(policy) in str(err.value)
    assert "is not signed" in str(err.value)
    assert "policy sign" in str(err.value)
    # Without the requirement the same file loads: signatures are opt-in.
    assert load_policy([policy]).cors.allow_origins == ("https://a.example.com",)


def test_signature_by_an_untrusted_key_is_refused(
    tmp_path: Path, signed: Path, keys: tuple[Path, Path]
) -> None:
    other = tmp_path / "other-key"
    assert main(["policy", "keygen", str(other)]) == 0
    assert main(["policy", "sign", "--key", str(other), str(signed)]) == 0
    with pytest.raises(PolicyError, match="not a trusted policy key"):
        load_policy([signed], verifier=verifier(keys))
    # Several trusted keys: any one of them suffices (key rotation).
    both = PolicyVerifier.from_paths([keys[1], Path(str(other) + ".pub")])
    assert load_policy([signed], verifier=both).sources[-1] == str(signed)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hardened-server-policy-signature v1\nkey x\nsig !!!\n",
        "hardened-server-policy-signature v1\nkey x\nsig AAAA\n",
        "something else\nkey x\nsig AAAA\n",
    ],
)
def test_malformed_signature_file_is_refused(
    signed: Path, keys: tuple[Path, Path], text: str
) -> None:
    signature_path(signed).write_text(text)
    with pytest.raises(PolicyError, match="malformed"):
        load_policy([signed], verifier=verifier(keys))


def test_signature_is_bound_to_its_context(keys: tuple[Path, Path], tmp_path: Path) -> None:
    """A raw Ed25519 signature over the bytes (made for some other purpose with the same key)
    is not a policy signature."""
    import base64

    private = load_private_key(keys[0])
    policy = tmp_path / "p.toml"
    policy.write_text(POLICY)
    good = sign_bytes(policy.read_bytes(), private)
    raw = base64.b64encode(private.sign(policy.read_bytes())).decode()
    signature_path(policy).write_text(good.rsplit("sig ", 1)[0] + f"sig {raw}\n")
    with pytest.raises(PolicyError, match="changed after signing"):
        load_policy([policy], verifier=verifier(keys))


def test_sign_refuses_an_invalid_policy(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "bad.toml"
    policy.write_text('[cors]\nallow_origins = ["*"]\n')
    assert main(["policy", "sign", "--key", str(keys[0]), str(policy)]) == 2
    assert "not signed" in capsys.readouterr().err
    assert not signature_path(policy).exists()


def test_shipped_profiles_by_name_need_no_signature(keys: tuple[Path, Path]) -> None:
    """They are part of the installed package, as trusted as the code reading them."""
    policy = load_policy(["behind-proxy"], verifier=verifier(keys))
    assert "127.0.0.1/32" in policy.server.trusted_proxies


def test_bad_key_files_are_clear_errors(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    with pytest.raises(KeyFileError, match="not found"):
        PolicyVerifier.from_paths([tmp_path / "missing.pub"])
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        PolicyVerifier.from_paths([keys[0]])  # the private key by mistake
    with pytest.raises(KeyFileError, match="no trusted public key"):
        PolicyVerifier([])
    private_pem, _public = generate_keypair()
    assert b"ENCRYPTED" not in private_pem
