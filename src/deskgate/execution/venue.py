"""What the executor needs of a venue, whatever the venue is: place an order under our
own client id, look it up by that id, cancel it, and say what the account holds.

The paper venue (execution/paper.py) and the ccxt venues (execution/ccxt_venue.py)
both implement `Venue`. Errors are split by what the executor may do next:
`VenueRefused` means the venue said no and nothing was placed; `VenueUnreachable`
means the outcome is unknown (a timeout, a rate limit, an answer that does not parse),
so the order must be looked up by its client id before anything is retried.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class VenueOrderState(StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


#: States after which nothing more can fill.
ENDED = frozenset({VenueOrderState.FILLED, VenueOrderState.CANCELLED, VenueOrderState.REJECTED, VenueOrderState.EXPIRED})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MarketRules(_Model):
    """A market's precision and minimums, as the venue publishes them. A perpetual's amounts
    (step, minimum) are in contracts of `contract_size` base each."""

    symbol: str
    amount_step: float | None = Field(None, gt=0)  # amounts are multiples of this
    price_step: float | None = Field(None, gt=0)
    min_amount: float | None = Field(None, ge=0)
    min_cost: float | None = Field(None, ge=0)  # minimum notional, in the quote currency
    contract_size: float | None = Field(None, gt=0)  # a linear perpetual; None: spot

    @property
    def perpetual(self) -> bool:
        return self.contract_size is not None


class OrderTicket(_Model):
    """Exactly what is sent: a limit order under our client id. On a perpetual (`leverage`
    set), `amount` is in contracts of `contract_size` base, on isolated margin at `leverage`."""

    client_id: str = Field(min_length=1, max_length=32)
    symbol: str
    side: str = Field(pattern="^(buy|sell)$")
    amount: float = Field(gt=0)
    price: float = Field(gt=0)
    # The approved notional; the paper venue fills exactly this, a real venue `amount`.
    notional_usd: float = Field(gt=0)
    leverage: int | None = Field(None, ge=1)
    contract_size: float | None = Field(None, gt=0)
    # Sent reduce-only: it only reduces the position (and so took no margin and set no leverage).
    reduce_only: bool = False

    @property
    def perpetual(self) -> bool:
        return self.leverage is not None

    def base_amount(self, amount: float | None = None) -> float:
        """`amount` (default the ticket's), in contracts on a perpetual, as base currency."""
        amount = self.amount if amount is None else amount
        return amount * self.contract_size if self.contract_size is not None else amount


class VenueReport(_Model):
    """The venue's account of one order, cumulative since it was placed."""

    client_id: str
    venue_order_id: str = ""
    state: VenueOrderState
    filled: float = Field(0.0, ge=0)  # base amount filled so far (a perpetual's contracts times their size)
    cost: float = Field(0.0, ge=0)  # quote spent or received so far
    fee_usd: float = Field(0.0, ge=0)
    reason: str = ""
    # What the venue says the order is, to check an order found by client id is ours.
    side: str | None = None
    amount: float | None = None  # in the ticket's units (contracts on a perpetual)

    @property
    def ended(self) -> bool:
        return self.state in ENDED


class VenueError(Exception):
    """Something about a venue call, in words a desk can act on."""


class VenueRefused(VenueError):
    """The venue answered no (insufficient balance, below a minimum, ...): nothing was placed."""


class VenueUnreachable(VenueError):
    """No usable answer (down, timed out, rate-limited, unparseable): the outcome is unknown."""

    def __init__(self, message: str, *, rate_limited: bool = False):
        super().__init__(message)
        self.rate_limited = rate_limited


class VenueAuthFailed(VenueError):
    """The venue refused our key: nothing will work until a human fixes it."""


class Venue(Protocol):
    name: str
    #: True when the venue lives in this process (the paper venue): placing cannot
    #: half-happen, so nothing needs recording before it.
    local: bool

    async def rules(self, symbol: str) -> MarketRules: ...

    async def prepare(self, ticket: OrderTicket) -> OrderTicket | None:
        """What must be set before a perpetual's `ticket` is sent (its margin mode and leverage),
        and the ticket to send if it changes (reduce-only). Called before the send is recorded:
        VenueRefused means the order cannot be sent; anything else is retried, nothing was placed."""

    async def place(self, ticket: OrderTicket) -> VenueReport: ...

    async def lookup(self, client_id: str, symbol: str, since: datetime | None = None) -> VenueReport | None:
        """The order under our client id, or None if the venue has none. `since`: when it was sent
        (a venue whose history is searched by time window looks from there)."""

    async def cancel(self, client_id: str, symbol: str, since: datetime | None = None) -> VenueReport | None: ...

    async def balances(self) -> dict[str, float]: ...

    async def positions(self) -> dict[str, float]:
        """Each asset's perpetual position in base currency, signed (short below zero)."""

    async def open_orders(self) -> list[str]: ...

    async def clock_skew_ms(self) -> float: ...

    async def close(self) -> None: ...
