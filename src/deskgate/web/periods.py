"""The funnel over a chosen period, from the factory's published verdicts and outcomes.

The factory's own funnel counts everything since the desk began. A desk asks about
a week or a day, so this counts the directives *received* in the period and follows
each to where it stands now: staged or rejected by the policy engine, approved or
rejected by a human, executed, invalidated at time of use, or expired.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from deskgate.domain.approval import ApprovalOutcome
from deskgate.domain.evaluation import PolicyVerdict
from deskgate.domain.funnel import Funnel
from deskgate.factory.funnel import FunnelCounter

PERIODS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}

_TERMINAL = {"ordered", "executed", "venue_rejected", "invalidated", "expired", "rejected"}


class PeriodError(ValueError):
    pass


def period_start(period: str, now: datetime) -> datetime | None:
    if period not in PERIODS:
        raise PeriodError(f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    span = PERIODS[period]
    return None if span is None else now - span


def period_funnel(
    verdicts: Iterable[PolicyVerdict], outcomes: Iterable[ApprovalOutcome], since: datetime | None, now: datetime
) -> Funnel:
    counter = FunnelCounter()
    state: dict[str, str] = {}
    for v in verdicts:
        if since is not None and v.at < since:
            continue
        counter.evaluated(v.decision, v.primary_reason)
        if v.decision == "staged" and v.directive_id:
            state[v.directive_id] = "staged"
    for o in sorted(outcomes, key=lambda o: o.at):
        old = state.get(o.directive_id)
        if old is None or o.outcome == "refused" or o.outcome == old:
            continue
        if old in _TERMINAL and not (old == "ordered" and o.outcome in ("executed", "venue_rejected")):
            continue
        counter.moved(old, o.outcome, o.reason)
        state[o.directive_id] = o.outcome
    return counter.snapshot(now)
