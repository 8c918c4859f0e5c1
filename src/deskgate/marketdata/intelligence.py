"""Market intelligence for the agents, from bars: window summaries, volatility regimes, a trend signal.

Pure and deterministic: each takes bars (or summaries) in time order and returns
structured fields only. Services publish what these return; tests call them
directly.

- `WindowAggregator`: bars → one `MarketSummary` per window (30 minutes by default,
  aligned to the clock), with return, annualised realised volatility and its
  change, volume against the trailing norm, and range.
- `RegimeDetector`: a window's realised volatility against the median of the
  trailing windows. The ratio above `high` (1.5) is *volatile*, below `low` (0.67)
  *calm*, otherwise *normal*; a change needs `confirm` (2) windows in a row, so one
  odd window does not flip the regime. Being relative to the trailing day, a
  lasting change becomes the new normal once it fills half the history.
- `KalmanTrend`: a local linear trend model of log price (level and slope), the
  built-in `SignalModel`; it reports the slope's mean *and* its standard deviation,
  and P(slope > 0).

A desk's own model implements `SignalModel`: a `name`, and `update(bar)` returning
a `Signal` or None.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

from deskgate.domain.market import Bar, MarketSummary, Regime, Signal

SECONDS_PER_YEAR = 365.0 * 86400.0


class SignalModel(Protocol):
    """What a signal model offers the desk. Bars arrive in time order, one asset per instance."""

    name: str

    def update(self, bar: Bar) -> Signal | None: ...


# -- regimes ---------------------------------------------------------------------------


@dataclass
class RegimeDetector:
    high: float = 1.5
    low: float = 0.67
    confirm: int = 2
    history: int = 48  # trailing windows for the median (a day of 30-minute windows)
    regime: Regime = "normal"
    _vols: deque = field(default_factory=deque)
    _pending: Regime | None = None
    _streak: int = 0

    def classify(self, vol: float) -> Regime:
        """The regime this window's volatility points to, against the trailing median."""
        if len(self._vols) < 3:
            return "normal"
        median = statistics.median(self._vols)
        if median <= 0:
            return "normal" if vol <= 0 else "volatile"
        ratio = vol / median
        return "volatile" if ratio > self.high else "calm" if ratio < self.low else "normal"

    def update(self, vol: float) -> tuple[Regime, bool]:
        """(regime after this window, whether it changed now)."""
        seen = self.classify(vol)
        self._vols.append(vol)
        while len(self._vols) > self.history:
            self._vols.popleft()
        if seen == self.regime:
            self._pending, self._streak = None, 0
            return self.regime, False
        if seen == self._pending:
            self._streak += 1
        else:
            self._pending, self._streak = seen, 1
        if self._streak >= self.confirm:
            self.regime, self._pending, self._streak = seen, None, 0
            return self.regime, True
        return self.regime, False


# -- window summaries ------------------------------------------------------------------------


def window_start(ts: datetime, window_s: float) -> datetime:
    epoch = ts.timestamp()
    return datetime.fromtimestamp(epoch - (epoch % window_s), timezone.utc)


def realised_vol_pct(closes: list[float], bar_seconds: float) -> float:
    """Annualised standard deviation of bar-to-bar log returns, in percent (0 with fewer than 3 closes)."""
    if len(closes) < 3:
        return 0.0
    rets = [math.log(b / a) for a, b in zip(closes, closes[1:])]
    return statistics.stdev(rets) * math.sqrt(SECONDS_PER_YEAR / bar_seconds) * 100.0


@dataclass
class WindowAggregator:
    """Bars of one asset in, a summary out each time a window closes."""

    asset: str
    window_s: float = 1800.0
    norm_windows: int = 48
    regimes: RegimeDetector = field(default_factory=RegimeDetector)
    _bars: list[Bar] = field(default_factory=list)
    _start: datetime | None = None
    _last_vol: float | None = None
    _volumes: deque = field(default_factory=deque)

    def add(self, bar: Bar) -> MarketSummary | None:
        """Add a bar; returns the summary of the window it closed, if it closed one."""
        start = window_start(bar.ts, self.window_s)
        out = None
        if self._start is not None and start > self._start and self._bars:
            out = self._close()
        if self._start is None or start > self._start:
            self._start, self._bars = start, []
        if start < self._start:
            return out  # a late bar for a closed window: already summarised
        self._bars.append(bar)
        return out

    def flush(self) -> MarketSummary | None:
        """Summarise the open window now (at the end of a replay)."""
        return self._close() if self._bars else None

    def _close(self) -> MarketSummary:
        bars, start = self._bars, self._start
        assert start is not None
        self._bars = []
        closes = [bars[0].open, *(b.close for b in bars)]
        vol = realised_vol_pct(closes, bars[0].interval_seconds)
        volume = sum(b.volume for b in bars)
        norm = statistics.fmean(self._volumes) if len(self._volumes) >= 3 else None
        regime, changed = self.regimes.update(vol)
        end = start + timedelta(seconds=self.window_s)
        summary = MarketSummary(
            summary_id=f"sum:{self.asset}:{end:%Y%m%dT%H%M%SZ}",
            asset=self.asset,
            window_start=start,
            window_end=end,
            bars=len(bars),
            open=bars[0].open,
            close=bars[-1].close,
            high=max(b.high for b in bars),
            low=min(b.low for b in bars),
            return_pct=(bars[-1].close / bars[0].open - 1.0) * 100.0,
            realised_vol_pct=vol,
            vol_change_pct=None if not self._last_vol else (vol / self._last_vol - 1.0) * 100.0,
            volume=volume,
            volume_vs_norm=None if not norm else volume / norm,
            range_pct=(max(b.high for b in bars) - min(b.low for b in bars)) / bars[0].open * 100.0,
            regime=regime,
            regime_changed=changed,
        )
        self._last_vol = vol
        self._volumes.append(volume)
        while len(self._volumes) > self.norm_windows:
            self._volumes.popleft()
        return summary


