"""The analyst: the six typed functions every agent step calls, and what they cost.

Two implementations: `OfflineAnalyst` (deterministic, from structured fields only,
no key, no network; the default) and `LLMAnalyst` (the same functions through
pydantic-ai). Whatever either returns is checked again by the desk: citations
against the view, drafts against the guardrails by the factory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from deskgate.agents.outputs import Draft, EndOfDayReview, Insight, MorningBrief, Principle, Revision
from deskgate.agents.view import DeskView
from deskgate.config import ModelSettings
from deskgate.domain.evaluation import CheckResult


class ModelError(RuntimeError):
    """The model could not be set up or gave no usable answer; the message says which and why."""


@dataclass
class Usage:
    """Model calls, tokens and cost; the desk reads it per cycle and adds it to the run's total."""

    calls: int = 0
    requests: int = 0  # model round trips, validation retries included
    retries: int = 0  # answers that failed validation and were asked for again
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None once any call's price was unknown
    by_function: dict[str, int] = field(default_factory=dict)

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.requests += other.requests
        self.retries += other.retries
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        for k, v in other.by_function.items():
            self.by_function[k] = self.by_function.get(k, 0) + v

    def take(self) -> Usage:
        """This usage, and reset to zero (one cycle's worth)."""
        out = Usage(self.calls, self.requests, self.retries, self.input_tokens, self.output_tokens, self.cost_usd, dict(self.by_function))
        self.__init__()
        return out


class Analyst(Protocol):
    name: str  # e.g. "offline" or "openai:gpt-4o-mini"
    label: str  # how its output is labelled wherever it appears
    usage: Usage

    async def socratic(self, view: DeskView) -> list[Insight]: ...

    async def synthesise(self, view: DeskView, insights: list[Insight]) -> list[Principle]: ...

    async def dispatch(self, view: DeskView, principles: list[Principle]) -> list[Draft]: ...

    async def revise(self, view: DeskView, draft: Draft, failed: list[CheckResult]) -> Revision: ...

    async def morning_brief(self, view: DeskView) -> MorningBrief: ...

    async def end_of_day(self, view: DeskView) -> EndOfDayReview: ...


def build_analyst(settings: ModelSettings) -> Analyst:
    """The analyst the mission asks for: the offline analyst unless a provider is named (only then is an LLM SDK loaded)."""
    if settings.provider == "offline":
        from deskgate.agents.offline import OfflineAnalyst

        return OfflineAnalyst()
    from deskgate.agents.llm import LLMAnalyst

    return LLMAnalyst(settings)
