"""Directive -> staged (persisted in approvals.queue) latency and sustained throughput.

Runs the real desk: embedded nats-server, the factory as its own process. An
agent-role client offers directives at a fixed rate; each one's latency is the
JetStream storage timestamp of its staged message in APPROVALS minus the moment
the agent sent it (same machine, same clock). Beside it, bare JetStream publish
round-trips on the same server (agent -> INSIGHTS stream, which nothing consumes).

Then approval -> order published: a principal's decision to the storage time of
the order in ORDERS.

    python benchmarks/staging_latency.py [--seconds 10] [--rate 500] [--rates 1000,2000,3000,4000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from deskgate.agents.submit import desk_signer  # noqa: E402
from deskgate.people.principals import scripted_principal  # noqa: E402
from deskgate.audit.signing import Kind, Signer, digest  # noqa: E402
from deskgate.bus.connect import connect_as  # noqa: E402
from deskgate.bus.reader import read_stream  # noqa: E402
from deskgate.bus.subjects import Role  # noqa: E402
from deskgate.config import Mission  # noqa: E402
from deskgate.domain.approval import ApprovalResponse  # noqa: E402
from deskgate.domain.base import utcnow  # noqa: E402
from deskgate.domain.market import Bar  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402
from deskgate.stack import Stack  # noqa: E402

MEMO = {"signal_evidence": "bench", "position_context": "bench", "proposed_action": "bench", "expected_outcome": "bench"}


def payload(i: int, prefix: str) -> bytes:
    return json.dumps(
        {
            "directive_id": f"{prefix}{i}",
            "asset": "BTC",
            "venue": "binance",
            "side": "buy" if i % 2 == 0 else "sell",
            "notional_usd": 100.0,
            "leverage": 1.0,
            "confidence": 0.8,
            "memo": MEMO,
        }
    ).encode()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def ns_of(stamp: str) -> int:
    head, _, frac = stamp.rstrip("Z").partition(".")
    base = datetime.fromisoformat(head + "+00:00").timestamp()
    return int(base) * 1_000_000_000 + int((frac + "000000000")[:9])


async def offer(js, rate: float, seconds: float, prefix: str, signer: Signer) -> dict[str, int]:
    """Publish at `rate`/s for `seconds`, each signed with the agent's key as the agents
    do (signing counts in the latency); returns send time (ns) per directive id."""
    sent: dict[str, int] = {}
    n = int(rate * seconds)
    start = time.perf_counter()
    pending = []
    for i in range(n):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[f"{prefix}{i}"] = time.time_ns()
        body = payload(i, prefix)
        pending.append(asyncio.ensure_future(js.publish("consciousness.directives.BTC", body, headers=signer.headers(Kind.DIRECTIVE, body))))
        if len(pending) > 256:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    return sent


async def staged_times(nc, prefix: str) -> dict[str, int]:
    out = {}
    async for m in read_stream(nc, "APPROVALS", "approvals.queue.directive.>"):
        did = m.subject.rsplit(".", 1)[1]
        if did.startswith(prefix):
            out[did] = ns_of(m.time)
    return out


async def bare_roundtrips(js, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter_ns()
        await js.publish("consciousness.insights.bench", b'{"i": %d}' % i)
        out.append((time.perf_counter_ns() - t) / 1e6)
    return out


async def main(args) -> None:
    from bus_floor import relay_floor  # the bus's own floor for this path, measured first in the same run

    floor = await relay_floor(args.rate, int(args.rate * args.seconds))
    root = DataDir.at(tempfile.mkdtemp(prefix="deskgate-bench-"))
    mission = Mission.model_validate(
        {
            "paper": {"starting_equity_usd": 1e13},
            "marketdata": {"source": "none", "assets": ["BTC"]},
            "approvals": {"expiry_seconds": 86_400, "price_band_pct": 50},
            "bus": {"sync_interval": args.sync_interval},
        }
    )
    stack = Stack(mission, root, services=("factory", "executor")).start()
    agent_signer, principal = desk_signer(root), scripted_principal(root, "bench")  # an account with a sealed key
    report: dict = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "sync_interval": args.sync_interval,
    }
    try:
        md, _ = await connect_as(root, Role.MARKETDATA, reconnect=False)
        bar = Bar(asset="BTC", ts=utcnow(), open=1, high=1, low=1, close=65_000, volume=1, interval_seconds=1, source="bench")
        bar = bar.model_copy(update={"open": 65_000.0, "high": 65_000.0, "low": 65_000.0})
        await md.jetstream().publish("market.data.bars.BTC", bar.to_bytes())
        await md.close()
        await asyncio.sleep(0.5)
        agent, _ = await connect_as(root, Role.AGENT, reconnect=False)
        observer, _ = await connect_as(root, Role.OBSERVER, reconnect=False)
        js = agent.jetstream()

        bare = await bare_roundtrips(js, 2000)
        report["bare_jetstream_publish_ms"] = {"p50": pct(bare, 50), "p99": pct(bare, 99)}

        # Latency at the offered rate.
        await offer(js, 100, 2, "warm", agent_signer)
        await asyncio.sleep(1)
        sent = await offer(js, args.rate, args.seconds, "lat", agent_signer)
        await asyncio.sleep(2)
        staged = await staged_times(observer, "lat")
        lat = [(staged[d] - t) / 1e6 for d, t in sent.items() if d in staged]
        report["relay_floor"] = floor
        report["latency"] = {
            "offered_per_s": args.rate,
            "directives": len(sent),
            "staged": len(staged),
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "max_ms": max(lat) if lat else None,
            "p50_over_bare_p50": pct(lat, 50) / report["bare_jetstream_publish_ms"]["p50"],
            "p50_over_relay_floor_p50": pct(lat, 50) / floor["relay_p50_ms"],
        }

        # Sustained rates: all offered must be staged, and the backlog gone within 2 s of the end.
        sustained = []
        for rate in args.rates:
            prefix = f"r{rate}-"
            t0 = time.perf_counter()
            sent = await offer(js, rate, args.sustain_seconds, prefix, agent_signer)
            offered_for = time.perf_counter() - t0
            deadline = time.monotonic() + 30
            staged = {}
            while time.monotonic() < deadline:
                staged = await staged_times(observer, prefix)
                if len(staged) == len(sent):
                    break
                await asyncio.sleep(0.2)
            last = max(staged.values()) if staged else 0
            drained_after = (last - max(sent.values())) / 1e9 if staged else None
            lat = [(staged[d] - t) / 1e6 for d, t in sent.items() if d in staged]
            ok = len(staged) == len(sent) and drained_after is not None and drained_after < 2.0
            sustained.append(
                {
                    "offered_per_s": rate,
                    "achieved_offer_per_s": round(len(sent) / offered_for),
                    "sent": len(sent),
                    "staged": len(staged),
                    "lost": len(sent) - len(staged),
                    "backlog_drained_s": round(drained_after, 3) if drained_after is not None else None,
                    "p50_ms": pct(lat, 50),
                    "p99_ms": pct(lat, 99),
                    "kept_up": ok,
                }
            )
            print(json.dumps(sustained[-1]), flush=True)
            if not ok:
                break
        report["sustained"] = sustained
        good = [s["offered_per_s"] for s in sustained if s["kept_up"]]
        report["highest_sustained_zero_loss_per_s"] = max(good) if good else None

        # Approval -> order published.
        cc, _ = await connect_as(root, Role.COMMAND_CENTER, reconnect=False)
        cjs = cc.jetstream()
        ids = [f"lat{i}" for i in range(min(args.approvals, len(sent)))]
        decided: dict[str, int] = {}
        for did in ids:
            resp = ApprovalResponse(approval_id=f"ap-{did}", directive_id=did, decision="approve", principal="bench", decided_at=utcnow(),
                                    directive_digest=digest(payload(int(did[3:]), "lat")))
            decided[did] = time.time_ns()
            body = resp.to_bytes()  # signed by the principal, as the Command Center does
            await cjs.publish(f"approvals.response.{did}", body, headers=principal.headers(Kind.APPROVAL, body))
            await asyncio.sleep(0.01)
        await asyncio.sleep(2)
        ordered = {}
        async for m in read_stream(observer, "ORDERS", "factory.execution.orders.>"):
            did = json.loads(m.data)["directive_id"]
            ordered[did] = ns_of(m.time)
        lat = [(ordered[d] - t) / 1e6 for d, t in decided.items() if d in ordered]
        report["approval_to_order"] = {"approvals": len(decided), "ordered": len(lat), "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}
        for c in (agent, observer, cc):
            await c.close()
    finally:
        stack.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 2000, 3000, 4000, 5000])
    p.add_argument("--sustain-seconds", type=float, default=5)
    p.add_argument("--approvals", type=int, default=300)
    p.add_argument("--sync-interval", default="1s")
    asyncio.run(main(p.parse_args()))
