"""Best first: FTS5's exact bm25 top-k over recall, without scoring every match.

FTS5 ranks by scoring every entry that matches, so a word found in one entry of
six costs about 170,000 scores at a million entries (0.4 s). This module returns
the same ranking while reading about `limit` entries:

- **The ranking** is FTS5's `bm25()` over the entry text (k1 = 1.2, b = 0.75; idf
  from the number of entries holding each word; length in tokens against the
  average), as `ORDER BY rank` gave before, over *every* matching entry, with ties
  broken newest recorded first (the higher id). Scores are positive: higher is better.
- **Why it can be exact.** Among the entries that match a query, an entry's score
  depends only on how often each query word occurs in it (its *counts*) and on its
  length. Entries with the same counts form a class, and within a class a shorter
  entry always scores higher. The rank index (`recall_rank`) keeps every entry
  under a key that sorts by length, then newest first (`rank_key`), and tags it
  with the words it repeats (and how often). A query finds which classes occur with
  a few existence probes, reads each class shortest first (already in score order)
  and merges the classes until `limit` entries are out. A word repeated `MANY`
  times or more is tagged as such, and that (rare) class is scored entry by entry
  from the text.
- **The numbers are FTS5's own**: row count and total length from the main index's
  averages record, each entry's length from its size record. How many entries hold
  each word (for idf) is kept in `recall_terms`, written with the entry, so no
  search counts matches. Terms come from the same tokenizer: ASCII text is split
  exactly as unicode61 splits it (runs of letters and digits, lower-cased); other
  text is tokenized by FTS5 itself, in a temporary table.

The rank index is contentless and holds only presence (`detail=none`): each entry's
words, then its tags, private-use tokens (`TAG`) that no query word can spell. It
relies on recall only growing (nothing deletes or edits an entry). A word that FTS5
splits into several tokens (`a_b`) cannot be looked up in it; `Memory.rank` ranks
such a query with FTS5 over every match instead (same ranking, slower).
"""

from __future__ import annotations

import heapq
import math
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import chain, islice

K1 = 1.2  # FTS5's bm25 constants (fts5_aux.c)
B = 0.75
TAG = "\ue000"  # starts every tag; a query word is \w+ and can never contain it
STAND_IN = "\ue001"  # replaces TAG inside entry text, so no text can forge a tag (both are one-token characters)
MANY = 9  # counts 2..8 are tagged exactly; 9 means "9 or more" and is counted from the text
MAX_DAYS = 7  # a date window over at most this many stored days is narrowed by day tags, a longer one by month
MAX_MONTHS = 48  # a date window over more months than this is filtered by date alone
BATCH = 256  # writers index entries for ranking this many at a time; a search scores the newer ones (the tail) itself
MAX_TAIL = 5_000  # a longer tail (entries from a writer that does not index) is left to FTS5 to rank

_ID_MASK = (1 << 32) - 1
_ASCII_TERM = re.compile(r"[a-z0-9]+")

VERSION = 1  # of the rank index's keys and tags; a file holding another version is re-indexed

RANK_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS recall_rank USING fts5(terms, content='', detail=none, columnsize=0)",
    # Every recall id up to `upto` is in recall_rank; newer ones are added in the writer's transaction.
    "CREATE TABLE IF NOT EXISTS recall_rank_state (upto INTEGER NOT NULL, version INTEGER NOT NULL)",
    f"INSERT INTO recall_rank_state(upto, version) SELECT 0, {VERSION} WHERE NOT EXISTS (SELECT 1 FROM recall_rank_state)",
    # How many recall entries hold each term (FTS5's document frequency), for idf without counting matches.
    "CREATE TABLE IF NOT EXISTS recall_terms (term TEXT PRIMARY KEY, entries INTEGER NOT NULL) WITHOUT ROWID",
]


def reset_if_stale(raw: sqlite3.Connection) -> None:
    """Empties the rank index if it was built with another VERSION (it is then rebuilt from recall)."""
    (version,) = raw.execute("SELECT version FROM recall_rank_state").fetchone()
    if version != VERSION:
        raw.execute("INSERT INTO recall_rank(recall_rank) VALUES ('delete-all')")
        raw.execute("DELETE FROM recall_terms")
        raw.execute("UPDATE recall_rank_state SET upto = 0, version = ?", (VERSION,))


def rank_key(length: int, id_: int) -> int:
    """Sorts by length in tokens, then by id descending (newest first among equals)."""
    if not 0 <= id_ <= _ID_MASK:
        raise ValueError(f"recall id {id_} does not fit the rank key")
    return (length << 32) | (_ID_MASK - id_)


def key_id(key: int) -> int:
    return _ID_MASK - (key & _ID_MASK)


