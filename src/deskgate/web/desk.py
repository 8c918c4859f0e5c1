"""What a person can see and do in the Command Center, shared by the pages and the JSON API.

Every action checks what it can before publishing, so a person gets a clear answer
at once (already decided, expired, needs a typed confirmation, a batch with an
explicit item). The factory stays the authority: it checks everything again at
time of use and answers on factory.status.approval.<id>, and that answer is what
the page shows.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from deskgate.approvals.client import AmbiguousReview, CommandCenter, CommandCenterError, QueueItem
from deskgate.audit.keys import AGENT_SIGNERS, PublicKeys
from deskgate.audit.signing import Kind, SignatureStatus, Signer, verify_signed
from deskgate.bus.reader import ReadError
from deskgate.config import Mission
from deskgate.domain.approval import ApprovalOutcome, PositionContext
from deskgate.domain.base import utcnow
from deskgate.domain.breaker import BreakerState
from deskgate.domain.directive import DecisionMemo
from deskgate.domain.evaluation import CheckResult
from deskgate.domain.governor import GovernorClear, GovernorHold, GovernorState
from deskgate.domain.news import QuarantinedItem, QuarantineRelease
from deskgate.domain.review import ReviewAck, ReviewRequest
from deskgate.domain.venue import VenueAck, VenueStatus
from deskgate.people.accounts import Accounts, Session
from deskgate.people.passkeys import (
    PASSKEY_HEADER,
    PasskeyError,
    assertion_from_browser,
    encode_assertion,
    request_options,
    verify_assertion,
)
from deskgate.people.principals import Principals
from deskgate.web.proofs import ProofError, Proofs, session_owner

MAX_BATCH = 200

log = logging.getLogger("deskgate.web")


class ActionError(Exception):
    """An action refused before anything was published: HTTP status and a clear reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class QueueEntry(BaseModel):
    """One staged directive as a principal sees it."""

    model_config = ConfigDict(frozen=True)

    directive_id: str
    state: str
    pending: bool
    asset: str
    venue: str
    side: str
    notional_usd: float
    leverage: float
    confidence: float
    # Who drafted it, from the verified signature the factory staged it with (never the
    # directive's own `agent` field): the agent's name.
    agent: str
    # Why that agent could not sign this now (revoked, or its key rotated out), or None:
    # what it staged before can still be decided, and a principal should know.
    agent_refused: str | None = None
    explicit: bool
    four_eyes: bool
    memo: DecisionMemo
    checks: list[CheckResult]
    context: PositionContext
    price_at_staging: float
    price_now: float | None
    price_move_pct: float | None
    price_band_pct: float
    staged_at: datetime
    expires_at: datetime
    seconds_left: float
    approved_by: list[str]
    outcomes: list[ApprovalOutcome]


class DecisionResult(BaseModel):
    directive_id: str
    state: str
    outcomes: list[ApprovalOutcome]


class BatchResult(BaseModel):
    batch_id: str
    results: list[DecisionResult]


class ReviewEntry(BaseModel):
    request: ReviewRequest
    acknowledged: bool
    acks: list[ReviewAck]
    agent: str | None = None  # the agent identity whose key signed it; request.agent is only what it says
    current_key: bool = True  # False: that key has since been revoked or rotated out


