"""Resident memory of a running `deskgate up`: supervisor, nats-server and every service.

Starts the desk as `deskgate up` does (in this process, so the supervisor is this
process), measures the resident set of the whole process tree at rest, then after
a load of directives, and prints both.

    python benchmarks/memory.py [--directives 20000]
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

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from deskgate.audit.keys import KeyStore  # noqa: E402
from deskgate.audit.signing import Kind, Signer  # noqa: E402
from deskgate.bus.connect import connect_as  # noqa: E402
from deskgate.bus.subjects import Role  # noqa: E402
from deskgate.config import Mission  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402
from deskgate.stack import Stack  # noqa: E402

MEMO = {"signal_evidence": "m", "position_context": "m", "proposed_action": "m", "expected_outcome": "m"}


def tree_rss_mb() -> dict[str, float]:
    me = psutil.Process()
    out = {"supervisor": me.memory_info().rss / 2**20}
    for child in me.children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
            name = "nats-server" if "nats-server" in cmd else cmd.split("service ")[-1].split()[0]
            out[name] = out.get(name, 0.0) + child.memory_info().rss / 2**20
        except (psutil.NoSuchProcess, IndexError):
            pass
    out["total"] = sum(v for k, v in out.items())
    return {k: round(v, 1) for k, v in out.items()}


async def load(root: DataDir, n: int) -> None:
    agent, _ = await connect_as(root, Role.AGENT, reconnect=False)
    js = agent.jetstream()
    signer = Signer(KeyStore(root.keys), "agent")
    pending = []
    for i in range(n):
        body = {"directive_id": f"m{i}", "asset": "BTC", "venue": "binance", "side": "buy" if i % 2 else "sell",
                "notional_usd": 10.0, "confidence": 0.8, "memo": MEMO}
        data = json.dumps(body).encode()
        pending.append(asyncio.ensure_future(js.publish("consciousness.directives.BTC", data, headers=signer.headers(Kind.DIRECTIVE, data))))
        if len(pending) >= 200:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await agent.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--directives", type=int, default=20_000)
    args = ap.parse_args()
    root = DataDir.at(tempfile.mkdtemp(prefix="deskgate-mem-"))
    mission = Mission.model_validate({"paper": {"starting_equity_usd": 1e12}, "approvals": {"expiry_seconds": 86_400}})
    stack = Stack(mission, root).start()
    try:
        time.sleep(5)
        at_rest = tree_rss_mb()
        asyncio.run(load(root, args.directives))
        time.sleep(10)
        loaded = tree_rss_mb()
    finally:
        stack.stop()
    print(json.dumps({
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "at_rest_mb": at_rest,
        f"after_{args.directives}_directives_mb": loaded,
    }, indent=2))


if __name__ == "__main__":
    main()
