"""The principals' keys (and passkeys) a verifier trusts, pinned in its own store.

The accounts database says which key is a principal's now, but whatever can write
that file (the Command Center must: sessions, activity) could put its own key there,
add a principal, or drop a passkey. So the factory and the executor each keep what
they trust (`state/pins-<service>.db`):

- a principal counts only once an operator enrolled them here (`deskgate user add`,
  `keys seal`, `keys trust`, `user reset-password`), never on first sight;
- the key moves only along certificates: a rotation or a password change signs the
  new key with the old one, and the pin follows as far as the certificates reach; a
  key once left behind is never taken back (no rollback to a retired key);
- a principal's passkeys, once seen with their endorsement, stay required: a row
  deleted from the accounts database does not lift the requirement; only an
  operator removes one (`deskgate user passkeys NAME --remove ID`).

A data directory from before pins (no pin store yet) has every current key enrolled
once, when its services first open the store.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, delete, insert, select, update

from deskgate.audit.keys import public_from_text, public_to_text, verify_raw
from deskgate.migrations import open_store, schema_exists

PIN_SERVICES = ("factory", "executor")

metadata = MetaData()
pins = Table(
    "principal_pins",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("public_key", String(100), nullable=False),
    Column("how", String(32), nullable=False),  # enrolled | rotation | operator | upgrade
    Column("at", DateTime(timezone=True), nullable=False),
)
superseded = Table(
    "superseded_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("public_key", String(100), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)
passkey_pins = Table(
    "passkey_pins",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("credential_id", String(1400), primary_key=True),
    Column("record", Text, nullable=False),  # a passkeys.StoredPasskey as JSON
    Column("at", DateTime(timezone=True), nullable=False),
)


def rotation_message(name: str, new_public_key: str) -> bytes:
    """What a principal's old key signs to hand over to a new one."""
    return f"deskgate/1 key rotation\nprincipal:{name}\n{new_public_key}".encode()


def passkey_endorsement_message(name: str, credential_id: str, public_key: str) -> bytes:
    """What a principal's key signs to make a passkey theirs."""
    return f"deskgate/1 passkey\nprincipal:{name}\n{credential_id}\n{public_key}".encode()


def certify(old_key, name: str, new_public_key: str) -> str:
    return base64.b64encode(old_key.sign(rotation_message(name, new_public_key))).decode()


def signature_verifies(public_text: str, signature_b64: str | None, message: bytes) -> bool:
    """An Ed25519 signature (base64) over exactly `message` by the key in `public_text`; False for anything malformed."""
    if not signature_b64:
        return False
    try:
        return verify_raw(public_from_text(public_text), base64.b64decode(signature_b64, validate=True), message)
    except (ValueError, binascii.Error):
        return False


def furthest_certified(pinned: str, chain: list[tuple[str, str | None]], name: str) -> list[str]:
    """The keys after `pinned` in the chain (oldest first: (public key, certificate by the
    key before it)) that certificates reach, in order, stopping at the first gap."""
    keys = [k for k, _ in chain]
    if pinned not in keys:
        return []
    reached, previous = [], pinned
    for key, certificate in chain[keys.index(pinned) + 1 :]:
        if not signature_verifies(previous, certificate, rotation_message(name, key)):
            break
        reached.append(key)
        previous = key
    return reached


def chain_reaches(pinned: str, chain: list[tuple[str, str | None]], name: str) -> bool:
    """Do certificates lead from the pinned key to the chain's last key?"""
    return bool(chain) and (chain[-1][0] == pinned or furthest_certified(pinned, chain, name)[-1:] == [chain[-1][0]])


