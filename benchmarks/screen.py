"""The prompt-injection screen on the project's corpus: recall, false positives, latency, throughput.

Runs every item of `corpus/injection/` through the whole pipeline
(`sanitize.item.sanitize_many`: clean, the rules, the learned model, wrap or
quarantine), as `deskgate sanitize` and the news feed do, pinned to one core.
Reports, for the train, dev and fresh splits: recall on the injection attempts and
the false-positive rate on the benign items, for the rules' own verdict (what decides
where no model reads an item), for each layer as the pipeline runs it (beside the
model the rules hold only hidden text) and for the screen (rules or model); then per technique and per language on dev and fresh;
then the time per item one at a time (p50/p99) and the items per second in batches
of 64, beside two baselines measured in the same run: the rules alone, and the raw
embedder (MiniLM's own time for the same windows, which bounds the model layer).

    python benchmarks/screen.py [--show fresh] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from deskgate.sanitize.corpus import CorpusItem, load  # noqa: E402
from deskgate.sanitize.item import RawItem, sanitize_many  # noqa: E402
from deskgate.sanitize.model import concealed, item_windows, shared_screen  # noqa: E402
from deskgate.sanitize.text import clean  # noqa: E402

BATCH = 64


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} vCPU (pinned to one), Python {platform.python_version()}"


def rate(hits: list[bool]) -> str:
    return f"{sum(hits)}/{len(hits)} = {sum(hits) / len(hits):.1%}" if hits else "-"


def table(rows: list[CorpusItem], flags: dict[str, dict[str, bool]], key) -> list[str]:
    groups: dict[str, list[CorpusItem]] = defaultdict(list)
    for it in rows:
        groups[key(it)].append(it)
    out = []
    for name, items in sorted(groups.items()):
        attacks = [flags[i.id]["screen"] for i in items if i.label == "injection"]
        benign = [flags[i.id]["screen"] for i in items if i.label == "benign"]
        out.append(f"  {name:34} recall {rate(attacks):20} false positives {rate(benign)}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", choices=["train", "dev", "fresh"], help="list what this split's screen missed and wrongly flagged")
    ap.add_argument("--repeat", type=int, default=1, help="timing passes over the corpus")
    ap.add_argument("--timing-items", type=int, default=2000, help="items timed one at a time (a sample of every split)")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    items = load()
    learned = shared_screen()
    flags: dict[str, dict[str, bool]] = {}
    results = {}
    for start in range(0, len(items), BATCH):
        part = items[start : start + BATCH]
        for it, (r, _) in zip(part, sanitize_many([RawItem(id=i.id, text=i.text) for i in part], "corpus", model=learned), strict=True):
            results[it.id] = r
            rules = r.layers[0]
            flags[it.id] = {"rules": "rules" in r.flagged_by, "model": "model" in r.flagged_by, "screen": r.flagged,
                            "rules_alone": rules.score >= rules.threshold}  # their own verdict: what decides where no model reads
    print(f"machine: {machine()}")
    print(f"weights: threshold {learned.head.threshold:.4g}, trained on {learned.head.meta.get('train_items')} items")
    figures: dict = {"machine": machine(), "threshold": learned.head.threshold, "splits": {}}
    for split in ("train", "dev", "fresh"):
        part = [i for i in items if i.split == split]
        if not part:
            continue
        attacks = [i for i in part if i.label == "injection"]
        benign = [i for i in part if i.label == "benign"]
        print(f"\n{split}: {len(attacks)} injection attempts, {len(benign)} benign")
        figures["splits"][split] = {}
        for layer in ("rules_alone", "rules", "model", "screen"):
            rec = [flags[i.id][layer] for i in attacks]
            fp = [flags[i.id][layer] for i in benign]
            name = {"screen": "rules or model", "rules": "rules (beside)", "rules_alone": "rules alone"}.get(layer, layer)
            print(f"  {name:15} recall {rate(rec):22} false positives {rate(fp)}")
            figures["splits"][split][layer] = {"recall": sum(rec) / max(len(rec), 1), "fp": sum(fp) / max(len(fp), 1),
                                               "attacks": len(rec), "benign": len(fp)}
        if split != "train":
            print(f" {split}, by technique:")
            print("\n".join(table(part, flags, lambda i: i.technique)))
            print(f" {split}, by language:")
            print("\n".join(table(part, flags, lambda i: i.language)))
            print(f" {split}, by carrier:")
            print("\n".join(table(part, flags, lambda i: i.carrier)))
    if args.show:
        print(f"\n{args.show}: misses and false positives")
        for i in items:
            if i.split == args.show and (i.label == "injection") != flags[i.id]["screen"]:
                what = "MISSED" if i.label == "injection" else "FALSE+"
                r = results[i.id]
                print(f"{what} {i.id} [{i.technique}/{i.language}] {i.text[:110]!r} score {r.score} {r.reasons[:2]}")

    # Timing: one item at a time (what the feed does), then batches; beside the rules alone and the raw embedder.
    sample = items[:: max(1, len(items) // args.timing_items)][: args.timing_items]
    raws = [RawItem(id=i.id, text=i.text) for i in sample]
    sanitize_many(raws[:8], "corpus", model=learned)  # warm
    single, rules_only = [], []
    for _ in range(args.repeat):
        for r in raws:
            t0 = time.perf_counter()
            sanitize_many([r], "corpus", model=learned)
            single.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            sanitize_many([r], "corpus", model=None)
            rules_only.append((time.perf_counter() - t0) * 1e3)
    single.sort()
    rules_only.sort()
    t0 = time.perf_counter()
    for start in range(0, len(raws), BATCH):
        sanitize_many(raws[start : start + BATCH], "corpus", model=learned)
    batched = len(raws) / (time.perf_counter() - t0)
    windows = [w for r in raws for c in [clean(r.text)] for w in item_windows(c.text, concealed(c))]
    embedder = learned._embedder
    t0 = time.perf_counter()
    for start in range(0, len(windows), BATCH):
        embedder.embed(windows[start : start + BATCH])
    raw_embed = len(raws) / (time.perf_counter() - t0)
    tokens = sum(len(ids) for ids in embedder.token_ids(windows))  # without [CLS], [SEP] and the padding a batch adds
    p = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))]  # noqa: E731
    print(f"\ntiming on one core, {len(raws)} items sampled from every split ({len(windows)} windows, {tokens / len(raws):.0f} tokens an item):")
    print(f"  one at a time, whole pipeline: p50 {p(single, 0.5):.1f} ms, p99 {p(single, 0.99):.1f} ms, max {single[-1]:.1f} ms")
    print(f"  baseline, the rules alone:     p50 {p(rules_only, 0.5):.2f} ms, p99 {p(rules_only, 0.99):.2f} ms")
    print(f"  batched ({BATCH}), whole pipeline: {batched:,.0f} items/s")
    print(f"  baseline, the embedder alone on the same windows: {raw_embed:,.0f} items/s "
          f"({tokens / (len(raws) / raw_embed) / 1e3:.1f}k tokens/s); the pipeline runs at {batched / raw_embed:.0%} of it")
    figures["timing"] = {"items": len(raws), "tokens_per_item": tokens / len(raws), "p50_ms": p(single, 0.5), "p99_ms": p(single, 0.99),
                         "rules_p99_ms": p(rules_only, 0.99), "batched_items_per_s": batched, "embedder_items_per_s": raw_embed}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
