"""The policy engine's verdict on a directive, as it travels on the bus and is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Decision = Literal["staged", "rejected"]

# Check names, in the order the engine runs them. Stable: stats and tests key on them.
CHECK_NAMES: tuple[str, ...] = (
    "schema",
    "breaker",
    "drawdown",
    "asset",
    "venue",
    "confidence",
    "position",
    "order_leverage",
    "portfolio_leverage",
    "market_price",
    "explicit_approval",
)

# An agent's mandate adds these (policy/mandate.py), one per key it sets, in this order,
# after the desk's checks and before `explicit_approval`.
MANDATE_CHECK_NAMES: tuple[str, ...] = (
    "mandate_asset",
    "mandate_venue",
    "mandate_notional",
    "mandate_position",
    "mandate_budget",
    "mandate_expiry",
)


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    passed: bool
    observed: Any = None
    limit: Any = None
    reason: str = ""


class PolicyEvaluation(BaseModel):
    """What `deskgate policy check` prints per line and the factory publishes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directive_id: str | None
    decision: Decision
    explicit_approval: bool
    checks: list[CheckResult]


class PolicyVerdict(BaseModel):
    """factory.status.policy.<id>: the factory's verdict on one received directive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directive_id: str | None
    seq: int
    decision: Literal["staged", "rejected", "duplicate"]
    primary_reason: str | None
    evaluation: PolicyEvaluation
    at: datetime
    # The agent whose key verified the directive's signature (current or retired, revoked
    # or not: who signed it is a fact; whether it counted is the decision). None when no
    # agent's key verifies it: unsigned, forged, or signed by something that is not an agent.
    agent: str | None = None
