"""Registering a principal's passkey in the Command Center.

Once a principal has a passkey, the factory counts their decisions only with its
assertion, so adding one must be as hard as deciding: the person's password again,
in their own session, and, when they already have a passkey, that passkey's
confirmation too (otherwise a stolen session and password could add the thief's own
authenticator and decide without the real one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from deskgate.audit.signing import Signer
from deskgate.config import Mission
from deskgate.domain.base import utcnow
from deskgate.people.accounts import Accounts, Session
from deskgate.people.passkeys import (
    MAX_LABEL,
    PasskeyError,
    assertion_from_browser,
    registration_options,
    request_options,
    verify_assertion,
    verify_registration,
)
from deskgate.people.pins import passkey_endorsement_message
from deskgate.people.principals import PrincipalError, Principals
from deskgate.web.desk import ActionError
from deskgate.web.proofs import ProofError, Proofs, session_owner


class PasskeyBeginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=1024, description="Your password again.")
    label: str = Field("", max_length=MAX_LABEL, description="A name for this passkey, e.g. 'work laptop'.")


class PasskeyFinishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    registration_id: str = Field(min_length=1, max_length=64)
    credential: dict = Field(description="navigator.credentials.create()'s answer (static/passkey.js)")
    confirmation: dict | None = Field(None, description="With a passkey already registered: its navigator.credentials.get() answer")


def user_handle(name: str) -> bytes:
    """The same WebAuthn user id for a principal every time: an authenticator then keeps
    one passkey per person and desk, not a new one per registration."""
    return hashlib.sha256(f"deskgate principal {name}".encode()).digest()


@dataclass
class PasskeyRegistration:
    mission: Mission
    accounts: Accounts
    principals: Principals
    proofs: Proofs

    def _principal(self, session: Session) -> str:
        if not session.account.can_decide:
            raise ActionError(403, f"{session.account.name} is a {session.account.role.value}: only a principal registers a passkey")
        return session.account.name

    async def begin(self, session: Session, body: PasskeyBeginRequest) -> dict:
        name = self._principal(session)
        w = self.mission.web
        keys = [f"passkey:{name}"]
        wait = self.accounts.login_wait(keys, w.login_failures_allowed, w.lockout_max_seconds)
        if wait > 0:
            raise ActionError(429, f"too many wrong passwords; try again in {wait:.0f} s")
        self.accounts.record_login_failure(keys)  # charged first, forgiven if right
        if await run_in_threadpool(self.accounts.verify_password, name, body.password) is None:
            raise ActionError(403, "wrong password: registering a passkey needs your password again")
        self.accounts.clear_login_failures(keys)
        existing = self.principals.passkeys(name)
        rp_id = w.passkey_rp_id
        try:
            options, challenge = registration_options(
                rp_id=rp_id, rp_name=self.mission.desk_name, principal=name, user_id=user_handle(name), exclude=existing
            )
            reg_id, reg = self.proofs.keep_registration(session_owner(session.csrf), challenge, body.label)
            confirm = request_options(rp_id=rp_id, digests=[reg.digest], credentials=existing) if existing else None
        except PasskeyError as exc:
            raise ActionError(400, str(exc)) from None
        return {"registration_id": reg_id, "options": options, "confirm_options": confirm}

    async def finish(self, session: Session, signer: Signer, body: PasskeyFinishRequest) -> dict:
        """Verify and keep the new passkey, endorsed with the principal's own key (opened by
        their session) so the factory can tell it was theirs, not only in this database."""
        name = self._principal(session)
        if signer.principal != name:
            raise ActionError(403, f"{name}'s session cannot sign as {signer.name}")
        try:
            reg = self.proofs.take_registration(session_owner(session.csrf), body.registration_id)
        except ProofError as exc:
            raise ActionError(409, str(exc)) from None
        existing = self.principals.passkeys(name)
        rp_id = self.mission.web.passkey_rp_id
        try:
            confirmation = None
            if existing:
                if body.confirmation is None:
                    raise PasskeyError("you already have a passkey: it must confirm the new one")
                confirmation = assertion_from_browser(body.confirmation, [reg.digest])
                verify_assertion(confirmation, existing, digest=reg.digest, rp_id=rp_id)
            stored = verify_registration(
                body.credential, expected_challenge=reg.challenge, rp_id=rp_id, principal=name, label=reg.label, now=utcnow()
            )
            endorsement = signer.sign_bytes(passkey_endorsement_message(name, stored.credential_id, stored.public_key))
            self.principals.add_passkey(
                stored, endorsement=endorsement, confirmation=confirmation.model_dump_json() if confirmation else None,
                confirmation_digest=reg.digest if confirmation else None,
            )
        except (PasskeyError, PrincipalError) as exc:
            raise ActionError(400, f"the passkey was not registered: {exc}") from None
        self.accounts.record(name, "register_passkey", stored.credential_id[:64], label=stored.label)
        return {"credential_id": stored.credential_id, "label": stored.label, "passkeys": len(existing) + 1}
