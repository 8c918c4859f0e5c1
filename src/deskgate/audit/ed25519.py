"""Ed25519 through libsodium (PyNaCl), on raw bytes.

libsodium verifies in about half the time OpenSSL takes on our machines (58 µs
against 104 µs), and verifying is the audit's ceiling. Ed25519 is deterministic,
so a signature made here is byte for byte the one `cryptography` makes from the
same key: keys on disk, signatures and headers do not change. libsodium is also
the stricter verifier (it refuses small-order and non-canonical keys and points
that OpenSSL lets through); no key the desk makes is one of those.

This module imports nothing of deskgate's and nothing heavy, so a worker process
that only checks signatures (audit/pool.py) starts in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

PUBLIC_BYTES = 32
SIGNATURE_BYTES = 64


def secret_key(seed: bytes) -> bytes:
    """libsodium's 64-byte signing key (seed and public key) from the 32-byte seed,
    which is what `cryptography` calls the raw private key."""
    return crypto_sign_seed_keypair(seed)[1]


def sign(secret: bytes, message: bytes) -> bytes:
    return crypto_sign(message, secret)[:SIGNATURE_BYTES]


def verify(public: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is `public`'s over exactly `message`. Lengths are checked here:
    libsodium reads a fixed 32-byte key and takes the first 64 bytes it is given as the
    signature, so a short one would borrow bytes from the message."""
    if len(public) != PUBLIC_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public)
    except BadSignatureError:
        return False
    return True


class Check(NamedTuple):
    """One signature to check: does any of `publics` (a signer's keys, current first)
    sign `message` with `signature`? Plain bytes, so it crosses to a worker process cheaply."""

    publics: tuple[bytes, ...]
    signature: bytes
    message: bytes


def holds(check: Check | tuple[tuple[bytes, ...], bytes, bytes]) -> bool:
    publics, signature, message = check
    return any(verify(public, signature, message) for public in publics)


def holds_all(checks: Sequence[Check | tuple[tuple[bytes, ...], bytes, bytes]]) -> list[bool]:
    """Each check's answer, in order: what a worker process runs on one chunk. Plain
    tuples are accepted too: they cross a pipe in a sixth of a `Check`'s pickling time."""
    return [holds(c) for c in checks]
