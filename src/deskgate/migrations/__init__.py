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
    "executor": "executor_0001",
    "audit": "audit_0001",
    "accounts": "accounts_0001",
    "pins": "pins_0001",
}
# The stores a desk keeps, each with its branch.
STORES: dict[str, str] = {
    "factory": "factory",
    "executor": "executor",
    "audit": "audit",
    "accounts": "accounts",
    "pins-factory": "pins",
    "pins-executor": "pins",
}
VERSION_TABLE = "alembic_version"


class SchemaError(RuntimeError):
    """A store's schema cannot be used by this deskgate; the message says why and what to do."""


class StoreUnreachable(RuntimeError):
    """A store's database cannot be reached; the message names it (without its password)."""


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
            with _pg_lock(engine, schema_for(url, store)) as conn:
                schema = schema_for(url, store)
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                _adopt(conn, url, schema, adopt_tables)
                conn.commit()
            upgrade(engine, STORES[store])
            if legacy_sqlite is not None:
                _carry_sqlite(engine, store, legacy_sqlite, legacy_tables)
        else:
            upgrade(engine, STORES[store])
    except OperationalError as exc:
        engine.dispose()
        raise StoreUnreachable(f"cannot open the {store} store at {_shown(url)}: {str(exc.orig).strip()}") from None
    return engine


def schema_exists(url: str, store: str) -> bool:
    """Has a store's PostgreSQL schema been made (has the store ever been opened)?"""
    engine = store_engine(url, store)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema_for(url, store)}).first() is not None
    except OperationalError as exc:
        raise StoreUnreachable(f"cannot open the {store} store at {_shown(url)}: {str(exc.orig).strip()}") from None
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


def _adopt(conn: Connection, url: str, schema: str, tables: Iterable[str]) -> None:
    """Move a store's tables from the URL's own schema (where they were before stores had
    schemas of their own) into the store's schema: once, only while the store's is empty."""
    tables = list(tables)
    if not tables:
        return
    legacy = own_schema(url) or "public"
    insp = inspect(conn)
    if insp.get_table_names(schema=schema):
        return
    found = [t for t in tables if insp.has_table(t, schema=legacy)]
    for t in found:
        conn.exec_driver_sql(f'ALTER TABLE "{legacy}"."{t}" SET SCHEMA "{schema}"')


def _carry_sqlite(engine: Engine, store: str, path: Path, tables: Iterable) -> None:
    """Rows of a store that was a SQLite file carried into its new PostgreSQL store.

    The file is first renamed `.carrying` (after its write-ahead log is folded in), the
    rows copied in one transaction, then renamed `.moved-to-postgresql`: a crash at any
    point leaves either the file to carry again into an empty store, or a copy committed
    and a file whose rename is finished on the next open. Nothing is merged or deleted.
    """
    from sqlalchemy import Integer, func, insert, select

    from deskgate.storage import make_engine

    carrying = path.with_name(path.name + ".carrying")
    if not path.exists() and not carrying.exists():
        return
    tables = list(tables)
    with _pg_lock(engine, f"{store}/carry") as conn:
        has_rows = any(conn.execute(select(func.count()).select_from(t)).scalar() for t in tables)
        if path.exists():
            if has_rows:
                raise SchemaError(
                    f"the {store} store has rows both in {path} and in PostgreSQL (schema "
                    f"{schema_for(str(engine.url), store)}); deskgate does not merge them. Keep one: move {path} aside "
                    "if PostgreSQL's rows are the desk's, or empty that schema's tables to carry the file's"
                )
            old = make_engine(f"sqlite:///{path}")
            try:
                upgrade(old, STORES[store])
                with old.connect() as c:
                    c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                old.dispose()
            path.rename(carrying)
            for suffix in ("-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        if not has_rows:
            old = make_engine(f"sqlite:///{carrying}")
            try:
                upgrade(old, STORES[store])
                with old.connect() as src:
                    for t in tables:
                        rows = [dict(r._mapping) for r in src.execute(select(t))]
                        if rows:
                            conn.execute(insert(t), rows)
                        keys = list(t.primary_key.columns)
                        if len(keys) == 1 and isinstance(keys[0].type, Integer) and keys[0].autoincrement is not False:
                            # Rows inserted with their ids leave the id sequence behind them.
                            conn.execute(text(
                                f"SELECT setval(seq, coalesce((SELECT max({keys[0].name}) FROM {t.name}), 0) + 1, false) "
                                f"FROM pg_get_serial_sequence('{t.name}', '{keys[0].name}') AS seq WHERE seq IS NOT NULL"
                            ))
            finally:
                old.dispose()
            conn.commit()
        carrying.rename(path.with_name(path.name + ".moved-to-postgresql"))
        for suffix in ("-wal", "-shm"):
            carrying.with_name(carrying.name + suffix).unlink(missing_ok=True)


def _shown(url: str) -> str:
    from deskgate.paths import _redacted

    return _redacted(url)