class Pins:
    """One service's pinned principal keys and passkeys."""

    def __init__(self, path: Path, *, shared_url: str | None = None, service: str | None = None):
        """`path`: the SQLite file. `shared_url`: the desk's PostgreSQL instead (the store
        `pins-<service>`), into which a file from before is carried once."""
        path.parent.mkdir(parents=True, exist_ok=True)
        moved = path.with_name(path.name + ".moved-to-postgresql")
        if shared_url is None:
            self.fresh = not path.exists()  # a store made just now: a data directory from before pins
            self.engine = open_store(f"sqlite:///{path}", "pins-factory")  # the pins schema, one file per service
        else:
            store = f"pins-{service}"
            self.fresh = not path.exists() and not moved.exists() and not schema_exists(shared_url, store)
            self.engine = open_store(shared_url, store, legacy_sqlite=path, legacy_tables=metadata.tables.values())

    @classmethod
    def for_service(cls, data_dir, service: str) -> Pins:
        if service not in PIN_SERVICES:
            raise ValueError(f"no pins for {service!r}")
        return cls(data_dir.state / f"pins-{service}.db", shared_url=data_dir.storage_url(), service=service)

    def close(self) -> None:
        self.engine.dispose()

    # -- keys ---------------------------------------------------------------------------

    def pinned(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(pins.c.public_key).where(pins.c.name == name)).first()
        return row[0] if row else None

    def superseded(self, name: str) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(superseded.c.public_key).where(superseded.c.name == name))}

    def _move(self, name: str, public_key: str, how: str, leave: list[str]) -> None:
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            for old in leave:
                if old != public_key and not conn.execute(
                    select(superseded.c.name).where(superseded.c.name == name, superseded.c.public_key == old)
                ).first():
                    conn.execute(insert(superseded).values(name=name, public_key=old, at=now))
            conn.execute(delete(superseded).where(superseded.c.name == name, superseded.c.public_key == public_key))
            if conn.execute(update(pins).where(pins.c.name == name).values(public_key=public_key, how=how, at=now)).rowcount == 0:
                conn.execute(insert(pins).values(name=name, public_key=public_key, how=how, at=now))

    def enroll(self, name: str, key: Ed25519PublicKey, how: str = "enrolled") -> None:
        """An operator's word: from now on this is `name`'s key here (the one before, if any,
        is left behind for good)."""
        before = self.pinned(name)
        self._move(name, public_to_text(key), how, [before] if before else [])

    trust = enroll

    def advance(self, name: str, chain: list[tuple[str, str | None]]) -> str | None:
        """Follow the certificates from the pinned key as far as they go; the new pin."""
        pinned = self.pinned(name)
        if pinned is None:
            return None
        ahead = furthest_certified(pinned, chain, name)
        if ahead:
            self._move(name, ahead[-1], "rotation", [pinned, *ahead[:-1]])
            return ahead[-1]
        return pinned

    def accepts(self, name: str, key: Ed25519PublicKey, chain: list[tuple[str, str | None]]) -> bool:
        """Whether `key`, the accounts database's current key for `name`, is the one this
        service trusts now: enrolled here, or certified from it, and never one left behind."""
        current = public_to_text(key)
        if current in self.superseded(name):
            return False
        return self.advance(name, chain) == current

    # -- passkeys -------------------------------------------------------------------------

    def pinned_passkeys(self, name: str) -> list[str]:
        """The passkey records (JSON) this service holds for `name`."""
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(passkey_pins.c.record).where(passkey_pins.c.name == name))]

    def pin_passkey(self, name: str, credential_id: str, record: str) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(
                select(passkey_pins.c.name).where(passkey_pins.c.name == name, passkey_pins.c.credential_id == credential_id)
            ).first():
                conn.execute(insert(passkey_pins).values(name=name, credential_id=credential_id, record=record, at=datetime.now(timezone.utc)))

    def drop_passkey(self, name: str, credential_id: str) -> None:
        """An operator's removal of a lost passkey."""
        with self.engine.begin() as conn:
            conn.execute(delete(passkey_pins).where(passkey_pins.c.name == name, passkey_pins.c.credential_id == credential_id))

    def endorsing_keys(self, name: str) -> list[str]:
        """The keys this service ever trusted for `name`: what may have endorsed a passkey."""
        pinned = self.pinned(name)
        return ([pinned] if pinned else []) + sorted(self.superseded(name))


def enroll(data_dir, name: str, key: Ed25519PublicKey, how: str = "enrolled") -> None:
    """An operator's enrolment of `name`'s key with every verifier (the factory, the executor)."""
    for service in PIN_SERVICES:
        store = Pins.for_service(data_dir, service)
        try:
            store.enroll(name, key, how)
        finally:
            store.close()


def enroll_everyone_once(store: Pins, principals) -> None:
    """A data directory from before pins: its services' first start enrols every enabled
    principal's current key, once (the store is new, so nobody is pinned yet)."""
    if not store.fresh:
        return
    for account in principals.accounts.list():
        if account.disabled or not account.can_decide:
            continue
        key = principals.decision_key(account.name)
        if key is not None and store.pinned(account.name) is None:
            store.enroll(account.name, key, "upgrade")
