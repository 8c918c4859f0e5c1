"""Agent identities: who may draft directives, with which key, until when.

Kept in the accounts database (`state/accounts.db`) beside the people, so that a
service watching that file (storage.UntilChanged) sees a revocation or a rotation
at its next directive. The desk keeps only public keys and a bcrypt hash of each
agent's bus password; the secrets go into the agent's credentials file, once.

Keys are never deleted: a rotated or revoked agent's old keys stay to verify what
they signed before (the audit log). Only a current key of an agent that is not
revoked may sign a directive the factory evaluates.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import bcrypt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from deskgate.identity.credentials import AgentCredentials
from deskgate.identity.names import BUILT_IN_AGENT, agent_inbox_prefix, agent_signer, agent_user, check_agent_name
from deskgate.paths import DataDir
from deskgate.migrations import upgrade
from deskgate.storage import utc

BCRYPT_ROUNDS = 10

metadata = MetaData()

agents = Table(
    "agents",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("nats_user", String(80), nullable=False, unique=True),
    Column("nats_bcrypt", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(64), nullable=True),
)

agent_keys = Table(
    "agent_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("key_id", String(16), primary_key=True),
    Column("public_key", String(100), nullable=False),
    Column("state", String(16), nullable=False),  # current | retired
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
)

# Facts about the desk that agents' credentials name: its id.
identity_meta = Table(
    "identity_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)


class IdentityError(ValueError):
    """A request about agent identities that cannot be done; the message says why."""


@dataclass(frozen=True)
class AgentKey:
    key_id: str
    public_key: str  # raw 32 bytes, base64
    state: str
    created_at: datetime
    retired_at: datetime | None

    def public(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key))


@dataclass(frozen=True)
class AgentIdentity:
    name: str
    nats_user: str
    nats_bcrypt: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    keys: tuple[AgentKey, ...]  # current first, then retired, newest first

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def signer(self) -> str:
        return agent_signer(self.name)

    @property
    def current_key(self) -> AgentKey | None:
        return self.keys[0] if self.keys and self.keys[0].state == "current" else None


def key_id_of(public: Ed25519PublicKey) -> str:
    from deskgate.audit.keys import fingerprint

    return fingerprint(public)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class AgentRegistry:
    """The agent identities of one desk. Every call is one short transaction."""

    def __init__(self, engine: Engine, *, clock=_now):
        self.engine = engine
        self.clock = clock
        upgrade(engine, "accounts")  # the identities live in the accounts store

    @classmethod
    def open(cls, data_dir: DataDir, **kw) -> AgentRegistry:
        """The accounts database's engine (0600, made as people/accounts.py makes it)."""
        from deskgate.people.accounts import Accounts

        return cls(Accounts.open(data_dir).engine, **kw)

    # -- the desk ------------------------------------------------------------------

    def desk_id(self) -> str:
        """A random id for this desk, made once: credentials name it, so a client can tell
        a file made for another desk."""
        with self.engine.begin() as conn:
            row = conn.execute(select(identity_meta.c.value).where(identity_meta.c.key == "desk_id")).first()
            if row is not None:
                return row[0]
            value = secrets.token_hex(8)
            try:
                conn.execute(insert(identity_meta).values(key="desk_id", value=value))
            except IntegrityError:
                pass
        with self.engine.connect() as conn:
            return conn.execute(select(identity_meta.c.value).where(identity_meta.c.key == "desk_id")).scalar_one()

    # -- reading -------------------------------------------------------------------

    def get(self, name: str) -> AgentIdentity | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(agents).where(agents.c.name == name)).mappings().first()
            if row is None:
                return None
            return self._identity(conn, row)

    def all(self) -> list[AgentIdentity]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(agents).order_by(agents.c.name)).mappings().all()
            return [self._identity(conn, r) for r in rows]

    def active(self) -> list[AgentIdentity]:
        return [a for a in self.all() if not a.revoked]

    def _identity(self, conn, row) -> AgentIdentity:
        keys = conn.execute(
            select(agent_keys).where(agent_keys.c.name == row["name"]).order_by(agent_keys.c.created_at.desc())
        ).mappings().all()
        ordered = sorted(
            (AgentKey(k["key_id"], k["public_key"], k["state"], utc(k["created_at"]), utc(k["retired_at"])) for k in keys),
            key=lambda k: (k.state != "current", -k.created_at.timestamp()),
        )
        return AgentIdentity(
            row["name"], row["nats_user"], row["nats_bcrypt"], utc(row["created_at"]), utc(row["revoked_at"]), row["revoked_by"], tuple(ordered)
        )

    def public_keys(self, name: str) -> tuple[Ed25519PublicKey, ...]:
        """Every key the agent ever had, current first: to verify what it signed before."""
        ident = self.get(name)
        return tuple(k.public() for k in ident.keys) if ident is not None else ()

    def directive_key(self, name: str) -> Ed25519PublicKey | None:
        """The one key that may sign a directive now: the current key of an agent not revoked."""
        ident = self.get(name)
        if ident is None or ident.revoked or ident.current_key is None:
            return None
        return ident.current_key.public()

    def refusal(self, name: str) -> str | None:
        """Why `name` cannot draft a directive now, in words; None when it can."""
        ident = self.get(name)
        if ident is None:
            return f"no agent named {name} on this desk"
        if ident.revoked:
            return f"agent {name} was revoked at {ident.revoked_at.isoformat()}"
        if ident.current_key is None:
            return f"agent {name} has no current key"
        return None

    # -- changing ------------------------------------------------------------------

    def add(self, name: str, servers: list[str]) -> AgentCredentials:
        """A new identity; returns its credentials (the only copy of its secrets)."""
        check_agent_name(name)
        existing = self.get(name)
        if existing is not None:
            state = "revoked" if existing.revoked else "active"
            raise IdentityError(f"an agent named {name} exists ({state}); names are never reused, so its past stays attributable")
        password, bcrypt_hash = _new_password()
        key = Ed25519PrivateKey.generate()
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(agents).values(
                    name=name, nats_user=agent_user(name), nats_bcrypt=bcrypt_hash, created_at=now, revoked_at=None, revoked_by=None
                ))
                self._insert_key(conn, name, key.public_key(), now)
        except IntegrityError:
            raise IdentityError(f"an agent named {name} exists") from None
        return self._credentials(name, servers, password, key, now)

    def rotate(self, name: str, servers: list[str]) -> AgentCredentials:
        """A new key and a new bus password; the old key only verifies the past from now on."""
        ident = self._existing(name)
        if ident.revoked:
            raise IdentityError(f"agent {name} is revoked; a revoked agent cannot be rotated back in (add a new agent)")
        password, bcrypt_hash = _new_password()
        key = Ed25519PrivateKey.generate()
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                update(agent_keys).where(agent_keys.c.name == name, agent_keys.c.state == "current").values(state="retired", retired_at=now)
            )
            self._insert_key(conn, name, key.public_key(), now)
            conn.execute(update(agents).where(agents.c.name == name).values(nats_bcrypt=bcrypt_hash))
        return self._credentials(name, servers, password, key, now)

    def revoke(self, name: str, by: str | None = None) -> AgentIdentity:
        """From now on the agent's directives are refused; its keys stay to verify the past."""
        ident = self._existing(name)
        if ident.revoked:
            raise IdentityError(f"agent {name} was already revoked at {ident.revoked_at.isoformat()}")
        with self.engine.begin() as conn:
            conn.execute(update(agents).where(agents.c.name == name).values(revoked_at=self.clock(), revoked_by=by))
        return self._existing(name)

    def _existing(self, name: str) -> AgentIdentity:
        ident = self.get(name)
        if ident is None:
            known = ", ".join(a.name for a in self.all()) or "none"
            raise IdentityError(f"no agent named {name} on this desk (agents: {known})")
        return ident

    def _insert_key(self, conn, name: str, public: Ed25519PublicKey, now: datetime) -> None:
        from deskgate.audit.keys import public_to_text

        conn.execute(insert(agent_keys).values(
            name=name, key_id=key_id_of(public), public_key=public_to_text(public), state="current", created_at=now, retired_at=None
        ))

    def _credentials(self, name: str, servers: list[str], password: str, key: Ed25519PrivateKey, now: datetime) -> AgentCredentials:
        return AgentCredentials(
            desk_id=self.desk_id(),
            agent=name,
            servers=tuple(servers),
            user=agent_user(name),
            password=password,
            inbox_prefix=agent_inbox_prefix(name),
            signer=agent_signer(name),
            key_id=key_id_of(key.public_key()),
            private_key=base64.b64encode(key.private_bytes_raw()).decode(),
            issued_at=now,
        )


