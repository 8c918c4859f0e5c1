"""Checks that a decision comes from the person it names, shared by approvals, the
breaker keeper and the Governor watch."""

from __future__ import annotations

import logging
import unicodedata

from deskgate.audit.keys import KeyStore
from deskgate.audit.signing import Kind

log = logging.getLogger("deskgate.factory")


def passkey_problem(keys: KeyStore, rp_id: str, principal: str, kind: Kind, data: bytes, headers: dict | None) -> str | None:
    """A principal with a passkey decides only with its assertion over these exact bytes."""
    if keys.principals is None:
        return None
    try:
        return keys.principals.passkey_problem(principal, kind, data, headers, rp_id, pins=keys.pins)
    except Exception as exc:  # noqa: BLE001 - a malformed record must refuse the decision, never stop the factory
        log.warning("SECURITY: the passkeys of %s cannot be checked (%r); the decision is refused", principal, exc)
        return f"{principal}'s passkeys cannot be checked; the decision is refused"


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
