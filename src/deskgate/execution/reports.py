"""From the venue's cumulative account of an order to the fills the factory reads.

A venue reports an order cumulatively (filled so far, cost so far). The factory wants
each new part once: this turns a report and what was already answered into the next
fills. Pure, so that the same report read twice (a restart, a second poll) answers
nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deskgate.domain.execution import Fill, Order
from deskgate.execution.venue import VenueOrderState, VenueReport

#: Amounts closer than this (relative) are the same amount: venues round.
EPSILON = 1e-9

_END_STATUS = {
    VenueOrderState.CANCELLED: "cancelled",
    VenueOrderState.EXPIRED: "expired",
    VenueOrderState.REJECTED: "refused",
    VenueOrderState.FILLED: "ended",
}


@dataclass(frozen=True)
class Answered:
    """What has been answered for an order so far (kept with the order, so a restart knows)."""

    filled: float = 0.0
    cost: float = 0.0
    fee_usd: float = 0.0
    count: int = 0  # fills published so far: the next fill's number
    ended: bool = False


def answer_fields(order: Order, now: datetime, client_id: str = "", venue_order_id: str = "") -> dict:
    """What every answer to an order names: the order, its directive, when, and the venue's ids."""
    return dict(
        order_id=order.order_id,
        directive_id=order.directive_id,
        venue=order.venue,
        asset=order.asset,
        side=order.side,
        filled_at=now,
        reference_price=order.reference_price,
        client_order_id=client_id,
        venue_order_id=venue_order_id,
    )


def _base(order: Order, report: VenueReport, now: datetime) -> dict:
    return answer_fields(order, now, report.client_id, report.venue_order_id)


def fill_id(order: Order, number: int) -> str:
    """The first answer keeps the paper venue's id; later parts are numbered."""
    return f"{order.order_id}-f" if number == 0 else f"{order.order_id}-f{number + 1}"


def answers(order: Order, report: VenueReport, done: Answered, now: datetime) -> tuple[list[Fill], Answered]:
    """The fills `report` adds to what `done` already answered, and the new account."""
    if done.ended:
        return [], done
    out: list[Fill] = []
    count = done.count
    new_qty = report.filled - done.filled
    if new_qty > EPSILON * max(1.0, report.filled):
        cost = report.cost - done.cost
        fee = max(0.0, report.fee_usd - done.fee_usd)
        price = cost / new_qty if cost > 0 else 0.0
        if not price > 0:
            raise ValueError(f"the venue reports {new_qty:g} more {order.asset} filled for no cost")
        sign = 1.0 if order.side == "buy" else -1.0
        final = report.state is VenueOrderState.FILLED
        reason = "" if report.state is VenueOrderState.FILLED else f"part of the order; venue state {report.state.value}"
        out.append(
            Fill(
                fill_id=fill_id(order, count),
                status="filled",
                quantity=new_qty,
                price=price,
                notional_usd=cost,
                fee_usd=fee,
                slippage_bps=(price - order.reference_price) / order.reference_price * 10_000.0 * sign,
                final=final,
                reason=reason,
                **_base(order, report, now),
            )
        )
        count += 1
    ended = report.ended
    if ended and not (out and out[-1].final):
        status = _END_STATUS[report.state]
        reason = report.reason or f"the venue reports the order {report.state.value}"
        if report.filled > 0:
            reason += f"; {report.filled:g} of it filled"
        end_id = fill_id(order, 0) if count == 0 else f"{order.order_id}-end"
        out.append(Fill(fill_id=end_id, status=status, final=True, reason=reason[:2000], **_base(order, report, now)))
    account = Answered(
        filled=max(done.filled, report.filled),
        cost=max(done.cost, report.cost),
        fee_usd=max(done.fee_usd, report.fee_usd),
        count=count,
        ended=ended,
    )
    return out, account
