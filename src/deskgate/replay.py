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

**Determinism.** With `clock: market` (the demo and the benchmark), the same seed gives
the same directives and verdicts, bit for bit. The factory and the agents run at their
own pace, so the replay never sleeps for them: before each cycle it waits for the desk
to reach a known state, and reads no wall clock to decide anything.

- the market: each batch of bars, summaries and signals is acknowledged by the MARKET
  stream (so stored, and delivered to the factory and the executor before anything the
  cycle sends);
- the book: a cycle reads the market, then sizes from the book only once the factory has
  published its portfolio stamped with the batch's bar time and marked at its closes
  (`BookWatch`): the book at that bar, fills of earlier decisions included, and proof
  that the policy engine will check the cycle's directives against those prices;
- the queue: the simulated principal decides only once it sees every directive the cycle
  staged, and waits for each decision's last answer (the fill), before the next bars;
- its own ids and times: approvals and Governor clears carry ids made from what they
  decide and the replay's time, never random ones.

With the system clock the factory stamps wall time, so the book cannot be told apart by
bar time; such a replay runs without the book barrier and is not deterministic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from deskgate.agents.analyst import Analyst
from deskgate.agents.desk import AgentDesk, CycleResult
from deskgate.agents.published import EndOfDayReport, IntradayReport, MorningBriefReport
from deskgate.agents.schedule import due
from deskgate.agents.submit import AgentClient
from deskgate.approvals.client import CommandCenter, CommandCenterError
from deskgate.audit.signing import Signer
from deskgate.bus import subjects as S
from deskgate.bus.connect import connect_as
from deskgate.bus.live import read_live
from deskgate.config import Mission
from deskgate.domain.approval import StagedDirective
from deskgate.domain.funnel import Funnel
from deskgate.domain.portfolio import PortfolioSnapshot
from deskgate.marketdata.intelligence import Intelligence
from deskgate.marketdata.simulator import Simulator
from deskgate.memory.embedding import embedder_from
from deskgate.memory.store import Memory
from deskgate.paths import DataDir
from deskgate.scorecard import Scorecard
from deskgate.scorecard_feed import gather
from deskgate.people.principals import scripted_principal

log = logging.getLogger("deskgate.replay")

PRINCIPAL = "simulated-principal"
REPLAY_START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday
# How long the replay waits for the desk to reach a state before it gives up. Generous:
# these are not timings, only a bound on a desk that stopped answering.
SETTLE_TIMEOUT_S = 60.0
DECISION_WAIT_S = 60.0
SETTLED = {"executed", "venue_rejected", "rejected", "invalidated", "expired"}  # nothing more will come of it


class ReplayError(RuntimeError):
    pass


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


