"""Checks that a decision comes from the person it names, shared by approvals, the
breaker keeper and the Governor watch."""

from __future__ import annotations

import logging
import unicodedata

from deskgate.audit.keys import PRINCIPAL_PREFIX, KeyStore
from deskgate.audit.signing import Kind
from deskgate.storage import UntilChanged

log = logging.getLogger("deskgate.factory")


class Verifier:
    """Who may decide now, as `KeyStore.deciding` and the pinned passkeys say, with each
    answer kept until the accounts database or this service's pins change (SQLite's
    data_version; storage.UntilChanged): as fresh as reading them for every decision,
    without the dozen reads. Disabling an account, rotating a key or adding a passkey
    is a commit, so it is seen by the next decision."""

    def __init__(self, keys: KeyStore, rp_id: str):
        self.keys = keys
        self.rp_id = rp_id
        self._memo = None
        if keys.principals is not None and keys.pins is not None:
            try:
                self._memo = UntilChanged(keys.principals.accounts.engine, keys.pins.engine)
            except ValueError:
                self._memo = None  # not SQLite files: every answer is read afresh, as before

    # The lookup verify_headers makes (audit/signing.py); roles' keys are the KeyStore's own.
    def public_keys(self, signer: str, *, fresh: bool = True):
        if self._memo is None or not signer.startswith(PRINCIPAL_PREFIX):
            return self.keys.deciding.public_keys(signer)
        return self._memo.get(("key", signer), lambda: self.keys.deciding.public_keys(signer))

    def why_not(self, signer: str) -> str | None:
        return self.keys.deciding.why_not(signer)

    def passkey_problem(self, principal: str, kind: Kind, data: bytes, headers: dict | None) -> str | None:
        """A principal with a passkey decides only with its assertion over these exact bytes."""
        principals = self.keys.principals
        if principals is None:
            return None
        try:
            if self._memo is None:
                return principals.passkey_problem(principal, kind, data, headers, self.rp_id, pins=self.keys.pins)
            try:
                registered = self._memo.get(("passkeys", principal), lambda: principals.verified_passkeys(principal, self.keys.pins, self.rp_id))
            except ValueError:  # AccountError (people/accounts.py, not imported here: it brings argon2): not a name
                return f"{principal!r} is not an account name"
            return principals.assertion_problem(principal, registered, kind, data, headers, self.rp_id)
        except Exception as exc:  # noqa: BLE001 - a malformed record must refuse the decision, never stop the factory
            log.warning("SECURITY: the passkeys of %s cannot be checked (%r); the decision is refused", principal, exc)
            return f"{principal}'s passkeys cannot be checked; the decision is refused"

    def close(self) -> None:
        if self._memo is not None:
            self._memo.close()


def principal_key(name: str) -> str:
    """Four eyes means two people: "Bob", " bob" and "b\u200bob" are one."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Mn", "Me"))
    return " ".join(text.split()).casefold()


def follow_key_rotations(keys: KeyStore, rp_id: str) -> None:
    """Move each pin along the certificates as soon as a rotation appears, so a key left
    behind cannot be put back as current later, and take in newly registered passkeys
    at once, so deleting one soon after cannot lift it (people/pins.py)."""
    pins, principals = keys.pins, keys.principals
    if pins is None or principals is None:
        return
    try:
        for account in principals.accounts.list():
            if pins.pinned(account.name) is not None:
                pins.advance(account.name, principals.key_chain(account.name))
                principals.verified_passkeys(account.name, pins, rp_id)
    except Exception as exc:  # noqa: BLE001 - the accounts database is another process's file: never stop the factory for it
        log.warning("could not follow key rotations: %r", exc)
