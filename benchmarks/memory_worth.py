"""Does memory help? The same seeded market replayed twice through the real desk, with memory and without.

Each run starts a desk of its own (nats-server, factory, paper executor; the demo's
mission: market clock, 1M USD, the offline analyst) in a temporary directory and
replays `--days` desk days. Without memory (`Replay(recall=False)`), the agents write
their memory as usual but never read it back: no core blocks, no recall in the
context, no searches. With it, they do (what the offline analyst takes from memory is
its own record: how many days it has run, which calls were confirmed, yesterday's
hypotheses, the monthly review).

Both scorecards come from the bus at the end (scorecard_feed.py): hit rate, Brier,
P&L at the horizon, with the book's P&L beside them. Whatever it shows is reported.

    python benchmarks/memory_worth.py [--days 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [os.environ.get("PYTHONPATH")])])

from deskgate.agents.offline import OfflineAnalyst  # noqa: E402
from deskgate.config import load_mission  # noqa: E402
from deskgate.demo import DEMO_SERVICES, EQUITY, demo_mission  # noqa: E402
from deskgate.paths import DataDir  # noqa: E402
from deskgate.replay import Replay  # noqa: E402
from deskgate.stack import Stack  # noqa: E402


def one_run(days: int, recall: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix="deskgate-bench-memory-"))
    try:
        mission = load_mission(demo_mission(root))
        data_dir = DataDir.at(mission.data_dir)
        stack = Stack(mission, data_dir, services=DEMO_SERVICES).start()
        try:
            def progress(t, done):
                print(f"\r{'with' if recall else 'without'} memory: day {done}/{days}", end="", file=sys.stderr, flush=True)

            r = asyncio.run(Replay(mission, data_dir, OfflineAnalyst(), days=days, recall=recall, on_progress=progress).run())
            print(file=sys.stderr)
        finally:
            stack.stop()
        card = r.scorecard
        return {
            "memory": recall,
            "days": days,
            "wall_s": round(r.wall_seconds, 1),
            "directives": r.counts.get("submitted", 0),
            "executed": card.desk.executed,
            "judged": card.desk.judged,
            "hit_rate": card.desk.hit_rate,
            "brier": card.desk.brier,
            "pnl_at_horizon_usd": card.desk.pnl_usd,
            "book_pnl_usd": round(r.last.equity_usd - EQUITY, 2) if r.last else None,
            "max_drawdown_pct": round(r.max_drawdown_pct, 3),
            "governor_interventions": r.governor_interventions,
            "reliability": [b.model_dump() for b in card.reliability if b.count],
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    runs = [one_run(args.days, recall) for recall in (True, False)]
    print(json.dumps({
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "with_memory": runs[0],
        "without_memory": runs[1],
    }, indent=2))


if __name__ == "__main__":
    main()
