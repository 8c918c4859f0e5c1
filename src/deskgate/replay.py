"""A replay: days of the desk in seconds, on the real bus, factory and executor.

The replay plays the market and the clock; everything else is the desk itself.
It publishes simulated bars (as the marketdata role) half an hour at a time, with
the same summaries and signals the market-data service publishes; at each
scheduled cycle it runs the agents (`AgentDesk`, agent role, with the replay's
clock); then the **simulated principal** decides what the policy engine staged,
through the Command Center client (command_center role), by this rule:

- approve a staged directive when its confidence after the Governor's damping (as
  the policy engine reported it) is at least `approve_at` (0.70); otherwise reject
  it, giving that as the reason;
- explicit items (above `require_human_approval_above_usd`) are approved one by
  one, never in a batch, under the same rule;
- acknowledge every review request once the cycle that posted it is done;
- clear the Governor at the first morning brief after it started damping (having
  read the drift review), with a reason.

The factory re-checks every approval against current beliefs, so an approval can
still come back invalidated (for example when the Governor started damping later
in the same cycle). The simulated principal stands in for a person so a replay can run unattended; it
is labelled wherever it acts, and `deskgate run` never uses it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from deskgate.agents.analyst import Analyst
from deskgate.agents.desk import AgentDesk, CycleResult
from deskgate.agents.published import EndOfDayReport, MorningBriefReport
from deskgate.agents.schedule import due
from deskgate.agents.submit import AgentClient
from deskgate.approvals.client import CommandCenter
from deskgate.audit.signing import Signer
from deskgate.bus import subjects as S
from deskgate.bus.connect import connect_as
from deskgate.config import Mission
from deskgate.domain.approval import StagedDirective
from deskgate.domain.funnel import Funnel
from deskgate.domain.portfolio import PortfolioSnapshot
from deskgate.marketdata.intelligence import Intelligence
from deskgate.marketdata.simulator import Simulator
from deskgate.memory.store import Memory
from deskgate.paths import DataDir
from deskgate.people.principals import scripted_principal

PRINCIPAL = "simulated-principal"
REPLAY_START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday


class ReplayClock:
    """The replay's time: moved by the replay, read by the agents and their memory."""

    def __init__(self, start: datetime):
        self.t = start

    def now(self) -> datetime:
        return self.t


@dataclass
class PrincipalDecision:
    directive_id: str
    decision: str
    reason: str
    outcome: str  # the factory's last answer: executed, invalidated, ...
    at: datetime


def damped_confidence(staged: StagedDirective) -> float:
    """The confidence the policy engine checked (after the Governor's damping)."""
    observed = next((c.observed for c in staged.evaluation.checks if c.name == "confidence"), None)
    return float(observed) if isinstance(observed, (int, float)) else staged.directive.confidence


@dataclass
class SimulatedPrincipal:
    """Decides by the documented rule above; never used outside a replay."""

    cc: CommandCenter
    signer: Signer
    approve_at: float = 0.70
    name: str = PRINCIPAL
    decisions: list[PrincipalDecision] = field(default_factory=list)
    acknowledged: int = 0
    governor_clears: int = 0

    async def decide_pending(self, at: datetime) -> list[PrincipalDecision]:
        out = []
        for item in await self.cc.pending():
            d = item.staged.directive
            conf = damped_confidence(item.staged)
            if conf >= self.approve_at:
                decision, reason = "approve", ""
            else:
                decision, reason = "reject", f"simulated principal: confidence after damping below {self.approve_at:.2f}"
            outcomes = await self.cc.decide(d.directive_id, decision, self.signer, reason, wait=10.0)
            last = outcomes[-1].outcome if outcomes else "no answer"
            out.append(PrincipalDecision(d.directive_id, decision, reason, last, at))
        self.decisions.extend(out)
        return out

    async def acknowledge_reviews(self) -> int:
        n = 0
        for r in await self.cc.reviews():
            if not r.acknowledged:
                await self.cc.acknowledge(r.request.review_id, self.signer, "simulated principal: read")
                n += 1
        self.acknowledged += n
        return n

    async def clear_governor(self, at: datetime) -> bool:
        state = await self.cc.governor()
        hold = await self.cc.governor_hold()
        if not ((state is not None and state.state == "drifting") or (hold is not None and hold.damping < 1.0)):
            return False
        review = state.review_id if state is not None and state.review_id else "-"
        await self.cc.clear_governor(self.signer, f"simulated principal: read the drift review {review} at the morning brief; new baseline", at=at)
        self.governor_clears += 1
        return True


@dataclass
class ReplayResult:
    days: int
    start: datetime
    end: datetime
    wall_seconds: float
    bars: int
    summaries: int
    signals: int
    cycles: dict[str, int]
    counts: dict[str, int]
    funnel: Funnel | None
    first: PortfolioSnapshot | None
    last: PortfolioSnapshot | None
    max_drawdown_pct: float
    decisions: list[PrincipalDecision]
    governor_interventions: int
    governor_damped: int
    governor_clears: int
    reviews_acknowledged: int
    briefs: list[MorningBriefReport]
    reviews: list[EndOfDayReport]
    usage: dict


Progress = Callable[[datetime, int], None]  # (replay time, days done)


