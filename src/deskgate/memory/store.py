"""The agents' memory, after Letta: core blocks, recall and archival, in SQLite.

- **Core** blocks are small, always in the agent's context, and edited by the agent
  itself through three tools (append, replace, rethink) that refuse to exceed a
  block's limit. Every edit is kept in `core_history`, so nothing is lost.
- **Recall** holds every observation, insight, directive and outcome, searchable by
  text (SQLite FTS5) with date and kind filters, newest first or best first (the
  exact bm25 ranking, read from a second index: see `ranking.py`).
- **Archival** holds long documents (end-of-day reviews, post-trade analyses,
  regime notes) with tags, searchable the same way.

One file under the data directory (`state/memory.db`) that survives restarts, or the
`memory` schema of the desk's PostgreSQL (storage.url), where words are searched through
postings instead of FTS5 (pg_words.py).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from deskgate.memory import pg_words, ranking
from deskgate.memory.embedding import Embedder
from deskgate.memory.vectors import VectorStore, vector_metadata
from deskgate.storage import make_engine, utc

# The article's core blocks and their size limits (characters).
DEFAULT_CORE_LIMITS: dict[str, int] = {
    "desk_state": 2000,
    "regime": 1000,
    "hypotheses": 2000,
    "instructions": 2000,
}

RecallKind = Literal["observation", "insight", "principle", "directive", "outcome", "review", "summary", "note"]
RECALL_KINDS: frozenset[str] = frozenset(RecallKind.__args__)  # type: ignore[attr-defined]
TAG = re.compile(r"[a-z0-9_-]{1,40}")


class MemoryError_(ValueError):
    """A memory edit or query that cannot be done; the message says why (the agent reads it)."""


metadata = MetaData()

core_blocks = Table(
    "core_blocks",
    metadata,
    Column("label", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("limit_chars", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

core_history = Table(
    "core_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("label", String(64), nullable=False),
    Column("op", String(16), nullable=False),
    Column("old_value", Text, nullable=False),
    Column("new_value", Text, nullable=False),
    Column("by", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

recall = Table(
    "recall",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("ref", String(128), nullable=True),  # the data point, directive or document it is about
    Column("meta", JSON, nullable=False),
)
Index("recall_at", recall.c.at)

archival = Table(
    "archival",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("title", String(300), nullable=False),
    Column("text", Text, nullable=False),
    Column("tags", String(1000), nullable=False),  # space-separated, lower case
)

# Every memory tool a model called (agents/memory_tools.py): what it asked and what it got.
tool_calls = Table(
    "tool_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("by", String(64), nullable=False),  # the analyst
    Column("function", String(32), nullable=False),  # the step it was drafting: socratic, end_of_day, ...
    Column("tool", String(64), nullable=False),
    Column("args", JSON, nullable=False),
    Column("ok", Integer, nullable=False),  # 0: refused (a limit, a bad argument), 1: done
    Column("outcome", Text, nullable=False),  # the first part of what the model was told
)

# Full-text indexes over recall and archival, kept in step by triggers.
FTS_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS recall_fts USING fts5(text, content='recall', content_rowid='id')",
    "CREATE TRIGGER IF NOT EXISTS recall_ai AFTER INSERT ON recall BEGIN "
    "INSERT INTO recall_fts(rowid, text) VALUES (new.id, new.text); END",
    # The lowest and highest recall id of each day, so a date window becomes a rowid
    # range the full-text index can jump to (ids need not follow time for this).
    "CREATE TABLE IF NOT EXISTS recall_days (day TEXT PRIMARY KEY, lo INTEGER NOT NULL, hi INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS recall_day AFTER INSERT ON recall BEGIN "
    "INSERT INTO recall_days(day, lo, hi) VALUES (substr(new.at, 1, 10), new.id, new.id) "
    "ON CONFLICT(day) DO UPDATE SET lo = min(lo, excluded.lo), hi = max(hi, excluded.hi); END",
    "INSERT INTO recall_days(day, lo, hi) SELECT substr(at, 1, 10), min(id), max(id) FROM recall "
    "WHERE NOT EXISTS (SELECT 1 FROM recall_days) GROUP BY substr(at, 1, 10)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS archival_fts USING fts5(title, text, tags, content='archival', content_rowid='id')",
    "CREATE TRIGGER IF NOT EXISTS archival_ai AFTER INSERT ON archival BEGIN "
    "INSERT INTO archival_fts(rowid, title, text, tags) VALUES (new.id, new.title, new.text, new.tags); END",
]


@dataclass(frozen=True)
class CoreBlock:
    label: str
    value: str
    limit: int
    version: int
    updated_at: datetime

    @property
    def used(self) -> int:
        return len(self.value)


@dataclass(frozen=True)
class RecallEntry:
    id: int
    at: datetime
    kind: str
    text: str
    ref: str | None
    meta: dict[str, Any]


@dataclass(frozen=True)
class Ranked:
    """A recall entry with its bm25 score (FTS5's, negated: higher is better)."""

    entry: RecallEntry
    score: float


@dataclass(frozen=True)
class Document:
    id: int
    at: datetime
    title: str
    text: str
    tags: tuple[str, ...]


_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(query: str) -> str:
    """A person's or an agent's words as a safe FTS5 query: every word must appear.

    Each word is quoted, so FTS5 operators and stray quotes in the input are just
    text and can never make the query fail or mean something else.
    """
    words = _WORD.findall(query)
    if not words:
        raise MemoryError_(f"nothing to search for in {query!r}: give at least one word")
    return " ".join('"' + w.replace('"', '""') + '"' for w in words[:32])


class Memory:
    def __init__(
        self, engine: Engine, *, core_limits: dict[str, int] | None = None, clock=None, read_only: bool = False,
        embedder: Embedder | None = None,
    ):
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.read_only = read_only
        # Vectors for semantic recall; None: words only (see search.py).
        self.vectors = VectorStore(engine, embedder) if embedder is not None else None
        if not read_only:
            self._setup(core_limits)

    def _setup(self, core_limits: dict[str, int] | None) -> None:
        """Tables, indexes and blocks. Idempotent; retried, since two processes may open a new file at once.
        Limits given here are applied; without them, only missing default blocks are added."""
        from deskgate.migrations import upgrade

        upgrade(self.engine, "memory")
        if self.pg:
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        for attempt in range(10):
            try:
                with self.engine.begin() as conn:
                    if not self.pg:
                        for ddl in FTS_DDL + ranking.RANK_DDL:
                            conn.execute(text(ddl))
                    now = _utc(self.clock())
                    for label, limit in (core_limits or DEFAULT_CORE_LIMITS).items():
                        conn.execute(
                            upsert(core_blocks)
                            .values(label=label, value="", limit_chars=limit, version=0, updated_at=now)
                            .on_conflict_do_nothing()
                        )
                        if core_limits:
                            conn.execute(update(core_blocks).where(core_blocks.c.label == label).values(limit_chars=limit))
                    if self.pg:  # entries carried in from a file, not yet in the postings
                        pg_words.index_missing(conn, "recall", "SELECT e.id, e.text FROM recall e")
                        pg_words.index_missing(conn, "archival", "SELECT e.id, e.title || ' ' || e.text || ' ' || e.tags FROM archival e")
                if not self.pg:
                    self._index_for_ranking()
                return
            except (OperationalError, IntegrityError):
                if attempt == 9:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _index_for_ranking(self) -> None:
        """Brings the rank index up to date with recall: a file from before it existed is indexed here, in chunks,
        each its own transaction (searches meanwhile rank with FTS5 over every match, see `rank`)."""
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            while True:
                raw.execute("BEGIN IMMEDIATE")
                try:
                    ranking.reset_if_stale(raw)
                    added = ranking.index_new(raw)
                    raw.commit()
                except BaseException:
                    raw.rollback()
                    raise
                if not added:
                    return

    def _storable(self, text_: str) -> None:
        if self.pg and "\x00" in text_:
            raise MemoryError_("the text holds a NUL character, which PostgreSQL cannot store; remove it")

    @classmethod
    def for_desk(cls, data_dir, *, read_only: bool = False, **kw) -> Memory:
        """The desk's memory: its file, or its schema of the shared PostgreSQL (storage.url),
        into which a file from before is carried once."""
        shared = data_dir.storage_url()
        if shared is None:
            return cls.open(data_dir.memory_db, read_only=read_only, **kw)
        from deskgate.migrations import open_store, schema_exists
        from deskgate.storage import store_engine

        if read_only:
            if not schema_exists(shared, "memory"):
                raise MemoryError_("no memory yet in the desk's PostgreSQL; the agents write it when they run")
            return cls(store_engine(shared, "memory"), read_only=True, **kw)
        tables = [*metadata.tables.values(), *vector_metadata.tables.values()]
        return cls(open_store(shared, "memory", legacy_sqlite=data_dir.memory_db, legacy_tables=tables), **kw)

    @classmethod
    def open(cls, path: str | os.PathLike, *, read_only: bool = False, **kw) -> Memory:
        """The memory at `path`; `read_only` opens an existing file without changing it (for people looking in)."""
        path = Path(path)
        if read_only:
            engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", connect_args={"check_same_thread": False})
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = make_engine(f"sqlite:///{path}")

        @event.listens_for(engine, "connect")
        def _fast(dbapi_conn, _record):
            dbapi_conn.execute("PRAGMA cache_size=-65536")  # 64 MB page cache for search
            dbapi_conn.execute("PRAGMA busy_timeout=5000")

        return cls(engine, read_only=read_only, **kw)

    # -- core ---------------------------------------------------------------------------

    def core(self) -> list[CoreBlock]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(core_blocks).order_by(core_blocks.c.label)).mappings().all()
        return [CoreBlock(r["label"], r["value"], r["limit_chars"], r["version"], utc(r["updated_at"])) for r in rows]

    def block(self, label: str) -> CoreBlock:
        for b in self.core():
            if b.label == label:
                return b
        raise MemoryError_(f"no core memory block {label!r}; blocks: {', '.join(b.label for b in self.core())}")

    def core_append(self, label: str, content: str, by: str = "agent") -> CoreBlock:
        """Letta's core_memory_append: add a line to a block."""
        current = self.block(label)
        new = f"{current.value}\n{content}" if current.value else content
        return self._write(current, new, "append", by)

    def core_replace(self, label: str, old: str, new: str, by: str = "agent") -> CoreBlock:
        """Letta's core_memory_replace: replace one exact passage of a block."""
        current = self.block(label)
        if not old:
            raise MemoryError_("core_replace needs the exact text to replace; use rethink to rewrite a whole block")
        count = current.value.count(old)
        if count == 0:
            raise MemoryError_(f"{old!r} does not occur in block {label!r}; nothing replaced")
        if count > 1:
            raise MemoryError_(f"{old!r} occurs {count} times in block {label!r}; give a longer, unique passage")
        return self._write(current, current.value.replace(old, new, 1), "replace", by)

    def core_rethink(self, label: str, new_value: str, by: str = "agent") -> CoreBlock:
        """Rewrite a whole block (Letta's rethink_memory)."""
        return self._write(self.block(label), new_value, "rethink", by)

    def _write(self, current: CoreBlock, new: str, op: str, by: str) -> CoreBlock:
        if len(new) > current.limit:
            raise MemoryError_(
                f"block {current.label!r} would hold {len(new)} characters, over its limit of {current.limit}; "
                f"nothing changed: shorten it (rethink) or move detail to archival memory"
            )
        now = _utc(self.clock())
        with self.engine.begin() as conn:
            done = conn.execute(
                update(core_blocks)
                .where(core_blocks.c.label == current.label, core_blocks.c.version == current.version)
                .values(value=new, version=current.version + 1, updated_at=now)
            ).rowcount
            if done != 1:
                raise MemoryError_(f"block {current.label!r} changed while this edit was made; read it again")
            conn.execute(
                insert(core_history).values(label=current.label, op=op, old_value=current.value, new_value=new, by=by, at=now)
            )
        return CoreBlock(current.label, new, current.limit, current.version + 1, now)

    def core_history(self, label: str | None = None, limit: int = 50) -> list[dict]:
        q = select(core_history).order_by(core_history.c.id.desc()).limit(limit)
        if label:
            q = q.where(core_history.c.label == label)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # -- recall -------------------------------------------------------------------------

    def remember(
        self, kind: str, text_: str, *, ref: str | None = None, at: datetime | None = None, meta: dict | None = None
    ) -> int:
        if not text_.strip():
            raise MemoryError_("nothing to remember: empty text")
        if kind not in RECALL_KINDS:
            raise MemoryError_(f"unknown recall kind {kind!r}; one of {', '.join(sorted(RECALL_KINDS))}")
        self._storable(text_)
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(recall).values(at=_utc(at or self.clock()), kind=kind, text=text_, ref=ref, meta=meta or {})
            )
            id_ = int(result.inserted_primary_key[0])
            if self.pg:
                pg_words.index(conn, "recall", [(id_, text_)])
            else:
                ranking.index_due(conn.connection.driver_connection)
        self._embed_new()
        return id_

    def remember_many(self, rows: list[dict]) -> None:
        """Bulk insert: dicts with at, kind, text and optionally ref, meta."""
        bad = {r["kind"] for r in rows} - RECALL_KINDS
        if bad:
            raise MemoryError_(f"unknown recall kinds {sorted(bad)}; one of {', '.join(sorted(RECALL_KINDS))}")
        for r in rows:
            self._storable(r["text"])
        with self.engine.begin() as conn:
            values = [{"ref": None, "meta": {}, **r, "at": _utc(r["at"])} for r in rows]
            if self.pg:
                written = conn.execute(insert(recall).returning(recall.c.id, recall.c.text, sort_by_parameter_order=True), values).all()
                pg_words.index(conn, "recall", [(int(i), t) for i, t in written])
            else:
                conn.execute(insert(recall), values)
                ranking.index_due(conn.connection.driver_connection)
        self._embed_new()

    def search(
        self,
        query: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: list[str] | None = None,
        limit: int = 20,
        order: Literal["recent", "relevance"] = "recent",
    ) -> list[RecallEntry]:
        """Recall entries containing every word of `query`, newest first; best first with `order="relevance"` (see `rank`)."""
        if order == "relevance":
            return [r.entry for r in self.rank(query, since=since, until=until, kinds=kinds, limit=limit)]
        if self.pg:
            fts_query(query)  # the same refusal for a query of no words
            with self.engine.connect() as conn:
                found = pg_words.matches(conn, "recall", pg_words.query_terms(query), every=True, ranked=False,
                                         **_pg_filters(since, until, kinds), limit=max(1, min(limit, 500)))
                return [_entry(r) for r in _pg_rows_by_id(conn, [i for _, i in found])]
        with self.engine.connect() as conn:
            found = _matching(conn.connection.driver_connection, query, since, until, kinds)
            if found is None:
                return []
            where, params = found
            # Newest first walks the full-text index backwards and stops at the limit.
            sql = (
                "SELECT r.id, r.at, r.kind, r.text, r.ref, r.meta FROM recall_fts JOIN recall r ON r.id = recall_fts.rowid "
                f"WHERE {where} ORDER BY recall_fts.rowid DESC LIMIT :limit"
            )
            rows = conn.execute(text(sql), {**params, "limit": max(1, min(limit, 500))}).all()
        return [_entry(r) for r in rows]

    def rank(
        self,
        query: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: list[str] | None = None,
        limit: int = 20,
    ) -> list[Ranked]:
        """Recall entries containing every word of `query`, best first, each with its bm25 score.

        Exactly FTS5's bm25 ranking over *every* matching entry (`ORDER BY rank`:
        k1 1.2, b 0.75, over the text), equal scores newest recorded first (higher
        id), with the same date and kind filters as newest first. Read from the rank
        index (`ranking.py`) in about `limit` steps instead of scoring every match.
        FTS5 ranks by itself over every match (the same ranking, slow for common
        words) in two cases: a query word FTS5 splits into several tokens (`a_b`),
        and a file opened read-only from before the rank index, or more than
        `ranking.MAX_TAIL` entries ahead of it. This is the bm25 candidate list a
        hybrid search fuses.
        """
        fts_query(query)  # the same refusal as newest first for a query of no words
        limit = max(1, min(limit, 500))
        if self.pg:
            with self.engine.connect() as conn:
                found = pg_words.matches(conn, "recall", pg_words.query_terms(query), every=True, ranked=True,
                                         **_pg_filters(since, until, kinds), limit=limit)
                rows = {r[0]: r for r in _pg_rows_by_id(conn, [i for _, i in found])}
            return [Ranked(_entry(rows[id_]), score) for score, id_ in found]
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute("BEGIN")  # one snapshot: counts, lengths and the walk agree even while an agent writes
            try:
                found = _best_first(raw, query, since, until, kinds, limit)
                rows = {r[0]: r for r in _rows_by_id(raw, [id_ for _, id_ in found])}
            finally:
                raw.rollback()
        return [Ranked(_entry(rows[id_]), score) for score, id_ in found]

    def recent(self, limit: int = 50, *, kinds: list[str] | None = None, before_id: int | None = None) -> list[RecallEntry]:
        q = select(recall).order_by(recall.c.id.desc()).limit(limit)
        if kinds:
            q = q.where(recall.c.kind.in_(kinds))
        if before_id is not None:
            q = q.where(recall.c.id < before_id)
        with self.engine.connect() as conn:
            return [_entry(tuple(r)) for r in conn.execute(q)]

    def recall_count(self, *, kinds: list[str] | None = None, before_id: int | None = None) -> int:
        q = select(func.count()).select_from(recall)
        if kinds:
            q = q.where(recall.c.kind.in_(kinds))
        if before_id is not None:
            q = q.where(recall.c.id < before_id)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    # -- archival -----------------------------------------------------------------------

    def archive(self, title: str, text_: str, tags: list[str] | tuple[str, ...] = (), at: datetime | None = None) -> int:
        if not title.strip() or not text_.strip():
            raise MemoryError_("an archival document needs a title and a text")
        clean = sorted({t.strip().lower() for t in tags if t.strip()})
        bad = [t for t in clean if not TAG.fullmatch(t)]
        if bad:
            raise MemoryError_(f"tags must be 1-40 of a-z, 0-9, '_' or '-': {bad}")
        self._storable(title)
        self._storable(text_)
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(archival).values(at=_utc(at or self.clock()), title=title[:300], text=text_, tags=" ".join(clean))
            )
            id_ = int(result.inserted_primary_key[0])
            if self.pg:
                pg_words.index(conn, "archival", [(id_, f"{title[:300]} {text_} {' '.join(clean)}")])
        self._embed_new()
        return id_

    # -- the model's tool calls ---------------------------------------------------------

    def record_tool_call(self, *, by: str, function: str, tool: str, args: dict, ok: bool, outcome: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(tool_calls).values(
                at=_utc(self.clock()), by=by[:64], function=function[:32], tool=tool[:64], args=args, ok=int(ok), outcome=outcome[:1000],
            ))

    def tool_calls(self, limit: int = 100) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tool_calls).order_by(tool_calls.c.id.desc()).limit(limit)).mappings().all()
        return [{**dict(r), "at": utc(r["at"]), "ok": bool(r["ok"])} for r in rows]

    # -- meaning ------------------------------------------------------------------------

    def _embed_new(self) -> None:
        """Vectors for what was just written; an embedder that fails leaves the entries pending, never lost."""
        if self.vectors is not None and not self.read_only:
            self.vectors.try_embed_pending()

    def embed_pending(self, progress=None) -> int:
        """Embed every entry still without a vector (raises EmbeddingError if the embedder fails)."""
        if self.vectors is None:
            raise MemoryError_("no embedder configured: set memory.embedder in mission.yaml")
        return self.vectors.embed_pending(progress=progress)

    def find(self, query: str, *, mode: str = "hybrid", since: datetime | None = None, until: datetime | None = None,
             kinds: list[str] | None = None, limit: int = 10):
        """Recall entries by words and meaning, best first (search.py): Letta's conversation_search."""
        from deskgate.memory.search import recall_hits

        return recall_hits(self, query, mode=mode, since=since, until=until, kinds=kinds, limit=limit)

    def find_documents(self, query: str, *, mode: str = "hybrid", tags: list[str] | None = None, limit: int = 10):
        """Archival documents by words and meaning, best first: Letta's archival_memory_search."""
        from deskgate.memory.search import archival_hits

        return archival_hits(self, query, mode=mode, tags=tags, limit=limit)

    def documents_between(self, since: datetime, until: datetime, *, tags: list[str] | None = None, limit: int = 5000) -> list[Document]:
        """Archival documents dated in [since, until), oldest first, with every tag given."""
        q = select(archival).where(archival.c.at >= _utc(since), archival.c.at < _utc(until)).order_by(archival.c.at, archival.c.id)
        wanted = set(tags or [])
        out: list[Document] = []
        with self.engine.connect() as conn:
            for r in conn.execute(q):
                if wanted <= set(r.tags.split()):
                    out.append(Document(r.id, _time(r.at), r.title, r.text, tuple(r.tags.split())))
                    if len(out) >= limit:
                        break
        return out

    def has_document(self, title: str) -> bool:
        """Whether the desk wrote a document of this title (one a model kept, tagged `by-model`, does not count)."""
        with self.engine.connect() as conn:
            tags = conn.execute(select(archival.c.tags).where(archival.c.title == title[:300])).scalars().all()
        return any("by-model" not in t.split() for t in tags)

    def has_recall(self, kind: str, ref: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(recall.c.id).where(recall.c.kind == kind, recall.c.ref == ref).limit(1)).first() is not None

    def archival_search(self, query: str | None = None, *, tags: list[str] | None = None, limit: int = 20) -> list[Document]:
        if self.pg:
            return self._archival_search_pg(query, tags=tags, limit=max(1, min(limit, 200)))
        params: dict[str, Any] = {"limit": max(1, min(limit, 200))}
        where = []
        if query:
            where.append("archival_fts MATCH :q")
            params["q"] = fts_query(query)
        for i, tag in enumerate(tags or []):
            if not TAG.fullmatch(tag.strip().lower()):
                raise MemoryError_(f"tag {tag!r} is not a tag: 1-40 of a-z, 0-9, '_' or '-'")
            where.append(f"(' ' || a.tags || ' ') LIKE :t{i}")
            params[f"t{i}"] = f"% {tag.strip().lower()} %"
        if query:
            sql = "SELECT a.id, a.at, a.title, a.text, a.tags FROM archival_fts JOIN archival a ON a.id = archival_fts.rowid"
        else:
            sql = "SELECT a.id, a.at, a.title, a.text, a.tags FROM archival a"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY a.id DESC LIMIT :limit"
        with self.engine.connect() as conn:
            rows = conn.execute(text(sql), params).all()
        return [Document(r[0], _time(r[1]), r[2], r[3], tuple(r[4].split())) for r in rows]


    def _archival_search_pg(self, query: str | None, *, tags: list[str] | None, limit: int) -> list[Document]:
        where, params = tag_filters(tags, "e")
        with self.engine.connect() as conn:
            if query:
                fts_query(query)
                found = pg_words.matches(conn, "archival", pg_words.query_terms(query), every=True, ranked=False,
                                         where=" AND ".join(where), params=params, limit=limit)
                ids = [i for _, i in found]
            else:
                sql = "SELECT e.id FROM archival e" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY e.id DESC LIMIT :limit"
                ids = [int(i) for (i,) in conn.execute(text(sql), {**params, "limit": limit})]
            rows = {r.id: r for r in conn.execute(select(archival).where(archival.c.id.in_(ids)))} if ids else {}
        return [Document(r.id, _time(r.at), r.title, r.text, tuple(r.tags.split())) for r in (rows[i] for i in ids if i in rows)]

