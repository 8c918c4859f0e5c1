"""Every store a desk keeps, by name: where it is and how it is opened, for `deskgate db`
and for `deskgate up`'s check of a shared database before anything starts.

Each service opens its own stores (and upgrades them) as it starts; this module only
gathers them in one place. The news feed's state (which items were read and released)
stays a SQLite file whatever storage.url says: it is the feed's own, not the desk's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from deskgate.migrations import HEADS, STORES, open_store, status
from deskgate.paths import DataDir, _redacted


@dataclass(frozen=True)
class StoreState:
    store: str
    where: str  # a SQLite file, or PostgreSQL's schema (without a password)
    was: str | None  # the revision before this run (None: new, or from before Alembic)
    now: str | None
    head: str


def open_engine(data_dir: DataDir, store: str) -> Engine:
    """A store of the desk, brought to its head, as its service opens it."""
    if store == "accounts":
        from deskgate.people.accounts import Accounts

        return Accounts.open(data_dir).engine
    if store.startswith("pins-"):
        from deskgate.audit.keys import KeyStore
        from deskgate.people.pins import Pins, enroll_everyone_once

        pins = Pins.for_service(data_dir, store.removeprefix("pins-"))
        # A store made here (before its service starts) gets what the service would give a
        # new one: a data directory from before pins has its principals enrolled once.
        enroll_everyone_once(pins, KeyStore.for_desk(data_dir, pins=pins).principals)
        return pins.engine
    if store == "memory":
        # The schema only (and a file carried in): core blocks, FTS5 and postings are the
        # memory's own to set up when the agents open it with the mission's limits.
        from deskgate.memory.store import metadata as memory_metadata
        from deskgate.memory.vectors import vector_metadata

        url = data_dir.storage_url()
        if url is None:
            return open_store(f"sqlite:///{data_dir.memory_db}", "memory")
        tables = [*memory_metadata.tables.values(), *vector_metadata.tables.values()]
        return open_store(url, "memory", legacy_sqlite=data_dir.memory_db, legacy_tables=tables)
    if store == "executor":
        from deskgate.execution.store import ExecutionStore

        return ExecutionStore.open(data_dir).engine
    if store in ("factory", "audit"):
        from deskgate.audit.log import metadata as audit_metadata
        from deskgate.factory.tables import metadata as factory_metadata

        tables = (factory_metadata if store == "factory" else audit_metadata).tables
        url = data_dir.store_url(store)
        legacy = None if url.startswith("sqlite") else data_dir.state / f"{store}.db"
        return open_store(url, store, adopt_tables=tables, legacy_sqlite=legacy, legacy_tables=tables.values())
    raise ValueError(f"no store named {store!r}; one of {', '.join(STORES)}")


def where(data_dir: DataDir, store: str) -> str:
    """A store's place, for people: its file, or the shared database's schema (no password)."""
    from deskgate.storage import schema_for

    shared = data_dir.storage_url()
    if shared is None:
        return str(data_dir.state / f"{store}.db")
    return f"{_redacted(shared)} schema {schema_for(shared, store)}"


def revision(data_dir: DataDir, store: str) -> str | None:
    """The revision a store is at, read without making or changing anything (None: not made
    yet, or made before Alembic)."""
    from sqlalchemy.exc import OperationalError

    from deskgate.migrations import unreachable
    from deskgate.storage import make_engine, store_engine

    shared = data_dir.storage_url()
    if shared is None:
        path = data_dir.state / f"{store}.db"
        if not path.exists():
            return None
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = store_engine(shared, store)
    try:
        return status(engine, STORES[store])[0]
    except OperationalError as exc:
        raise unreachable(store, where(data_dir, store), exc) from None
    finally:
        engine.dispose()


def states(data_dir: DataDir) -> list[StoreState]:
    """Each store's revision beside its head, changing nothing."""
    out = []
    for store, branch in STORES.items():
        now = revision(data_dir, store)
        out.append(StoreState(store, where(data_dir, store), now, now, HEADS[branch]))
    return out


def upgrade_all(data_dir: DataDir, progress=None) -> list[StoreState]:
    """Every store brought to its head (made if missing; a file from before a shared database
    carried into it), one at a time, `progress(store)` after each."""
    out = []
    for store, branch in STORES.items():
        before = revision(data_dir, store)
        engine = open_engine(data_dir, store)
        try:
            now = status(engine, branch)[0]
        finally:
            engine.dispose()
        out.append(StoreState(store, where(data_dir, store), before, now, HEADS[branch]))
        if progress is not None:
            progress(store)
    return out
