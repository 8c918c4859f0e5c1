"""Beliefs: what the policy engine knows about the desk when it evaluates a directive.

Positions are signed USD notionals per asset (all venues together). Pending
intentions (staged or ordered, not yet filled) reserve exposure in the direction
they would move it, so the engine sees the worst case: every pending buy filled
and none of the sells, or the other way round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from deskgate.policy.symbols import SymbolError, normalise_symbol


@dataclass(frozen=True, slots=True)
class Reservation:
    directive_id: str
    asset: str  # normalised base asset
    side: str  # "buy" | "sell"
    notional_usd: float


@dataclass(frozen=True, slots=True)
class VenueProblem:
    """Why a real venue may not take orders now (factory/venues.py), as a check reports it."""

    state: str  # unreachable | rate_limited | clock_skew | auth | held | stale | unknown
    observed: str
    limit: str
    reason: str


class Beliefs:
    """Mutable beliefs with running sums, so a check costs the same with 10 or 10,000 pending."""

    __slots__ = (
        "equity_usd",
        "peak_equity_usd",
        "positions",
        "prices",
        "breaker_tripped",
        "confidence_damping",
        "venue_health",
        "_pending",
        "_buy",
        "_sell",
        "_worst",
        "_gross",
        "_count",
    )

    def __init__(
        self,
        equity_usd: float,
        peak_equity_usd: float | None = None,
        positions: dict[str, float] | None = None,
        pending: list[Reservation] | None = None,
        breaker_tripped: bool = False,
        prices: dict[str, float] | None = None,
        confidence_damping: float = 1.0,
    ):
        self.equity_usd = float(equity_usd)
        self.peak_equity_usd = float(peak_equity_usd if peak_equity_usd is not None else equity_usd)
        self.positions: dict[str, float] = dict(positions or {})
        # None: these beliefs do not track prices (offline `policy check`); the
        # factory always passes a dict, so a directive for an unpriced asset is refused.
        self.prices = prices
        self.breaker_tripped = breaker_tripped
        self.confidence_damping = confidence_damping
        # Real venues (configured under `venues:`) by name: None when healthy, else why not.
        # A venue not in here is the paper venue, which is always there.
        self.venue_health: dict[str, VenueProblem | None] = {}
        self._pending: dict[str, Reservation] = {}
        self._buy: dict[str, float] = {}
        self._sell: dict[str, float] = {}
        self._worst: dict[str, float] = {}
        self._count: dict[tuple[str, str], int] = {}
        self._gross = 0.0
        for r in pending or ():
            self._pending[r.directive_id] = r
        self._recompute_all()

    # -- exposure -----------------------------------------------------------

    def position(self, asset: str) -> float:
        return self.positions.get(asset, 0.0)

    def pending_buy(self, asset: str) -> float:
        return self._buy.get(asset, 0.0)

    def pending_sell(self, asset: str) -> float:
        return self._sell.get(asset, 0.0)

    def worst_exposure(self, asset: str) -> float:
        """Largest absolute position the asset can reach if pending intentions fill."""
        return self._worst.get(asset, 0.0)

    @property
    def gross_exposure(self) -> float:
        """Sum over assets of the worst-case absolute exposure."""
        return self._gross

    @property
    def drawdown_pct(self) -> float:
        if self.peak_equity_usd <= 0:
            return 100.0
        return max(0.0, (self.peak_equity_usd - self.equity_usd) / self.peak_equity_usd * 100.0)

    # -- pending intentions ---------------------------------------------------

    @property
    def pending(self) -> dict[str, Reservation]:
        return self._pending

    def reserve(self, reservation: Reservation) -> None:
        if reservation.directive_id in self._pending:
            raise ValueError(f"directive {reservation.directive_id} already reserves exposure")
        self._pending[reservation.directive_id] = reservation
        self._add(reservation, +1)

    def release(self, directive_id: str) -> Reservation | None:
        reservation = self._pending.pop(directive_id, None)
        if reservation is not None:
            self._add(reservation, -1)
        return reservation

    def _add(self, r: Reservation, sign: int) -> None:
        book = self._buy if r.side == "buy" else self._sell
        count = self._count.get((r.asset, r.side), 0) + sign
        self._count[(r.asset, r.side)] = count
        # Running sums, reset to exactly zero when the last one goes, so float
        # error cannot outlive the intentions that caused it.
        book[r.asset] = book.get(r.asset, 0.0) + sign * r.notional_usd if count else 0.0
        self._recompute_asset(r.asset)

    def set_position(self, asset: str, notional_usd: float) -> None:
        if notional_usd == 0.0:
            self.positions.pop(asset, None)
        else:
            self.positions[asset] = notional_usd
        self._recompute_asset(asset)

    def replace_positions(self, positions: dict[str, float]) -> None:
        self.positions = dict(positions)
        self._recompute_all()

    def _recompute_asset(self, asset: str) -> None:
        p = self.positions.get(asset, 0.0)
        self._worst[asset] = max(abs(p + self._buy.get(asset, 0.0)), abs(p - self._sell.get(asset, 0.0)))
        self._gross = math.fsum(self._worst.values())

    def _recompute_all(self) -> None:
        self._buy.clear()
        self._sell.clear()
        self._worst.clear()
        self._count.clear()
        assets = set(self.positions) | {r.asset for r in self._pending.values()}
        for r in self._pending.values():
            book = self._buy if r.side == "buy" else self._sell
            book[r.asset] = book.get(r.asset, 0.0) + r.notional_usd
            self._count[(r.asset, r.side)] = self._count.get((r.asset, r.side), 0) + 1
        for asset in assets:
            p = self.positions.get(asset, 0.0)
            self._worst[asset] = max(abs(p + self._buy.get(asset, 0.0)), abs(p - self._sell.get(asset, 0.0)))
        self._gross = math.fsum(self._worst.values())

    def copy(self) -> Beliefs:
        out = Beliefs(
            self.equity_usd,
            self.peak_equity_usd,
            dict(self.positions),
            list(self._pending.values()),
            self.breaker_tripped,
            None if self.prices is None else dict(self.prices),
            self.confidence_damping,
        )
        out.venue_health = dict(self.venue_health)
        return out


# -- the beliefs file of `deskgate policy check` ---------------------------------


class PendingIntention(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    directive_id: str = Field(min_length=1)
    asset: str
    side: Literal["buy", "sell"]
    notional_usd: float = Field(gt=0)


class BeliefsFile(BaseModel):
    """The documented beliefs format (docs/POLICY.md)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    equity_usd: float
    peak_equity_usd: float
    positions: dict[str, float] = Field(default_factory=dict)
    pending: list[PendingIntention] = Field(default_factory=list)
    breaker: Literal["armed", "tripped"] = "armed"
    prices: dict[str, float] | None = None
    confidence_damping: float = Field(1.0, ge=0, le=1)

    @field_validator("positions", "prices")
    @classmethod
    def _assets(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        out: dict[str, float] = {}
        for raw, amount in value.items():
            try:
                base = normalise_symbol(raw).base
            except SymbolError as exc:
                raise ValueError(str(exc)) from None
            out[base] = out.get(base, 0.0) + amount
        return out

    def to_beliefs(self) -> Beliefs:
        pending = []
        for p in self.pending:
            try:
                base = normalise_symbol(p.asset).base
            except SymbolError as exc:
                raise ValueError(f"pending {p.directive_id}: {exc}") from None
            pending.append(Reservation(p.directive_id, base, p.side, p.notional_usd))
        return Beliefs(
            equity_usd=self.equity_usd,
            peak_equity_usd=self.peak_equity_usd,
            positions=self.positions,
            pending=pending,
            breaker_tripped=self.breaker == "tripped",
            prices=self.prices,
            confidence_damping=self.confidence_damping,
        )