def _new_password() -> tuple[str, str]:
    password = secrets.token_urlsafe(24)
    return password, bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def default_credentials_path(data_dir: DataDir, name: str) -> Path:
    """Where `deskgate agent add` writes an agent's credentials unless told otherwise."""
    return data_dir.root / "agents" / f"{check_agent_name(name)}.json"


def ensure_desk_agent(data_dir: DataDir) -> AgentCredentials:
    """The built-in agents' identity (`desk`), made once; its credentials file lies in the
    data directory (0600) and names no server: the desk's own agents read the bus's address
    from the data directory. A desk whose file was lost gets a new key (the old one stays
    to verify the past)."""
    registry = AgentRegistry.open(data_dir)
    try:
        return _ensure_desk_agent(data_dir, registry)
    finally:
        registry.engine.dispose()  # one connection pool per call would pile up (PostgreSQL counts them)


def _ensure_desk_agent(data_dir: DataDir, registry: AgentRegistry) -> AgentCredentials:
    from deskgate.identity.credentials import CredentialsError, read_credentials, write_credentials

    path = default_credentials_path(data_dir, BUILT_IN_AGENT)
    ident = registry.get(BUILT_IN_AGENT)
    if ident is not None and path.exists():
        try:
            creds = read_credentials(path)
        except CredentialsError:
            creds = None
        if creds is not None and ident.current_key is not None and creds.key_id == ident.current_key.key_id and not ident.revoked:
            return creds
    if ident is None:
        creds = registry.add(BUILT_IN_AGENT, [])
    elif ident.revoked:
        raise IdentityError(f"the built-in agent {BUILT_IN_AGENT} is revoked on this desk; the desk's agents cannot run")
    else:
        creds = registry.rotate(BUILT_IN_AGENT, [])
    write_credentials(path, creds, replace=True)
    return creds