@dataclass
class Desk:
    mission: Mission
    cc: CommandCenter
    accounts: Accounts
    principals: Principals | None = None
    decision_wait_s: float = 5.0
    proofs: Proofs = field(default_factory=Proofs)

    def __post_init__(self) -> None:
        self.cc.rp_id = self.mission.web.passkey_rp_id

    # -- reading ------------------------------------------------------------------------

    async def entries(self, *, include_decided: int = 20) -> tuple[list[QueueEntry], list[QueueEntry]]:
        """Pending entries (oldest first) and the most recently decided ones (newest first)."""
        items = await self.cc.queue()
        pending = sorted((i for i in items.values() if i.pending), key=lambda i: i.staged.staged_at)
        decided = sorted(
            (i for i in items.values() if not i.pending),
            key=lambda i: i.outcomes[-1].at if i.outcomes else i.staged.staged_at,
            reverse=True,
        )[:include_decided]
        prices = await self._prices({i.staged.asset for i in pending})
        now = utcnow()
        refused = self._authors_refused(pending)
        return [self._entry(i, prices.get(i.staged.asset), now, refused) for i in pending], [self._entry(i, None, now) for i in decided]

    async def entry(self, directive_id: str) -> QueueEntry:
        try:
            item = await self.cc.item(directive_id)
        except CommandCenterError as exc:
            raise ActionError(404, str(exc)) from None
        prices = await self._prices({item.staged.asset})
        return self._entry(item, prices.get(item.staged.asset), utcnow(), self._authors_refused([item] if item.pending else []))

    def _authors_refused(self, items: list[QueueItem]) -> dict[str, str | None]:
        """For each of these items (by directive id), why its author could not sign it now:
        revoked, or the key it used since rotated out (a leaked key is rotated); None when
        it could. What was staged before stays decidable; the principal should know."""
        deciding = self.cc.keys.deciding
        keys: dict[str, PublicKeys] = {}  # each signer's deciding keys, read once for the page
        out: dict[str, str | None] = {}
        for i in items:
            signed = i.staged.signed_directive
            if signed is None:
                continue
            try:
                if signed.signer not in keys:
                    keys[signed.signer] = PublicKeys({signed.signer: deciding.public_keys(signed.signer)})
                if verify_signed(keys[signed.signer], Kind.DIRECTIVE, signed, expect=AGENT_SIGNERS) is SignatureStatus.VALID:
                    continue
                out[i.directive_id] = deciding.why_not(signed.signer) or f"{signed.signer} signed it with a key since rotated out"
            except Exception as exc:  # noqa: BLE001 - a bad accounts record must not take the queue page down
                out[i.directive_id] = f"its author's keys cannot be checked now ({exc!r})"
        return out

    async def _prices(self, assets: set[str]) -> dict[str, float]:
        bars = await asyncio.gather(*(self.cc.price(a) for a in assets))
        return {a: b.close for a, b in zip(assets, bars) if b is not None}

    def _entry(self, item: QueueItem, price_now: float | None, now: datetime, refused: dict[str, str | None] | None = None) -> QueueEntry:
        s = item.staged
        d = s.directive
        approved_by: list[str] = []
        for o in item.outcomes:
            if o.outcome in ("awaiting_second_approval", "held", "ordered", "invalidated") and o.principals:
                approved_by = list(o.principals)
        return QueueEntry(
            directive_id=d.directive_id,
            state=item.state,
            pending=item.pending,
            asset=s.asset,
            venue=s.venue,
            side=d.side,
            notional_usd=d.notional_usd,
            leverage=d.leverage,
            confidence=d.confidence,
            agent=s.drafted_by,
            agent_refused=(refused or {}).get(d.directive_id),
            explicit=s.explicit,
            four_eyes=s.four_eyes,
            memo=d.memo,
            checks=s.evaluation.checks,
            context=s.context,
            price_at_staging=s.price_at_staging,
            price_now=price_now,
            price_move_pct=(price_now - s.price_at_staging) / s.price_at_staging * 100.0 if price_now else None,
            price_band_pct=self.mission.approvals.price_band_pct,
            staged_at=s.staged_at,
            expires_at=s.expires_at,
            seconds_left=max(0.0, (s.expires_at - now).total_seconds()),
            approved_by=approved_by,
            outcomes=item.outcomes,
        )

    async def reviews(self) -> list[ReviewEntry]:
        try:
            items = await self.cc.reviews()
        except (ReadError, CommandCenterError) as exc:  # e.g. a bus not yet reloaded with the REVIEWS stream's rights
            raise ActionError(502, str(exc)) from None
        return [
            ReviewEntry(request=r.request, acknowledged=r.acknowledged, acks=r.acks, agent=r.agent, current_key=r.current_key) for r in items
        ]

    async def breaker(self) -> BreakerState:
        return await self.cc.breaker()

    # -- deciding -----------------------------------------------------------------------
    #
    # Each decision is checked first (a clear answer at once), then built exactly as it
    # will be signed, then signed with the principal's own key (opened by their session)
    # and sent. A principal with a passkey first `prepare`s: the built decisions are kept
    # and their digests become the passkey's challenge; the action then sends exactly
    # those, with the assertion beside the signature.

    def _require_principal(self, session: Session) -> None:
        if not session.account.can_decide:
            raise ActionError(403, f"{session.account.name} is a {session.account.role.value}: viewers see everything and change nothing")

    async def _pending_item(self, directive_id: str) -> QueueItem:
        try:
            item = await self.cc.item(directive_id)
        except CommandCenterError as exc:
            raise ActionError(404, str(exc)) from None
        if not item.pending:
            raise ActionError(409, f"directive {directive_id} is already {item.state}; a decision cannot be made again")
        if utcnow() >= item.staged.expires_at:
            raise ActionError(409, f"directive {directive_id} expired at {item.staged.expires_at:%Y-%m-%d %H:%M:%S} UTC; it cannot be approved")
        return item

    def _check_signer(self, session: Session, signer: Signer) -> None:
        if signer.principal != session.account.name:
            raise ActionError(403, f"{session.account.name}'s session cannot sign as {signer.name}")

    async def _breaker_allows_approval(self, what: str) -> None:
        if tripped := await self.cc.breaker_refusal(what):
            raise ActionError(409, tripped)

    def has_passkey(self, name: str) -> bool:
        return bool(self.principals and self.principals.passkeys(name))

    def _headers(self, session: Session, action: str, target: str, proof: PasskeyProof | None) -> tuple[list | None, dict | None]:
        """(the kept decisions, the passkey header) for a decision made with a passkey, or
        (None, None) for a principal without one. A principal with a passkey cannot skip it."""
        name = session.account.name
        registered = self.principals.passkeys(name) if self.principals else []
        if proof is None:
            if registered:
                raise ActionError(
                    428, f"{name} decides with a passkey: prepare the decision first (POST /api/decisions/prepare), then send it with the passkey's answer"
                )
            return None, None
        if not registered:
            raise ActionError(400, f"{name} has no passkey registered; decide without one")
        try:
            prepared = self.proofs.take(session_owner(session.csrf), proof.prepared_id, action, target)
            assertion = assertion_from_browser(proof.credential, list(prepared.digests))
            verify_assertion(assertion, registered, digest=prepared.digests[0], rp_id=self.mission.web.passkey_rp_id)
        except (ProofError, PasskeyError) as exc:
            raise ActionError(403, f"the passkey did not confirm this decision: {exc}") from None
        return list(prepared.payloads), {PASSKEY_HEADER: encode_assertion(assertion)}

    async def _approve_checks(self, session: Session, directive_id: str, confirm: str | None) -> None:
        item = await self._pending_item(directive_id)
        name = session.account.name
        if item.staged.explicit and (confirm or "").strip() != directive_id:
            raise ActionError(
                400,
                f"directive {directive_id} is explicit ({item.staged.directive.notional_usd:,.0f} USD): "
                f"type its id {directive_id!r} to confirm the approval",
            )
        if name in self._approvers(item):
            raise ActionError(409, f"{name} already approved {directive_id}; the second approval must come from another principal")
        await self._breaker_allows_approval(directive_id)

    async def _build_decision(self, session: Session, directive_id: str, decision: str, reason: str = "", batch_id: str | None = None):
        try:
            return await self.cc.prepare_decision(directive_id, decision, session.account.name, reason, batch_id=batch_id)
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None

    async def _send(self, signer: Signer, response, headers: dict | None) -> list[ApprovalOutcome]:
        try:
            return await self.cc.send(response, signer, headers=headers, wait=self.decision_wait_s)
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None

    async def approve(
        self, session: Session, signer: Signer, directive_id: str, confirm: str | None = None, proof: PasskeyProof | None = None
    ) -> DecisionResult:
        self._require_principal(session)
        self._check_signer(session, signer)
        await self._approve_checks(session, directive_id, confirm)
        kept, headers = self._headers(session, "approve", directive_id, proof)
        response = kept[0] if kept else await self._build_decision(session, directive_id, "approve")
        outcomes = await self._send(signer, response, headers)
        self.accounts.record(session.account.name, "approve", directive_id, outcomes=[o.outcome for o in outcomes], passkey=bool(headers))
        return self._result(directive_id, outcomes)

    async def _reject_checks(self, directive_id: str, reason: str) -> str:
        if not reason.strip():
            raise ActionError(400, "a rejection needs a reason")
        if len(reason) > 2000:
            raise ActionError(400, "the reason is longer than 2000 characters")
        await self._pending_item(directive_id)
        return reason.strip()

    async def reject(
        self, session: Session, signer: Signer, directive_id: str, reason: str, proof: PasskeyProof | None = None
    ) -> DecisionResult:
        self._require_principal(session)
        self._check_signer(session, signer)
        reason = await self._reject_checks(directive_id, reason)
        kept, headers = self._headers(session, "reject", directive_id, proof)
        response = kept[0] if kept else await self._build_decision(session, directive_id, "reject", reason)
        outcomes = await self._send(signer, response, headers)
        self.accounts.record(session.account.name, "reject", directive_id, reason=response.reason, passkey=bool(headers))
        return self._result(directive_id, outcomes)

    async def _batch_checks(self, session: Session, directive_ids: list[str], confirm_count: int | None) -> list[str]:
        ids = list(dict.fromkeys(directive_ids))
        if not ids:
            raise ActionError(400, "select at least one directive to approve")
        if len(ids) > MAX_BATCH:
            raise ActionError(400, f"a batch holds at most {MAX_BATCH} directives")
        if confirm_count != len(ids):
            raise ActionError(400, f"confirm the batch by giving its size: {len(ids)} directives selected, confirmed {confirm_count}")
        items = await self.cc.queue()
        name = session.account.name
        problems = []
        for did in ids:
            item = items.get(did)
            if item is None:
                problems.append(f"{did}: no such staged directive")
            elif not item.pending:
                problems.append(f"{did}: already {item.state}")
            elif utcnow() >= item.staged.expires_at:
                problems.append(f"{did}: expired")
            elif item.staged.explicit:
                problems.append(f"{did}: explicit, approve it on its own with a typed confirmation")
            elif name in self._approvers(item):
                problems.append(f"{did}: already approved by {name}")
        if problems:
            raise ActionError(409, "nothing approved; the batch is all or nothing: " + "; ".join(problems))
        await self._breaker_allows_approval(", ".join(ids) if len(ids) <= 3 else f"each of the {len(ids)} directives")
        return ids

    async def _build_batch(self, session: Session, ids: list[str]) -> list:
        batch_id = f"batch-{uuid.uuid4().hex[:16]}"
        return [await self._build_decision(session, did, "approve", batch_id=batch_id) for did in ids]

    async def approve_batch(
        self, session: Session, signer: Signer, directive_ids: list[str], confirm_count: int | None, proof: PasskeyProof | None = None
    ) -> BatchResult:
        """All or nothing: every item is checked first; if any cannot be approved, none is sent."""
        self._require_principal(session)
        self._check_signer(session, signer)
        ids = await self._batch_checks(session, directive_ids, confirm_count)
        kept, headers = self._headers(session, "batch", ",".join(ids), proof)
        responses = kept or await self._build_batch(session, ids)
        batch_id = responses[0].batch_id
        self.accounts.record(session.account.name, "approve_batch", batch_id, directive_ids=ids, passkey=bool(headers))
        answers = await asyncio.gather(
            *(self.cc.send(r, signer, headers=headers, wait=self.decision_wait_s) for r in responses),
            return_exceptions=True,
        )
        # Each item's own answer, even "refused" or a failed send: never an error once
        # anything may have been sent.
        results = []
        for did, answer in zip(ids, answers):
            if isinstance(answer, BaseException):
                log.warning("batch %s: sending the approval of %s failed: %s", batch_id, did, answer)
                results.append(DecisionResult(directive_id=did, state=f"not sent ({type(answer).__name__}: {answer})", outcomes=[]))
            else:
                results.append(self._result(did, answer, raise_if_refused=False))
        return BatchResult(batch_id=batch_id, results=results)

    @staticmethod
    def _approvers(item: QueueItem) -> set[str]:
        names: set[str] = set()
        for o in item.outcomes:
            if o.outcome == "awaiting_second_approval":
                names.update(p.lower() for p in o.principals)
        return names

    def _result(self, directive_id: str, outcomes: list[ApprovalOutcome], raise_if_refused: bool = True) -> DecisionResult:
        refused = [o for o in outcomes if o.outcome == "refused"]
        if raise_if_refused and refused and len(refused) == len(outcomes):
            raise ActionError(409, f"the factory refused the decision: {refused[-1].reason}")
        state = outcomes[-1].outcome if outcomes else "sent"
        return DecisionResult(directive_id=directive_id, state=state, outcomes=outcomes)

    # -- a passkey's two steps ----------------------------------------------------------------

    async def prepare(self, session: Session, req: PrepareRequest) -> PrepareAnswer:
        """Build the decisions a passkey is about to confirm, after every check an action
        makes, and keep them for this session: the answer carries the passkey's options."""
        self._require_principal(session)
        name = session.account.name
        registered = self.principals.passkeys(name) if self.principals else []
        if not registered:
            raise ActionError(400, f"{name} has no passkey registered; decide without one")
        if req.action == "approve":
            did = _required(req.directive_id, "directive_id")
            await self._approve_checks(session, did, req.confirm)
            target, kind, payloads = did, Kind.APPROVAL, [await self._build_decision(session, did, "approve")]
        elif req.action == "reject":
            did = _required(req.directive_id, "directive_id")
            reason = await self._reject_checks(did, req.reason or "")
            target, kind, payloads = did, Kind.APPROVAL, [await self._build_decision(session, did, "reject", reason)]
        elif req.action == "batch":
            ids = await self._batch_checks(session, req.directive_ids or [], req.confirm_count)
            target, kind, payloads = ",".join(ids), Kind.APPROVAL, await self._build_batch(session, ids)
        elif req.action == "reset":
            reason = await self._reset_checks(session, req.password or "", req.reason or "")
            try:
                payloads = [await self.cc.prepare_reset(name, reason)]
            except CommandCenterError as exc:
                raise ActionError(409, str(exc)) from None
            target, kind = "breaker", Kind.BREAKER
        elif req.action == "release":
            news_id, reason = _required(req.news_id, "news_id"), _release_reason(req.reason or "")
            try:
                payloads = [await self.cc.prepare_release(name, news_id, reason)]
            except CommandCenterError as exc:
                raise ActionError(409, str(exc)) from None
            target, kind = news_id, Kind.RELEASE
        elif req.action == "venue_ack":
            venue, note = _required(req.venue, "venue"), _venue_note(req.reason or "")
            if req.review is None:
                raise ActionError(400, "review is required: the number of the open review")
            try:
                payloads = [await self.cc.prepare_venue_ack(venue, req.review, name, note)]
            except CommandCenterError as exc:
                raise ActionError(409, str(exc)) from None
            target, kind = f"{venue}:{req.review}", Kind.VENUE_ACK
        else:  # clear
            reason = _clear_reason(req.reason or "")
            try:
                payloads = [await self.cc.prepare_governor_clear(name, reason)]
            except CommandCenterError as exc:
                raise ActionError(409, str(exc)) from None
            target, kind = "governor", Kind.GOVERNOR_CLEAR
        prepared_id, digests = self.proofs.keep(session_owner(session.csrf), req.action, target, kind, payloads)
        options = request_options(rp_id=self.mission.web.passkey_rp_id, digests=digests, credentials=registered)
        return PrepareAnswer(prepared_id=prepared_id, options=options, decisions=len(payloads))

    # -- reviews and the breaker --------------------------------------------------------------

    async def acknowledge(self, session: Session, signer: Signer, review_id: str, note: str = "", agent: str | None = None) -> ReviewAck:
        """Signed with the principal's key; a review request can never lead to an order, so
        no passkey is asked for it."""
        self._require_principal(session)
        self._check_signer(session, signer)
        try:
            ack = await self.cc.acknowledge(review_id, signer, note.strip()[:2000], agent=agent)
        except AmbiguousReview as exc:
            raise ActionError(409, str(exc)) from None
        except CommandCenterError as exc:
            raise ActionError(404, str(exc)) from None
        self.accounts.record(session.account.name, "acknowledge_review", review_id, note=note.strip()[:2000])
        return ack

    async def _reset_checks(self, session: Session, password: str, reason: str) -> str:
        if not reason.strip():
            raise ActionError(400, "a breaker reset needs a reason")
        if len(reason) > 2000:
            raise ActionError(400, "the reason is longer than 2000 characters")
        # Its own count, per account: failed logins by anyone cannot block a reset, and
        # only someone holding this account's session can add to it.
        w = self.mission.web
        keys = [f"reset:{session.account.name}"]
        wait = self.accounts.login_wait(keys, w.login_failures_allowed, w.lockout_max_seconds)
        if wait > 0:
            raise ActionError(429, f"too many wrong passwords for a reset; try again in {wait:.0f} s")
        self.accounts.record_login_failure(keys)  # charged first, forgiven if right
        if await run_in_threadpool(self.accounts.verify_password, session.account.name, password) is None:
            raise ActionError(403, "wrong password: a breaker reset needs your password again")
        self.accounts.clear_login_failures(keys)
        return reason.strip()

    async def reset_breaker(
        self, session: Session, signer: Signer, password: str, reason: str, proof: PasskeyProof | None = None
    ) -> BreakerState:
        self._require_principal(session)
        self._check_signer(session, signer)
        if proof is None:
            reason = await self._reset_checks(session, password, reason)
        kept, headers = self._headers(session, "reset", "breaker", proof)  # with a passkey, the password was checked when prepared
        try:
            if kept:
                state = await self.cc.send_reset(kept[0], signer, headers=headers)
                reason = kept[0].reason
            else:
                state = await self.cc.reset_breaker(signer, reason)
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None
        self.accounts.record(session.account.name, "reset_breaker", str(state.trip_revision or ""), reason=reason, passkey=bool(headers))
        return state

    # -- quarantined news -------------------------------------------------------------------------

    async def quarantine(self) -> list[QuarantinedItem]:
        try:
            return await self.cc.quarantine()
        except CommandCenterError as exc:
            raise ActionError(502, str(exc)) from None

    async def releases(self) -> list[QuarantineRelease]:
        try:
            return await self.cc.releases()
        except CommandCenterError as exc:
            raise ActionError(502, str(exc)) from None

    async def release(self, session: Session, signer: Signer, news_id: str, reason: str, proof: PasskeyProof | None = None) -> QuarantineRelease:
        """A principal releases a quarantined item the screen got wrong: signed, recorded,
        and kept by the market-data service as labelled data for the next training run."""
        self._require_principal(session)
        self._check_signer(session, signer)
        reason = _release_reason(reason)
        kept, headers = self._headers(session, "release", news_id, proof)
        try:
            if kept:
                release = await self.cc.send_release(kept[0], signer, headers=headers)
            else:
                release = await self.cc.release(signer, news_id, reason)
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None
        self.accounts.record(session.account.name, "release_quarantined", news_id, reason=release.reason, passkey=bool(headers))
        return release

    # -- the Governor -----------------------------------------------------------------------------

    async def governor(self) -> GovernorState | None:
        try:
            return await self.cc.governor()
        except CommandCenterError as exc:
            raise ActionError(502, str(exc)) from None

    async def governor_hold(self) -> GovernorHold | None:
        try:
            return await self.cc.governor_hold()
        except CommandCenterError as exc:
            raise ActionError(502, str(exc)) from None

    async def venues(self) -> list[VenueStatus]:
        return await self.cc.venues()

    async def acknowledge_venue(
        self, session: Session, signer: Signer, venue: str, review: int, note: str, proof: PasskeyProof | None = None
    ) -> VenueAck:
        """Lifts a hold on a venue's staging: a principal's decision, with their passkey if they have one."""
        self._require_principal(session)
        self._check_signer(session, signer)
        note = _venue_note(note)
        kept, headers = self._headers(session, "venue_ack", f"{venue}:{review}", proof)
        try:
            if kept:
                ack = await self.cc.send_venue_ack(kept[0], signer, headers=headers)
            else:
                ack = await self.cc.acknowledge_venue(venue, review, signer, note)
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None
        self.accounts.record(session.account.name, "acknowledge_venue", f"{venue}-{review}", reason=note, passkey=bool(headers))
        return ack

    async def clear_governor(self, session: Session, signer: Signer, reason: str, proof: PasskeyProof | None = None) -> GovernorClear:
        self._require_principal(session)
        self._check_signer(session, signer)
        reason = _clear_reason(reason)
        kept, headers = self._headers(session, "clear", "governor", proof)
        try:
            if kept:
                clear = await self.cc.send_governor_clear(kept[0], signer, headers=headers)
            else:
                clear = await self.cc.clear_governor(signer, reason)
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None
        self.accounts.record(session.account.name, "clear_governor", clear.clear_id, reason=clear.reason, passkey=bool(headers))
        return clear