def key_length(key: int) -> int:
    return key >> 32


def varints(blob: bytes) -> list[int]:
    """SQLite varints (big-endian groups of 7 bits; a ninth byte carries 8), as FTS5 stores sizes and totals."""
    out, value, n = [], 0, 0
    for byte in blob:
        if n == 8:
            out.append((value << 8) | byte)
            value, n = 0, 0
            continue
        value, n = (value << 7) | (byte & 0x7F), n + 1
        if not byte & 0x80:
            out.append(value)
            value, n = 0, 0
    return out


def idf(rows: int, holding: int) -> float:
    """FTS5's idf, floored at 1e-6 for a word in more than half the entries."""
    value = math.log((rows - holding + 0.5) / (holding + 0.5))
    return value if value > 0.0 else 1e-6


def bm25(idfs: list[float], counts: list[int], length: int, avgdl: float) -> float:
    """FTS5's bm25 (negated: higher is better), with its operations in its order, so the floats are the same."""
    score = 0.0
    d = float(length)
    for w, f in zip(idfs, counts):
        f = float(f)
        score += w * ((f * (K1 + 1.0)) / (f + K1 * (1 - B + B * d / avgdl)))
    return score


def terms(raw: sqlite3.Connection, texts: list[str]) -> list[list[str]]:
    """Each text's tokens as the default unicode61 tokenizer makes them (folded, in order).

    ASCII is split here (unicode61 keeps runs of ASCII letters and digits and
    lower-cases them); anything else goes through FTS5 in a temporary table, so
    accents, case folding and Unicode categories are SQLite's own.
    """
    out: list[list[str]] = []
    others: list[int] = []
    for text in texts:
        if text.isascii():
            out.append(_ASCII_TERM.findall(text.lower()))
        else:
            others.append(len(out))
            out.append([])
    if others:
        raw.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.deskgate_terms USING fts5(x)")
        raw.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.deskgate_terms_i USING fts5vocab(temp, deskgate_terms, instance)")
        raw.executemany("INSERT INTO temp.deskgate_terms(rowid, x) VALUES (?, ?)", [(i, texts[i]) for i in others])
        for doc, term in raw.execute('SELECT doc, term FROM temp.deskgate_terms_i ORDER BY doc, "offset"'):
            out[doc].append(term)
        raw.execute("DELETE FROM temp.deskgate_terms")
    return out


def tags(entry_terms: list[str], kind: str, at: str) -> str:
    """The tags of one entry: its kind, its day and month, and each word it repeats, once as repeated (`r`)
    and once with the count (MANY for more)."""
    counts = Counter(entry_terms)
    parts = [f"{TAG}k{kind}", f"{TAG}d{at[:4]}{at[5:7]}{at[8:10]}", f"{TAG}m{at[:4]}{at[5:7]}"]
    for term, n in counts.items():
        if n > 1:
            parts += [f"{TAG}r{term}", f"{TAG}{min(n, MANY)}{term}"]
    return " ".join(parts)


def _after(raw: sqlite3.Connection, upto: int, limit: int) -> list[tuple[int, str, str, str, int, list[str]]]:
    """Recall entries with an id above `upto`: id, text, kind, at, length in tokens (FTS5's size record), terms."""
    rows = raw.execute(
        "SELECT r.id, r.text, r.kind, r.at, d.sz FROM recall r LEFT JOIN recall_fts_docsize d ON d.id = r.id "
        "WHERE r.id > ? ORDER BY r.id LIMIT ?",
        (upto, limit),
    ).fetchall()
    return [
        (id_, text, kind, str(at), varints(size)[0] if size else len(entry_terms), entry_terms)
        for (id_, text, kind, at, size), entry_terms in zip(rows, terms(raw, [r[1] for r in rows]))
    ]


def indexed_upto(raw: sqlite3.Connection) -> int | None:
    """The id up to which every recall entry is in the rank index; None if there is no usable index (a file
    opened read-only from before it, or built by another VERSION)."""
    try:
        row = raw.execute("SELECT upto, version FROM recall_rank_state").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row is not None and row[1] == VERSION else None


def index_due(raw: sqlite3.Connection) -> None:
    """In a writer's transaction, after new entries: index them once BATCH of them wait (searches score fewer)."""
    (upto,) = raw.execute("SELECT upto FROM recall_rank_state").fetchone()
    (last,) = raw.execute("SELECT max(id) FROM recall").fetchone()
    if last is not None and last - upto >= BATCH:
        while index_new(raw):
            pass


