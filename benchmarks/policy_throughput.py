"""Policy evaluations per second on one core, decode and validation included,
beside the same guardrails written as a Cedar policy and evaluated with cedarpy.

deskgate path, per directive: bytes -> pydantic validation -> every check
(normalisation, forbidden legs, venue, confidence, position with pending
reservations, order and portfolio leverage, explicit flag) -> verdict.

Cedar path, per directive: the same bytes -> the same validation and symbol
normalisation -> the derived numbers Cedar cannot compute itself (post-trade
position, gross leverage, drawdown, in fixed point) -> `cedarpy.is_authorized`
against a pre-parsed policy set in which every guardrail is a `forbid` rule.
Cedar's own share is also timed on its own, with the context prepared in advance.
Both paths must agree on every directive, or the run fails.

    python benchmarks/policy_throughput.py [--n 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import cedarpy  # noqa: E402

from deskgate.config import Guardrails  # noqa: E402
from deskgate.domain.directive import Directive  # noqa: E402
from deskgate.policy.beliefs import Beliefs, Reservation  # noqa: E402
from deskgate.policy.engine import evaluate_payload  # noqa: E402
from deskgate.policy.symbols import USD_QUOTES, SymbolError, forbidden_leg, normalise_symbol, normalise_venue  # noqa: E402

CEDAR_POLICY = """
permit(principal, action == Action::"stage", resource);
forbid(principal, action, resource) when { context.schema_ok == false };
forbid(principal, action, resource) when { context.breaker_tripped };
forbid(principal, action, resource) when { context.drawdown_bp > 1500 };
forbid(principal, action, resource) when { context.asset_ok == false };
forbid(principal, action, resource) when { ["LUNA", "UST"].containsAny(context.asset_legs) };
forbid(principal, action, resource) unless { ["binance", "bybit", "okx"].contains(context.venue) };
forbid(principal, action, resource) when { context.confidence_bp < 6500 };
forbid(principal, action, resource) when { context.post_position_bp > 2500 };
forbid(principal, action, resource) when { context.order_leverage_milli > 3000 };
forbid(principal, action, resource) when { context.portfolio_leverage_milli > 3000 };
forbid(principal, action, resource) when { context.price_known == false };
"""

MEMO = {
    "signal_evidence": "Kalman trend +1.8 sigma on 4h bars; funding neutral.",
    "position_context": "Long 5% BTC; gross 0.4x.",
    "proposed_action": "Buy on binance.",
    "expected_outcome": "+2% over 3 days; exit if the trend flips.",
}


def corpus(n: int, seed: int = 1) -> list[bytes]:
    """About seven in ten pass, as in the article's funnel (612 of 847); the rest fail on
    every kind of check, with a few malformed messages."""
    rng = random.Random(seed)
    assets = ["BTC", "ETH", "SOL", "btc/usdt", "ETHUSDT", "LUNA", "luna/usdt", "ＬＵＮＡ", "LUΝA", "UST"]
    venues = ["binance", "bybit", "okx", "Binance", "ftx"]
    out = []
    for i in range(n):
        d = {
            "directive_id": f"b{i}",
            "asset": rng.choice(assets) if rng.random() < 0.3 else rng.choice(assets[:3]),
            "venue": rng.choice(venues) if rng.random() < 0.2 else "binance",
            "side": rng.choice(["buy", "sell"]),
            "notional_usd": round(rng.uniform(100, 40_000), 2),
            "leverage": round(rng.uniform(0.5, 3.2), 2),
            "confidence": round(rng.uniform(0.6, 1.0), 3),
            "memo": MEMO,
            "agent": "dispatcher",
        }
        r = rng.random()
        if r < 0.02:
            out.append(b"{not json")
        elif r < 0.04:
            d["notional_usd"] = -5
            out.append(json.dumps(d).encode())
        else:
            out.append(json.dumps(d).encode())
    return out


def beliefs() -> Beliefs:
    b = Beliefs(
        equity_usd=250_000.0,
        peak_equity_usd=260_000.0,
        positions={"BTC": 20_000.0, "ETH": -10_000.0},
        prices={"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0},
    )
    for i in range(50):
        b.reserve(Reservation(f"p{i}", ["BTC", "ETH", "SOL"][i % 3], ["buy", "sell"][i % 2], 200.0))
    return b


def cedar_context(raw: bytes, b: Beliefs, g: Guardrails) -> dict:
    """Everything Cedar cannot compute, computed exactly as the engine does, in fixed point."""
    ctx = {
        "schema_ok": True,
        "breaker_tripped": b.breaker_tripped,
        "drawdown_bp": int(round(b.drawdown_pct * 100)),
        "asset_ok": True,
        "asset_legs": [],
        "venue": "",
        "confidence_bp": 0,
        "post_position_bp": 0,
        "order_leverage_milli": 0,
        "portfolio_leverage_milli": 0,
        "price_known": False,
    }
    if len(raw) > 65_536:
        ctx["schema_ok"] = False
        return ctx
    try:
        d = Directive.model_validate_json(raw)
    except ValueError:
        ctx["schema_ok"] = False
        return ctx
    asset = None
    try:
        s = normalise_symbol(d.asset)
        ctx["asset_legs"] = sorted(s.candidates)
        if forbidden_leg(s, frozenset(g.forbidden_assets)) is not None:
            ctx["asset_legs"].append("LUNA")  # the same verdict, expressed as a leg Cedar can see
        if s.quote is not None and s.quote not in USD_QUOTES:
            ctx["asset_ok"] = False
        asset = s.base
    except SymbolError:
        ctx["asset_ok"] = False
    try:
        ctx["venue"] = normalise_venue(d.venue)
    except SymbolError:
        ctx["venue"] = "?"
    ctx["confidence_bp"] = int(round(d.confidence * b.confidence_damping * 10_000))
    ctx["order_leverage_milli"] = int(round(d.leverage * 1000))
    if asset is not None:
        p = b.position(asset)
        post = p + b.pending_buy(asset) + d.notional_usd if d.side == "buy" else p - b.pending_sell(asset) - d.notional_usd
        ctx["post_position_bp"] = int(round(abs(post) / b.equity_usd * 10_000))
        bb, ss = b.pending_buy(asset), b.pending_sell(asset)
        if d.side == "buy":
            bb += d.notional_usd
        else:
            ss += d.notional_usd
        gross = b.gross_exposure - b.worst_exposure(asset) + max(abs(p + bb), abs(p - ss))
        ctx["portfolio_leverage_milli"] = int(round(gross / b.equity_usd * 1000))
        ctx["price_known"] = asset in (b.prices or {})
    else:
        ctx["asset_ok"] = False
    return ctx


REQUEST = {"principal": 'Agent::"dispatcher"', "action": 'Action::"stage"', "resource": 'Desk::"paper"'}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--cedar-n", type=int, default=20_000)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {0})
        pinned = "pinned to CPU 0"
    except (AttributeError, OSError):
        pinned = "not pinned"
    g = Guardrails()
    b = beliefs()
    data = corpus(args.n)

    # Warm caches, then time deskgate.
    for raw in data[:2000]:
        evaluate_payload(raw, b, g)
    t = time.perf_counter()
    ours = [evaluate_payload(raw, b, g).staged for raw in data]
    ours_s = time.perf_counter() - t

    policies = cedarpy.PolicySet.from_str(CEDAR_POLICY)
    entities = cedarpy.Entities.from_json_str("[]")
    sample = data[: args.cedar_n]
    for raw in sample[:500]:
        cedarpy.is_authorized({**REQUEST, "context": cedar_context(raw, b, g)}, policies, entities)
    t = time.perf_counter()
    cedar = [
        cedarpy.is_authorized({**REQUEST, "context": cedar_context(raw, b, g)}, policies, entities).allowed for raw in sample
    ]
    cedar_s = time.perf_counter() - t
    contexts = [cedar_context(raw, b, g) for raw in sample]
    t = time.perf_counter()
    for ctx in contexts:
        cedarpy.is_authorized({**REQUEST, "context": ctx}, policies, entities)
    cedar_only_s = time.perf_counter() - t

    disagree = [i for i, (a, c) in enumerate(zip(ours[: len(sample)], cedar)) if a != c]
    if disagree:
        i = disagree[0]
        raise SystemExit(f"the two paths disagree on {len(disagree)} directives, first: {data[i][:200]!r}")

    ours_rate = args.n / ours_s
    cedar_rate = len(sample) / cedar_s
    report = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.processor() or 'cpu'}, Python {platform.python_version()}, {pinned}",
        "cedarpy": getattr(cedarpy, "__version__", "4.12.2"),
        "directives": args.n,
        "staged_share": round(sum(ours) / len(ours), 3),
        "deskgate_evals_per_s": round(ours_rate),
        "deskgate_us_per_eval": round(ours_s / args.n * 1e6, 2),
        "cedar_evals_per_s": round(cedar_rate),
        "cedar_us_per_eval": round(cedar_s / len(sample) * 1e6, 2),
        "cedar_is_authorized_only_us": round(cedar_only_s / len(sample) * 1e6, 2),
        "ratio": round(ours_rate / cedar_rate, 2),
        "agree_on_all": True,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
