"""The stores' schemas under Alembic (migrations/), on SQLite and on the machine's
PostgreSQL: made fresh as the code describes them, a data directory from before adopted
with its rows, a newer schema refused, and every store in a schema of its own when the
desk shares one PostgreSQL database."""

from __future__ import annotations

import importlib
import json
import sqlite3
import threading
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import MetaData, create_engine, func, insert, inspect, select, text
from test_cli import run
from test_postgres import PG, pg_url  # noqa: F401 - the fixture: a fresh schema on the machine's PostgreSQL

from deskgate.migrations import HEADS, STORES, SchemaError, StoreUnreachable, open_store, upgrade
from deskgate.paths import DataDir
from deskgate.storage import make_engine, schema_for

MODULES = {
    "factory": ["deskgate.factory.tables"],
    "executor": ["deskgate.execution.store"],
    "audit": ["deskgate.audit.log", "deskgate.audit.log:fence_metadata"],
    "accounts": ["deskgate.people.accounts", "deskgate.identity.registry"],
    "pins": ["deskgate.people.pins"],
    "memory": ["deskgate.memory.store", "deskgate.memory.vectors:vector_metadata", "deskgate.agents.shared_state"],
}
AT = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def code_metadata(branch: str, dialect: str = "sqlite") -> MetaData:
    md = MetaData()
    modules = MODULES[branch] + (["deskgate.memory.pg_words:words_metadata"] if branch == "memory" and dialect == "postgresql" else [])
    for spec in modules:
        module, _, name = spec.partition(":")
        for t in getattr(importlib.import_module(module), name or "metadata").tables.values():
            t.to_metadata(md)
    return md


def described(engine) -> dict:
    """Every table's columns (name, type, nullable), indexes and primary key, as the database reports them."""
    insp = inspect(engine)
    out = {}
    for name in insp.get_table_names():
        if name == "alembic_version":
            continue
        cols = [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(name)]
        idx = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(name))
        out[name] = (cols, idx, insp.get_pk_constraint(name)["constrained_columns"])
    return out


def test_each_branch_head_is_the_newest_script():
    from alembic.script import ScriptDirectory

    from deskgate.migrations import HERE

    script = ScriptDirectory(str(HERE), version_locations=[str(HERE / "versions")])
    heads = {label: rev.revision for rev in map(script.get_revision, script.get_heads()) for label in rev.branch_labels}
    assert heads == HEADS
    assert set(STORES.values()) == set(HEADS)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("branch", sorted(MODULES))
def test_a_new_store_has_exactly_the_tables_the_code_describes(branch, backend, tmp_path, pg_url):  # noqa: F811
    store = "pins-factory" if branch == "pins" else branch
    if backend == "sqlite":
        migrated, made = f"sqlite:///{tmp_path / 'migrated.db'}", f"sqlite:///{tmp_path / 'made.db'}"
        made_engine = create_engine(made)
    else:
        migrated = pg_url
        made_engine = create_engine(pg_url)  # the URL's own schema, which no store uses
    engine = open_store(migrated, store)
    code_metadata(branch, backend).create_all(made_engine)
    assert described(engine) == described(made_engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEADS[branch]
    engine.dispose()
    made_engine.dispose()


def test_a_data_directory_from_before_versions_is_adopted_with_its_rows(tmp_path):
    """Stores made by an earlier deskgate (tables, rows, no version; the factory's tables
    without the columns added since) are brought to the head by `deskgate db upgrade`."""
    root = DataDir.at(tmp_path / "desk")
    root.state.mkdir(parents=True)
    for store, branch in STORES.items():
        engine = make_engine(f"sqlite:///{root.state / (store + '.db')}")
        code_metadata(branch).create_all(engine)
        engine.dispose()
    with sqlite3.connect(root.state / "factory.db") as db:  # as before agent identities: no `agent` columns
        for table in ("evaluations", "intentions"):
            cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] != "agent"]
            db.execute(f"CREATE TABLE old AS SELECT {', '.join(cols)} FROM {table}")
            db.execute(f"DROP TABLE {table}")
            db.execute(f"ALTER TABLE old RENAME TO {table}")
        db.execute("INSERT INTO evaluations (seq, directive_id, decision, verdict, published, at) VALUES (7, 'd7', 'staged', x'00', 1, '2026-03-02')")
    with sqlite3.connect(root.state / "pins-executor.db") as db:
        db.execute("INSERT INTO principal_pins VALUES ('alice', 'key-a', 'enrolled', '2026-03-02')")

    status = run("db", "status", "--data-dir", str(root.root), "--json")
    assert {s["store"]: s["revision"] for s in json.loads(status.stdout)} == dict.fromkeys(STORES)
    up = run("db", "upgrade", "--data-dir", str(root.root), "--json")
    rows = {s["store"]: s for s in json.loads(up.stdout)}
    assert {k: (v["was"], v["revision"]) for k, v in rows.items()} == {k: (None, HEADS[b]) for k, b in STORES.items()}
    with sqlite3.connect(root.state / "factory.db") as db:
        assert db.execute("SELECT seq, directive_id, agent FROM evaluations").fetchall() == [(7, "d7", None)]
        assert "agent" in [r[1] for r in db.execute("PRAGMA table_info(intentions)")]
    with sqlite3.connect(root.state / "pins-executor.db") as db:
        assert db.execute("SELECT name, public_key FROM principal_pins").fetchall() == [("alice", "key-a")]
    again = json.loads(run("db", "upgrade", "--data-dir", str(root.root), "--json").stdout)
    assert all(s["was"] == s["revision"] == HEADS[STORES[s["store"]]] for s in again)  # nothing left to do


