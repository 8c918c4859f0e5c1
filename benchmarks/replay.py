"""Replay speed: simulated desk days per wall-clock minute with the offline analyst (DESIGN §10: >= 30).

Starts the real desk (nats-server, factory and paper executor as their own
processes) in a temporary directory and replays N days through it: 480 bars a day
per asset (3-minute bars), 48 intraday cycles, a morning brief and an end-of-day
review, every directive through the policy engine, the simulated principal
deciding each staged one to a fill. Wall time counts from the first bar to the
last cycle; start-up and the final funnel are not counted.

Each run also prints a fingerprint of what it left on the bus (every directive and
every verdict, byte for byte): runs of the same build give the same one (the
replay is deterministic on the market clock the demo's mission uses).

    python benchmarks/replay.py [--days 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, SRC)
# The desk's processes (started by Stack) run this same source tree, not whatever the
# environment would import (an editable install of another checkout, say).
os.environ["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [os.environ.get("PYTHONPATH")])])

from deskgate.agents.offline import OfflineAnalyst  # noqa: E402
from deskgate.bus.connect import connect_as  # noqa: E402
from deskgate.bus.reader import read_stream  # noqa: E402
from deskgate.config import load_mission  # noqa: E402
from deskgate.demo import DEMO_SERVICES, demo_mission  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402
from deskgate.replay import Replay  # noqa: E402
from deskgate.stack import Stack  # noqa: E402


async def fingerprint(data_dir: DataDir) -> str:
    """SHA-256 (first 16 hex digits) of every directive and every verdict, in stream order."""
    nc, _ = await connect_as(data_dir, "observer", reconnect=False)
    h = hashlib.sha256()
    try:
        for stream, subject in (("DIRECTIVES", "consciousness.directives.>"), ("STATUS", "factory.status.policy.>")):
            async for m in read_stream(nc, stream, subject):
                h.update(m.subject.encode() + b"\0" + m.data + b"\0")
    finally:
        await nc.close()
    return h.hexdigest()[:16]


def one_run(days: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="deskgate-bench-replay-"))
    try:
        mission = load_mission(demo_mission(root))
        data_dir = DataDir.at(mission.data_dir)
        stack = Stack(mission, data_dir, services=DEMO_SERVICES).start()
        try:
            r = asyncio.run(Replay(mission, data_dir, OfflineAnalyst(), days=days).run())
            fp = asyncio.run(fingerprint(data_dir))
        finally:
            stack.stop()
        return {
            "days": days,
            "wall_s": round(r.wall_seconds, 2),
            "days_per_minute": round(days / r.wall_seconds * 60, 1),
            "bars": r.bars,
            "cycles": sum(r.cycles.values()),
            "directives": r.counts.get("submitted", 0),
            "executed": r.funnel.executed if r.funnel else None,
            "fingerprint": fp,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = [one_run(args.days) for _ in range(args.runs)]
    for r in runs:
        print(json.dumps(r))
    rates = [r["days_per_minute"] for r in runs]
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}",
        "median_days_per_minute": statistics.median(rates),
        "min_days_per_minute": min(rates),
        "target": ">= 30",
        "identical_runs": len({r["fingerprint"] for r in runs}) == 1,
    }))


if __name__ == "__main__":
    main()
