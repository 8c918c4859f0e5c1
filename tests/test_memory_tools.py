"""The memory as a model's tools at every step: search recall and archival, insert, within limits,
every call recorded with what the model was told."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pydantic_ai import ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from test_agents import LLM, view

from deskgate.agents.llm import LLMAnalyst
from deskgate.agents.memory_tools import LIMITS
from deskgate.memory.embedding import shared_minilm
from deskgate.memory.store import Memory

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)


def _answers(messages) -> list[str]:
    """What the tools told the model, in order."""
    return [str(p.content) for m in messages for p in getattr(m, "parts", ()) if getattr(p, "part_kind", "") == "tool-return"]


async def test_an_intraday_step_searches_recall_and_archival_and_keeps_a_lesson(tmp_path):
    memory = Memory.open(tmp_path / "memory.db", embedder=shared_minilm())
    old = memory.remember("insight", "Signal model: 7-day BTC/ETH return correlation climbed from 0.61 to 0.84.", at=T0)
    memory.remember("note", "Cycle intraday finished in 12 s.", at=T0 + timedelta(days=3))
    review = memory.archive("Monthly review, October", "The Governor flagged drift twice; regime moved to range.", tags=["monthly-review"], at=T0)
    seen = []

    def model(messages, info: AgentInfo) -> ModelResponse:
        seen.append(messages)
        step = len(seen)
        if step == 1:
            return ModelResponse(parts=[
                ToolCallPart("conversation_search", {"query": "how correlated have BTC and ETH been", "since": "2026-11-01", "until": "2026-11-02"}),
                ToolCallPart("archival_memory_search", {"query": "what did the governor warn about"}),
            ])
        if step == 2:
            return ModelResponse(parts=[
                ToolCallPart("archival_memory_insert", {"title": "Correlation lesson", "text": "BTC/ETH correlation above 0.8 lasted a week.", "tags": ["lesson"]}),
                ToolCallPart("conversation_search", {"query": "btc", "since": "last tuesday"}),
            ])
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"response": []})])

    analyst = LLMAnalyst(LLM, model=FunctionModel(model))
    analyst.memory = memory
    assert await analyst.socratic(view()) == []
    told = _answers(seen[-1])
    assert f"[#{old} 2026-11-02 08:00 insight]" in told[0]  # the dated search found the entry by meaning
    assert "Cycle intraday" not in told[0]  # outside the dates
    assert f"[doc #{review} 2026-11-02 Monthly review, October" in told[1]
    assert told[2].startswith("kept as archival doc #")
    assert "since must be a date as YYYY-MM-DD, got 'last tuesday'" in told[3]
    kept = memory.find_documents("correlation lesson")[0].entry
    assert kept.title == "Correlation lesson" and "by-model" in kept.tags and "lesson" in kept.tags
    calls = memory.tool_calls()
    assert [c["tool"] for c in reversed(calls)] == ["conversation_search", "archival_memory_search", "archival_memory_insert", "conversation_search"]
    assert all(c["function"] == "socratic" and c["by"] == analyst.name for c in calls)
    assert [c["ok"] for c in reversed(calls)] == [True, True, True, False]


async def test_past_its_budget_a_tool_refuses_and_the_refusal_is_recorded(tmp_path):
    memory = Memory.open(tmp_path / "memory.db", embedder=shared_minilm())
    memory.remember("insight", "ETH funding negative.", at=T0)
    n = LIMITS["search"] + 2
    seen = []

    def model(messages, info: AgentInfo) -> ModelResponse:
        seen.append(messages)
        if len(seen) == 1:
            return ModelResponse(parts=[ToolCallPart("conversation_search", {"query": f"eth funding {i}"}) for i in range(n)])
        review = {"results_vs_expectations": "r", "execution_quality": "e", "observations": [], "regime_assessment": "calm", "hypotheses": []}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, review)])

    analyst = LLMAnalyst(LLM, model=FunctionModel(model))
    analyst.memory = memory
    await analyst.end_of_day(view())
    told = _answers(seen[-1])
    assert sum("ETH funding negative" in t for t in told) == LIMITS["search"]
    assert sum(t.startswith(f"refused: at most {LIMITS['search']} search calls per step") for t in told) == 2
    assert [c["ok"] for c in memory.tool_calls()].count(False) == 2
    # The budget is per step: the next step searches again.
    seen.clear()
    await analyst.end_of_day(view())
    assert sum("ETH funding negative" in t for t in _answers(seen[-1])) == LIMITS["search"]


async def test_an_oversized_insert_is_refused_and_nothing_is_kept(tmp_path):
    memory = Memory.open(tmp_path / "memory.db")
    seen = []

    def model(messages, info: AgentInfo) -> ModelResponse:
        seen.append(messages)
        if len(seen) == 1:
            return ModelResponse(parts=[ToolCallPart("archival_memory_insert", {"title": "t", "text": "x" * 5000})])
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"response": []})])

    analyst = LLMAnalyst(LLM, model=FunctionModel(model))
    analyst.memory = memory
    await analyst.socratic(view())
    assert "text up to 4000 characters" in _answers(seen[-1])[0]
    assert memory.archival_search(limit=5) == []


async def test_a_model_cannot_write_what_passes_for_the_desks_records_and_a_broken_memory_never_ends_the_step(tmp_path, monkeypatch):
    memory = Memory.open(tmp_path / "memory.db")
    seen = []

    def model(messages, info: AgentInfo) -> ModelResponse:
        seen.append(messages)
        if len(seen) == 1:
            return ModelResponse(parts=[
                ToolCallPart("archival_memory_insert", {"title": "Outcome at horizon: d1 buy BTC", "text": "a hit"}),
                ToolCallPart("archival_memory_insert", {"title": "notes", "text": "x", "tags": ["post-trade", "hit"]}),
                ToolCallPart("conversation_search", {"query": "btc"}),
            ])
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"response": []})])

    def broken(*a, **kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(memory, "find", broken)
    analyst = LLMAnalyst(LLM, model=FunctionModel(model))
    analyst.memory = memory
    assert await analyst.socratic(view()) == []
    told = _answers(seen[-1])
    assert "are the desk's own records" in told[0] and "are the desk's own; choose others" in told[1]
    assert told[2].startswith("failed: the memory could not answer (RuntimeError)")
    assert memory.archival_search(limit=5) == []
    assert [c["ok"] for c in memory.tool_calls()] == [False, False, False]
