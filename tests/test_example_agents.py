"""examples/agents/: a pydantic-ai agent whose toolset is `deskgate mcp`, against a real desk,
driven by pydantic-ai's own test models (no LLM, no network)."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path

from conftest import MEMO, publish_bar
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from deskgate.approvals.client import CommandCenter
from deskgate.bus.subjects import Role
from deskgate.factory.service import Factory

ROOT = Path(__file__).resolve().parents[1]
DESKGATE = str(Path(sys.executable).parent / "deskgate")  # the console script, as a user runs it


def load_example():
    spec = importlib.util.spec_from_file_location("research_agent", ROOT / "examples" / "agents" / "research_agent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_research_agent(bus, tmp_path) -> str:
    """`deskgate agent add research`, as an operator would run it against the running desk."""
    out = tmp_path / "research.json"
    subprocess.run([DESKGATE, "agent", "add", "research", "--out", str(out), "--data-dir", str(bus.data_dir.root)],
                   check=True, capture_output=True, timeout=60)
    return str(out)


async def with_desk(bus, mission, run):
    md, _ = await bus.connect(Role.MARKETDATA)
    await publish_bar(md, "BTC", 65_000.0)
    factory = Factory(mission, bus.data_dir)
    ready = asyncio.Event()
    task = asyncio.create_task(factory.run(ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        return await run()
    finally:
        factory.stop()
        await asyncio.gather(task, return_exceptions=True)
        await md.close()


def tool_returns(messages, name: str) -> list:
    return [p.content for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart) and p.tool_name == name]


async def test_the_example_agent_reads_the_desk_through_the_gate_with_the_test_model(bus, mission, tmp_path):
    example = load_example()
    credentials = add_research_agent(bus, tmp_path)

    async def run():
        agent = example.research_agent(TestModel(call_tools=["get_guardrails", "get_portfolio"]), credentials, DESKGATE)
        async with agent:
            return await agent.run("Look at BTC.")

    result = await with_desk(bus, mission, run)
    (guardrails,) = tool_returns(result.all_messages(), "get_guardrails")
    assert guardrails["guardrails"]["max_position_pct"] == mission.guardrails.max_position_pct
    assert guardrails["guardrails"]["forbidden_assets"] == list(mission.guardrails.forbidden_assets)
    (book,) = tool_returns(result.all_messages(), "get_portfolio")
    assert book["equity_usd"] > 0


async def test_the_example_agent_submits_and_reads_a_refusal_it_can_revise_from(bus, mission, tmp_path):
    """A scripted model: dry-run, submit, then a forbidden asset; the desk stages the first, refuses the second
    with its reason, and the model sees observed, limit and reason in the tool's result."""
    example = load_example()
    credentials = add_research_agent(bus, tmp_path)
    draft = {"asset": "BTC", "venue": "binance", "side": "buy", "notional_usd": 10_000, "confidence": 0.8, "memo": dict(MEMO)}
    script = [
        ToolCallPart("check_directive", {"directive": {**draft, "directive_id": "ex-1"}}),
        ToolCallPart("submit_directive", {"directive": {**draft, "directive_id": "ex-1"}}),
        ToolCallPart("submit_directive", {"directive": {**draft, "directive_id": "ex-2", "asset": "LUNA"}}),
    ]

    def model(messages, info: AgentInfo) -> ModelResponse:
        assert {"submit_directive", "check_directive", "get_guardrails"} <= {t.name for t in info.function_tools}
        if script:
            return ModelResponse(parts=[script.pop(0)])
        return ModelResponse(parts=[TextPart("Submitted ex-1 (staged); ex-2 was refused: LUNA is forbidden.")])

    async def run():
        agent = example.research_agent(FunctionModel(model), credentials, DESKGATE)
        async with agent:
            result = await agent.run("Look at BTC.")
        async with await CommandCenter.connect(bus.data_dir) as cc:
            return result, await cc.item("ex-1")

    result, item = await with_desk(bus, mission, run)
    checked, staged, luna = tool_returns(result.all_messages(), "check_directive") + tool_returns(result.all_messages(), "submit_directive")
    assert checked["decision"] == "staged" and checked["dry_run"] is True
    assert staged["decision"] == "staged" and staged["agent"] == "research"
    assert luna["decision"] == "rejected" and luna["primary_reason"] == "asset"
    (asset,) = [c for c in luna["checks"] if c["name"] == "asset"]
    assert asset["observed"] == "LUNA" and "forbidden" in asset["reason"] and asset["limit"]
    assert item.pending and item.staged.signed_directive.signer == "agent:research"
    assert "ex-1" in result.output
