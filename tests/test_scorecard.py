"""The scorecard: executed directives judged at their horizon, calibration, P&L, slices."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deskgate.domain.funnel import Funnel
from deskgate.domain.governor import GovernorState
from deskgate.scorecard import UNKNOWN_CYCLE, Executed, price_at_or_after, score

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
H = timedelta(hours=24)


def ex(did, side="buy", conf=0.8, price=100.0, at=T0, agent="desk", cycle="intraday", asset="BTC", fee=1.0):
    return Executed(directive_id=did, agent=agent, asset=asset, side=side, confidence=conf, notional_usd=10_000.0, fee_usd=fee,
                    fill_price=price, filled_at=at, cycle=cycle)


def closes(*points):
    return sorted((T0 + timedelta(hours=h), p) for h, p in points)


def test_each_fill_is_judged_at_the_first_close_after_its_horizon():
    c = closes((23, 90.0), (24, 110.0), (25, 50.0))
    assert price_at_or_after(c, T0 + H) == 110.0
    assert price_at_or_after(c, T0 + H + timedelta(minutes=1)) == 50.0
    assert price_at_or_after(c, T0 + timedelta(hours=26)) is None
    card = score([ex("a"), ex("b", side="sell", conf=0.6), ex("c", at=T0 + timedelta(hours=3))], {"BTC": c}, H, T0 + timedelta(days=2),
                 funnel=Funnel(at=T0, policy_rejections_by_reason={"position": 3}, human_rejections_by_reason={"too big": 1}),
                 governor=GovernorState(interventions=2, damped=5))
    assert card.desk.executed == 3 and card.desk.judged == 2 and card.pending == 1  # "c" has no close 24 h after it yet
    a, b = card.judged
    assert (a.directive_id, a.hit, a.move_bps) == ("a", True, pytest.approx(1000.0))
    assert (b.directive_id, b.hit, b.move_bps) == ("b", False, pytest.approx(-1000.0))  # a sell into a rise
    assert a.pnl_usd == pytest.approx(10_000 * 0.10 - 1.0) and b.pnl_usd == pytest.approx(-10_000 * 0.10 - 1.0)
    assert card.desk.hit_rate == 0.5
    assert card.desk.brier == pytest.approx(((0.8 - 1) ** 2 + (0.6 - 0) ** 2) / 2)
    buckets = {(x.low, x.high): x for x in card.reliability}
    assert buckets[(0.8, 0.9)].count == 1 and buckets[(0.8, 0.9)].hit_rate == 1.0
    assert buckets[(0.6, 0.7)].count == 1 and buckets[(0.6, 0.7)].hit_rate == 0.0
    assert card.policy_rejections_by_reason == {"position": 3} and card.human_rejections_by_reason == {"too big": 1}
    assert card.governor_interventions == 2 and card.governor_damped == 5


def test_a_close_that_came_too_long_after_the_horizon_judges_nothing():
    late = closes((24 + 30, 110.0))  # market data stopped for 30 hours
    card = score([ex("a")], {"BTC": late}, H, T0 + timedelta(days=3))
    assert card.desk.judged == 0 and card.pending == 1
    assert score([ex("a")], {"BTC": closes((47, 110.0))}, H, T0 + timedelta(days=3)).desk.judged == 1  # within another horizon


def test_slices_by_agent_and_cycle_add_up_to_the_desk():
    c = {"BTC": closes((24, 110.0)), "ETH": closes((24, 90.0))}
    card = score([ex("a"), ex("b", agent="macro", cycle=UNKNOWN_CYCLE), ex("c", asset="ETH", side="sell")], c, H, T0 + timedelta(days=2))
    assert set(card.by_agent) == {"desk", "macro"} and set(card.by_cycle) == {"intraday", UNKNOWN_CYCLE}
    assert card.by_agent["desk"].executed == 2 and card.by_agent["desk"].hits == 2
    assert sum(x.pnl_usd for x in card.by_agent.values()) == pytest.approx(card.desk.pnl_usd)


@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.floats(0.0, 1.0), st.floats(50, 150), st.integers(0, 48),
                          st.sampled_from(["desk", "macro", "quant"])), max_size=30),
       st.lists(st.tuples(st.integers(0, 80), st.floats(50, 150)), max_size=30))
def test_the_numbers_always_hold_together(rows, points):
    executed = [ex(f"d{i}", side=s, conf=c, price=p, at=T0 + timedelta(hours=h), agent=a) for i, (s, c, p, h, a) in enumerate(rows)]
    card = score(executed, {"BTC": closes(*points)}, H, T0)
    d = card.desk
    assert d.hits <= d.judged <= d.executed == len(executed) and card.pending == d.executed - d.judged
    assert d.brier is None or 0.0 <= d.brier <= 1.0
    assert sum(b.count for b in card.reliability) == d.judged
    assert sum(x.executed for x in card.by_agent.values()) == d.executed
    assert sum(x.hits for x in card.by_agent.values()) == d.hits
    assert all(j.hit == (j.move_bps > 0) for j in card.judged)