# -- the built-in signal ----------------------------------------------------------------------


@dataclass
class KalmanTrend:
    """Local linear trend on log price: level_t = level + slope + noise, slope_t = slope + small noise.

    The level's noise is the asset's own bar-to-bar variance, estimated as it goes
    (an exponentially weighted mean of squared log returns), so one model fits 1-second
    simulator bars and daily CSV bars alike. The slope is the trend; its variance says
    how sure the model is. It starts wide, so the model says "flat, unsure" until the
    data show a trend.
    """

    asset: str
    name: str = "kalman_trend"
    slope_drift: float = 1e-4  # slope process variance, as a fraction of the return variance
    tick_noise: float = 1e-2  # observation variance, as a fraction of the return variance
    halflife_bars: float = 200.0  # of the return-variance estimate
    up: float = 0.6  # P(up) above this: "up"; below 1 - this: "down"; else "flat"
    every: int = 1  # emit a signal every `every` bars
    _x: list[float] | None = None  # [level, slope]
    _p: list[list[float]] = field(default_factory=lambda: [[0.0, 0.0], [0.0, 0.0]])
    _var: float | None = None
    _last: float | None = None
    _n: int = 0
    _step: float | None = None  # seconds between observations

    def update(self, bar: Bar) -> Signal | None:
        self.observe(bar)
        if self._n % self.every:
            return None
        return self.signal(bar)

    def observe(self, bar: Bar) -> None:
        """Take one observation; `bar.interval_seconds` is the time since the previous one (a day's
        drift is the slope per step times the steps in a day)."""
        self._step = bar.interval_seconds
        z = math.log(bar.close)
        self._n += 1
        if self._last is not None:
            r2 = (z - self._last) ** 2
            a = 1.0 - 0.5 ** (1.0 / self.halflife_bars)
            self._var = r2 if self._var is None else (1 - a) * self._var + a * r2
        self._last = z
        var = max(self._var or 1e-8, 1e-14)
        if self._x is None:
            self._x = [z, 0.0]
            self._p = [[var * self.tick_noise, 0.0], [0.0, var]]  # a slope as large as a typical move, unsure
        else:
            (level, slope), p = self._x, self._p
            # predict
            level, slope = level + slope, slope
            p00 = p[0][0] + 2 * p[0][1] + p[1][1] + var
            p01 = p[0][1] + p[1][1]
            p11 = p[1][1] + var * self.slope_drift
            # update with the observed log price
            s = p00 + var * self.tick_noise
            k0, k1 = p00 / s, p01 / s
            innovation = z - level
            level, slope = level + k0 * innovation, slope + k1 * innovation
            self._x = [level, slope]
            self._p = [[(1 - k0) * p00, (1 - k0) * p01], [(1 - k0) * p01, p11 - k1 * p01]]

    def signal(self, bar: Bar) -> Signal:
        assert self._x is not None
        slope, var = self._x[1], max(self._p[1][1], 1e-30)
        per_day = 86400.0 / (self._step or bar.interval_seconds)
        std = math.sqrt(var)
        p_up = 0.5 * (1.0 + math.erf(slope / (std * math.sqrt(2.0))))
        direction = "up" if p_up > self.up else "down" if p_up < 1 - self.up else "flat"
        return Signal(
            signal_id=f"sig:{self.asset}:{self.name}:{bar.ts:%Y%m%dT%H%M%SZ}",
            asset=self.asset,
            at=bar.ts,
            model=self.name,
            direction=direction,
            drift_pct_per_day=slope * per_day * 100.0,
            drift_std_pct_per_day=std * per_day * 100.0,
            probability_up=p_up,
            observations=self._n,
        )


class Intelligence:
    """Summaries and signals for every asset, fed bar by bar: what the market-data service and a replay publish."""

    def __init__(self, *, window_s: float, signal_every: int, sample_seconds: float = 300.0):
        self.window_s = window_s
        self.signal_every = signal_every
        # The trend model sees one close per `sample_seconds` of bar time: fed every 1-second bar, a
        # day's drift is the slope of one second times 86,400, and reads +50%/day out of noise.
        self.sample_seconds = sample_seconds
        self._aggregators: dict[str, WindowAggregator] = {}
        self._signals: dict[str, KalmanTrend] = {}
        self._sampled: dict[str, datetime] = {}
        self._bars: dict[str, int] = {}

    def add(self, bar: Bar) -> tuple[MarketSummary | None, Signal | None]:
        asset = bar.asset
        if asset not in self._aggregators:
            self._aggregators[asset] = WindowAggregator(asset, window_s=self.window_s)
            self._signals[asset] = KalmanTrend(asset)
            self._bars[asset] = 0
        summary = self._aggregators[asset].add(bar)
        trend, last = self._signals[asset], self._sampled.get(asset)
        elapsed = (bar.ts - last).total_seconds() if last is not None else bar.interval_seconds
        if last is None or elapsed >= self.sample_seconds:
            # One step is the sampling interval (or a bar, when bars are longer), from the first sample on: a gap
            # in the data is a missing step, not a longer one.
            trend.observe(bar.model_copy(update={"interval_seconds": max(self.sample_seconds, bar.interval_seconds)}))
            self._sampled[asset] = bar.ts
        self._bars[asset] += 1
        signal = trend.signal(bar) if self._bars[asset] % self.signal_every == 0 else None
        return summary, signal
