"""The prompt-injection screen on the corpus: recall, false-positive rate, latency.

Runs every item of `corpus/injection/` through the whole pipeline
(`sanitize.item.sanitize`: clean, screen, wrap or quarantine), as `deskgate
sanitize` and the news feed do. Reports recall on the injection attempts and the
false-positive rate on the benign headlines, for the dev split (what the rules were
tuned on), the held-out split (never used for tuning) and both, per technique, and
the time per item. `--show` lists what was missed and what was wrongly flagged.

    python benchmarks/screen.py [--show] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from deskgate.sanitize.item import RawItem, sanitize  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "injection"


def load() -> list[dict]:
    items = []
    for name in ("attacks.jsonl", "benign.jsonl"):
        items += [json.loads(line) for line in (CORPUS / name).read_text().splitlines() if line.strip()]
    return items


def rates(items: list[dict], flagged: dict[str, bool]) -> tuple[str, str]:
    attacks = [i for i in items if i["label"] == "injection"]
    benign = [i for i in items if i["label"] == "benign"]
    tp = sum(flagged[i["id"]] for i in attacks)
    fp = sum(flagged[i["id"]] for i in benign)
    recall = f"{tp}/{len(attacks)} = {tp / len(attacks):.1%}" if attacks else "-"
    fpr = f"{fp}/{len(benign)} = {fp / len(benign):.1%}" if benign else "-"
    return recall, fpr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", action="store_true")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    items = load()
    flagged = {i["id"]: sanitize(RawItem(id=i["id"], text=i["text"]), "corpus").flagged for i in items}
    print(f"corpus: {sum(i['label'] == 'injection' for i in items)} injection attempts, {sum(i['label'] == 'benign' for i in items)} benign headlines")
    for split in ("dev", "heldout", "fresh", None):
        part = [i for i in items if split is None or i["split"] == split]
        recall, fpr = rates(part, flagged)
        print(f"{split or 'all':8} recall {recall:18}  false positives {fpr}")
    by_tech: dict[str, list[bool]] = defaultdict(list)
    for i in items:
        if i["label"] == "injection":
            by_tech[i["technique"]].append(flagged[i["id"]])
    print("recall by technique:")
    for tech, hits in sorted(by_tech.items()):
        print(f"  {tech:28} {sum(hits)}/{len(hits)}")
    if args.show:
        for i in items:
            if (i["label"] == "injection") != flagged[i["id"]]:
                what = "MISSED" if i["label"] == "injection" else "FALSE+"
                r = sanitize(RawItem(id=i["id"], text=i["text"]), "corpus")
                print(f"{what} {i['id']} [{i['split']}] {i['text'][:90]!r} {r.score} {r.reasons}")
    times = []
    for _ in range(args.repeat):
        for i in items:
            t0 = time.perf_counter()
            sanitize(RawItem(id=i["id"], text=i["text"]), "corpus")
            times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    print(
        f"latency per item ({len(times):,} runs, {platform.processor() or platform.machine()}, Python {platform.python_version()}): "
        f"p50 {statistics.median(times):.0f} µs, p99 {times[int(len(times) * 0.99)]:.0f} µs, max {times[-1]:.0f} µs"
    )


if __name__ == "__main__":
    main()
