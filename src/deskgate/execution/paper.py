"""The paper venue: fills at the latest price, moved against us by the slippage, plus a fee."""

from __future__ import annotations

from datetime import datetime

from deskgate.domain.execution import Fill, Order
from deskgate.execution.reports import answer_fields
from deskgate.execution.venue import MarketRules, OrderTicket, VenueOrderState, VenueReport


def refused(order: Order, reason: str, now: datetime) -> Fill:
    """The executor's answer to an order whose chain does not verify: nothing filled."""
    return Fill(fill_id=f"{order.order_id}-f", status="rejected", reason=f"refused by the executor: {reason}"[:2000], **answer_fields(order, now))


class PaperVenue:
    """The paper venue as a `Venue`: fills every order at once, at the latest price moved
    against us by the slippage, for exactly the approved notional."""

    local = True

    def __init__(self, name: str, prices: dict[str, float], slippage_bps: float, fee_bps: float):
        self.name = name
        self.prices = prices  # the executor's latest price per asset, shared
        self.slippage_bps = slippage_bps
        self.fee_bps = fee_bps
        self._orders: dict[str, VenueReport] = {}

    async def rules(self, symbol: str) -> MarketRules:
        return MarketRules(symbol=symbol)

    async def prepare(self, ticket: OrderTicket) -> OrderTicket | None:
        return None

    async def place(self, ticket: OrderTicket) -> VenueReport:
        asset = ticket.symbol.split("/")[0]
        price = self.prices.get(asset)
        if price is None or not price > 0:
            report = VenueReport(client_id=ticket.client_id, state=VenueOrderState.REJECTED, reason=f"paper venue has no price for {asset}")
        else:
            sign = 1.0 if ticket.side == "buy" else -1.0
            fill_price = price * (1.0 + sign * self.slippage_bps / 10_000.0)
            report = VenueReport(
                client_id=ticket.client_id,
                venue_order_id=f"paper-{ticket.client_id}",
                state=VenueOrderState.FILLED,
                filled=ticket.notional_usd / fill_price,
                cost=ticket.notional_usd,
                fee_usd=ticket.notional_usd * self.fee_bps / 10_000.0,
            )
        self._orders[ticket.client_id] = report
        return report

    async def lookup(self, client_id: str, symbol: str, since: datetime | None = None) -> VenueReport | None:
        return self._orders.get(client_id)

    async def cancel(self, client_id: str, symbol: str, since: datetime | None = None) -> VenueReport | None:
        return self._orders.get(client_id)  # nothing rests on the paper venue

    async def balances(self) -> dict[str, float]:
        return {}  # the factory's ledger is the paper venue's only account

    async def positions(self) -> dict[str, float]:
        return {}

    async def open_orders(self) -> list[str]:
        return []

    async def clock_skew_ms(self) -> float:
        return 0.0

    async def close(self) -> None:
        pass
