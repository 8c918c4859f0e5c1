"""The agents' desk: one cycle at a time, Socratic → Synthesis → Dispatcher, watched by the Governor.

A cycle reads what is new on the bus (summaries, signals, fills, Governor clears),
writes it to recall, assembles the context within the token budget, calls the
analyst's typed functions, checks citations, sizes and submits directives with the
agent role's credentials, revises a rejected one a bounded number of times, and
publishes the cycle's output on consciousness.insights.<kind>. The morning brief
and the end-of-day review are cycles too; the review is archived and rewrites the
regime and hypotheses in core memory, which the next morning's brief reads.

The clock is the caller's: `deskgate run` passes the system clock, a replay its own.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.engine import Engine

from deskgate.agents import governor as gov
from deskgate.agents import monthly, shared_state
from deskgate.agents.analyst import Analyst, ModelError, Usage
from deskgate.agents.citations import check_citations
from deskgate.agents.outputs import Draft
from deskgate.agents.post_trade import Drafted, combine, execution_analysis, horizon_outcome
from deskgate.agents.published import (
    AgentsStatus,
    DirectiveResult,
    EndOfDayReport,
    IntradayReport,
    LastRun,
    MorningBriefReport,
    UsageLine,
)
from deskgate.agents.schedule import due, next_due
from deskgate.agents.submit import AgentClient
from deskgate.client.errors import VerdictTimeout
from deskgate.agents.view import CycleKind, DeskView, GovernorView, Limits, PositionView
from deskgate.bus import subjects as S
from deskgate.bus.lease import LeaseLost
from deskgate.audit.keys import KeyStore
from deskgate.audit.signing import Kind
from deskgate.bus.reader import last_message, newest_accepted, read_parsed, read_stream
from deskgate.config import Mission
from deskgate.domain.directive import DecisionMemo, Directive
from deskgate.domain.evaluation import CheckResult
from deskgate.domain.execution import Fill
from deskgate.domain.governor import GOVERNOR_SIGNER, signed_governor_state
from deskgate.domain.market import MarketSummary, Signal
from deskgate.domain.news import NewsItem
from deskgate.domain.portfolio import PortfolioSnapshot
from deskgate.domain.review import ReviewRequest
from deskgate.memory.context import assemble
from deskgate.memory.store import Memory, MemoryError_
from deskgate.paths import DataDir, write_private
from deskgate.people.principals import decision_problem
from deskgate.policy.symbols import SymbolError, normalise_symbol
from deskgate.store_lease import StoreLease, shared

log = logging.getLogger("deskgate.agents")

BUFFER = 5000  # summaries kept per cycle kind between its runs
MAX_DRAFTS = 10  # per cycle, whatever the analyst returns
MAX_DRAFTED = 1000  # staged directives remembered until their fill and horizon
SKIPPABLE = (ModelError, ValidationError, MemoryError_, ValueError)  # a cycle that fails on these is recorded and skipped


class AgentState(BaseModel):
    """What the agents must not lose across a restart: where they read up to, the Governor, the tallies."""

    last_cycle_at: datetime | None = None
    summaries_seq: int = 0
    news_seq: int = 0
    signals_seq: int = 0
    fills_seq: int = 0
    clears_seq: int = 0
    seen_clears: list[str] = Field(default_factory=list)  # clear ids applied: a replayed clear is not applied again
    # Where each cycle kind last ran up to (stream sequences), so a restart rebuilds what it has not seen yet.
    since: dict[str, dict[str, int]] = Field(default_factory=dict)
    day_start_equity_usd: float | None = None
    governor: gov.GovernorState = Field(default_factory=gov.GovernorState)
    counts: dict[str, int] = Field(default_factory=dict)
    usage: UsageLine = Field(default_factory=UsageLine)
    # What the agents staged, until its fill and then its horizon (post_trade.py); the newest MAX_DRAFTED.
    drafted: dict[str, Drafted] = Field(default_factory=dict)
    # Orders filled in part and not yet ended, their parts so far as one fill (post_trade.combine).
    parts: dict[str, Fill] = Field(default_factory=dict)
    part_ids: dict[str, list[str]] = Field(default_factory=dict)  # the fill ids in each, so a republished part counts once
    last_runs: dict[str, LastRun] = Field(default_factory=dict)  # each cycle kind's most recent run, for AgentsStatus
    usage_day: str = ""
    usage_today: UsageLine = Field(default_factory=UsageLine)

    @classmethod
    def load(cls, data_dir: DataDir, engine: Engine | None = None) -> AgentState:
        """The state the agents last saved: in the shared store (`engine`, the memory's, on
        PostgreSQL; agents/shared_state.py) or in `state/agents.json`. A shared store that holds
        none yet starts from the file, if there is one."""
        if engine is None and data_dir.storage_url() is not None:
            return cls._load_shared(data_dir)
        if shared(engine) and (body := shared_state.load(engine)) is not None:
            return cls._parse(body, "the agents' state in the memory store", "reset its row (agents_state)")
        try:
            body = data_dir.agents_state.read_text()
        except FileNotFoundError:
            return cls()
        return cls._parse(body, str(data_dir.agents_state), "move it aside")

    @classmethod
    def _load_shared(cls, data_dir: DataDir) -> AgentState:
        """For a command that looks in (`deskgate status`), with no memory of its own open."""
        from deskgate.migrations import schema_exists
        from deskgate.storage import store_engine

        url = data_dir.storage_url()
        if not schema_exists(url, "memory"):
            return cls.load(data_dir, None)
        engine = store_engine(url, "memory")
        try:
            return cls.load(data_dir, engine)
        finally:
            engine.dispose()

    @classmethod
    def _parse(cls, body: str, where: str, remedy: str) -> AgentState:
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise RuntimeError(
                f"{where} is unreadable ({exc.error_count()} errors, first: {exc.errors()[0]['msg']}); "
                f"{remedy} to start the agents afresh (they then read the streams from the start)"
            ) from None

    def save(self, data_dir: DataDir, engine: Engine | None = None, lease: StoreLease | None = None) -> None:
        """Into the shared store when `engine` is one (fenced by the agents' `lease`), else the file."""
        if shared(engine):
            shared_state.save(engine, self.model_dump_json(), lease)
        else:
            write_private(data_dir.agents_state, self.model_dump_json(indent=1))


@dataclass
class CycleResult:
    kind: CycleKind
    at: datetime
    report: IntradayReport | MorningBriefReport | EndOfDayReport
    reviews: list[str] = field(default_factory=list)


class AgentDesk:
    def __init__(
        self,
        mission: Mission,
        data_dir: DataDir,
        client: AgentClient,
        analyst: Analyst,
        memory: Memory,
        *,
        book: Callable[[], Awaitable[PortfolioSnapshot | None]] | None = None,
        recall: bool = True,
    ):
        """`book` gives the portfolio a cycle sizes from; by default the factory's latest on the bus.
        A replay passes its own, which waits for the book at the replay's bar time.

        `recall=False` is the desk without a memory, for measuring what memory is worth
        (benchmarks/memory_worth.py): what it writes is kept, but no cycle reads it back (no core
        blocks, no recall in the context, no searches)."""
        self.recall = recall
        self.endpoint_problem: str | None = None  # the model's start-up check (agents/service.py)
        self.mission = mission
        self.data_dir = data_dir
        self.client = client
        self.nc = client.nc
        self.analyst = analyst
        self.memory = memory
        if hasattr(analyst, "memory") and recall:
            analyst.memory = memory  # an LLM edits core memory through its tools
        # With storage.url, the state is in the memory's schema, shared with a standby (agents/shared_state.py).
        self._state_engine = memory.engine if memory.pg else None
        self.lease: StoreLease | None = None  # with standbys: each save of the state is fenced by it
        self.state = AgentState.load(data_dir, self._state_engine)
        self.state.governor = self.state.governor.model_copy(update={"threshold": mission.agents.governor.h})
        self.book = book or self.portfolio
        self.last_snapshot: PortfolioSnapshot | None = None
        self.latest_summary: dict[str, MarketSummary] = {}
        self.latest_signal: dict[str, Signal] = {}
        self._since: dict[str, list[MarketSummary]] = {k: [] for k in ("morning_brief", "intraday", "eod_review")}
        self._fills: dict[str, list[Fill]] = {k: [] for k in ("morning_brief", "intraday", "eod_review")}
        self._news: dict[str, list[NewsItem]] = {k: [] for k in ("morning_brief", "intraday", "eod_review")}
        self._restored = False
        # Principals' keys, to apply only a principal's own signed clear of the Governor.
        self._keys = KeyStore.for_desk(data_dir)

    def _save_state(self) -> None:
        self.state.save(self.data_dir, self._state_engine, self.lease)

    # -- the schedule -----------------------------------------------------------------------

    async def run_due(self, upto: datetime) -> list[CycleResult]:
        """Run every cycle due since the last one, up to `upto` (the first call starts from `upto`)."""
        if self.state.last_cycle_at is None:
            self.state.last_cycle_at = upto
            self._save_state()
            return []
        results = []
        endpoint = getattr(self.analyst, "endpoint", None)
        for kind, at in due(self.mission.agents.schedule, self.state.last_cycle_at, upto):
            self.client.check()  # with standbys: no cycle begins, nothing is read into memory, without the lease
            started = time.monotonic()
            try:
                result = await self.cycle(kind, at)
                results.append(result)
                ok, outcome = True, _outcome(result)
                self.endpoint_problem = None  # it answered
            except SKIPPABLE as exc:
                # The model failed this cycle (after its retries), or drafted something unusable: say so,
                # keep the desk running. Bus errors are not caught: the cycle is retried after a restart.
                log.error("%s cycle at %s failed (model endpoint: %s): %s", kind, at, endpoint or "none, the offline analyst", exc)
                self._count("model_errors" if isinstance(exc, ModelError) else "cycle_errors")
                self._remember(at, "note", f"cycle:{kind}", f"{kind} cycle failed, nothing more drafted: {exc}"[:4000])
                ok, outcome = False, f"failed: {exc}"
                self._usage()  # a failed cycle's calls count today, with the cycle that made them
            self.state.last_cycle_at = at
            self.state.last_runs[kind] = LastRun(at=at, ok=ok, duration_s=round(time.monotonic() - started, 3), outcome=outcome[:600], endpoint=endpoint)
            self._save_state()
            await self._publish_status(at)
        return results

    def status(self, at: datetime) -> AgentsStatus:
        """Where the agents stand after the cycle at `at` (AgentsStatus)."""
        c = self.state.counts
        return AgentsStatus(
            at=at, analyst=self.analyst.label, endpoint=getattr(self.analyst, "endpoint", None), endpoint_problem=self.endpoint_problem,
            last=dict(self.state.last_runs),
            next_due=next_due(self.mission.agents.schedule, self.state.last_cycle_at or at),
            model_errors=c.get("model_errors", 0), cycle_errors=c.get("cycle_errors", 0),
            cycles={k: c.get(k, 0) for k in ("morning_brief", "intraday", "eod_review")},
            usage_day=self.state.usage_day, usage_today=self.state.usage_today, usage_total=self.state.usage,
        )

    async def _publish_status(self, at: datetime) -> None:
        """Telemetry: a failure to publish it is logged, never the end of the cycles (the next cycle publishes again)."""
        try:
            await self.client.publish_insight(S.insight_subject("agents"), self.status(at).to_bytes())
        except LeaseLost:
            raise  # with standbys: this instance is no longer the active one, it stops
        except Exception:  # noqa: BLE001
            log.exception("the agents' status could not be published; the next cycle tries again")

    async def cycle(self, kind: CycleKind, at: datetime) -> CycleResult:
        day = f"{at:%Y-%m-%d}"
        if self.state.usage_day != day:
            self.state.usage_day, self.state.usage_today = day, UsageLine()
        await self.ingest(at)
        view = await self.view(kind, at)
        if kind == "morning_brief":
            result = await self._morning(view)
        elif kind == "eod_review":
            result = await self._end_of_day(view)
        else:
            result = await self._intraday(view)
        self._since[kind].clear()
        self._fills[kind].clear()
        self._news[kind].clear()
        self.state.since[kind] = {"summaries": self.state.summaries_seq, "fills": self.state.fills_seq, "news": self.state.news_seq}
        self.state.counts[kind] = self.state.counts.get(kind, 0) + 1
        return result

    # -- reading the bus ----------------------------------------------------------------------

    async def restore(self) -> None:
        """After a restart: what each cycle kind had not seen yet, the latest summary and signal per asset,
        and the Governor as last published (the bus's copy wins when it is newer than ours)."""
        for kind in self._since:
            since = self.state.since.get(kind, {})  # a kind that has not run yet has seen nothing
            for stream, subject, start, upto, model, buf in (
                ("MARKET", "market.data.aggregated.>", since.get("summaries", 0), self.state.summaries_seq, MarketSummary, self._since[kind]),
                ("FILLS", "factory.execution.fills.>", since.get("fills", 0), self.state.fills_seq, Fill, self._fills[kind]),
                ("MARKET", S.NEWS_SUBJECT, since.get("news", 0), self.state.news_seq, NewsItem, self._news[kind]),
            ):
                async with aclosing(read_parsed(self.nc, stream, subject, model, after=start)) as stored:
                    async for seq, parsed in stored:
                        if seq > upto:
                            break  # not read yet: the next ingest reads it
                        if parsed is not None:
                            buf.append(parsed)
                del buf[:-BUFFER]
        for asset in self.mission.marketdata.assets:
            for subject, model, latest, upto in (
                (S.summary_subject(asset), MarketSummary, self.latest_summary, self.state.summaries_seq),
                (S.signal_subject(asset), Signal, self.latest_signal, self.state.signals_seq),
            ):
                m = await last_message(self.nc, "MARKET", subject)
                parsed = _parse(model, m.data) if m is not None and m.seq <= upto else None
                if parsed is not None:
                    latest[parsed.asset] = parsed
        published = await self._published_governor()
        mine, done = self.state.governor, self.state.last_cycle_at
        # The bus's copy wins when ours is older (a lost or restored agents.json), but not when it was
        # published by a cycle that did not finish: that cycle runs again and would count its drafts twice.
        if (
            published is not None
            and published.updated_at is not None
            and (mine.updated_at is None or published.updated_at > mine.updated_at)
            and (done is None or published.updated_at <= done)
        ):
            self.state.governor = published
        self._restored = True

    async def _published_governor(self) -> gov.GovernorState | None:
        """The newest Governor state the desk's agents signed with their current key, as the
        factory counts it: a state another way signed must neither replace ours nor hide the
        genuine one published before it. (After `deskgate agent rotate desk`, states signed with
        the old key no longer count: the agents' own saved state is kept.)"""
        keys = self._keys.deciding
        state, refused = await newest_accepted(
            self.nc, "INSIGHTS", S.GOVERNOR_STATE_SUBJECT, lambda m: signed_governor_state(keys, m.data, m.headers)
        )
        if refused:  # logged, not counted: the factory counts each one once, as it reads it
            log.warning("SECURITY: %d Governor state(s) on %s not signed by %s's current key; ignored", refused, S.GOVERNOR_STATE_SUBJECT, GOVERNOR_SIGNER)
        return state

    async def ingest(self, at: datetime) -> None:
        """Everything new since the last cycle: into recall, the latest views, and the per-kind buffers."""
        if not self._restored:
            await self.restore()
        # Five reads at once (one round trip's wait), then taken in this order, as they always were.
        summaries, signals, fills, news, clears = await _all(
            _read(self.nc, "MARKET", "market.data.aggregated.>", MarketSummary, self.state.summaries_seq),
            _read(self.nc, "MARKET", "market.data.signals.>", Signal, self.state.signals_seq),
            _read(self.nc, "FILLS", "factory.execution.fills.>", Fill, self.state.fills_seq),
            _read(self.nc, "MARKET", S.NEWS_SUBJECT, NewsItem, self.state.news_seq),
            _read(self.nc, "RESPONSES", S.GOVERNOR_CLEAR_SUBJECT, None, self.state.clears_seq),
        )
        rows = []
        for seq, s in summaries:
            self.state.summaries_seq = seq
            if s is None:
                self._count("unreadable_market_data")
                continue
            self.latest_summary[s.asset] = s
            for buf in self._since.values():
                buf.append(s)
                del buf[:-BUFFER]
            rows.append(
                {
                    "at": s.window_end,
                    "kind": "observation",
                    "ref": s.summary_id,
                    "text": (
                        f"{s.asset} {s.window_start:%H:%M}-{s.window_end:%H:%M}: return {s.return_pct:+.2f}%, vol {s.realised_vol_pct:.0f}%"
                        + (f" ({s.vol_change_pct:+.0f}%)" if s.vol_change_pct is not None else "")
                        + (f", volume {s.volume_vs_norm:.2f}x norm" if s.volume_vs_norm is not None else "")
                        + f", range {s.range_pct:.2f}%, regime {s.regime}{' (changed)' if s.regime_changed else ''}"
                    ),
                }
            )
        for seq, sig in signals:
            self.state.signals_seq = seq
            if sig is None:
                self._count("unreadable_market_data")
                continue
            self.latest_signal[sig.asset] = sig
            rows.append(
                {
                    "at": sig.at,
                    "kind": "observation",
                    "ref": sig.signal_id,
                    "text": f"{sig.asset} {sig.model}: {sig.direction}, drift {sig.drift_pct_per_day:+.2f}%/day ± {sig.drift_std_pct_per_day:.2f}, P(up) {sig.probability_up:.2f}",
                }
            )
        for seq, fill in fills:
            self.state.fills_seq = seq
            if fill is None:
                continue
            self._post_trade(fill, at)
            for buf in self._fills.values():
                buf.append(fill)
                del buf[:-BUFFER]
            text = (
                f"{fill.directive_id} {fill.side} {fill.quantity:.6f} {fill.asset} at {fill.price:,.2f} ({fill.notional_usd:,.0f} USD, "
                f"slippage {fill.slippage_bps:.1f} bps{'' if fill.final else ', a part: the order is still open'})"
                if fill.status == "filled"
                else f"{fill.directive_id} {fill.status} on {fill.venue}: {fill.reason}"
            )
            rows.append({"at": at, "kind": "outcome", "ref": fill.fill_id, "text": text})
        for seq, item in news:
            self.state.news_seq = seq
            if item is None:
                self._count("unreadable_market_data")
                continue
            for buf in self._news.values():
                buf.append(item)
                del buf[:-BUFFER]
            # Recall keeps only the structured fields: untrusted text never enters memory.
            about = ", ".join(item.assets) or "no desk asset"
            rows.append({"at": at, "kind": "observation", "ref": item.news_id, "text": f"news {item.news_id} from {item.source} about {about}"})
        for m in clears:
            seq = self.state.clears_seq = m.seq
            c = _parse(gov.GovernorClear, m.data)
            if c is None:
                continue
            problem = "a replayed clear" if c.clear_id in self.state.seen_clears else decision_problem(
                self._keys, Kind.GOVERNOR_CLEAR, m.data, m.headers, c.principal, self.mission.web.passkey_rp_id
            )
            if problem:
                # Only a principal's own signed clear starts a new baseline.
                log.warning("SECURITY: Governor clear %s at seq %d not applied: %s", c.clear_id, seq, problem)
                self._count("unsigned_clears")
                continue
            self.state.seen_clears = [*self.state.seen_clears, c.clear_id][-1000:]
            self.state.governor = gov.clear(self.state.governor, c.principal, c.reason, at, seq)
            rows.append({"at": at, "kind": "note", "ref": c.clear_id, "text": f"Governor cleared by {c.principal}: {c.reason}"})
            await self._publish_governor()
        if rows:
            self.memory.remember_many(rows)
        self._horizons(at)
        self._save_state()

    def _post_trade(self, fill: Fill, at: datetime) -> None:
        """Execution against expectation, to archival, once per order when it ends (a re-read after a
        crash finds it there). The parts of an order filled in pieces are judged together."""
        did = fill.directive_id
        if fill.fill_id in self.state.part_ids.get(did, []):
            return  # a part published again (the executor's retry after a crash)
        so_far = self.state.parts.pop(did, None)
        seen = self.state.part_ids.pop(did, [])
        ended = None if fill.status == "filled" else fill
        if ended is None:
            so_far = combine(so_far, fill)
            if not fill.final:
                self.state.parts[did], self.state.part_ids[did] = so_far, [*seen, fill.fill_id]
                while len(self.state.parts) > MAX_DRAFTED:  # an order that never ends is not kept forever
                    oldest = next(iter(self.state.parts))
                    del self.state.parts[oldest]
                    self.state.part_ids.pop(oldest, None)
                return
        record = self.state.drafted.get(did)
        if so_far is None:  # ended with nothing filled
            self.state.drafted.pop(did, None)
            return
        analysis = execution_analysis(so_far, record, self.mission.paper.slippage_bps, ended)
        if not self.memory.has_document(analysis.title):
            self.memory.archive(analysis.title, analysis.text, tags=analysis.tags, at=so_far.filled_at)
            self._count("post_trade_analyses")
        if record is not None and record.fill_price is None:
            # The horizon runs on the agents' clock (a replay's is simulated), from when they learnt of the fill,
            # and on what filled: a partly filled order is judged on its filled notional.
            self.state.drafted[did] = record.model_copy(update={"fill_price": so_far.price, "filled_at": at,
                                                                "notional_usd": so_far.notional_usd})

    def _horizons(self, at: datetime) -> None:
        """Each filled directive, once its horizon has passed: the realised move against the memo's expectation."""
        horizon = timedelta(hours=self.mission.agents.outcome_horizon_hours)
        for did, record in list(self.state.drafted.items()):
            if record.filled_at is None or at < record.filled_at + horizon:
                continue
            latest = self.latest_summary.get(record.asset)
            if latest is None or latest.window_end < record.filled_at + horizon:
                continue  # no price from after the horizon yet
            analysis, move, hit = horizon_outcome(record, latest.close, latest.window_end)
            # Each written once, each checked on its own: a crash between them leaves the other to write.
            if not self.memory.has_document(analysis.title):
                self.memory.archive(analysis.title, analysis.text, tags=analysis.tags, at=latest.window_end)
                self._count("outcomes_at_horizon")
            if not self.memory.has_recall("outcome", f"horizon:{did}"):
                self.memory.remember("outcome", f"{did} at horizon: {move:+.1f} bps ({'hit' if hit else 'miss'})", ref=f"horizon:{did}",
                                     at=latest.window_end)
            del self.state.drafted[did]

    def _drafted(self, view: DeskView, directive: Directive, cycle: str) -> None:
        asset = _base(directive.asset)  # as the summaries name it: `btc` and `BTC/USDT` are BTC
        s = view.summary(asset)
        self.state.drafted[directive.directive_id] = Drafted(
            directive_id=directive.directive_id, asset=asset, side=directive.side, notional_usd=directive.notional_usd,
            confidence=directive.confidence, cycle=cycle, drafted_at=view.at, price_at_draft=s.close if s is not None else None,
            expected_outcome=directive.memo.expected_outcome[:600],
        )
        if len(self.state.drafted) > MAX_DRAFTED:
            oldest = sorted(self.state.drafted.values(), key=lambda r: r.drafted_at)[: len(self.state.drafted) - MAX_DRAFTED]
            for r in oldest:
                del self.state.drafted[r.directive_id]

    async def portfolio(self) -> PortfolioSnapshot | None:
        m = await last_message(self.nc, "STATUS", S.PORTFOLIO_SUBJECT)
        return _parse(PortfolioSnapshot, m.data) if m is not None else None

    def focus(self) -> str:
        """What this cycle is about, as a search: the desk's assets, the regime the agents last wrote,
        and the open positions as of the last book seen (the regime block is the agents' own words)."""
        assets = list(self.mission.marketdata.assets)
        held = sorted({line.asset for line in self.last_snapshot.positions}) if self.last_snapshot else []
        blocks = {b.label: b.value for b in self.memory.core()}
        regime = blocks.get("regime", "").splitlines()[:3]
        return " ".join([*assets, *(f"{a} position" for a in held), *regime])[:500]

    async def view(self, kind: CycleKind, at: datetime) -> DeskView:
        g = self.mission.guardrails
        ctx = assemble(
            self.memory, self.mission.memory.context_tokens, window=self.mission.memory.recall_window, focus=self.focus(),
            relevant=self.mission.memory.relevant_entries,
        ) if self.recall else None
        # The book last: a replay's book waits for the factory to reach the replay's bar time.
        snap = self.last_snapshot = await self.book()
        equity = snap.equity_usd if snap else self.mission.paper.starting_equity_usd
        by_asset: dict[str, float] = defaultdict(float)
        for line in snap.positions if snap else []:
            by_asset[line.asset] += line.quantity * line.price
        st = self.state.governor
        return DeskView(
            at=at,
            cycle=kind,
            equity_usd=equity,
            peak_equity_usd=snap.peak_equity_usd if snap else equity,
            drawdown_pct=snap.breaker_drawdown_pct if snap else 0.0,
            leverage=snap.leverage if snap else 0.0,
            positions=[
                PositionView(asset=a, notional_usd=round(v, 2), pct_of_equity=round(v / equity * 100, 3) if equity > 0 else 0.0)
                for a, v in sorted(by_asset.items())
                if abs(v) > 0.01
            ],
            limits=Limits(
                max_position_pct=g.max_position_pct,
                min_confidence=g.min_confidence,
                max_leverage=g.max_leverage,
                max_drawdown_pct=g.max_drawdown_pct,
                explicit_above_usd=g.require_human_approval_above_usd,
            ),
            venue=self.mission.agents.venue,
            summaries=sorted(self.latest_summary.values(), key=lambda s: s.asset),
            signals=sorted(self.latest_signal.values(), key=lambda s: s.asset),
            since_last_cycle=list(self._since[kind]),
            fills=list(self._fills[kind]),
            news=list(self._news[kind]),
            memory=ctx.text if ctx else "",
            memory_ids=ctx.included if ctx else [],
            core={b.label: b.value for b in self.memory.core()} if self.recall else {},
            governor=GovernorView(state=st.state, statistic=round(st.statistic, 4), threshold=st.threshold),
            model_slippage_bps=self.mission.paper.slippage_bps,
            day_start_equity_usd=self.state.day_start_equity_usd,
        )

    # -- intraday: Socratic → Synthesis → Dispatcher --------------------------------------------

    async def _intraday(self, view: DeskView) -> CycleResult:
        raw = await self.analyst.socratic(view)
        checked = check_citations(raw, view.citable())
        self._count("insights", len(checked.kept))
        self._count("invented_citations", len(checked.invented))
        self._count("dropped_insights", checked.dropped)
        if checked.invented:
            log.warning("dropped %d invented citations: %s", len(checked.invented), checked.invented[:5])
        principles = await self.analyst.synthesise(view, checked.kept) if checked.kept else []
        valid = [p for p in principles if all(0 <= i < len(checked.kept) for i in p.from_insights)]
        self._count("principles", len(valid))
        self._count("dropped_principles", len(principles) - len(valid))
        drafts = await self.analyst.dispatch(view, valid) if valid else []
        rows = [
            {"at": view.at, "kind": "insight", "ref": i.evidence[0], "text": f"[{i.stance} {i.confidence:.2f}] {i.claim}"}
            for i in checked.kept
        ]
        rows += [{"at": view.at, "kind": "principle", "text": f"[{p.action} {p.conviction:.2f}] {p.statement}"} for p in valid]
        if rows:
            self.memory.remember_many(rows)
        results = []
        added: dict[str, float] = defaultdict(float)
        taken: dict[str, int] = defaultdict(int)
        if len(drafts) > MAX_DRAFTS:
            self._count("drafts_over_limit", len(drafts) - MAX_DRAFTS)
        for draft in drafts[:MAX_DRAFTS]:
            # One id per asset and side per cycle: a cycle re-run after a crash sends the same ids, and the
            # factory refuses them as duplicates instead of staging the same intent twice.
            key = f"{_id_token(draft.asset)}-{draft.side}"
            taken[key] += 1
            # Under the agent's own name: the factory reserves `<agent>-...` ids to that agent.
            stem = f"{self.client.agent}-{view.at:%Y%m%d%H%M}-{key}" + (f"-{taken[key]}" if taken[key] > 1 else "")
            try:
                results.append(await self._dispatch(view, draft, stem, added))
            except ValidationError as exc:
                self._count("drafts_refused")
                self._remember(view.at, "note", stem, f"draft refused before sending, not a valid directive: {exc.errors(include_url=False)[:2]}"[:4000])
        report = IntradayReport(
            at=view.at,
            analyst=self.analyst.label,
            insights=checked.kept,
            principles=valid,
            directives=results,
            invented_citations=checked.invented[:50],
            dropped_insights=checked.dropped,
            usage=self._usage(),
        )
        await self._publish("intraday", report)
        return CycleResult("intraday", view.at, report)

    async def _dispatch(self, view: DeskView, draft: Draft, stem: str, added: dict[str, float]) -> DirectiveResult:
        """Watch, submit, and revise after a rejection, at most `max_revisions` times."""
        signed = draft.notional_usd if draft.side == "buy" else -draft.notional_usd
        asset = _base(draft.asset)
        after = view.position(asset) + added[asset] + signed
        prox = gov.proximity(after, view.equity_usd, view.limits.max_position_pct)
        before = self.state.governor
        self.state.governor, started = gov.observe(before, prox, draft.confidence, view.at, self.mission.agents.governor)
        if self.state.governor != before:
            await self._publish_governor()
        reviews = []
        if started:
            reviews.append(await self._drift_review(view, prox, draft))
        self._count("drafts")
        attempt, revisions, ids = draft, 0, []
        while True:
            did = stem + (f"-r{revisions}" if revisions else "")
            ids.append(did)
            directive = Directive(
                directive_id=did,
                asset=attempt.asset,
                venue=self.mission.agents.venue,
                side=attempt.side,
                notional_usd=attempt.notional_usd,
                confidence=attempt.confidence,
                memo=DecisionMemo(**attempt.memo.model_dump()),
                agent=self.client.agent,  # the identity that signs it (`desk`); the analyst is named in the cycle's insight
                created_at=view.at,
            )
            try:
                verdict = await self.client.submit(directive, wait=15.0)  # deskgate.client, as every agent's way in
            except VerdictTimeout:
                self._count("submitted")
                self._remember(view.at, "directive", did, f"{did} sent; no verdict within 15 s")
                return self._result(attempt, ids, "no_verdict", "no verdict within 15 s", revisions)
            self._count("submitted")
            failed = verdict.failed
            reason = verdict.primary_reason or ""
            self._remember(
                view.at, "directive", did,
                f"{did} {attempt.side} {attempt.notional_usd:,.0f} USD {attempt.asset} conf {attempt.confidence:.2f}: {verdict.decision}"
                + (f" ({reason})" if reason else ""),
            )
            if verdict.decision != "rejected":
                self._count(verdict.decision)
                if verdict.decision == "staged":
                    added[asset] += attempt.notional_usd if attempt.side == "buy" else -attempt.notional_usd
                    self._drafted(view, directive, view.cycle)
                return self._result(attempt, ids, verdict.decision, reason or None, revisions)
            self._count("rejected")
            for c in failed:
                self._count(f"rejected:{c.name}")
            if revisions >= self.mission.agents.max_revisions:
                note = f"outside the guardrails after {revisions} revision(s): {reason}"
                self._remember(view.at, "note", did, note)
                return self._result(attempt, ids, "withdrawn", note, revisions)
            revision = await self.analyst.revise(view, attempt, [_for_analyst(c) for c in failed])
            if revision.action == "withdraw" or revision.notional_usd is None:
                self._count("withdrawn")
                self._remember(view.at, "note", did, f"withdrawn: {revision.note}")
                return self._result(attempt, ids, "withdrawn", revision.note, revisions)
            if revision.notional_usd >= attempt.notional_usd:
                # A revision may only make the order smaller; anything else is not a revision.
                self._count("revisions_refused")
                note = f"revision to {revision.notional_usd:,.0f} USD refused: a revision may only shrink the order"
                self._remember(view.at, "note", did, note)
                return self._result(attempt, ids, "withdrawn", note, revisions)
            revisions += 1
            self._count("revisions")
            memo = attempt.memo.model_copy(
                update={"proposed_action": f"{attempt.memo.proposed_action} | revision {revisions}: {revision.note}"[:600]}
            )
            attempt = attempt.model_copy(update={"notional_usd": revision.notional_usd, "memo": memo})

    def _result(self, draft: Draft, ids: list[str], decision: str, reason: str | None, revisions: int) -> DirectiveResult:
        return DirectiveResult(
            asset=draft.asset,
            side=draft.side,
            directive_ids=ids,
            notional_usd=draft.notional_usd,
            confidence=draft.confidence,
            damping=self.state.governor.damping,
            decision=decision,
            reason=reason,
            revisions=revisions,
        )

    async def _drift_review(self, view: DeskView, prox: float, draft: Draft) -> str:
        st = self.state.governor
        review_id = f"rv-drift-{view.at:%Y%m%d%H%M}"
        review = ReviewRequest(
            review_id=review_id,
            kind="drift",
            summary=(
                f"Governor: the Dispatcher is drifting (CUSUM {st.statistic:.2f} > {st.threshold:g}); "
                f"confidence damped x{st.damping:g} until a principal clears it"
            )[:300],
            detail=(
                f"proximity to the position limit: {prox:.2f} against a baseline of {st.mean_proximity:.2f} ± {st.sd_proximity:.2f} "
                f"(CUSUM {st.cusum_proximity:.2f}); confidence {draft.confidence:.2f} against {st.mean_confidence:.2f} ± "
                f"{st.sd_confidence:.2f} (CUSUM {st.cusum_confidence:.2f}). Latest draft: {draft.side} {draft.notional_usd:,.0f} USD "
                f"{draft.asset}. Clear with `deskgate governor clear` or in the Command Center."
            ),
            asset=draft.asset,
            agent="governor",
            created_at=view.at,
        )
        await self.client.request_review(review)
        self.state.governor = st.model_copy(update={"review_id": review_id})
        await self._publish_governor()
        self._count("reviews")
        self._remember(view.at, "note", review_id, f"Governor started damping: {review.summary}")
        return review_id

    # -- the daily cycle --------------------------------------------------------------------------

    async def _morning(self, view: DeskView) -> CycleResult:
        self.state.day_start_equity_usd = view.equity_usd
        brief = await self.analyst.morning_brief(view)
        review_ids = []
        for i, item in enumerate(brief.flagged, 1):
            rid = f"rv-brief-{view.at:%Y%m%d}-{i}"
            await self.client.request_review(
                ReviewRequest(review_id=rid, kind="flagged_position", summary=item[:300], agent="morning_brief", created_at=view.at)
            )
            review_ids.append(rid)
        self._count("reviews", len(review_ids))
        text = "; ".join([brief.position_risk, *brief.overnight, *brief.parameter_suggestions])
        self._remember(view.at, "note", f"brief:{view.at:%Y-%m-%d}", f"morning brief: {text}"[:4000])
        report = MorningBriefReport(at=view.at, analyst=self.analyst.label, brief=brief, review_ids=review_ids, usage=self._usage())
        await self._publish("morning_brief", report)
        return CycleResult("morning_brief", view.at, report, review_ids)

    async def _end_of_day(self, view: DeskView) -> CycleResult:
        review = await self.analyst.end_of_day(view)
        body = "\n".join(
            [
                f"# End-of-day review {view.at:%Y-%m-%d} ({self.analyst.label})",
                "## Results against expectations",
                review.results_vs_expectations,
                "## Execution quality",
                review.execution_quality,
                "## Observations",
                *(f"- {o}" for o in review.observations),
                "## Regime",
                review.regime_assessment,
                "## Hypotheses for tomorrow",
                *(f"- {h}" for h in review.hypotheses),
            ]
        )
        doc = self.memory.archive(f"End-of-day review {view.at:%Y-%m-%d}", body, tags=["eod-review", "regime"], at=view.at)
        self._edit_core("regime", f"{view.at:%Y-%m-%d}: {review.regime_assessment}")
        if review.hypotheses:  # an LLM may instead have edited the block itself, through its tools
            self._edit_core("hypotheses", "\n".join(review.hypotheses))
        line = f"{view.at:%Y-%m-%d}: equity {view.equity_usd:,.0f}, drawdown {view.drawdown_pct:.2f}%, " + (
            ", ".join(f"{p.asset} {p.pct_of_equity:.1f}%" for p in view.positions) or "flat"
        )
        self._append_core("desk_state", line)
        self._remember(view.at, "review", f"archival:{doc}", f"end-of-day review: {review.results_vs_expectations}"[:4000])
        self._count("monthly_reviews", len(monthly.write_due(self.memory, view.at)))
        report = EndOfDayReport(at=view.at, analyst=self.analyst.label, review=review, archival_id=doc, usage=self._usage())
        await self._publish("eod_review", report)
        return CycleResult("eod_review", view.at, report)

    def _edit_core(self, label: str, value: str) -> None:
        """Rewrite a block (the agent's `rethink` tool); a value over the limit keeps its newest part."""
        limit = self.memory.block(label).limit
        self.memory.core_rethink(label, value[-limit:] if len(value) > limit else value, by=self.analyst.name)

    def _append_core(self, label: str, line: str) -> None:
        """Append a line (the `append` tool); when the block is full, drop its oldest lines first (a `rethink`)."""
        block = self.memory.block(label)
        line = line[: block.limit]
        try:
            self.memory.core_append(label, line, by=self.analyst.name)
        except MemoryError_:
            lines = [x for x in block.value.splitlines() if x] + [line]
            while lines and len("\n".join(lines)) > block.limit:
                lines.pop(0)
            self.memory.core_rethink(label, "\n".join(lines), by=self.analyst.name)

    # -- publishing and tallies -------------------------------------------------------------------

    async def _publish(self, kind: str, report) -> None:
        await self.client.publish_insight(S.insight_subject(kind), report.to_bytes())

    async def _publish_governor(self) -> None:
        await self.client.publish_insight(S.GOVERNOR_STATE_SUBJECT, self.state.governor.to_bytes())

    def _remember(self, at: datetime, kind: str, ref: str | None, text: str) -> None:
        self.memory.remember(kind, text, ref=ref, at=at)

    def _count(self, key: str, n: int = 1) -> None:
        self.state.counts[key] = self.state.counts.get(key, 0) + n

    def _usage(self) -> UsageLine:
        u: Usage = self.analyst.usage.take()
        self.state.usage = _added(self.state.usage, u)
        self.state.usage_today = _added(self.state.usage_today, u)
        return UsageLine(
            calls=u.calls, requests=u.requests, retries=u.retries, input_tokens=u.input_tokens, output_tokens=u.output_tokens, cost_usd=u.cost_usd
        )


async def _read(nc, stream: str, subject: str, model, after: int) -> list:
    """What `stream` stored on `subject` after `after`: (seq, parsed or None) pairs, or the raw
    stored messages when `model` is None."""
    if model is None:
        return [m async for m in read_stream(nc, stream, subject, start_seq=after + 1)]
    return [x async for x in read_parsed(nc, stream, subject, model, after=after)]


async def _all(*reads):
    """Run the reads together; if one fails, stop the others and raise its error."""
    tasks = [asyncio.ensure_future(r) for r in reads]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        raise


def _parse(model, data: bytes):
    try:
        return model.model_validate_json(data)
    except ValidationError:
        return None


def _added(total: UsageLine, u: Usage) -> UsageLine:
    return UsageLine(
        calls=total.calls + u.calls,
        requests=total.requests + u.requests,
        retries=total.retries + u.retries,
        input_tokens=total.input_tokens + u.input_tokens,
        output_tokens=total.output_tokens + u.output_tokens,
        cost_usd=None if total.cost_usd is None or u.cost_usd is None else total.cost_usd + u.cost_usd,
    )


def _outcome(result: CycleResult) -> str:
    """What a cycle did, in a line."""
    r = result.report
    if isinstance(r, IntradayReport):
        staged = sum(d.decision == "staged" for d in r.directives)
        return f"{len(r.insights)} insights, {len(r.principles)} principles, {len(r.directives)} drafts, {staged} staged"
    if isinstance(r, MorningBriefReport):
        return f"brief: {len(r.brief.flagged)} flagged for review, {len(r.brief.parameter_suggestions)} suggestions"
    if isinstance(r, EndOfDayReport):
        return f"review archived as document #{r.archival_id}"
    return "done"


def _base(asset: str) -> str:
    """The asset as the book names it (BTC for btc, BTC/USDT, BTCUSDT); the raw text if it is not a symbol."""
    try:
        return normalise_symbol(asset).base
    except SymbolError:
        return asset


def _id_token(asset: str) -> str:
    """An asset as one directive-id token: [A-Za-z0-9_-] only, at most 24 characters."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", _base(asset))[:24] or "_"


def _for_analyst(check: CheckResult) -> CheckResult:
    """A failed check as the analyst may see it: a damped confidence says so, but not by how much
    (a model told the factor could outbid it)."""
    if check.name != "confidence":
        return check
    return CheckResult(name="confidence", passed=False, observed=None, limit=check.limit, reason="confidence, after the Governor's damping if any, is below the minimum")
