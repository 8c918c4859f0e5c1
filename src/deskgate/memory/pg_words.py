"""Searching the memory by its words on PostgreSQL: postings kept beside recall and
archival, and bm25 computed from them.

On SQLite, FTS5 and the rank index answer (store.py, ranking.py). PostgreSQL's own text
search ranks by another formula, so here the words of each entry are kept as postings
(term, entry, count) with each entry's length, and a search scores with the same bm25
FTS5 uses (k1 1.2, b 0.75, idf log((N - n + 0.5) / (n + 0.5)), at least 1e-6) over every
match. Words are split as FTS5's default tokenizer splits them: letters and digits, lower
case, accents removed. Scores agree with SQLite's within floating point for recall;
archival counts title, text and tags as one column (FTS5 weighs three), so its order can
differ in ties of length.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, Integer, MetaData, PrimaryKeyConstraint, String, Table, func, insert, select, text
from sqlalchemy.engine import Connection

K1, B = 1.2, 0.75
TERM_CHARS = 64
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

words_metadata = MetaData()


def _postings(source: str) -> tuple[Table, Table]:
    words = Table(
        f"{source}_words", words_metadata,
        Column("term", String(TERM_CHARS), nullable=False), Column("id", Integer, nullable=False), Column("tf", Integer, nullable=False),
        PrimaryKeyConstraint("term", "id"),
    )
    sizes = Table(f"{source}_sizes", words_metadata, Column("id", Integer, primary_key=True, autoincrement=False), Column("words", Integer, nullable=False))
    return words, sizes


POSTINGS = {source: _postings(source) for source in ("recall", "archival")}


def tokens(text_: str) -> list[str]:
    """FTS5 unicode61's tokens: runs of letters and digits, folded to lower case without accents."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text_.lower()) if not unicodedata.combining(c))
    return [t[:TERM_CHARS] for t in _TOKEN.findall(folded)]


def query_terms(query: str, limit: int = 32) -> list[str]:
    """The distinct terms of a query, in order (a word of several tokens gives each)."""
    return list(dict.fromkeys(tokens(query)))[: limit * 4]


def index(conn: Connection, source: str, rows: Iterable[tuple[int, str]]) -> None:
    """Postings and lengths for new entries (id, everything searchable as one text)."""
    words, sizes = POSTINGS[source]
    postings, lengths = [], []
    for id_, body in rows:
        counts = Counter(tokens(body))
        postings += [{"term": t, "id": id_, "tf": n} for t, n in counts.items()]
        lengths.append({"id": id_, "words": sum(counts.values())})
    if postings:
        conn.execute(insert(words), postings)
    if lengths:
        conn.execute(insert(sizes), lengths)


def index_missing(conn: Connection, source: str, select_sql: str) -> int:
    """Entries with no postings yet: only those carried in from a file (every write makes its
    postings in its own transaction), so nothing is read unless the counts differ."""
    _, sizes = POSTINGS[source]
    entries = conn.execute(text(f"SELECT count(*) FROM {source}")).scalar()
    if entries == conn.execute(text(f"SELECT count(*) FROM {sizes.name}")).scalar():
        return 0
    rows = conn.execute(text(f"{select_sql} WHERE NOT EXISTS (SELECT 1 FROM {sizes.name} s WHERE s.id = e.id) ORDER BY e.id"))
    n = 0
    while chunk := rows.fetchmany(5_000):
        index(conn, source, [(int(r[0]), r[1]) for r in chunk])
        n += len(chunk)
    return n


def document_frequency(conn: Connection, source: str, terms: list[str]) -> dict[str, int]:
    words, _ = POSTINGS[source]
    if not terms:
        return {}
    q = select(words.c.term, func.count()).where(words.c.term.in_(terms)).group_by(words.c.term)
    found = dict(conn.execute(q).all())
    return {t: int(found.get(t, 0)) for t in terms}


def _idf(n_docs: int, df: int) -> float:
    idf = math.log((n_docs - df + 0.5) / (df + 0.5))
    return idf if idf > 0 else 1e-6


def matches(
    conn: Connection, source: str, terms: list[str], *, every: bool, ranked: bool, where: str = "", params: dict[str, Any] | None = None,
    limit: int = 20,
) -> list[tuple[float, int]]:
    """(score, id) of entries holding every term (`every`) or any, best first by bm25
    (`ranked`; equal scores, newer first) or newest first (score 0). `where` filters the
    source's rows, aliased `e`."""
    if not terms:
        return []
    words, sizes = POSTINGS[source]
    params = dict(params or {})
    having = f"HAVING count(*) = {len(terms)}" if every else ""
    filt = f"AND {where}" if where else ""
    if not ranked:
        sql = (
            f"SELECT 0.0, w.id FROM {words.name} w JOIN {source} e ON e.id = w.id WHERE w.term = ANY(:terms) {filt} "
            f"GROUP BY w.id {having} ORDER BY w.id DESC LIMIT :limit"
        )
        return [(float(s), int(i)) for s, i in conn.execute(text(sql), {**params, "terms": terms, "limit": limit})]
    n_docs, total = conn.execute(select(func.count(), func.coalesce(func.sum(sizes.c.words), 0)).select_from(sizes)).one()
    if not n_docs:
        return []
    avg = float(total) / n_docs or 1.0
    df = document_frequency(conn, source, terms)
    idfs = [_idf(n_docs, df[t]) for t in terms]
    sql = (
        # Summed in the query's order, as FTS5 sums its phrases: two entries equal in bm25 get
        # the same bits, so equal scores go newest first as FTS5's do.
        f"SELECT sum(q.idf * w.tf * {K1 + 1} / (w.tf + {K1} * (1 - {B} + {B} * s.words / CAST(:avg AS float8))) ORDER BY q.n) AS score, w.id "
        f"FROM {words.name} w JOIN unnest(CAST(:terms AS text[]), CAST(:idfs AS float8[])) WITH ORDINALITY AS q(term, idf, n) ON q.term = w.term "
        f"JOIN {sizes.name} s ON s.id = w.id JOIN {source} e ON e.id = w.id WHERE true {filt} "
        f"GROUP BY w.id {having} ORDER BY score DESC, w.id DESC LIMIT :limit"
    )
    rows = conn.execute(text(sql), {**params, "terms": terms, "idfs": idfs, "avg": avg, "limit": limit})
    return [(float(s), int(i)) for s, i in rows]
