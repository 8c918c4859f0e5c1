"""Hybrid recall search: latency over a large memory, and whether meaning helps.

Builds a memory of `--entries` recall entries (default 100,000): generated desk text
(observations, insights, fills, verdicts, reviews over eight assets, with the words
the labelled answers use), plus the 55 hand-written answers of
benchmarks/data/recall_queries.json at random places. Every entry gets its MiniLM
vector (embedded by `--workers` processes, one core each).

Then, for each labelled question, four searches (limit 10):
- `every word`: the full-text search the desk had (every word must appear, bm25);
- `text`: bm25 over entries with any of the words (the hybrid's word list alone);
- `semantic`: vectors alone;
- `hybrid`: both, fused by reciprocal rank (what the agents use).
It reports MRR@10 and recall@10 for each, and the latency of each over every
question (p50/p95), beside a raw baseline measured in the same run: one matrix-vector
product over all the vectors, and one query embedding.

    python benchmarks/memory_search.py [--entries 100000] [--db PATH to keep/reuse the built memory]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import numpy as np  # noqa: E402

from deskgate.memory.embedding import MiniLM  # noqa: E402
from deskgate.memory.store import Memory  # noqa: E402
from deskgate.memory.vectors import VectorStore, recall_vectors  # noqa: E402

ASSETS = ["BTC", "ETH", "SOL", "AVAX", "LINK", "DOGE", "XRP", "ADA"]
VENUES = ["binance", "bybit", "okx"]
TEMPLATES = [
    ("observation", "{a} closed the hour at {p:,.2f}, {d:+.2f}% on the day; volume {v}% of the 20-day average."),
    ("observation", "{a} realised volatility over 24 hours at {x}% annualised."),
    ("observation", "Order book on {a}-USDT at {venue}: spread {s} bps, depth within 1% of mid {v} million USD."),
    ("observation", "Funding on {a} perpetuals at {f:.3f}% per 8 hours on {venue}."),
    ("insight", "Correlation of {a} with {b} over {w} days at {c:.2f}; regime {regime}."),
    ("insight", "Signal model score for {a}: {c:.2f} ({regime}); momentum {d:+.2f}%, mean reversion z {z:+.1f}."),
    ("insight", "{a} open interest {d:+.1f}% while price {e:+.1f}%: positioning {pos}."),
    ("directive", "Drafted a {side} of {n:,} USD of {a} on {venue}, confidence {c:.2f}: {why}."),
    ("outcome", "Fill: {verb} {n:,} USD of {a} at {p:,.2f} on {venue}, slippage {s} bps against the venue model."),
    ("outcome", "Policy engine rejected the {a} {side}: {reason}."),
    ("outcome", "Principal {who} approved the {a} {side} of {n:,} USD."),
    ("review", "Intraday watch: {a} {d:+.2f}%, {b} {e:+.2f}%; no change to the {regime} regime call."),
    ("review", "End of day: P&L {d:+.2f}% on {k} executed directives; Governor {gov}."),
    ("note", "Cycle {cycle} finished in {t} s; {k} directives drafted, {m} staged."),
]
WHY = ["breakout above resistance", "mean reversion after a 3 sigma move", "funding too high", "trend continuation",
       "hedge against the spot book", "momentum fading", "range support held", "volatility compression"]
REASONS = ["position limit exceeded", "stale price", "drawdown limit", "asset not on the allowlist", "leverage above the cap",
           "confidence below the floor", "daily loss limit"]


def distractor(rng: random.Random) -> tuple[str, str]:
    kind, template = rng.choice(TEMPLATES)
    a, b = rng.sample(ASSETS, 2)
    side = rng.choice(["buy", "sell"])
    text = template.format(
        a=a, b=b, p=rng.uniform(0.1, 70_000), d=rng.gauss(0, 3), e=rng.gauss(0, 3), v=rng.randint(20, 300), x=rng.randint(15, 120),
        s=rng.randint(1, 30), f=rng.gauss(0.01, 0.03), w=rng.choice([7, 14, 30]), c=rng.uniform(0, 1), z=rng.gauss(0, 2),
        regime=rng.choice(["trending", "ranging", "volatile", "quiet"]), pos=rng.choice(["crowded long", "crowded short", "neutral"]),
        side=side, n=rng.randint(1, 100) * 1000, venue=rng.choice(VENUES), why=rng.choice(WHY),
        verb="bought" if side == "buy" else "sold", reason=rng.choice(REASONS), who=rng.choice(["alice", "bob", "carol"]),
        k=rng.randint(0, 12), m=rng.randint(0, 5), gov=rng.choice(["neutral", "damped to 0.8x", "flagged drift"]),
        cycle=rng.choice(["morning", "intraday", "eod"]), t=rng.randint(2, 90),
    )
    return kind, text


def _embed_chunk(texts: list[str]) -> bytes:
    return MiniLM().embed(texts).astype("<f2").tobytes()


def build(path: Path, entries: int, pairs: list[dict], workers: int, seed: int = 7) -> dict[int, int]:
    """The memory at `path`; returns {pair index: entry id}."""
    rng = random.Random(seed)
    memory = Memory.open(path)  # no embedder: vectors are computed in bulk below
    t0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
    slots = sorted(rng.sample(range(entries), len(pairs)))
    at_slot = dict(zip(slots, range(len(pairs))))
    rows, answer_row = [], {}
    for i in range(entries):
        at = t0 + timedelta(seconds=i * 150)
        if i in at_slot:
            p = pairs[at_slot[i]]
            answer_row[at_slot[i]] = i
            rows.append({"at": at, "kind": p["kind"], "text": p["entry"]})
        else:
            kind, text = distractor(rng)
            rows.append({"at": at, "kind": kind, "text": text})
    started = time.perf_counter()
    for start in range(0, entries, 5000):
        memory.remember_many(rows[start : start + 5000])
    print(f"wrote {entries} entries in {time.perf_counter() - started:.1f} s", flush=True)
    store = VectorStore(memory.engine, MiniLM())
    todo = store.pending("recall")
    chunks = [todo[i : i + 512] for i in range(0, len(todo), 512)]
    started, done = time.perf_counter(), 0
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for chunk, blob in zip(chunks, pool.imap(_embed_chunk, [[t for _, t in c] for c in chunks])):
            vectors = np.frombuffer(blob, dtype="<f2").reshape(len(chunk), -1)
            with memory.engine.begin() as conn:
                conn.execute(recall_vectors.insert(), [
                    {"entry_id": i, "model": MiniLM.model, "vector": v.tobytes()} for (i, _), v in zip(chunk, vectors)
                ])
            done += len(chunk)
            print(f"\rembedded {done}/{len(todo)} ({done / (time.perf_counter() - started):.0f}/s)", end="", flush=True)
    print(flush=True)
    with memory.engine.connect() as conn:
        ids = [int(r[0]) for r in conn.exec_driver_sql("SELECT id FROM recall ORDER BY id")]
    memory.engine.dispose()
    return {pair: ids[row] for pair, row in answer_row.items()}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def main(args) -> None:
    pairs = json.loads((Path(__file__).parent / "data" / "recall_queries.json").read_text())["pairs"]
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="deskgate-memsearch-")) / "memory.db"
    answers_file = path.with_suffix(".answers.json")
    if not path.exists():
        answers = build(path, args.entries, pairs, args.workers)
        answers_file.write_text(json.dumps(answers))
    answers = {int(k): v for k, v in json.loads(answers_file.read_text()).items()}
    memory = Memory.open(path, embedder=MiniLM())
    memory.find("warm up the index", limit=1)
    report: dict = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "entries": memory.recall_count(),
        "questions": len(pairs),
    }
    searches = {
        "every word": lambda q: [e.id for e in memory.search(q, order="relevance", limit=10)] if _words(q) else [],
        "text": lambda q: [h.entry.id for h in memory.find(q, mode="text", limit=10)],
        "semantic": lambda q: [h.entry.id for h in memory.find(q, mode="semantic", limit=10)],
        "hybrid": lambda q: [h.entry.id for h in memory.find(q, mode="hybrid", limit=10)],
    }
    for name, search in searches.items():
        rr, found, times = [], 0, []
        for i, p in enumerate(pairs):
            t = time.perf_counter()
            got = search(p["query"])
            times.append((time.perf_counter() - t) * 1000)
            rank = got.index(answers[i]) + 1 if answers[i] in got else None
            rr.append(1 / rank if rank else 0.0)
            found += rank is not None
        report[name] = {"mrr_at_10": round(sum(rr) / len(rr), 3), "recall_at_10": round(found / len(pairs), 3),
                        "p50_ms": round(pct(times, 50), 2), "p95_ms": round(pct(times, 95), 2)}
        print(name, report[name], flush=True)
    # Baselines from the same run: the bare product over every vector, and one query's embedding.
    index = memory.vectors.index("recall")
    q = memory.vectors.embedder.embed(["baseline"])[0]
    product, embed = [], []
    for p in pairs:
        t = time.perf_counter()
        index.matrix[: index.n] @ q
        product.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        memory.vectors.embedder.embed([p["query"]])
        embed.append((time.perf_counter() - t) * 1000)
    report["baseline_matrix_product_ms"] = {"p50": round(pct(product, 50), 2), "p95": round(pct(product, 95), 2)}
    report["baseline_query_embedding_ms"] = {"p50": round(pct(embed, 50), 2), "p95": round(pct(embed, 95), 2)}
    print(json.dumps(report, indent=2))


def _words(q: str) -> bool:
    return bool(q.split())


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    p.add_argument("--db", default=None, help="build the memory here once, reuse it on later runs")
    main(p.parse_args())
