"""What an accountability record keeps of a text a user typed: code sent to a kernel, a line
typed into a terminal (issue #20).

HashiCorp Vault's audit devices set the pattern: a sensitive string is kept as a keyed
HMAC-SHA256, so a reader of the trail learns nothing from it, while an auditor who holds the
deployment's key and a candidate text can say "this is what ran" (``hardened-server audit hash``
computes the same value). One function, :func:`keep_text`, decides for the server and for that
command, so the two can never normalise differently.

Normalisation (applied before hashing, and to what 'full' keeps): line endings ``\\r\\n`` and
``\\r`` become ``\\n`` (a browser on Windows, a terminal's Enter) and trailing line ends are
dropped (an auditor pasting a cell adds one). Nothing else changes: a different space is a
different text.

Pure: standard library only, no I/O (the key file is read by the trail layer).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from enum import StrEnum
from typing import Any

__all__ = [
    "KEY_ID_PREFIX",
    "MIN_KEY_BYTES",
    "TEXT_MODES",
    "TextMode",
    "keep_text",
    "key_id",
    "normalise_text",
    "text_hmac",
]


class TextMode(StrEnum):
    """``audit.code`` / ``audit.terminal_input``."""

    OFF = "off"  # size only
    HMAC = "hmac"  # keyed digest (the default)
    FULL = "full"  # the text itself


TEXT_MODES: tuple[str, ...] = tuple(m.value for m in TextMode)

#: A shorter key is refused at start-up (HMAC-SHA256's own block is 64 bytes; 32 random bytes
#: are beyond guessing).
MIN_KEY_BYTES = 32

KEY_ID_PREFIX = "hmac-sha256:"

# Domain separation: a value of ours is never the HMAC of the same text in another protocol
# that happens to share the key.
_DOMAIN = b"hardened-server-audit-text\x00v1\x00"
_KEY_ID_DOMAIN = b"hardened-server-audit-key-id\x00v1\x00"


def normalise_text(text: str) -> str:
    """The text as it is hashed and kept (see the module docstring)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip("\n")


@functools.lru_cache(maxsize=4)
def key_id(key: bytes) -> str:
    """A short public fingerprint of ``key`` (``hmac-sha256:<16 hex>``): records carry it so
    that after a rotation an auditor knows which key a value was made with. It reveals nothing
    usable about the key (a domain-separated SHA-256, truncated). Computed once per key (every
    'hmac' record carries it; a server has one key)."""
    return KEY_ID_PREFIX + hashlib.sha256(_KEY_ID_DOMAIN + key).hexdigest()[:16]


def text_hmac(key: bytes, text: str) -> str:
    """HMAC-SHA256 (hex) of the normalised ``text`` under ``key``."""
    data = normalise_text(text).encode("utf-8", "surrogatepass")
    return hmac.digest(key, _DOMAIN + data, "sha256").hex()


def keep_text(
    text: str, mode: str, key: bytes | None, max_bytes: int, *, field: str = "text"
) -> dict[str, Any]:
    """What a record keeps of ``text`` under ``mode``: always ``size`` (bytes of normalised
    UTF-8) and ``mode``; with 'hmac' ``<field>_hmac`` and ``key_id``; with 'full' ``<field>``
    itself. Over ``max_bytes`` the text is never kept: 'full' falls back to the digest
    (``truncated`` says so), so a pasted blob does not bloat the trail."""
    normal = normalise_text(text)
    data = normal.encode("utf-8", "surrogatepass")
    kept: dict[str, Any] = {"mode": mode, "size": len(data)}
    if mode == TextMode.OFF:
        return kept
    too_big = len(data) > max_bytes
    if mode == TextMode.FULL and not too_big:
        kept[field] = normal
        return kept
    if key is None:
        raise ValueError("an HMAC key is needed for mode 'hmac' (or an oversized 'full' text)")
    # hmac.digest: the one-shot C HMAC, the same bytes as hmac.new(...).hexdigest()
    kept[f"{field}_hmac"] = hmac.digest(key, _DOMAIN + data, "sha256").hex()
    kept["key_id"] = key_id(key)
    if too_big:
        kept["truncated"] = True
    return kept
