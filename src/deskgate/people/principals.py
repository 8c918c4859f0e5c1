"""Principals' signing keys: made sealed, opened only with the principal's own secret.

This is the one place a person's key is unsealed. Everything that *verifies* a
person's decision asks `decision_key` (an enabled principal or admin account's
current sealed key, nothing else) or `public_keys` (every key the person ever
had, to verify what they signed before). A key file planted in `keys/`, or a name
with no account, signs nothing the desk will count.

An unsealed key from before keys were sealed (`keys/private/principal-NAME.pem`)
is never adopted for signing: whoever could read the data directory may hold a
copy. The first time a desk process opens the keys of a data directory made by an
earlier version, every such key's public half is kept as a *retired* key (so what
it signed still verifies) and the plain files are deleted; that happens once, so a
key file planted in `keys/` later is never taken for anyone's. The principal gets a
new sealed key with `deskgate keys seal NAME` (enrolled with the verifiers at once), or
at their next login (counted once an operator confirms it: `deskgate keys trust`).

A new key made from an old one (a rotation, a password change) carries the old
key's signature over it, so a verifier that pinned the old key can follow the
change (people/pins.py); a key with no such certificate needs an operator's word.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from deskgate.audit.keys import PRINCIPAL_PREFIX, fingerprint, public_from_text, public_to_text
from deskgate.audit.signing import Signer
from deskgate.people.accounts import Account, AccountError, Accounts, desk_meta, normalise_name, passkeys, signing_keys, users
from deskgate.people.passkeys import (
    PASSKEY_HEADER,
    PasskeyAssertion,
    PasskeyError,
    StoredPasskey,
    decision_digest,
    decode_assertion,
    verify_assertion,
)
from deskgate.people.pins import certify, signature_verifies
from deskgate.people.sealing import KdfParams, SealedKey, WrongSecret, seal, unseal, unwrap_for_session, wrap_for_session

log = logging.getLogger("deskgate.people")


class PrincipalError(RuntimeError):
    """Someone may not sign as this principal; the message says why, for a person."""


class WrongPassword(PrincipalError):
    """The password given does not open this principal's key (counted against the limit)."""


@dataclass(frozen=True)
class KeyRecord:
    name: str
    key_id: str
    public_key: str
    state: str  # current | retired
    origin: str  # sealed | unsealed
    created_at: datetime
    retired_at: datetime | None


def signer_name(name: str) -> str:
    return PRINCIPAL_PREFIX + name


