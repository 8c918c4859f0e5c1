"""The principals' keys a verifier trusts, pinned in its own store.

The accounts database says which key is a principal's now, but whatever can write
that file could put its own key there. So the factory and the executor each keep the
key they first trusted for each principal (`state/pins-<service>.db`, theirs alone),
and follow a change only when the new key is certified by the one they trust: a
rotation or a password change signs the new key with the old one. A change with no
such certificate (an operator's reset of a forgotten password) is refused until an
operator confirms it with `deskgate keys trust NAME`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select, update

from deskgate.audit.keys import public_from_text, public_to_text, verify_raw
from deskgate.storage import make_engine

PIN_SERVICES = ("factory", "executor")

metadata = MetaData()
pins = Table(
    "principal_pins",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("public_key", String(100), nullable=False),
    Column("how", String(32), nullable=False),  # first seen | rotation | operator
    Column("at", DateTime(timezone=True), nullable=False),
)


def rotation_message(name: str, new_public_key: str) -> bytes:
    """What a principal's old key signs to hand over to a new one."""
    return f"deskgate/1 key rotation\nprincipal:{name}\n{new_public_key}".encode()


def certify(old_key, name: str, new_public_key: str) -> str:
    return base64.b64encode(old_key.sign(rotation_message(name, new_public_key))).decode()


def chain_reaches(pinned: str, chain: list[tuple[str, str | None]], name: str) -> bool:
    """Does the key chain (oldest first: (public key, certificate by the key before it))
    lead from the pinned key to its last key, each step certified by the step before?"""
    keys = [k for k, _ in chain]
    if pinned not in keys:
        return False
    previous = pinned
    for key, certificate in chain[keys.index(pinned) + 1 :]:
        if not certificate:
            return False
        try:
            ok = verify_raw(public_from_text(previous), base64.b64decode(certificate, validate=True), rotation_message(name, key))
        except (ValueError, binascii.Error):
            ok = False
        if not ok:
            return False
        previous = key
    return True


class Pins:
    """One service's pinned principal keys."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(f"sqlite:///{path}")
        metadata.create_all(self.engine)

    @classmethod
    def for_service(cls, data_dir, service: str) -> Pins:
        if service not in PIN_SERVICES:
            raise ValueError(f"no pins for {service!r}")
        return cls(data_dir.state / f"pins-{service}.db")

    def pinned(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(pins.c.public_key).where(pins.c.name == name)).first()
        return row[0] if row else None

    def _set(self, name: str, public_key: str, how: str) -> None:
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            if conn.execute(update(pins).where(pins.c.name == name).values(public_key=public_key, how=how, at=now)).rowcount == 0:
                conn.execute(insert(pins).values(name=name, public_key=public_key, how=how, at=now))

    def accepts(self, name: str, key: Ed25519PublicKey, chain: list[tuple[str, str | None]]) -> bool:
        """Whether `key`, the registry's current key for `name`, is one this service trusts:
        the first it sees for `name`, its pin, or one certified from its pin."""
        current = public_to_text(key)
        pinned = self.pinned(name)
        if pinned is None:
            self._set(name, current, "first seen")
            return True
        if pinned == current:
            return True
        if chain and chain[-1][0] == current and chain_reaches(pinned, chain, name):
            self._set(name, current, "rotation")
            return True
        return False

    def trust(self, name: str, key: Ed25519PublicKey) -> None:
        """An operator's confirmation of a key no certificate leads to (a password reset)."""
        self._set(name, public_to_text(key), "operator")

    def close(self) -> None:
        self.engine.dispose()


def pin_all(pins: Pins, principals) -> None:
    """At a verifier's start: pin every enabled principal's current key it has not pinned
    yet, so a key swapped into the accounts database later is caught even for someone who
    has not decided anything since."""
    for account in principals.accounts.list():
        if account.disabled or not account.can_decide:
            continue
        key = principals.decision_key(account.name)
        if key is not None and pins.pinned(account.name) is None:
            pins.accepts(account.name, key, principals.key_chain(account.name))
