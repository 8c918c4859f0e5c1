"""A seeded random walk (geometric Brownian motion) per asset, one OHLCV bar per step.

Deterministic for a given seed and starting prices, so a demo or test sees the
same market every time.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from deskgate.domain.market import Bar

SECONDS_PER_YEAR = 365.0 * 86_400.0


class Simulator:
    def __init__(
        self,
        assets: tuple[str, ...] | list[str],
        start_prices: dict[str, float],
        *,
        seed: int = 7,
        interval_seconds: float = 1.0,
        annual_volatility_pct: float = 60.0,
    ):
        self.assets = list(assets)
        self.prices = {a: float(start_prices.get(a, 100.0)) for a in self.assets}
        self.interval = interval_seconds
        self.sigma = annual_volatility_pct / 100.0 * math.sqrt(interval_seconds / SECONDS_PER_YEAR)
        self.rngs = {a: random.Random(f"{seed}:{a}") for a in self.assets}

    def step(self, ts: datetime) -> list[Bar]:
        bars = []
        for asset in self.assets:
            rng = self.rngs[asset]
            open_ = self.prices[asset]
            # Four sub-steps give the bar a plausible high and low.
            path = [open_]
            for _ in range(4):
                z = rng.gauss(0.0, 1.0)
                path.append(path[-1] * math.exp(-0.5 * (self.sigma / 2) ** 2 + (self.sigma / 2) * z))
            close = path[-1]
            self.prices[asset] = close
            bars.append(
                Bar(
                    asset=asset,
                    ts=ts,
                    open=open_,
                    high=max(path),
                    low=min(path),
                    close=close,
                    volume=round(rng.lognormvariate(3.0, 0.5), 4),
                    interval_seconds=self.interval,
                    source="simulator",
                )
            )
        return bars

    def bars(self, start: datetime, steps: int) -> list[Bar]:
        out = []
        for i in range(steps):
            out.extend(self.step(start + timedelta(seconds=self.interval * i)))
        return out
