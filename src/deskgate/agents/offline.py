"""The offline analyst: the desk's six functions, deterministic, from structured fields only.

No key, no network, no randomness: the same view gives the same answer. It is the
default and labels itself wherever its output appears. Its rules, in short:

- Socratic: one insight per asset from the trend signal (bullish when P(up) is at
  least `lean`, bearish at most 1 - `lean`, else neutral), citing the signal and the
  latest summary; a *risk* insight for a regime change or a position near its limit;
  a *neutral* one counting the news items that name an asset (structured fields only:
  it never reads news text, so nothing written in a headline can steer it).
- Synthesis: bullish → add, bearish with a long position → reduce, a volatile regime
  → hold, else hold.
- Dispatcher: sizes an add towards a target share of the position limit that grows
  with P(up) and with the number of days the desk has run (the end-of-day lines in
  core memory's `desk_state`); its confidence creeps up the same way. This analyst
  grows bolder day by day on purpose: a documented, deterministic bias, and exactly
  the drift the Governor exists to catch. Adjustments under `min_order_pct` of
  equity are not worth an order. A reduce sells half the position.
- Revision: after a position-limit rejection it shrinks the order to fit, if what
  fits is worth an order; any other rejection it records as outside the guardrails.
- Morning brief and end-of-day review: figures from the view and from memory.
"""

from __future__ import annotations

import re
from collections import defaultdict

from deskgate.agents.analyst import Usage
from deskgate.agents.outputs import Draft, DraftMemo, EndOfDayReview, Insight, MorningBrief, Principle, Revision
from deskgate.agents.view import DeskView
from deskgate.domain.evaluation import CheckResult
from deskgate.memory.store import Memory, MemoryError_

LABEL = "offline analyst (deterministic rules, no LLM)"
HYPOTHESIS = re.compile(r"^(?P<asset>[A-Z0-9]+) (?P<dir>up|down): confirmed (?P<days>\d+) day", re.MULTILINE)


def days_run(core: dict[str, str]) -> int:
    """How many end-of-day reviews the desk has written (one line each in `desk_state`)."""
    return sum(1 for line in core.get("desk_state", "").splitlines() if line.strip())


