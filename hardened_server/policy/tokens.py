"""Token strength, estimated without seeing how the token was made.

A token is only as strong as the alphabet it could have been drawn from and its length: 32 hex
characters are 128 bits, a 22-character base64url string is 132 bits. The estimate takes the
smallest standard alphabet that contains every character, so it never credits a token with more
than it could have; obvious patterns (one character repeated, a short unit repeated, a handful of
distinct characters) count as no entropy at all. ``JUPYTER_TOKEN=huggingface`` is refused.
"""

from __future__ import annotations

import math
import string

_ALPHABETS: tuple[tuple[frozenset[str], int], ...] = (
    (frozenset(string.digits), 10),
    (frozenset(string.hexdigits.lower()), 16),
    (frozenset(string.hexdigits.upper() + string.digits), 16),
    (frozenset(string.ascii_lowercase + string.digits), 36),
    (frozenset(string.ascii_letters + string.digits), 62),
    (frozenset(string.ascii_letters + string.digits + "-_"), 64),
    (frozenset(string.ascii_letters + string.digits + "+/="), 65),
    (frozenset(string.printable.strip()), 94),
)


def _is_repetition(token: str) -> bool:
    """``abcabcabc``: a short unit repeated adds no entropy after its first copy."""
    n = len(token)
    return any(n % k == 0 and token == token[:k] * (n // k) for k in range(1, n // 2 + 1))


def estimate_entropy_bits(token: str) -> float:
    """Upper-bound estimate of the entropy of ``token`` in bits (0.0 for obvious patterns)."""
    if not token or not token.isascii() or not token.isprintable() or token != token.strip():
        return 0.0
    if _is_repetition(token) or len(set(token)) < min(8, len(token)):
        return 0.0
    chars = set(token)
    for alphabet, size in _ALPHABETS:
        if chars <= alphabet:
            return len(token) * math.log2(size)
    return len(token) * math.log2(94)


def is_strong_token(token: str, min_bits: int) -> bool:
    return estimate_entropy_bits(token) >= min_bits
