"""The article's funnel for this desk: received, staged, approved, executed, and why not."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from deskgate.domain.base import Message


class Funnel(Message):
    at: datetime
    received: int = 0
    duplicates: int = 0
    staged: int = 0
    policy_rejected: int = 0
    policy_rejections_by_reason: dict[str, int] = Field(default_factory=dict)
    approved: int = 0
    human_rejected: int = 0
    human_rejections_by_reason: dict[str, int] = Field(default_factory=dict)
    ordered: int = 0
    executed: int = 0
    venue_rejected: int = 0
    invalidated: int = 0
    invalidations_by_reason: dict[str, int] = Field(default_factory=dict)
    expired: int = 0
    pending: int = 0
