"""The Governor on the wire: its state (published by the agents), a principal's clear (by the command
center), and the damping the factory holds until a clear (by the factory)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from deskgate.audit.signing import Kind, SignatureStatus, verify_headers
from deskgate.domain.base import Message
from deskgate.identity.names import BUILT_IN_AGENT, agent_signer

# Whose Governor the desk heeds: the built-in agents'. Any agent identity may publish on
# consciousness.insights.>, so a state counts only with this signer's current key on it.
GOVERNOR_SIGNER = agent_signer(BUILT_IN_AGENT)


class GovernorState(Message):
    """Published on consciousness.insights.governor whenever it changes; the factory reads the damping."""

    state: Literal["baseline", "watching", "drifting"] = "baseline"
    damping: float = Field(1.0, gt=0, le=1)
    statistic: float = 0.0  # the larger of the two CUSUMs
    threshold: float = 5.0
    cusum_proximity: float = 0.0
    cusum_confidence: float = 0.0
    baseline_proximity: list[float] = Field(default_factory=list, max_length=1000)
    baseline_confidence: list[float] = Field(default_factory=list, max_length=1000)
    mean_proximity: float | None = None
    sd_proximity: float | None = None
    mean_confidence: float | None = None
    sd_confidence: float | None = None
    observed: int = 0
    interventions: int = 0  # times it started drifting
    damped: int = 0  # directives drafted while drifting
    drifting_since: AwareDatetime | None = None
    review_id: str | None = Field(None, max_length=128)
    cleared_by: str | None = Field(None, max_length=128)
    cleared_at: AwareDatetime | None = None
    clear_reason: str | None = Field(None, max_length=2000)
    updated_at: AwareDatetime | None = None
    # The approvals.governor.clear stream sequence of the last clear the agents applied: the factory
    # tells a drift it has seen cleared (published before the agents applied the clear) from a new one.
    applied_clear_seq: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> GovernorState:
        if self.state != "baseline" and None in (self.mean_proximity, self.sd_proximity, self.mean_confidence, self.sd_confidence):
            raise ValueError(f"a {self.state} Governor needs its baseline means and standard deviations")
        if (self.state == "drifting") != (self.damping < 1.0):
            raise ValueError("the Governor damps (damping < 1) exactly when it is drifting")
        if self.state == "drifting" and self.drifting_since is None:
            raise ValueError("a drifting Governor says since when")
        return self


class GovernorClear(Message):
    """approvals.governor.clear: a principal has looked at the drift and clears the damping."""

    clear_id: str = Field(min_length=1, max_length=128)
    principal: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)
    at: AwareDatetime
    # The factory's hold this clear lifts (GovernorHold.held_since_seq, as the principal saw
    # it); the factory lifts a hold only with a clear that names it, so an old clear sent
    # again cannot lift a new one.
    hold_seq: int | None = Field(None, ge=0)


class GovernorHold(Message):
    """factory.status.governor: the damping the factory applies, and holds until a principal's clear."""

    damping: float = Field(gt=0, le=1)  # 1.0: nothing held
    held_since_seq: int = Field(0, ge=0)  # the INSIGHTS sequence of the state that set it
    clears_read: int = Field(0, ge=0)  # the last approvals.governor.clear sequence the factory read
    # Set while the factory cannot read the Governor (for GOVERNOR_FAIL_CLOSED_AFTER_S and on):
    # the configured damping it applies until a read succeeds. No principal's clear lifts it.
    fail_closed_damping: float | None = Field(None, gt=0, lt=1)
    at: AwareDatetime


def signed_governor_state(keys, data: bytes, headers: dict[str, str] | None, *, signer: str = GOVERNOR_SIGNER) -> GovernorState | None:
    """The state in a stored message, or None unless `signer` signed it with its current key.

    `keys` must answer with current keys only (`KeyStore.deciding`, or the factory's Verifier):
    a revoked or rotated-out key, another agent's, or none makes a state that counts for nothing
    (another agent could otherwise lift the desk's drift record or damp it at will)."""
    if verify_headers(keys, Kind.INSIGHT, data, headers, expect=signer) is not SignatureStatus.VALID:
        return None
    try:
        return GovernorState.model_validate_json(data)
    except ValueError:
        return None