def test_a_schema_from_a_newer_deskgate_is_refused_with_what_to_do(tmp_path):
    root = DataDir.at(tmp_path)
    root.state.mkdir(parents=True)
    path = root.state / "factory.db"
    url = f"sqlite:///{path}"
    open_store(url, "factory").dispose()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'factory_0099'")
    with pytest.raises(SchemaError, match=r"'factory_0099'.*newer deskgate.*never downgraded"):
        open_store(url, "factory")
    from deskgate.factory.store import FactoryStore

    with pytest.raises(SchemaError, match="newer deskgate"):
        FactoryStore(url)
    with sqlite3.connect(path) as db:  # nothing was changed by the refusals
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("factory_0099",)]
    proc = run("db", "upgrade", "--data-dir", str(root.root), check=False)
    assert proc.returncode == 2 and "newer deskgate" in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()


def test_a_store_of_another_kind_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    open_store(url, "audit").dispose()
    with pytest.raises(SchemaError, match="holds the audit schema, not the factory schema"):
        open_store(url, "factory")


def test_services_opening_one_new_file_together_all_find_it_made(tmp_path):
    """Every service opens accounts.db as it starts: the first upgrades it, the others wait for it."""
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    errors, engines = [], []

    def open_it():
        try:
            engines.append(open_store(url, "accounts"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEADS["accounts"]]


def test_a_postgresql_that_does_not_answer_is_named_without_its_password():
    with pytest.raises(StoreUnreachable, match=r"cannot open the executor store at postgresql\+psycopg://deskgate:\*\*\*@127.0.0.1:1/test") as exc:
        open_store("postgresql+psycopg://deskgate:s3cret-pw@127.0.0.1:1/test", "executor")
    assert "s3cret-pw" not in str(exc.value)


def test_storage_url_must_be_postgresql_and_a_desk_does_not_switch_databases(tmp_path, pg_url):  # noqa: F811
    from deskgate.config import Mission

    with pytest.raises(ValueError, match="a shared store is PostgreSQL"):
        Mission.model_validate({"storage": {"url": f"sqlite:///{tmp_path}/all.db"}})
    with pytest.raises(ValueError, match="is not a database URL"):
        Mission.model_validate({"storage": {"url": "not a url"}})
    root = DataDir.at(tmp_path / "desk")
    root.keep_storage(pg_url)
    assert root.storage_url() == pg_url and (root.storage_marker.stat().st_mode & 0o777) == 0o600
    assert root.store_url("executor") == pg_url
    with pytest.raises(ValueError, match=r"stores are in .*; storage.url names .*not moved by changing the URL"):
        root.keep_storage(PG + "?options=-csearch_path%3Delsewhere")
    with pytest.raises(ValueError, match="names no storage.url"):
        root.keep_storage(None, starting=True)
    root.keep_storage(None)  # a command run without the mission: the recorded database stands
    assert root.storage_url() == pg_url


def test_on_postgresql_each_store_keeps_its_own_schema(tmp_path, pg_url):  # noqa: F811
    """The factory's and the executor's pins share table names: a key pinned by one is not the other's."""
    from deskgate.people.pins import Pins

    root = DataDir.at(tmp_path / "desk")
    root.keep_storage(pg_url)
    factory_pins, executor_pins = Pins.for_service(root, "factory"), Pins.for_service(root, "executor")
    factory_pins.enroll("alice", Ed25519PrivateKey.generate().public_key())
    assert factory_pins.pinned("alice") is not None and executor_pins.pinned("alice") is None
    schema = pg_url.rsplit("%3D", 1)[1]
    engine = create_engine(PG)
    with engine.connect() as conn:
        names = set(conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": schema + "\\_%"}).scalars())
    engine.dispose()
    assert {schema_for(pg_url, "pins-factory"), schema_for(pg_url, "pins-executor")} <= names
    factory_pins.close()
    executor_pins.close()


def test_stores_that_were_files_are_carried_into_postgresql_once(tmp_path, pg_url):  # noqa: F811
    """A desk that set storage.url before every store moved keeps its executor record, accounts
    and pins: the rows go into PostgreSQL, the files are renamed, not deleted."""
    from deskgate.execution.store import ExecutionStore, refused_orders
    from deskgate.memory.store import Memory
    from deskgate.people.accounts import Accounts
    from deskgate.people.pins import Pins

    root = DataDir.at(tmp_path / "desk")
    root.state.mkdir(parents=True)
    accounts = Accounts.open(root)
    accounts.add("alice", "principal", "correct horse battery staple")
    accounts.record("alice", "login")
    key = Ed25519PrivateKey.generate().public_key()
    Pins.for_service(root, "executor").enroll("alice", key)
    old = ExecutionStore.open(root)
    with old.engine.begin() as conn:
        conn.execute(insert(refused_orders).values(seq=3, reason="forged", payload=b"\x00x", at=AT))
    memory = Memory.for_desk(root)
    memory.remember("insight", "funding turned negative on SOL perpetuals", at=AT)
    memory.archive("EOD review", "basis widened into the close", tags=["eod"], at=AT)
    memory.core_append("regime", "risk-off")
    for e in (accounts.engine, old.engine, memory.engine):
        e.dispose()

    root.keep_storage(pg_url)
    moved = Accounts.open(root)
    assert [a.name for a in moved.list()] == ["alice"] and moved.actions()[0]["action"] == "login"
    moved.record("alice", "logout")  # the ids go on after the carried rows
    assert [a["action"] for a in moved.actions()] == ["logout", "login"]
    assert Pins.for_service(root, "executor").pinned("alice") is not None
    assert Pins.for_service(root, "factory").pinned("alice") is None
    store = ExecutionStore.open(root)
    with store.engine.connect() as conn:
        assert conn.execute(select(refused_orders.c.seq, refused_orders.c.payload)).all() == [(3, b"\x00x")]
    memory = Memory.for_desk(root)  # its words are searchable there too
    assert [e.text for e in memory.search("funding SOL")] == ["funding turned negative on SOL perpetuals"]
    assert [r.entry.text for r in memory.rank("negative")] == ["funding turned negative on SOL perpetuals"]
    assert [d.title for d in memory.archival_search("basis", tags=["eod"])] == ["EOD review"]
    assert memory.block("regime").value == "risk-off"
    assert memory.remember("note", "after the move") > 1
    for name in ("accounts", "pins-executor", "executor", "memory"):
        assert not (root.state / f"{name}.db").exists()
        assert (root.state / f"{name}.db.moved-to-postgresql").exists()
    again = ExecutionStore.open(root)  # opened again: nothing carried twice
    with again.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(refused_orders)).scalar() == 1


def test_a_carry_cut_short_is_finished_and_a_file_beside_rows_is_refused(tmp_path, pg_url):  # noqa: F811
    from deskgate.execution.store import ExecutionStore, refused_orders

    root = DataDir.at(tmp_path / "desk")
    root.state.mkdir(parents=True)
    old = ExecutionStore.open(root)
    with old.engine.begin() as conn:
        conn.execute(insert(refused_orders).values(seq=1, reason="r", payload=b"p", at=AT))
    old.engine.dispose()
    # A crash after the file was renamed for carrying, before its rows were committed.
    (root.state / "executor.db").rename(root.state / "executor.db.carrying")
    root.keep_storage(pg_url)
    store = ExecutionStore.open(root)
    with store.engine.connect() as conn:
        assert conn.execute(select(refused_orders.c.seq)).scalars().all() == [1]
    assert (root.state / "executor.db.moved-to-postgresql").exists() and not (root.state / "executor.db.carrying").exists()
    # A file with rows of its own appearing beside a store that has rows is not merged into it.
    fresh = make_engine(f"sqlite:///{root.state / 'executor.db'}")
    upgrade(fresh, "executor")
    with fresh.begin() as conn:
        conn.execute(insert(refused_orders).values(seq=9, reason="elsewhere", payload=b"x", at=AT))
    fresh.dispose()
    with pytest.raises(SchemaError, match=r"rows both in .*executor.db \(1 rows, modified .*\) and in PostgreSQL \(schema .*, 1 rows\)"):
        ExecutionStore.open(root)
    assert (root.state / "executor.db").exists()


def test_a_factory_and_audit_log_that_were_files_go_on_in_postgresql(tmp_path, pg_url):  # noqa: F811
    """A SQLite desk given storage.url: its factory's record and its audit chain are carried,
    and the chain verifies across the move."""
    from deskgate.audit.keys import KeyStore
    from deskgate.audit.log import AuditLog, Record
    from deskgate.factory.store import FactoryStore, evaluations

    root = DataDir.at(tmp_path / "desk")
    root.state.mkdir(parents=True)
    (root.root / "keys").mkdir()
    factory = FactoryStore(root.sqlite_url("factory"))
    with factory.begin() as conn:
        factory.record_evaluations(conn, [dict(seq=1, directive_id="d1", decision="staged", primary_reason=None, verdict=b"{}",
                                                published=True, at=AT, agent="desk")])
    factory.close()
    log = AuditLog(root.sqlite_url("audit"), KeyStore(root.keys))
    for i in range(3):
        log.append([Record("note", f"x.{i}", f"r{i}", f"s{i}", None, None, "unsigned", f'{{"i": {i}}}')], AT)
    head = log.head
    log.engine.dispose()

    root.keep_storage(pg_url)
    factory = FactoryStore(pg_url, legacy_sqlite=root.state / "factory.db")
    with factory.connect() as conn:
        assert conn.execute(select(evaluations.c.seq, evaluations.c.directive_id)).all() == [(1, "d1")]
    factory.close()
    moved = AuditLog.open(root)
    assert moved.head == head and moved.size == 3
    moved.append([Record("note", "x.3", "r3", "s3", None, None, "unsigned", '{"i": 3}')], AT)
    assert moved.verify().ok
    assert (root.state / "factory.db.moved-to-postgresql").exists() and (root.state / "audit.db.moved-to-postgresql").exists()


def test_an_executor_record_from_before_venues_is_carried_with_its_answers(tmp_path, pg_url):  # noqa: F811
    """The executor's answers are what stops a second order: the oldest form of its file keeps them too."""
    from deskgate.execution.store import ExecutionStore, _legacy_filled

    root = DataDir.at(tmp_path / "desk")
    root.state.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{root.state / 'executor.db'}")
    _legacy_filled.metadata.create_all(engine)
    from deskgate.domain.execution import Fill

    fill = Fill(fill_id="f1", order_id="o1", directive_id="d1", venue="paper", asset="BTC", side="buy", status="filled",
                quantity=0.1, price=65_000.0, notional_usd=6_500.0, filled_at=AT)
    with engine.begin() as conn:
        conn.execute(insert(_legacy_filled).values(order_id="o1", seq=4, fill=fill.model_dump(mode="json"), published=True, at=AT))
    engine.dispose()
    root.keep_storage(pg_url)
    store = ExecutionStore.open(root)
    assert store.known("o1") and store.answered_as("d1") == "o1"


def test_a_copy_of_a_carried_file_is_set_aside_and_another_file_is_refused(tmp_path, pg_url):  # noqa: F811
    """A standby's machine has a copy of the data directory made before the move: its file holds
    the rows already carried, so it is set aside. A file with other rows is refused, not merged."""
    import shutil

    from deskgate.execution.store import ExecutionStore, refused_orders

    first, second = DataDir.at(tmp_path / "a"), DataDir.at(tmp_path / "b")
    first.state.mkdir(parents=True)
    store = ExecutionStore.open(first)
    with store.engine.begin() as conn:
        conn.execute(insert(refused_orders).values(seq=1, reason="r", payload=b"p", at=AT))
    store.engine.dispose()
    shutil.copytree(first.root, second.root)
    (second.state / "executor.db.extra").write_bytes((second.state / "executor.db").read_bytes())
    for d in (first, second):
        d.keep_storage(pg_url)
    ExecutionStore.open(first).engine.dispose()
    again = ExecutionStore.open(second)  # the same rows: set aside, nothing doubled
    with again.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(refused_orders)).scalar() == 1
    assert (second.state / "executor.db.moved-to-postgresql").exists()
    other = DataDir.at(tmp_path / "c")
    other.state.mkdir(parents=True)
    diverged = ExecutionStore.open(other)
    with diverged.engine.begin() as conn:
        conn.execute(insert(refused_orders).values(seq=2, reason="other", payload=b"q", at=AT))
    diverged.engine.dispose()
    other.keep_storage(pg_url)
    with pytest.raises(SchemaError, match="not the ones carried there.*move .*executor.db aside"):
        ExecutionStore.open(other)
    assert (other.state / "executor.db").exists()


