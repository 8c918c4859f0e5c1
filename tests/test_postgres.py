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

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url():
    schema = "deskgate_" + uuid.uuid4().hex[:10]
    engine = create_engine(PG)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


async def test_the_factory_runs_and_resumes_on_postgresql(bus, pg_url):
    mission = make_mission()
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
