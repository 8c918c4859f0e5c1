"""How the Command Center's pages and API answer as the desk's history grows.

Starts a desk (factory, executor and the Command Center, each its own process, on
the embedded bus), stages --directives directives, decides a share of them, then
times requests over real HTTP: the queue as JSON and as a page, the funnel over all
time, the portfolio history, the metrics, and approve-to-fill through the API.
Every page reads the queues from JetStream on each request (no cache), so this is
the number that grows with history.

    python benchmarks/command_center.py [--directives 1000] [--pending N] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from deskgate.agents.submit import AgentClient  # noqa: E402
from deskgate.approvals.client import CommandCenter  # noqa: E402
from deskgate.bus.connect import connect_as  # noqa: E402
from deskgate.bus.subjects import Role, bar_subject  # noqa: E402
from deskgate.config import Mission  # noqa: E402
from deskgate.domain.market import Bar  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402
from deskgate.stack import Stack  # noqa: E402
from deskgate.people.accounts import Accounts  # noqa: E402
from deskgate.people.pins import enroll  # noqa: E402
from deskgate.people.principals import Principals  # noqa: E402

MEMO = {"signal_evidence": "trend", "position_context": "flat", "proposed_action": "buy", "expected_outcome": "+1%"}
PASSWORD = "benchmark password"


def directive(i: int) -> bytes:
    return json.dumps(
        {"directive_id": f"b{i}", "asset": "BTC", "venue": "binance", "side": "buy", "notional_usd": 100.0,
         "confidence": 0.8, "memo": MEMO}
    ).encode()


async def fill_desk(root: DataDir, n: int, decided: int) -> None:
    md, _ = await connect_as(root, Role.MARKETDATA, reconnect=False)
    await md.jetstream().publish(bar_subject("BTC"), Bar.at_price("BTC", 65_000.0, "bench").to_bytes())
    await md.close()
    async with await AgentClient.connect(root) as agent:
        for start in range(0, n, 500):
            await agent.submit([directive(i) for i in range(start, min(n, start + 500))], wait=60)
    signer = Principals(Accounts.open(root), legacy_dir=root.keys).signer("bench", PASSWORD)  # bench's sealed key, opened
    async with await CommandCenter.connect(root) as cc:
        await asyncio.gather(*(cc.decide(f"b{i}", "reject" if i % 2 else "approve", signer, "no" if i % 2 else "", wait=0)
                               for i in range(decided)))
        while True:  # until the factory has answered every decision
            funnel = await cc.funnel()
            if funnel is not None and funnel.pending == n - decided and funnel.executed + funnel.human_rejected == decided:
                break
            await asyncio.sleep(0.5)


def timed(client: httpx.Client, method: str, path: str, requests: int, **kw) -> dict:
    ms = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r = client.request(method, path, **kw)
        ms.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    ms.sort()
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "bytes": len(r.content)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--directives", type=int, default=1000)
    ap.add_argument("--pending", type=int, default=None, help="leave this many undecided (default: 80%%)")
    ap.add_argument("--requests", type=int, default=20)
    args = ap.parse_args()
    root = DataDir.at(tempfile.mkdtemp(prefix="deskgate-cc-"))
    mission = Mission.model_validate(
        {"paper": {"starting_equity_usd": 1e12}, "approvals": {"expiry_seconds": 86_400},
         "marketdata": {"source": "none"}, "web": {"port": 0}}
    )
    accounts = Accounts.open(root.ensure())
    accounts.add("bench", "principal", PASSWORD)
    enroll(root, "bench", Principals(accounts, legacy_dir=root.keys).make_key("bench", PASSWORD))
    stack = Stack(mission, root, services=("factory", "executor", "web")).start()
    try:
        pending = args.pending if args.pending is not None else args.directives * 4 // 5
        decided = args.directives - pending - args.requests  # the rest are approved below, through the API
        asyncio.run(fill_desk(root, args.directives, decided))
        with httpx.Client(base_url=stack.web_url, timeout=60) as client:
            csrf = client.post("/api/login", json={"name": "bench", "password": PASSWORD}).json()["csrf_token"]
            results = {
                "GET /healthz (no bus read)": timed(client, "GET", "/healthz", args.requests),
                "GET /api/me (session only)": timed(client, "GET", "/api/me", args.requests),
                "GET /api/approvals": timed(client, "GET", "/api/approvals", args.requests),
                "GET /approvals (page)": timed(client, "GET", "/approvals", args.requests),
                "GET /api/funnel?period=all": timed(client, "GET", "/api/funnel?period=all", args.requests),
                "GET /api/portfolio?period=all": timed(client, "GET", "/api/portfolio?period=all", args.requests),
                "GET /metrics": timed(client, "GET", "/metrics", args.requests),
            }
            ms = []
            for i in range(decided, decided + args.requests):
                t0 = time.perf_counter()
                r = client.post(f"/api/approvals/b{i}/approve", json={}, headers={"X-CSRF-Token": csrf})
                ms.append((time.perf_counter() - t0) * 1000)
                assert r.json()["state"] == "executed", r.text
            ms.sort()
            results["POST approve, answered with the fill"] = {
                "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1)}
    finally:
        stack.stop()
    print(json.dumps({
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "directives": args.directives, "decided_before": decided, "approved_through_the_api": args.requests, "pending": pending,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