class Principals:
    """Principals' keys in the accounts database; `legacy_dir` is the desk's keys/
    directory, where unsealed keys from earlier versions may still lie."""

    def __init__(self, accounts: Accounts, *, legacy_dir: Path | None = None, kdf: KdfParams | None = None):
        self.accounts = accounts
        self.legacy_dir = legacy_dir
        self.kdf = kdf or KdfParams()

    # -- who may decide ---------------------------------------------------------------

    def can_seal(self, name: str) -> bool:
        """An enabled principal or admin account without a sealed key yet."""
        try:
            account = self._deciding_account(name)
        except PrincipalError:
            return False
        return self._current(account.name) is None

    def refusal(self, name: str) -> str | None:
        """Why `name` cannot sign decisions now, or None if they can."""
        try:
            clean = normalise_name(name)
        except AccountError:
            return f"{name!r} is not an account name"
        account = self.accounts.get(clean)
        if account is None:
            return f"{clean} has no account; only a principal or admin account decides (`deskgate user add {clean} --role principal`)"
        if account.disabled:
            return f"{clean}'s account is disabled"
        if not account.can_decide:
            return f"{clean} is a {account.role.value}: viewers see everything and decide nothing"
        try:
            current = self._current(clean)
        except PrincipalError as exc:
            return str(exc)
        if current is None:
            return f"{clean} has no sealed signing key yet; it is made at their next login or with `deskgate keys seal {clean}`"
        return None

    def decision_key(self, name: str) -> Ed25519PublicKey | None:
        """The key a decision by `name` must be signed with now: the current sealed key of
        an enabled principal or admin account; None for anyone else."""
        try:
            clean = normalise_name(name)
        except AccountError:
            return None
        with self.accounts.engine.connect() as conn:
            row = conn.execute(
                select(signing_keys.c.public_key, users.c.role, users.c.disabled)
                .join(users, users.c.name == signing_keys.c.name)
                .where(signing_keys.c.name == clean, signing_keys.c.state == "current", signing_keys.c.sealed.is_not(None))
            ).first()
        if row is None or row.disabled or row.role not in ("principal", "admin"):
            return None
        try:
            return public_from_text(row.public_key)
        except ValueError:
            log.warning("the current key of %s in the accounts database cannot be read", clean)
            return None

    def public_keys(self, name: str) -> list[Ed25519PublicKey]:
        """Every key `name` ever signed with (current first): for verifying the past."""
        try:
            clean = normalise_name(name)
        except AccountError:
            return []
        out = []
        for r in sorted(self.keys(clean), key=lambda r: r.state != "current"):
            try:
                out.append(public_from_text(r.public_key))
            except ValueError:
                continue
        return out

    def keys(self, name: str | None = None) -> list[KeyRecord]:
        q = select(signing_keys).order_by(signing_keys.c.name, signing_keys.c.created_at)
        if name is not None:
            q = q.where(signing_keys.c.name == name)
        with self.accounts.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            KeyRecord(r["name"], r["key_id"], r["public_key"], r["state"], r["origin"], _utc(r["created_at"]), _utc(r["retired_at"]))
            for r in rows
        ]

    def _current(self, name: str) -> SealedKey | None:
        with self.accounts.engine.connect() as conn:
            row = conn.execute(
                select(signing_keys.c.sealed).where(signing_keys.c.name == name, signing_keys.c.state == "current")
            ).first()
        if not row or not row[0]:
            return None
        try:
            return SealedKey.model_validate_json(row[0])
        except ValueError:
            raise PrincipalError(f"{name}'s sealed key in the accounts database cannot be read; `deskgate user reset-password {name}` makes a new one") from None

    # -- making and opening keys ------------------------------------------------------

    def _deciding_account(self, name: str) -> Account:
        """The enabled principal or admin account `name`; PrincipalError for anyone else."""
        try:
            clean = normalise_name(name)
        except AccountError as exc:
            raise PrincipalError(str(exc)) from None
        account = self.accounts.get(clean)
        if account is None:
            raise PrincipalError(f"{clean} has no account; only a principal or admin account can sign decisions")
        if account.disabled:
            raise PrincipalError(f"{clean}'s account is disabled")
        if not account.can_decide:
            raise PrincipalError(f"{clean} is a {account.role.value}: viewers see everything and decide nothing")
        return account

    def _check_password(self, account: Account, password: str) -> None:
        if self.accounts.verify_password(account.name, password) is None:
            raise WrongPassword(f"wrong password for {account.name}")

    def make_key(self, name: str, password: str) -> Ed25519PublicKey:
        """A sealed key for an enabled principal or admin who gave their password. Refused
        when they already have one: keys are never replaced silently (see `rotate`)."""
        account = self._deciding_account(name)
        self._check_password(account, password)
        existing = self._current(account.name)
        if existing is not None:
            raise PrincipalError(f"{account.name} already has a sealed signing key ({fingerprint(public_from_text(existing.public_key))})")
        return self._store_new(account.name, password).public_key()

    def rotate(self, name: str, password: str) -> Ed25519PublicKey:
        """A new sealed key, certified by the old one, which is retired (it still verifies
        what it signed). Sessions end: each held the old key."""
        account = self._deciding_account(name)
        old = self.unlock(account.name, password)
        key = self._store_new(account.name, password, previous=old)
        self.accounts.end_sessions(account.name)
        return key.public_key()

    def _store_new(
        self, name: str, password: str, *, previous: Ed25519PrivateKey | None = None, conn=None, new_password_hash: str | None = None
    ) -> Ed25519PrivateKey:
        """A new current key for `name`, sealed with `password`; the current one is retired.
        `previous` (the key being replaced, opened) certifies the new one. With
        `new_password_hash`, the account's password changes in the same transaction."""
        key = Ed25519PrivateKey.generate()
        sealed = seal(key, signer_name(name), password, self.kdf)
        now = self.accounts.clock()
        certificate = certify(previous, name, sealed.public_key) if previous is not None else None

        def write(c) -> None:
            c.execute(
                update(signing_keys)
                .where(signing_keys.c.name == name, signing_keys.c.state == "current")
                .values(state="retired", sealed=None, retired_at=now)
            )
            c.execute(insert(signing_keys).values(
                name=name, key_id=fingerprint(key.public_key()), public_key=sealed.public_key, sealed=sealed.model_dump_json(),
                state="current", origin="sealed", certificate=certificate, created_at=now, retired_at=None,
            ))
            if new_password_hash is not None:
                c.execute(update(users).where(users.c.name == name).values(password_hash=new_password_hash))

        if conn is not None:
            write(conn)
        else:
            with self.accounts.engine.begin() as c:
                write(c)
        return key

    def unlock(self, name: str, password: str, *, failures_allowed: int = 5, max_wait_s: float = 300.0) -> Ed25519PrivateKey:
        """The principal's private key, opened with their password (opening it is the
        password check). Makes their sealed key first if they have none (an account made
        before keys, or one whose unsealed key was retired). Wrong passwords count against
        the same per-account limit as the Command Center's logins, wherever they are tried."""
        account = self._deciding_account(name)
        throttle = [f"user:{account.name}"]
        wait = self.accounts.login_wait(throttle, failures_allowed, max_wait_s)
        if wait > 0:
            raise PrincipalError(f"too many wrong passwords for {account.name}; try again in {wait:.0f} s")
        try:
            key = self._open(account, password)
        except WrongPassword:
            self.accounts.record_login_failure(throttle)
            raise
        self.accounts.clear_login_failures(throttle)
        return key

    def _open(self, account: Account, password: str) -> Ed25519PrivateKey:
        sealed = self._current(account.name)
        if sealed is None:
            self._check_password(account, password)
            key = self._store_new(account.name, password)
            log.warning("made a sealed signing key for %s (%s)", account.name, fingerprint(key.public_key()))
            return key
        try:
            return unseal(sealed, password)
        except WrongSecret:
            raise WrongPassword(f"wrong password for {account.name}") from None

    def signer(self, name: str, password: str, *, failures_allowed: int = 5, max_wait_s: float = 300.0) -> Signer:
        """A Signer for `name`, after every check (the CLI's way in)."""
        key = self.unlock(name, password, failures_allowed=failures_allowed, max_wait_s=max_wait_s)
        return Signer.of(signer_name(normalise_name(name)), key)

    def reset(self, name: str, new_password: str) -> Ed25519PublicKey:
        """A forgotten password: a new password and a new sealed key, the old key retired
        (what it signed still verifies; it signs nothing new). An operator's action, as
        adding an account is: whoever may write the accounts database may do it."""
        from deskgate.people.accounts import check_password_strength

        check_password_strength(new_password)
        account = self._deciding_account(name)
        with self.accounts.engine.begin() as conn:
            key = self._store_new(account.name, new_password, conn=conn, new_password_hash=self.accounts.hasher.hash(new_password))
        self.accounts.end_sessions(account.name)
        return key.public_key()

    def change_password(self, name: str, old_password: str, new_password: str) -> Ed25519PublicKey:
        """A new password and, in the same transaction, a new key certified by the old one:
        whoever learned the old password (or kept an old copy of this database) opens
        only a retired key. The account's sessions end."""
        from deskgate.people.accounts import check_password_strength

        check_password_strength(new_password)
        account = self._deciding_account(name)
        old = self.unlock(account.name, old_password)
        with self.accounts.engine.begin() as conn:
            key = self._store_new(account.name, new_password, previous=old, conn=conn, new_password_hash=self.accounts.hasher.hash(new_password))
        self.accounts.end_sessions(account.name)
        return key.public_key()

    def key_chain(self, name: str) -> list[tuple[str, str | None]]:
        """(public key, certificate by the key before it) for each key `name` had, oldest first."""
        with self.accounts.engine.connect() as conn:
            rows = conn.execute(
                select(signing_keys.c.public_key, signing_keys.c.certificate)
                .where(signing_keys.c.name == name)
                .order_by(signing_keys.c.created_at, signing_keys.c.state.desc())
            ).all()
        return [(r[0], r[1]) for r in rows]

    # -- passkeys ----------------------------------------------------------------------

    def passkeys(self, name: str) -> list[StoredPasskey]:
        """The passkeys `name` registered (as the accounts database says; verifiers ask
        `verified_passkeys`, which this database alone cannot shrink or grow)."""
        return [p for p, *_ in self._passkey_rows(name)]

    def _passkey_rows(self, name: str) -> list[tuple[StoredPasskey, str | None, str | None, str | None]]:
        try:
            clean = normalise_name(name)
        except AccountError:
            return []
        with self.accounts.engine.connect() as conn:
            rows = conn.execute(
                select(passkeys.c.record, passkeys.c.endorsement, passkeys.c.confirmation, passkeys.c.confirmation_digest)
                .where(passkeys.c.name == clean).order_by(passkeys.c.created_at)
            ).all()
        out = []
        for record, endorsement, confirmation, confirmation_digest in rows:
            try:
                out.append((StoredPasskey.model_validate_json(record), endorsement, confirmation, confirmation_digest))
            except ValueError:
                log.warning("an unreadable passkey record of %s is ignored", clean)
        return out

    def add_passkey(self, passkey: StoredPasskey, *, endorsement: str, confirmation: str | None = None, confirmation_digest: str | None = None) -> None:
        """Keep a verified registration, endorsed by the principal's key (and confirmed by
        their existing passkey, if any). A credential registered to anyone already is
        refused: with attestation "none" nothing else tells two people's authenticators apart."""
        account = self._deciding_account(passkey.principal)
        with self.accounts.engine.begin() as conn:
            if conn.execute(select(passkeys.c.name).where(passkeys.c.credential_id == passkey.credential_id)).first():
                raise PrincipalError("this passkey is already registered")
            conn.execute(insert(passkeys).values(
                credential_id=passkey.credential_id, name=account.name, record=passkey.model_dump_json(), endorsement=endorsement,
                confirmation=confirmation, confirmation_digest=confirmation_digest, created_at=passkey.created_at,
            ))

    def remove_passkey(self, name: str, credential_id: str) -> bool:
        from sqlalchemy import delete

        with self.accounts.engine.begin() as conn:
            return conn.execute(
                delete(passkeys).where(passkeys.c.name == normalise_name(name), passkeys.c.credential_id == credential_id)
            ).rowcount > 0

    def verified_passkeys(self, name: str, pins, rp_id: str) -> list[StoredPasskey]:
        """The passkeys a verifier holds `name` to: those it pinned before, and any new one
        whose registration the principal's key endorsed (a key the verifier trusted) and,
        when they had passkeys already, one of those confirmed. What it accepts it pins, so
        deleting the row later does not lift the requirement."""
        from deskgate.people.pins import passkey_endorsement_message

        clean = normalise_name(name)
        held = []
        for text in pins.pinned_passkeys(clean):
            try:
                held.append(StoredPasskey.model_validate_json(text))
            except ValueError:
                continue
        known = {p.credential_id for p in held}
        endorsers = pins.endorsing_keys(clean)
        for passkey, endorsement, confirmation, confirmation_digest in self._passkey_rows(clean):
            if passkey.credential_id in known:
                continue
            message = passkey_endorsement_message(clean, passkey.credential_id, passkey.public_key)
            if not any(signature_verifies(k, endorsement, message) for k in endorsers):
                continue
            if held:
                try:
                    verify_assertion(
                        PasskeyAssertion.model_validate_json(confirmation or ""), held, digest=confirmation_digest or "", rp_id=rp_id
                    )
                except (PasskeyError, ValueError):
                    continue
            pins.pin_passkey(clean, passkey.credential_id, passkey.model_dump_json())
            held.append(passkey)
            known.add(passkey.credential_id)
        return held

    def passkey_problem(self, name: str, kind: str, payload: bytes, headers: dict | None, rp_id: str, *, pins=None) -> str | None:
        """Why a decision by `name` lacks the passkey assertion it needs (None when `name` has no
        passkey, or the assertion covers exactly these signed bytes). A verifier passes its pins."""
        try:
            registered = self.verified_passkeys(name, pins, rp_id) if pins is not None else self.passkeys(name)
        except AccountError:
            return f"{name!r} is not an account name"
        return self.assertion_problem(name, registered, kind, payload, headers, rp_id)

    @staticmethod
    def assertion_problem(name: str, registered: list, kind: str, payload: bytes, headers: dict | None, rp_id: str) -> str | None:
        """Why the assertion in `headers` does not cover these signed bytes with one of `registered`."""
        if not registered:
            return None
        try:
            assertion = decode_assertion((headers or {}).get(PASSKEY_HEADER))
            verify_assertion(assertion, registered, digest=decision_digest(kind, payload), rp_id=rp_id)
        except PasskeyError as exc:
            return f"{normalise_name(name)} decides with a passkey: {exc}"
        return None

    # -- sessions ---------------------------------------------------------------------

    def session_wrap(self, account: Account, password: str):
        """At login (the password already checked): a function that wraps the opened key
        under the new session's token, or None for an account that cannot decide."""
        if not account.can_decide:
            return None
        key = self.unlock(account.name, password)
        return lambda token: wrap_for_session(key, signer_name(account.name), token)

    def session_signer(self, token: str | None) -> Signer:
        """The signer of the session this token opens: only the token (the person's cookie)
        can unwrap it. PrincipalError when the session has no key."""
        if not token:
            raise PrincipalError("no session: log in to sign a decision")
        found = self.accounts.session_wrapped_key(token)
        if found is None:
            raise PrincipalError("no session: log in to sign a decision")
        name, wrapped = found
        if not wrapped:
            raise PrincipalError(f"{name}'s session holds no signing key (it began before keys were sealed): log out and in again")
        try:
            key = unwrap_for_session(wrapped, signer_name(name), token)
        except WrongSecret as exc:
            raise PrincipalError(str(exc)) from None
        return Signer.of(signer_name(name), key)

    # -- keys from before sealing -------------------------------------------------------

    def _legacy_files(self) -> list[tuple[str, Path, Path]]:
        """(name, private file, public file) for every principal key file in keys/."""
        if self.legacy_dir is None:
            return []
        names = {p.stem.removeprefix("principal-") for d in ("private", "public") for p in (self.legacy_dir / d).glob("principal-*.*")}
        return [
            (n, self.legacy_dir / "private" / f"principal-{n}.pem", self.legacy_dir / "public" / f"principal-{n}.pub") for n in sorted(names)
        ]

    def migrate_unsealed_keys(self) -> list[str]:
        """Once per data directory: keep each unsealed principal key's public half as a retired
        key, and delete the key files. Later files are ignored, never adopted. Returns the
        names whose keys were retired now."""
        for attempt in range(5):
            try:
                done = self._retire_unsealed_keys()
                break
            except (IntegrityError, OperationalError):
                # Another desk process, starting at the same moment, is doing it: look again.
                if attempt == 4:
                    raise
                time.sleep(0.2)
        if done is None:
            return []
        for name, private, public in self._legacy_files():
            _scrub(private)
            public.unlink(missing_ok=True)
        if done:
            log.warning("retired the unsealed keys of %s: they verify what they signed and sign nothing new", ", ".join(done))
        return done

    def _retire_unsealed_keys(self) -> list[str] | None:
        """The database half of the migration, in one transaction that first claims it."""
        with self.accounts.engine.begin() as conn:
            if conn.execute(select(desk_meta.c.value).where(desk_meta.c.key == "unsealed_keys_migrated")).first():
                return None
            now = self.accounts.clock()
            conn.execute(insert(desk_meta).values(key="unsealed_keys_migrated", value=now.isoformat()))
            done = []
            for name, private, public in self._legacy_files():
                try:
                    key = public_from_text(public.read_text())
                except (OSError, ValueError):
                    key = None
                if key is not None and not conn.execute(
                    select(signing_keys.c.key_id).where(signing_keys.c.name == name, signing_keys.c.key_id == fingerprint(key))
                ).first():
                    conn.execute(insert(signing_keys).values(
                        name=name, key_id=fingerprint(key), public_key=public_to_text(key), sealed=None, state="retired",
                        origin="unsealed", certificate=None, created_at=now, retired_at=now,
                    ))
                    done.append(name)
        return done

    def stray_key_files(self) -> list[str]:
        """Principal key files in keys/ after the migration: never used, worth a look."""
        return [name for name, private, public in self._legacy_files() if private.exists() or public.exists()]