def replay_id(prefix: str, *parts: object) -> str:
    """An id made from what it names, so a replay's own ids are the same in every run."""
    return f"{prefix}-sim-" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


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
    unsettled: bool = True  # something may be pending that it has not decided yet: look at the queue

    async def decide_pending(self, at: datetime, expect: Sequence[str] = ()) -> list[PrincipalDecision]:
        """Decide every pending item, once the queue shows each directive in `expect` (staged by the
        cycle just run). Skipped, reading nothing, when nothing was staged and nothing is left pending."""
        if not expect and not self.unsettled:
            return []
        items = await self._queue_with(expect)
        out = []
        for item in sorted((i for i in items.values() if i.pending), key=lambda i: i.staged.staged_at):
            d = item.staged.directive
            conf = damped_confidence(item.staged)
            if conf >= self.approve_at:
                decision, reason = "approve", ""
            else:
                decision, reason = "reject", f"simulated principal: confidence after damping below {self.approve_at:.2f}"
            try:
                response = await self.cc.prepare_decision(d.directive_id, decision, self.name, reason)
            except CommandCenterError as exc:  # e.g. the breaker is tripped: it stays pending, as for a person
                out.append(PrincipalDecision(d.directive_id, decision, reason, "refused", at))
                log.warning("simulated principal could not %s %s: %s", decision, d.directive_id, exc)
                continue
            # Decided at the replay's time, under an id made from the decision (never a random one).
            response = response.model_copy(update={"approval_id": replay_id("ap", d.directive_id, decision, at.isoformat()), "decided_at": at})
            outcomes = await self.cc.send(response, self.signer, wait=DECISION_WAIT_S)
            last = outcomes[-1].outcome if outcomes else "no answer"
            if last not in SETTLED:
                log.warning("no final answer to %s %s within %g s; the replay is no longer deterministic", decision, d.directive_id, DECISION_WAIT_S)
            out.append(PrincipalDecision(d.directive_id, decision, reason, last, at))
        self.decisions.extend(out)
        self.unsettled = any(d.outcome not in SETTLED for d in out)
        return out

    async def _queue_with(self, expect: Sequence[str]) -> dict:
        """The queue, once it holds every id in `expect`: the agent saw each verdict, and the staged
        record goes out beside it on another stream, so it can land a moment later."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            items = await self.cc.queue()
            missing = [e for e in expect if e not in items]
            if not missing:
                return items
            if time.monotonic() > deadline:
                raise ReplayError(f"staged directives {missing} did not reach the approvals queue within {SETTLE_TIMEOUT_S:g} s")
            await asyncio.sleep(0.002)

    async def acknowledge_reviews(self) -> int:
        n = 0
        for r in await self.cc.reviews():
            if not r.acknowledged:
                await self.cc.acknowledge(r.request.review_id, self.signer, "simulated principal: read", agent=r.agent)
                n += 1
        self.acknowledged += n
        return n

    async def clear_governor(self, at: datetime) -> bool:
        state = await self.cc.governor()
        hold = await self.cc.governor_hold()
        if not ((state is not None and state.state == "drifting") or (hold is not None and hold.damping < 1.0)):
            return False
        review = state.review_id if state is not None and state.review_id else "-"
        reason = f"simulated principal: read the drift review {review} at the morning brief; new baseline"
        clear = await self.cc.prepare_governor_clear(self.name, reason, at=at)
        clear = clear.model_copy(update={"clear_id": replay_id("gc", clear.hold_seq, at.isoformat())})
        await self.cc.send_governor_clear(clear, self.signer)
        self.governor_clears += 1
        return True


class BookWatch:
    """The factory's book as it publishes it on factory.status.portfolio, followed live, and the
    replay's barrier: `at(t, closes)` returns once the book is stamped with bar time `t` and marks
    every position at that bar's close. On market time the factory takes its clock from the bars,
    so a snapshot stamped `t` was made after it applied the bars of `t`, and so after every fill
    the replay saw before publishing them."""

    def __init__(self) -> None:
        self.latest: PortfolioSnapshot | None = None
        self._changed = asyncio.Event()
        self._sub = None

    async def start(self, nc) -> BookWatch:
        self._sub = await nc.subscribe(S.PORTFOLIO_SUBJECT, cb=self._on_snapshot)
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _on_snapshot(self, msg) -> None:
        snap = read_live(msg, "STATUS", PortfolioSnapshot)
        if snap is not None:
            self.latest = snap
            self._changed.set()

    @staticmethod
    def shows(snap: PortfolioSnapshot | None, t: datetime, closes: dict[str, float]) -> bool:
        return snap is not None and snap.at == t and all(p.price == closes[p.asset] for p in snap.positions if p.asset in closes)

    async def at(self, t: datetime, closes: dict[str, float], timeout: float = SETTLE_TIMEOUT_S) -> PortfolioSnapshot:
        deadline = time.monotonic() + timeout
        while not self.shows(self.latest, t, closes):
            if self.latest is not None and self.latest.at > t:
                raise ReplayError(
                    f"the factory's book is at {self.latest.at.isoformat()}, past the replay's {t.isoformat()}: "
                    "its market clock is ahead (was this data directory replayed further before?)"
                )
            self._changed.clear()
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=max(remaining, 0.0))
            except TimeoutError:
                seen = f"its latest is stamped {self.latest.at.isoformat()}" if self.latest else "it published none"
                raise ReplayError(f"the factory did not publish its book at {t.isoformat()} within {timeout:g} s ({seen})") from None
        return self.latest


@dataclass
class MarketBatch:
    until: datetime  # the time of its last bars: the next cycle's
    messages: list[tuple[str, bytes, str | None, bool]]  # (subject, data, msg id, acknowledged?)
    closes: dict[str, float]  # each asset's close at `until`
    upcoming: list[tuple[str, datetime]]  # the cycles due in the day from its start


class ReplayMarket:
    """The seeded market, from one scheduled cycle to the next: bars, and the summaries and
    signals the market-data service would publish. It depends on nothing the desk does."""

    def __init__(self, mission: Mission, bar_seconds: float):
        md = mission.marketdata
        self.schedule = mission.agents.schedule
        self.step = timedelta(seconds=bar_seconds)
        self.sim = Simulator(md.assets, dict(md.start_prices), seed=md.seed, interval_seconds=bar_seconds, annual_volatility_pct=md.annual_volatility_pct)
        self.intel = Intelligence(
            window_s=md.summary_window_seconds, signal_every=int(md.summary_window_seconds // bar_seconds), sample_seconds=md.signal_sample_seconds
        )
        self.counts = {"bars": 0, "summaries": 0, "signals": 0}

    def batch(self, t: datetime, end: datetime) -> MarketBatch | None:
        """The market after `t` up to the next scheduled cycle (or `end`); None at the end."""
        if t >= end:
            return None
        upcoming = due(self.schedule, t, t + timedelta(days=1))
        target = min(upcoming[0][1] if upcoming else end, end)
        messages: list[tuple[str, bytes, str | None, bool]] = []
        closes: dict[str, float] = {}
        while t < target:
            t += self.step
            for bar in self.sim.step(t):
                messages.append((S.bar_subject(bar.asset), bar.to_bytes(), None, False))
                closes[bar.asset] = bar.close
                self.counts["bars"] += 1
                summary, signal = self.intel.add(bar)
                if summary is not None:
                    messages.append((S.summary_subject(bar.asset), summary.to_bytes(), summary.summary_id, True))
                    self.counts["summaries"] += 1
                if signal is not None:
                    messages.append((S.signal_subject(bar.asset), signal.to_bytes(), None, True))
                    self.counts["signals"] += 1
        return MarketBatch(t, messages, closes, upcoming)


class MarketPublisher:
    """Publishes a batch of market data as the marketdata role, in order, and waits for the MARKET
    stream to acknowledge the batch: its last message's acknowledgement means the stream stored
    (and delivered to the live readers) everything before it. One round trip per batch."""

    def __init__(self, nc):
        self.nc = nc
        self._inbox = nc.new_inbox()
        self._acks = None
        self._waiting = 0

    async def start(self) -> MarketPublisher:
        self._acks = await self.nc.subscribe(self._inbox)
        return self

    async def _publish(self, subject: str, data: bytes, *, msg_id: str | None = None, ack: bool = True) -> None:
        await self.nc.publish(subject, data, reply=self._inbox if ack else "", headers={"Nats-Msg-Id": msg_id} if msg_id else None)
        self._waiting += ack

    async def publish(self, batch: list[tuple[str, bytes, str | None, bool]]) -> None:
        """(subject, data, msg id, acknowledged?) in order; the last one is always acknowledged."""
        for i, (subject, data, msg_id, ack) in enumerate(batch):
            await self._publish(subject, data, msg_id=msg_id, ack=ack or i == len(batch) - 1)

    async def settle(self) -> None:
        """Wait for every acknowledgement asked for."""
        for _ in range(self._waiting):
            msg = await self._acks.next_msg(timeout=SETTLE_TIMEOUT_S)
            answer = json.loads(msg.data or b"{}")
            if "error" in answer:
                raise ReplayError(f"the MARKET stream refused market data: {answer['error']}")
        self._waiting = 0

    async def stop(self) -> None:
        if self._acks is not None:
            await self._acks.unsubscribe()


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
    scorecard: Scorecard | None = None


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
        recall: bool = True,
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
        self.recall = recall  # False: the desk without a memory (AgentDesk), to measure what memory is worth
        self.clock = ReplayClock(start)

    async def run(self) -> ReplayResult:
        m = self.mission
        md_nc, _ = await connect_as(self.data_dir, S.Role.MARKETDATA, name="deskgate-replay-market", reconnect=False)
        publisher = await MarketPublisher(md_nc).start()
        agent = await AgentClient.connect(self.data_dir)
        # The simulated principal is an account with a sealed key, like any principal.
        signer = scripted_principal(self.data_dir, PRINCIPAL)
        cc = await CommandCenter.connect(self.data_dir)
        # Only on market time can the book be told by its bar time (see the module's docstring).
        book = await BookWatch().start(cc.nc) if m.clock == "market" else None
        if book is None:
            log.info("replaying on the system clock: the agents size from the factory's latest book, whatever bar it has seen (not deterministic)")
        memory = Memory.for_desk(self.data_dir, core_limits=m.memory.core_limits, clock=self.clock.now, embedder=embedder_from(m.memory.embedder))
        closes: dict[str, float] = {}  # each asset's last close published
        # The cycle sizes from the book at the replay's bar time: the desk waits for it after reading
        # the market, so the factory applies the bars while the agents read what is new.
        desk = AgentDesk(
            m, self.data_dir, agent, self.analyst, memory, book=(lambda: book.at(self.clock.t, closes)) if book else None, recall=self.recall
        )
        principal = SimulatedPrincipal(cc, signer)
        market = ReplayMarket(m, self.bar_seconds)
        results: list[CycleResult] = []
        drawdowns: list[float] = []  # the factory's drawdown from peak, as each cycle saw the book
        first_snap = None
        reviews_seen = desk.state.counts.get("reviews", 0)
        started = time.monotonic()
        end = self.start + timedelta(days=self.days)
        try:
            t = self.start
            await desk.run_due(t)  # the agents' clock starts here
            batch = market.batch(t, end)
            while batch is not None:
                await publisher.publish(batch.messages)
                t = batch.until
                closes.update(batch.closes)
                # The next batch's market while the stream stores this one: the market does not depend on the desk.
                upcoming, batch = batch.upcoming, market.batch(t, end)
                await publisher.settle()
                self.clock.t = t
                if any(kind == "morning_brief" and at <= t for kind, at in upcoming):
                    await principal.clear_governor(t)
                ran = await desk.run_due(t)
                results.extend(ran)
                if book is not None:
                    await book.at(t, closes)  # at once when a cycle already waited for it: approvals are re-checked at t
                await principal.decide_pending(t, _staged(ran))
                if desk.state.counts.get("reviews", 0) != reviews_seen:  # a cycle asked for a human look
                    reviews_seen = desk.state.counts.get("reviews", 0)
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
            # On the system clock the fills carry wall time and the prices replay time: nothing to judge them by.
            card = await gather(cc, timedelta(hours=m.agents.outcome_horizon_hours), at=end) if m.clock == "market" else None
            return ReplayResult(
                days=self.days,
                start=self.start,
                end=end,
                wall_seconds=wall,
                bars=market.counts["bars"],
                summaries=market.counts["summaries"],
                signals=market.counts["signals"],
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
                scorecard=card,
            )
        finally:
            memory.engine.dispose()
            if book is not None:
                await book.stop()
            await publisher.stop()
            await agent.close()
            await cc.close()
            await md_nc.drain()


def _staged(ran: list[CycleResult]) -> list[str]:
    """The ids the policy engine staged in these cycles (a revised draft's last id)."""
    return [d.directive_ids[-1] for r in ran if isinstance(r.report, IntradayReport) for d in r.report.directives if d.decision == "staged"]


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