class Replay:
    def __init__(
        self,
        mission: Mission,
        data_dir: DataDir,
        analyst: Analyst,
        *,
        days: int = 5,
        start: datetime = REPLAY_START,
        bar_seconds: float = 180.0,
        on_progress: Progress | None = None,
    ):
        if days < 1:
            raise ValueError("a replay needs at least one day")
        window = mission.marketdata.summary_window_seconds
        if bar_seconds <= 0 or window % bar_seconds:
            raise ValueError(f"bar_seconds must divide the summary window ({window:g} s), got {bar_seconds:g}")
        self.mission = mission
        self.data_dir = data_dir
        self.analyst = analyst
        self.days = days
        self.start = start
        self.bar_seconds = bar_seconds
        self.on_progress = on_progress or (lambda t, d: None)
        self.clock = ReplayClock(start)

    async def run(self) -> ReplayResult:
        m = self.mission
        md_nc, _ = await connect_as(self.data_dir, S.Role.MARKETDATA, name="deskgate-replay-market", reconnect=False)
        md_js = md_nc.jetstream()
        agent = await AgentClient.connect(self.data_dir)
        # The simulated principal is an account with a sealed key, like any principal.
        signer = scripted_principal(self.data_dir, PRINCIPAL)
        cc = await CommandCenter.connect(self.data_dir)
        memory = Memory.open(self.data_dir.memory_db, core_limits=m.memory.core_limits, clock=self.clock.now)
        desk = AgentDesk(m, self.data_dir, agent, self.analyst, memory)
        principal = SimulatedPrincipal(cc, signer)
        sim = Simulator(
            m.marketdata.assets,
            dict(m.marketdata.start_prices),
            seed=m.marketdata.seed,
            interval_seconds=self.bar_seconds,
            annual_volatility_pct=m.marketdata.annual_volatility_pct,
        )
        intel = Intelligence(window_s=m.marketdata.summary_window_seconds, signal_every=int(m.marketdata.summary_window_seconds // self.bar_seconds))
        counts = {"bars": 0, "summaries": 0, "signals": 0}
        results: list[CycleResult] = []
        drawdowns: list[float] = []  # the factory's drawdown from peak, as each cycle saw the book
        first_snap = None
        started = time.monotonic()
        end = self.start + timedelta(days=self.days)
        try:
            t = self.start
            await desk.run_due(t)  # the agents' clock starts here
            step = timedelta(seconds=self.bar_seconds)
            while t < end:
                upcoming = due(m.agents.schedule, t, t + timedelta(days=1))
                target = min(upcoming[0][1] if upcoming else end, end)
                while t < target:
                    t += step
                    for bar in sim.step(t):
                        await md_nc.publish(S.bar_subject(bar.asset), bar.to_bytes())
                        counts["bars"] += 1
                        summary, signal = intel.add(bar)
                        if summary is not None:
                            await md_js.publish(S.summary_subject(bar.asset), summary.to_bytes(), headers={"Nats-Msg-Id": summary.summary_id})
                            counts["summaries"] += 1
                        if signal is not None:
                            await md_js.publish(S.signal_subject(bar.asset), signal.to_bytes())
                            counts["signals"] += 1
                await md_nc.flush()
                self.clock.t = t
                if any(kind == "morning_brief" and at <= t for kind, at in upcoming):
                    await principal.clear_governor(t)
                ran = await desk.run_due(t)
                results.extend(ran)
                await principal.decide_pending(t)
                if any(r.reviews for r in ran) or desk.state.governor.review_id:
                    await principal.acknowledge_reviews()
                snap = desk.last_snapshot
                if snap is not None:
                    first_snap = first_snap or snap
                    drawdowns.append(snap.drawdown_pct)
                self.on_progress(t, int((t - self.start) / timedelta(days=1)))
            await principal.decide_pending(t)  # anything staged that the last look did not see yet
            wall = time.monotonic() - started
            funnel = await _settled_funnel(cc, desk.state.counts.get("submitted", 0))
            last_snap = await cc.portfolio()
            if last_snap is not None:
                drawdowns.append(last_snap.drawdown_pct)
            g = desk.state.governor
            return ReplayResult(
                days=self.days,
                start=self.start,
                end=end,
                wall_seconds=wall,
                bars=counts["bars"],
                summaries=counts["summaries"],
                signals=counts["signals"],
                cycles={k: sum(1 for r in results if r.kind == k) for k in ("morning_brief", "intraday", "eod_review")},
                counts=dict(desk.state.counts),
                funnel=funnel,
                first=first_snap,
                last=last_snap,
                max_drawdown_pct=max(drawdowns, default=0.0),
                decisions=principal.decisions,
                governor_interventions=g.interventions,
                governor_damped=g.damped,
                governor_clears=principal.governor_clears,
                reviews_acknowledged=principal.acknowledged,
                briefs=[r.report for r in results if isinstance(r.report, MorningBriefReport)],
                reviews=[r.report for r in results if isinstance(r.report, EndOfDayReport)],
                usage=desk.state.usage.model_dump(),
            )
        finally:
            memory.engine.dispose()
            await agent.close()
            await cc.close()
            await md_nc.drain()


async def _settled_funnel(cc: CommandCenter, submitted: int, timeout: float = 15.0) -> Funnel | None:
    """The factory's funnel once it counts every directive the agents sent (it publishes every 2 s)."""
    deadline = time.monotonic() + timeout
    funnel = None
    while time.monotonic() < deadline:
        funnel = await cc.funnel()
        if funnel is not None and funnel.received >= submitted and funnel.pending == 0:
            return funnel
        await asyncio.sleep(0.25)
    return funnel
