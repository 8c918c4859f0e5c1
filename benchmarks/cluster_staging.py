"""Directive -> staged on a 3-node cluster with streams replicated three times, beside one
node in the same run: what replication costs, as ratios (issue 17).

For each bus (one nats-server, then `bus.cluster: 3`), the real desk with the factory as
its own process: bare JetStream publish round trips, directive -> staged latency at a
fixed rate (the staged message's JetStream storage time minus the send), and the
sustained rates it keeps up with (everything staged, the backlog gone within 2 s).
Measured exactly as `staging_latency.py` measures, with its functions.

    python benchmarks/cluster_staging.py [--seconds 10] [--rate 500] [--rates 1000,2000,3000] [--nodes 3]
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

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from staging_latency import bare_roundtrips, offer, pct, staged_times  # noqa: E402

from deskgate.agents.submit import desk_signer  # noqa: E402
from deskgate.bus.connect import connect_as  # noqa: E402
from deskgate.bus.subjects import Role  # noqa: E402
from deskgate.config import Mission  # noqa: E402
from deskgate.domain.base import utcnow  # noqa: E402
from deskgate.domain.market import Bar  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402
from deskgate.stack import Stack  # noqa: E402


async def measure(args, nodes: int) -> dict:
    root = DataDir.at(tempfile.mkdtemp(prefix=f"deskgate-bench-n{nodes}-"))
    mission = Mission.model_validate(
        {
            "paper": {"starting_equity_usd": 1e13},
            "marketdata": {"source": "none", "assets": ["BTC"]},
            "approvals": {"expiry_seconds": 86_400, "price_band_pct": 50},
            "bus": {"cluster": nodes},
        }
    )
    stack = Stack(mission, root, services=("factory", "executor")).start()
    out: dict = {"nodes": nodes, "replicas": mission.bus.stream_replicas()}
    try:
        md, _ = await connect_as(root, Role.MARKETDATA, reconnect=False)
        bar = Bar(asset="BTC", ts=utcnow(), open=65_000.0, high=65_000.0, low=65_000.0, close=65_000.0, volume=1, interval_seconds=1,
                  source="bench")
        await md.jetstream().publish("market.data.bars.BTC", bar.to_bytes())
        await md.close()
        await asyncio.sleep(0.5)
        signer = desk_signer(root)
        agent, _ = await connect_as(root, Role.AGENT, reconnect=False)
        observer, _ = await connect_as(root, Role.OBSERVER, reconnect=False)
        js = agent.jetstream()
        bare = await bare_roundtrips(js, 2000)
        out["bare_jetstream_publish_ms"] = {"p50": pct(bare, 50), "p99": pct(bare, 99)}
        await offer(js, 100, 2, "warm", signer)
        await asyncio.sleep(1)
        sent = await offer(js, args.rate, args.seconds, "lat", signer)
        await asyncio.sleep(2)
        staged = await staged_times(observer, "lat")
        lat = [(staged[d] - t) / 1e6 for d, t in sent.items() if d in staged]
        out["latency"] = {"offered_per_s": args.rate, "directives": len(sent), "staged": len(staged), "p50_ms": pct(lat, 50),
                          "p99_ms": pct(lat, 99)}
        sustained = []
        for rate in args.rates:
            prefix = f"r{rate}-"
            sent = await offer(js, rate, args.sustain_seconds, prefix, signer)
            deadline, staged = time.monotonic() + 30, {}
            while time.monotonic() < deadline:
                staged = await staged_times(observer, prefix)
                if len(staged) == len(sent):
                    break
                await asyncio.sleep(0.2)
            drained = (max(staged.values()) - max(sent.values())) / 1e9 if staged else None
            ok = len(staged) == len(sent) and drained is not None and drained < 2.0
            sustained.append({"offered_per_s": rate, "sent": len(sent), "staged": len(staged), "backlog_drained_s": drained, "kept_up": ok})
            print(json.dumps({"nodes": nodes, **sustained[-1]}), flush=True)
            if not ok:
                break
        out["sustained"] = sustained
        good = [s["offered_per_s"] for s in sustained if s["kept_up"]]
        out["highest_sustained_per_s"] = max(good) if good else None
        for c in (agent, observer):
            await c.close()
    finally:
        stack.stop()
    return out


async def main(args) -> None:
    report = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
              "single": await measure(args, 1), "cluster": await measure(args, args.nodes)}
    one, many = report["single"], report["cluster"]
    report["cluster_over_single"] = {
        "bare_p50": many["bare_jetstream_publish_ms"]["p50"] / one["bare_jetstream_publish_ms"]["p50"],
        "staged_p50": many["latency"]["p50_ms"] / one["latency"]["p50_ms"],
        "staged_p99": many["latency"]["p99_ms"] / one["latency"]["p99_ms"],
        "highest_sustained": (many["highest_sustained_per_s"] or 0) / (one["highest_sustained_per_s"] or 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 2000, 3000])
    p.add_argument("--sustain-seconds", type=float, default=5)
    p.add_argument("--nodes", type=int, default=3)
    asyncio.run(main(p.parse_args()))
