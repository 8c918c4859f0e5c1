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
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from deskgate.approvals.client import CommandCenter, CommandCenterError, QueueItem
from deskgate.audit.signing import Signer
from deskgate.config import Mission
from deskgate.domain.approval import ApprovalOutcome, PositionContext
from deskgate.domain.base import utcnow
from deskgate.domain.breaker import BreakerState
from deskgate.domain.directive import DecisionMemo
from deskgate.domain.evaluation import CheckResult
from deskgate.domain.governor import GovernorClear, GovernorHold, GovernorState
from deskgate.domain.news import QuarantinedItem
from deskgate.domain.review import ReviewAck, ReviewRequest
from deskgate.people.accounts import Accounts, Session

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
    agent: str
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


@dataclass
class Desk:
    mission: Mission
    cc: CommandCenter
    accounts: Accounts
    decision_wait_s: float = 5.0

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
        return [self._entry(i, prices.get(i.staged.asset), now) for i in pending], [self._entry(i, None, now) for i in decided]

    async def entry(self, directive_id: str) -> QueueEntry:
        try:
            item = await self.cc.item(directive_id)
        except CommandCenterError as exc:
            raise ActionError(404, str(exc)) from None
        prices = await self._prices({item.staged.asset})
        return self._entry(item, prices.get(item.staged.asset), utcnow())

    async def _prices(self, assets: set[str]) -> dict[str, float]:
        bars = await asyncio.gather(*(self.cc.price(a) for a in assets))
        return {a: b.close for a, b in zip(assets, bars) if b is not None}

    def _entry(self, item: QueueItem, price_now: float | None, now: datetime) -> QueueEntry:
        s = item.staged
        d = s.directive
        approved_by: list[str] = []
        for o in item.outcomes:
            if o.outcome in ("awaiting_second_approval", "ordered", "invalidated") and o.principals:
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
            agent=d.agent,
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
        return [ReviewEntry(request=r.request, acknowledged=r.acknowledged, acks=r.acks) for r in await self.cc.reviews()]

    async def breaker(self) -> BreakerState:
        return await self.cc.breaker()

    # -- deciding -----------------------------------------------------------------------

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

    async def _breaker_allows_approval(self, directive_id: str) -> None:
        breaker = await self.cc.breaker()
        if breaker.state == "tripped":
            why = breaker.trip.reason if breaker.trip else (breaker.note or "no trip record yet")
            raise ActionError(
                409,
                f"the circuit breaker is tripped ({why}): nothing can be approved until a principal resets it; "
                f"{directive_id} stays pending until then or until it expires",
            )

    async def approve(self, session: Session, signer: Signer, directive_id: str, confirm: str | None = None) -> DecisionResult:
        self._require_principal(session)
        self._check_signer(session, signer)
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
        try:
            outcomes = await self.cc.decide(directive_id, "approve", signer, wait=self.decision_wait_s)
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None
        self.accounts.record(name, "approve", directive_id, outcomes=[o.outcome for o in outcomes])
        return self._result(directive_id, outcomes)

    async def reject(self, session: Session, signer: Signer, directive_id: str, reason: str) -> DecisionResult:
        self._require_principal(session)
        self._check_signer(session, signer)
        if not reason.strip():
            raise ActionError(400, "a rejection needs a reason")
        if len(reason) > 2000:
            raise ActionError(400, "the reason is longer than 2000 characters")
        await self._pending_item(directive_id)
        name = session.account.name
        try:
            outcomes = await self.cc.decide(directive_id, "reject", signer, reason.strip(), wait=self.decision_wait_s)
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None
        self.accounts.record(name, "reject", directive_id, reason=reason.strip())
        return self._result(directive_id, outcomes)

    async def approve_batch(self, session: Session, signer: Signer, directive_ids: list[str], confirm_count: int | None) -> BatchResult:
        """All or nothing: every item is checked first; if any cannot be approved, none is sent."""
        self._require_principal(session)
        self._check_signer(session, signer)
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
        batch_id = f"batch-{uuid.uuid4().hex[:16]}"
        self.accounts.record(name, "approve_batch", batch_id, directive_ids=ids)
        answers = await asyncio.gather(
            *(self.cc.decide(did, "approve", signer, batch_id=batch_id, wait=self.decision_wait_s) for did in ids),
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

    # -- reviews and the breaker --------------------------------------------------------------

    async def acknowledge(self, session: Session, signer: Signer, review_id: str, note: str = "") -> ReviewAck:
        self._require_principal(session)
        self._check_signer(session, signer)
        try:
            ack = await self.cc.acknowledge(review_id, signer, note.strip()[:2000])
        except CommandCenterError as exc:
            raise ActionError(404, str(exc)) from None
        self.accounts.record(session.account.name, "acknowledge_review", review_id, note=note.strip()[:2000])
        return ack

    async def reset_breaker(self, session: Session, signer: Signer, password: str, reason: str) -> BreakerState:
        self._require_principal(session)
        self._check_signer(session, signer)
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
        try:
            state = await self.cc.reset_breaker(signer, reason.strip())
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None
        self.accounts.record(session.account.name, "reset_breaker", str(state.trip_revision or ""), reason=reason.strip())
        return state


    # -- quarantined news -------------------------------------------------------------------------

    async def quarantine(self) -> list[QuarantinedItem]:
        try:
            return await self.cc.quarantine()
        except CommandCenterError as exc:
            raise ActionError(502, str(exc)) from None

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

    async def clear_governor(self, session: Session, signer: Signer, reason: str) -> GovernorClear:
        self._require_principal(session)
        self._check_signer(session, signer)
        if not reason.strip():
            raise ActionError(400, "clearing the Governor needs a reason")
        if len(reason) > 2000:
            raise ActionError(400, "the reason is longer than 2000 characters")
        try:
            clear = await self.cc.clear_governor(signer, reason.strip())
        except CommandCenterError as exc:
            raise ActionError(409, str(exc)) from None
        self.accounts.record(session.account.name, "clear_governor", clear.clear_id, reason=reason.strip())
        return clear


def session_lifetimes(mission: Mission) -> tuple[timedelta, timedelta]:
    return timedelta(minutes=mission.web.session_idle_minutes), timedelta(hours=mission.web.session_max_hours)


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str | None = Field(None, description="For an explicit directive: its id, typed to confirm.")


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class BatchApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    directive_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    confirm_count: int = Field(description="The number of directives, given again to confirm the batch.")


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000)


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str
    reason: str = Field(min_length=1, max_length=2000)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class ClearRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)
