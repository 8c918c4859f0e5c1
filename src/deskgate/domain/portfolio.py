"""The portfolio as the factory publishes it on factory.status.portfolio."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from deskgate.domain.base import Message


class PositionLine(Message):
    asset: str
    venue: str
    quantity: float
    price: float
    notional_usd: float
    # Cost basis; None when unknown (a position opened before it was kept) or from an older factory.
    avg_entry_price: float | None = None
    unrealised_pnl_usd: float | None = None


class ReservedLine(Message):
    """Exposure that staged and ordered directives reserve on one asset and side, all together."""

    asset: str
    side: Literal["buy", "sell"]
    notional_usd: float
    intentions: int = Field(ge=1)


class PolicyView(Message):
    """What the policy engine sees besides the book, so an agent can dry-run a directive
    against the beliefs the factory holds (`deskgate.client`'s `check`)."""

    prices: dict[str, float]
    reservations: list[ReservedLine]
    breaker_tripped: bool
    confidence_damping: float


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
    # None when unknown: realised P&L (fees not included) of a book kept before cost basis, or any open position's entry.
    realised_pnl_usd: float | None = None
    unrealised_pnl_usd: float | None = None
    positions: list[PositionLine]
    pending_intentions: int
    reserved_usd: float
    # None from a factory older than the dry run.
    policy: PolicyView | None = None