def _given_reason(reason: str, missing: str) -> str:
    """A decision's reason, stripped; `missing` is the error when there is none."""
    if not reason.strip():
        raise ActionError(400, missing)
    if len(reason) > 2000:
        raise ActionError(400, "the reason is longer than 2000 characters")
    return reason.strip()


def _release_reason(reason: str) -> str:
    return _given_reason(reason, "releasing a quarantined item needs a reason: what the screen got wrong")


def _venue_note(note: str) -> str:
    return _given_reason(note, "acknowledging a venue's mismatch needs a note: what you checked at the venue")


def _clear_reason(reason: str) -> str:
    return _given_reason(reason, "clearing the Governor needs a reason")


def _required(value: str | None, what: str) -> str:
    if not value:
        raise ActionError(400, f"{what} is required for this decision")
    return value


def session_lifetimes(mission: Mission) -> tuple[timedelta, timedelta]:
    return timedelta(minutes=mission.web.session_idle_minutes), timedelta(hours=mission.web.session_max_hours)


class PasskeyProof(BaseModel):
    """A passkey's answer to a prepared decision (POST /api/decisions/prepare)."""

    model_config = ConfigDict(extra="forbid")
    prepared_id: str = Field(min_length=1, max_length=64)
    credential: dict = Field(description="navigator.credentials.get()'s answer, base64url fields (static/passkey.js)")