def tag_filters(tags: list[str] | None, alias: str) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions requiring every tag on `alias`.tags, and their parameters; a tag that is not one is refused."""
    where, params = [], {}
    for i, tag in enumerate(tags or []):
        if not TAG.fullmatch(tag.strip().lower()):
            raise MemoryError_(f"tag {tag!r} is not a tag: 1-40 of a-z, 0-9, '_' or '-'")
        where.append(f"(' ' || {alias}.tags || ' ') LIKE :t{i}")
        params[f"t{i}"] = f"% {tag.strip().lower()} %"
    return where, params


def _pg_filters(since, until, kinds) -> dict[str, Any]:
    """matches()'s `where` and `params` for recall's date and kind filters (alias `e`)."""
    where, params = [], {}
    if since is not None:
        where.append("e.at >= :since")
        _db_time(since)  # the same refusal of an out-of-range time as on SQLite
        params["since"] = _utc(since)
    if until is not None:
        where.append("e.at < :until")
        _db_time(until)
        params["until"] = _utc(until)
    if kinds:  # as on SQLite: no kinds given, every kind
        where.append("e.kind = ANY(:kinds)")
        params["kinds"] = list(kinds)
    return {"where": " AND ".join(where), "params": params}


def _pg_rows_by_id(conn, ids: list[int]) -> list[tuple]:
    """Recall rows in the order of `ids`."""
    if not ids:
        return []
    rows = {r[0]: tuple(r) for r in conn.execute(select(recall.c.id, recall.c.at, recall.c.kind, recall.c.text, recall.c.ref, recall.c.meta).where(recall.c.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def _utc(dt: datetime) -> datetime:
    """Stored as UTC: SQLite keeps no zone, so a time in another zone would shift."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _db_time(dt: datetime) -> str:
    """How SQLAlchemy stores a DateTime in SQLite, for comparisons in raw SQL (a naive time is UTC)."""
    try:
        u = _utc(dt)
    except OverflowError:
        raise MemoryError_(f"{dt.isoformat()} is out of range") from None
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d} {u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}"


