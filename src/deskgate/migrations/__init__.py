"""The stores' schemas, versioned by Alembic: one branch per kind of store, the same
revisions on SQLite and PostgreSQL.

A store is brought to its branch's head when a service or command opens it, and by
`deskgate db upgrade`. Opening is cheap when nothing is due: the version row is read
with plain SQL and Alembic is imported only when a revision must run (every service
opens several stores at start).

A database from before Alembic has the tables but no version: each branch's first
revision makes what is missing and adds the columns added since, so it adopts such a
database instead of failing on tables that exist. A database carrying a revision this
deskgate does not know was written by a newer one; it is refused, never downgraded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from deskgate.storage import own_schema, schema_for, store_engine

HERE = Path(__file__).parent
# Each branch's newest revision. tests/test_migrations.py checks these against the scripts.
HEADS: dict[str, str] = {
    "factory": "factory_0001",
    "executor": "executor_0002",
    "audit": "audit_0002",
    "accounts": "accounts_0001",
    "pins": "pins_0001",
    "memory": "memory_0002",
}
# The stores a desk keeps, each with its branch.
STORES: dict[str, str] = {
    "factory": "factory",
    "executor": "executor",
    "audit": "audit",
    "accounts": "accounts",
    "pins-factory": "pins",
    "pins-executor": "pins",
    "memory": "memory",
}
VERSION_TABLE = "alembic_version"


class SchemaError(RuntimeError):
    """A store's schema cannot be used by this deskgate; the message says why and what to do."""


class StoreUnreachable(RuntimeError):
    """A store's database cannot be reached; the message names it (without its password)."""


def unreachable(store: str, where: str, exc: OperationalError) -> StoreUnreachable:
    """The error for a store whose database did not answer: which store, where (no password), why."""
    return StoreUnreachable(f"cannot open the {store} store at {where}: {str(exc.orig).strip()}")


def open_store(
    url: str, store: str, *, adopt_tables: Iterable[str] = (), legacy_sqlite: Path | None = None,
    legacy_tables: Iterable = (), background_checkpoint: bool = False,
) -> Engine:
    """An engine for a store whose schema is at its branch's head.

    On PostgreSQL the store's schema is made if missing. `adopt_tables`: a store that used
    the URL's own schema before stores had schemas of their own has its tables moved into
    its schema. `legacy_sqlite`: a store that was a SQLite file even with storage.url set
    has its rows carried into the (empty) new store, and the file renamed, not deleted.
    """
    if store not in STORES:
        raise ValueError(f"no store named {store!r}; one of {', '.join(STORES)}")
    engine = store_engine(url, store, background_checkpoint=background_checkpoint)
    try:
        if engine.dialect.name == "postgresql":
            if _ready(engine, STORES[store], legacy_sqlite):
                return engine  # the common case, every start after the first: one query, no lock
            with _pg_lock(engine, schema_for(url, store)) as conn:
                schema = schema_for(url, store)
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                _adopt(conn, url, store, schema, adopt_tables)
                conn.commit()
            upgrade(engine, STORES[store])
            if legacy_sqlite is not None:
                _carry_sqlite(engine, store, legacy_sqlite, legacy_tables)
        else:
            upgrade(engine, STORES[store])
    except OperationalError as exc:
        engine.dispose()
        raise unreachable(store, _shown(url), exc) from None
    return engine


def _ready(engine: Engine, branch: str, legacy_sqlite: Path | None) -> bool:
    """A PostgreSQL store at its head with no file waiting to be carried into it."""
    if legacy_sqlite is not None and any(
        p.exists() for p in (legacy_sqlite, legacy_sqlite.with_name(legacy_sqlite.name + ".carrying"))
    ):
        return False
    with engine.connect() as conn:
        return current(conn) == {HEADS[branch]}


def schema_exists(url: str, store: str) -> bool:
    """Has a store's PostgreSQL schema been made (has the store ever been opened)?"""
    engine = store_engine(url, store)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema_for(url, store)}).first() is not None
    except OperationalError as exc:
        raise unreachable(store, _shown(url), exc) from None
    finally:
        engine.dispose()


