"""The desk's book: cash, holdings per asset and venue, marks, peaks, cost basis.

Plain state and arithmetic, no I/O; the factory persists it and publishes
snapshots. Positions are linear (spot or perpetual-like), shorts allowed:
equity = cash + sum(quantity x mark).

Cost basis is the average entry price per (asset, venue): adding to a position
averages it, reducing one realises P&L against it and leaves it unchanged, and a
trade through zero closes the old side and opens the new one at the trade's
price. So equity = starting equity + realised + unrealised - fees, where
unrealised = sum(quantity x (mark - entry)). A book saved before cost basis was
kept has no entries: they stay unknown (None) until the position is closed, and
its realised P&L is unknown for good.
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
    # (asset, venue) -> average entry price; None: opened before cost basis was kept.
    entries: dict[tuple[str, str], float | None] = field(default_factory=dict)
    # None: the book was kept before cost basis, so what was realised is unknown.
    realised_pnl_usd: float | None = 0.0

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

    def unrealised_usd(self, asset: str, venue: str) -> float | None:
        """P&L of the open position at the mark against its average entry; None if the entry is unknown."""
        entry = self.entries.get((asset, venue))
        qty = self.holdings.get((asset, venue), 0.0)
        return None if entry is None else qty * (self.price(asset) - entry)

    @property
    def unrealised_pnl_usd(self) -> float | None:
        parts = [self.unrealised_usd(a, v) for a, v in self.holdings]
        return None if any(p is None for p in parts) else math.fsum(parts)  # type: ignore[arg-type]

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
        # The cash price (notional / quantity), so cost basis and cash agree to the cent.
        held, entry, realised = book_trade(self.holdings.get(key, 0.0), self.entries.get(key), qty, fill.notional_usd / fill.quantity)
        if abs(held) < 1e-12:
            self.holdings.pop(key, None)
            self.entries.pop(key, None)
        else:
            self.holdings[key] = held
            self.entries[key] = entry
        if self.realised_pnl_usd is not None:
            self.realised_pnl_usd = None if realised is None else self.realised_pnl_usd + realised
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
            PositionLine(
                asset=a, venue=v, quantity=q, price=self.price(a), notional_usd=q * self.price(a),
                avg_entry_price=self.entries.get((a, v)), unrealised_pnl_usd=self.unrealised_usd(a, v),
            )
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
            realised_pnl_usd=self.realised_pnl_usd,
            unrealised_pnl_usd=self.unrealised_pnl_usd,
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
            "entries": [[a, v, e] for (a, v), e in self.entries.items()],
            "realised_pnl_usd": self.realised_pnl_usd,
        }

    @classmethod
    def from_state(cls, state: dict) -> Ledger:
        holdings = {(a, v): q for a, v, q in state["holdings"]}
        if "entries" in state:
            entries = {(a, v): e for a, v, e in state["entries"]}
            realised = state.get("realised_pnl_usd")
        else:  # saved before cost basis was kept: every entry, and what was realised, is unknown
            entries, realised = {key: None for key in holdings}, None
        return cls(
            cash_usd=state["cash_usd"],
            peak_equity_usd=state["peak_equity_usd"],
            breaker_peak_equity_usd=state["breaker_peak_equity_usd"],
            holdings=holdings,
            marks=dict(state["marks"]),
            fees_paid_usd=state.get("fees_paid_usd", 0.0),
            entries=entries,
            realised_pnl_usd=realised,
        )


def book_trade(held: float, entry: float | None, qty: float, price: float) -> tuple[float, float | None, float | None]:
    """A signed trade of `qty` at `price` against a position: (quantity, average entry, realised P&L).

    The realised P&L is None when part of a position whose entry is unknown was closed.
    """
    after = held + qty
    if held == 0.0 or (held > 0) == (qty > 0):  # opening or adding
        if held == 0.0:
            return after, price, 0.0
        return after, None if entry is None else (held * entry + qty * price) / after, 0.0
    closed = min(abs(qty), abs(held))
    realised = None if entry is None else closed * (price - entry) * (1.0 if held > 0 else -1.0)
    if abs(qty) < abs(held):  # reduced: the rest keeps its entry
        return after, entry, realised
    if abs(qty) == abs(held):
        return 0.0, None, realised
    return after, price, realised  # through zero: the new side opens at this price
