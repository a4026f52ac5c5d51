"""Password hashes: argon2id at OWASP's recommended cost, verified off the event loop.

Parameters (:data:`HASHER`): argon2id, memory 19 MiB (19456 KiB), 2 iterations, 1 lane, 16-byte
salt, 32-byte hash: the first configuration of the OWASP Password Storage Cheat Sheet ("m=19456
(19 MiB), t=2, p=1"). The single lane keeps one verification on one core, so a pool of
:data:`VERIFY_WORKERS` threads bounds what a login flood can take (CPU and 19 MiB each) while the
event loop keeps answering (argon2-cffi releases the GIL while it hashes).

Stored form: ``argon2:$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>``, the prefix jupyter_server
uses, so the value also works as ``PasswordIdentityProvider.hashed_password``. Accepted on
verification: any argon2 hash (argon2id, argon2i, argon2d, any cost) and jupyter_server's legacy
``sha1:salt:hash``; a hash weaker than :data:`HASHER`'s or not argon2id is "outdated" and
re-hashed after a successful login.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PREFIX = "argon2:"
HASHER = argon2.PasswordHasher(
    time_cost=2,
    memory_cost=19456,
    parallelism=1,
    hash_len=32,
    salt_len=16,
    type=argon2.Type.ID,
)
VERIFY_WORKERS = 2
_POOL = concurrent.futures.ThreadPoolExecutor(
    max_workers=VERIFY_WORKERS, thread_name_prefix="hardened-server-argon2"
)


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("an empty password is not a password")
    return PREFIX + HASHER.hash(password)


def verify_password(stored: str, password: str) -> tuple[bool, bool]:
    """``(matches, outdated)``. Never raises for a malformed stored hash (it matches nothing)."""
    if not stored or not password:
        return False, False
    if stored.startswith(PREFIX):
        encoded = stored[len(PREFIX) :]
        try:
            HASHER.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, False
        return True, HASHER.check_needs_rehash(encoded) or not encoded.startswith("$argon2id$")
    if stored.startswith("sha1:"):
        # jupyter_server's legacy salted SHA-1; accepted once, then replaced.
        from jupyter_server.auth.security import passwd_check

        ok = bool(passwd_check(stored, password))
        return ok, ok
    return False, False


async def verify_password_async(stored: str, password: str) -> tuple[bool, bool]:
    """:func:`verify_password` in the argon2 thread pool: a login never stalls the loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, verify_password, stored, password)


async def hash_password_async(password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, hash_password, password)


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(
        a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    )
