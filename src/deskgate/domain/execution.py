"""Orders the factory sends to a venue, and the fills that come back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from deskgate.audit.signing import SignedPayload
from deskgate.domain.base import Message
from deskgate.domain.directive import Side


class ApprovalRef(Message):
    """Who approved, when, and which decision message it was."""

    approval_id: str
    principal: str
    decided_at: datetime


class Order(Message):
    order_id: str
    directive_id: str
    venue: str
    asset: str
    side: Side
    notional_usd: float = Field(gt=0)
    leverage: float = Field(gt=0)
    reference_price: float = Field(gt=0)
    created_at: datetime
    approvals: list[ApprovalRef] = Field(min_length=1)
    # The evidence the executor checks before filling: the directive exactly as the
    # agent signed it, and each approving principal's signed decision naming its digest.
    directive: SignedPayload | None = None
    signed_approvals: list[SignedPayload] = Field(default_factory=list)
    # The staged record as the factory signed it: whether two principals are needed, and
    # until when the directive could be approved.
    staged: SignedPayload | None = None


class Fill(Message):
    fill_id: str
    order_id: str
    directive_id: str
    venue: str
    asset: str
    side: Side
    status: Literal["filled", "rejected"]
    quantity: float = 0.0
    price: float = 0.0
    notional_usd: float = 0.0
    fee_usd: float = 0.0
    reference_price: float = 0.0
    slippage_bps: float = 0.0
    filled_at: datetime
    reason: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> Fill:
        if self.status == "filled":
            if not (self.quantity > 0 and self.price > 0 and self.notional_usd > 0):
                raise ValueError("a fill needs a positive quantity, price and notional")
            if self.fee_usd < 0:
                raise ValueError("a fee cannot be negative")
            if abs(self.quantity * self.price - self.notional_usd) > 1e-6 * self.notional_usd:
                raise ValueError("quantity x price does not equal the notional")
        return self