def confirmed_days(core: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Per asset, the direction of its hypothesis and how many days in a row it has held."""
    return {m["asset"]: (m["dir"], int(m["days"])) for m in HYPOTHESIS.finditer(core.get("hypotheses", ""))}


class OfflineAnalyst:
    name = "offline"
    label = LABEL

    def __init__(self, *, lean: float = 0.6, min_order_pct: float = 3.0, base_share: float = 0.4, boldness: float = 0.15, creep: float = 0.02):
        self.lean = lean
        self.min_order_pct = min_order_pct  # of equity: smaller adjustments are not worth an order
        self.base_share = base_share  # of the position limit, at P(up) = lean and no confirmed days
        self.boldness = boldness  # extra share of the limit per day run
        self.creep = creep  # extra confidence per day run
        self.usage = Usage()
        self.memory: Memory | None = None  # set by the desk: the daily cycles search it, as an LLM would with its tools

    def _search_archival(self, query: str, tags: list[str] | None = None):
        """The best archival document for `query`, by words and meaning (the LLM's archival_memory_search)."""
        if self.memory is None:
            return None
        try:
            hits = self.memory.find_documents(query, tags=tags, limit=1)
        except MemoryError_:
            return None
        return hits[0].entry if hits else None

    def _count(self, fn: str) -> None:
        self.usage.calls += 1
        self.usage.by_function[fn] = self.usage.by_function.get(fn, 0) + 1

    # -- Socratic --------------------------------------------------------------------------

    async def socratic(self, view: DeskView) -> list[Insight]:
        self._count("socratic")
        out: list[Insight] = []
        for summary in sorted(view.summaries, key=lambda s: s.asset):
            asset = summary.asset
            signal = view.signal(asset)
            if signal is not None:
                p = signal.probability_up
                stance = "bullish" if p >= self.lean else "bearish" if p <= 1 - self.lean else "neutral"
                out.append(
                    Insight(
                        asset=asset,
                        claim=(
                            f"{asset} trend {signal.drift_pct_per_day:+.2f}%/day ± {signal.drift_std_pct_per_day:.2f} "
                            f"(P(up) {p:.2f}); last window {summary.return_pct:+.2f}%, vol {summary.realised_vol_pct:.0f}% "
                            f"annualised, regime {summary.regime}"
                        ),
                        stance=stance,
                        confidence=round(max(p, 1 - p), 4),
                        evidence=[signal.signal_id, summary.summary_id],
                    )
                )
            if summary.regime_changed:
                out.append(
                    Insight(
                        asset=asset,
                        claim=f"{asset} volatility regime changed to {summary.regime} (vol {summary.realised_vol_pct:.0f}%)",
                        stance="risk",
                        confidence=0.7,
                        evidence=[summary.summary_id],
                    )
                )
            pct = abs(view.position(asset)) / view.equity_usd * 100 if view.equity_usd > 0 else 0.0
            if pct >= 0.8 * view.limits.max_position_pct:
                out.append(
                    Insight(
                        asset=asset,
                        claim=f"{asset} position is {pct:.1f}% of equity, near the {view.limits.max_position_pct:g}% limit",
                        stance="risk",
                        confidence=0.9,
                        evidence=[summary.summary_id],
                    )
                )
        # News: only the structured fields (which assets an item names, its source). The text is
        # untrusted and this analyst never reads it; the count is context, not a reason to trade.
        for asset in sorted({a for n in view.news for a in n.assets}):
            items = [n for n in view.news if asset in n.assets]
            out.append(
                Insight(
                    asset=asset,
                    claim=f"{len(items)} news item(s) name {asset} since the last cycle, from {', '.join(sorted({n.source for n in items}))}; text not read",
                    stance="neutral",
                    confidence=0.5,
                    evidence=[n.news_id for n in items][-12:],
                )
            )
        return out

    # -- Synthesis -------------------------------------------------------------------------

    async def synthesise(self, view: DeskView, insights: list[Insight]) -> list[Principle]:
        self._count("synthesise")
        by_asset: dict[str, list[int]] = defaultdict(list)
        for i, insight in enumerate(insights):
            if insight.asset:
                by_asset[insight.asset].append(i)
        out: list[Principle] = []
        for asset, idx in sorted(by_asset.items()):
            stances = {insights[i].stance for i in idx}
            trend = next((insights[i] for i in idx if insights[i].stance in ("bullish", "bearish", "neutral")), None)
            summary = view.summary(asset)
            if summary is not None and summary.regime == "volatile":
                out.append(Principle(statement=f"{asset}: volatile regime, add nothing", asset=asset, action="hold", conviction=0.7, from_insights=idx))
            elif "bullish" in stances and trend is not None:
                out.append(
                    Principle(statement=f"{asset}: the trend is up; add towards target", asset=asset, action="add", conviction=trend.confidence, from_insights=idx)
                )
            elif "bearish" in stances and trend is not None and view.position(asset) > 0:
                out.append(
                    Principle(statement=f"{asset}: the trend turned down; cut the long", asset=asset, action="reduce", conviction=trend.confidence, from_insights=idx)
                )
            else:
                out.append(Principle(statement=f"{asset}: no edge; hold", asset=asset, action="hold", conviction=0.5, from_insights=idx))
        return out

    # -- Dispatcher ------------------------------------------------------------------------

    def target_pct(self, view: DeskView, asset: str, p_up: float) -> float:
        """The position (percent of equity) an add aims for: it grows with P(up) and with the days run."""
        share = self.base_share + (p_up - self.lean) * 1.5 + self.boldness * min(days_run(view.core), 10)
        return view.limits.max_position_pct * max(0.0, share)

    async def dispatch(self, view: DeskView, principles: list[Principle]) -> list[Draft]:
        self._count("dispatch")
        out: list[Draft] = []
        for pr in principles:
            if pr.asset is None or pr.action not in ("add", "reduce"):
                continue
            signal, summary = view.signal(pr.asset), view.summary(pr.asset)
            if signal is None or summary is None or view.equity_usd <= 0:
                continue
            position = view.position(pr.asset)
            now_pct = position / view.equity_usd * 100
            direction, days = confirmed_days(view.core).get(pr.asset, ("up", 0))
            if pr.action == "add":
                target = self.target_pct(view, pr.asset, signal.probability_up)
                notional = (target - now_pct) / 100 * view.equity_usd
                side = "buy"
                confidence = min(0.97, signal.probability_up + self.creep * min(days_run(view.core), 10))
                action = f"buy {notional:,.0f} USD of {pr.asset}, from {now_pct:.1f}% towards {target:.1f}% of equity"
                expected = f"+{signal.drift_pct_per_day:.2f}%/day on the position while the trend holds; exit if P(up) falls below {1 - self.lean:.2f}"
            else:
                notional = position / 2
                side = "sell"
                confidence = 1 - signal.probability_up
                action = f"sell {notional:,.0f} USD of {pr.asset}, half the long ({now_pct:.1f}% of equity)"
                expected = f"halves exposure to a trend of {signal.drift_pct_per_day:+.2f}%/day"
            if notional < self.min_order_pct / 100 * view.equity_usd:
                continue
            out.append(
                Draft(
                    asset=pr.asset,
                    side=side,
                    notional_usd=round(notional, 2),
                    confidence=round(confidence, 4),
                    memo=DraftMemo(
                        signal_evidence=(
                            f"{signal.model} {signal.signal_id}: {signal.drift_pct_per_day:+.2f}%/day ± {signal.drift_std_pct_per_day:.2f}, "
                            f"P(up) {signal.probability_up:.2f}; {summary.summary_id}: {summary.return_pct:+.2f}%, regime {summary.regime}"
                        ),
                        position_context=(
                            f"{pr.asset} {position:,.0f} USD ({now_pct:.1f}% of equity {view.equity_usd:,.0f}); limit "
                            f"{view.limits.max_position_pct:g}%; drawdown {view.drawdown_pct:.2f}%; hypothesis {direction} confirmed {days} day(s)"
                        ),
                        proposed_action=action,
                        expected_outcome=expected,
                    ),
                )
            )
        return out

    async def revise(self, view: DeskView, draft: Draft, failed: list[CheckResult]) -> Revision:
        self._count("revise")
        names = {c.name for c in failed}
        position = next((c for c in failed if c.name == "position"), None)
        if names == {"position"} and position is not None and isinstance(position.observed, (int, float)) and view.equity_usd > 0:
            this_pct = draft.notional_usd / view.equity_usd * 100
            room_pct = float(position.limit) - (float(position.observed) - this_pct)
            fits = room_pct / 100 * view.equity_usd * 0.98
            if fits >= self.min_order_pct / 100 * view.equity_usd and fits < draft.notional_usd:
                return Revision(
                    action="revise",
                    notional_usd=round(fits, 2),
                    note=f"position would reach {position.observed:.2f}% > {position.limit}%: cut to {fits:,.0f} USD, inside the limit",
                )
            return Revision(action="withdraw", note=f"no room under the {position.limit}% position limit worth an order")
        reasons = "; ".join(c.reason or c.name for c in failed)
        return Revision(action="withdraw", note=f"outside the guardrails, not revised: {reasons}"[:600])

    # -- daily cycle -----------------------------------------------------------------------

    async def morning_brief(self, view: DeskView) -> MorningBrief:
        self._count("morning_brief")
        lim = view.limits
        lines = []
        for p in sorted(view.positions, key=lambda p: -abs(p.pct_of_equity)):
            lines.append(f"{p.asset} {p.pct_of_equity:.1f}%")
        position_risk = (
            f"equity {view.equity_usd:,.0f} USD, drawdown {view.drawdown_pct:.2f}% (breaker at {lim.max_drawdown_pct:g}%), "
            f"gross leverage {view.leverage:.2f}x (limit {lim.max_leverage:g}x); positions: {', '.join(lines) or 'none'} "
            f"(limit {lim.max_position_pct:g}% each)"
        )
        overnight: list[str] = []
        by_asset: dict[str, list] = defaultdict(list)
        for s in view.since_last_cycle:
            by_asset[s.asset].append(s)
        for asset, ss in sorted(by_asset.items()):
            ss.sort(key=lambda s: s.window_end)
            ret = (ss[-1].close / ss[0].open - 1) * 100
            changes = [s for s in ss if s.regime_changed]
            text = f"{asset} {ret:+.2f}% over {len(ss)} windows, vol {ss[-1].realised_vol_pct:.0f}%, regime {ss[-1].regime}"
            if changes:
                text += f" (changed {len(changes)}x, last to {changes[-1].regime} at {changes[-1].window_end:%H:%M})"
            overnight.append(text)
        hyp = view.core.get("hypotheses", "").strip()
        if hyp:
            overnight.append("carried from yesterday's review: " + hyp.replace("\n", "; ")[:500])
        held = " ".join(p.asset for p in view.positions) or " ".join(s.asset for s in view.summaries)
        monthly = self._search_archival(f"monthly review regime {held}", tags=["monthly-review"])
        if monthly is not None:
            overnight.append(f"from archival doc #{monthly.id} ({monthly.title}): {monthly.text.splitlines()[0][:300]}")
        suggestions: list[str] = []
        flagged: list[str] = []
        for p in view.positions:
            s = view.summary(p.asset)
            if s is not None and s.regime == "volatile" and abs(p.pct_of_equity) > 0.5 * lim.max_position_pct:
                suggestions.append(f"{p.asset} is volatile with {p.pct_of_equity:.1f}% of equity: consider a lower max_position_pct while it lasts")
            if abs(p.pct_of_equity) >= 0.9 * lim.max_position_pct:
                flagged.append(f"{p.asset} position {p.pct_of_equity:.1f}% of equity is within 10% of the {lim.max_position_pct:g}% limit")
        if view.drawdown_pct >= 0.5 * lim.max_drawdown_pct:
            flagged.append(f"drawdown {view.drawdown_pct:.2f}% is past half the {lim.max_drawdown_pct:g}% breaker")
        if view.governor.state == "drifting":
            flagged.append("the Governor is damping the agents' confidence; a principal's clear is awaited")
        if not suggestions:
            suggestions.append("none: guardrails unchanged")
        return MorningBrief(position_risk=position_risk[:600], overnight=overnight[:20], parameter_suggestions=suggestions[:10], flagged=flagged[:10])

    async def end_of_day(self, view: DeskView) -> EndOfDayReview:
        self._count("end_of_day")
        by_asset: dict[str, list] = defaultdict(list)
        for s in view.since_last_cycle:
            by_asset[s.asset].append(s)
        day_ret = {}
        for asset, ss in by_asset.items():
            ss.sort(key=lambda s: s.window_end)
            day_ret[asset] = (ss[-1].close / ss[0].open - 1) * 100
        pnl = view.equity_usd - view.day_start_equity_usd if view.day_start_equity_usd else 0.0
        prior = confirmed_days(view.core)
        calls = []
        hypotheses = []
        for asset in sorted(day_ret):
            signal = view.signal(asset)
            stance = "up" if signal is not None and signal.probability_up >= 0.5 else "down"
            ret = day_ret[asset]
            right = (ret > 0) == (stance == "up")
            direction, days = prior.get(asset, (stance, 0))
            days = days + 1 if (right and direction == stance) else (1 if right else 0)
            calls.append(f"{asset} called {stance}, moved {ret:+.2f}% ({'right' if right else 'wrong'})")
            hypotheses.append(f"{asset} {stance}: confirmed {days} day(s)")
        held = [p for p in view.positions if p.notional_usd]
        results = (
            f"day P&L {pnl:+,.0f} USD on equity {view.equity_usd:,.0f}; {'; '.join(calls) or 'no market data'}; "
            f"holding {', '.join(f'{p.asset} {p.pct_of_equity:.1f}%' for p in held) or 'nothing'}"
        )
        filled = [f for f in view.fills if f.status == "filled"]
        if filled:
            slip = sum(abs(f.slippage_bps) * f.notional_usd for f in filled) / sum(f.notional_usd for f in filled)
            fees = sum(f.fee_usd for f in filled)
            execution = (
                f"{len(filled)} fills, {sum(f.notional_usd for f in filled):,.0f} USD; slippage {slip:.1f} bps against the "
                f"model's {view.model_slippage_bps:g} bps ({slip - view.model_slippage_bps:+.1f}); fees {fees:,.2f} USD"
            )
        else:
            execution = "no fills today"
        rejected = [f for f in view.fills if f.status == "rejected"]
        if rejected:
            execution += f"; {len(rejected)} venue rejections"
        observations = []
        for asset, ss in sorted(by_asset.items()):
            vols = [s.realised_vol_pct for s in ss]
            observations.append(
                f"{asset}: vol {min(vols):.0f}-{max(vols):.0f}% annualised, range {max(s.high for s in ss) / min(s.low for s in ss) * 100 - 100:.2f}%"
            )
        regimes = {s.asset: s.regime for s in view.summaries}
        changed = sorted({s.asset for s in view.since_last_cycle if s.regime_changed})
        regime = ", ".join(f"{a} {r}" for a, r in sorted(regimes.items())) or "unknown"
        regime += f"; regime changed today in {', '.join(changed)}" if changed else "; no regime change today"
        return EndOfDayReview(
            results_vs_expectations=results[:600],
            execution_quality=execution[:600],
            observations=observations[:20],
            regime_assessment=regime[:600],
            hypotheses=hypotheses[:10],
        )
