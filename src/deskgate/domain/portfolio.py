"""The portfolio as the factory publishes it on factory.status.portfolio."""

from __future__ import annotations

from datetime import datetime

from deskgate.domain.base import Message


class PositionLine(Message):
    asset: str
    venue: str
    quantity: float
    price: float
    notional_usd: float


class PortfolioSnapshot(Message):
    at: datetime
    cash_usd: float
    equity_usd: float
    peak_equity_usd: float
    drawdown_pct: float
    # The breaker measures drawdown from the peak since its last reset.
    breaker_peak_equity_usd: float
    breaker_drawdown_pct: float
    gross_exposure_usd: float
    leverage: float
    fees_paid_usd: float
    positions: list[PositionLine]
    pending_intentions: int
    reserved_usd: float
