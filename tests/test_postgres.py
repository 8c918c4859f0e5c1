"""The factory's store on PostgreSQL (the shared-deployment backend), through the real bus.

Uses the machine's PostgreSQL at 127.0.0.1:5432 (database `test`), in a schema of
its own that is dropped afterwards.
"""

from __future__ import annotations

import uuid

import pytest
from conftest import P, directive
from sqlalchemy import create_engine, text
from test_factory import make_mission, running, submit

from deskgate.storage import schema_for

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url():
    schema = "deskgate_" + uuid.uuid4().hex[:10]
    engine = create_engine(PG)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:  # the URL's schema, and each store's beside it (storage.py: schema_for)
        for (name,) in conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname = :s OR nspname LIKE :p"),
                                    {"s": schema, "p": schema + "\\_%"}).all():
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


async def test_the_factory_runs_and_resumes_on_postgresql(bus, pg_url):
    """Every store on PostgreSQL (storage.url): the factory's, and the executor's, the pins and
    the accounts, which this desk had as files (made with its principals) and carries over."""
    mission = make_mission()
    bus.data_dir.keep_storage(pg_url)
    async with running(bus, mission, store_url=pg_url) as (factory, agent, cc, _):
        verdicts = await submit(agent, directive("pg1", notional_usd=20_000), directive("pg1"), directive("pg2", notional_usd=10_000))
        assert [v.decision for v in verdicts] == ["staged", "duplicate", "rejected"]
        outcomes = await cc.decide("pg1", "approve", P["alice"])
        assert [o.outcome for o in outcomes] == ["ordered", "executed"]
        await submit(agent, directive("pg3", asset="ETH", notional_usd=5_000))
    async with running(bus, mission, store_url=pg_url) as (factory, agent, cc, _):
        assert factory.beliefs.position("BTC") == pytest.approx(20_000.0)
        assert list(factory.beliefs.pending) == ["pg3"]
        (again,) = await submit(agent, directive("pg1"))
        assert again.decision == "duplicate"
        f = factory.funnel()
        assert (f.received, f.staged, f.executed, f.duplicates) == (5, 2, 1, 2)
        desk = f.agents["desk"]  # every directive here was signed by the desk's own agent, before and after the restart
        assert (desk.received, desk.staged, desk.executed, desk.duplicates) == (5, 2, 1, 2)
    engine = create_engine(PG)
    with engine.connect() as conn:
        for store in ("executor", "accounts", "pins-executor", "pins-factory"):
            assert not (bus.data_dir.state / f"{store}.db").exists()
        executor = schema_for(pg_url, "executor")
        assert conn.execute(text(f'SELECT directive_id, state FROM "{executor}".venue_orders')).all() == [("pg1", "ended")]
        assert conn.execute(text(f'SELECT count(*) FROM "{schema_for(pg_url, "pins-executor")}".principal_pins')).scalar() >= 1
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_driver_inserts_store_what_sqlalchemy_would(backend, pg_url, tmp_path):
    """The directive path's inserts bypass SQLAlchemy's statement layer: the rows must read
    back exactly as rows written through it do, on both backends."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    from deskgate.factory.store import FactoryStore, evaluations, intentions

    url = f"sqlite:///{tmp_path / 'f.db'}" if backend == "sqlite" else pg_url
    store = FactoryStore(url)
    at = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=timezone.utc)
    ev = dict(seq=1, directive_id="d1", decision="staged", primary_reason=None, verdict=b'{"v": 1}', published=False, at=at, agent="desk")
    it = dict(directive_id="d1", state="staged", asset="BTC", venue="binance", side="buy", notional_usd=1_000.5, explicit=True,
              four_eyes=False, price_at_staging=65_000.25, staged_at=at, expires_at=at, staged=b"\x00\xffstaged", staged_published=False,
              outcome_reason=None, updated_at=at, agent="desk")
    try:
        with store.begin() as conn:
            store.record_evaluations(conn, [ev])
            store.add_intentions(conn, [it])
            conn.execute(evaluations.insert(), [{**ev, "seq": 2, "directive_id": "d2"}])
            conn.execute(intentions.insert(), [{**it, "directive_id": "d2"}])
        with store.connect() as conn:
            e = [dict(r._mapping) for r in conn.execute(select(evaluations).order_by(evaluations.c.seq))]
            i = [dict(r._mapping) for r in conn.execute(select(intentions).order_by(intentions.c.directive_id))]
            assert store.intention(conn, "d1") == {**store.intention(conn, "d2"), "directive_id": "d1"}
        assert {**e[0], "seq": 2, "directive_id": "d2"} == e[1]
        assert {**i[0], "directive_id": "d2"} == i[1]
        assert bytes(i[0]["staged"]) == b"\x00\xffstaged" and i[0]["explicit"] is True
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_factory_database_from_before_agent_identities_gains_the_agent_columns(backend, pg_url, tmp_path):
    """Tables made without `agent` (an earlier version): opening the store adds the column,
    the old rows read as "no agent known", and new rows store it."""
    from datetime import datetime, timezone

    from sqlalchemy import Column, MetaData, Table, inspect, select

    from deskgate.factory.store import FactoryStore, evaluations, intentions

    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else pg_url
    engine = create_engine(url)
    before = MetaData()  # the factory's tables as an earlier version made them: two without `agent`
    old = Table("evaluations", before, *[Column(c.name, c.type, primary_key=c.primary_key) for c in evaluations.columns if c.name != "agent"])
    Table("intentions", before, *[Column(c.name, c.type, primary_key=c.primary_key) for c in intentions.columns if c.name != "agent"])
    from deskgate.factory.tables import metadata as factory_tables

    for t in factory_tables.tables.values():
        if t.name not in before.tables:
            t.to_metadata(before)
    before.create_all(engine)
    at = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(old.insert(), [dict(seq=1, directive_id="d0", decision="rejected", primary_reason="asset", verdict=b"{}", published=True, at=at)])
    assert "agent" not in {c["name"] for c in inspect(engine).get_columns("evaluations")}
    engine.dispose()
    store = FactoryStore(url)
    try:
        for table in ("evaluations", "intentions"):
            assert "agent" in {c["name"] for c in inspect(store.engine).get_columns(table)}, table
        with store.begin() as conn:
            store.record_evaluations(conn, [dict(seq=2, directive_id="d1", decision="staged", primary_reason=None, verdict=b"{}",
                                                 published=False, at=at, agent="alpha")])
        with store.connect() as conn:
            rows = conn.execute(select(evaluations.c.seq, evaluations.c.agent).order_by(evaluations.c.seq)).all()
        assert [tuple(r) for r in rows] == [(1, None), (2, "alpha")]
        FactoryStore(url).close()  # a second opening finds the column there
    finally:
        store.close()
