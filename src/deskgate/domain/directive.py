"""The directive: what an agent proposes, and the only thing it may send to the factory.

This is the public wire format (`deskgate schema directive` prints its JSON Schema).
It is strict on purpose: numbers must be JSON numbers, unknown fields are refused,
and there is no field for the agent's own view of its position or risk; the
factory computes those from its beliefs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from deskgate.domain.base import WireModel

# A directive id becomes one token of a NATS subject, so it may not hold '.', '*',
# '>' or whitespace.
DirectiveId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]

Side = Literal["buy", "sell"]

MemoText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class DecisionMemo(BaseModel):
    """What a principal reads before deciding: why, from what, and what is expected."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    signal_evidence: MemoText
    position_context: MemoText
    proposed_action: MemoText
    expected_outcome: MemoText


class Directive(WireModel):
    """A proposed trade, drafted by an agent, that the policy engine evaluates. No key may
    repeat, nested ones included (`WireModel`; the policy engine checks it the fast way)."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        title="deskgate directive",
        json_schema_extra={"$id": "https://deskgate.dev/schema/directive.json"},
    )

    directive_id: DirectiveId = Field(description="Unique id; a second directive with the same id is never staged.")
    asset: str = Field(
        min_length=1,
        max_length=64,
        description="Asset or USD-quoted pair: BTC, btc, BTC/USDT, BTCUSDT. Normalised by the policy engine.",
    )
    venue: str = Field(min_length=1, max_length=64, description="Venue name, e.g. binance (case-insensitive).")
    side: Side
    notional_usd: float = Field(gt=0, le=1e12, description="Order size in USD; the factory derives quantity at fill.")
    leverage: float = Field(1.0, gt=0, le=1000, description="Order leverage asked of the venue.")
    confidence: float = Field(ge=0, le=1, description="The agent's confidence in [0, 1], before Governor damping.")
    memo: DecisionMemo
    agent: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description=(
            "The drafting agent's name. Optional: the directive is the agent's whose key signed it "
            "(Deskgate-Signer agent:<name>); when given, it must be that same name, or the directive is rejected."
        ),
    )
    created_at: datetime | None = Field(None, description="When the agent drafted it (ISO 8601).")
