"""Market intelligence: window summaries, regimes with hysteresis, the Kalman trend signal."""

from __future__ import annotations

import math
import random
import statistics
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from deskgate.domain.market import Bar
from deskgate.marketdata.intelligence import KalmanTrend, RegimeDetector, WindowAggregator, realised_vol_pct

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def bar(i: int, close: float, *, seconds: float = 60.0, volume: float = 1.0, high=None, low=None, open_=None) -> Bar:
    o = open_ if open_ is not None else close
    return Bar(asset="BTC", ts=T0 + timedelta(seconds=i * seconds), open=o, high=high or max(o, close), low=low or min(o, close),
               close=close, volume=volume, interval_seconds=seconds, source="test")


def test_a_window_closes_into_a_summary_with_return_range_volume_and_vol():
    agg = WindowAggregator("BTC", window_s=1800)
    out = [agg.add(bar(i, 100.0 + i, volume=2.0, high=101.0 + i, open_=100.0 + i - 1 if i else 100.0)) for i in range(30)]
    assert out == [None] * 30  # minute bars 09:00..09:29 stay in the window
    s = agg.add(bar(30, 200.0))  # 09:30 closes it
    assert s is not None and s.summary_id == "sum:BTC:20261123T093000Z"
    assert (s.window_start, s.window_end, s.bars) == (T0, T0 + timedelta(minutes=30), 30)
    assert s.return_pct == (129.0 / 100.0 - 1) * 100 and s.volume == 60.0
    assert s.range_pct == (130.0 - 100.0) / 100.0 * 100
    assert s.realised_vol_pct > 0 and s.vol_change_pct is None and s.volume_vs_norm is None


def test_volume_against_its_norm_and_vol_change_appear_with_history():
    agg = WindowAggregator("BTC", window_s=600)
    rng = random.Random(1)
    price, summaries = 100.0, []
    for i in range(10 * 6):  # six 10-minute windows of minute bars
        price *= math.exp(rng.gauss(0, 0.001))
        s = agg.add(bar(i, price, volume=10.0 if i < 40 else 30.0))
        if s:
            summaries.append(s)
    assert len(summaries) == 5
    assert summaries[1].vol_change_pct is not None
    assert summaries[3].volume_vs_norm == 1.0  # 100 per window, as the three before it
    assert summaries[4].volume_vs_norm == 3.0  # the jump to 30 a bar is three times the norm


def test_realised_vol_is_annualised():
    closes = [100 * math.exp(0.01 * (-1) ** i) for i in range(101)]
    vol = realised_vol_pct(closes, 86400)
    rets = [math.log(b / a) for a, b in zip(closes, closes[1:])]
    assert math.isclose(vol, statistics.stdev(rets) * math.sqrt(365) * 100)
    assert realised_vol_pct([100, 101], 60) == 0.0


def test_regime_changes_need_confirmation():
    r = RegimeDetector(confirm=2)
    for _ in range(10):
        assert r.update(20.0) == ("normal", False)
    assert r.update(50.0) == ("normal", False)  # one hot window: not yet
    assert r.update(20.0) == ("normal", False)  # and it passed
    assert r.update(50.0) == ("normal", False)
    assert r.update(55.0) == ("volatile", True)  # two in a row: a change, reported once
    assert r.update(60.0) == ("volatile", False)
    assert r.update(5.0) == ("volatile", False)
    assert r.update(5.0) == ("calm", True)
    # The regime is relative to the trailing median: a lasting change becomes the new normal.
    for _ in range(40):
        r.update(5.0)
    assert r.regime == "normal"


def series(drift_per_bar: float, n: int, seed: int, sigma: float = 0.001) -> list[Bar]:
    rng, price, out = random.Random(seed), 100.0, []
    for i in range(n):
        price *= math.exp(drift_per_bar + rng.gauss(0, sigma))
        out.append(bar(i, price))
    return out


def run(model: KalmanTrend, bars: list[Bar]):
    sig = None
    for b in bars:
        sig = model.update(b) or sig
    return sig


def test_the_trend_signal_finds_a_trend_and_says_how_sure_it_is():
    up = run(KalmanTrend("BTC"), series(+0.0005, 800, seed=3))
    down = run(KalmanTrend("BTC"), series(-0.0005, 800, seed=4))
    assert up.direction == "up" and up.probability_up > 0.95 and up.drift_pct_per_day > 0
    assert down.direction == "down" and down.probability_up < 0.05
    assert up.signal_id.startswith("sig:BTC:kalman_trend:") and up.observations == 800
    early, later = run(KalmanTrend("BTC"), series(0.0, 20, seed=5)), run(KalmanTrend("BTC"), series(0.0, 800, seed=5))
    assert later.drift_std_pct_per_day < early.drift_std_pct_per_day  # more data, less doubt


def test_without_a_trend_the_signal_is_not_overconfident():
    probs = [run(KalmanTrend("BTC"), series(0.0, 400, seed=s)).probability_up for s in range(40)]
    assert 0.3 < statistics.fmean(probs) < 0.7
    assert sum(p > 0.975 or p < 0.025 for p in probs) <= 8  # about 5% by chance, far from "always sure"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), min_size=1, max_size=60))
def test_the_signal_is_well_formed_for_any_prices(prices):
    model = KalmanTrend("BTC")
    for i, p in enumerate(prices):
        sig = model.update(bar(i, p))
        assert sig is not None and 0.0 <= sig.probability_up <= 1.0 and sig.drift_std_pct_per_day > 0
        assert math.isfinite(sig.drift_pct_per_day)


def test_the_default_market_gives_believable_daily_moves_and_drifts():
    """The default simulator (1-second bars, 60% a year) through the default trend model: daily moves and
    the signal's drift per day are what BTC shows, not +50%/day read out of one second's noise."""
    import statistics
    from datetime import datetime, timezone

    from deskgate.config import Mission
    from deskgate.marketdata.intelligence import Intelligence
    from deskgate.marketdata.simulator import Simulator

    md = Mission().marketdata
    sim = Simulator(["BTC"], {"BTC": 65_000.0}, interval_seconds=md.interval_seconds, annual_volatility_pct=md.annual_volatility_pct, seed=md.seed)
    intel = Intelligence(window_s=md.summary_window_seconds, signal_every=md.signal_every_bars, sample_seconds=md.signal_sample_seconds)
    signals, closes = [], []
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    for bar in sim.bars(start, 36 * 3600):
        summary, signal = intel.add(bar)
        if signal is not None and bar.ts >= start.replace(hour=12):  # past the model's first hours
            signals.append(abs(signal.drift_pct_per_day))
        if summary is not None:
            closes.append(summary.close)
    drifts = sorted(signals)
    assert statistics.median(drifts) < 5.0 and drifts[int(0.95 * len(drifts))] < 15.0
    daily = abs(closes[47] / closes[0] - 1) * 100  # one day of 30-minute windows
    assert daily < 15.0
