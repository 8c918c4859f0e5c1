"""The article's funnel for this desk: received, staged, approved, executed, and why not."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from deskgate.domain.base import Message

# Upper bounds (ms) of the policy evaluation latency buckets; the last is +Inf.
LATENCY_BUCKETS_MS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 100.0)


class LatencyHistogram(Message):
    """Cumulative counts per upper bound (ms), as Prometheus histograms keep them."""

    bounds_ms: list[float] = Field(default_factory=lambda: list(LATENCY_BUCKETS_MS))
    cumulative: list[int] = Field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_MS))
    count: int = 0
    sum_ms: float = 0.0

    @classmethod
    def from_buckets(cls, per_bucket: list[int], sum_ms: float) -> LatencyHistogram:
        """From counts per bucket (one more than bounds: the last is above every bound)."""
        cumulative, running = [], 0
        for n in per_bucket[: len(LATENCY_BUCKETS_MS)]:
            running += n
            cumulative.append(running)
        return cls(cumulative=cumulative, count=sum(per_bucket), sum_ms=sum_ms)


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
    # The factory's own operating numbers ride along, so /metrics needs one message:
    # time to decode and evaluate one directive since the factory started, and the
    # broker's refusals of the factory's own publishes.
    evaluation_latency: LatencyHistogram | None = None
    permission_violations: int = 0
    # The same funnel for each agent, by name: what its verified signature attributes to
    # it (PolicyVerdict.agent). Directives no agent's key verifies count only above.
    agents: dict[str, Funnel] = Field(default_factory=dict)

    def of_agent(self, name: str) -> Funnel:
        """One agent's funnel (empty, at this snapshot's time, when it sent nothing)."""
        return self.agents.get(name) or Funnel(at=self.at)
