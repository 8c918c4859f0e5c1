"""Train the screen's learned layer: `python -m deskgate.sanitize.train`.

Reads the corpus's train and dev splits (never the fresh one), cleans every item as
the pipeline does, reads its windows through MiniLM's token table, adds their hashed
n-grams (`model.features`), and fits the head (`model.Head`) as a multiple-instance
learner: an item's logit is its highest window's, so an injected sentence in a long
email is what the gradient sees, and a benign item teaches that none of its windows
is an instruction. Adam on batches of items with a decaying learning rate and weight
decay, cross-entropy with a benign item weighing `BENIGN_WEIGHT` injections (the model
is used where false positives must be rare), fixed seed: the same corpus on the same
machine gives the same bytes.

The threshold comes from five-fold cross-validation by group (dev is one of the
folds): every train and dev item is scored by a model that never saw its group, and
the threshold is the lowest at which the rules or the model flag at most `--max-fp`
of the benign items (the rules as they run beside the model, `rules_beside`: hidden
text, or their own verdict where the model's score is at least `item.RULES_AGREE`). The committed head is then fitted on train and dev together;
its threshold and the weights' SHA-256 are written beside it.

Releases a principal made from quarantine are labelled data too: pass their export
with `--extra` (`deskgate screen releases --export FILE`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deskgate.sanitize import model as M
from deskgate.sanitize.corpus import CORPUS_DIR, DEV_SHARE, CorpusItem, fold_of, load
from deskgate.sanitize.item import RULES_AGREE
from deskgate.sanitize.screen import THRESHOLD as RULES_THRESHOLD
from deskgate.sanitize.screen import screen
from deskgate.sanitize.text import clean

SEED = 20261202
HIDDEN = 64  # units of each head
HEADS = 3  # heads fitted from consecutive seeds, their logits averaged (`fit_ensemble`)
EPOCHS = 12
BATCH = 128  # items a step
LEARNING_RATE = 4e-3
WEIGHT_DECAY = 1e-2  # decoupled (AdamW), on the weights
BENIGN_WEIGHT = 6.0  # a benign item's loss against an injection's (the classes otherwise count equally)
MAX_FP = 0.018  # of the benign items, flagged by the rules or the model, cross-validated
FOLDS = 5
ABOVE_EVERY_SCORE = 1.0001  # a threshold no score (at most 1.0) reaches


@dataclass(frozen=True)
class RulesVerdicts:
    """What the rules said of each item the model reads, for `rules_beside`."""

    own: np.ndarray  # their own verdict (`Screening.flagged`)
    hiding: np.ndarray  # hidden text (`Screening.hiding`)
    unread: np.ndarray  # the model could not read every window: their own verdict stands


def prepare(items: list[CorpusItem]) -> tuple[list[CorpusItem], list[list[str]], RulesVerdicts]:
    """The items the model can read, each one's readable windows (as the pipeline scores
    them), and what the rules said of each (`rules_beside` says what the pipeline makes of it)."""
    kept, wins, own, hiding, unread = [], [], [], [], []
    for it in items:
        c = clean(it.text)
        read = list(map(M.readable, M.item_windows(c.text, M.concealed(c))))
        ws = [shown for shown, ok in read if ok]
        if not ws:
            continue
        kept.append(it)
        wins.append(ws)
        verdict = screen(c.text, markup=c.visible, hidden=c.removed)
        own.append(verdict.flagged)
        hiding.append(verdict.hiding)
        unread.append(len(ws) < len(read))
    return kept, wins, RulesVerdicts(*(np.array(a, dtype=bool) for a in (own, hiding, unread)))


def rules_beside(rules: RulesVerdicts, scores: np.ndarray) -> np.ndarray:
    """Where the rules hold an item beside the model (`sanitize.item`): hidden text, or
    their own verdict where the model leans the same way or could not read all of it."""
    return rules.hiding | (rules.own & ((np.round(scores, 4) >= RULES_AGREE) | rules.unread))


@dataclass(frozen=True)
class Windows:
    """The windows of a list of items, in item order (`rows` into the distinct windows read,
    so a window repeated across items is read once), with each item's span (`offsets`)."""

    vectors: np.ndarray  # distinct window -> its vector
    ngrams: tuple[np.ndarray, np.ndarray, np.ndarray]  # distinct window -> its hashed n-grams (sparse)
    rows: np.ndarray
    offsets: np.ndarray
    dim: int

    def features(self, at: np.ndarray) -> np.ndarray:
        """The features (`model.features`) of the windows at positions `at`, dense."""
        r = self.rows[at]
        return np.hstack([self.vectors[r], M.dense_rows(self.ngrams, self.dim, r)])

    def hidden(self, at: np.ndarray, w1: np.ndarray, b1: np.ndarray) -> np.ndarray:
        """relu(features W1 + b1) of the windows at positions `at`, the n-grams kept sparse:
        what `features(at) @ w1` gives, without a dense row of tens of thousands of zeros per
        window (training's time is this product), a few windows at a time so what they
        gather stays in the CPU's cache (`model.LOGIT_CHUNK`)."""
        r = self.rows[at]
        width = self.vectors.shape[1]
        pre = self.vectors[r] @ w1[:width] + b1
        grams = w1[width:]
        indptr, indices, values = self.ngrams
        for start in range(0, len(r), M.LOGIT_CHUNK):
            part = r[start : start + M.LOGIT_CHUNK]
            lengths = indptr[part + 1] - indptr[part]
            starts = np.cumsum(lengths) - lengths
            flat = np.repeat(indptr[part], lengths) + (np.arange(int(lengths.sum())) - np.repeat(starts, lengths))
            filled = np.flatnonzero(lengths)
            if len(filled):
                pre[start + filled] += np.add.reduceat(values[flat, None] * grams[indices[flat]], starts[filled], axis=0)
        return np.maximum(pre, 0.0)

    def items(self, keep: np.ndarray) -> Windows:
        """The windows of the items where `keep` is true."""
        idx = np.flatnonzero(keep)
        sizes = np.diff(self.offsets)[idx]
        at = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx])
        return Windows(self.vectors, self.ngrams, self.rows[at], np.concatenate([[0], np.cumsum(sizes)]), self.dim)


