"""From an approved order to exactly what is sent to a venue: the client order id, the
symbol, and an amount and limit price rounded to the venue's precision and checked
against its minimums. Pure functions: the executor calls them, tests drive them.

The amount is sized so that the order cannot move the position by more than the
approved notional at the order's reference price: a buy spends at most the notional
(amount = notional / the higher of limit and reference), a sell sells notional /
reference price. The limit
price is the reference moved by the approval price band, rounded inward, so the
venue cannot fill further from what the principal saw than the factory would accept.

An order approved with leverage above 1 goes to the venue's linear perpetual (settled
in the quote), where `venues.<name>.derivatives` allows it: the same notional, counted
in contracts, on isolated margin at the approved leverage rounded down to a whole
number, so never more is borrowed than was approved.
"""

from __future__ import annotations

import hashlib
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from deskgate.domain.execution import Order
from deskgate.execution.venue import MarketRules, OrderTicket

#: 32 characters of letters and digits, starting with a letter: every venue accepts it
#: (okx: alphanumeric, at most 32; binance and bybit: at most 36).
CLIENT_ID_LENGTH = 32


def client_order_id(desk_id: str, directive_id: str) -> str:
    """The one client id an approved directive's order is ever sent under.

    The executor answers a directive once and sends its order at most once, so every
    lookup after a timeout, a redelivery or a restart asks for this same id. The desk's
    own id is in it: another desk (or this one, set up afresh) on the same venue account
    cannot have an order under it, even with the same directive ids."""
    seed = f"{desk_id}\x00{directive_id}".encode()
    return "dg" + hashlib.sha256(seed).hexdigest()[: CLIENT_ID_LENGTH - 2]


def symbol_for(asset: str, quote: str, *, perpetual: bool = False) -> str:
    """ccxt's unified symbol: "BTC/USDT" spot, "BTC/USDT:USDT" the linear perpetual."""
    return f"{asset}/{quote}:{quote}" if perpetual else f"{asset}/{quote}"


def is_perpetual(order: Order) -> bool:
    return order.leverage > 1.0


def venue_leverage(leverage: float) -> int:
    """The leverage set at the venue: the approved one rounded down, at least 1."""
    return max(1, math.floor(leverage))


def _round(value: float, step: float | None, rounding: str) -> float:
    if step is None:
        return value
    d_step = Decimal(repr(step))
    return float((Decimal(repr(value)) / d_step).to_integral_value(rounding=rounding) * d_step)


def not_allowed(order: Order, *, derivatives: bool) -> str | None:
    """Why the venue may not take this order at all, or None."""
    if is_perpetual(order) and not derivatives:
        return (f"leverage {order.leverage:g} needs a perpetual; venues.{order.venue}.derivatives is false, "
                "so this venue trades spot only")
    return None


def leaves_perpetual_open(order: Order, perpetual: float, *, ordered: bool = False) -> str | None:
    """Why an order at leverage 1 may not go to spot, with `perpetual` (signed, base) held in the
    asset's perpetual at its venue (or, `ordered`, on order there by us): one against that position
    would leave it open beside a spot holding that hides it (the sum matches the book), so it must
    be approved as a perpetual order."""
    if is_perpetual(order) or not perpetual:
        return None
    if (order.side == "buy") == (perpetual > 0):
        return None
    held = f"{'has ordered' if ordered else 'holds'} a perpetual {'long' if perpetual > 0 else 'short'} of {abs(perpetual):g} {order.asset}"
    return (f"{order.venue} {held}; a {order.side} at leverage 1 would go to spot and leave it open: "
            "approve it with leverage above 1 to trade the perpetual")


def ticket_for(order: Order, client_id: str, rules: MarketRules, band_pct: float, *, derivatives: bool) -> OrderTicket | str:
    """The ticket to send, or the reason the order cannot be sent as approved."""
    where = f"{order.venue} {rules.symbol}"
    if (why := not_allowed(order, derivatives=derivatives)) is not None:
        return why
    if is_perpetual(order):
        if not rules.perpetual:
            return f"leverage {order.leverage:g} needs a perpetual, and {where} is not one"
    elif rules.perpetual:
        return f"an order without leverage is sent to spot, and {where} is a perpetual"
    size = rules.contract_size or 1.0  # a perpetual's amounts are contracts of this much base
    band = band_pct / 100.0
    ref = order.reference_price
    if order.side == "buy":
        price = _round(ref * (1.0 + band), rules.price_step, ROUND_FLOOR)
        # Never more than the notional at the reference either (a coarse tick can round the limit below it).
        amount = _round(order.notional_usd / max(price, ref) / size, rules.amount_step, ROUND_FLOOR) if price > 0 else 0.0
    else:
        price = _round(ref * (1.0 - band), rules.price_step, ROUND_CEILING)
        amount = _round(order.notional_usd / ref / size, rules.amount_step, ROUND_FLOOR)
    if not price > 0:
        return f"limit price {ref:g} moved by the {band_pct:g}% band rounds to nothing at {where}'s price step {rules.price_step}"
    if not amount > 0:
        return f"{order.notional_usd:g} USD at {price:g} rounds to no amount at {where}'s amount step {rules.amount_step}"
    if rules.min_amount is not None and amount < rules.min_amount:
        return f"amount {amount:g} is below {where}'s minimum amount {rules.min_amount:g}"
    cost = amount * size * price
    if rules.min_cost is not None and cost < rules.min_cost:
        return f"notional {cost:.2f} is below {where}'s minimum notional {rules.min_cost:g}"
    return OrderTicket(
        client_id=client_id, symbol=rules.symbol, side=order.side, amount=amount, price=price, notional_usd=order.notional_usd,
        leverage=venue_leverage(order.leverage) if rules.perpetual else None, contract_size=rules.contract_size,
    )