class _WithPasskey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passkey: PasskeyProof | None = Field(None, description="Required when the principal has registered a passkey.")


class ApproveRequest(_WithPasskey):
    confirm: str | None = Field(None, description="For an explicit directive: its id, typed to confirm.")


class RejectRequest(_WithPasskey):
    reason: str = Field(min_length=1, max_length=2000)


class BatchApproveRequest(_WithPasskey):
    directive_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    confirm_count: int = Field(description="The number of directives, given again to confirm the batch.")


class PrepareRequest(BaseModel):
    """A decision to be confirmed with a passkey: the same fields as the action itself."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["approve", "reject", "batch", "reset", "clear", "release", "venue_ack"]
    directive_id: str | None = Field(None, max_length=64)
    venue: str | None = Field(None, max_length=32)
    review: int | None = Field(None, ge=1)
    news_id: str | None = Field(None, max_length=200)
    directive_ids: list[str] | None = Field(None, max_length=MAX_BATCH)
    confirm: str | None = Field(None, max_length=64)
    confirm_count: int | None = None
    reason: str | None = Field(None, max_length=2000)
    password: str | None = Field(None, max_length=1024)


class PrepareAnswer(BaseModel):
    prepared_id: str
    options: dict = Field(description="Options for navigator.credentials.get (base64url fields)")
    decisions: int


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000)
    agent: str | None = Field(None, min_length=1, max_length=128)  # whose request, when two agents used the id


class ResetRequest(_WithPasskey):
    password: str = Field("", description="Your password again (checked when the reset was prepared, with a passkey).")
    reason: str = Field(min_length=1, max_length=2000)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class ClearRequest(_WithPasskey):
    reason: str = Field(min_length=1, max_length=2000)


class ReleaseRequest(_WithPasskey):
    reason: str = Field(min_length=1, max_length=2000)


class VenueAckRequest(_WithPasskey):
    review: int = Field(ge=1, description="The open review's number, as the Venues page shows it.")
    note: str = Field(min_length=1, max_length=2000, description="What you checked at the venue.")