def current(conn: Connection) -> set[str]:
    """The revisions a database is at (none: new, or from before Alembic)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return set()
    return {r[0] for r in conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")}


def upgrade(engine: Engine, branch: str) -> str | None:
    """Bring a store to its branch's head. Returns the revision it was at when something
    ran (None when it was new), or the head when nothing was due."""
    head = HEADS[branch]
    with engine.connect() as conn:
        at = current(conn)
    if at == {head}:
        return head
    with _exclusive(engine) as conn:
        at = current(conn)  # another process may have done it while we waited
        if at == {head}:
            conn.commit()
            return head
        _refuse_unknown(at, branch, engine)
        _run_alembic(conn, branch)
        conn.commit()
    return next(iter(at), None)


def status(engine: Engine, branch: str) -> tuple[str | None, str]:
    """(the revision a store is at, its branch's head)."""
    with engine.connect() as conn:
        at = current(conn)
    return (next(iter(sorted(at)), None), HEADS[branch])


def _refuse_unknown(at: set[str], branch: str, engine: Engine) -> None:
    if not at:
        return
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    script = _script(ScriptDirectory)
    for rev in at:
        try:
            known = script.get_revision(rev)
        except CommandError:
            known = None
        if known is None:
            raise SchemaError(
                f"the {branch} store at {_shown(str(engine.url))} is at schema revision {rev!r}, which this deskgate does "
                f"not know (its newest is {HEADS[branch]!r}): it was written by a newer deskgate. Run that version, "
                "or restore a backup taken before it; a schema is never downgraded"
            )
        if branch not in (known.branch_labels or set()) and not any(branch in (r.branch_labels or ()) for r in script.iterate_revisions(rev, "base")):
            raise SchemaError(
                f"the store at {_shown(str(engine.url))} holds the {sorted(known.branch_labels or ['?'])[0]} schema, "
                f"not the {branch} schema: two stores share one database file or schema"
            )


def _script(ScriptDirectory):
    return ScriptDirectory(str(HERE), version_locations=[str(HERE / "versions")])


def _run_alembic(conn: Connection, branch: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(HERE / "versions"))
    config.attributes["connection"] = conn
    command.upgrade(config, f"{branch}@head")


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """One migrator at a time: SQLite's write lock taken up front (a deferred transaction
    would fail, not wait, when two services upgrade one file), PostgreSQL's advisory lock."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
    else:
        with _pg_lock(engine, str(engine.url) + "/migrate") as conn:
            yield conn


@contextlib.contextmanager
def _pg_lock(engine: Engine, name: str) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": "deskgate:" + name})
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": "deskgate:" + name})
            conn.commit()


# The tables that show a store of this kind sits in the URL's own schema (where the factory
# and the audit log were before stores had schemas of their own): a few of its own, so
# another application's `orders` or `fills` is never taken for the desk's.
ADOPT_MARKERS: dict[str, tuple[str, ...]] = {
    "factory": ("evaluations", "intentions", "outbox"),
    "audit": ("audit_entries", "audit_checkpoints"),
}


def _adopt(conn: Connection, url: str, store: str, schema: str, tables: Iterable[str]) -> None:
    """Move a store's tables from the URL's own schema into the store's schema: once, only
    while the store's is empty, and only when that schema holds this kind of store. Every
    instance of the service must be stopped first (docs/DEPLOY.md): one still running an
    earlier deskgate would go on in the old place."""
    tables = list(tables)
    markers = ADOPT_MARKERS.get(store, ())
    if not tables or not markers:
        return
    legacy = own_schema(url) or "public"
    insp = inspect(conn)
    if insp.get_table_names(schema=schema):
        return
    if not all(insp.has_table(t, schema=legacy) for t in markers):
        return
    for t in tables:
        if insp.has_table(t, schema=legacy):
            conn.exec_driver_sql(f'ALTER TABLE "{legacy}"."{t}" SET SCHEMA "{schema}"')


CARRY_CHUNK = 5_000  # rows read and written at a time while carrying a file


def _carry_sqlite(engine: Engine, store: str, path: Path, tables: Iterable) -> None:
    """Rows of a store that was a SQLite file carried into its new PostgreSQL store.

    Under a lock, the file is renamed `.carrying` (after its write-ahead log is folded in),
    its rows copied in one transaction with a digest of them recorded beside, then the file
    renamed `.moved-to-postgresql`. A crash at any point leaves either the file to carry again
    into an empty store, or a copy committed and a rename finished on the next open. A file
    whose rows are those already carried (a copy of the data directory made before, on a
    standby's machine) is set aside; any other file beside a store with rows is refused.
    """
    from sqlalchemy import func, select

    carrying = path.with_name(path.name + ".carrying")
    moved = path.with_name(path.name + ".moved-to-postgresql")
    schema = schema_for(str(engine.url), store)
    # The fence's row is the schema's own (made by its revision), not the desk's: a file never
    # held a standby's epoch (standbys need PostgreSQL), so it is neither compared nor copied.
    tables = [t for t in tables if t.name != "fence"]
    with _pg_lock(engine, f"{schema}/carry") as conn:
        if not path.exists() and not carrying.exists():
            return  # nothing to carry, or another process carried it while we waited
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS carried_files (digest VARCHAR(64) PRIMARY KEY, file TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        conn.commit()
        has_rows = any(conn.execute(select(func.count()).select_from(t)).scalar() for t in tables)
        if path.exists():
            digest, file_rows = _prepare_file(path, store, tables)
            if has_rows:
                if file_rows == 0 or conn.execute(text("SELECT 1 FROM carried_files WHERE digest = :d"), {"d": digest}).first():
                    _set_aside(path, moved)  # empty, or the rows already carried: a copy of this desk's file
                    return
                db_rows = sum(conn.execute(select(func.count()).select_from(t)).scalar() for t in tables)
                raise SchemaError(
                    f"the {store} store has rows both in {path} ({file_rows} rows, modified "
                    f"{_mtime(path)}) and in PostgreSQL (schema {schema}, {db_rows} rows), and the file's rows are not "
                    f"the ones carried there; deskgate does not merge them. If PostgreSQL's are the desk's (a file "
                    f"left from before the desk moved), move {path} aside"
                )
            if carrying.exists():
                raise SchemaError(f"both {path} and {carrying} exist: one carry was cut short and another file appeared; keep one")
            path.rename(carrying)
            _drop_empty_sidecars(path)
        if not has_rows:
            _copy_rows(conn, store, carrying, tables)
            conn.commit()
        _set_aside(carrying, moved)


def _prepare_file(path: Path, store: str, tables: list) -> tuple[str, int]:
    """Bring a file to its branch's head, fold its write-ahead log in, and digest and count its
    rows. A log that cannot be folded in whole (another process reads or writes the file) is
    refused: renaming the file without it would lose what it holds."""
    import sqlite3

    from sqlalchemy import func, select

    from deskgate.storage import make_engine

    old = make_engine(f"sqlite:///{path}")
    try:
        upgrade(old, STORES[store])
        with old.connect() as c:
            busy, log, done = c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            if busy or (log > 0 and log != done):
                raise SchemaError(
                    f"{path} is in use by another process (its write-ahead log could not be folded in: {done} of {log} "
                    "pages); stop every deskgate process using this data directory, then start again"
                )
            rows = sum(c.execute(select(func.count()).select_from(t)).scalar() for t in tables)
            return _digest(c, tables), rows
    except (sqlite3.Error, OperationalError) as exc:
        raise SchemaError(f"cannot read {path} to carry it into PostgreSQL: {exc}") from None
    finally:
        old.dispose()


def _mtime(path: Path) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _drop_empty_sidecars(path: Path) -> None:
    """A file's -wal and -shm, once its log is folded in: an empty log and the shared-memory
    index go; a log that still holds anything is kept, renamed beside the file."""
    wal, shm = path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
    if wal.exists():
        if wal.stat().st_size == 0:
            wal.unlink()
        else:
            wal.rename(wal.with_name(wal.name + ".kept"))
    shm.unlink(missing_ok=True)


def _digest(conn: Connection, tables: list) -> str:
    import hashlib

    from sqlalchemy import select

    h = hashlib.sha256()
    for t in tables:
        h.update(t.name.encode())
        for row in conn.execute(select(t).order_by(*t.primary_key.columns)):
            h.update(repr(tuple(_aware(v) for v in row)).encode())
    return h.hexdigest()


def _aware(value):
    """SQLite hands back naive datetimes, all UTC: PostgreSQL would read them in its own zone."""
    from datetime import datetime, timezone

    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _copy_rows(conn: Connection, store: str, carrying: Path, tables: list) -> None:
    from sqlalchemy import Integer, insert, select
    from sqlalchemy.exc import DataError, IntegrityError

    from deskgate.storage import make_engine

    old = make_engine(f"sqlite:///{carrying}")
    try:
        with old.connect() as src:
            for t in tables:
                result = src.execute(select(t).order_by(*t.primary_key.columns))
                while rows := result.fetchmany(CARRY_CHUNK):
                    try:
                        conn.execute(insert(t), [{k: _aware(v) for k, v in r._mapping.items()} for r in rows])
                    except (DataError, IntegrityError) as exc:
                        raise SchemaError(
                            f"a row of {t.name} in {carrying} cannot be written to PostgreSQL ({str(exc.orig).strip()}); "
                            "nothing was carried. Fix or remove that row in the file, and start again"
                        ) from None
                keys = list(t.primary_key.columns)
                if len(keys) == 1 and isinstance(keys[0].type, Integer) and keys[0].autoincrement is not False:
                    # Rows inserted with their ids leave the id sequence behind them.
                    conn.execute(text(
                        f"SELECT setval(seq, coalesce((SELECT max({keys[0].name}) FROM {t.name}), 0) + 1, false) "
                        f"FROM pg_get_serial_sequence('{t.name}', '{keys[0].name}') AS seq WHERE seq IS NOT NULL"
                    ))
            conn.execute(text("INSERT INTO carried_files (digest, file) VALUES (:d, :f) ON CONFLICT DO NOTHING"),
                         {"d": _digest(src, tables), "f": str(carrying.name.removesuffix(".carrying"))})
    finally:
        old.dispose()


def _set_aside(path: Path, moved: Path) -> None:
    """Rename a carried file out of the way; an earlier one set aside keeps its name."""
    target, n = moved, 1
    while target.exists():
        n += 1
        target = moved.with_name(f"{moved.name}.{n}")
    path.rename(target)
    _drop_empty_sidecars(path)


def _shown(url: str) -> str:
    from deskgate.paths import _redacted

    return _redacted(url)
