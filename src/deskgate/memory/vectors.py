"""Vectors beside the memory's entries, and a nearest-neighbour search over them.

Each recall entry and archival document gets one vector per embedding model, stored
in SQL (`recall_vectors`, `archival_vectors`: float16, little-endian) so it lives and
is backed up with the entries, on SQLite or PostgreSQL alike. Search is exact up to
`EXACT_UP_TO` entries: a float32 matrix in memory (1.5 kB an entry: 150 MB at
100,000), one product with the query, filters as masks; about 6 ms at 100,000 on the
project's VM. Beyond that, the sign bits of every vector (48 bytes each) pick
`RESCORE` candidates by Hamming distance first, and those are scored exactly. At
100,000 entries that pass saved about 2 ms and cost semantic MRR@10 0.612 -> 0.594
(docs/BENCHMARKS.md), so it waits for memories that need it.

Why not sqlite-vec: this Python cannot load SQLite extensions without swapping in
pysqlite3 for every store, and the memory must move to PostgreSQL too (issue 17).

An entry without a vector for the current model is *pending*: written while the
embedder was down, or under another model. `VectorStore.embed_pending` embeds them;
nothing is dropped. The index reads new rows by their sequence number, so vectors
written by another process (the agents, while a person searches) appear at the next
search. On PostgreSQL a transaction can commit after a later-numbered one (numbers are
taken at insert, not at commit): the numbers skipped over are looked for again at each
refresh for `GAP_KEEP_S`, then taken for a rolled-back insert's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table, UniqueConstraint, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from deskgate.memory.embedding import Embedder, EmbeddingError

log = logging.getLogger(__name__)

EXACT_UP_TO = 250_000  # entries scored exactly; above, sign bits choose candidates first
RESCORE = 5_000  # candidates scored exactly after the sign-bit pass (at least 10x what is asked)
REFRESH_CHUNK = 10_000  # vectors read from the database at a time
RETRY_AFTER_S = 60  # after the embedder failed, writes and searches leave it alone this long
GAP_KEEP_S = 600.0  # a number skipped over is looked for this long (a slow commit), then given up (a rollback)
MAX_GAPS = 1_000  # numbers skipped over kept at most, all within this many of the newest

vector_metadata = MetaData()


def _table(name: str) -> Table:
    return Table(
        name,
        vector_metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),  # order written: the index reads what is new
        Column("entry_id", Integer, nullable=False),
        Column("model", String(200), nullable=False),
        Column("vector", LargeBinary, nullable=False),
        UniqueConstraint("entry_id", "model"),
    )


recall_vectors = _table("recall_vectors")
archival_vectors = _table("archival_vectors")

# Entries a model could not embed on their own while it embedded others: not pending for that model.
vector_failures = Table(
    "vector_failures",
    vector_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("entry_id", Integer, nullable=False),
    Column("model", String(200), nullable=False),
    Column("error", String(500), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kind", "entry_id", "model"),
)

# What each kind of entry is embedded from.
SOURCES = {
    "recall": ("recall", "text", recall_vectors),
    "archival": ("archival", "title || '. ' || text", archival_vectors),
}


@dataclass(frozen=True)
class Near:
    entry_id: int
    similarity: float


def _epoch(value) -> float:
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    else:
        dt = datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _words(dim: int) -> int:
    return (dim + 63) // 64


def _sign_bits(vectors: np.ndarray) -> np.ndarray:
    """Each vector's signs, one bit per dimension, packed into 64-bit words."""
    packed = np.packbits(vectors > 0, axis=1)
    pad = _words(vectors.shape[1]) * 8 - packed.shape[1]
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return packed.view(np.uint64)


