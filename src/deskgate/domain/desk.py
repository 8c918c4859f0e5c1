"""factory.status.desk: the facts about a desk that an agent needs before it drafts.

The factory publishes them, signed, at start and once a day (the STATUS stream keeps
90 days): which desk this is (the id agents' credentials name), its guardrails, its
approval settings and each agent's mandate. An agent reads them instead of a copy of
mission.yaml, so what it is told is what the factory enforces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from deskgate.config import ApprovalSettings, Guardrails
from deskgate.domain.base import Message


class DeskStatus(Message):
    desk_id: str = Field(min_length=1, max_length=64)
    desk_name: str
    guardrails: Guardrails
    approvals: ApprovalSettings
    # Per agent name: the mandate that tightens the guardrails for what it drafts (mission.yaml `mandates`).
    mandates: dict[str, dict[str, Any]] = Field(default_factory=dict)
    assets: tuple[str, ...] = ()  # what the market data service publishes
    max_directive_bytes: int = Field(65_536, ge=1)
    at: datetime


def desk_status(mission, desk_id: str, at: datetime) -> DeskStatus:
    """The desk's facts from its mission. Mandates are read defensively: a mission from
    before mandates has none."""
    mandates = {}
    for name, mandate in (getattr(mission, "mandates", None) or {}).items():
        mandates[str(name)] = mandate.model_dump(mode="json") if hasattr(mandate, "model_dump") else dict(mandate)
    return DeskStatus(
        desk_id=desk_id,
        desk_name=mission.desk_name,
        guardrails=mission.guardrails,
        approvals=mission.approvals,
        mandates=mandates,
        assets=tuple(mission.marketdata.assets),
        max_directive_bytes=mission.max_directive_bytes,
        at=at,
    )
