"""Directive intake: who signed it (factory/authors.py), the policy engine's evaluation,
staging (which reserves exposure) and the verdict, for a batch in one transaction.

The first directive with an id wins: a later one with the same id is refused as a
duplicate, however it was signed. Only a redelivery of a message already evaluated
(the same stream sequence) is skipped.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

from deskgate.audit.keys import KeyStore
from deskgate.audit.signing import SIGNATURE_HEADER, SIGNER_HEADER, SignedPayload
from deskgate.bus import subjects as S
from deskgate.clock import Clock
from deskgate.config import Mission
from deskgate.domain.approval import IntentionState, PositionContext, StagedDirective
from deskgate.domain.evaluation import PolicyEvaluation, PolicyVerdict
from deskgate.factory.authors import Authors, named_another, reserved_id_rejection
from deskgate.factory.funnel import EvaluationLatency
from deskgate.factory.outbox import Effects, Pending, PendingKind, verdict_subject
from deskgate.factory.state import FactoryState
from deskgate.factory.store import FactoryStore
from deskgate.policy.engine import (
    Evaluation,
    duplicate_rejection,
    evaluate_payload,
    stage,
    with_check_first,
)


class Intake:
    def __init__(
        self, store: FactoryStore, state: FactoryState, keys: KeyStore, mission: Mission, clock: Clock,
        latency: EvaluationLatency, stats: dict,
    ):
        self.store, self.state, self.keys, self.mission, self.clock = store, state, keys, mission, clock
        self.latency, self.stats = latency, stats
        self.authors = Authors(keys.agents)  # who may draft now, as the agent registry says at each directive
        self.known_ids: set[str] = set()  # every directive id ever evaluated
        self.max_seq = 0  # highest DIRECTIVES sequence evaluated; anything above is new
        self.drafts = DailyDrafts()  # each agent's directives evaluated today (UTC): mandates' daily budgets

    def restore(self, conn) -> None:
        self.max_seq = self.store.max_evaluated_seq(conn)
        self.known_ids = self.store.known_directive_ids(conn)
        today = self.clock.now().date()
        self.drafts.restore(today, self.store.drafts_since(conn, _midnight(today)))

    def evaluate(self, items: list[tuple[int, bytes, dict | None]], effects: Effects) -> list[str | None]:
        """Evaluate, stage and record a batch in one transaction.

        Returns each item's decision (staged, rejected, duplicate), or None for a
        redelivery of something already evaluated.
        """
        now = self.clock.now()
        b, g = self.state.beliefs, self.mission.guardrails
        results: list[str | None] = []
        evaluated_rows: list[dict] = []
        intention_rows: list[dict] = []
        with self.store.begin() as conn:
            # The consumer delivers in order; only a redelivery can be at or below max_seq.
            already = self.store.evaluated_seqs(conn, [seq for seq, _, _ in items if seq <= self.max_seq])
            for seq, data, headers in items:
                if seq in already:
                    results.append(None)
                    continue
                t0 = time.perf_counter()
                author = self.authors.author(data, headers)
                mandate = None
                if author.refusal is None:
                    # The verified agent's mandate, never the one its directive claims to be from.
                    mandate = self.mission.mandate_for(author.agent) if self.mission.mandates else None
                    used = self.drafts.count(author.agent, now.date()) if mandate is not None else 0
                    ev = evaluate_payload(data, b, g, self.mission.max_directive_bytes, mandate, now, used)
                    owner = self.authors.owner_of(ev.directive_id) if ev.directive_id is not None else None
                    if owner is not None and owner != author.agent:
                        ev = reserved_id_rejection(ev.directive_id, owner, author.agent)
                    if ev.directive is not None and (mismatch := named_another(ev.directive.agent, author.agent)) is not None:
                        ev = with_check_first(ev, mismatch)
                else:
                    # Not an agent's that may draft now: evaluated no further, and its id is not taken from anyone.
                    ev = author.refusal
                    self.stats["unsigned_directives"] += 1
                self.latency.add((time.perf_counter() - t0) * 1000.0)
                did = ev.directive_id
                staged = None
                if did is not None and did in self.known_ids:
                    decision, primary = "duplicate", "duplicate"
                    evaluation = duplicate_rejection(did).to_model()
                elif ev.staged:
                    decision, primary = "staged", None
                    evaluation = ev.to_model()  # built once: the verdict and the staged item share it
                    staged = self.staged_directive(ev, evaluation, now, SignedPayload(
                        signer=headers[SIGNER_HEADER], signature=headers[SIGNATURE_HEADER], payload=data.decode()
                    ))
                    intention_rows.append(_intention_row(ev, staged, now, author.agent))
                else:
                    decision, primary = "rejected", ev.primary_reason
                    evaluation = ev.to_model()
                if did is not None:
                    self.known_ids.add(did)
                if author.refusal is None and did is not None and decision != "duplicate":
                    self.drafts.add(author.agent, now.date())  # the rule drafts_since restores by
                verdict = PolicyVerdict(
                    directive_id=did, seq=seq, decision=decision, primary_reason=primary, evaluation=evaluation, at=now, agent=author.agent
                ).model_dump_json().encode()
                evaluated_rows.append(dict(
                    seq=seq, directive_id=did, decision=decision, primary_reason=primary, verdict=verdict, published=False, at=now,
                    agent=author.agent,
                ))
                results.append(decision)
                self.stats["directives"] += 1
                if staged is not None:
                    effects.expires(staged.expires_at)
            self.store.record_evaluations(conn, evaluated_rows)
            self.store.add_intentions(conn, intention_rows)
        counter = self.state.counter
        # The staged items go out before the verdicts that announce them, so a sender told
        # "staged" finds its item in the queue (one connection: the server takes them in order).
        for row in intention_rows:
            did = row["directive_id"]
            effects.messages.append(Pending(PendingKind.STAGED, did, S.staged_subject(did), f"staged-{did}", row["staged"]))
        for row in evaluated_rows:
            did = row["directive_id"]
            effects.messages.append(Pending(PendingKind.VERDICT, row["seq"], verdict_subject(did), f"policy-{row['seq']}", row["verdict"]))
            counter.evaluated(row["decision"], row["primary_reason"], row["agent"])
            self.max_seq = max(self.max_seq, row["seq"])
        effects.funnel_changed = effects.portfolio_changed = True
        return results

    def staged_directive(self, ev: Evaluation, evaluation: PolicyEvaluation, now: datetime, signed: SignedPayload) -> StagedDirective:
        """What a principal is shown, with the position it would leave; staging reserves its exposure."""
        d = ev.directive
        assert d is not None and ev.asset is not None and ev.venue is not None
        b = self.state.beliefs
        p = b.position(ev.asset)
        same_side = b.pending_buy(ev.asset) if d.side == "buy" else -b.pending_sell(ev.asset)
        post = p + same_side + (d.notional_usd if d.side == "buy" else -d.notional_usd)
        stage_check = {c.name: c for c in ev.checks}
        context = PositionContext(
            equity_usd=b.equity_usd,
            current_position_usd=p,
            pending_same_side_usd=same_side,
            post_trade_position_usd=post,
            post_trade_position_pct=float(stage_check["position"].observed),
            gross_leverage_after=float(stage_check["portfolio_leverage"].observed),
            drawdown_pct=b.drawdown_pct,
        )
        stage(ev, b)
        four_eyes_above = self.mission.approvals.four_eyes_above_usd
        return StagedDirective(
            directive=d,
            evaluation=evaluation,
            asset=ev.asset,
            venue=ev.venue,
            explicit=ev.explicit_approval,
            four_eyes=bool(ev.explicit_approval and four_eyes_above is not None and d.notional_usd > four_eyes_above),
            price_at_staging=b.prices[ev.asset],
            staged_at=now,
            expires_at=now + timedelta(seconds=self.mission.approvals.expiry_seconds),
            context=context,
            signed_directive=signed,
        )


class DailyDrafts:
    """How many directives each agent had evaluated on the current UTC day, for the daily
    budgets of mandates: those that counted as the agent's and took an id (not a repeated
    id, nor one refused for its signature, whoever holds an old key). Restored from the
    evaluations at start by the same rule (FactoryStore.drafts_since)."""

    def __init__(self) -> None:
        self.day: date | None = None
        self.counts: dict[str, int] = {}

    def restore(self, day: date, counts: dict[str, int]) -> None:
        self.day, self.counts = day, dict(counts)

    def count(self, agent: str, day: date) -> int:
        return self.counts.get(agent, 0) if day == self.day else 0

    def add(self, agent: str, day: date) -> None:
        if day != self.day:
            self.day, self.counts = day, {}
        self.counts[agent] = self.counts.get(agent, 0) + 1


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _intention_row(ev: Evaluation, staged: StagedDirective, now: datetime, agent: str | None) -> dict:
    return dict(
        directive_id=ev.directive_id,
        agent=agent,
        state=IntentionState.STAGED.value,
        asset=ev.asset,
        venue=ev.venue,
        side=ev.directive.side,
        notional_usd=ev.directive.notional_usd,
        explicit=staged.explicit,
        four_eyes=staged.four_eyes,
        price_at_staging=staged.price_at_staging,
        staged_at=now,
        expires_at=staged.expires_at,
        staged=staged.to_bytes(),
        staged_published=False,
        outcome_reason=None,
        updated_at=now,
    )
