"""Database engines: SQLite under the data directory by default, PostgreSQL by URL."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine


def make_engine(url: str, *, background_checkpoint: bool = False) -> Engine:
    """`background_checkpoint`: commits never checkpoint; run a Checkpointer alongside."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=5000")
            # WAL: readers never block the writer. NORMAL: a commit survives a
            # process crash (kill -9); only an OS crash can lose the last commits.
            _retry_locked(lambda: cur.execute("PRAGMA journal_mode=WAL"))
            cur.execute("PRAGMA synchronous=NORMAL")
            if background_checkpoint:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def schema_for(url: str, store: str) -> str:
    """A store's PostgreSQL schema: `<base>_<store>`, where base is the URL's own search_path
    (`?options=-csearch_path=NAME`) or `deskgate`. Stores keep their tables apart this way:
    the factory's and the executor's pins share table names."""
    return f"{own_schema(url) or 'deskgate'}_{store.replace('-', '_')}"


def own_schema(url: str) -> str | None:
    """The first schema of the search_path a URL sets, if any."""
    import re
    from urllib.parse import unquote

    from sqlalchemy.engine import make_url

    options = make_url(url).query.get("options") or ""
    if isinstance(options, tuple):
        options = " ".join(options)
    m = re.search(r"search_path\s*=\s*([^\s,]+)", unquote(options))
    return m.group(1).strip('"') if m else None


def store_engine(url: str, store: str, *, background_checkpoint: bool = False) -> Engine:
    """An engine for one store: its SQLite file, or its own schema of the shared PostgreSQL."""
    if url.startswith("sqlite"):
        return make_engine(url, background_checkpoint=background_checkpoint)
    import re
    from urllib.parse import unquote

    from sqlalchemy.engine import make_url

    given = make_url(url).query.get("options") or ""
    given = unquote(" ".join(given) if isinstance(given, tuple) else given)
    # The URL's other options (a statement_timeout, say) are kept; its search_path is the store's base.
    others = re.sub(r"-c\s*search_path\s*=\s*\S+", "", given).strip()
    options = f"{others} -csearch_path={schema_for(url, store)}".strip()
    return create_engine(url, pool_pre_ping=True, connect_args={"options": options, "connect_timeout": 10})


def _retry_locked(run, seconds: float = 10.0) -> None:
    """Services start together and open the same files (accounts.db): setting the journal
    mode can meet another process's lock without SQLite's busy handler being asked
    (while a first opener recovers or converts the file). Try again for a while."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            run()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def utc(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


class UntilChanged:
    """Answers read from SQLite databases, kept until any of them changes.

    SQLite's `PRAGMA data_version` changes whenever another connection (another process,
    or another connection of this one) commits to the database. It is asked on a
    connection of our own in autocommit mode, which never writes and never holds a read
    transaction open (inside one the value would stand still). So a kept answer is never
    older than the last commit: what a fresh read would give, without the reads. If the
    question cannot be asked, nothing is kept and the answer is read afresh.
    """

    def __init__(self, *engines: Engine):
        if any(e.dialect.name != "sqlite" or not e.url.database for e in engines):
            raise ValueError("UntilChanged watches SQLite database files only")
        self._watch = [sqlite3.connect(e.url.database, isolation_level=None, check_same_thread=False) for e in engines]
        self._versions: list[int] | None = None
        self._answers: dict = {}

    def _current(self) -> list[int] | None:
        try:
            out = []
            for conn in self._watch:
                if conn.in_transaction:
                    conn.rollback()
                out.append(conn.execute("PRAGMA data_version").fetchone()[0])
            return out
        except sqlite3.Error:
            return None

    def get(self, key, compute):
        versions = self._current()
        if versions is None:
            self._versions = None
            self._answers.clear()
            return compute()
        if versions != self._versions:
            self._answers.clear()
            self._versions = versions
        if key not in self._answers:
            answer = compute()
            if self._current() != versions:
                return answer  # the answer may straddle a change (our own write, too): use it, do not keep it
            self._answers[key] = answer
        return self._answers[key]

    def close(self) -> None:
        for conn in self._watch:
            conn.close()


class Checkpointer:
    """Copies SQLite's write-ahead log into the database from a background thread.

    SQLite would otherwise do it inside whichever commit crosses the threshold,
    stalling the service loop for that commit. A passive checkpoint never blocks
    the writer; the thread runs without the GIL while SQLite works.
    """

    def __init__(self, engine: Engine, every_s: float = 1.0):
        import threading

        self.engine = engine
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> Checkpointer:
        if self.engine.dialect.name == "sqlite":
            self._thread.start()
        return self

    def _run(self) -> None:
        raw = self.engine.raw_connection()
        try:
            while not self._stop.wait(self.every_s):
                raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            raw.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