class VectorIndex:
    """The vectors of one kind of entry for one model, in memory, with each entry's time and kind for filters."""

    def __init__(self, kind: str, model: str, dim: int):
        self.kind, self.model, self.dim = kind, model, dim
        self.last_seq = 0
        self.n = 0
        self.ids = np.zeros(0, dtype=np.int64)
        self.at = np.zeros(0, dtype=np.float64)
        self.kinds = np.zeros(0, dtype=np.int16)
        self.matrix = np.zeros((0, dim), dtype=np.float32)
        self.bits = np.zeros((0, _words(dim)), dtype=np.uint64)
        self.row_of: dict[int, int] = {}
        self.kind_codes: dict[str, int] = {}
        self.gaps: dict[int, float] = {}  # numbers skipped over -> when first missed (monotonic)

    def refresh(self, conn: Connection) -> None:
        """Take in the vectors written since the last refresh (by anyone)."""
        source, _, table = SOURCES[self.kind]
        extra = ", e.kind" if self.kind == "recall" else ", ''"
        # Every model's rows are read (their numbers are not gaps), the vectors of this model's only.
        select = (f"SELECT v.seq, v.entry_id, CASE WHEN v.model = :model THEN v.vector END, e.at{extra}, v.model "
                  f"FROM {table.name} v JOIN {source} e ON e.id = v.entry_id ")
        if self.gaps:
            self._fill_gaps(conn, select)
        start, seen = self.last_seq, []
        while True:
            rows = conn.execute(text(select + "WHERE v.seq > :after ORDER BY v.seq LIMIT :n"),
                                {"after": self.last_seq, "model": self.model, "n": REFRESH_CHUNK}).all()
            if not rows:
                break
            seen += [r[0] for r in rows]
            self._take([r[:5] for r in rows if r[5] == self.model])
            self.last_seq = rows[-1][0]
        self._note_gaps(start, seen)

    def _note_gaps(self, start: int, seen: list[int]) -> None:
        """The numbers skipped over near the newest (a commit still on its way lands there, not deep
        in the past, where a gap is a deleted entry's)."""
        if not seen:
            return
        now, floor, before = time.monotonic(), seen[-1] - MAX_GAPS, start
        for seq in seen:
            for missing in range(max(before + 1, floor), seq):
                self.gaps.setdefault(missing, now)
            before = seq
        for old in sorted(self.gaps)[: max(0, len(self.gaps) - MAX_GAPS)]:
            del self.gaps[old]

    def _fill_gaps(self, conn: Connection, select: str) -> None:
        """Look again for the numbers skipped over: a row found now committed late."""
        now = time.monotonic()
        for seq in [q for q, t in self.gaps.items() if now - t > GAP_KEEP_S]:
            del self.gaps[seq]
        wanted = sorted(self.gaps)
        for i in range(0, len(wanted), 1000):
            numbers = ", ".join(str(int(q)) for q in wanted[i:i + 1000])
            rows = conn.execute(text(select + f"WHERE v.seq IN ({numbers})"), {"model": self.model}).all()
            for r in rows:
                self.gaps.pop(r[0], None)  # found: whichever model's, it is no longer missing
            self._take([r[:5] for r in rows if r[5] == self.model])

    def _take(self, rows) -> None:
        if not rows:
            return
        self._grow(self.n + len(rows))
        changed: list[int] = []
        for seq, entry_id, blob, at, kind in rows:
            vector = np.frombuffer(blob, dtype="<f2")
            if vector.shape[0] != self.dim:
                log.warning("%s vector for entry %s has %d dimensions, not %d: ignored", self.kind, entry_id, vector.shape[0], self.dim)
                continue
            row = self.row_of.get(entry_id)
            if row is None:
                row, self.n = self.n, self.n + 1
                self.row_of[entry_id] = row
            self.ids[row] = entry_id
            self.matrix[row] = vector
            changed.append(row)
            self.at[row] = _epoch(at)
            self.kinds[row] = self.kind_codes.setdefault(kind, len(self.kind_codes))
        if changed:
            self.bits[changed] = _sign_bits(self.matrix[changed])

    def _grow(self, need: int) -> None:
        if need <= len(self.ids):
            return
        size = max(need, len(self.ids) + len(self.ids) // 4, 1024)
        ids, at, kinds, matrix = (np.zeros(size, dtype=np.int64), np.zeros(size), np.zeros(size, dtype=np.int16),
                                  np.zeros((size, self.dim), dtype=np.float32))
        bits = np.zeros((size, _words(self.dim)), dtype=np.uint64)
        n = self.n
        ids[:n], at[:n], kinds[:n], matrix[:n], bits[:n] = self.ids[:n], self.at[:n], self.kinds[:n], self.matrix[:n], self.bits[:n]
        self.ids, self.at, self.kinds, self.matrix, self.bits = ids, at, kinds, matrix, bits

    def nearest(
        self, query: np.ndarray, k: int, *, since: datetime | None = None, until: datetime | None = None, kinds: list[str] | None = None
    ) -> list[Near]:
        """The `k` entries most similar to `query` (a unit vector) within the filters, most similar first."""
        if self.n == 0 or k <= 0:
            return []
        query = query.astype(np.float32)
        mask = None
        if since is not None:
            mask = self.at[: self.n] >= since.timestamp()
        if until is not None:
            m = self.at[: self.n] < until.timestamp()
            mask = m if mask is None else mask & m
        if kinds is not None:
            codes = [self.kind_codes[k_] for k_ in kinds if k_ in self.kind_codes]
            m = np.isin(self.kinds[: self.n], codes)
            mask = m if mask is None else mask & m
        if self.n <= EXACT_UP_TO:
            scores = self.matrix[: self.n] @ query
            if mask is not None:
                scores = np.where(mask, scores, -np.inf)
            k = min(k, self.n)
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.isfinite(scores[top])]
            # Most similar first; equal similarity, the newer entry (higher id) first.
            order = sorted(top.tolist(), key=lambda r: (-float(scores[r]), -int(self.ids[r])))
            return [Near(int(self.ids[r]), float(scores[r])) for r in order]
        # Fewest differing signs first: a cheap stand-in for the angle, then scored exactly.
        distance = np.bitwise_count(self.bits[: self.n] ^ _sign_bits(query[None, :])[0]).sum(axis=1, dtype=np.int32)
        if mask is not None:
            distance = np.where(mask, distance, np.iinfo(np.int32).max)
        c = min(self.n, max(RESCORE, 10 * k))
        rows = np.argpartition(distance, c - 1)[:c]
        if mask is not None:
            rows = rows[mask[rows]]
        if len(rows) == 0:
            return []
        scores = self.matrix[rows] @ query
        k = min(k, len(rows))
        top = np.argpartition(-scores, k - 1)[:k]
        order = sorted(top.tolist(), key=lambda i: (-float(scores[i]), -int(self.ids[rows[i]])))
        return [Near(int(self.ids[rows[i]]), float(scores[i])) for i in order]


