"""Prometheus metrics at /metrics, read from the desk over the bus at each scrape.

The numbers come from what the factory publishes (its funnel, with its evaluation
latency histogram and its own permission violations), the breaker bucket, the
latest portfolio, and this process's own connection. A scraper authenticates with
a session or with the bearer token in <data_dir>/state/metrics.token.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from deskgate.approvals.client import CommandCenter
from deskgate.domain.breaker import BreakerState
from deskgate.domain.funnel import Funnel
from deskgate.domain.portfolio import PortfolioSnapshot
from deskgate.paths import DataDir, write_private

CONTENT_TYPE = CONTENT_TYPE_LATEST
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # the funnel's time before the factory published one


def metrics_token(data_dir: DataDir) -> str:
    """The scrape token, made on first use and readable only by the desk's owner."""
    path = data_dir.state / "metrics.token"
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


def bearer_ok(data_dir: DataDir, header: str | None) -> bool:
    if not header or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), metrics_token(data_dir).encode())


class _Snapshot:
    """One scrape's worth of families, built from values read beforehand."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


def families(funnel: Funnel | None, breaker: BreakerState, portfolio: PortfolioSnapshot | None, own_violations: int) -> list:
    out = []
    f = funnel or Funnel(at=EPOCH)
    directives = CounterMetricFamily("deskgate_directives", "Directives received by the factory, by verdict", labels=["verdict"])
    directives.add_metric(["staged"], f.staged)
    directives.add_metric(["policy_rejected"], f.policy_rejected)
    directives.add_metric(["duplicate"], f.duplicates)
    out.append(directives)
    reasons = CounterMetricFamily("deskgate_policy_rejections", "Policy rejections by first failed check", labels=["check"])
    for reason, n in sorted(f.policy_rejections_by_reason.items()):
        reasons.add_metric([reason], n)
    out.append(reasons)
    outcomes = CounterMetricFamily("deskgate_approval_outcomes", "Staged directives by what became of them", labels=["outcome"])
    for name in ("approved", "human_rejected", "ordered", "executed", "venue_rejected", "invalidated", "expired"):
        outcomes.add_metric([name], getattr(f, name))
    out.append(outcomes)
    pending = GaugeMetricFamily("deskgate_pending_approvals", "Staged directives awaiting a principal")
    pending.add_metric([], f.pending)
    out.append(pending)
    if f.evaluation_latency is not None:
        h = f.evaluation_latency
        buckets = [(_le(b / 1000.0), c) for b, c in zip(h.bounds_ms, h.cumulative)] + [("+Inf", h.count)]
        hist = HistogramMetricFamily(
            "deskgate_policy_evaluation_seconds", "Time to decode and evaluate one directive (since the factory started)"
        )
        hist.add_metric([], buckets, sum_value=h.sum_ms / 1000.0)
        out.append(hist)
    tripped = GaugeMetricFamily("deskgate_breaker_tripped", "1 while the circuit breaker is tripped")
    tripped.add_metric([], 1 if breaker.state == "tripped" else 0)
    out.append(tripped)
    violations = CounterMetricFamily(
        "deskgate_permission_violations", "Publishes or subscriptions the broker refused, by service", labels=["service"]
    )
    violations.add_metric(["factory"], f.permission_violations)
    violations.add_metric(["command_center"], own_violations)
    out.append(violations)
    if portfolio is not None:
        for name, about, value in (
            ("deskgate_equity_usd", "Portfolio equity", portfolio.equity_usd),
            ("deskgate_drawdown_pct", "Drawdown from peak equity, percent", portfolio.drawdown_pct),
            ("deskgate_gross_leverage", "Gross exposure over equity", portfolio.leverage),
        ):
            g = GaugeMetricFamily(name, about)
            g.add_metric([], value)
            out.append(g)
    return out


def venue_families(statuses) -> list:
    """Each real venue as the factory judges it (domain/venue.py VenueStatus)."""
    if not statuses:
        return []
    healthy = GaugeMetricFamily("deskgate_venue_healthy", "1 while a real venue may take orders", labels=["venue", "state"])
    held = GaugeMetricFamily("deskgate_venue_held", "1 while staging for a venue is held until a principal acknowledges", labels=["venue"])
    skew = GaugeMetricFamily("deskgate_venue_clock_skew_ms", "The venue's clock minus ours, as the executor last measured it", labels=["venue"])
    diff = GaugeMetricFamily("deskgate_venue_mismatch_usd", "A venue's balance minus the book's (and the baseline), in USD", labels=["venue", "asset"])
    for st in statuses:
        healthy.add_metric([st.venue, st.state], 1 if st.healthy else 0)
        held.add_metric([st.venue], 1 if st.held else 0)
        if st.clock_skew_ms is not None:
            skew.add_metric([st.venue], st.clock_skew_ms)
        for m in st.mismatches:
            if m.difference_usd is not None:
                diff.add_metric([st.venue, m.asset], m.difference_usd if m.difference >= 0 else -m.difference_usd)
    return [healthy, held, skew, diff]


def agent_families(status) -> list:
    """The agents' own numbers, from their latest status (AgentsStatus); none before their first cycle."""
    if status is None:
        return []
    errors = CounterMetricFamily("deskgate_agent_errors", "Agent cycles that failed, by cause", labels=["cause"])
    errors.add_metric(["model"], status.model_errors)
    errors.add_metric(["other"], status.cycle_errors)
    duration = GaugeMetricFamily("deskgate_agent_cycle_duration_seconds", "How long each cycle kind's last run took", labels=["cycle"])
    ok = GaugeMetricFamily("deskgate_agent_cycle_ok", "1 if each cycle kind's last run succeeded", labels=["cycle"])
    last = GaugeMetricFamily("deskgate_agent_cycle_last_run_timestamp_seconds", "When each cycle kind last ran (its scheduled time)", labels=["cycle"])
    for kind, run in sorted(status.last.items()):
        duration.add_metric([kind], run.duration_s)
        ok.add_metric([kind], 1 if run.ok else 0)
        last.add_metric([kind], run.at.timestamp())
    tokens = CounterMetricFamily("deskgate_agent_tokens", "Model tokens the agents used, failed calls included", labels=["direction"])
    tokens.add_metric(["input"], status.usage_total.input_tokens)
    tokens.add_metric(["output"], status.usage_total.output_tokens)
    out = [errors, duration, ok, last, tokens]
    if status.usage_today.cost_usd is not None:
        cost = GaugeMetricFamily("deskgate_agent_cost_usd_today", "Model cost today (UTC), where the price is known")
        cost.add_metric([], status.usage_today.cost_usd)
        out.append(cost)
    return out


async def render(cc: CommandCenter) -> bytes:
    funnel, breaker, portfolio = await cc.funnel(), await cc.breaker(), await cc.portfolio()
    try:
        agents = await cc.agents_status()
    except Exception:  # noqa: BLE001 - the agents' numbers are missing from this scrape, the desk's are not
        agents = None
    try:
        venues = await cc.venues()
    except Exception:  # noqa: BLE001 - the venues are missing from this scrape, the rest is not
        venues = []
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _Snapshot(families(funnel, breaker, portfolio, cc.events.counts["permission_violation"]) + agent_families(agents) + venue_families(venues))
    )
    return generate_latest(registry)


def _le(seconds: float) -> str:
    return f"{seconds:.6g}"
