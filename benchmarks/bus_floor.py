"""The bus's own floor for directive -> staged: the desk's path with nothing in the middle.

An agent publishes a signed directive to DIRECTIVES; a relay with the factory role's
credentials takes it from the factory's durable consumer (the same one-message pull
requests across the account import as the factory) and at once publishes it to
`approvals.queue.directive.<id>`, acknowledging the directive after. No signature check,
no policy, no SQLite: what remains is what the bus costs. Latency is measured exactly as
in staging_latency.py (storage time of the staged message minus the send time), beside
bare JetStream round trips from the same run.

    python benchmarks/bus_floor.py [--rate 500] [--count 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from staging_latency import bare_roundtrips, ns_of, offer, pct  # noqa: E402

from deskgate.agents.submit import desk_signer  # noqa: E402
from deskgate.bus.connect import connect_as  # noqa: E402
from deskgate.bus.publish import BatchPublisher  # noqa: E402
from deskgate.bus.pull import PullConsumer  # noqa: E402
from deskgate.bus.reader import read_stream  # noqa: E402
from deskgate.bus.subjects import Role  # noqa: E402
from deskgate.config import Mission  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402
from deskgate.stack import Stack  # noqa: E402


async def relay_floor(rate: float = 500, count: int = 5000) -> dict:
    """A bus-only desk in a temporary directory: bare round trips, then the relayed path."""
    root = DataDir.at(tempfile.mkdtemp(prefix="deskgate-floor-"))
    mission = Mission.model_validate({"marketdata": {"source": "none", "assets": ["BTC"]}})
    stack = Stack(mission, root, services=()).start()
    try:
        relay_nc, _ = await connect_as(root, Role.FACTORY, reconnect=False)
        agent, _ = await connect_as(root, Role.AGENT, reconnect=False)
        observer, _ = await connect_as(root, Role.OBSERVER, reconnect=False)
        publisher = await BatchPublisher(relay_nc).start()
        consumer = await PullConsumer(relay_nc, "DIRECTIVES", "factory_directives").start()

        async def relay() -> None:
            while True:
                for m in await consumer.next_batch(wait=1.0):
                    did = json.loads(m.data)["directive_id"]
                    await publisher.publish_all([(f"approvals.queue.directive.{did}", m.data, f"staged-{did}")])
                    await m.ack()

        task = asyncio.ensure_future(relay())
        js = agent.jetstream()
        bare = await bare_roundtrips(js, 2000)
        signer = desk_signer(root)
        await offer(js, 100, 1, "warm", signer)
        sent = await offer(js, rate, count / rate, "floor", signer)
        await asyncio.sleep(2)
        staged = {}
        async for m in read_stream(observer, "APPROVALS", "approvals.queue.directive.>"):
            did = m.subject.rsplit(".", 1)[1]
            if did.startswith("floor"):
                staged[did] = ns_of(m.time)
        task.cancel()
        lat = [(staged[d] - t) / 1e6 for d, t in sent.items() if d in staged]
        for c in (relay_nc, agent, observer):
            await c.close()
        return {
            "offered_per_s": rate,
            "directives": len(sent),
            "relayed": len(lat),
            "bare_jetstream_publish_ms": {"p50": pct(bare, 50), "p99": pct(bare, 99)},
            "relay_p50_ms": pct(lat, 50),
            "relay_p99_ms": pct(lat, 99),
            "relay_p50_over_bare_p50": pct(lat, 50) / pct(bare, 50),
        }
    finally:
        stack.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--count", type=int, default=5000)
    a = p.parse_args()
    print(json.dumps(asyncio.run(relay_floor(a.rate, a.count)), indent=2))
