"""The gate as an MCP server: one agent's `DeskClient`, offered as tools to any MCP client.

The server holds one agent's credentials and nothing else, so it has exactly that
agent's rights: what a model does through these tools is what the agent could do,
and the broker refuses the rest. `deskgate mcp --agent-credentials FILE` builds it
over a connected client (cli/mcp.py); tests build it the same way in-process.

Tool results are the client's models as JSON (structured content and text), so a
model reads every check with its observed value, limit and reason, and can revise.
Arguments are validated before anything reaches the desk; a bad one, or one the tool
does not take, comes back as a tool error naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from deskgate.client.client import DeskClient
from deskgate.client.errors import DeskClientError
from deskgate.client.models import Book, DeskFacts, DirectiveDraft, MarketView, Outcome, Revision, Verdict
from deskgate.domain.directive import Directive, DirectiveId

SCHEMA_URI = "deskgate://schema/directive"
GUARDRAILS_URI = "deskgate://desk/guardrails"

INSTRUCTIONS = """\
You are connected to a deskgate trading desk as agent {agent}. You draft directives (proposed trades);
deterministic guardrails decide which reach a human principal, and a principal decides what executes.
Read get_guardrails (the desk's limits and your mandate) and get_portfolio first. check_directive is a
dry run that stages nothing; submit_directive signs and submits. A rejected verdict lists every failed
check with what was observed, the limit and the reason: revise with revise_directive (a new id) or stop.
A staged directive waits for a principal: wait_for_outcome tells you if it was approved, rejected,
expired, invalidated or executed (with the fill)."""

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
DRAFTS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)

WaitSeconds = Annotated[float, Field(ge=0, le=60, description="How long to wait for the factory's verdict, in seconds.")]
OutcomeWait = Annotated[float, Field(ge=0, le=600, description="How long to wait for the directive to end, in seconds.")]


def build_server(client: DeskClient) -> MCPServer:
    """An MCP server whose tools act through `client`, and only through it."""
    server = MCPServer(name="deskgate", instructions=INSTRUCTIONS.format(agent=client.agent), log_level="WARNING")
    server.middleware.append(UnknownArguments(server))

    @server.tool(annotations=DRAFTS)
    async def submit_directive(directive: DirectiveDraft, wait_seconds: WaitSeconds = 10.0) -> Verdict:
        """Sign and submit a directive to the desk. Returns the policy engine's verdict with every check
        (name, passed, observed, limit, reason). `staged` means it passed every guardrail and waits for a
        principal; `rejected` lists what failed. A directive id is evaluated once."""
        return await _done(client.submit(directive, wait=wait_seconds))

    @server.tool(annotations=READ_ONLY)
    async def check_directive(directive: DirectiveDraft) -> Verdict:
        """Dry run: the verdict the policy engine would give now, against the book the factory last
        published. Nothing is sent, signed or staged."""
        return await _done(client.check(directive))

    @server.tool(annotations=DRAFTS)
    async def revise_directive(directive_id: DirectiveId, changes: Revision, wait_seconds: WaitSeconds = 10.0) -> Verdict:
        """Submit a revised copy of a directive submitted through this server, under a new id
        (`<id>-r<n>` unless `changes.directive_id` names one). Give only the fields that change."""
        return await _done(client.revise(directive_id, wait=wait_seconds, **changes.model_dump(exclude_none=True)))

    @server.tool(annotations=READ_ONLY)
    async def get_verdict(directive_id: DirectiveId) -> Verdict:
        """The verdict that decided a directive id, with every check."""
        verdict = await _done(client.verdict(directive_id))
        if verdict is None:
            raise ToolError(f"no verdict on directive {directive_id}: it was not submitted, or the factory has not evaluated it yet")
        return verdict

    @server.tool(annotations=READ_ONLY)
    async def wait_for_outcome(
        directive_id: DirectiveId, wait_seconds: OutcomeWait = 60.0, until: Literal["filled", "approved"] = "filled"
    ) -> Outcome:
        """Where a directive stands after the policy engine, waiting up to `wait_seconds` for it to end:
        executed (with the fill), venue_rejected, rejected (with the principal's reason), expired,
        invalidated (with the failed checks) or not_staged. `final` is false if it has not ended yet:
        ask again later. `until="approved"` stops waiting at approval instead of the fill."""
        return await _done(client.outcome(directive_id, wait=wait_seconds, until_fill=until == "filled"))

    @server.tool(annotations=READ_ONLY)
    async def get_portfolio() -> Book:
        """The desk's book as the factory last published it: equity, cash, drawdown, positions, the
        exposure pending directives reserve, and the policy view (prices, breaker, Governor damping)."""
        return await _done(client.book())

    @server.tool(annotations=READ_ONLY)
    async def get_market(
        asset: Annotated[str | None, Field(min_length=1, max_length=64, description="BTC, btc or BTC/USDT; every desk asset when left out.")] = None,
    ) -> list[MarketView]:
        """The latest price, window summary (return, volatility, volume, regime) and signal (direction,
        drift, probability up) of one asset, or of every asset the desk trades."""
        return await _done(client.markets(None if asset is None else [asset]))

    @server.tool(annotations=READ_ONLY)
    async def get_guardrails() -> DeskFacts:
        """The desk's guardrails and approval settings, as the factory enforces them, and your mandate
        (limits that only tighten the guardrails for what you draft)."""
        return await _done(client.desk())

    @server.resource(SCHEMA_URI, name="directive-schema", title="deskgate directive JSON Schema", mime_type="application/json")
    def directive_schema() -> str:
        """The wire format of a directive (what `deskgate schema directive` prints)."""
        return json.dumps(Directive.model_json_schema(), indent=2)

    @server.resource(GUARDRAILS_URI, name="guardrails", title="the desk's guardrails and this agent's mandate", mime_type="application/json")
    async def guardrails() -> str:
        """The mission's guardrails, approval settings and this agent's mandate, as the factory published them."""
        return (await _done(client.desk())).model_dump_json(indent=2)

    return server


async def _done(call):
    """The client's answer, or its error as a tool error a model can read."""
    try:
        return await call
    except DeskClientError as exc:
        raise ToolError(str(exc)) from None


class UnknownArguments:
    """Refuses a tool call that passes an argument the tool does not take. The SDK drops such
    arguments silently, so a misspelt `wait` would otherwise quietly become the default."""

    def __init__(self, server: MCPServer):
        self.server = server

    async def __call__(self, ctx, call_next):
        params = ctx.params if ctx.method == "tools/call" and isinstance(ctx.params, Mapping) else None
        arguments = params.get("arguments") if params else None
        if isinstance(arguments, Mapping) and arguments:
            tools = {t.name: t for t in await self.server.list_tools()}
            tool = tools.get(params.get("name"))
            if tool is not None:
                known = set(tool.input_schema.get("properties", {}))
                unknown = sorted(set(arguments) - known)
                if unknown:
                    return _error(
                        f"{tool.name} takes no argument {', '.join(map(repr, unknown))}; its arguments are: {', '.join(sorted(known)) or 'none'}"
                    )
        return await call_next(ctx)


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


__all__ = ["GUARDRAILS_URI", "SCHEMA_URI", "build_server"]