def _best_first(raw, query: str, since, until, kinds, limit: int) -> list[tuple[float, int]]:
    """(score, id) best first: from the rank index, or from FTS5 scoring every match where the index cannot answer."""
    matching = _matching(raw, query, since, until, kinds)
    if matching is None:
        return []
    words = _WORD.findall(query)[:32]
    tokens = ranking.terms(raw, words)
    single = [(w, t[0]) for w, t in zip(words, tokens) if t]  # a word of no token (`_`) is dropped, as FTS5 does
    upto = ranking.indexed_upto(raw)
    found = None
    if single and upto is not None and all(len(t) <= 1 for t in tokens):
        wanted = sorted({k for k in kinds if k in RECALL_KINDS}) if kinds else None
        if kinds and not wanted:
            return []  # no entry has an unknown kind
        dates = None
        if since is not None or until is not None:
            sql = "SELECT day FROM recall_days WHERE day >= ? AND day <= ? ORDER BY day"
            dates = ranking.when([d for (d,) in raw.execute(sql, _day_bounds(since, until))])
        found = ranking.top(
            raw,
            [w for w, _ in single],
            [t for _, t in single],
            upto=upto,
            kinds=wanted,
            dates=dates,
            since=_db_time(since) if since is not None else None,
            until=_db_time(until) if until is not None else None,
            k=limit,
        )
    if found is None:
        # FTS5 ranks by itself, scoring every match: the same ranking, slower for common words.
        where, params = matching
        sql = (
            "SELECT r.id, -recall_fts.rank FROM recall_fts JOIN recall r ON r.id = recall_fts.rowid "
            f"WHERE {where} ORDER BY recall_fts.rank, r.id DESC LIMIT :limit"
        )
        found = [(score, id_) for id_, score in raw.execute(sql, {**params, "limit": limit})]
    return found


