"""Market data as the desk sees it: structured fields only, never free text."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field

from deskgate.domain.base import Message


class Bar(Message):
    """One OHLCV bar on market.data.aggregated.<ASSET>."""

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
