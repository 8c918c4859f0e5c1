"""What an agent sees at a cycle: structured fields only, and ids for everything it may cite."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from deskgate.domain.execution import Fill
from deskgate.domain.market import MarketSummary, Signal
from deskgate.domain.news import NewsItem

CycleKind = Literal["morning_brief", "intraday", "eod_review"]


class PositionView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    asset: str
    notional_usd: float  # signed: negative is short
    pct_of_equity: float


class Limits(BaseModel):
    """The guardrails as the agent is told them; the factory enforces its own copy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_position_pct: float
    min_confidence: float
    max_leverage: float
    max_drawdown_pct: float
    explicit_above_usd: float


class GovernorView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["watching", "baseline", "drifting"]  # the damping factor itself is not shown: a model could outbid it
    statistic: float
    threshold: float


class DeskView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    cycle: CycleKind
    equity_usd: float
    peak_equity_usd: float
    drawdown_pct: float
    leverage: float
    positions: list[PositionView]
    limits: Limits
    venue: str
    summaries: list[MarketSummary]  # the latest per asset
    signals: list[Signal]  # the latest per asset
    since_last_cycle: list[MarketSummary]  # every summary since the previous cycle of this kind
    fills: list[Fill]  # fills since the previous cycle of this kind
    memory: str  # core blocks and recall, assembled within the token budget
    core: dict[str, str]  # the core blocks by label (also inside `memory`)
    memory_ids: list[int]  # recall ids in `memory`, citable as "recall:<id>"
    governor: GovernorView
    model_slippage_bps: float  # what the venue model expects; execution quality is measured against it
    day_start_equity_usd: float | None = None  # equity at the day's first cycle
    # News that passed the screen since the previous cycle of this kind. Deterministic code
    # (the offline analyst) uses only the structured fields; the text is wrapped and datamarked.
    news: list[NewsItem] = []

    def citable(self) -> set[str]:
        """Every id an insight may cite from this view."""
        ids = {s.summary_id for s in self.summaries} | {s.summary_id for s in self.since_last_cycle}
        ids |= {s.signal_id for s in self.signals}
        ids |= {f.fill_id for f in self.fills}
        ids |= {f"recall:{i}" for i in self.memory_ids}
        ids |= {n.news_id for n in self.news}
        return ids

    def position(self, asset: str) -> float:
        return next((p.notional_usd for p in self.positions if p.asset == asset), 0.0)

    def signal(self, asset: str) -> Signal | None:
        return next((s for s in self.signals if s.asset == asset), None)

    def summary(self, asset: str) -> MarketSummary | None:
        return next((s for s in self.summaries if s.asset == asset), None)
