"""Multi-day replays through the real bus, factory and executor: the funnel adds up, memory carries
across days and restarts, and the LLM path runs end to end over real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from llm_server import LocalLLM, Script
from test_factory import make_mission, running
from test_postgres import pg_url  # noqa: F401 - the fixture: a fresh schema on the machine's PostgreSQL

from deskgate.agents.llm import LLMAnalyst
from deskgate.agents.offline import OfflineAnalyst
from deskgate.bus.reader import read_stream
from deskgate.config import ModelSettings
from deskgate.domain.evaluation import PolicyVerdict
from deskgate.domain.governor import GovernorHold
from deskgate.memory.store import Memory
from deskgate.replay import REPLAY_START, Replay


def desk_mission(**over):
    return make_mission(paper={"starting_equity_usd": 1_000_000.0, "slippage_bps": 5.0, "fee_bps": 10.0}, approvals={"expiry_seconds": 3600}, **over)


def assert_funnel_adds_up(f, submitted: int) -> None:
    assert f.received == submitted
    assert f.received == f.staged + f.policy_rejected + f.duplicates
    assert sum(f.policy_rejections_by_reason.values()) == f.policy_rejected
    assert f.staged == f.approved + f.human_rejected + f.expired + f.pending
    assert f.approved == f.ordered + f.invalidated
    assert f.ordered == f.executed + f.venue_rejected  # every order filled or refused by the end
    assert f.pending == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_three_day_replay_through_the_real_desk_adds_up(bus, backend, pg_url):  # noqa: F811
    # A quicker Governor than the default, so three days show it at work.
    mission = desk_mission(agents={"governor": {"baseline": 4, "h": 3.0}})
    if backend == "postgresql":  # every store on PostgreSQL, the agents' memory included
        bus.data_dir.keep_storage(pg_url)
    async with running(bus, mission, store_url=bus.data_dir.storage_url()) as (factory, agent, cc, md):
        r = await Replay(mission, bus.data_dir, OfflineAnalyst(), days=3).run()
    assert r.cycles == {"morning_brief": 3, "intraday": 144, "eod_review": 3}
    assert r.summaries == 3 * 48 * 3 and r.signals == r.summaries
    c = r.counts
    assert c["submitted"] > 0 and c["drafts"] > 0
    assert_funnel_adds_up(r.funnel, c["submitted"])
    assert c["submitted"] == c["drafts"] + c.get("revisions", 0)
    assert c["staged"] == r.funnel.staged and c["rejected"] == r.funnel.policy_rejected
    # The simulated principal decided everything staged, by its rule.
    assert len(r.decisions) == r.funnel.staged
    assert all(d.outcome in ("executed", "rejected", "invalidated") for d in r.decisions)
    assert {d.decision for d in r.decisions if d.outcome == "executed"} == {"approve"}
    assert all(d.decision == "reject" for d in r.decisions if d.outcome == "rejected")
    # The Governor caught the offline analyst's growing boldness, the factory damped what followed,
    # and the simulated principal cleared it at the next morning brief.
    assert r.governor_interventions >= 1 and r.governor_damped >= 1 and r.governor_clears >= 1
    # P&L is the book's: equity moved from the start by fills, fees and marks.
    assert r.last is not None and r.last.fees_paid_usd > 0
    assert c["insights"] > 0 and c.get("invented_citations", 0) == 0
    # Every cycle is on the bus, labelled with its analyst.
    nc, _ = await bus.connect("observer")
    try:
        kinds = [m.subject async for m in read_stream(nc, "INSIGHTS", "consciousness.insights.>")]
        verdicts = [PolicyVerdict.model_validate_json(m.data) async for m in read_stream(nc, "STATUS", "factory.status.policy.>")]
        holds = [GovernorHold.model_validate_json(m.data) async for m in read_stream(nc, "STATUS", "factory.status.governor")]
    finally:
        await nc.close()
    # The factory itself damped what the agents sent while drifting, and lifted it only after the clear.
    damped = [c.reason for v in verdicts for c in v.evaluation.checks if c.name == "confidence" and "by the Governor" in c.reason]
    assert damped and all("damped x0.8" in reason for reason in damped)
    assert any(h.damping == 0.8 for h in holds) and any(h.damping == 1.0 and h.clears_read >= 1 for h in holds)
    assert kinds.count("consciousness.insights.morning_brief") == 3 and kinds.count("consciousness.insights.eod_review") == 3
    assert kinds.count("consciousness.insights.intraday") == 144
    assert kinds.count("consciousness.insights.governor") >= 1
    assert all("offline analyst" in b.analyst for b in r.briefs)
    # Memory: each review archived, the regime and hypotheses in core, the second brief reading the first review.
    memory = Memory.for_desk(bus.data_dir, read_only=True)
    docs = memory.archival_search("end-of-day review", tags=["eod-review"])
    assert len(docs) == 3
    assert memory.block("regime").value.startswith("2026-01-07:")
    assert memory.search("Governor cleared by simulated-principal", kinds=["note"])
    assert memory.block("hypotheses").value == "\n".join(r.reviews[-1].review.hypotheses)
    assert any(line.startswith("carried from yesterday's review: ") for line in r.briefs[1].brief.overnight)
    assert memory.search(r.briefs[1].brief.position_risk.split(",")[0], kinds=["note"])
    # Post-trade: every executed directive analysed once at its fill, and judged at its 24 h horizon.
    executed = {d.directive_id for d in r.decisions if d.outcome == "executed"}
    analyses = memory.archival_search(tags=["post-trade", "execution"], limit=200)
    assert executed and {d.title.split()[1] for d in analyses} == executed and len(analyses) == len(executed)
    assert all("Drafted at" in d.text and "Expected: " in d.text for d in analyses)
    judged = memory.archival_search(tags=["post-trade", "outcome"], limit=200)
    assert judged and {d.title.split()[3] for d in judged} <= executed
    assert all(("hit" in d.tags) != ("miss" in d.tags) for d in judged)
    assert c["post_trade_analyses"] == len(executed) and c["outcomes_at_horizon"] == len(judged)
    assert r.scorecard is None  # on the system clock fills carry wall time, prices replay time: see the market-clock replay
    # `deskgate scorecard` reads the same record: every executed directive, none judged yet on these clocks.
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "deskgate", "scorecard", "--json", "--data-dir", str(bus.data_dir.root)],
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    card = json.loads(out.stdout)
    assert card["desk"]["executed"] == len(executed) == card["pending"] and card["by_cycle"]["intraday"]["executed"] == len(executed)
    assert card["policy_rejections_by_reason"] == r.funnel.policy_rejections_by_reason


async def test_memory_and_cursors_survive_a_restart_of_the_agents(bus):
    mission = desk_mission()
    async with running(bus, mission) as (factory, agent, cc, md):
        first = await Replay(mission, bus.data_dir, OfflineAnalyst(), days=1).run()
        # A new process would start here: a new desk, memory opened again from disk.
        second = await Replay(mission, bus.data_dir, OfflineAnalyst(), days=1, start=REPLAY_START + timedelta(days=1)).run()
    assert first.cycles["eod_review"] == 1 and second.cycles["eod_review"] == 1
    # Not one cycle ran twice: the agents resumed from their saved clock.
    assert second.cycles == {"morning_brief": 1, "intraday": 48, "eod_review": 1}
    hyp = first.reviews[0].review.hypotheses
    assert any(line == "carried from yesterday's review: " + "; ".join(hyp) for line in second.briefs[0].brief.overnight)
    memory = Memory.open(bus.data_dir.memory_db, read_only=True)
    assert len(memory.archival_search(tags=["eod-review"])) == 2
    # Observations were read once each: one recall entry per published summary.
    assert len(memory.search("regime", kinds=["observation"], limit=10_000)) == first.summaries + second.summaries


async def test_the_llm_path_end_to_end_over_http_against_a_local_openai_compatible_server(bus, monkeypatch):
    monkeypatch.setenv("DESKGATE_TEST_LLM_KEY", "sk-local-test")
    settings = ModelSettings(
        provider="openai-compatible", name="local-scripted", base_url="http://placeholder/v1", api_key_env="DESKGATE_TEST_LLM_KEY",
        output_retries=2, input_usd_per_million=0.5, output_usd_per_million=1.5,
    )
    mission = desk_mission()
    with LocalLLM(Script()) as llm:
        analyst = LLMAnalyst(settings.model_copy(update={"base_url": llm.base_url}))
        async with running(bus, mission) as (factory, agent, cc, md):
            r = await Replay(mission, bus.data_dir, analyst, days=1).run()
        requests = llm.script.requests
    assert requests and all(q["headers"]["authorization"] == "Bearer sk-local-test" for q in requests)
    assert {q["body"]["model"] for q in requests} == {"local-scripted"}
    c = r.counts
    # Socratic: the first answer failed validation and was asked for again; invented ids were dropped and counted.
    assert r.usage["retries"] >= 1
    assert c["invented_citations"] >= 1 and c["dropped_insights"] >= 1
    # Dispatcher: 400k on 1M equity breaks the 25% limit; the model's revision to 100k was staged and approved.
    assert c["rejected:position"] >= 1 and c["revisions"] >= 1
    assert any(d.decision == "approve" and d.outcome == "executed" for d in r.decisions)
    assert_funnel_adds_up(r.funnel, c["submitted"])
    # Tokens and cost were counted from what the server reported.
    assert r.usage["input_tokens"] > 0 and r.usage["output_tokens"] > 0
    assert r.usage["cost_usd"] == pytest.approx((r.usage["input_tokens"] * 0.5 + r.usage["output_tokens"] * 1.5) / 1e6)
    assert r.briefs[0].analyst.startswith("LLM openai-compatible:local-scripted via pydantic-ai")
    memory = Memory.open(bus.data_dir.memory_db, read_only=True)
    assert memory.block("regime").value.endswith("calm everywhere (scripted)")
    assert memory.block("hypotheses").value == "BTC up: confirmed 1 day(s)"


async def publish_market(md, t0, bars: int = 100) -> None:
    """Five hours of 3-minute bars for BTC, ETH and SOL from `t0`, as summaries and signals (the market-data role)."""
    from deskgate.bus import subjects as S
    from deskgate.marketdata.intelligence import Intelligence
    from deskgate.marketdata.simulator import Simulator

    js = md.jetstream()
    intel = Intelligence(window_s=1800, signal_every=10)
    sim = Simulator(["BTC", "ETH", "SOL"], {"BTC": 65_000, "ETH": 3_500, "SOL": 150}, interval_seconds=180)
    for bar in sim.bars(t0, bars):
        summary, signal = intel.add(bar)
        if summary:
            await js.publish(S.summary_subject(bar.asset), summary.to_bytes())
        if signal:
            await js.publish(S.signal_subject(bar.asset), signal.to_bytes())


class SteppedClock:
    def __init__(self, t):
        self.t = t

    def now(self):
        return self.t


async def test_the_agents_service_runs_the_cycles_the_live_clock_reaches_and_skips_a_long_gap(bus):
    import asyncio

    from conftest import wait_for

    from deskgate.agents.desk import AgentState
    from deskgate.agents.service import AgentsService

    mission = desk_mission()
    t0 = REPLAY_START.replace(hour=4)
    # Yesterday's last cycle, three days ago: the service must not replay three days against today's market.
    AgentState(last_cycle_at=t0 - timedelta(days=3)).save(bus.data_dir)
    async with running(bus, mission) as (factory, agent, cc, md):
        await publish_market(md, t0)
        clock = SteppedClock(t0 + timedelta(hours=1, minutes=29))
        service = AgentsService(mission, bus.data_dir, clock=clock, poll_seconds=0.05)
        ready = asyncio.Event()
        task = asyncio.create_task(service.run(ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            clock.t = t0 + timedelta(hours=1, minutes=31)  # 05:31: the brief and the 05:30 intraday are due

            async def briefs():
                return [m async for m in read_stream(cc.nc, "INSIGHTS", "consciousness.insights.morning_brief")]

            (brief,) = await wait_for(briefs)
            assert b"offline analyst" in brief.data
        finally:
            service.stop()
            await asyncio.wait_for(task, 10)
    state = AgentState.load(bus.data_dir)
    assert state.last_cycle_at == t0 + timedelta(hours=1, minutes=30)
    assert state.counts["morning_brief"] == 1
    # Cycles within the last two hours were run; older ones were skipped and said so.
    assert state.counts["intraday"] == 5  # 03:30 .. 05:30
    memory = Memory.open(bus.data_dir.memory_db, read_only=True)
    (note,) = memory.search("cycles skipped", kinds=["note"])
    assert "not replayed" in note.text
    # `deskgate agents status` reads what the agents published after their last cycle.
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "deskgate", "agents", "status", "--json", "--data-dir", str(bus.data_dir.root)],
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["last"]["morning_brief"]["ok"] and status["last"]["intraday"]["at"].startswith("2026-01-05T05:30")
    assert status["next_due"]["intraday"].startswith("2026-01-05T06:00") and status["cycles"]["intraday"] == 5
    assert status["endpoint"] is None and "offline analyst" in status["analyst"]


def test_deskgate_up_says_when_the_first_cycle_is_due(tmp_path):
    from deskgate.agents.desk import AgentState
    from deskgate.cli.desk import first_cycle_line
    from deskgate.paths import DataDir

    root = DataDir.at(tmp_path / "desk").ensure()
    now = datetime(2026, 11, 20, 6, 10, tzinfo=timezone.utc)
    line = first_cycle_line(desk_mission(), root, now=now)
    assert "an intraday watch, is due at 06:30 UTC (in 20 min)" in line
    AgentState(last_cycle_at=datetime(2026, 11, 20, 22, 59, tzinfo=timezone.utc)).save(root)  # a replay ran ahead: from now
    assert "an intraday watch, is due at 06:30 UTC" in first_cycle_line(desk_mission(), root, now=now)
    AgentState(last_cycle_at=datetime(2026, 11, 20, 5, 0, tzinfo=timezone.utc)).save(root)  # stopped an hour ago: caught up at once
    assert "the morning brief, is due now, catching up" in first_cycle_line(desk_mission(), root, now=now)
    AgentState(last_cycle_at=datetime(2026, 11, 15, 5, 0, tzinfo=timezone.utc)).save(root)  # stopped for days: from now
    assert "is due at 06:30 UTC (in 20 min)" in first_cycle_line(desk_mission(), root, now=now)


def test_the_demo_desk_keeps_replay_time(tmp_path):
    """The demo's factory and executor take the replayed bars' time, and browsing the kept run
    moves no prices, so its charts show the replayed days."""
    from deskgate.config import load_mission
    from deskgate.demo import demo_mission

    mission = load_mission(demo_mission(tmp_path))
    assert mission.clock == "market" and mission.marketdata.source == "none"


async def _replay_on_a_fresh_desk(root, mission, days: int):
    """One replay on a desk of its own (bus, factory, executor), and what it left on the bus."""
    from conftest import provision_bus, start_bus

    bus = start_bus(root)
    try:
        await provision_bus(bus)
        # No opening bars: the factory's and the executor's market clock starts at the replay's first bar.
        async with running(bus, mission, prices={}) as (factory, agent, cc, md):
            r = await Replay(mission, bus.data_dir, OfflineAnalyst(), days=days).run()
        nc, _ = await bus.connect("observer")
        try:
            kept = {
                name: [(m.subject, m.data) async for m in read_stream(nc, stream, subject)]
                for name, stream, subject in (
                    ("directives", "DIRECTIVES", "consciousness.directives.>"),
                    ("verdicts", "STATUS", "factory.status.policy.>"),
                    ("outcomes", "STATUS", "factory.status.approval.>"),
                    ("fills", "FILLS", "factory.execution.fills.>"),
                    ("insights", "INSIGHTS", "consciousness.insights.>"),
                )
            }
        finally:
            await nc.close()
    finally:
        bus.server.stop()
    return r, kept


async def test_two_replays_with_the_same_seed_send_the_same_directives_and_get_the_same_verdicts(tmp_path):
    """Bit for bit, on two desks of their own: the replay waits for the desk to reach each state
    (the market stored, the book at the bar time, every staged directive in the queue, every fill)
    instead of racing it, and its own ids and times come from the replay, not the wall clock."""
    # The market clock, as the demo and the benchmark run; a Governor quick enough to damp and be cleared within two days.
    mission = desk_mission(clock="market", agents={"governor": {"baseline": 2, "h": 1.5}, "outcome_horizon_hours": 4})
    first, a = await _replay_on_a_fresh_desk(tmp_path / "first", mission, days=2)
    second, b = await _replay_on_a_fresh_desk(tmp_path / "second", mission, days=2)
    # Enough happened to be worth comparing: staged and rejected directives, fills, the Governor at work.
    verdicts = [PolicyVerdict.model_validate_json(data) for _, data in a["verdicts"]]
    assert {v.decision for v in verdicts} == {"staged", "rejected"}
    assert a["fills"] and first.governor_damped >= 1 and first.governor_clears >= 1
    # The agents' status (consciousness.insights.agents) carries each cycle's wall-clock duration: telemetry, not the desk's record.
    for kept in (a, b):
        kept["insights"] = [(subject, data) for subject, data in kept["insights"] if subject != "consciousness.insights.agents"]
    for name in a:
        assert a[name] == b[name], f"the two replays differ in their {name}"
    assert first.counts == second.counts
    # The scorecard: every executed directive, from the desk's intraday cycles, judged where 4 h had passed; the same twice.
    card = first.scorecard
    executed = {d.directive_id for d in first.decisions if d.outcome == "executed"}
    assert card.desk.executed == first.funnel.executed == len(executed)
    assert 0 < card.desk.judged <= card.desk.executed and card.pending == card.desk.executed - card.desk.judged
    assert set(card.by_cycle) == {"intraday"} and set(card.by_agent) == {"desk"}
    assert {j.directive_id for j in card.judged} <= executed and card.desk.brier is not None
    assert card.governor_interventions == first.governor_interventions
    assert card == second.scorecard
    assert [(d.directive_id, d.decision, d.outcome) for d in first.decisions] == [(d.directive_id, d.decision, d.outcome) for d in second.decisions]
