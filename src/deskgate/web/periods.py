"""The funnel over a chosen period, from the factory's published verdicts and outcomes.

The factory's own funnel counts everything since the desk began. A desk asks about
a week or a day, so this counts the directives *received* in the period and follows
each to where it stands now: staged or rejected by the policy engine, approved or
rejected by a human, executed, invalidated at time of use, or expired.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from deskgate.approvals.client import VerdictSummary
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
        raise PeriodError(f"unknown period {period!r}; one of {', '.join(PERIODS)}, or from/to dates")
    span = PERIODS[period]
    return None if span is None else now - span


# How far the newest snapshot may be ahead of this machine's clock and still count as "now".
CLOCK_SKEW = timedelta(minutes=5)


def chart_window(period: str, newest: datetime | None, now: datetime) -> tuple[datetime | None, datetime]:
    """(since, until) for the portfolio's charts, in the time the snapshots are stamped with.

    The factory stamps snapshots with its own clock. In a replay that is simulated
    time, and a desk that stopped days ago last stamped one then: in both, "the
    last 24 hours" means the 24 hours up to the newest snapshot, not an empty
    window before this machine's clock.
    """
    period_start(period, now)  # an unknown period: a clear error
    span = PERIODS[period]
    if newest is None:
        return (None if span is None else now - span), now
    if span is None:
        return None, max(now, newest)
    until = now if now - span <= newest <= now + CLOCK_SKEW else newest
    return until - span, until


def parse_day_or_time(value: str, what: str) -> datetime:
    """`2026-11-20` (midnight UTC) or an ISO 8601 time; a time without a zone is UTC."""
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PeriodError(f"{what} {value!r} is not a date (2026-11-20) or an ISO 8601 time") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def resolve_period(period: str, start: str | None, end: str | None, now: datetime) -> tuple[datetime | None, datetime]:
    """(since, until) for a named period, or for from/to dates (to is exclusive)."""
    if start or end:
        since = parse_day_or_time(start, "from") if start else None
        until = parse_day_or_time(end, "to") if end else now
        if since is not None and since >= until:
            raise PeriodError("from must be before to")
        return since, until
    return period_start(period, now), now


def period_funnel(
    verdicts: Iterable[PolicyVerdict | VerdictSummary],
    outcomes: Iterable[ApprovalOutcome],
    since: datetime | None,
    now: datetime,
    until: datetime | None = None,
) -> Funnel:
    """Directives received in [since, until) and where each stands now, for the desk and
    for each agent (`Funnel.agents`, by the verdicts' verified authors)."""
    counter = FunnelCounter()
    state: dict[str, str] = {}
    author: dict[str, str | None] = {}
    for v in verdicts:
        if (since is not None and v.at < since) or (until is not None and v.at >= until):
            continue
        counter.evaluated(v.decision, v.primary_reason, v.agent)
        if v.decision == "staged" and v.directive_id:
            state[v.directive_id] = "staged"
            author[v.directive_id] = v.agent
    for o in sorted(outcomes, key=lambda o: o.at):
        old = state.get(o.directive_id)
        if old is None or o.outcome == "refused" or o.outcome == old:
            continue
        if old in _TERMINAL and not (old == "ordered" and o.outcome in ("executed", "venue_rejected")):
            continue
        counter.moved(old, o.outcome, o.reason, author.get(o.directive_id))
        state[o.directive_id] = o.outcome
    return counter.snapshot(now)
