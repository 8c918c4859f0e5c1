"""Signatures on what the desk publishes.

A signature covers the exact bytes published, never a re-serialisation, so a
verifier needs no schema to check it. It travels in two NATS headers beside the
payload (`Deskgate-Signer`, `Deskgate-Signature`) and is made over
`deskgate/1 <kind>\\n<payload>`: the kind keeps a signed directive from being
passed off as a signed approval. When one signed message is carried inside
another (an order carries the directive and the approvals it rests on), it goes
as a `SignedPayload`: the payload text with its signer and signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deskgate.audit import ed25519
from deskgate.audit.keys import AGENT_PREFIX, PRINCIPAL_PREFIX, DecidingKeys, KeyStore, PublicKeys, raw_public

SIGNER_HEADER = "Deskgate-Signer"
SIGNATURE_HEADER = "Deskgate-Signature"


class Kind(StrEnum):
    """What a signed message is; part of what is signed."""

    DIRECTIVE = "directive"
    INSIGHT = "insight"
    EVALUATION = "evaluation"
    STAGED = "staged"
    APPROVAL = "approval"
    OUTCOME = "outcome"
    ORDER = "order"
    FILL = "fill"
    BREAKER = "breaker"
    NEWS = "news"
    QUARANTINE = "quarantine"
    RELEASE = "release"
    CHECKPOINT = "checkpoint"
    EXPORT_HEADER = "export_header"
    GOVERNOR_CLEAR = "governor_clear"
    REVIEW_ACK = "review_ack"
    VENUE_ACK = "venue_ack"
    REVIEW = "review"
    STATUS = "status"


# What a message on a subject is, by the subject's prefix; first match wins.
_KIND_BY_PREFIX: tuple[tuple[str, Kind], ...] = (
    ("consciousness.directives.", Kind.DIRECTIVE),
    ("consciousness.insights.", Kind.INSIGHT),
    ("factory.status.policy.", Kind.EVALUATION),
    ("factory.status.approval.", Kind.OUTCOME),
    ("approvals.queue.directive.", Kind.STAGED),
    ("approvals.queue.review.", Kind.REVIEW),
    ("approvals.response.", Kind.APPROVAL),
    ("approvals.governor.clear", Kind.GOVERNOR_CLEAR),
    ("approvals.acknowledged.", Kind.REVIEW_ACK),
    ("approvals.venues.", Kind.VENUE_ACK),
    ("factory.execution.orders.", Kind.ORDER),
    ("factory.execution.fills.", Kind.FILL),
    ("$KV.", Kind.BREAKER),
    ("market.data.news", Kind.NEWS),
    ("quarantine.release", Kind.RELEASE),
    ("quarantine.", Kind.QUARANTINE),
)


def kind_of(subject: str) -> Kind:
    for prefix, kind in _KIND_BY_PREFIX:
        if subject.startswith(prefix):
            return kind
    return Kind.STATUS


def signed_message(kind: Kind | str, payload: bytes) -> bytes:
    return b"deskgate/1 " + str(kind).encode() + b"\n" + payload


def digest(payload: bytes) -> str:
    """SHA-256 of the exact bytes, hex: what an approval names as 'this directive'."""
    return hashlib.sha256(payload).hexdigest()


class Signer:
    """One role's or principal's private key, ready to sign. The key is read and kept as
    `cryptography`'s object (key files, sealing); the signing itself is libsodium's."""

    def __init__(self, keys: KeyStore, name: str):
        self._bind(name, keys.private(name))

    @classmethod
    def of(cls, name: str, key: Ed25519PrivateKey) -> Signer:
        """A signer for a key opened elsewhere (a principal's, unsealed for one action)."""
        signer = cls.__new__(cls)
        signer._bind(name, key)
        return signer

    def _bind(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name, self._key = name, key
        self._secret = ed25519.secret_key(key.private_bytes_raw())

    @property
    def principal(self) -> str | None:
        """The person's name when this is a principal's key."""
        return self.name.removeprefix(PRINCIPAL_PREFIX) if self.name.startswith(PRINCIPAL_PREFIX) else None

    def sign(self, kind: Kind | str, payload: bytes) -> str:
        return base64.b64encode(ed25519.sign(self._secret, signed_message(kind, payload))).decode()

    def sign_bytes(self, message: bytes) -> str:
        """A signature over exactly `message`, for statements with their own framing
        (a passkey's endorsement: people/pins.py)."""
        return base64.b64encode(ed25519.sign(self._secret, message)).decode()

    def headers(self, kind: Kind | str, payload: bytes, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {SIGNER_HEADER: self.name, SIGNATURE_HEADER: self.sign(kind, payload)}
        if extra:
            h.update(extra)
        return h

    def signed(self, kind: Kind | str, payload: bytes) -> SignedPayload:
        return SignedPayload(signer=self.name, signature=self.sign(kind, payload), payload=payload.decode())


class SignedPayload(BaseModel):
    """A signed message carried inside another one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signer: str = Field(min_length=1, max_length=80)
    signature: str = Field(min_length=1, max_length=200)
    payload: str = Field(max_length=1_000_000)

    @property
    def data(self) -> bytes:
        return self.payload.encode()


class SignatureStatus(StrEnum):
    VALID = "valid"
    UNSIGNED = "unsigned"
    UNKNOWN_SIGNER = "unknown signer"
    WRONG_SIGNER = "wrong signer"
    INVALID = "invalid"


def verify(
    keys: KeyStore | DecidingKeys | PublicKeys,
    kind: Kind | str,
    payload: bytes,
    signer: str | None,
    signature: str | None,
    *,
    expect: str | tuple[str, ...] | None = None,
) -> SignatureStatus:
    """Check one signature; `expect` names the signer (or signer prefix ending in ':')
    that this kind of message must come from."""
    step = prepare(keys, kind, payload, signer, signature, expect=expect)
    if isinstance(step, SignatureStatus):
        return step
    return settle(keys, signer, step, ed25519.holds(step))


def prepare(
    keys: KeyStore | DecidingKeys | PublicKeys,
    kind: Kind | str,
    payload: bytes,
    signer: str | None,
    signature: str | None,
    *,
    expect: str | tuple[str, ...] | None = None,
) -> SignatureStatus | ed25519.Check:
    """`verify` up to the Ed25519 equation: the status when the headers settle it, else the
    equation to check. Split so that many equations can be checked elsewhere at once
    (audit/pool.py) while keys are read and statuses decided here, in order."""
    if not signer or not signature:
        return SignatureStatus.UNSIGNED
    if expect is not None:
        allowed = (expect,) if isinstance(expect, str) else expect
        if not any(signer == e or (e.endswith(":") and signer.startswith(e)) for e in allowed):
            return SignatureStatus.WRONG_SIGNER
    candidates = keys.public_keys(signer)
    if not candidates:
        return SignatureStatus.UNKNOWN_SIGNER
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return SignatureStatus.INVALID
    if len(raw) != ed25519.SIGNATURE_BYTES:
        return SignatureStatus.INVALID
    return ed25519.Check(tuple(raw_public(k) for k in candidates), raw, signed_message(kind, payload))


def settle(keys: KeyStore | DecidingKeys | PublicKeys, signer: str, check: ed25519.Check, held: bool) -> SignatureStatus:
    """The status once `check` is answered. A principal's and an agent's keys are cached
    for the past: when none of them held, one made since is read now."""
    if held:
        return SignatureStatus.VALID
    if signer.startswith((PRINCIPAL_PREFIX, AGENT_PREFIX)):
        fresh = tuple(raw_public(k) for k in keys.public_keys(signer, fresh=True))
        if fresh != check.publics and ed25519.holds(check._replace(publics=fresh)):
            return SignatureStatus.VALID
    return SignatureStatus.INVALID


def verify_headers(
    keys: KeyStore | DecidingKeys | PublicKeys, kind: Kind | str, payload: bytes, headers: dict[str, str] | None, *, expect=None
) -> SignatureStatus:
    h = headers or {}
    return verify(keys, kind, payload, h.get(SIGNER_HEADER), h.get(SIGNATURE_HEADER), expect=expect)


def verify_signed(keys: KeyStore | DecidingKeys | PublicKeys, kind: Kind | str, signed: SignedPayload, *, expect=None) -> SignatureStatus:
    return verify(keys, kind, signed.data, signed.signer, signed.signature, expect=expect)
