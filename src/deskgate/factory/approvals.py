"""Approval decisions: a principal's signed decision applied to one staged directive,
re-checked against current beliefs at the time of use, and turned into an order.

`decide` authenticates the decision (its subject, the principal's own key, their
passkey), asks the pure `approval_gate` what the decision may do given the stored
intention, then records and emits. The gate's checks run in a fixed order, and the
order is part of what they mean: a directive that is gone is "gone" even when the
breaker is tripped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from deskgate.audit.keys import principal_signer
from deskgate.audit.signing import (
    Kind,
    SignatureStatus,
    SignedPayload,
    Signer,
    digest,
    verify_headers,
)
from deskgate.bus import subjects as S
from deskgate.clock import Clock
from deskgate.config import Mission
from deskgate.domain.approval import (
    AWAITING_DECISION,
    ApprovalOutcome,
    ApprovalResponse,
    IntentionState,
    StagedDirective,
)
from deskgate.domain.execution import ApprovalRef, Order
from deskgate.factory import intentions
from deskgate.identity.names import agent_of_signer
from deskgate.factory.breaker import BreakerKeeper
from deskgate.factory.outbox import Effects
from deskgate.factory.people import Verifier, principal_key
from deskgate.factory.state import FactoryState
from deskgate.factory.store import FactoryStore
from deskgate.policy.engine import Evaluation, reevaluate

log = logging.getLogger("deskgate.factory")


# -- what a decision may do ---------------------------------------------------------


@dataclass(frozen=True)
class Refuse:
    reason: str  # not counted; the intention is unchanged


@dataclass(frozen=True)
class Expire:
    reason: str  # the decision came after the intention's expiry


@dataclass(frozen=True)
class Reject:
    reason: str  # a principal said no


@dataclass(frozen=True)
class AwaitSecond:
    staged: StagedDirective  # four eyes: the first of two approvals


@dataclass(frozen=True)
class Recheck:
    staged: StagedDirective  # the last approval needed: re-check, then order or invalidate


Gate = Refuse | Expire | Reject | AwaitSecond | Recheck


def approval_gate(resp: ApprovalResponse, intention: dict | None, earlier: list[dict], breaker_refusal: str | None, now: datetime) -> Gate:
    """What an authenticated decision may do to the intention it names. Pure: the
    caller reads the intention, the earlier approvals and the breaker."""
    did = resp.directive_id
    if intention is None:
        return Refuse(f"no staged directive {did}")
    if intention["state"] == IntentionState.HELD and resp.decision == "reject":
        return Reject(resp.reason)  # a held approval can still be withdrawn
    if intention["state"] not in AWAITING_DECISION:
        return Refuse(f"directive {did} is already {intention['state']}")
    if now > intention["expires_at"]:
        return Expire(f"expired at {intention['expires_at'].isoformat()} before the decision")
    if resp.decision == "reject":
        return Reject(resp.reason)
    if breaker_refusal is not None:
        # Not counted, and the directive stays pending: after a principal's reset it
        # can be approved again (before it expires).
        return Refuse(breaker_refusal)
    if intention["explicit"] and resp.batch_id is not None:
        return Refuse("explicit directives are approved one by one, never in a batch")
    if principal_key(resp.principal) in {principal_key(a["principal"]) for a in earlier}:
        return Refuse(f"{resp.principal} already approved {did}; a second approval must come from another principal")
    staged = StagedDirective.model_validate_json(intention["staged"])
    if staged.signed_directive is None or resp.directive_digest != digest(staged.signed_directive.data):
        return Refuse(f"{resp.principal}'s approval does not name this directive's digest; it may have been shown another one")
    if intention["four_eyes"] and not earlier:
        return AwaitSecond(staged)
    return Recheck(staged)


# -- applying it --------------------------------------------------------------------


class Approvals:
    def __init__(
        self, store: FactoryStore, state: FactoryState, verifier: Verifier, signer: Signer, mission: Mission,
        breaker: BreakerKeeper, clock: Clock, stats: dict,
    ):
        self.store, self.state, self.verifier, self.signer = store, state, verifier, signer
        self.mission, self.breaker, self.clock, self.stats = mission, breaker, clock, stats
        self.next_expiry: datetime | None = None

    def note(self, effects: Effects) -> None:
        if effects.next_expiry is not None and (self.next_expiry is None or effects.next_expiry < self.next_expiry):
            self.next_expiry = effects.next_expiry

    def decide(self, seq: int, subject: str, data: bytes, headers: dict | None, effects: Effects) -> ApprovalOutcome | None:
        """Apply one principal's decision. Returns the outcome published, if any."""
        now = self.clock.now()
        self.stats["responses"] += 1
        with self.store.begin() as conn:
            try:
                resp = ApprovalResponse.model_validate_json(data)
            except ValidationError as exc:
                reason = "invalid approval response: " + "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
                )
                if self.store.refuse(conn, "RESPONSES", seq, reason, data, now):
                    token = safe_token(subject.rsplit(".", 1)[-1])
                    outcome = ApprovalOutcome(directive_id=token, outcome="refused", at=now, reason=reason)
                    effects.queue(self.store.enqueue(conn, [(S.approval_status_subject(token), f"refused-{seq}", outcome.to_bytes())], now))
                    return outcome
                return None
            seen = self.store.response_seen(conn, seq, resp.approval_id)
            if seen == "redelivered":
                return None  # this very message was handled before a crash or a lost ack
            if seen == "replayed":
                if self.store.refuse(conn, "RESPONSES", seq, f"approval id {resp.approval_id} already used", data, now):
                    outcome = _outcome(resp, "refused", now, f"approval {resp.approval_id} was already used; decisions cannot be replayed")
                    intentions.emit(self.store, conn, outcome, f"refused-{seq}", now, effects)
                    return outcome
                return None

            def record(result: str, reason: str) -> None:
                self.store.add_decision(
                    conn, approval_id=resp.approval_id, seq=seq, directive_id=resp.directive_id, decision=resp.decision,
                    principal=resp.principal, decided_at=resp.decided_at, reason=resp.reason, batch_id=resp.batch_id,
                    result=result, result_reason=reason, at=now,
                )

            def refuse(reason: str) -> ApprovalOutcome:
                record("refused", reason)
                outcome = _outcome(resp, "refused", now, reason)
                intentions.emit(self.store, conn, outcome, f"refused-{seq}", now, effects)
                return outcome

            if subject != S.response_subject(resp.directive_id):
                return refuse(f"decision for {resp.directive_id} arrived on {subject}; a decision applies only to its own directive")
            unauthentic = self._unauthentic(resp, data, headers)
            if unauthentic:
                self.stats["unsigned_decisions"] += 1
                return refuse(unauthentic)
            did = resp.directive_id
            intention = self.store.intention(conn, did)
            earlier = self.store.approvals_for(conn, did) if intention is not None and resp.decision == "approve" else []
            tripped = self.breaker.refusal(did) if self.state.beliefs.breaker_tripped else None
            gate = approval_gate(resp, intention, earlier, tripped, now)
            if isinstance(gate, Refuse):
                return refuse(gate.reason)
            if isinstance(gate, Expire):
                record("expired", "decision after expiry")
                return self._finish(conn, did, intention["state"], IntentionState.EXPIRED, now, resp, gate.reason, effects)
            if isinstance(gate, Reject):
                record("counted", gate.reason)
                return self._finish(conn, did, intention["state"], IntentionState.REJECTED, now, resp, gate.reason, effects)
            signed = SignedPayload(signer=headers["Deskgate-Signer"], signature=headers["Deskgate-Signature"], payload=data.decode())
            self.store.add_signed_decision(conn, resp.approval_id, did, signed)
            if isinstance(gate, AwaitSecond):
                record("counted", "first of two approvals")
                self._move(conn, did, intention["state"], IntentionState.AWAITING_SECOND_APPROVAL, None, now)
                outcome = _outcome(resp, "awaiting_second_approval", now, "needs a second principal", [resp.principal])
                intentions.emit(self.store, conn, outcome, f"await-{did}", now, effects)
                return outcome
            return self._order(conn, resp, signed, intention, earlier, gate.staged, now, effects, record)

    def _mandate_of(self, staged: StagedDirective):
        """The mandate of the agent whose key signed the staged directive, re-checked at time of use."""
        signed = staged.signed_directive
        agent = agent_of_signer(signed.signer) if signed is not None else None
        return self.mission.mandate_for(agent) if agent is not None else None

    def _unauthentic(self, resp: ApprovalResponse, data: bytes, headers: dict | None) -> str | None:
        """Why this decision is not the named principal's own, or None."""
        try:
            expected_signer = principal_signer(resp.principal)
            signature = verify_headers(self.verifier, Kind.APPROVAL, data, headers, expect=expected_signer)
        except ValueError:
            signature = SignatureStatus.WRONG_SIGNER
        if signature is not SignatureStatus.VALID:
            why = self.verifier.why_not(expected_signer) if signature is not SignatureStatus.WRONG_SIGNER else None
            return (
                f"the decision's signature is {signature.value}; a decision must be signed with {resp.principal}'s own current key"
                + (f" ({why})" if why else "")
            )
        return self.verifier.passkey_problem(resp.principal, Kind.APPROVAL, data, headers)

    def _order(
        self, conn, resp: ApprovalResponse, signed: SignedPayload, intention: dict, earlier: list[dict], staged: StagedDirective,
        now: datetime, effects: Effects, record,
    ) -> ApprovalOutcome:
        """The last approval: re-check against current beliefs (time of use), then order or invalidate."""
        b, did = self.state.beliefs, resp.directive_id
        own = b.release(did)
        ev = reevaluate(
            staged.directive,
            b,
            self.mission.guardrails,
            price_at_staging=intention["price_at_staging"],
            expires_at=intention["expires_at"],
            now=now,
            band_pct=self.mission.approvals.price_band_pct,
            mandate=self._mandate_of(staged),
        )
        record("counted", "approved")
        approvers = [*earlier, {"approval_id": resp.approval_id, "principal": resp.principal, "decided_at": resp.decided_at}]
        if not ev.staged:
            failed = [c for c in ev.checks if not c.passed]
            if all(c.name == "venue_health" for c in failed):
                return self._hold(conn, resp, intention, approvers, own, failed[0], ev, now, effects)
            reason = f"{failed[0].name}: {failed[0].reason}"
            self._move(conn, did, intention["state"], IntentionState.INVALIDATED, reason, now)
            outcome = _outcome(resp, "invalidated", now, reason, [a["principal"] for a in approvers], evaluation=ev)
            intentions.emit(self.store, conn, outcome, f"invalidated-{did}", now, effects)
            effects.funnel_changed = effects.portfolio_changed = True
            return outcome
        if own is not None:
            b.reserve(own)  # an order reserves exposure until it fills
        order = Order(
            order_id=f"{did}-o",
            directive_id=did,
            venue=staged.venue,
            asset=staged.asset,
            side=staged.directive.side,
            notional_usd=staged.directive.notional_usd,
            leverage=staged.directive.leverage,
            reference_price=b.prices[staged.asset],
            created_at=now,
            approvals=[ApprovalRef(approval_id=a["approval_id"], principal=a["principal"], decided_at=a["decided_at"]) for a in approvers],
            directive=staged.signed_directive,
            signed_approvals=[*(SignedPayload.model_validate(a["signed"]) for a in earlier if a["signed"] is not None), signed],
            staged=self.signer.signed(Kind.STAGED, intention["staged"]),
        )
        self.store.add_order(conn, order.model_dump(mode="json"), now)
        self._move(conn, did, intention["state"], IntentionState.ORDERED, None, now)
        outcome = _outcome(resp, "ordered", now, "", [a["principal"] for a in approvers], order_id=order.order_id, evaluation=ev)
        effects.queue(self.store.enqueue(conn, [  # the order, then the outcome that announces it: one statement
            (S.order_subject(order.venue), f"order-{order.order_id}", order.to_bytes()),
            (S.approval_status_subject(did), f"ordered-{did}", outcome.to_bytes()),
        ], now))
        effects.funnel_changed = True
        return outcome

    def _hold(self, conn, resp, intention: dict, approvers: list[dict], own, failed, ev, now: datetime, effects: Effects):
        """Approved, but its venue is unhealthy: the approval is kept, not invalidated, and the
        order goes out (re-checked as ever) once the venue is healthy again, or the approval
        window ends first."""
        did = resp.directive_id
        if own is not None:
            self.state.beliefs.reserve(own)  # held, it still reserves
        reason = f"venue_health: {failed.reason}; the approval is held until the venue is healthy"
        if intention["state"] == IntentionState.HELD:
            return None  # still held: nothing new to say
        self._move(conn, did, intention["state"], IntentionState.HELD, reason, now)
        outcome = _outcome(resp, "held", now, reason, [a["principal"] for a in approvers], evaluation=ev)
        intentions.emit(self.store, conn, outcome, f"held-{did}", now, effects)
        effects.funnel_changed = True
        return outcome

    def release_held(self, effects: Effects) -> int:
        """Order every held intention whose venue is healthy again; the count ordered or invalidated."""
        b = self.state.beliefs
        if not b.venue_health:
            return 0
        now = self.clock.now()
        done = 0
        with self.store.begin() as conn:
            for intention in self.store.held_intentions(conn):
                if b.breaker_tripped:  # approvals given before a trip do not outlive it
                    self._finish(conn, intention["directive_id"], intention["state"], IntentionState.INVALIDATED, now, None,
                                 "breaker: the circuit breaker tripped while the approval was held", effects)
                    done += 1
                    continue
                staged = StagedDirective.model_validate_json(intention["staged"])
                if b.venue_health.get(staged.venue, None) is not None:
                    continue  # still unhealthy
                approvals = self.store.approvals_for(conn, intention["directive_id"])
                final = approvals[-1]
                if final["signed"] is None:
                    continue
                signed = SignedPayload.model_validate(final["signed"])
                resp = ApprovalResponse.model_validate_json(signed.payload)
                outcome = self._order(conn, resp, signed, intention, approvals[:-1], staged, now, effects, lambda *_: None)
                done += outcome is not None and outcome.outcome != "held"
        return done

    def expire_due(self, effects: Effects) -> int:
        """End every intention past its expiry without a decision."""
        now = self.clock.now()
        if self.next_expiry is None or now <= self.next_expiry:
            return 0
        with self.store.begin() as conn:
            due = self.store.expired_intentions(conn, now)
            for did in due:
                state = self.store.intention(conn, did)["state"]
                why = "the venue stayed unhealthy until the approval window ended" if state == IntentionState.HELD else "no decision before expiry"
                self._finish(conn, did, state, IntentionState.EXPIRED, now, None, why, effects)
            self.next_expiry = self.store.next_expiry(conn)
        if due:
            log.info("expired %d staged directives", len(due))
        return len(due)

    def _move(self, conn, did: str, old: str, new: IntentionState, reason: str | None, now: datetime) -> None:
        intentions.move(self.store, self.state.counter, conn, did, old, new, reason, now)

    def _finish(
        self, conn, did: str, old: str, state: IntentionState, now: datetime, resp: ApprovalResponse | None, reason: str, effects: Effects
    ) -> ApprovalOutcome:
        """End an intention without an order, releasing what it reserved."""
        self.state.beliefs.release(did)
        self._move(conn, did, old, state, reason, now)
        if resp is not None:
            outcome = _outcome(resp, state.value, now, reason)
        else:
            outcome = ApprovalOutcome(directive_id=did, outcome=state.value, at=now, reason=reason)
        intentions.emit(self.store, conn, outcome, f"{state}-{did}", now, effects)
        effects.funnel_changed = effects.portfolio_changed = True
        return outcome


def _outcome(resp: ApprovalResponse, outcome: str, now: datetime, reason: str, principals=None, *, evaluation: Evaluation | None = None, **kw) -> ApprovalOutcome:
    return ApprovalOutcome(
        directive_id=resp.directive_id,
        outcome=outcome,
        at=now,
        reason=reason,
        principals=principals if principals is not None else [resp.principal],
        approval_id=resp.approval_id,
        evaluation=evaluation.to_model() if evaluation is not None else None,
        **kw,
    )


_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def safe_token(text: str) -> str:
    return text if _TOKEN.fullmatch(text) else "unidentified"
