"""Detached Ed25519 signatures over policy files.

A policy file decides who may reach what; whoever can edit it owns the server. With
``HardenedServerApp.require_signed_policy`` on, every ``--policy`` file must come with a
detached signature ``FILE.sig`` made by a key whose public half the server was started with
(``--policy-pubkey``); an unsigned or altered file is refused at start-up and on reload, naming
the file. The requirement is deliberately *not* a key inside the policy file it protects: whoever
can rewrite the file could simply delete the key.

What is signed: the file's bytes exactly as read, prefixed with a context string, so a signature
over a policy file is never valid for anything else this project (or another) signs with the
same key. The loader verifies the very bytes it then parses (no second read, no window for a
swap in between).

The signature file is three text lines::

    hardened-server-policy-signature v1
    key sha256:<first 32 hex digits of SHA-256 over the raw public key>
    sig <base64 of the 64-byte signature>

Keys are PEM: PKCS#8 for the private key (written 0600), SubjectPublicKeyInfo for the public one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from hardened_server.policy.errors import PolicyError

SIG_SUFFIX = ".sig"
SIG_HEADER = "hardened-server-policy-signature v1"
_CONTEXT = b"hardened-server/policy-file/v1\x00"
_MAX_SIG_BYTES = 4096


class KeyFileError(ValueError):
    """A key file is missing, unreadable or not an Ed25519 key in PEM form."""


def signature_path(policy_path: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(policy_path) + SIG_SUFFIX)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:32]


# -- keys ---------------------------------------------------------------------------------------


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh key pair as (private PEM, public PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def _read_key_file(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{os.fspath(path)}: key file not found") from None
    except OSError as exc:
        raise KeyFileError(f"{os.fspath(path)}: cannot be read ({exc.strerror})") from None


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileError(
            f"{os.fspath(path)}: not an unencrypted PEM private key "
            "(make one with `hardened-server policy keygen`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{os.fspath(path)}: not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(
            f"{os.fspath(path)}: not a PEM public key (the .pub file `hardened-server policy "
            "keygen` writes)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{os.fspath(path)}: not an Ed25519 public key")
    return key


# -- signatures ---------------------------------------------------------------------------------


def sign_bytes(data: bytes, private_key: Ed25519PrivateKey) -> str:
    """The text of the detached signature file for ``data``."""
    signature = private_key.sign(_CONTEXT + data)
    return (
        f"{SIG_HEADER}\n"
        f"key {key_id(private_key.public_key())}\n"
        f"sig {base64.b64encode(signature).decode('ascii')}\n"
    )


@dataclass(frozen=True)
class ParsedSignature:
    key_id: str
    signature: bytes


def parse_signature(text: str) -> ParsedSignature:
    """Raises ``ValueError`` saying what is wrong with a signature file's text."""
    lines = text.strip().splitlines()
    if len(lines) != 3 or lines[0].strip() != SIG_HEADER:
        raise ValueError(f"not a policy signature (expected 3 lines starting {SIG_HEADER!r})")
    kid_label, _, kid = lines[1].strip().partition(" ")
    sig_label, _, sig = lines[2].strip().partition(" ")
    if kid_label != "key" or sig_label != "sig":
        raise ValueError("expected a 'key ...' line and a 'sig ...' line")
    try:
        raw = base64.b64decode(sig.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signature is not base64") from None
    if len(raw) != 64:
        raise ValueError("an Ed25519 signature is 64 bytes")
    return ParsedSignature(kid.strip(), raw)


@dataclass(frozen=True)
class TrustedKey:
    path: str
    key: Ed25519PublicKey
    key_id: str


def load_trusted_keys(paths: Iterable[str | os.PathLike[str]]) -> tuple[TrustedKey, ...]:
    keys = []
    for path in paths:
        key = load_public_key(path)
        keys.append(TrustedKey(os.fspath(path), key, key_id(key)))
    return tuple(keys)


def verify_bytes(source: str, data: bytes, signature_text: str, keys: Sequence[TrustedKey]) -> str:
    """The id of the trusted key whose signature over ``data`` this is; else ``PolicyError``
    naming ``source``."""
    sig_file = source + SIG_SUFFIX
    try:
        parsed = parse_signature(signature_text)
    except ValueError as exc:
        raise PolicyError(
            source,
            "",
            f"its signature file {sig_file} is malformed: {exc}",
            fix="sign the file again with `hardened-server policy sign --key KEY FILE`",
        ) from None
    for trusted in keys:
        try:
            trusted.key.verify(parsed.signature, _CONTEXT + data)
        except InvalidSignature:
            continue
        return trusted.key_id
    named = any(t.key_id == parsed.key_id for t in keys)
    problem = (
        "signature does not match the file's contents (the file was changed after signing)"
        if named
        else f"signed by key {parsed.key_id}, which is not a trusted policy key"
    )
    raise PolicyError(
        source,
        "",
        problem,
        fix="review the change and sign it again with `hardened-server policy sign --key KEY FILE`"
        if named
        else "sign it with a trusted key, or start the server with that key's public half "
        "(--policy-pubkey)",
    )


class PolicyVerifier:
    """Checks each policy file's detached signature; given to the loader."""

    def __init__(self, keys: Sequence[TrustedKey]) -> None:
        if not keys:
            raise KeyFileError("require_signed_policy is on but no trusted public key is given")
        self.keys = tuple(keys)

    @classmethod
    def from_paths(cls, paths: Iterable[str | os.PathLike[str]]) -> PolicyVerifier:
        return cls(load_trusted_keys(paths))

    def __call__(self, source: str, path: Path, data: bytes) -> str:
        sig = signature_path(path)
        try:
            with open(sig, "rb") as fh:
                raw = fh.read(_MAX_SIG_BYTES + 1)
        except FileNotFoundError:
            raise PolicyError(
                source,
                "",
                f"is not signed (no {signature_path(source)}) and signed policies are required",
                fix="sign it with `hardened-server policy sign --key KEY FILE`",
            ) from None
        except OSError as exc:
            raise PolicyError(
                source, "", f"its signature file cannot be read ({exc.strerror})"
            ) from None
        if len(raw) > _MAX_SIG_BYTES:
            raise PolicyError(source, "", "its signature file is too large to be a signature")
        return verify_bytes(source, data, raw.decode("utf-8", "replace"), self.keys)
