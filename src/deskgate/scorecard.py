"""The scorecard: whether the desk's directives were any good, measured against what happened.

Every executed directive is judged at its horizon (`agents.outcome_horizon_hours`
after its fill): the move of its asset in the directive's direction, from the fill
price to the first window close at or after the horizon. From those:

- **hit rate**: the share that moved the directive's way;
- **calibration**: the drafted confidence read as the probability of a hit, by
  bucket of 0.1 (a reliability table: mean confidence against hit rate), and the
  Brier score, mean((confidence - hit)^2): 0 is perfect, 0.25 is a coin called at 0.5;
- **P&L at the horizon**: notional x move - fees, per agent and per cycle kind. It is
  marked at the horizon, not realised: a position may be closed later, or never;
- **why not**: policy rejections, human rejections and invalidations by reason (the
  factory's funnel), and the Governor's interventions.

`score` is a pure function; `gather` (scorecard_feed.py) reads its inputs off the bus.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

UNKNOWN_CYCLE = "outside the desk's cycles"  # drafted by an outside agent, not in any intraday report


class Executed(BaseModel):
    """One executed directive, as its fill and staging record it."""

    directive_id: str
    agent: str
    asset: str
    side: str
    confidence: float
    notional_usd: float
    fee_usd: float
    fill_price: float
    filled_at: datetime
    cycle: str = UNKNOWN_CYCLE


class Judged(Executed):
    horizon_price: float
    move_bps: float
    hit: bool
    pnl_usd: float


class Bucket(BaseModel):
    low: float
    high: float
    count: int
    mean_confidence: float | None
    hit_rate: float | None


class Line(BaseModel):
    """Hits, calibration and P&L for one slice (an agent, a cycle kind, or the desk)."""

    executed: int = 0
    judged: int = 0
    hits: int = 0
    hit_rate: float | None = None
    brier: float | None = None
    pnl_usd: float = 0.0


class Scorecard(BaseModel):
    at: datetime
    horizon_hours: float
    desk: Line
    pending: int = Field(0, description="executed, but not judged: the horizon has not come, or no close came soon enough after it")
    reliability: list[Bucket]
    by_agent: dict[str, Line]
    by_cycle: dict[str, Line]
    policy_rejections_by_reason: dict[str, int] = Field(default_factory=dict)
    human_rejections_by_reason: dict[str, int] = Field(default_factory=dict)
    invalidations_by_reason: dict[str, int] = Field(default_factory=dict)
    governor_interventions: int = 0
    governor_damped: int = 0
    judged: list[Judged] = Field(default_factory=list)


def price_at_or_after(closes: list[tuple[datetime, float]], t: datetime) -> float | None:
    """The first close at or after `t` in a time-sorted list; None if none yet."""
    i = bisect_left(closes, t, key=lambda c: c[0])
    return closes[i][1] if i < len(closes) else None


def judge(e: Executed, closes: list[tuple[datetime, float]], horizon: timedelta) -> Judged | None:
    """Judged at the first close at or after the horizon, if it came within another horizon (or an hour) of
    it: after a gap in market data, a close days late would judge a different bet."""
    due = e.filled_at + horizon
    i = bisect_left(closes, due, key=lambda c: c[0])
    if i >= len(closes) or closes[i][0] > due + max(horizon, timedelta(hours=1)):
        return None
    price = closes[i][1]
    move = (price / e.fill_price - 1.0) * 10_000.0 * (1 if e.side == "buy" else -1)
    return Judged(**e.model_dump(), horizon_price=price, move_bps=move, hit=move > 0, pnl_usd=e.notional_usd * move / 10_000.0 - e.fee_usd)


def line(executed: int, judged: list[Judged]) -> Line:
    hits = sum(j.hit for j in judged)
    return Line(
        executed=executed,
        judged=len(judged),
        hits=hits,
        hit_rate=hits / len(judged) if judged else None,
        brier=sum((j.confidence - j.hit) ** 2 for j in judged) / len(judged) if judged else None,
        pnl_usd=round(sum(j.pnl_usd for j in judged), 2),
    )


def reliability(judged: list[Judged], width: float = 0.1) -> list[Bucket]:
    buckets = []
    n = round(1 / width)
    for i in range(n):
        lo, hi = round(i * width, 10), round((i + 1) * width, 10)
        inside = [j for j in judged if lo <= j.confidence < hi or (i == n - 1 and j.confidence == hi)]
        buckets.append(Bucket(
            low=lo, high=hi, count=len(inside),
            mean_confidence=sum(j.confidence for j in inside) / len(inside) if inside else None,
            hit_rate=sum(j.hit for j in inside) / len(inside) if inside else None,
        ))
    return buckets


def score(
    executed: list[Executed], closes: dict[str, list[tuple[datetime, float]]], horizon: timedelta, at: datetime, *,
    funnel=None, governor=None,
) -> Scorecard:
    """The scorecard of `executed` with each asset's time-sorted window closes; `funnel` and `governor`
    (the factory's Funnel and the agents' GovernorState) add the reasons and interventions."""
    judged = [j for e in executed if (j := judge(e, closes.get(e.asset, []), horizon)) is not None]

    def sliced(key) -> dict[str, Line]:
        names = sorted({key(e) for e in executed})
        return {n: line(sum(key(e) == n for e in executed), [j for j in judged if key(j) == n]) for n in names}

    return Scorecard(
        at=at,
        horizon_hours=horizon.total_seconds() / 3600,
        desk=line(len(executed), judged),
        pending=len(executed) - len(judged),
        reliability=reliability(judged),
        by_agent=sliced(lambda e: e.agent),
        by_cycle=sliced(lambda e: e.cycle),
        policy_rejections_by_reason=dict(funnel.policy_rejections_by_reason) if funnel else {},
        human_rejections_by_reason=dict(funnel.human_rejections_by_reason) if funnel else {},
        invalidations_by_reason=dict(funnel.invalidations_by_reason) if funnel else {},
        governor_interventions=governor.interventions if governor else 0,
        governor_damped=governor.damped if governor else 0,
        judged=sorted(judged, key=lambda j: (j.filled_at, j.directive_id)),
    )
