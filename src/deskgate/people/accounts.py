"""People: accounts, their roles, their sessions, their signing keys, and what they did.

Kept in SQLite under the data directory (`state/accounts.db`, 0600), separate from
the factory's state: the Command Center never touches the factory's database, it
only talks to the factory over the bus with the command_center role. Passwords are
stored as argon2id hashes; session tokens only as their SHA-256. A principal's
signing key is kept here sealed with their password (people/sealing.py), so a key
exists only for an account, and disabling the account retires it at once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, delete, event, insert, select, update
from sqlalchemy.engine import Engine

from deskgate.paths import DataDir
from deskgate.migrations import open_store, upgrade
from deskgate.storage import make_engine, utc


class Role(StrEnum):
    VIEWER = "viewer"  # sees everything, changes nothing
    PRINCIPAL = "principal"  # decides approvals, acknowledges reviews, resets the breaker
    ADMIN = "admin"  # a principal who may also see and disable accounts


CAN_DECIDE = frozenset({Role.PRINCIPAL, Role.ADMIN})

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 10
FAILURES_FORGOTTEN_AFTER = timedelta(hours=1)


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("name", String(64), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    # The principal's signing key wrapped under the session token (sealing.wrap_for_session):
    # useless without the cookie, which only the person's browser holds.
    Column("wrapped_key", Text, nullable=True),
)

# Principals' Ed25519 signing keys. One `current` key per account, sealed with the
# account's password; `retired` keys (rotated, or an unsealed key from before keys
# were sealed) only verify what they signed before.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("key_id", String(16), primary_key=True),  # audit.keys.fingerprint
    Column("public_key", String(100), nullable=False),
    Column("sealed", Text, nullable=True),  # a sealing.SealedKey as JSON; None for a retired key
    Column("state", String(16), nullable=False),  # current | retired
    Column("origin", String(16), nullable=False),  # sealed (made sealed) | unsealed (the public half of a plain key file, retired)
    # The key before this one signed this one (pins.rotation_message), when made from it.
    Column("certificate", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
)

# Facts about this data directory (e.g. that unsealed key files were retired once).
desk_meta = Table(
    "desk_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

# Passkeys (WebAuthn credentials) a principal registered; once one is, the factory
# counts that principal's decisions only with an assertion from one of them.
passkeys = Table(
    "passkeys",
    metadata,
    Column("credential_id", String(1400), primary_key=True),
    Column("name", String(64), nullable=False, index=True),
    Column("record", Text, nullable=False),  # a passkeys.StoredPasskey as JSON
    # The principal's key's signature over the passkey (pins.passkey_endorsement_message),
    # and, when they had a passkey already, its assertion over this registration.
    Column("endorsement", String(100), nullable=True),
    Column("confirmation", Text, nullable=True),
    Column("confirmation_digest", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Failed logins per account ("user:NAME") and per client address ("addr:IP").
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure", DateTime(timezone=True), nullable=False),
)

# What each person did through the Command Center, in order.
actions = Table(
    "actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("name", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(128), nullable=False, default=""),
    Column("detail", JSON, nullable=False),
)


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    disabled: bool
    created_at: datetime

    @property
    def can_decide(self) -> bool:
        return self.role in CAN_DECIDE


@dataclass(frozen=True)
class Session:
    account: Account
    csrf: str
    created_at: datetime
    last_seen: datetime


def normalise_name(name: str) -> str:
    """Account names are plain lower-case ASCII, so no two look alike on the approvals page."""
    clean = name.strip().lower()
    if not NAME_PATTERN.fullmatch(clean):
        raise AccountError(
            f"account name {name!r} is not allowed: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return clean


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if password.strip() != password:
        raise AccountError("the password may not start or end with whitespace")


def login_wait_seconds(failures: int, last_failure: datetime | None, now: datetime, allowed: int, max_wait: float) -> float:
    """How long a login must wait after `failures` failures: nothing until `allowed`,
    then 1 s doubling per further failure, capped at `max_wait`."""
    if last_failure is None or failures < allowed:
        return 0.0
    wait = min(max_wait, 2.0 ** (failures - allowed))
    remaining = (last_failure + timedelta(seconds=wait) - now).total_seconds()
    return max(0.0, remaining)


def _account(row) -> Account:
    return Account(row["name"], Role(row["role"]), row["disabled"], utc(row["created_at"]))


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Accounts:
    """The account store. Every call is one short transaction, so the CLI and the
    running Command Center can share the file."""

    def __init__(self, engine: Engine, *, hasher: PasswordHasher | None = None, clock=_now):
        self.engine = engine
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        upgrade(engine, "accounts")
        self._dummy: str | None = None

    @property
    def _dummy_hash(self) -> str:
        """Verified against when the account does not exist, so an unknown name costs
        the same time as a wrong password and does not reveal which names exist. Made
        on first use: services that only read keys never pay for it."""
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_hex(16))
        return self._dummy

    @classmethod
    def open(cls, data_dir: DataDir, **kw) -> Accounts:
        data_dir.state.mkdir(parents=True, exist_ok=True)
        path = data_dir.accounts_db
        shared = data_dir.storage_url()
        if shared is not None:
            # PostgreSQL (storage.url): the accounts schema; a desk whose accounts were a
            # file before has them carried over once.
            from deskgate.identity.registry import metadata as identity_metadata

            tables = [*metadata.tables.values(), *identity_metadata.tables.values()]
            return cls(open_store(shared, "accounts", legacy_sqlite=path, legacy_tables=tables), **kw)
        # Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
        # database file's mode, and they hold hashes and CSRF tokens too.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists():
                p.chmod(0o600)
        engine = make_engine(f"sqlite:///{path}")

        @event.listens_for(engine, "connect")
        def _erase_deleted(dbapi_conn, _record):
            # What is deleted is overwritten (an ended session's wrapped key, a retired
            # sealed key), not left in free pages for a later copy of the file to reveal.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return cls(engine, **kw)

    # -- accounts ---------------------------------------------------------------------

    def add(self, name: str, role: str, password: str) -> Account:
        name = normalise_name(name)
        try:
            role_ = Role(role)
        except ValueError:
            raise AccountError(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}") from None
        check_password_strength(password)
        with self.engine.begin() as conn:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise AccountError(f"account {name!r} already exists")
            now = self.clock()
            conn.execute(
                insert(users).values(
                    name=name, role=role_.value, password_hash=self.hasher.hash(password), disabled=False, created_at=now
                )
            )
        return Account(name, role_, False, now)

    def list(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings().all()
        return [_account(r) for r in rows]

    def get(self, name: str) -> Account | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return _account(r) if r else None

    def disable(self, name: str) -> Account:
        """Disable an account and end its sessions at once."""
        name = normalise_name(name)
        with self.engine.begin() as conn:
            if conn.execute(update(users).where(users.c.name == name).values(disabled=True)).rowcount == 0:
                raise AccountError(f"no account {name!r}")
            conn.execute(delete(sessions).where(sessions.c.name == name))
        account = self.get(name)
        assert account is not None
        return account

    def set_password(self, name: str, password: str) -> None:
        """Store a new password hash (the caller re-seals the signing key with it)."""
        check_password_strength(password)
        name = normalise_name(name)
        with self.engine.begin() as conn:
            if conn.execute(update(users).where(users.c.name == name).values(password_hash=self.hasher.hash(password))).rowcount == 0:
                raise AccountError(f"no account {name!r}")

    def verify_password(self, name: str, password: str) -> Account | None:
        """The enabled account whose password this is, or None."""
        try:
            name = normalise_name(name)
        except AccountError:
            name = ""
        with self.engine.connect() as conn:
            r = conn.execute(select(users).where(users.c.name == name)).mappings().first() if name else None
        try:
            self.hasher.verify(r["password_hash"] if r else self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if r is None or r["disabled"]:
            return None
        return _account(r)

    # -- login throttling ---------------------------------------------------------------

    def login_wait(self, keys: list[str], allowed: int, max_wait: float, in_flight: dict[str, int] | None = None) -> float:
        """How long the next attempt on these keys must wait. Attempts still being
        checked (`in_flight`) count as failures made just now, so attempts sent all at
        once cannot slip past the limit together."""
        now = self.clock()
        in_flight = in_flight or {}
        with self.engine.connect() as conn:
            rows = {r["key"]: r for r in conn.execute(select(login_failures).where(login_failures.c.key.in_(keys))).mappings()}
        waits = []
        for key in keys:
            r, busy = rows.get(key), in_flight.get(key, 0)
            failures = r["failures"] if r is not None and not self._stale(r, now) else 0
            last = now if busy else (utc(r["last_failure"]) if r is not None else None)
            waits.append(login_wait_seconds(failures + busy, last, now, allowed, max_wait))
        return max(waits, default=0.0)

    def record_login_failure(self, keys: list[str]) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            for key in keys:
                r = conn.execute(select(login_failures).where(login_failures.c.key == key)).mappings().first()
                if r is None:
                    conn.execute(insert(login_failures).values(key=key, failures=1, last_failure=now))
                else:
                    failures = 1 if self._stale(r, now) else r["failures"] + 1
                    conn.execute(update(login_failures).where(login_failures.c.key == key).values(failures=failures, last_failure=now))

    @staticmethod
    def _stale(row, now: datetime) -> bool:
        """Failures are forgotten after a quiet hour, so no count grows for ever."""
        return now - utc(row["last_failure"]) > FAILURES_FORGOTTEN_AFTER

    def clear_login_failures(self, keys: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.key.in_(keys)))

    # -- sessions -----------------------------------------------------------------------

    def start_session(self, account: Account, wrap=None) -> tuple[str, str]:
        """A new session for `account`: (token for the cookie, CSRF token). `wrap(token)`,
        when given, returns the signing key wrapped under the new token."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        wrapped = wrap(token) if wrap is not None else None
        with self.engine.begin() as conn:
            conn.execute(
                insert(sessions).values(
                    token_sha256=_sha256(token), name=account.name, csrf=csrf, created_at=now, last_seen=now, wrapped_key=wrapped
                )
            )
        return token, csrf

    def session_wrapped_key(self, token: str) -> tuple[str, str | None] | None:
        """(account name, the key wrapped under this token) for a stored session, or None."""
        with self.engine.connect() as conn:
            r = conn.execute(select(sessions.c.name, sessions.c.wrapped_key).where(sessions.c.token_sha256 == _sha256(token))).first()
        return (r[0], r[1]) if r else None

    def session(self, token: str | None, *, idle: timedelta, max_age: timedelta, touch: bool = True) -> Session | None:
        """The live session this token opens, touching it (unless `touch` is false: a
        background check must not keep an unattended session alive); None if unknown,
        expired or disabled."""
        if not token:
            return None
        key = _sha256(token)
        now = self.clock()
        with self.engine.begin() as conn:
            r = conn.execute(select(sessions).where(sessions.c.token_sha256 == key)).mappings().first()
            if r is None:
                return None
            if now - utc(r["last_seen"]) > idle or now - utc(r["created_at"]) > max_age:
                conn.execute(delete(sessions).where(sessions.c.token_sha256 == key))
                return None
            u = conn.execute(select(users).where(users.c.name == r["name"])).mappings().first()
            if u is None or u["disabled"]:
                conn.execute(delete(sessions).where(sessions.c.token_sha256 == key))
                return None
            if touch:
                conn.execute(update(sessions).where(sessions.c.token_sha256 == key).values(last_seen=now))
        account = _account(u)
        return Session(account, r["csrf"], utc(r["created_at"]), now)

    def purge_sessions(self, *, idle: timedelta, max_age: timedelta) -> int:
        """Delete every session past its limits (with the keys wrapped under them), not only
        the ones someone tries to use again."""
        now = self.clock()
        with self.engine.begin() as conn:
            return conn.execute(
                delete(sessions).where((sessions.c.last_seen < now - idle) | (sessions.c.created_at < now - max_age))
            ).rowcount

    def end_sessions(self, name: str) -> None:
        """End every session of an account (its keys wrapped under them go with them)."""
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.name == name))

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_sha256 == _sha256(token)))

    # -- the record ---------------------------------------------------------------------

    def record(self, name: str, action: str, target: str = "", **detail: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(actions).values(at=self.clock(), name=name, action=action, target=target, detail=detail))

    def actions(self, limit: int = 200) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(actions).order_by(actions.c.id.desc()).limit(limit)).mappings().all()
        return [{**r, "at": utc(r["at"])} for r in rows]


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())
