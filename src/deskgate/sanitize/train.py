"""Train the screen's learned layer: `python -m deskgate.sanitize.train`.

Reads the corpus's train and dev splits (never the fresh one), cleans every item as
the pipeline does, embeds its windows with the shared MiniLM, adds their hashed
n-grams (`model.features`), and fits the head (`model.Head`) as a multiple-instance
learner: an item's logit is its highest window's, so an injected sentence in a long
email is what the gradient sees, and a benign item teaches that none of its windows
is an instruction. Adam, weighted cross-entropy (the classes count equally), L2,
fixed seed: the same corpus on the same machine gives the same bytes.

The threshold comes from five-fold cross-validation by group (dev is one of the
folds): every train and dev item is scored by a model that never saw its group, and
the threshold is the lowest at which the model adds at most `--dev-fp` of the benign
items to what the rules already flag. The committed head is then fitted on train and
dev together; its threshold and the weights' SHA-256 are written beside it.

Releases a principal made from quarantine are labelled data too: pass their export
with `--extra` (`deskgate screen releases --export FILE`).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from pathlib import Path

import numpy as np

from deskgate.sanitize import model as M
from deskgate.sanitize.corpus import CORPUS_DIR, DEV_SHARE, CorpusItem, fold_of, load
from deskgate.sanitize.screen import screen
from deskgate.sanitize.text import clean

SEED = 20261202
HIDDEN = 32
EPOCHS = 400
LEARNING_RATE = 3e-3
L2 = 1e-3
DEV_FP = 0.01
FOLDS = 5


def prepare(items: list[CorpusItem], embedder) -> tuple[list[CorpusItem], list[list[str]], np.ndarray]:
    """The items the model can read, each one's readable windows (as the pipeline scores
    them), and whether the rules flag it (as the pipeline runs them)."""
    kept, wins, rules = [], [], []
    for it in items:
        c = clean(it.text)
        ws = [shown for shown, ok in map(M.readable, M.item_windows(c.text)) if ok]
        if not ws:
            continue
        kept.append(it)
        wins.append(ws)
        rules.append(screen(c.text, markup=c.visible, hidden=c.removed).flagged)
    return kept, wins, np.array(rules)


def embed_windows(per_item: list[list[str]], embedder, progress=None, cache: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All windows' features (each distinct window embedded once; `cache` keeps the
    embeddings between runs) and each item's window offsets."""
    distinct = sorted({w for ws in per_item for w in ws})
    index = {w: i for i, w in enumerate(distinct)}
    vectors = np.zeros((len(distinct), 384), dtype=np.float32)
    cache = cache if cache is not None else {}
    todo = [w for w in distinct if w not in cache]
    step = 512
    for start in range(0, len(todo), step):
        for w, v in zip(todo[start : start + step], embedder.embed(todo[start : start + step]), strict=True):
            cache[w] = v
        if progress:
            progress(min(start + step, len(todo)), len(todo))
    for w, i in index.items():
        vectors[i] = cache[w]
    rows = np.array([index[w] for ws in per_item for w in ws])
    offsets = np.cumsum([0] + [len(ws) for ws in per_item])
    return M.features(vectors, distinct)[rows], offsets


def subset(x: np.ndarray, offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The windows and offsets of the items where `keep` is true."""
    rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in np.flatnonzero(keep)])
    sizes = np.diff(offsets)[keep]
    return x[rows], np.concatenate([[0], np.cumsum(sizes)])


def _item_max(logits: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the highest window logit and that window's row (the first, on a tie).
    Every item has at least one window."""
    sizes = np.diff(offsets)
    highest = np.maximum.reduceat(logits, offsets[:-1])
    item_of = np.repeat(np.arange(len(sizes)), sizes)
    at_max = np.flatnonzero(logits == highest[item_of])
    _, first = np.unique(item_of[at_max], return_index=True)
    return highest, at_max[first]


def fit(x: np.ndarray, offsets: np.ndarray, y: np.ndarray, *, seed: int = SEED, hidden: int = HIDDEN,
        epochs: int = EPOCHS, lr: float = LEARNING_RATE, l2: float = L2) -> M.Head:
    rng = np.random.default_rng(seed)
    x = x.astype(np.float32, copy=False)  # float32 throughout: the features of a large corpus are big
    d = x.shape[1]
    w1 = rng.normal(0, np.sqrt(2.0 / d), (d, hidden)).astype(np.float32)
    b1 = np.zeros(hidden, dtype=np.float32)
    w2 = rng.normal(0, np.sqrt(1.0 / hidden), hidden).astype(np.float32)
    params = [w1, b1, w2, np.zeros(1, dtype=np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    pos = y.mean()
    weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos)).astype(np.float32)
    for t in range(1, epochs + 1):
        w1, b1, w2, b2a = params
        h = np.maximum(x @ w1 + b1, 0.0)
        logits = h @ w2 + b2a[0]
        item_logit, rows = _item_max(logits, offsets)
        p = 1.0 / (1.0 + np.exp(-np.clip(item_logit, -40, 40)))
        g = (weight * (p - y) / len(y)).astype(np.float32)  # d loss / d item logit
        hs = h[rows]
        grads_w2 = hs.T @ g + l2 * w2
        grads_b2 = np.array([g.sum()])
        dh = np.outer(g, w2) * (hs > 0)
        grads_w1 = x[rows].T @ dh + l2 * w1
        grads_b1 = dh.sum(axis=0)
        for i, grad in enumerate((grads_w1, grads_b1, grads_w2, grads_b2)):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad * grad
            params[i] = (params[i] - lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)).astype(np.float32)
    w1, b1, w2, b2a = params
    return M.Head(w1=w1.astype(np.float32), b1=b1.astype(np.float32), w2=w2.astype(np.float32), b2=float(b2a[0]),
                  threshold=0.5, meta={})


