"""Fusing ranked lists: reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009).

Each list votes 1 / (k + rank) for each of its entries (rank from 1); an entry's
score is the sum of its votes. Only ranks count, so bm25 scores and cosine
similarities, which live on different scales, need no calibration. k = 60 is the
paper's constant: it keeps one list's first place from outweighing broad agreement.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

RRF_K = 60


def fuse(rankings: Sequence[Sequence[Hashable]], k: int = RRF_K, limit: int | None = None) -> list[tuple[Hashable, float]]:
    """(item, score) best first; ties go to the item ranked best in any list, then to the larger item (newer id)."""
    score: dict[Hashable, float] = {}
    best: dict[Hashable, int] = {}
    for ranking in rankings:
        seen = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue  # a list names an item once
            seen.add(item)
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    ordered = sorted(score, key=lambda i: (-score[i], best[i], _neg(i)))
    if limit is not None:
        ordered = ordered[:limit]
    return [(i, score[i]) for i in ordered]


def _neg(item):
    return -item if isinstance(item, (int, float)) else 0