def _matching(raw, query: str, since, until, kinds, fts: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """The WHERE clause over `recall_fts` joined to `recall r` for a query (every word, or the FTS5
    expression `fts`) and its filters; None if the window is empty."""
    where = ["recall_fts MATCH :q"]
    params: dict[str, Any] = {"q": fts if fts is not None else fts_query(query)}
    if since is not None:
        where.append("r.at >= :since")
        params["since"] = _db_time(since)
    if until is not None:
        where.append("r.at < :until")
        params["until"] = _db_time(until)
    if since is not None or until is not None:
        # The ids stored on the days the window touches, so the full-text index jumps to them.
        lo, hi = raw.execute(
            "SELECT min(lo), max(hi) FROM recall_days WHERE day >= ? AND day <= ?", _day_bounds(since, until)
        ).fetchone()
        if lo is None:
            return None
        where.append("recall_fts.rowid BETWEEN :lo AND :hi")
        params["lo"], params["hi"] = int(lo), int(hi)
    if kinds:
        names = [f":k{i}" for i in range(len(kinds))]
        where.append(f"r.kind IN ({', '.join(names)})")
        params.update({f"k{i}": k for i, k in enumerate(kinds)})
    return " AND ".join(where), params


def _day_bounds(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    return (
        _db_time(since)[:10] if since is not None else "0000-00-00",
        _db_time(until)[:10] if until is not None else "9999-99-99",
    )


def _rows_by_id(raw, ids: list[int]) -> list[tuple]:
    out: list[tuple] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        out += raw.execute(
            f"SELECT id, at, kind, text, ref, meta FROM recall WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ).fetchall()
    return out


def _time(value) -> datetime:
    if isinstance(value, datetime):
        return utc(value)  # type: ignore[return-value]
    return datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc)


def _entry(r) -> RecallEntry:
    meta = r[5]
    if isinstance(meta, str):
        meta = json.loads(meta)
    return RecallEntry(int(r[0]), _time(r[1]), r[2], r[3], r[4], meta or {})
