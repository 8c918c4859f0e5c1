"""The scorecard's inputs, read off the bus with the Command Center's rights (scorecard.py scores them).

- executed directives: the queue's staged items whose outcome is `executed` with a
  fill; the agent is the verified signer of the staged directive, never its claim;
- prices: every window summary on `market.data.aggregated.<ASSET>` (its close);
- cycle kind: the desk agents' intraday reports, counted only when signed by the
  desk identity's current key (another agent could claim any directive for a cycle);
- reasons and interventions: the factory's funnel and the Governor's signed state.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from deskgate.agents.published import IntradayReport
from deskgate.approvals.client import CommandCenter
from deskgate.audit.signing import Kind, SignatureStatus, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.reader import read_stream
from deskgate.domain.base import utcnow
from deskgate.domain.governor import GOVERNOR_SIGNER
from deskgate.domain.market import MarketSummary
from deskgate.scorecard import UNKNOWN_CYCLE, Executed, Scorecard, score


async def gather(cc: CommandCenter, horizon: timedelta, at: datetime | None = None) -> Scorecard:
    items = await cc.queue()
    cycles: dict[str, str] = {}
    async for m in read_stream(cc.nc, "INSIGHTS", S.insight_subject("intraday")):
        if verify_headers(cc.keys.deciding, Kind.INSIGHT, m.data, m.headers, expect=GOVERNOR_SIGNER) is not SignatureStatus.VALID:
            continue
        try:
            report = IntradayReport.model_validate_json(m.data)
        except ValueError:
            continue
        for result in report.directives:
            for did in result.directive_ids:
                cycles[did] = "intraday"
    executed = []
    for item in items.values():
        done = next((o for o in item.outcomes if o.outcome == "executed" and o.fill is not None and o.fill.status == "filled"), None)
        if done is None:
            continue
        d, fill = item.staged.directive, done.fill
        executed.append(Executed(
            directive_id=d.directive_id,
            agent=item.staged.drafted_by,  # the verified signer, as the factory recorded it; never the directive's claim
            asset=item.staged.asset, side=d.side, confidence=d.confidence, notional_usd=fill.notional_usd, fee_usd=fill.fee_usd,
            fill_price=fill.price, filled_at=fill.filled_at, cycle=cycles.get(d.directive_id, UNKNOWN_CYCLE),
        ))
    closes: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    async for m in read_stream(cc.nc, "MARKET", "market.data.aggregated.>"):
        try:
            s = MarketSummary.model_validate_json(m.data)
        except ValueError:
            continue
        closes[s.asset].append((s.window_end, s.close))
    for series in closes.values():
        series.sort()
    return score(executed, dict(closes), horizon, at or utcnow(), funnel=await cc.funnel(), governor=await cc.governor())
