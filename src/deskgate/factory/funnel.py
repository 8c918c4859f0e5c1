"""The funnel, counted as it happens.

The factory is the only writer of its state, so counting each evaluation and each
intention's move as it happens gives exact numbers without re-reading the tables.
The counts are seeded from the database at start-up.
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

    def evaluated(self, decision: str, primary: str | None) -> None:
        self.decisions[decision] += 1
        if decision == "rejected":
            self.policy_reasons[primary or "unknown"] += 1
        if decision == "staged":
            self.states["staged"] += 1

    def moved(self, old: str, new: str, reason: str | None = None) -> None:
        self.states[old] -= 1
        self.states[new] += 1
        if new == "invalidated":
            self.invalid[invalidation_key(reason)] += 1
        if new == "rejected":
            self.human[human_key(reason)] += 1

    def snapshot(self, at: datetime) -> Funnel:
        st = self.states
        return Funnel(
            at=at,
            received=sum(self.decisions.values()),
            duplicates=self.decisions["duplicate"],
            staged=self.decisions["staged"],
            policy_rejected=self.decisions["rejected"],
            policy_rejections_by_reason=dict(+self.policy_reasons),
            approved=st["ordered"] + st["executed"] + st["venue_rejected"] + st["invalidated"],
            human_rejected=st["rejected"],
            human_rejections_by_reason=dict(+self.human),
            ordered=st["ordered"] + st["executed"] + st["venue_rejected"],
            executed=st["executed"],
            venue_rejected=st["venue_rejected"],
            invalidated=st["invalidated"],
            invalidations_by_reason=dict(+self.invalid),
            expired=st["expired"],
            pending=st["staged"] + st["awaiting_second_approval"],
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
