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


#: How an answer to an order reads. "filled": this much more was bought or sold (an order
#: can fill in several parts); "rejected": the executor refused the order's chain;
#: "refused": the venue, or the venue's rules checked before sending, said no;
#: "cancelled"/"expired": the order ended with the rest unfilled; "ended": the venue
#: reports the order done with nothing more filled than already answered.
FillStatus = Literal["filled", "rejected", "refused", "cancelled", "expired", "ended"]


class Fill(Message):
    """One answer to an order: a fill (the whole order or a part) or the order's end.

    `final` says the order is over: whatever it still reserved is released."""

    fill_id: str
    order_id: str
    directive_id: str
    venue: str
    asset: str
    side: Side
    status: FillStatus
    quantity: float = 0.0
    price: float = 0.0
    notional_usd: float = 0.0
    fee_usd: float = 0.0
    reference_price: float = 0.0
    slippage_bps: float = 0.0
    filled_at: datetime
    reason: str = Field("", max_length=2000)
    final: bool = True
    # The venue's own ids, for a human to find the order there.
    client_order_id: str = ""
    venue_order_id: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Fill:
        if self.status != "filled":
            if not self.final:
                raise ValueError(f"a {self.status} answer ends the order: it must be final")
            if self.quantity or self.notional_usd or self.fee_usd:
                raise ValueError(f"a {self.status} answer fills nothing: quantity, notional and fee must be 0")
        if self.status == "filled":
            if not (self.quantity > 0 and self.price > 0 and self.notional_usd > 0):
                raise ValueError("a fill needs a positive quantity, price and notional")
            if self.fee_usd < 0:
                raise ValueError("a fee cannot be negative")
            if abs(self.quantity * self.price - self.notional_usd) > 1e-6 * self.notional_usd:
                raise ValueError("quantity x price does not equal the notional")
        return self
