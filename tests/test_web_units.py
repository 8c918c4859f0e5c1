"""The Command Center's pure parts: the period funnel, throttling waits, charts, the queue table, metrics."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

import pytest

from hypothesis import given
from hypothesis import strategies as st

from deskgate.domain.approval import ApprovalOutcome
from deskgate.domain.breaker import BreakerState
from deskgate.domain.evaluation import PolicyEvaluation, PolicyVerdict
from deskgate.domain.funnel import LATENCY_BUCKETS_MS, Funnel, LatencyHistogram
from deskgate.people.accounts import login_wait_seconds
from deskgate.web.charts import DRAWDOWN, EQUITY, LEVERAGE, downsample, line_chart, nice_step, tick_label, time_ticks, y_scale
from deskgate.web.metrics import families
from deskgate.web.periods import PeriodError, chart_window, period_funnel

T0 = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def verdict(did: str, decision: str, at: datetime, reason: str | None = None) -> PolicyVerdict:
    ev = PolicyEvaluation(directive_id=did, decision="staged" if decision == "staged" else "rejected", explicit_approval=False, checks=[])
    return PolicyVerdict(directive_id=did, seq=1, decision=decision, primary_reason=reason, evaluation=ev, at=at)


def outcome(did: str, what: str, at: datetime, reason: str = "") -> ApprovalOutcome:
    return ApprovalOutcome(directive_id=did, outcome=what, at=at, reason=reason)


def test_the_period_funnel_follows_directives_received_in_the_period_to_where_they_stand():
    m = timedelta(minutes=1)
    verdicts = [
        verdict("old", "staged", T0 - 10 * m),  # before the period: not counted, even if decided inside it
        verdict("a", "staged", T0 + m),
        verdict("b", "staged", T0 + m),
        verdict("c", "staged", T0 + m),
        verdict("d", "staged", T0 + m),
        verdict("x", "rejected", T0 + m, "asset"),
        verdict("a", "duplicate", T0 + 2 * m, "duplicate"),
        verdict("late", "staged", T0 + 90 * m),  # after the period's end
    ]
    outcomes = [
        outcome("old", "ordered", T0 + 2 * m),
        outcome("a", "refused", T0 + 2 * m, "bad"),  # changes nothing
        outcome("a", "ordered", T0 + 3 * m),
        outcome("a", "executed", T0 + 4 * m),
        outcome("b", "rejected", T0 + 3 * m, "no"),
        outcome("b", "ordered", T0 + 4 * m),  # after a terminal state: ignored
        outcome("c", "invalidated", T0 + 3 * m, "price_band: moved 3%"),
        outcome("d", "awaiting_second_approval", T0 + 3 * m),
    ]
    f = period_funnel(verdicts, outcomes, T0, T0 + 2 * 60 * m, until=T0 + 60 * m)
    assert (f.received, f.staged, f.policy_rejected, f.duplicates) == (6, 4, 1, 1)
    assert (f.approved, f.executed, f.human_rejected, f.invalidated, f.pending) == (2, 1, 1, 1, 1)
    assert f.policy_rejections_by_reason == {"asset": 1}
    assert f.human_rejections_by_reason == {"no": 1} and f.invalidations_by_reason == {"price_band": 1}


@given(failures=st.integers(0, 40), allowed=st.integers(1, 10), ago=st.floats(0, 5000), cap=st.floats(1, 3600))
def test_login_waits_start_after_the_allowed_failures_double_and_are_capped(failures, allowed, ago, cap):
    now = T0
    wait = login_wait_seconds(failures, now - timedelta(seconds=ago), now, allowed, cap)
    assert 0 <= wait <= cap + 1e-6  # timedelta keeps microseconds
    if failures < allowed:
        assert wait == 0
    elif ago == 0:
        assert abs(wait - min(cap, 2.0 ** (failures - allowed))) < 1e-5
    more = login_wait_seconds(failures + 1, now - timedelta(seconds=ago), now, allowed, cap)
    assert more >= wait


def test_charts_escape_their_text_and_keep_the_ends_when_downsampling():
    points = [(T0 + timedelta(seconds=i), float(i)) for i in range(5000)]
    small = downsample(points, 100)
    assert len(small) == 100 and small[0] == points[0] and small[-1] == points[-1]
    svg = line_chart(points, title="<b>equity</b>", style=EQUITY)
    assert "<b>" not in svg and "&lt;b&gt;" in svg and svg.count("<polyline") == 1
    assert "no data in this period" in line_chart([], title="empty", style=EQUITY)


def test_charts_have_gridlines_round_ticks_and_a_value_on_hover():
    points = [(T0 + timedelta(minutes=10 * i), 100_000.0 + 40.0 * i) for i in range(13)]  # two hours
    svg = line_chart(points, title="equity (USD)", style=EQUITY)
    ys = re.findall(r'class="tick y-tick">([^<]+)<', svg)
    xs = re.findall(r'class="tick x-tick">([^<]+)<', svg)
    assert 3 <= len(ys) <= 8 and all(re.fullmatch(r"[0-9,]+", y) for y in ys), ys
    assert xs[0] == "12:00" and "13:00" in xs and "14:00" in xs, xs
    assert svg.count('class="grid"') == len(ys) + len(xs)
    assert svg.count("<title>") == 13 and "<title>2026-11-20 12:10:00 UTC: 100,040.00 USD</title>" in svg
    assert "e+" not in svg


def test_a_small_change_on_a_large_book_is_not_a_cliff():
    """$88 of fees on a $1M book: the axis spans at least 1% of the value, so the drop is under 1% of the chart."""
    s = y_scale([1_000_000.0, 999_912.0], min_span_ratio=0.01)
    assert s.hi - s.lo >= 10_000 and s.lo <= 999_912 and s.hi >= 1_000_000
    assert 88 / (s.hi - s.lo) < 0.01
    # A real move is still shown at full height.
    big = y_scale([1_000_000.0, 800_000.0], min_span_ratio=0.01)
    assert big.hi - big.lo <= 300_000


@given(values=st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=50), zero=st.booleans(), ratio=st.sampled_from([0.0, 0.01]))
def test_the_scale_covers_its_values_with_round_evenly_spaced_ticks(values, zero, ratio):
    s = y_scale(values, min_span_ratio=ratio, include_zero=zero)
    slack = 1e-6 * (s.hi - s.lo)  # within a millionth of the axis: the same pixel
    assert s.lo <= min(values) + slack and s.hi >= max(values) - slack
    assert s.ticks[0] == s.lo and s.ticks[-1] == s.hi and 2 <= len(s.ticks) <= 12
    mantissa = s.step / 10 ** math.floor(math.log10(s.step))
    assert any(abs(mantissa - m) < 1e-9 for m in (1.0, 2.0, 2.5, 5.0))
    if zero:
        assert s.lo <= 0 <= s.hi


def test_flat_and_empty_series_get_sensible_axes():
    flat = y_scale([0.0, 0.0, 0.0], min_span=1.0, include_zero=True)  # a desk that never lost anything
    assert flat.lo == 0.0 and flat.hi == 1.0 and min(flat.ticks) >= 0  # no "-1.00%"
    assert y_scale([], min_span=0.5, include_zero=True).lo == 0.0
    lev = y_scale([0.0], min_span=0.5, include_zero=True)
    assert (lev.lo, lev.hi) == (0.0, 0.6) or (lev.lo, lev.hi) == (0.0, 0.5)
    svg = line_chart([(T0, 0.0), (T0 + timedelta(hours=1), 0.0)], title="drawdown", style=DRAWDOWN)
    ticks = re.findall(r'class="tick y-tick">([^<]+)<', svg)
    assert ticks[0] in ("0%", "0.00%") and not any(t.startswith(("−", "-")) for t in ticks), ticks
    equity = y_scale([1_000_000.0], min_span_ratio=0.01)
    assert equity.lo < 1_000_000 < equity.hi
    one = line_chart([(T0, 2.0)], title="one point", style=LEVERAGE)
    assert one.count("<title>") == 1


def test_nice_steps_and_tick_labels():
    assert nice_step(10, 5) == 2 and nice_step(1, 4) == 0.25 and nice_step(12_000, 4) == 5_000
    assert tick_label(1_005_000.0, 2_500.0) == "1,005,000" and tick_label(0.25, 0.25, "%") == "0.25%" and tick_label(0.5, 0.1, "x") == "0.5x"
    assert tick_label(-2.0, 1.0, "%") == "−2%"


def test_time_ticks_fall_on_round_times_for_any_span():
    ticks = time_ticks(T0 + timedelta(minutes=7), T0 + timedelta(hours=3))
    assert [label for _, label in ticks] == ["12:30", "13:00", "13:30", "14:00", "14:30", "15:00"]
    days = time_ticks(datetime(2026, 1, 5, tzinfo=timezone.utc), datetime(2026, 1, 10, tzinfo=timezone.utc))
    assert [label for _, label in days] == ["Jan 05", "Jan 06", "Jan 07", "Jan 08", "Jan 09", "Jan 10"]
    seconds = time_ticks(T0, T0 + timedelta(seconds=20))
    assert seconds[0][1] == "12:00:00" and len(seconds) <= 7
    assert time_ticks(T0, T0) == [(T0, "12:00:00")]


def test_the_chart_window_follows_the_snapshots_clock_when_it_is_far_from_now():
    now = T0
    assert chart_window("24h", now - timedelta(minutes=1), now) == (now - timedelta(days=1), now)  # a live desk
    assert chart_window("24h", None, now) == (now - timedelta(days=1), now)
    replay_end = datetime(2026, 1, 10, tzinfo=timezone.utc)  # a replay's simulated time, months before now
    assert chart_window("24h", replay_end, now) == (replay_end - timedelta(days=1), replay_end)
    assert chart_window("1h", now - timedelta(hours=3), now) == (now - timedelta(hours=4), now - timedelta(hours=3))  # a stopped desk
    future = now + timedelta(days=3)
    assert chart_window("7d", future, now) == (future - timedelta(days=7), future)
    assert chart_window("all", replay_end, now) == (None, now)
    with pytest.raises(PeriodError, match="unknown period"):
        chart_window("fortnight", None, now)


def test_metrics_histogram_is_cumulative_and_ends_at_inf():
    per_bucket = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    per_bucket[0], per_bucket[3], per_bucket[-1] = 2, 5, 1
    h = LatencyHistogram.from_buckets(per_bucket, 42.0)
    assert h.count == 8 and h.cumulative[0] == 2 and h.cumulative[3] == 7 and h.cumulative[-1] == 7
    fams = families(Funnel(at=T0, staged=3, evaluation_latency=h), BreakerState(state="tripped"), None, 2)
    hist = next(f for f in fams if f.name == "deskgate_policy_evaluation_seconds")
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 8
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)
    tripped = next(f for f in fams if f.name == "deskgate_breaker_tripped")
    assert tripped.samples[0].value == 1


def test_failures_are_forgotten_after_a_quiet_hour_and_in_flight_attempts_count(tmp_path):
    from deskgate.paths import DataDir
    from deskgate.people.accounts import Accounts

    clock = [T0]
    accounts = Accounts.open(DataDir.at(tmp_path).ensure(), clock=lambda: clock[0])
    key = ["addr:10.0.0.1"]
    for _ in range(25):
        accounts.record_login_failure(key)
    assert accounts.login_wait(key, 20, 900) == 32  # 2 ** (25 - 20)
    clock[0] += timedelta(minutes=61)
    assert accounts.login_wait(key, 20, 900) == 0
    accounts.record_login_failure(key)
    assert accounts.login_wait(key, 1, 900) == 1  # counting again from one
    # Five attempts still being checked count as five failures made just now.
    assert accounts.login_wait(["user:x"], 5, 900, in_flight={"user:x": 4}) == 0
    assert accounts.login_wait(["user:x"], 5, 900, in_flight={"user:x": 5}) == 1


def entry(did: str, *, asset="BTC", side="buy", notional=1_000.0, explicit=False, minutes=0, confidence=0.8, agent="dispatcher", venue="binance"):
    from deskgate.domain.approval import PositionContext
    from deskgate.domain.directive import DecisionMemo
    from deskgate.web.desk import QueueEntry

    staged = T0 + timedelta(minutes=minutes)
    memo = DecisionMemo(signal_evidence="s", position_context="p", proposed_action="a", expected_outcome="e")
    context = PositionContext(equity_usd=1e5, current_position_usd=0, pending_same_side_usd=0, post_trade_position_usd=notional,
                              post_trade_position_pct=notional / 1e3, gross_leverage_after=0.1, drawdown_pct=0)
    return QueueEntry(
        directive_id=did, state="staged", pending=True, asset=asset, venue=venue, side=side, notional_usd=notional, leverage=1.0,
        confidence=confidence, agent=agent, explicit=explicit, four_eyes=False, memo=memo, checks=[], context=context,
        price_at_staging=1.0, price_now=1.0, price_move_pct=0.0, price_band_pct=2.0, staged_at=staged,
        expires_at=staged + timedelta(minutes=15), seconds_left=900, approved_by=[], outcomes=[],
    )


def test_the_queue_view_sorts_filters_and_names_a_bad_parameter():
    from deskgate.web.queue_table import QueueQueryError, parse_query, queue_rows, sort_links

    entries = [
        entry("a", notional=500, minutes=0),
        entry("b", asset="ETH", side="sell", notional=3_000, minutes=1, venue="okx"),
        entry("c", asset="SOL", notional=60_000, explicit=True, minutes=2, agent="outside-agent"),
        entry("d", notional=3_000, minutes=3, confidence=0.7),
    ]

    def ids(**params):
        return [e.directive_id for e in queue_rows(entries, parse_query(params))]

    assert ids() == ["a", "b", "c", "d"]  # oldest first
    assert ids(sort="notional", dir="desc") == ["c", "b", "d", "a"]  # ties keep the oldest first
    assert ids(sort="notional") == ["a", "b", "d", "c"]
    assert ids(sort="asset") == ["a", "d", "b", "c"] and ids(sort="confidence", dir="desc")[-1] == "d"
    assert ids(q="eth") == ["b"] and ids(q="OKX") == ["b"] and ids(q="outside") == ["c"] and ids(q="  ") == ["a", "b", "c", "d"]
    assert ids(side="sell") == ["b"] and ids(kind="explicit") == ["c"] and ids(kind="standard", side="buy") == ["a", "d"]
    assert ids(unknown="ignored") == ["a", "b", "c", "d"]
    with pytest.raises(QueueQueryError, match=r"sort: .*'notional'") as exc:
        parse_query({"sort": "price", "dir": "up"})
    assert "dir:" in str(exc.value)
    with pytest.raises(QueueQueryError, match="q: "):
        parse_query({"q": "x" * 101})
    links = sort_links(parse_query({"sort": "notional", "dir": "desc", "q": "btc"}))
    assert links["notional"] == {"href": "?sort=notional&dir=asc&q=btc", "aria": "descending"}
    assert links["asset"] == {"href": "?sort=asset&dir=asc&q=btc", "aria": "none"}
    assert links["confidence"]["href"] == "?sort=confidence&dir=desc&q=btc"  # the biggest first on a first click
