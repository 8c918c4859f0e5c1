"""Hybrid search over recall and archival: bm25 on the words, fused with vector similarity.

Two candidate lists, fused by reciprocal rank (hybrid.py):

- **Words.** FTS5's bm25 over entries holding *any* of the query's words, not
  every one: a question in a person's words ("what has the signal model said about
  BTC correlation this week") rarely has all its words in one entry. FTS5 scores
  every entry a word matches, so the words are taken rarest first until about
  `WORD_BUDGET` matches are in play; the commonest words, which bm25 weighs least,
  are left to the vectors. How many entries hold each word comes from the rank
  index's `recall_terms` (ranking.py).
- **Meaning.** The entries whose vectors are nearest the query's (vectors.py).

Both honour the same date and kind filters. Without an embedder, or in `text` mode,
the words alone rank; in `semantic` mode, the vectors alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select, text

from deskgate.memory import ranking
from deskgate.memory.embedding import EmbeddingError
from deskgate.memory.hybrid import fuse

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from deskgate.memory.store import Document, Memory, RecallEntry

Mode = Literal["hybrid", "text", "semantic"]
WORD_BUDGET = 4_000  # matching entries FTS5 may score for one query (about 10 ms)
MAX_WORDS = 32
MIN_SIMILARITY = 0.1  # below this cosine, MiniLM's neighbours are unrelated text: not offered as hits


@dataclass(frozen=True)
class Hit:
    """A found entry and why: its fused score and its place in each list (1 = first), None where absent."""

    entry: RecallEntry | Document
    score: float
    word_rank: int | None
    meaning_rank: int | None
    similarity: float | None


def any_word_query(raw, query: str, *, df_table: bool = True) -> str | None:
    """An FTS5 expression matching entries with any of the query's words, rarest first within the budget;
    None if the query has no word."""
    from deskgate.memory.store import _WORD

    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:MAX_WORDS]
    if not words:
        return None
    tokens = [t for w, ts in zip(words, ranking.terms(raw, words)) for t in ts]
    tokens = list(dict.fromkeys(tokens)) or words
    chosen = rarest_within_budget(tokens, {t: ranking_df(raw, t) for t in tokens}) if df_table else tokens
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in chosen)


def rarest_within_budget(terms: list[str], df: dict[str, int]) -> list[str]:
    """The terms rarest first, as many as keep the matches to score within WORD_BUDGET (at least one)."""
    chosen, spent = [], 0
    for t in sorted(terms, key=lambda t: (df[t], t)):
        if chosen and spent + df[t] > WORD_BUDGET:
            break
        chosen.append(t)
        spent += df[t]
    return chosen


def ranking_df(raw, term: str) -> int:
    row = raw.execute("SELECT entries FROM recall_terms WHERE term = ?", (term,)).fetchone()
    return int(row[0]) if row else 0


def recall_hits(
    memory: Memory, query: str, *, mode: Mode = "hybrid", since: datetime | None = None, until: datetime | None = None,
    kinds: list[str] | None = None, limit: int = 10,
) -> list[Hit]:
    from deskgate.memory.store import MemoryError_, _entry, _matching, _pg_filters, _pg_rows_by_id, _rows_by_id

    if mode not in ("hybrid", "text", "semantic"):
        raise MemoryError_(f"search mode {mode!r}: one of hybrid, text, semantic")
    if not query.strip():
        raise MemoryError_("nothing to search for: give a few words")
    limit = max(1, min(limit, 100))
    depth = max(50, 3 * limit)
    if kinds is not None and not kinds:
        return []
    words: list[int] = []
    meaning = []
    if memory.pg and mode != "semantic":
        words = _pg_words(memory, "recall", query, depth, **_pg_filters(since, until, kinds))
    with memory.engine.connect() as conn:
        raw = None if memory.pg else conn.connection.driver_connection
        if mode != "semantic" and not memory.pg:
            fts = any_word_query(raw, query)
            found = _matching(raw, query, since, until, kinds, fts=fts) if fts else None
            if found is not None:
                where, params = found
                words = [
                    int(i)
                    for (i,) in raw.execute(
                        "SELECT r.id FROM recall_fts JOIN recall r ON r.id = recall_fts.rowid "
                        f"WHERE {where} ORDER BY recall_fts.rank, r.id DESC LIMIT :limit",
                        {**params, "limit": depth},
                    )
                ]
    if mode != "text" and memory.vectors is not None:
        near = _nearest(memory, "recall", query, depth, mode, since=since, until=until, kinds=kinds)
        meaning = [n for n in near if n.similarity >= MIN_SIMILARITY]
    elif mode == "semantic":
        raise MemoryError_("semantic search needs an embedder: set memory.embedder in mission.yaml")
    fused = fuse([words, [n.entry_id for n in meaning]], limit=limit)
    with memory.engine.connect() as conn:
        ids = [i for i, _ in fused]
        found = _pg_rows_by_id(conn, ids) if memory.pg else _rows_by_id(conn.connection.driver_connection, ids)
        rows = {r[0]: r for r in found}
    return _hits(fused, {i: _entry(r) for i, r in rows.items()}, words, meaning)


def archival_hits(memory: Memory, query: str, *, mode: Mode = "hybrid", tags: list[str] | None = None, limit: int = 10) -> list[Hit]:
    from deskgate.memory.store import Document, MemoryError_, _time, archival, tag_filters

    if not query.strip():
        raise MemoryError_("nothing to search for: give a few words")
    limit = max(1, min(limit, 50))
    depth = max(50, 3 * limit)
    tag_where, params = tag_filters(tags, "a")
    words: list[int] = []
    if memory.pg and mode != "semantic":
        words = _pg_words(memory, "archival", query, depth, where=" AND ".join(w.replace("a.", "e.") for w in tag_where), params=params)
    with memory.engine.connect() as conn:
        if memory.pg:
            run = lambda sql, p: conn.execute(text(sql), p)  # noqa: E731
        else:
            raw = conn.connection.driver_connection
            run = raw.execute
            fts = any_word_query(raw, query, df_table=False) if mode != "semantic" else None
            if fts:
                sql = "SELECT a.id FROM archival_fts JOIN archival a ON a.id = archival_fts.rowid WHERE archival_fts MATCH :q"
                sql += "".join(f" AND {w}" for w in tag_where) + " ORDER BY archival_fts.rank, a.id DESC LIMIT :limit"
                words = [int(i) for (i,) in raw.execute(sql, {**params, "q": fts, "limit": depth})]
        tagged = None
        if tag_where:
            tagged = {int(i) for (i,) in run("SELECT a.id FROM archival a WHERE " + " AND ".join(tag_where), params)}
    meaning = []
    if mode != "text" and memory.vectors is not None:
        near = _nearest(memory, "archival", query, depth * 4 if tagged is not None else depth, mode)
        meaning = [n for n in near if (tagged is None or n.entry_id in tagged) and n.similarity >= MIN_SIMILARITY][:depth]
    elif mode == "semantic":
        raise MemoryError_("semantic search needs an embedder: set memory.embedder in mission.yaml")
    fused = fuse([words, [n.entry_id for n in meaning]], limit=limit)
    ids = [i for i, _ in fused]
    docs = {}
    if ids:
        with memory.engine.connect() as conn:
            for r in conn.execute(select(archival.c.id, archival.c.at, archival.c.title, archival.c.text, archival.c.tags).where(archival.c.id.in_(ids))):
                docs[r[0]] = Document(r[0], _time(r[1]), r[2], r[3], tuple(r[4].split()))
    return _hits(fused, docs, words, meaning)


def _pg_words(memory: Memory, source: str, query: str, depth: int, *, where: str, params: dict) -> list[int]:
    """The words' list on PostgreSQL: bm25 over entries with any of the query's words, rarest
    first within the budget (as on SQLite)."""
    from deskgate.memory import pg_words

    with memory.engine.connect() as conn:
        terms = pg_words.query_terms(query, MAX_WORDS)
        chosen = rarest_within_budget(terms, pg_words.document_frequency(conn, source, terms))
        return [i for _, i in pg_words.matches(conn, source, chosen, every=False, ranked=True, where=where, params=params, limit=depth)]


def _hits(fused, entries: dict, words: list[int], meaning: list) -> list[Hit]:
    """The fused ids that still exist, each with its place in both lists."""
    word_rank = {i: r for r, i in enumerate(words, 1)}
    meaning_rank = {n.entry_id: (r, n.similarity) for r, n in enumerate(meaning, 1)}
    return [Hit(entries[i], s, word_rank.get(i), *meaning_rank.get(i, (None, None))) for i, s in fused if i in entries]


def _nearest(memory: Memory, kind: str, query: str, k: int, mode: Mode, **filters):
    """The vector list; in hybrid mode an embedder that fails leaves the words to rank alone."""
    from deskgate.memory.store import MemoryError_

    try:
        return memory.vectors.nearest(kind, query, k, **filters)
    except Exception as exc:  # noqa: BLE001 - the embedder, or reading the vectors: the words still answer
        if mode == "semantic":
            raise MemoryError_(f"semantic search unavailable: {exc}") from exc
        if not isinstance(exc, EmbeddingError):
            log.exception("searching %s by meaning failed; by words only", kind)
        else:
            log.warning("searching %s by words only: %s", kind, exc)
        return []
