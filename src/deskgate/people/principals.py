"""Principals' signing keys: made sealed, opened only with the principal's own secret.

This is the one place a person's key is unsealed. Everything that *verifies* a
person's decision asks `decision_key` (an enabled principal or admin account's
current sealed key, nothing else) or `public_keys` (every key the person ever
had, to verify what they signed before). A key file planted in `keys/`, or a name
with no account, signs nothing the desk will count.

An unsealed key from before keys were sealed (`keys/private/principal-NAME.pem`)
is never adopted for signing: whoever could read the data directory may hold a
copy. At the principal's next login (or `deskgate keys seal NAME`) they get a new
sealed key; the old public key is kept as retired so that what it signed still
verifies, and the plain file is deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select, update

from deskgate.audit.keys import PRINCIPAL_PREFIX, fingerprint, public_from_text, public_to_text
from deskgate.audit.signing import Signer
from deskgate.people.accounts import Account, AccountError, Accounts, normalise_name, passkeys, signing_keys, users
from deskgate.people.passkeys import PASSKEY_HEADER, PasskeyError, StoredPasskey, decision_digest, decode_assertion, verify_assertion
from deskgate.people.sealing import KdfParams, SealedKey, WrongSecret, seal, unseal, unwrap_for_session, wrap_for_session

log = logging.getLogger("deskgate.people")


class PrincipalError(RuntimeError):
    """Someone may not sign as this principal; the message says why, for a person."""


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
        if self._current(clean) is None:
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
        return public_from_text(row.public_key)

    def public_keys(self, name: str) -> list[Ed25519PublicKey]:
        """Every key `name` ever signed with (current first): for verifying the past."""
        try:
            clean = normalise_name(name)
        except AccountError:
            return []
        rows = self.keys(clean)
        return [public_from_text(r.public_key) for r in sorted(rows, key=lambda r: r.state != "current")]

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
        return SealedKey.model_validate_json(row[0]) if row and row[0] else None

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
            raise PrincipalError(f"wrong password for {account.name}")

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
        """A new sealed key; the old one is retired (it still verifies what it signed)."""
        account = self._deciding_account(name)
        self.unlock(account.name, password)  # proves the password opens the current key
        return self._store_new(account.name, password).public_key()

    def _store_new(self, name: str, password: str, *, retire_legacy: Ed25519PublicKey | None = None) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        sealed = seal(key, signer_name(name), password, self.kdf)
        now = self.accounts.clock()
        with self.accounts.engine.begin() as conn:
            conn.execute(
                update(signing_keys)
                .where(signing_keys.c.name == name, signing_keys.c.state == "current")
                .values(state="retired", sealed=None, retired_at=now)
            )
            if retire_legacy is not None:
                key_id = fingerprint(retire_legacy)
                known = conn.execute(select(signing_keys.c.key_id).where(signing_keys.c.name == name, signing_keys.c.key_id == key_id)).first()
                if known is None:
                    conn.execute(insert(signing_keys).values(
                        name=name, key_id=key_id, public_key=public_to_text(retire_legacy), sealed=None, state="retired",
                        origin="unsealed", created_at=now, retired_at=now,
                    ))
            conn.execute(insert(signing_keys).values(
                name=name, key_id=fingerprint(key.public_key()), public_key=sealed.public_key, sealed=sealed.model_dump_json(),
                state="current", origin="sealed", created_at=now, retired_at=None,
            ))
        return key

    def unlock(self, name: str, password: str) -> Ed25519PrivateKey:
        """The principal's private key, opened with their password (opening it is the
        password check). Makes their sealed key first if they have none (an account made
        before keys, or one whose key was still an unsealed file: that file is retired
        and deleted, never adopted)."""
        account = self._deciding_account(name)
        sealed = self._current(account.name)
        if sealed is None:
            self._check_password(account, password)
            legacy = self._legacy_public(account.name)
            key = self._store_new(account.name, password, retire_legacy=legacy)
            self._delete_legacy_private(account.name)
            log.warning(
                "made a sealed signing key for %s%s", account.name,
                f" (their unsealed key {fingerprint(legacy)} is retired: it verifies what it signed, and signs nothing new)" if legacy else "",
            )
            return key
        try:
            return unseal(sealed, password)
        except WrongSecret:
            raise PrincipalError(f"wrong password for {account.name}") from None

    def signer(self, name: str, password: str, *, failures_allowed: int = 5, max_wait_s: float = 300.0) -> Signer:
        """A Signer for `name`, after every check (the CLI's way in). Wrong passwords count
        against the same per-account limit as the Command Center's logins."""
        account = self._deciding_account(name)
        keys = [f"user:{account.name}"]
        wait = self.accounts.login_wait(keys, failures_allowed, max_wait_s)
        if wait > 0:
            raise PrincipalError(f"too many wrong passwords for {account.name}; try again in {wait:.0f} s")
        try:
            key = self.unlock(account.name, password)
        except PrincipalError as exc:
            if str(exc).startswith("wrong password"):
                self.accounts.record_login_failure(keys)
            raise
        self.accounts.clear_login_failures(keys)
        return Signer.of(signer_name(account.name), key)

    def reset(self, name: str, new_password: str) -> Ed25519PublicKey:
        """A forgotten password: a new password and a new sealed key, the old key retired
        (what it signed still verifies; it signs nothing new). An operator's action, as
        adding an account is: whoever may write the accounts database may do it."""
        account = self._deciding_account(name)
        self.accounts.set_password(account.name, new_password)
        self.accounts.end_sessions(account.name)
        return self._store_new(account.name, new_password).public_key()

    def reseal(self, name: str, old_password: str, new_password: str) -> None:
        """A password change: the account's hash and the sealed key move together."""
        key = self.unlock(name, old_password)
        clean = normalise_name(name)
        sealed = seal(key, signer_name(clean), new_password, self.kdf)
        self.accounts.set_password(clean, new_password)
        with self.accounts.engine.begin() as conn:
            conn.execute(
                update(signing_keys)
                .where(signing_keys.c.name == clean, signing_keys.c.state == "current")
                .values(sealed=sealed.model_dump_json())
            )

    # -- passkeys ----------------------------------------------------------------------

    def passkeys(self, name: str) -> list[StoredPasskey]:
        """The passkeys `name` registered; once there is one, their decisions need its assertion."""
        try:
            clean = normalise_name(name)
        except AccountError:
            return []
        with self.accounts.engine.connect() as conn:
            rows = conn.execute(select(passkeys.c.record).where(passkeys.c.name == clean).order_by(passkeys.c.created_at)).all()
        return [StoredPasskey.model_validate_json(r[0]) for r in rows]

    def add_passkey(self, passkey: StoredPasskey) -> None:
        """Keep a verified registration. A credential registered to anyone already is refused:
        with attestation "none" nothing else tells two people's authenticators apart."""
        account = self._deciding_account(passkey.principal)
        with self.accounts.engine.begin() as conn:
            if conn.execute(select(passkeys.c.name).where(passkeys.c.credential_id == passkey.credential_id)).first():
                raise PrincipalError("this passkey is already registered")
            conn.execute(insert(passkeys).values(
                credential_id=passkey.credential_id, name=account.name, record=passkey.model_dump_json(), created_at=passkey.created_at,
            ))

    def remove_passkey(self, name: str, credential_id: str) -> bool:
        from sqlalchemy import delete

        with self.accounts.engine.begin() as conn:
            return conn.execute(
                delete(passkeys).where(passkeys.c.name == normalise_name(name), passkeys.c.credential_id == credential_id)
            ).rowcount > 0

    def passkey_problem(self, name: str, kind: str, payload: bytes, headers: dict | None, rp_id: str) -> str | None:
        """Why a decision by `name` lacks the passkey assertion it needs (None when `name` has no
        passkey, or the assertion covers exactly these signed bytes)."""
        registered = self.passkeys(name)
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

    def _legacy_paths(self, name: str) -> tuple[Path, Path] | None:
        if self.legacy_dir is None:
            return None
        stem = f"principal-{name}"
        return self.legacy_dir / "private" / f"{stem}.pem", self.legacy_dir / "public" / f"{stem}.pub"

    def _legacy_public(self, name: str) -> Ed25519PublicKey | None:
        paths = self._legacy_paths(name)
        if paths is None:
            return None
        try:
            return public_from_text(paths[1].read_text())
        except (OSError, ValueError):
            return None

    def _delete_legacy_private(self, name: str) -> None:
        paths = self._legacy_paths(name)
        if paths is not None:
            paths[0].unlink(missing_ok=True)

    def legacy_names(self) -> list[str]:
        """Principals with an unsealed key file still on disk."""
        if self.legacy_dir is None or not (self.legacy_dir / "private").is_dir():
            return []
        return sorted(p.stem.removeprefix("principal-") for p in (self.legacy_dir / "private").glob("principal-*.pem"))


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
    password = secrets.token_urlsafe(24)
    if accounts.get(normalise_name(name)) is None:
        accounts.add(name, "principal", password)
    else:
        principals.reset(name, password)  # a resumed run: the last run's password died with it
    return principals.signer(name, password)