def index_new(raw: sqlite3.Connection, chunk: int = 20_000) -> int:
    """Adds up to `chunk` recall entries not yet in the rank index; returns how many.

    Runs inside the caller's write transaction, after the entries went into recall
    (and, by trigger, into the main full-text index, whose size record gives the length).
    """
    (upto,) = raw.execute("SELECT upto FROM recall_rank_state").fetchone()
    rows = _after(raw, upto, chunk)
    if not rows:
        return 0
    docs = []
    holding: Counter[str] = Counter()
    for id_, text, kind, at, length, entry_terms in rows:
        docs.append((rank_key(length, id_), f"{text.replace(TAG, STAND_IN)}\n{tags(entry_terms, kind, at)}"))
        holding.update(set(entry_terms))
    # FTS5 flushes its pending terms whenever a rowid is not larger than the last one: insert in key order.
    docs.sort()
    raw.executemany("INSERT INTO recall_rank(rowid, terms) VALUES (?, ?)", docs)
    raw.executemany(
        "INSERT INTO recall_terms(term, entries) VALUES (?, ?) "
        "ON CONFLICT(term) DO UPDATE SET entries = entries + excluded.entries",
        sorted(holding.items()),
    )
    raw.execute("UPDATE recall_rank_state SET upto = ?", (rows[-1][0],))
    return len(rows)


def when(days: list[str]) -> list[str] | None:
    """The day or month tags covering the stored days ("YYYY-MM-DD") a date window touches; None if too many to help."""
    if len(days) <= MAX_DAYS:
        return [f"d{d[:4]}{d[5:7]}{d[8:10]}" for d in days]
    spanned = months(days[0][:4] + days[0][5:7], days[-1][:4] + days[-1][5:7])
    return [f"m{m}" for m in spanned] if len(spanned) <= MAX_MONTHS else None