def test_another_applications_tables_in_the_urls_schema_are_left_alone(pg_url):  # noqa: F811
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id int PRIMARY KEY)"))
        conn.execute(text("INSERT INTO orders VALUES (1)"))
    open_store(pg_url, "factory").dispose()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM orders")).scalars().all() == [1]
    engine.dispose()


def test_commands_do_not_move_a_desk_and_db_upgrade_waits_for_it_to_stop(tmp_path, pg_url):  # noqa: F811
    import fcntl

    root = DataDir.at(tmp_path / "desk")
    root.state.mkdir(parents=True)
    mission = tmp_path / "mission.yaml"
    mission.write_text(f"data_dir: {root.root}\nstorage:\n  url: {pg_url}\n")
    run("db", "status", "--mission", str(mission), "--json")
    assert root.storage_url() is None  # looking changes nothing
    with open(root.root / "up.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as `deskgate up` holds it
        proc = run("db", "upgrade", "--mission", str(mission), check=False)
        assert proc.returncode == 2 and "is running" in " ".join(proc.stderr.decode().split())
    assert root.storage_url() is None
    run("db", "upgrade", "--mission", str(mission))
    assert root.storage_url() == pg_url
    other = tmp_path / "other.yaml"
    other.write_text(f"data_dir: {root.root}\nstorage:\n  url: postgresql+psycopg://desk:hunter2@127.0.0.1:5432/test\n")
    proc = run("db", "status", "--mission", str(other), check=False)
    said = " ".join(proc.stderr.decode().split())
    assert proc.returncode == 2 and "not moved by changing the URL" in said and "hunter2" not in said


def test_a_storage_url_in_an_error_never_shows_its_password():
    from deskgate.config import MissionError, parse_mission

    for url in ("mysql://alice:S3cret@db/desk", "postgres://alice:S3'cret word@db:bad/desk"):
        with pytest.raises(MissionError) as exc:
            parse_mission({"storage": {"url": url}})
        assert "storage.url" in str(exc.value) and "S3" not in str(exc.value) and "word" not in str(exc.value)


def test_db_upgrade_before_the_first_start_enrols_the_principals_of_a_desk_from_before_pins(tmp_path):
    """Made by `deskgate db upgrade` rather than by its service, a pin store still enrols the
    desk's principals once, as a service's first start does."""
    from deskgate.people.accounts import Accounts
    from deskgate.people.pins import Pins
    from deskgate.people.principals import Principals

    root = DataDir.at(tmp_path / "desk")
    root.state.mkdir(parents=True)
    (root.root / "keys").mkdir()
    accounts = Accounts.open(root)
    accounts.add("alice", "principal", "correct horse battery staple")
    Principals(accounts, legacy_dir=root.keys).make_key("alice", "correct horse battery staple")
    accounts.engine.dispose()
    for service in ("factory", "executor"):
        (root.state / f"pins-{service}.db").unlink(missing_ok=True)  # as before pins
    run("db", "upgrade", "--data-dir", str(root.root))
    for service in ("factory", "executor"):
        assert Pins.for_service(root, service).pinned("alice") is not None


def test_a_file_still_in_use_is_not_carried_and_an_empty_one_is_set_aside(tmp_path, pg_url):  # noqa: F811
    """A write-ahead log another process holds open is never left behind by a rename: the carry
    is refused until that process is gone, and then carries every row. An empty file beside a
    store with rows is no conflict."""
    from deskgate.execution.store import ExecutionStore, refused_orders

    root = DataDir.at(tmp_path / "desk")
    root.state.mkdir(parents=True)
    path = root.state / "executor.db"
    old = ExecutionStore.open(root)
    with old.engine.begin() as conn:
        conn.execute(insert(refused_orders).values(seq=1, reason="first", payload=b"p", at=AT))
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM refused_orders").fetchall()  # a snapshot held open: the log cannot be folded in
    with old.engine.begin() as conn:
        conn.execute(insert(refused_orders), [dict(seq=i, reason="later", payload=b"p", at=AT) for i in range(2, 52)])
    old.engine.dispose()
    root.keep_storage(pg_url)
    with pytest.raises(SchemaError, match="in use by another process"):
        ExecutionStore.open(root)
    assert path.exists()
    reader.rollback()
    reader.close()
    store = ExecutionStore.open(root)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(refused_orders)).scalar() == 51
    empty = make_engine(f"sqlite:///{path}")
    upgrade(empty, "executor")
    empty.dispose()
    ExecutionStore.open(root).engine.dispose()  # no conflict: set aside
    assert not path.exists() and (root.state / "executor.db.moved-to-postgresql.2").exists()
