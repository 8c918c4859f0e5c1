"""`deskgate tour`: the gated decision spine end to end, scripted, on a real bus, in a temporary directory.

Scripted directives show every guardrail refusing (the agents are in `deskgate demo`). Two
scripted principals, alice and bob, decide the approvals; the demo says so
wherever they act. Towards the end the demo takes over the price feed to script
a market move and a crash, and says so too.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from deskgate.agents.submit import AgentClient
from deskgate.approvals.client import CommandCenter
from deskgate.bus.connect import connect_as
from deskgate.bus.reader import last_message
from deskgate.bus.subjects import Role, bar_subject
from deskgate.cli.ops import fills_table, funnel_table, portfolio_table
from deskgate.config import load_mission, render_mission_template
from deskgate.domain.market import Bar
from deskgate.paths import DataDir
from deskgate.people.principals import scripted_principal
from deskgate.policy.beliefs import BeliefsFile
from deskgate.stack import Stack

EQUITY = 250_000.0
MEMO = {
    "signal_evidence": "scripted for the demo: trend model +1.6 sigma on 4h bars",
    "position_context": "scripted for the demo",
    "proposed_action": "scripted for the demo",
    "expected_outcome": "scripted for the demo: +2% over three days",
}


def d(directive_id: str, asset: str, side: str, notional: float, *, venue="binance", confidence=0.78, leverage=1.0, **extra) -> bytes:
    body = {
        "directive_id": directive_id,
        "asset": asset,
        "venue": venue,
        "side": side,
        "notional_usd": notional,
        "leverage": leverage,
        "confidence": confidence,
        "memo": MEMO,
        "agent": "desk",  # the identity whose key signs it: the desk's own agents
    }
    body.update(extra)
    return json.dumps(body).encode()


# (payload, what it shows)
SCRIPT: list[tuple[bytes, str]] = [
    (d("d-btc-long", "BTC", "buy", 40_000), "staged: 16% of equity"),
    (d("d-eth-long", "eth", "buy", 30_000, venue="OKX", confidence=0.72), "staged: symbol and venue normalised"),
    (d("d-sol-big", "SOL/USDT", "buy", 55_000, venue="bybit", confidence=0.81), "staged, explicit: above 50,000 USD"),
    (d("d-sol-trim", "SOL", "sell", 5_000), "staged (a principal will reject it)"),
    (d("d-btc-more", "BTC", "buy", 30_000, confidence=0.9), "position: 40k pending + 30k = 28% > 25%"),
    (d("d-luna", "LUNA/USDT", "buy", 10_000), "forbidden asset, pair notation"),
    (d("d-luna-glued", "lunausdt", "buy", 10_000), "forbidden asset, concatenated pair"),
    (d("d-luna-greek", "LU\u039dA", "buy", 10_000), "look-alike: Greek capital Nu"),
    (d("d-luna-wide", "\uff2c\uff35\uff2e\uff21", "buy", 10_000), "full-width letters"),
    (d("d-ftx", "ETH", "buy", 5_000, venue="ftx"), "venue not allowed"),
    (d("d-doge", "DOGE", "buy", 5_000), "no market price for DOGE"),
    (d("d-unsure", "ETH", "buy", 5_000, confidence=0.41), "confidence below 0.65"),
    (d("d-levered", "BTC", "sell", 5_000, leverage=5.0), "order leverage 5x > 3x"),
    (d("d-negative", "BTC", "buy", -1_000), "schema: negative notional"),
    (d("d-self-sized", "BTC", "buy", 1_000, position_pct=0.1), "schema: the agent's own risk figure is refused"),
    (b'{"directive_id": "d-broken", "asset": ', "schema: not JSON"),
    (d("d-btc-long", "BTC", "buy", 1_000), "duplicate id: never staged twice"),
]


def _demo_mission(root: Path) -> Path:
    text = render_mission_template(data_dir="./data", desk_name="deskgate demo desk")
    text = text.replace("starting_equity_usd: 1000000", f"starting_equity_usd: {int(EQUITY)}")
    text = text.replace("interval_seconds: 1.0", "interval_seconds: 0.5")
    text = text.replace("  port: 8700\n", "  port: 0\n")  # the Command Center on any free port
    path = root / "mission.yaml"
    path.write_text(text)
    return path


def run_tour(console: Console, keep: bool = False) -> None:
    root = Path(tempfile.mkdtemp(prefix="deskgate-tour-"))
    started = time.monotonic()
    mission = load_mission(_demo_mission(root))
    data_dir = DataDir.at(mission.data_dir)
    console.rule("[bold]deskgate tour[/]: the gated decision spine")
    console.print(
        "A real nats-server (JetStream on disk, one account and one set of credentials per role), the factory, the paper\n"
        "executor, a seeded market simulator and the Command Center, each its own process, in a temporary directory.\n"
        "Guardrails are the article's defaults; the paper account starts with "
        f"{EQUITY:,.0f} USD.\n"
    )
    with console.status("starting the desk..."):
        stack = Stack(mission, data_dir, services=("factory", "executor", "marketdata", "web")).start()
    try:
        from deskgate.cli.desk import where_table

        console.print(where_table(stack))
        asyncio.run(_script(console, stack, data_dir, mission))
    finally:
        with console.status("shutting down: services first, then the bus..."):
            stack.stop()
        console.print(f"[green]desk stopped cleanly[/] after {time.monotonic() - started:.1f}s")
        if keep:
            console.print(f"data kept in {root}; browse it again with `deskgate up --mission {root / 'mission.yaml'}`")
        else:
            shutil.rmtree(root, ignore_errors=True)


async def _wait(predicate, timeout: float = 15.0, what: str = "the desk"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


async def _script(console: Console, stack: Stack, data_dir: DataDir, mission) -> None:
    agent = await AgentClient.connect(data_dir)
    # The scripted principals are accounts with sealed keys of their own, like any principal.
    signers = {who: scripted_principal(data_dir, who) for who in ("alice", "bob")}
    cc = await CommandCenter.connect(data_dir)
    observer, _ = await connect_as(data_dir, Role.OBSERVER, reconnect=False)
    try:
        async def prices_known():
            return all([await last_message(observer, "MARKET", bar_subject(a)) for a in mission.marketdata.assets])

        with console.status("waiting for the first prices..."):
            await _wait(prices_known, what="prices")
            await asyncio.sleep(1.0)

        # 1. Directives through every check.
        console.rule("1. an agent's directives meet the policy engine")
        console.print("Submitted with the [bold]agent[/] role's credentials (scripted, standing in for the agents).")
        verdicts = await agent.submit_payloads([p for p, _ in SCRIPT], wait=15)
        t = Table(show_lines=False)
        for col in ("directive", "decision", "failed check", "why", "the demo shows"):
            t.add_column(col, overflow="fold")
        for (_, shows), v in zip(SCRIPT, verdicts):
            if v is None:
                t.add_row("?", "[yellow]no verdict[/]", "", "", shows)
                continue
            failed = [c for c in v.evaluation.checks if not c.passed]
            colour = {"staged": "green", "rejected": "red", "duplicate": "yellow"}[v.decision]
            t.add_row(
                v.directive_id or "(none)",
                f"[{colour}]{v.decision}[/]" + (" [bold](explicit)[/]" if v.evaluation.explicit_approval else ""),
                failed[0].name if failed else "",
                failed[0].reason if failed else "",
                shows,
            )
        console.print(t)

        # 2. The same engine offline: checks a three-asset book cannot reach.
        console.rule("2. the same engine offline (`deskgate policy check`)")
        await _offline(console, mission)

        # 3. A human decides.
        console.rule("3. principals decide (scripted principals alice and bob)")
        pending = await cc.pending()
        console.print(f"{len(pending)} directives await a principal: " + ", ".join(i.directive_id for i in pending))
        for did, who in (("d-btc-long", "alice"), ("d-eth-long", "alice")):
            outcomes = await cc.decide(did, "approve", signers[who])
            _say(console, did, who, "approves", outcomes)
        console.print("[bold]d-sol-big[/] is explicit: a batch approval is refused, it must be approved on its own.")
        outcomes = await cc.decide("d-sol-big", "approve", signers["bob"], batch_id="demo-batch")
        _say(console, "d-sol-big", "bob", "approves in a batch", outcomes)
        outcomes = await cc.decide("d-sol-big", "approve", signers["bob"])
        _say(console, "d-sol-big", "bob", "approves on its own (typed confirmation in the CLI)", outcomes)
        outcomes = await cc.decide("d-sol-trim", "reject", signers["alice"], "trimming SOL contradicts the new long")
        _say(console, "d-sol-trim", "alice", "rejects", outcomes)

        # 4. Time of check vs time of use.
        console.rule("4. the price moves between staging and approval")
        console.print("The demo takes over the price feed now (the simulator stops) to script the market.")
        stack.stop_service("marketdata")
        md, _ = await connect_as(data_dir, Role.MARKETDATA, reconnect=False)
        prices = {}
        for asset in mission.marketdata.assets:
            last = await last_message(observer, "MARKET", bar_subject(asset))
            prices[asset] = Bar.model_validate_json(last.data).close
        (v,) = await agent.submit_payloads([d("d-eth-add", "ETH", "buy", 5_000)])
        console.print(f"d-eth-add {v.decision} at ETH {prices['ETH']:,.2f}; then ETH jumps 4% before anyone approves.")
        await _bar(md, "ETH", prices["ETH"] * 1.04)
        await asyncio.sleep(0.5)
        outcomes = await cc.decide("d-eth-add", "approve", signers["alice"])
        _say(console, "d-eth-add", "alice", "approves", outcomes)

        # 5. The circuit breaker.
        console.rule("5. a crash trips the circuit breaker")
        console.print("Scripted crash: BTC and SOL fall 45%. Drawdown passes 15%; the factory trips the breaker.")
        await _bar(md, "BTC", prices["BTC"] * 0.55)
        await _bar(md, "SOL", prices["SOL"] * 0.55)

        async def tripped():
            state = await cc.breaker()
            return state if state.state == "tripped" and state.trip_revision else None

        state = await _wait(tripped, what="the breaker to trip")
        console.print(f"[bold red]breaker tripped[/]: {state.trip.reason}")
        (v,) = await agent.submit_payloads([d("d-after-crash", "ETH", "sell", 2_000)])
        console.print(f"d-after-crash: [red]{v.decision}[/] ({v.primary_reason}): everything is refused while tripped")
        console.print(
            "Only a principal can reset it: the factory, the agent and every other role are refused by nats-server."
        )
        nc, events = await connect_as(data_dir, Role.AGENT, reconnect=False)
        await nc.publish("$KV.deskgate_breaker.reset", b'{"sneaky": true}')
        await nc.flush()
        await asyncio.sleep(0.3)
        await nc.close()
        console.print(f"  agent tries to write the reset key -> broker: [red]{events.violations[0] if events.violations else 'no answer'}[/]")
        state = await cc.reset_breaker(signers["bob"], "crash reviewed; positions and limits unchanged; resume")
        console.print(f"  bob (principal) resets it with a reason -> [green]{state.state}[/]")

        async def armed_in_factory():
            (probe,) = await agent.submit_payloads([d(f"d-after-reset-{time.monotonic_ns()}", "ETH", "sell", 2_000)])
            return probe if probe and probe.decision == "staged" else None

        probe = await _wait(armed_in_factory, what="the factory to see the reset")
        console.print(f"  {probe.directive_id}: [green]{probe.decision}[/]: trading resumes, drawdown now measured from here")

        # 6. Where it all ended.
        console.rule("6. fills, book and funnel")
        async def funnel_caught_up():
            f = await cc.funnel()
            return f if f and f.at > probe.at else None

        with console.status("waiting for the factory's next funnel and book..."):
            funnel = await _wait(funnel_caught_up, what="the funnel")
            await asyncio.sleep(0.6)
        console.print(fills_table(await cc.fills()))
        snap = await cc.portfolio()
        if snap:
            console.print(portfolio_table(snap))
        console.print(funnel_table(funnel))
        console.print(
            Panel(
                "Next: `deskgate init` writes a mission.yaml; `deskgate up` runs this desk until Ctrl-C;\n"
                "`deskgate directive submit`, `deskgate approvals list|show|approve|reject`, `deskgate breaker`,\n"
                "`deskgate portfolio`, `deskgate stats` work the desk. (`deskgate tour --keep` keeps this run's data.)",
                title="try it",
            )
        )
        await md.close()
    finally:
        await agent.close()
        await cc.close()
        await observer.close()


async def _bar(md, asset: str, price: float) -> None:
    await md.publish(bar_subject(asset), Bar.at_price(asset, price, "demo-script", 0.5).to_bytes())
    await md.flush()


def _say(console: Console, did: str, who: str, verb: str, outcomes) -> None:
    if not outcomes:
        console.print(f"  {who} {verb} {did} -> [yellow]no answer yet[/]")
        return
    parts = []
    for o in outcomes:
        colour = {"executed": "green", "ordered": "green", "awaiting_second_approval": "cyan"}.get(o.outcome, "red")
        text = f"[{colour}]{o.outcome}[/]"
        if o.fill is not None and o.fill.status == "filled":
            text += f" ({o.fill.quantity:,.6f} {o.fill.asset} at {o.fill.price:,.2f})"
        elif o.reason:
            text += f" ({o.reason})"
        parts.append(text)
    console.print(f"  {who} {verb} {did} -> " + " -> ".join(parts))


async def _offline(console: Console, mission) -> None:
    from deskgate.cli.policy import check_lines

    beliefs = BeliefsFile.model_validate(
        {
            "equity_usd": 100_000,
            "peak_equity_usd": 100_000,
            "positions": {a: 25_000 for a in ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "A10", "A11", "A12"]},
            "breaker": "armed",
        }
    ).to_beliefs()
    drawdown = BeliefsFile.model_validate({"equity_usd": 84_000, "peak_equity_usd": 100_000}).to_beliefs()
    lines = [d("x-thirteenth", "A13", "buy", 5_000)]
    t = Table()
    for col in ("beliefs", "directive", "decision", "failed check", "observed", "limit"):
        t.add_column(col)
    for label, state, line in (
        ("12 assets at 25% each (3.0x gross)", beliefs, lines[0]),
        ("equity 84k, peak 100k (16% drawdown)", drawdown, d("x-any", "BTC", "buy", 1_000)),
    ):
        (verdict,) = list(check_lines([line], state, mission))
        failed = [c for c in verdict["checks"] if not c["passed"]]
        t.add_row(
            label,
            verdict["directive_id"],
            f"[red]{verdict['decision']}[/]" if failed else f"[green]{verdict['decision']}[/]",
            failed[0]["name"] if failed else "",
            f"{failed[0]['observed']:.3f}" if failed and isinstance(failed[0]["observed"], float) else "",
            str(failed[0]["limit"]) if failed else "",
        )
    console.print(
        "Portfolio leverage cannot bind before the 25% position limit with three assets, and the breaker trips\n"
        "the moment drawdown passes 15%; the same engine, offline, shows both checks refusing:"
    )
    console.print(t)
