"""Decisions waiting for a principal's passkey.

A principal with a passkey decides in two steps. First the Command Center builds the
exact decisions (the bytes that will be signed and sent), keeps them for this session
for a few minutes, and answers WebAuthn request options whose challenge names their
digests. The browser asks the authenticator. Then the action takes the kept decisions,
never new ones, with the assertion; the factory verifies that assertion again before
it counts anything. Registering a passkey is kept the same way, by its challenge.

Kept in memory: a restart of the Command Center only means asking the passkey again.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from deskgate.audit.signing import Kind
from deskgate.people.passkeys import decision_digest

PROOF_TTL_S = 180.0
MAX_KEPT = 1000  # per Command Center process: the oldest are dropped first
MAX_PER_SESSION = 20  # so one session cannot push everyone else's out


class ProofError(Exception):
    """A kept decision that cannot be used; the message says why."""


@dataclass(frozen=True)
class Prepared:
    owner: str  # the session it was made for
    action: str  # approve | reject | batch | reset | clear
    target: str  # the directive id(s), or "breaker", "governor"
    kind: Kind
    payloads: tuple  # the decisions exactly as they will be signed
    digests: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class Registration:
    owner: str
    challenge: bytes
    label: str
    expires_at: float

    @property
    def digest(self) -> str:
        """What an existing passkey signs to allow a new one: this registration's challenge."""
        return hashlib.sha256(b"deskgate/1 passkey registration\n" + self.challenge).hexdigest()


def session_owner(csrf: str) -> str:
    """A session's name here: its CSRF token is unique to it and known only to it."""
    return hashlib.sha256(csrf.encode()).hexdigest()


@dataclass
class Proofs:
    ttl_s: float = PROOF_TTL_S
    clock: object = time.monotonic
    _prepared: dict[str, Prepared] = field(default_factory=dict)
    _registrations: dict[str, Registration] = field(default_factory=dict)

    def _now(self) -> float:
        return self.clock()  # type: ignore[operator]

    def _prune(self) -> None:
        now = self._now()
        for store in (self._prepared, self._registrations):
            for key in [k for k, v in store.items() if v.expires_at <= now]:
                del store[key]
            while len(store) > MAX_KEPT:
                store.pop(next(iter(store)))

    def keep(self, owner: str, action: str, target: str, kind: Kind, payloads: list) -> tuple[str, list[str]]:
        """Keep decisions for this session; their id and digests (what the passkey signs)."""
        self._prune()
        mine = [k for k, v in self._prepared.items() if v.owner == owner]
        for key in mine[: max(0, len(mine) - MAX_PER_SESSION + 1)]:
            del self._prepared[key]
        digests = [decision_digest(kind, p.to_bytes()) for p in payloads]
        prepared_id = f"pp-{secrets.token_urlsafe(16)}"
        self._prepared[prepared_id] = Prepared(owner, action, target, kind, tuple(payloads), tuple(digests), self._now() + self.ttl_s)
        return prepared_id, digests

    def take(self, owner: str, prepared_id: str, action: str, target: str) -> Prepared:
        """The kept decisions, once: for this session, this action and this target only."""
        self._prune()
        prepared = self._prepared.get(prepared_id)
        if prepared is None:
            raise ProofError("the passkey request expired or was already used: decide again")
        if prepared.owner != owner or prepared.action != action or prepared.target != target:
            raise ProofError("the passkey request was made for another decision: decide again")
        del self._prepared[prepared_id]
        return prepared

    def keep_registration(self, owner: str, challenge: bytes, label: str) -> tuple[str, Registration]:
        self._prune()
        reg_id = f"pr-{secrets.token_urlsafe(16)}"
        reg = Registration(owner, challenge, label, self._now() + self.ttl_s)
        self._registrations[reg_id] = reg
        return reg_id, reg

    def take_registration(self, owner: str, reg_id: str) -> Registration:
        self._prune()
        reg = self._registrations.get(reg_id)
        if reg is None or reg.owner != owner:
            raise ProofError("the passkey registration expired or was made in another session: start it again")
        del self._registrations[reg_id]
        return reg
