"""The approval queue: what a principal sees, what they decide, and what came of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from deskgate.audit.keys import LEGACY_AGENT
from deskgate.audit.signing import SignedPayload
from deskgate.domain.base import Message
from deskgate.domain.directive import Directive, DirectiveId
from deskgate.domain.evaluation import PolicyEvaluation
from deskgate.domain.execution import Fill
from deskgate.identity.names import agent_of_signer


class PositionContext(Message):
    """The portfolio around a staged directive, computed by the factory at staging."""

    equity_usd: float
    current_position_usd: float
    pending_same_side_usd: float
    post_trade_position_usd: float
    post_trade_position_pct: float
    gross_leverage_after: float
    drawdown_pct: float


class StagedDirective(Message):
    """approvals.queue.directive.<id>: a directive that passed every guardrail."""

    directive: Directive
    evaluation: PolicyEvaluation
    asset: str
    venue: str
    explicit: bool
    four_eyes: bool
    price_at_staging: float
    staged_at: datetime
    expires_at: datetime
    context: PositionContext
    # The directive exactly as the agent published and signed it; an approval names
    # the SHA-256 of these bytes, so it can only ever apply to this exact directive.
    signed_directive: SignedPayload | None = None

    @property
    def drafted_by(self) -> str:
        """The agent whose own key signed the directive: what the Command Center shows as
        its author, never the directive's self-declared `agent` field. The factory staged
        it only after checking that signature (factory/authors.py), and the Command Center
        checks it again before a principal decides."""
        signed = self.signed_directive
        if signed is None:
            return "unknown (no signed directive)"
        name = agent_of_signer(signed.signer)
        if name is not None:
            return name
        return "shared agent key (before per-agent keys)" if signed.signer == LEGACY_AGENT else signed.signer


class ApprovalResponse(Message):
    """approvals.response.<id>: a principal's decision."""

    approval_id: str = Field(min_length=1, max_length=128)
    directive_id: DirectiveId
    decision: Literal["approve", "reject"]
    principal: str = Field(min_length=1, max_length=128)
    decided_at: AwareDatetime
    reason: str = Field("", max_length=2000)
    # Set when the approval was one of a batch; explicit directives refuse those.
    batch_id: str | None = Field(None, min_length=1, max_length=128)
    # SHA-256 (hex) of the signed directive's bytes that the principal was shown.
    directive_digest: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> ApprovalResponse:
        if self.decision == "reject" and not self.reason.strip():
            raise ValueError("a rejection needs a reason")
        return self


class IntentionState(StrEnum):
    """Where a staged directive stands; the stored and published value is the member's."""

    STAGED = "staged"  # passed the policy engine, reserving exposure, waiting for a principal
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"  # four eyes: one principal approved
    HELD = "held"  # approved, but its venue is unhealthy: ordered (re-checked) once it is healthy again
    ORDERED = "ordered"  # approved and re-checked; the order is out and reserves until it fills
    EXECUTED = "executed"  # the venue filled it
    VENUE_REJECTED = "venue_rejected"  # the venue refused the order
    INVALIDATED = "invalidated"  # approved, but failed the re-check against current beliefs
    EXPIRED = "expired"  # no decision in time
    REJECTED = "rejected"  # a principal said no


#: States in which a principal's decision still counts.
AWAITING_DECISION = (IntentionState.STAGED, IntentionState.AWAITING_SECOND_APPROVAL)


Outcome = Literal[
    "awaiting_second_approval",
    "held",
    "ordered",
    "executed",
    "venue_rejected",
    "invalidated",
    "expired",
    "rejected",
    "refused",
]


class ApprovalOutcome(Message):
    """factory.status.approval.<id>: what the factory did with a decision."""

    directive_id: str
    outcome: Outcome
    at: datetime
    reason: str = ""
    principals: list[str] = Field(default_factory=list)
    order_id: str | None = None
    fill: Fill | None = None
    evaluation: PolicyEvaluation | None = None
    approval_id: str | None = None