def _scrub(path: Path) -> None:
    """Overwrite a plain key file before deleting it (a journaling file system may keep
    copies; this is a courtesy, not a guarantee)."""
    try:
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
        path.unlink()
    except FileNotFoundError:
        pass


def _utc(dt):
    from deskgate.storage import utc

    return utc(dt)


def scripted_principal(data_dir, name: str, *, kdf: KdfParams | None = None) -> Signer:
    """A principal account for a labelled simulation (the replay's simulated principal, the
    tour's scripted alice and bob): made here with a random password that lives only in
    this process, so even a simulation signs the way a person does, with a sealed key."""
    import secrets

    accounts = Accounts.open(data_dir.ensure())
    principals = Principals(accounts, legacy_dir=data_dir.keys, kdf=kdf)
    from deskgate.people.pins import enroll

    password = secrets.token_urlsafe(24)
    if accounts.get(normalise_name(name)) is None:
        accounts.add(name, "principal", password)
        public = principals.make_key(name, password)
    else:
        public = principals.reset(name, password)  # a resumed run: the last run's password died with it
    enroll(data_dir, normalise_name(name), public)  # as its operator would: a simulation is run by one
    return principals.signer(name, password)


def decision_problem(keys, kind: str, payload: bytes, headers: dict | None, principal: str, rp_id: str) -> str | None:
    """Why a principal's decision (a clear, a reset, an approval) must not count, or None:
    it must be signed with that enabled principal's current sealed key, and carry their
    passkey's assertion over exactly these bytes when they have one. `keys` is the desk's
    KeyStore (KeyStore.for_desk)."""
    from deskgate.audit.keys import principal_signer
    from deskgate.audit.signing import SignatureStatus, verify_headers

    try:
        signer = principal_signer(principal)
    except ValueError:
        return f"{principal!r} is not a principal's name"
    status = verify_headers(keys.deciding, kind, payload, headers, expect=signer)
    if status is not SignatureStatus.VALID:
        return f"its signature is {status.value}; it must be signed with {principal}'s own current key"
    if keys.principals is not None and hasattr(keys.principals, "passkey_problem"):
        return keys.principals.passkey_problem(principal, kind, payload, headers, rp_id)
    return None