def item_scores(head: M.Head, x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    logits = head.logits(x.astype(np.float32))
    best, _ = _item_max(logits, offsets)
    return 1.0 / (1.0 + np.exp(-np.clip(best, -40, 40)))


def choose_threshold(scores: np.ndarray, rules: np.ndarray, y: np.ndarray, dev_fp: float) -> float:
    """The lowest threshold at which the model adds at most `dev_fp` of the benign items
    to those the rules already flag."""
    benign = y == 0
    allowed = int(np.floor(dev_fp * benign.sum())) + int((rules & benign).sum())
    for t in np.round(np.arange(0.30, 0.991, 0.01), 2):
        flagged = rules | (scores >= t)
        if (flagged & benign).sum() <= allowed:
            return float(t)
    return 0.99


def rates(flagged: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(flagged[y == 1].mean()), float(flagged[y == 0].mean())


def corpus_digest(items: list[CorpusItem]) -> str:
    h = hashlib.sha256()
    for it in sorted(items, key=lambda i: i.id):
        h.update(f"{it.id}\t{it.label}\t{it.split}\t{it.text}\n".encode())
    return h.hexdigest()


def write_head(head: M.Head, path: Path = M.HEAD_FILE) -> str:
    data = head.to_bytes()
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    source = Path(M.__file__)
    text = re.sub(r'^HEAD_SHA256 = "[^"]*"', f'HEAD_SHA256 = "{digest}"', source.read_text(), count=1, flags=re.M)
    source.write_text(text)
    return digest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    ap.add_argument("--extra", type=Path, action="append", default=[], help="more labelled JSON lines (e.g. released items)")
    ap.add_argument("--dev-fp", type=float, default=DEV_FP)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--hidden", type=int, default=HIDDEN)
    ap.add_argument("--dry-run", action="store_true", help="report, but do not write the weights")
    ap.add_argument("--cache", type=Path, help="keep the windows' embeddings in this .npz between runs (the same vectors: faster)")
    args = ap.parse_args(argv)

    from rich.progress import Progress

    from deskgate.memory.embedding import shared_minilm

    items = [i for i in load(args.corpus, fresh=False, extra=args.extra) if i.split != "fresh"]
    train = [i for i in items if i.split == "train"]
    dev = [i for i in items if i.split == "dev"]
    print(f"corpus: {len(train)} train ({sum(i.label == 'injection' for i in train)} injection), "
          f"{len(dev)} dev ({sum(i.label == 'injection' for i in dev)} injection)")
    started = time.perf_counter()
    embedder = shared_minilm()
    cache: dict[str, np.ndarray] = {}
    if args.cache and args.cache.is_file():
        with np.load(args.cache, allow_pickle=False) as z:
            cache = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))
    with Progress() as progress:
        kept, wins, rules = prepare(train + dev, embedder)
        task = progress.add_task("embedding the windows", total=None)
        x, offsets = embed_windows(wins, embedder, lambda done, total: progress.update(task, completed=done, total=total), cache)
        y = np.array([1.0 if i.label == "injection" else 0.0 for i in kept])
    print(f"embedded in {time.perf_counter() - started:.0f} s")
    if args.cache:
        np.savez(args.cache, texts=np.array(list(cache)), vectors=np.array(list(cache.values()), dtype=np.float32))
    folds = np.array([fold_of(i.group) for i in kept])
    oof = np.zeros(len(kept))
    for k in range(DEV_SHARE):
        tx, toff = subset(x, offsets, folds != k)
        head_k = fit(tx, toff, y[folds != k], epochs=args.epochs, hidden=args.hidden)
        vx, voff = subset(x, offsets, folds == k)
        oof[folds == k] = item_scores(head_k, vx, voff)
        print(f"fold {k} ({'dev' if k == 0 else 'train'}): scored {int((folds == k).sum())} items by a model that never saw their groups")
    threshold = choose_threshold(oof, rules, y, args.dev_fp)
    head = fit(x, offsets, y, epochs=args.epochs, hidden=args.hidden)
    final = item_scores(head, x, offsets)
    report = {}
    for name, sel, scores in (("train", folds != 0, final), ("dev", folds == 0, oof), ("cross-validated", folds >= 0, oof)):
        py, prules, s = y[sel], rules[sel], scores[sel] >= threshold
        report[name] = {"rules": rates(prules, py), "model": rates(s, py), "rules_or_model": rates(prules | s, py)}
        for layer, (rec, fp) in report[name].items():
            print(f"{name:15} {layer:15} recall {rec:6.1%}  false positives {fp:6.2%}")
    print(f"threshold {threshold:.2f} (the model adds at most {args.dev_fp:.1%} false positives to the rules', cross-validated)")
    print("train: the committed model on the items it was fitted on; dev and cross-validated: out-of-fold")
    head = M.Head(head.w1, head.b1, head.w2, head.b2, threshold, meta={
        "seed": SEED, "hidden": args.hidden, "epochs": args.epochs, "learning_rate": LEARNING_RATE, "l2": L2,
        "dev_fp": args.dev_fp, "embedder": "all-MiniLM-L6-v2-onnx-int8", "window_units": M.WINDOW_UNITS, "ngram_dim": M.NGRAM_DIM,
        "train_items": int((folds != 0).sum()), "dev_items": int((folds == 0).sum()), "corpus_sha256": corpus_digest(items),
        "dev": {k: [round(a, 4), round(b, 4)] for k, (a, b) in report["dev"].items()},
    })
    if args.dry_run:
        return 0
    digest = write_head(head)
    print(f"wrote {M.HEAD_FILE} ({M.HEAD_FILE.stat().st_size:,} bytes, sha256 {digest}) and set HEAD_SHA256 in {M.__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