class VectorStore:
    """The vectors of a memory's entries under one embedder."""

    def __init__(self, engine: Engine, embedder: Embedder):
        self.engine, self.embedder = engine, embedder
        self._indexes: dict[str, VectorIndex] = {}
        # Below this id every entry has a vector (or had, when last looked): the scan for pending starts above it.
        self._floor = {kind: 0 for kind in SOURCES}
        self._resting_until = 0.0  # after the embedder failed, writes leave their entries pending until then

    def create(self) -> None:
        vector_metadata.create_all(self.engine)

    def pending(self, kind: str, limit: int = 1_000_000) -> list[tuple[int, str]]:
        """(id, text) of entries with no vector for this embedder's model, oldest first; an entry this model
        could not embed on its own (`vector_failures`) is not pending (`deskgate memory embed --retry-failed`)."""
        source, what, table = SOURCES[kind]
        with self.engine.connect() as conn:
            return [
                (int(i), t)
                for i, t in conn.execute(text(
                    f"SELECT e.id, {what} FROM {source} e WHERE e.id > :floor "
                    f"AND NOT EXISTS (SELECT 1 FROM {table.name} v WHERE v.entry_id = e.id AND v.model = :model) "
                    f"AND NOT EXISTS (SELECT 1 FROM vector_failures f WHERE f.kind = :kind AND f.entry_id = e.id AND f.model = :model) "
                    f"ORDER BY e.id LIMIT :n"),
                    {"floor": self._floor[kind], "model": self.embedder.model, "kind": kind, "n": limit},
                ).all()
            ]

    def failures(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(vector_failures.select().where(vector_failures.c.model == self.embedder.model)).mappings().all()
        return [dict(r) for r in rows]

    def retry_failed(self) -> int:
        with self.engine.begin() as conn:
            n = conn.execute(vector_failures.delete().where(vector_failures.c.model == self.embedder.model)).rowcount
        self._floor = {kind: 0 for kind in SOURCES}
        return n

    def embed_pending(self, batch: int = 256, progress=None, limit: int | None = None) -> int:
        """Embed pending entries (all, or about `limit`), a batch per transaction; returns how many were
        handled. Raises EmbeddingError (having kept what was done) when the embedder does not answer."""
        done = 0
        for kind, (_, _, table) in SOURCES.items():
            while (limit is None or done < limit) and (todo := self.pending(kind, batch)):
                vectors, failed = self._embed(todo)
                rows = [{"entry_id": i, "model": self.embedder.model, "vector": v.astype("<f2").tobytes()} for i, v in vectors]
                with self.engine.begin() as conn:
                    # Another process may have embedded some meanwhile: theirs stand.
                    if rows:
                        conn.execute(_insert_new(self.engine, table), rows)
                    if failed:
                        conn.execute(_insert_new(self.engine, vector_failures), [
                            {"kind": kind, "entry_id": i, "model": self.embedder.model, "error": err[:500], "at": datetime.now(timezone.utc)}
                            for i, err in failed
                        ])
                done += len(todo)
                self._floor[kind] = todo[-1][0]
                if progress is not None:
                    progress(kind, len(todo))
                if len(todo) < batch:
                    break
        return done

    def _embed(self, todo: list[tuple[int, str]]) -> tuple[list[tuple[int, np.ndarray]], list[tuple[int, str]]]:
        """Vectors for a batch; if the batch fails, each entry alone: one that fails while others succeed is
        set aside (too long for the endpoint, say) so it cannot hold back every entry after it."""
        try:
            vectors = self.embedder.embed([t for _, t in todo])
            self._resting_until = 0.0  # it answers again
            return list(zip([i for i, _ in todo], vectors)), []
        except EmbeddingError as exc:
            if len(todo) == 1:
                raise
            first_error = exc
        done, failed = [], []
        for i, t in todo:
            try:
                done.append((i, self.embedder.embed([t])[0]))
            except EmbeddingError as exc:
                failed.append((i, str(exc)))
        if not done:
            raise first_error  # nothing answers: the embedder is down, not the entries
        self._resting_until = 0.0
        log.warning("%d entries could not be embedded on their own and are set aside: %s", len(failed), failed[0][1])
        return done, failed

    def try_embed_pending(self, limit: int = 512) -> int:
        """After a write: embed what is pending (about `limit` at most, so a backlog never stalls one write),
        unless the embedder failed in the last RETRY_AFTER_S. A failure leaves the entries pending; nothing
        raised here can undo the write that called it."""
        if time.monotonic() < self._resting_until:
            return 0
        try:
            return self.embed_pending(limit=limit)
        except EmbeddingError as exc:
            self._resting_until = time.monotonic() + RETRY_AFTER_S
            log.warning("entries kept without vectors, to be embedded later (next try in %ds): %s", RETRY_AFTER_S, exc)
        except Exception:  # noqa: BLE001 - the entry is written; its vector can wait
            self._resting_until = time.monotonic() + RETRY_AFTER_S
            log.exception("embedding after a write failed; the entries stay pending")
        return 0

    def index(self, kind: str) -> VectorIndex:
        idx = self._indexes.get(kind)
        if idx is None or idx.dim != self.embedder.dim:
            idx = self._indexes[kind] = VectorIndex(kind, self.embedder.model, self.embedder.dim)
        try:
            with self.engine.connect() as conn:
                idx.refresh(conn)
        except OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            # A file from before vectors, opened read-only: nothing to search by meaning yet.
        return idx

    def nearest(self, kind: str, query: str, k: int, **filters) -> list[Near]:
        if time.monotonic() < self._resting_until:
            raise EmbeddingError(f"the embedder ({self.embedder.model}) failed less than {RETRY_AFTER_S}s ago")
        try:
            vector = self.embedder.embed([query])[0]
        except EmbeddingError:
            self._resting_until = time.monotonic() + RETRY_AFTER_S
            raise
        return self.index(kind).nearest(vector, k, **filters)


def _insert_new(engine: Engine, table: Table):
    """An insert that leaves a row someone else wrote first (the same entry and model) as it is."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()
