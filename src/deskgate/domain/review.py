"""Review requests: the agent asking a human to look at something. Never an order.

They travel on approvals.queue.review.<id> (published only by the agent role) and
are acknowledged on approvals.acknowledged.<id> (only by the command center). The
factory reads neither, so nothing here can turn into an order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

from deskgate.domain.base import Message
from deskgate.domain.directive import DirectiveId

ReviewId = DirectiveId  # one safe subject token
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class ReviewRequest(Message):
    """approvals.queue.review.<id>: written by an agent, so shown as untrusted text."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    review_id: ReviewId
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] = Field(
        description="e.g. flagged_position, drift, regime_change"
    )
    summary: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    detail: Text | None = None
    asset: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    agent: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "unknown"
    created_at: AwareDatetime  # the agent's claim; the queue is ordered by arrival, not by this


class ReviewAck(Message):
    """approvals.acknowledged.<id>: a person has seen a review request."""

    review_id: ReviewId
    principal: str = Field(min_length=1, max_length=128)
    at: datetime
    note: str = Field("", max_length=2000)
    # Whose request: the agent whose key signed it. Two agents may ask under one id; None
    # (acknowledgements made before requests were told apart by author) counts for each.
    agent: str | None = Field(None, min_length=1, max_length=128)
