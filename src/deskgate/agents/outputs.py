"""What each agent step returns: the typed outputs of the desk's LLM functions.

The same models bind the offline analyst and an LLM (pydantic-ai validates a
model's answer against them and asks again when it does not fit), so downstream
code never sees the difference. Free text is bounded; numbers are checked.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Line = Annotated[str, StringConstraints(min_length=1, max_length=600)]
AssetName = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Insight(_Out):
    """Socratic: one observation about the desk, citing the data points it rests on."""

    asset: AssetName | None = Field(None, description="The asset it is about, or null for the whole book.")
    claim: Line
    stance: Literal["bullish", "bearish", "neutral", "risk"]
    confidence: float = Field(ge=0, le=1)
    evidence: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=12, description="ids of the data points this rests on (summary_id, signal_id, fill_id, recall #n)"
    )


class Principle(_Out):
    """Synthesis: a rule for today distilled from insights."""

    statement: Line
    asset: AssetName | None = None
    action: Literal["add", "reduce", "hold", "avoid"]
    conviction: float = Field(ge=0, le=1)
    from_insights: list[int] = Field(min_length=1, description="indexes of the insights it comes from")


class DraftMemo(_Out):
    signal_evidence: Line
    position_context: Line
    proposed_action: Line
    expected_outcome: Line


class Draft(_Out):
    """Dispatcher: a directive before it is numbered and sent."""

    asset: AssetName
    side: Literal["buy", "sell"]
    notional_usd: float = Field(gt=0, le=1e9)
    confidence: float = Field(ge=0, le=1)
    memo: DraftMemo


class Revision(_Out):
    """Dispatcher, after a policy rejection: a smaller directive, or a note that it is outside the guardrails."""

    action: Literal["revise", "withdraw"]
    notional_usd: float | None = Field(None, gt=0, le=1e9)
    note: Line


class MorningBrief(_Out):
    position_risk: Line
    overnight: list[Line] = Field(max_length=20)
    parameter_suggestions: list[Line] = Field(max_length=10)
    flagged: list[Line] = Field(max_length=10, description="items a principal should look at; each becomes a review request")


class EndOfDayReview(_Out):
    results_vs_expectations: Line
    execution_quality: Line
    observations: list[Line] = Field(max_length=20)
    regime_assessment: Line
    hypotheses: list[Line] = Field(max_length=10, description="what to carry into tomorrow (rewrites core memory 'hypotheses')")