def window_features(per_item: list[list[str]], learned: M.LearnedScreen, progress=None, dim: int = M.NGRAM_DIM) -> Windows:
    """Every item's windows, each distinct window read once, as `LearnedScreen.judge` reads it."""
    distinct = sorted({w for ws in per_item for w in ws})
    index = {w: i for i, w in enumerate(distinct)}
    vectors, indptr, indices, values, step = [], [np.zeros(1, dtype=np.int64)], [], [], 2048
    for start in range(0, len(distinct), step):
        chunk = distinct[start : start + step]
        vectors.append(learned.vectors(chunk))
        p, i, v = M.ngram_rows(chunk, dim)
        indptr.append(p[1:] + sum(len(x) for x in indices))
        indices.append(i)
        values.append(v)
        if progress:
            progress(min(start + step, len(distinct)), len(distinct))
    ngrams = (np.concatenate(indptr), np.concatenate(indices or [np.zeros(0, dtype=np.int64)]),
              np.concatenate(values or [np.zeros(0, dtype=np.float32)]))
    return Windows(np.vstack(vectors) if vectors else np.zeros((0, 384), dtype=np.float32), ngrams,
                   np.array([index[w] for ws in per_item for w in ws], dtype=np.int64),
                   np.cumsum([0] + [len(ws) for ws in per_item]), dim)


