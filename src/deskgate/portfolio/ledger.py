"""The desk's book: cash, holdings per asset and venue, marks, peaks.

Plain state and arithmetic, no I/O; the factory persists it and publishes
snapshots. Positions are linear (spot or perpetual-like), shorts allowed:
equity = cash + sum(quantity x mark).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from deskgate.domain.execution import Fill
from deskgate.domain.portfolio import PortfolioSnapshot, PositionLine


@dataclass
class Ledger:
    cash_usd: float
    peak_equity_usd: float
    breaker_peak_equity_usd: float
    holdings: dict[tuple[str, str], float] = field(default_factory=dict)  # (asset, venue) -> quantity
    marks: dict[str, float] = field(default_factory=dict)
    fees_paid_usd: float = 0.0

    @classmethod
    def opening(cls, starting_equity_usd: float) -> Ledger:
        return cls(starting_equity_usd, starting_equity_usd, starting_equity_usd)

    # -- valuation ------------------------------------------------------------

    def price(self, asset: str) -> float:
        return self.marks.get(asset, 0.0)

    @property
    def equity_usd(self) -> float:
        return self.cash_usd + math.fsum(q * self.price(a) for (a, _), q in self.holdings.items())

    def positions_by_asset(self) -> dict[str, float]:
        """Signed USD notional per asset, all venues together."""
        out: dict[str, float] = {}
        for (asset, _), qty in self.holdings.items():
            out[asset] = out.get(asset, 0.0) + qty * self.price(asset)
        return {a: v for a, v in out.items() if v != 0.0}

    @property
    def gross_exposure_usd(self) -> float:
        return math.fsum(abs(v) for v in self.positions_by_asset().values())

    @property
    def leverage(self) -> float:
        equity = self.equity_usd
        return self.gross_exposure_usd / equity if equity > 0 else math.inf

    @staticmethod
    def _drawdown(peak: float, equity: float) -> float:
        if peak <= 0:
            return 100.0
        return max(0.0, (peak - equity) / peak * 100.0)

    @property
    def drawdown_pct(self) -> float:
        return self._drawdown(self.peak_equity_usd, self.equity_usd)

    @property
    def breaker_drawdown_pct(self) -> float:
        return self._drawdown(self.breaker_peak_equity_usd, self.equity_usd)

    # -- changes --------------------------------------------------------------

    def _update_peaks(self) -> None:
        equity = self.equity_usd
        self.peak_equity_usd = max(self.peak_equity_usd, equity)
        self.breaker_peak_equity_usd = max(self.breaker_peak_equity_usd, equity)

    def mark(self, asset: str, price: float) -> None:
        if not (price > 0 and math.isfinite(price)):
            raise ValueError(f"mark for {asset} must be a positive finite price, got {price!r}")
        self.marks[asset] = price
        self._update_peaks()

    def apply_fill(self, fill: Fill) -> None:
        if fill.status != "filled":
            return
        key = (fill.asset, fill.venue)
        qty = fill.quantity if fill.side == "buy" else -fill.quantity
        self.holdings[key] = self.holdings.get(key, 0.0) + qty
        if abs(self.holdings[key]) < 1e-12:
            del self.holdings[key]
        self.cash_usd += -fill.notional_usd if fill.side == "buy" else fill.notional_usd
        self.cash_usd -= fill.fee_usd
        self.fees_paid_usd += fill.fee_usd
        # Trading at a price away from the mark moves equity; the fill price is news.
        self.marks.setdefault(fill.asset, fill.price)
        self._update_peaks()

    def rebase_breaker_peak(self) -> None:
        """After a principal resets the breaker, drawdown is measured from here."""
        self.breaker_peak_equity_usd = self.equity_usd

    # -- views ----------------------------------------------------------------

    def snapshot(self, at: datetime, pending_intentions: int = 0, reserved_usd: float = 0.0) -> PortfolioSnapshot:
        lines = [
            PositionLine(asset=a, venue=v, quantity=q, price=self.price(a), notional_usd=q * self.price(a))
            for (a, v), q in sorted(self.holdings.items())
        ]
        equity = self.equity_usd
        return PortfolioSnapshot(
            at=at,
            cash_usd=self.cash_usd,
            equity_usd=equity,
            peak_equity_usd=self.peak_equity_usd,
            drawdown_pct=self.drawdown_pct,
            breaker_peak_equity_usd=self.breaker_peak_equity_usd,
            breaker_drawdown_pct=self.breaker_drawdown_pct,
            gross_exposure_usd=self.gross_exposure_usd,
            leverage=self.leverage if equity > 0 else 0.0,
            fees_paid_usd=self.fees_paid_usd,
            positions=lines,
            pending_intentions=pending_intentions,
            reserved_usd=reserved_usd,
        )

    def to_state(self) -> dict:
        return {
            "cash_usd": self.cash_usd,
            "peak_equity_usd": self.peak_equity_usd,
            "breaker_peak_equity_usd": self.breaker_peak_equity_usd,
            "holdings": [[a, v, q] for (a, v), q in self.holdings.items()],
            "marks": self.marks,
            "fees_paid_usd": self.fees_paid_usd,
        }

    @classmethod
    def from_state(cls, state: dict) -> Ledger:
        return cls(
            cash_usd=state["cash_usd"],
            peak_equity_usd=state["peak_equity_usd"],
            breaker_peak_equity_usd=state["breaker_peak_equity_usd"],
            holdings={(a, v): q for a, v, q in state["holdings"]},
            marks=dict(state["marks"]),
            fees_paid_usd=state.get("fees_paid_usd", 0.0),
        )
