"""Market data as the desk sees it: structured fields only, never free text."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import Field

from deskgate.domain.base import Message


class Bar(Message):
    """One OHLCV bar on market.data.bars.<ASSET>."""

    asset: str
    ts: datetime
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: float = Field(ge=0)
    interval_seconds: float = Field(gt=0)
    source: str

    @classmethod
    def at_price(cls, asset: str, price: float, source: str, interval_seconds: float = 1.0) -> Bar:
        """A flat bar: a scripted or test price, labelled by its source."""
        return cls(
            asset=asset,
            ts=datetime.now(timezone.utc),
            open=price,
            high=price,
            low=price,
            close=price,
            volume=0.0,
            interval_seconds=interval_seconds,
            source=source,
        )


Regime = Literal["calm", "normal", "volatile"]


class MarketSummary(Message):
    """A window's summary of one asset (30 minutes by default): what the agents read.

    `summary_id` names this data point, so an insight can cite it and the citation
    can be checked against what was published.
    """

    summary_id: str
    asset: str
    window_start: datetime
    window_end: datetime
    bars: int = Field(ge=1)
    open: float = Field(gt=0)
    close: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    return_pct: float
    realised_vol_pct: float = Field(ge=0)  # annualised, from the window's bar-to-bar log returns
    vol_change_pct: float | None  # against the previous window; None for the first
    volume: float = Field(ge=0)
    volume_vs_norm: float | None  # volume / mean of the trailing windows; None until there is a norm
    range_pct: float = Field(ge=0)  # (high - low) / open
    regime: Regime
    regime_changed: bool


class Signal(Message):
    """A signal model's view of one asset: a direction and how sure it is."""

    signal_id: str
    asset: str
    at: datetime
    model: str
    direction: Literal["up", "down", "flat"]
    drift_pct_per_day: float  # the estimated trend
    drift_std_pct_per_day: float = Field(gt=0)  # its uncertainty (one standard deviation)
    probability_up: float = Field(ge=0, le=1)  # P(trend > 0) under the model
    observations: int = Field(ge=0)
