"""Token strength, estimated without seeing how the token was made.

A token is only as strong as the alphabet it could have been drawn from and its length: 32 hex
characters are 128 bits, a 22-character base64url string is 132 bits. The estimate takes the
smallest standard alphabet that contains every character, so it never credits a token with more
than it could have; obvious patterns (one character repeated, a short unit repeated, a handful of
distinct characters) count as no entropy at all, a long run that repeats an earlier one counts
once, and a token of letters only is credited as letters (words), not as alphanumerics. It is an
upper bound: a token made of dictionary words can still pass, so generate tokens, never invent
them. ``JUPYTER_TOKEN=huggingface`` is refused.
"""

from __future__ import annotations

import math
import re
import string

_ALPHABETS: tuple[tuple[frozenset[str], int], ...] = (
    (frozenset(string.digits), 10),
    (frozenset(string.ascii_lowercase), 26),  # letters only: likely words, not random draws
    (frozenset(string.ascii_letters), 52),
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


# A repeat this long almost never occurs by chance in a random token of any sensible length
# (so a genuinely random 128-bit token is never refused), but it is exactly what
# "huggingfacehuggingface12345" is made of.
_MIN_REPEAT = 8


def _repeated_chars(token: str) -> int:
    """Characters covered by runs of at least ``_MIN_REPEAT`` that already occurred earlier
    (a crude LZ77 parse): they add no entropy."""
    repeated = 0
    i = _MIN_REPEAT
    while i <= len(token) - _MIN_REPEAT:
        if token[i : i + _MIN_REPEAT] in token[: i + _MIN_REPEAT - 1]:
            j = i + _MIN_REPEAT
            while j < len(token) and token[i : j + 1] in token[:j]:
                j += 1
            repeated += j - i
            i = j
        else:
            i += 1
    return repeated


def estimate_entropy_bits(token: str) -> float:
    """Upper-bound estimate of the entropy of ``token`` in bits (0.0 for obvious patterns)."""
    if not token or not token.isascii() or not token.isprintable() or token != token.strip():
        return 0.0
    if _is_repetition(token) or len(set(token)) < min(8, len(token)):
        return 0.0
    chars = set(token)
    length = len(token) - _repeated_chars(token)
    for alphabet, size in _ALPHABETS:
        if chars <= alphabet:
            return length * math.log2(size)
    return length * math.log2(94)


def is_strong_token(token: str, min_bits: int) -> bool:
    return estimate_entropy_bits(token) >= min_bits


# -- the Authorization header -----------------------------------------------------------------

# ``token <credentials>`` or ``Bearer <credentials>`` (scheme case-insensitive), the whole value:
# stock matches ``(token|bearer)\s+(.+)`` from the start only, so ``token X\nY`` or ``token X\x00``
# authenticated as ``X`` with the rest ignored (found by fuzz/fuzz_tokens.py). Credentials are
# everything after the separating spaces up to trailing spaces, with no control character; they
# start and end with a visible character (``token   `` has none: a first draft returned " ").
_AUTHORIZATION = re.compile(
    r"(?:token|bearer)[ \t]+([^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?)[ \t]*",
    re.IGNORECASE,
)


def is_blank_token_scheme(value: str | None) -> bool:
    """``Authorization: token`` with nothing after the scheme: what stock ``jupyter server
    stop`` sends (``"token " + info["token"]``) when the ``jpserver-<pid>.json`` it read holds no
    token, as hardened-server's never does. No other client sends it."""
    return value is not None and value.strip().lower() == "token"


def parse_authorization(value: str | None) -> str | None:
    """The credentials of an ``Authorization: token|Bearer ...`` value, or ``None`` when the
    value is anything else (another scheme, no credentials, a control character anywhere)."""
    if not value:
        return None
    match = _AUTHORIZATION.fullmatch(value)
    if match is None:
        return None
    return match.group(1)
