"""Recall search over 1,000,000 entries (DESIGN §10: p95 ≤ 25 ms).

Fills a fresh memory database with synthetic desk observations, insights and
outcomes spread over a year, then times searches as the agents and a person make
them: one or two words, with and without a date window or a kind filter, newest
first (the default) and best first.

Two baselines from the same run: a bare FTS5 count of a common word's matches, and
best first as FTS5 ranks it by itself (`ORDER BY rank`, scoring every match: the
ranking before the rank index) on the first `--checks` queries, whose results must
equal the rank index's, id for id and score for score.

    python benchmarks/recall_search.py [--entries 1000000] [--queries 300] [--checks 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from deskgate.memory.store import Memory, _matching  # noqa: E402

ASSETS = ["BTC", "ETH", "SOL", "AVAX", "LINK", "DOGE", "ADA", "DOT", "MATIC", "ATOM", "XRP", "LTC"]
VERBS = ["rallied", "fell", "ranged", "broke out", "mean-reverted", "gapped", "stalled", "trended"]
WHAT = ["realised vol", "volume", "funding", "basis", "open interest", "spread", "range", "skew"]
CHANGE = ["doubled", "halved", "rose", "dropped", "spiked", "normalised", "widened", "narrowed"]
KINDS = ["observation"] * 6 + ["insight", "principle", "directive", "outcome"]
T0 = datetime(2025, 11, 23, tzinfo=timezone.utc)


def entry(rng: random.Random, i: int, n: int) -> dict:
    a, b = rng.sample(ASSETS, 2)
    text = (
        f"{a} {rng.choice(VERBS)} {rng.uniform(-8, 8):+.1f}% while {rng.choice(WHAT)} {rng.choice(CHANGE)}; "
        f"{b} {rng.choice(WHAT)} at {rng.uniform(0.2, 3):.1f}x its norm; regime {rng.choice(['calm', 'volatile', 'trending'])}"
        f" note{rng.randrange(100_000)}"
    )
    return {"at": T0 + timedelta(seconds=i * (365 * 86400 / n)), "kind": rng.choice(KINDS), "text": text, "ref": f"bar:{a}:{i}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--checks", type=int, default=40, help="queries also ranked by FTS5 over every match, and compared")
    args = ap.parse_args()
    rng = random.Random(7)
    path = os.path.join(tempfile.mkdtemp(prefix="deskgate-recall-"), "memory.db")
    memory = Memory.open(path)
    t0 = time.perf_counter()
    batch = 20_000
    bulk = args.entries - min(args.entries, 200)
    for start in range(0, bulk, batch):
        memory.remember_many([entry(rng, i, args.entries) for i in range(start, min(bulk, start + batch))])
        print(f"\rfilled {min(bulk, start + batch):,}/{args.entries:,}", end="", file=sys.stderr, flush=True)
    fill_s = time.perf_counter() - t0
    # The newest entries one at a time, as the agents write between cycles: the rank index takes
    # them in batches, so searches also score the newest (up to ranking.BATCH) themselves.
    t0 = time.perf_counter()
    for i in range(bulk, args.entries):
        e = entry(rng, i, args.entries)
        memory.remember(e["kind"], e["text"], ref=e["ref"], at=e["at"])
    one_ms = (time.perf_counter() - t0) * 1000 / max(1, args.entries - bulk)
    print(file=sys.stderr)
    end = T0 + timedelta(days=365)

    def queries():
        for _ in range(args.queries):
            a, b = rng.sample(ASSETS, 2)
            shape = rng.choice(["one word", "two words", "rare word", "30-day window", "kind filter"])
            if shape == "one word":
                yield shape, dict(query=a)
            elif shape == "two words":
                yield shape, dict(query=f"{a} {rng.choice(WHAT).split()[0]}")
            elif shape == "rare word":
                yield shape, dict(query=f"note{rng.randrange(100_000)}")
            elif shape == "30-day window":
                since = end - timedelta(days=rng.randrange(30, 365))
                yield shape, dict(query=f"{a} {rng.choice(CHANGE)}", since=since, until=since + timedelta(days=30))
            else:
                yield shape, dict(query=a, kinds=["outcome"])

    asked = list(queries())
    results = {}
    for order in ("recent", "relevance"):
        times: dict[str, list[float]] = {}
        for shape, q in asked:
            t = time.perf_counter()
            memory.search(**q, limit=20, order=order)
            times.setdefault(shape, []).append((time.perf_counter() - t) * 1000)
        every = sorted(x for v in times.values() for x in v)
        results[order] = {
            "all": _stats(every),
            **{shape: _stats(sorted(v)) for shape, v in times.items()},
        }

    # Baselines, same run: counting a common word's matches, and FTS5 ranking every match by itself.
    pooled = memory.engine.raw_connection()
    raw = pooled.driver_connection
    counts = []
    for asset in ASSETS * 3:
        t = time.perf_counter()
        raw.execute("SELECT count(*) FROM recall_fts WHERE recall_fts MATCH ?", (f'"{asset}"',)).fetchone()
        counts.append((time.perf_counter() - t) * 1000)
    fts5: dict[str, list[float]] = {}
    same = 0
    for shape, q in asked[: args.checks]:
        where, params = _matching(raw, q["query"], q.get("since"), q.get("until"), q.get("kinds")) or ("0", {})
        sql = (
            "SELECT r.id, -recall_fts.rank FROM recall_fts JOIN recall r ON r.id = recall_fts.rowid "
            f"WHERE {where} ORDER BY recall_fts.rank, r.id DESC LIMIT 20"
        )
        t = time.perf_counter()
        expected = raw.execute(sql, params).fetchall()
        fts5.setdefault(shape, []).append((time.perf_counter() - t) * 1000)
        got = [(r.entry.id, r.score) for r in memory.rank(**q, limit=20)]
        same += got == [tuple(row) for row in expected]
    db_mb = round(os.path.getsize(path) / 2**20)
    pooled.close()
    memory.engine.dispose()
    shutil.rmtree(os.path.dirname(path))
    print(json.dumps({
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
                   f"SQLite {__import__('sqlite3').sqlite_version}",
        "entries": args.entries,
        "fill_seconds": round(fill_s, 1),
        "fill_per_second": round(bulk / fill_s),
        "remember_one_ms": round(one_ms, 2),
        "db_mb": db_mb,
        "search_ms": results,
        "baseline_ms": {
            "fts5 count of a common word's matches": _stats(sorted(counts)),
            "best first as FTS5 ranks it (every match)": {
                "all": _stats(sorted(x for v in fts5.values() for x in v)),
                **{shape: _stats(sorted(v)) for shape, v in fts5.items()},
            },
        },
        "best_first_identical_to_fts5": f"{same}/{min(args.checks, len(asked))}",
    }, indent=2))


def _stats(ms: list[float]) -> dict:
    return {
        "n": len(ms),
        "p50": round(statistics.median(ms), 2),
        "p95": round(ms[int(0.95 * (len(ms) - 1))], 2),
        "max": round(ms[-1], 2),
    }


if __name__ == "__main__":
    main()