def _item_max(logits: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the highest window logit and that window's row (the first, on a tie).
    Every item has at least one window."""
    sizes = np.diff(offsets)
    highest = np.maximum.reduceat(logits, offsets[:-1])
    item_of = np.repeat(np.arange(len(sizes)), sizes)
    at_max = np.flatnonzero(logits == highest[item_of])
    _, first = np.unique(item_of[at_max], return_index=True)
    return highest, at_max[first]


def fit(x: Windows, y: np.ndarray, *, seed: int = SEED, hidden: int = HIDDEN, epochs: int = EPOCHS,
        lr: float = LEARNING_RATE, weight_decay: float = WEIGHT_DECAY, batch: int = BATCH, benign_weight: float = BENIGN_WEIGHT) -> M.Head:
    """Adam on batches of `batch` items (the learning rate decaying linearly): every window
    through the first layer sparse (`Windows.hidden`), and only each item's highest window,
    the one its gradient flows through, made dense."""
    rng = np.random.default_rng(seed)
    d = x.vectors.shape[1] + x.dim
    # A window's features are two unit vectors (its mean token vector, its n-grams), most
    # of them zeros: scale for an input of norm sqrt(2), not for d dense inputs, or every
    # unit starts near zero and Adam can push a unit's bias below any reachable input.
    w1 = rng.normal(0, 1.0 / np.sqrt(2.0), (d, hidden)).astype(np.float32)
    b1 = np.zeros(hidden, dtype=np.float32)
    w2 = rng.normal(0, np.sqrt(1.0 / hidden), hidden).astype(np.float32)
    params = [w1, b1, w2, np.zeros(1, dtype=np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    pos = y.mean()
    if not 0 < pos < 1:
        raise ValueError(f"training needs both injections and benign items; {int(y.sum())} of {len(y)} are injections")
    weight = np.where(y == 1, 0.5 / pos, benign_weight * 0.5 / (1 - pos)).astype(np.float32)
    t, steps = 0, epochs * -(-len(y) // batch)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order), batch):
            items = np.sort(order[start : start + batch])
            sizes = x.offsets[items + 1] - x.offsets[items]
            at = np.repeat(x.offsets[items], sizes) + (np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes))
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            w1, b1, w2, b2a = params
            h = x.hidden(at, w1, b1)
            item_logit, rows = _item_max(h @ w2 + b2a[0], offsets)
            p = 1.0 / (1.0 + np.exp(-np.clip(item_logit, -40, 40)))
            g = (weight[items] * (p - y[items]) / len(items)).astype(np.float32)  # d loss / d item logit
            hs = h[rows]
            dh = np.outer(g, w2) * (hs > 0)
            grads = (x.features(at[rows]).T @ dh, dh.sum(axis=0), hs.T @ g, np.array([g.sum()], dtype=np.float32))
            t += 1
            step_lr = lr * (1.0 - 0.95 * t / steps)  # decays to a twentieth: the last steps settle, not jitter
            for i, grad in enumerate(grads):
                m[i] = 0.9 * m[i] + 0.1 * grad
                v[i] = 0.999 * v[i] + 0.001 * grad * grad
                decay = weight_decay * params[i] if i in (0, 2) else 0.0  # decoupled weight decay (AdamW), on the weights only
                params[i] = (params[i] - step_lr * ((m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8) + decay)).astype(np.float32)
    w1, b1, w2, b2a = params
    return M.Head(w1=w1, b1=b1, w2=w2, b2=float(b2a[0]), threshold=0.5, meta={})


def fit_ensemble(x: Windows, y: np.ndarray, *, heads: int = HEADS, seed: int = SEED, **kw) -> M.Head:
    """`heads` perceptrons fitted from seeds `seed`, `seed + 1`, ..., joined into one head
    whose logit is their mean (their hidden units side by side, each output weight divided
    by `heads`). One fit's recall at a low false-positive rate swings by several points with
    its seed on writers it never saw; the mean of three swings far less (docs/SECURITY.md)."""
    fitted = [fit(x, y, seed=seed + k, **kw) for k in range(heads)]
    return M.Head(w1=np.hstack([h.w1 for h in fitted]), b1=np.concatenate([h.b1 for h in fitted]),
                  w2=np.concatenate([h.w2 for h in fitted]) / heads, b2=float(np.mean([h.b2 for h in fitted])), threshold=0.5, meta={})


_FOLDS: list = []  # what `fit_folds` hands its forked workers: the windows are shared, not pickled


def _fit_fold(k: int | None) -> tuple[int | None, M.Head]:
    x, y, folds, kw = _FOLDS[0]
    if k is None:
        return None, fit_ensemble(x, y, **kw)
    keep = folds != k
    return k, fit_ensemble(x.items(keep), y[keep], **kw)


def fit_folds(x: Windows, y: np.ndarray, folds: np.ndarray, *, workers: int = 1, **kw) -> dict[int | None, M.Head]:
    """The head of each cross-validation fold (fitted without it) and, under `None`, the
    head fitted on everything; `workers` processes at once (forked, sharing the windows).
    Each fit is fixed by its seed, so the heads are the same whatever `workers` is."""
    jobs = [None, *range(DEV_SHARE)]
    _FOLDS[:] = [(x, y, folds, kw)]
    try:
        if workers <= 1:
            return dict(map(_fit_fold, jobs))
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return dict(pool.map(_fit_fold, jobs))
    finally:
        _FOLDS.clear()


def item_scores(head: M.Head, x: Windows) -> np.ndarray:
    logits = np.concatenate([x.hidden(np.arange(s, min(s + 4096, len(x.rows))), head.w1, head.b1) @ head.w2 + head.b2
                             for s in range(0, len(x.rows), 4096)] or [np.zeros(0, dtype=np.float32)])
    best, _ = _item_max(logits, x.offsets)
    return 1.0 / (1.0 + np.exp(-np.clip(best, -40, 40)))


def choose_threshold(scores: np.ndarray, rules: np.ndarray, y: np.ndarray, max_fp: float) -> float:
    """The lowest threshold (to 1e-4) at which the rules or the model flag at most `max_fp`
    of the benign items (on cross-validated scores); above every score (the model never
    flags) if the rules alone flag more than that."""
    benign = y == 0
    left = int(np.floor(max_fp * benign.sum())) - int((rules & benign).sum())  # false positives the model may add
    if left < 0:
        return ABOVE_EVERY_SCORE
    above = np.sort(scores[benign & ~rules])[::-1]  # the benign items only the model could flag, most suspicious first
    if left >= len(above):
        return 0.0
    # One step above the first benign score that would be one too many, as the pipeline
    # rounds a score (to 4 places) before comparing it.
    return float(round(round(float(above[left]), 4) + 1e-4, 4))


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
    ap.add_argument("--max-fp", type=float, default=MAX_FP, help="false positives allowed (rules or model), cross-validated")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--hidden", type=int, default=HIDDEN, help="units of each head")
    ap.add_argument("--heads", type=int, default=HEADS, help="heads averaged")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="heads fitted at once, in processes (the weights are the same)")
    ap.add_argument("--dry-run", action="store_true", help="report, but do not write the weights")
    args = ap.parse_args(argv)

    from rich.progress import Progress

    items = [i for i in load(args.corpus, fresh=False, extra=args.extra) if i.split != "fresh"]
    train = [i for i in items if i.split == "train"]
    dev = [i for i in items if i.split == "dev"]
    print(f"corpus: {len(train)} train ({sum(i.label == 'injection' for i in train)} injection), "
          f"{len(dev)} dev ({sum(i.label == 'injection' for i in dev)} injection)")
    started = time.perf_counter()
    learned = M.LearnedScreen()  # its reader only: the head it would load is the one being trained
    with Progress() as progress:
        kept, wins, said = prepare(train + dev)
        task = progress.add_task("reading the windows", total=None)
        x = window_features(wins, learned, lambda done, total: progress.update(task, completed=done, total=total))
        y = np.array([1.0 if i.label == "injection" else 0.0 for i in kept])
    print(f"read {len(x.rows):,} windows of {len(kept):,} items in {time.perf_counter() - started:.0f} s")
    folds = np.array([fold_of(i.group) for i in kept])
    oof = np.zeros(len(kept))
    fitted = fit_folds(x, y, folds, workers=args.workers, heads=args.heads, epochs=args.epochs, hidden=args.hidden)
    head = fitted.pop(None)
    for k, head_k in sorted(fitted.items()):
        oof[folds == k] = item_scores(head_k, x.items(folds == k))
        print(f"fold {k} ({'dev' if k == 0 else 'train'}): scored {int((folds == k).sum())} items by a model that never saw their groups")
    rules = rules_beside(said, oof)  # out-of-fold, as the threshold is
    threshold = choose_threshold(oof, rules, y, args.max_fp)
    for budget in sorted({0.005, 0.01, 0.0125, 0.015, 0.02, 0.025, args.max_fp}):  # what other budgets would give, out-of-fold
        t = choose_threshold(oof, rules, y, budget)
        rec, fp = rates(rules | (oof >= t), y)
        print(f"budget {budget:6.2%}: threshold {t:.4f}, recall {rec:6.1%}, false positives {fp:6.2%} (cross-validated)")
    final = item_scores(head, x)
    report = {}
    for name, sel, scores in (("train", folds != 0, final), ("dev", folds == 0, oof), ("cross-validated", folds >= 0, oof)):
        py, prules, s = y[sel], rules_beside(said, scores)[sel], scores[sel] >= threshold
        report[name] = {"rules": rates(prules, py), "model": rates(s, py), "rules_or_model": rates(prules | s, py)}
        for layer, (rec, fp) in report[name].items():
            print(f"{name:15} {layer:15} recall {rec:6.1%}  false positives {fp:6.2%}")
    print(f"threshold {threshold:.3f} (the rules or the model flag at most {args.max_fp:.1%} of the benign items, cross-validated)")
    print("train: the committed model on the items it was fitted on; dev and cross-validated: out-of-fold")
    head = M.Head(head.w1, head.b1, head.w2, head.b2, threshold, meta={
        "seed": SEED, "hidden": args.hidden * args.heads, "heads": args.heads, "epochs": args.epochs, "learning_rate": LEARNING_RATE, "weight_decay": WEIGHT_DECAY,
        "batch": BATCH, "benign_weight": BENIGN_WEIGHT, "rules_threshold": RULES_THRESHOLD, "rules_agree": RULES_AGREE, "tokens": "words and punctuation",
        "max_fp": args.max_fp, "embedder": f"all-MiniLM-L6-v2-onnx-int8 token table {M.TABLE_RECIPE}", "window_units": M.WINDOW_UNITS, "ngram_dim": M.NGRAM_DIM,
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
