"""A principal's signing key, sealed with a secret only that principal holds.

At rest the Ed25519 key is encrypted (AES-256-GCM) under a key derived from the
principal's password with argon2id, a memory-hard KDF, so neither the data
directory nor a running service can sign as a person who is not acting. The
associated data binds the ciphertext to the signer's name and public key: a sealed
record moved to another name, or given another public key, does not open.

While a person is logged in to the Command Center their key is re-wrapped under a
key derived from their session token, which only their browser holds (the server
keeps the token's SHA-256, from which the wrapping key cannot be derived). So the
Command Center can sign for someone only inside a request that carries their
session cookie, and holds the plain key only for the length of that request.

Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import os

from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, model_validator

from deskgate.audit.keys import public_to_text

SEALED_FORMAT = "deskgate-sealed-key/1"
WRAPPED_FORMAT = "deskgate-session-key/1"


class WrongSecret(ValueError):
    """The secret does not open this sealed key (or the record was altered)."""


class KdfParams(BaseModel):
    """argon2id cost. The default is RFC 9106's second recommended option
    (3 passes over 64 MiB, 4 lanes): about 0.1 s on one core of the project's VM."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("argon2id", pattern="^argon2id$")
    time_cost: int = Field(3, ge=1, le=64)
    memory_kib: int = Field(65_536, ge=8, le=4_194_304)
    parallelism: int = Field(4, ge=1, le=64)

    @model_validator(mode="after")
    def _argon2_limits(self) -> KdfParams:
        if self.memory_kib < 8 * self.parallelism:
            raise ValueError("argon2id needs at least 8 KiB of memory per lane")
        return self


class SealedKey(BaseModel):
    """A principal's Ed25519 key at rest. Everything but the ciphertext is public."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = Field(SEALED_FORMAT, pattern=f"^{SEALED_FORMAT}$")
    signer: str = Field(min_length=1, max_length=80)
    public_key: str = Field(min_length=1, max_length=100)
    kdf: KdfParams
    salt: str = Field(min_length=1, max_length=100)
    nonce: str = Field(min_length=1, max_length=100)
    ciphertext: str = Field(min_length=1, max_length=200)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def _aad(fmt: str, signer: str, public_key: str) -> bytes:
    return f"{fmt}\n{signer}\n{public_key}".encode()


def derive(secret: str, salt: bytes, kdf: KdfParams) -> bytes:
    return hash_secret_raw(
        secret.encode(), salt, time_cost=kdf.time_cost, memory_cost=kdf.memory_kib, parallelism=kdf.parallelism,
        hash_len=32, type=Type.ID,
    )


def seal(key: Ed25519PrivateKey, signer: str, secret: str, kdf: KdfParams | None = None) -> SealedKey:
    kdf = kdf or KdfParams()
    salt, nonce = os.urandom(16), os.urandom(12)
    public = public_to_text(key.public_key())
    ciphertext = AESGCM(derive(secret, salt, kdf)).encrypt(nonce, _raw_private(key), _aad(SEALED_FORMAT, signer, public))
    return SealedKey(signer=signer, public_key=public, kdf=kdf, salt=_b64(salt), nonce=_b64(nonce), ciphertext=_b64(ciphertext))


def unseal(sealed: SealedKey, secret: str) -> Ed25519PrivateKey:
    """The private key, or WrongSecret. Also refuses a record whose public key is not
    the sealed key's own, so what verifiers read and what signs cannot differ."""
    try:
        salt, nonce, ciphertext = _unb64(sealed.salt), _unb64(sealed.nonce), _unb64(sealed.ciphertext)
        if len(salt) < 16 or len(nonce) != 12:
            raise ValueError("a sealed key's salt is 16 bytes or more, its nonce 12")
        raw = AESGCM(derive(secret, salt, sealed.kdf)).decrypt(nonce, ciphertext, _aad(sealed.format, sealed.signer, sealed.public_key))
    except (InvalidTag, ValueError, HashingError) as exc:
        raise WrongSecret(f"the secret does not open {sealed.signer}'s sealed key") from exc
    key = Ed25519PrivateKey.from_private_bytes(raw)
    if public_to_text(key.public_key()) != sealed.public_key:
        raise WrongSecret(f"{sealed.signer}'s sealed key does not match its public key")
    return key


def _session_key(token: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"deskgate/1 session key wrap").derive(token.encode())


def wrap_for_session(key: Ed25519PrivateKey, signer: str, token: str) -> str:
    """The key encrypted under the session token (which the server never stores)."""
    nonce = os.urandom(12)
    aad = _aad(WRAPPED_FORMAT, signer, public_to_text(key.public_key()))
    ciphertext = AESGCM(_session_key(token)).encrypt(nonce, _raw_private(key), aad)
    return ".".join((WRAPPED_FORMAT, public_to_text(key.public_key()), _b64(nonce), _b64(ciphertext)))


def unwrap_for_session(wrapped: str, signer: str, token: str) -> Ed25519PrivateKey:
    try:
        fmt, public, nonce, ciphertext = wrapped.split(".")
        if fmt != WRAPPED_FORMAT:
            raise ValueError(fmt)
        raw = AESGCM(_session_key(token)).decrypt(_unb64(nonce), _unb64(ciphertext), _aad(fmt, signer, public))
    except (InvalidTag, ValueError) as exc:
        raise WrongSecret(f"this session cannot open {signer}'s key") from exc
    key = Ed25519PrivateKey.from_private_bytes(raw)
    if public_to_text(key.public_key()) != public:
        raise WrongSecret(f"this session's key for {signer} does not match its public key")
    return key
