"""The paper venue's fill: the latest price, moved against us by the slippage, plus a fee."""

from __future__ import annotations

from datetime import datetime

from deskgate.domain.execution import Fill, Order


def _answer(order: Order, now: datetime) -> dict:
    """What every answer to an order names: the order, its directive, and when."""
    return dict(
        fill_id=f"{order.order_id}-f",
        order_id=order.order_id,
        directive_id=order.directive_id,
        venue=order.venue,
        asset=order.asset,
        side=order.side,
        filled_at=now,
        reference_price=order.reference_price,
    )


def refused(order: Order, reason: str, now: datetime) -> Fill:
    """The executor's answer to an order whose chain does not verify: nothing filled."""
    return Fill(status="rejected", reason=f"refused by the executor: {reason}"[:2000], **_answer(order, now))


def fill_order(order: Order, market_price: float | None, slippage_bps: float, fee_bps: float, now: datetime) -> Fill:
    common = _answer(order, now)
    if market_price is None or not market_price > 0:
        return Fill(status="rejected", reason=f"paper venue has no price for {order.asset}", **common)
    sign = 1.0 if order.side == "buy" else -1.0
    price = market_price * (1.0 + sign * slippage_bps / 10_000.0)
    slip = (price - order.reference_price) / order.reference_price * 10_000.0 * sign
    return Fill(
        status="filled",
        quantity=order.notional_usd / price,
        price=price,
        notional_usd=order.notional_usd,
        fee_usd=order.notional_usd * fee_bps / 10_000.0,
        slippage_bps=slip,
        **common,
    )