def months(first: str, last: str) -> list[str]:
    """Every month from `first` to `last` ("YYYYMM"), inclusive."""
    y, m = int(first[:4]), int(first[4:])
    out = []
    while f"{y:04d}{m:02d}" <= last:
        out.append(f"{y:04d}{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def entries_holding(raw: sqlite3.Connection, term: str) -> int:
    """How many recall entries hold `term` (a folded token): FTS5's document frequency for a one-token word."""
    row = raw.execute("SELECT entries FROM recall_terms WHERE term = ?", (term,)).fetchone()
    return row[0] if row else 0


def top(
    raw: sqlite3.Connection,
    words: list[str],
    folded: list[str],
    *,
    upto: int,
    kinds: list[str] | None = None,
    dates: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    k: int = 20,
) -> list[tuple[float, int]] | None:
    """The exact bm25 top `k` as (score, id), from the rank index (ids up to `upto`) and the tail after it.

    The tail (entries newer than the index, fewer than BATCH from writers that index)
    is matched by the main full-text index over its id range and scored here. None if
    the tail is longer than MAX_TAIL (then FTS5 should rank). Call inside one read
    transaction.
    """
    (last,) = raw.execute("SELECT max(id) FROM recall").fetchone()
    averages = raw.execute("SELECT block FROM recall_fts_data WHERE id = 1").fetchone()
    if last is None or averages is None:
        return []
    if last - upto > MAX_TAIL:
        return None
    rows, total = varints(averages[0])[:2]
    if rows == 0:
        return []
    avgdl = total / rows
    newer = "SELECT count(*) FROM recall_fts WHERE recall_fts MATCH ? AND rowid > ?"
    idfs = [
        idf(rows, entries_holding(raw, t) + (raw.execute(newer, (_q(w), upto)).fetchone()[0] if last > upto else 0))
        for w, t in zip(words, folded)
    ]
    newest: list[tuple[float, int]] = []
    if last > upto:
        where, params = ["recall_fts MATCH ?", "recall_fts.rowid > ?"], [" ".join(_q(w) for w in words), upto]
        if kinds:
            where.append(f"r.kind IN ({','.join('?' * len(kinds))})")
            params += kinds
        if since is not None:
            where.append("r.at >= ?")
            params.append(since)
        if until is not None:
            where.append("r.at < ?")
            params.append(until)
        found = raw.execute(
            "SELECT r.id, r.text, d.sz FROM recall_fts JOIN recall r ON r.id = recall_fts.rowid "
            f"LEFT JOIN recall_fts_docsize d ON d.id = r.id WHERE {' AND '.join(where)}",
            params,
        ).fetchall()
        for (id_, text, size), entry_terms in zip(found, terms(raw, [f[1] for f in found])):
            length = varints(size)[0] if size else len(entry_terms)
            newest.append((bm25(idfs, [entry_terms.count(t) for t in folded], length, avgdl), id_))
        newest.sort(key=lambda s: (-s[0], -s[1]))
    return best(raw, words, folded, idfs, avgdl, kinds=kinds, dates=dates, since=since, until=until, k=k, also=newest)


def _q(token: str) -> str:
    return f'"{token}"'  # tokens here are \w+ words, kinds, months and tags: never a quote


def best(
    raw: sqlite3.Connection,
    words: list[str],
    folded: list[str],
    idfs: list[float],
    avgdl: float,
    *,
    kinds: list[str] | None = None,
    dates: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    k: int = 20,
    also: Iterable[tuple[float, int]] = (),
) -> list[tuple[float, int]]:
    """The exact bm25 top `k` as (score, id), best first, ties newest first; `also` is merged in (the tail).

    `words` are single-token query words (as typed; FTS5 folds them), `folded` the
    tokens they fold to. `kinds` and `dates` (day or month tags, from `when`) narrow
    the index; `since` and `until` (stored-time strings) are then checked exactly
    against `recall.at`.
    """
    match = " AND ".join(_q(w) for w in words)
    if kinds:
        match += " AND (" + " OR ".join(_q(f"{TAG}k{kind}") for kind in kinds) + ")"
    if dates:
        match += " AND (" + " OR ".join(_q(f"{TAG}{d}") for d in dates) + ")"

    def counted(i: int, n: int) -> str:
        return _q(f"{TAG}{n}{words[i]}")

    def repeated(i: int) -> str:
        return _q(f"{TAG}r{words[i]}")

    def expr(counts: tuple[int, ...]) -> str:
        e = " AND ".join([f"({match})", *(counted(i, n) for i, n in enumerate(counts) if n > 1)])
        once = [repeated(i) for i, n in enumerate(counts) if n == 1]
        return f"({e}) NOT ({' OR '.join(once)})" if once else e

    def exists(e: str) -> bool:
        return raw.execute("SELECT 1 FROM recall_rank WHERE recall_rank MATCH ? LIMIT 1", (e,)).fetchone() is not None

    if since is None and until is None:
        sql, extra = "SELECT rowid FROM recall_rank WHERE recall_rank MATCH ? ORDER BY rowid", ()
    else:
        sql = (
            "SELECT g.rowid FROM recall_rank g JOIN recall r ON r.id = 4294967295 - (g.rowid & 4294967295) "
            "WHERE recall_rank MATCH ? AND r.at >= ? AND r.at < ? ORDER BY g.rowid"
        )
        extra = (since or "", until or "9999-99-99")

    def in_order(c: tuple[int, ...], rows: Iterator[tuple[int]]) -> Iterator[tuple[float, int]]:
        counts, by_length = list(c), {}
        for (key,) in rows:
            length = key_length(key)
            if length not in by_length:
                by_length[length] = bm25(idfs, counts, length, avgdl)
            yield by_length[length], key_id(key)

    def counted_from_text(c: tuple[int, ...]) -> list[tuple[float, int]]:
        keys = [key for (key,) in raw.execute(sql, (expr(c), *extra))]
        texts: dict[int, str] = {}
        for start in range(0, len(keys), 500):
            ids = [key_id(key) for key in keys[start : start + 500]]
            texts.update(raw.execute(f"SELECT id, text FROM recall WHERE id IN ({','.join('?' * len(ids))})", ids))
        scored = []
        for key, entry_terms in zip(keys, terms(raw, [texts[key_id(key)] for key in keys])):
            have = Counter(entry_terms)
            scored.append((bm25(idfs, [have[t] for t in folded], key_length(key), avgdl), key_id(key)))
        return sorted(scored, key=lambda s: (-s[0], -s[1]))

    def stream(c: tuple[int, ...]) -> Iterator[tuple[float, int]] | None:
        """A class's entries best first, or None if it has none in the window."""
        if MANY in c:
            scored = counted_from_text(c)
            return iter(scored) if scored else None
        rows = raw.execute(sql, (expr(c), *extra))
        first = rows.fetchone()
        return None if first is None else in_order(c, chain([first], rows))

    # The count classes that occur among the matches, one word at a time (usually one or two);
    # the last word's probes are the streams themselves.
    classes: list[tuple[int, ...]] = [()]
    streams: list[Iterator[tuple[float, int]]] = []
    for i in range(len(words)):
        found = []
        for c in classes:
            candidates = [c + (1,)]
            if exists(f"({expr(c)}) AND {repeated(i)}"):
                candidates += [c + (n,) for n in range(2, MANY + 1)]
            if i < len(words) - 1:
                found += [d for d in candidates if exists(expr(d))]
            else:
                streams += [s for s in map(stream, candidates) if s is not None]
        classes = found
    return list(islice(heapq.merge(*streams, also, key=lambda s: (-s[0], -s[1])), k))
