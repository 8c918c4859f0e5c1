"""The funnel, counted as it happens.

The factory is the only writer of its state, so counting each evaluation and each
intention's move as it happens gives exact numbers without re-reading the tables.
The counts are seeded from the database at start-up. Each agent gets a funnel of its
own beside the desk's (what its verified signature attributes to it); a directive no
agent's key verifies counts only in the desk's.
"""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import datetime

from deskgate.domain.funnel import LATENCY_BUCKETS_MS, Funnel, LatencyHistogram


def invalidation_key(reason: str | None) -> str:
    """Invalidation reasons start with the failed check's name: "price_band: moved ..."."""
    if not reason:
        return "unknown"
    return reason.split(":", 1)[0].strip()[:40]


def human_key(reason: str | None) -> str:
    return (reason or "no reason given").strip()[:80]


class FunnelCounter:
    def __init__(self) -> None:
        self.decisions: Counter = Counter()  # staged / rejected / duplicate
        self.policy_reasons: Counter = Counter()
        self.states: Counter = Counter()  # intentions by state
        self.invalid: Counter = Counter()
        self.human: Counter = Counter()
        self.agents: dict[str, FunnelCounter] = {}  # each agent's own funnel

    def _and_agent(self, agent: str | None) -> tuple[FunnelCounter, ...]:
        if agent is None:
            return (self,)
        if agent not in self.agents:
            self.agents[agent] = FunnelCounter()
        return (self, self.agents[agent])

    def evaluated(self, decision: str, primary: str | None, agent: str | None = None, n: int = 1) -> None:
        for c in self._and_agent(agent):
            c.decisions[decision] += n
            if decision == "rejected":
                c.policy_reasons[primary or "unknown"] += n
            if decision == "staged":
                c.states["staged"] += n

    def moved(self, old: str, new: str, reason: str | None = None, agent: str | None = None) -> None:
        for c in self._and_agent(agent):
            c.states[old] -= 1
            c._entered(new, reason, 1)

    def seed(self, decision: str, primary: str | None, agent: str | None, n: int) -> None:
        """Evaluations as stored: their intentions' states are seeded on their own (`seed_state`)."""
        for c in self._and_agent(agent):
            c.decisions[decision] += n
            if decision == "rejected":
                c.policy_reasons[primary or "unknown"] += n

    def seed_state(self, state: str, reason: str | None, agent: str | None, n: int) -> None:
        for c in self._and_agent(agent):
            c._entered(state, reason, n)

    def _entered(self, state: str, reason: str | None, n: int) -> None:
        self.states[state] += n
        if state == "invalidated":
            self.invalid[invalidation_key(reason)] += n
        if state == "rejected":
            self.human[human_key(reason)] += n

    def snapshot(self, at: datetime) -> Funnel:
        st = self.states
        return Funnel(
            at=at,
            received=sum(self.decisions.values()),
            duplicates=self.decisions["duplicate"],
            staged=self.decisions["staged"],
            policy_rejected=self.decisions["rejected"],
            policy_rejections_by_reason=dict(+self.policy_reasons),
            approved=st["held"] + st["ordered"] + st["executed"] + st["venue_rejected"] + st["invalidated"],
            human_rejected=st["rejected"],
            human_rejections_by_reason=dict(+self.human),
            ordered=st["ordered"] + st["executed"] + st["venue_rejected"],
            executed=st["executed"],
            venue_rejected=st["venue_rejected"],
            invalidated=st["invalidated"],
            invalidations_by_reason=dict(+self.invalid),
            expired=st["expired"],
            pending=st["staged"] + st["awaiting_second_approval"],
            agents={name: c.snapshot(at) for name, c in sorted(self.agents.items())},
        )


class EvaluationLatency:
    """Policy evaluation time per directive, by bucket (the last: above every bound).
    Counted since the service started; a reload of the funnel's counts keeps it."""

    def __init__(self) -> None:
        self.per_bucket = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.sum_ms = 0.0

    def add(self, ms: float) -> None:
        self.per_bucket[bisect.bisect_left(LATENCY_BUCKETS_MS, ms)] += 1
        self.sum_ms += ms

    def histogram(self) -> LatencyHistogram:
        return LatencyHistogram.from_buckets(self.per_bucket, self.sum_ms)
