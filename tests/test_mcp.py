"""The MCP server, driven by the official SDK's own client against a real desk: in-process over the
SDK's in-memory transport, and as `deskgate mcp` over stdio."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from conftest import P, wait_for
from mcp import Client, StdioServerParameters
from test_client import agent_client, draft
from test_factory import make_mission, running

from deskgate.client.mcp_server import GUARDRAILS_URI, SCHEMA_URI, build_server
from deskgate.identity.credentials import read_credentials, write_credentials
from deskgate.identity.names import BUILT_IN_AGENT
from deskgate.identity.registry import default_credentials_path

TOOLS = {"submit_directive", "check_directive", "revise_directive", "get_verdict", "wait_for_outcome", "get_portfolio", "get_market", "get_guardrails"}


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "text", None))


async def call(client: Client, tool: str, **arguments) -> dict:
    """A tool call that must succeed; its structured result."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    return result.structured_content


async def refused(client: Client, tool: str, **arguments) -> str:
    """A tool call that must fail; the error's text."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result
    return text_of(result)


async def through_the_tools_to_a_fill(client: Client, cc) -> None:
    """The path every MCP test drives: dry run, submit, a principal approves, the fill comes back."""
    checked = await call(client, "check_directive", directive=draft(directive_id="m1", notional_usd=20_000))
    assert checked["decision"] == "staged" and checked["dry_run"] is True
    verdict = await call(client, "submit_directive", directive=draft(directive_id="m1", notional_usd=20_000))
    assert verdict["decision"] == "staged" and verdict["seq"] >= 1
    assert {c["name"] for c in verdict["checks"]} >= {"asset", "venue", "confidence", "position", "explicit_approval"}
    assert all({"observed", "limit", "reason", "passed"} <= set(c) for c in verdict["checks"])

    waiting = asyncio.create_task(call(client, "wait_for_outcome", directive_id="m1", wait_seconds=30))
    decided = await cc.decide("m1", "approve", P["alice"])
    assert [o.outcome for o in decided] == ["ordered", "executed"]
    outcome = await waiting
    assert outcome["state"] == "executed" and outcome["final"] is True and outcome["principals"] == ["alice"]
    assert outcome["fill"]["price"] == 65_000.0 and outcome["fill"]["notional_usd"] == pytest.approx(20_000)
    assert (await call(client, "get_verdict", directive_id="m1"))["seq"] == verdict["seq"]


async def a_forbidden_asset_comes_back_with_its_reason(client: Client) -> None:
    verdict = await call(client, "submit_directive", directive=draft(directive_id="luna", asset="LUNA"))
    assert verdict["decision"] == "rejected" and verdict["primary_reason"] == "asset"
    (asset,) = [c for c in verdict["checks"] if c["name"] == "asset"]
    assert not asset["passed"]
    assert (asset["observed"], asset["limit"]) == ("LUNA", "not LUNA, UST") and "forbidden asset LUNA" in asset["reason"]
    # The text a model reads carries the same.
    result = await client.call_tool("submit_directive", {"directive": draft(directive_id="luna2", asset="luna/usdt")})
    assert "trades forbidden asset LUNA" in text_of(result)


# -- in-process: the server over a DeskClient, the SDK's client over its in-memory transport ------


async def test_tools_and_resources_are_listed_and_read(bus):
    async with running(bus, make_mission(), executor=False), agent_client(bus) as desk:
        async with Client(build_server(desk)) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            assert {str(r.uri) for r in (await client.list_resources()).resources} == {SCHEMA_URI, GUARDRAILS_URI}
            schema = json.loads((await client.read_resource(SCHEMA_URI)).contents[0].text)
            assert schema["$id"] == "https://deskgate.dev/schema/directive.json" and "memo" in schema["required"]
            guardrails = json.loads((await client.read_resource(GUARDRAILS_URI)).contents[0].text)
            assert guardrails["guardrails"]["forbidden_assets"] == ["LUNA", "UST"] and guardrails["agent"] == "desk"
            facts = await call(client, "get_guardrails")
            assert facts["guardrails"]["max_position_pct"] == 25.0 and facts["mandate"] is None
            markets = (await call(client, "get_market"))["result"]
            assert [m["asset"] for m in markets] == ["BTC", "ETH", "SOL"] and markets[0]["price"] == 65_000.0
            assert (await call(client, "get_market", asset="eth"))["result"][0]["price"] == 3_500.0
            book = await call(client, "get_portfolio")
            assert book["equity_usd"] == 100_000.0 and book["policy"]["breaker_tripped"] is False


async def test_a_directive_goes_through_the_tools_to_approval_and_a_fill(bus):
    async with running(bus, make_mission()) as (factory, _, cc, _md), agent_client(bus) as desk:
        async with Client(build_server(desk)) as client:
            await through_the_tools_to_a_fill(client, cc)
            book = await wait_for(lambda: _holding(client))
            assert book["positions"][0]["asset"] == "BTC" and book["cash_usd"] == pytest.approx(80_000.0)
            await a_forbidden_asset_comes_back_with_its_reason(client)


async def _holding(client):
    book = await call(client, "get_portfolio")
    return book if book["positions"] else None


async def test_a_model_revises_a_rejected_directive(bus):
    async with running(bus, make_mission(), executor=False), agent_client(bus) as desk:
        async with Client(build_server(desk)) as client:
            first = await call(client, "submit_directive", directive=draft(directive_id="big", notional_usd=30_000))
            position = next(c for c in first["checks"] if c["name"] == "position")
            assert not position["passed"] and position["observed"] == pytest.approx(30.0) and position["limit"] == 25.0
            second = await call(client, "revise_directive", directive_id="big", changes={"notional_usd": 20_000})
            assert second["directive_id"] == "big-r1" and second["decision"] == "staged"
            pending = await call(client, "wait_for_outcome", directive_id="big-r1", wait_seconds=0)
            assert (pending["state"], pending["final"]) == ("staged", False)
            gone = await call(client, "wait_for_outcome", directive_id="big", wait_seconds=0)
            assert gone["state"] == "not_staged" and gone["reason"].startswith("position: ")


async def test_arguments_that_do_not_validate_are_named(bus):
    async with running(bus, make_mission(), executor=False) as (factory, *_), agent_client(bus) as desk:
        async with Client(build_server(desk)) as client:
            bad = dict(draft(), notional_usd="lots")
            del bad["memo"]
            text = await refused(client, "submit_directive", directive=bad)
            assert "directive.notional_usd" in text and "directive.memo" in text
            text = await refused(client, "check_directive", directive=dict(draft(), position_pct=10))
            assert "directive.position_pct" in text and "Extra inputs are not permitted" in text
            assert "wait_seconds" in await refused(client, "submit_directive", directive=draft(), wait_seconds=3600)
            assert "takes no argument 'wait'" in await refused(client, "submit_directive", directive=draft(), wait=5)
            assert "directive_id" in await refused(client, "get_verdict", directive_id="a.>")
            assert "no verdict on directive nothing" in await refused(client, "get_verdict", directive_id="nothing")
            assert "changes.side" in await refused(client, "revise_directive", directive_id="x", changes={"side": "hold"})
            assert "sent no directive 'x'" in await refused(client, "revise_directive", directive_id="x", changes={"side": "sell"})
            assert "contains '!'" in await refused(client, "get_market", asset="BTC!")
            # Nothing invalid reached the desk.
            assert factory.funnel().received == 0


async def test_the_tools_over_streamable_http_on_loopback(bus):
    """The HTTP transport `deskgate mcp --http` serves, here in-process on a free loopback port."""
    import uvicorn

    async with running(bus, make_mission(), executor=False), agent_client(bus) as desk:
        app = build_server(desk).streamable_http_app(host="127.0.0.1")
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
        serving = asyncio.create_task(server.serve())
        try:
            await wait_for(lambda: server.started or serving.done())
            port = server.servers[0].sockets[0].getsockname()[1]
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                await a_forbidden_asset_comes_back_with_its_reason(client)
                assert "takes no argument 'wait'" in await refused(client, "check_directive", directive=draft(), wait=1)
        finally:
            server.should_exit = True
            await serving


# -- `deskgate mcp` as a process, over stdio -----------------------------------------------------


def _server_params(credentials, *extra) -> StdioServerParameters:
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "PATH": os.environ.get("PATH", "")}
    return StdioServerParameters(command=sys.executable, args=["-m", "deskgate", "mcp", "--agent-credentials", str(credentials), *extra], env=env)


async def test_deskgate_mcp_over_stdio_drives_a_real_desk(bus, tmp_path):
    """The desk agent's own credentials file, handed to `deskgate mcp` with the bus's address.

    Passes once agent identities land on the bus (the `desk` identity's NATS user) and in the
    factory (directives signed by `agent:desk` accepted): until then the bus refuses the file.
    """
    creds = read_credentials(default_credentials_path(bus.data_dir, BUILT_IN_AGENT))
    path = write_credentials(tmp_path / "desk-agent.json", creds.model_copy(update={"servers": (bus.url,)}))
    async with running(bus, make_mission()) as (factory, _, cc, _md):
        async with Client(_server_params(path), read_timeout_seconds=60) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            await through_the_tools_to_a_fill(client, cc)
            await a_forbidden_asset_comes_back_with_its_reason(client)


def _deskgate_mcp(*args, timeout=60) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "400"}  # one line per message
    return subprocess.run([sys.executable, "-m", "deskgate", "mcp", *args], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def test_deskgate_mcp_names_a_credentials_file_it_cannot_use(tmp_path):
    missing = _deskgate_mcp("--agent-credentials", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and f"no agent credentials file at {tmp_path / 'nope.json'}" in missing.stderr.decode()
    assert missing.stdout == b""  # stdout is the MCP channel: an error never goes there
    (tmp_path / "bad.json").write_text("{}")
    (tmp_path / "bad.json").chmod(0o600)
    bad = _deskgate_mcp("--agent-credentials", str(tmp_path / "bad.json"))
    assert bad.returncode == 2 and "is not an agent credentials file" in bad.stderr.decode()


async def test_deskgate_mcp_names_a_refusal_by_the_bus(bus, tmp_path):
    from deskgate.identity.registry import AgentRegistry
    from deskgate.paths import DataDir

    other = DataDir.at(tmp_path / "other").ensure()
    path = write_credentials(tmp_path / "outsider.json", AgentRegistry.open(other).add("outsider", [bus.url]))
    proc = await asyncio.to_thread(_deskgate_mcp, "--agent-credentials", str(path))
    assert proc.returncode == 2 and "the bus refused agent outsider's credentials" in proc.stderr.decode()


def test_deskgate_mcp_serves_http_on_loopback_only_unless_told(tmp_path):
    for host in ("0.0.0.0", "127.0.0.2"):  # 127.0.0.2 is loopback, but the SDK's rebinding guard covers 127.0.0.1 only
        proc = _deskgate_mcp("--agent-credentials", str(tmp_path / "x.json"), "--http", "--host", host)
        assert proc.returncode == 2 and f"--host {host} is not one of 127.0.0.1, localhost or ::1" in proc.stderr.decode(), proc.stderr
        assert "--allow-remote" in proc.stderr.decode()

