"""A pydantic-ai agent whose only tools are the desk's gate, served by `deskgate mcp`.

It holds one agent identity's credentials file (`deskgate agent add research --out
research.json`) and nothing else of the desk's: it can read the guardrails, its mandate,
the book and the market, dry-run a directive, submit it and revise it. It cannot stage,
approve or execute anything; a principal decides in the Command Center.

    python examples/agents/research_agent.py research.json openai:gpt-4o-mini

Any model pydantic-ai supports works (`anthropic:claude-sonnet-4-5`, an
OpenAI-compatible server through `openai:` and OPENAI_BASE_URL, ...).
"""

from __future__ import annotations

import asyncio
import sys

from fastmcp.client import Client
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.models import Model

INSTRUCTIONS = """\
You are a research analyst on a crypto trading desk. You draft directives; you never
trade. Before you submit one, read the guardrails and your mandate (get_guardrails),
the book (get_portfolio) and the market (get_market), and dry-run it (check_directive).
A directive needs: asset, venue, side, notional_usd, confidence in [0, 1], and a memo
with signal_evidence, position_context, proposed_action and expected_outcome. When a
verdict is rejected, read each failed check's observed value, limit and reason, and
revise it (revise_directive) only if a smaller or different trade still makes sense.
Say what you submitted and its verdict in one short paragraph."""


def the_gate(credentials: str, command: str = "deskgate") -> MCPToolset:
    """The desk's MCP server over stdio, holding this agent's credentials file only."""
    return MCPToolset(Client(StdioTransport(command=command, args=["mcp", "--agent-credentials", credentials])))


def research_agent(model: Model | str, credentials: str, command: str = "deskgate") -> Agent:
    return Agent(model, toolsets=[the_gate(credentials, command)], instructions=INSTRUCTIONS)


async def main(credentials: str, model: str) -> None:
    agent = research_agent(model, credentials)
    async with agent:
        result = await agent.run("Look at BTC. If the signal supports a trade, draft one directive for a principal.")
    print(result.output)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: research_agent.py CREDENTIALS_FILE MODEL   (e.g. research.json openai:gpt-4o-mini)")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
