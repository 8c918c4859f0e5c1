"""Post-trade analysis: each fill against what was expected, and each memo against what happened.

Two documents go to archival memory for every executed directive, so later cycles
(and the model's `archival_memory_search`) learn from the desk's own record:

- **At the fill**: execution against expectation. Slippage against the venue model's,
  and the fill price against the price the agents drafted at (the latest window close
  they saw; the factory staged within the same bar).
- **At the horizon** (`agents.outcome_horizon_hours` after the fill): the realised
  move in the directive's direction against the memo's `expected_outcome`, called a
  hit when the move went the directive's way.

An order on a real venue can fill in parts and end with the rest cancelled or expired.
Its parts are gathered into one fill (`combine`) and judged once, when the order ends
(`Fill.final`), at the average price of what filled; the horizon then runs on that part.

Pure functions: the desk (desk.py) keeps the records and writes what these return.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from deskgate.domain.execution import Fill


class Drafted(BaseModel):
    """What the agents staged, kept until its fill (and then until its horizon)."""

    directive_id: str
    asset: str
    side: str
    notional_usd: float
    confidence: float
    cycle: str
    drafted_at: datetime
    price_at_draft: float | None = None
    expected_outcome: str = Field("", max_length=600)
    # Set at the fill:
    fill_price: float | None = None
    filled_at: datetime | None = None


class Analysis(BaseModel):
    title: str
    text: str
    tags: list[str]


def _bps(a: float, b: float) -> float:
    return (a / b - 1.0) * 10_000.0


def combine(so_far: Fill | None, part: Fill) -> Fill:
    """The parts of one order filled so far as one fill: quantities, notionals and fees
    summed, the price their average, slippage weighted by notional. `part` must fill."""
    if part.status != "filled":
        raise ValueError(f"only fills combine, not a {part.status} answer")
    if so_far is None:
        return part
    if so_far.directive_id != part.directive_id:
        raise ValueError(f"parts of {so_far.directive_id} and {part.directive_id} are not one order")
    quantity = so_far.quantity + part.quantity
    notional = so_far.notional_usd + part.notional_usd
    slippage = (so_far.slippage_bps * so_far.notional_usd + part.slippage_bps * part.notional_usd) / notional
    return part.model_copy(update={
        "fill_id": so_far.fill_id, "quantity": quantity, "notional_usd": notional, "price": notional / quantity,
        "fee_usd": so_far.fee_usd + part.fee_usd, "slippage_bps": slippage, "filled_at": part.filled_at,
    })


def execution_analysis(fill: Fill, drafted: Drafted | None, model_slippage_bps: float, ended: Fill | None = None) -> Analysis:
    """The fill against the venue model and against the price the agents drafted at.

    `ended` is the answer that ended an order filled only in part (cancelled, expired)."""
    asset = fill.asset.lower()
    lines = [
        f"{fill.side} {fill.notional_usd:,.2f} USD of {fill.asset} on {fill.venue}: {fill.quantity:.8g} at {fill.price:,.2f} "
        f"({fill.filled_at:%Y-%m-%d %H:%M} UTC), fee {fill.fee_usd:,.2f} USD.",
        f"Slippage {fill.slippage_bps:.1f} bps against the venue's reference {fill.reference_price:,.2f}; the venue model "
        f"expects {model_slippage_bps:g} bps ({fill.slippage_bps - model_slippage_bps:+.1f} bps).",
    ]
    tags = ["post-trade", "execution", asset, fill.side]
    if ended is not None:
        of = f" of {drafted.notional_usd:,.2f} USD drafted" if drafted is not None else ""
        lines.insert(1, f"Partly filled: {fill.notional_usd:,.2f} USD{of}; the rest {ended.status}"
                        + (f" ({ended.reason})." if ended.reason else "."))
        tags.append("partly-filled")
    tags.append("slippage-over-model" if fill.slippage_bps > model_slippage_bps else "slippage-within-model")
    if drafted is not None and drafted.price_at_draft:
        # Against the draft: positive is worse for the directive (paid up on a buy, sold lower on a sell).
        cost = _bps(fill.price, drafted.price_at_draft) * (1 if fill.side == "buy" else -1)
        lines.append(
            f"Drafted at {drafted.price_at_draft:,.2f} in the {drafted.cycle} cycle of {drafted.drafted_at:%Y-%m-%d %H:%M}, "
            f"confidence {drafted.confidence:.2f}: the fill cost {cost:+.1f} bps against that price."
        )
        lines.append(f"Expected: {drafted.expected_outcome}")
    else:
        lines.append("No draft record for this directive (drafted by another agent, or before these records): no comparison with the draft.")
    return Analysis(title=f"Post-trade: {fill.directive_id} {fill.side} {fill.asset}", text="\n".join(lines), tags=tags)


def horizon_outcome(record: Drafted, price_now: float, at: datetime) -> tuple[Analysis, float, bool]:
    """The realised move in the directive's direction since its fill; (analysis, move in bps, hit)."""
    assert record.fill_price is not None and record.filled_at is not None
    move = _bps(price_now, record.fill_price) * (1 if record.side == "buy" else -1)
    hit = move > 0
    hours = (at - record.filled_at).total_seconds() / 3600
    text = (
        f"{record.side} {record.notional_usd:,.0f} USD of {record.asset} filled at {record.fill_price:,.2f} on "
        f"{record.filled_at:%Y-%m-%d %H:%M} UTC, confidence {record.confidence:.2f}. {hours:.0f} h later {record.asset} is at "
        f"{price_now:,.2f}: {move:+.1f} bps in the directive's direction ({'a hit' if hit else 'a miss'}), "
        f"about {record.notional_usd * move / 10_000:+,.2f} USD.\nExpected: {record.expected_outcome}"
    )
    tags = ["post-trade", "outcome", record.asset.lower(), "hit" if hit else "miss"]
    return Analysis(title=f"Outcome at horizon: {record.directive_id} {record.side} {record.asset}", text=text, tags=tags), move, hit
