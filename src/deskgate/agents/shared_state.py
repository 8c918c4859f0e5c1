"""The agents' state (agents/desk.py: AgentState) and their lease, in the desk's shared store.

With `storage.url`, the state is a row of the memory's schema rather than `state/agents.json`, so
that a standby agents service on another machine takes over from what the last holder saved, not
from its own copy of the file, as old as the copy. The file is read once, while the row is empty,
and kept. The same row is the agents' lease (store_lease.py): the agent role may write no key in
the bus, so the desk's own agents cannot hold their lease there.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, Table, Text, select, update
from sqlalchemy.engine import Engine

from deskgate.store_lease import StoreLease, fence, lease_columns

# Made, with its one row, by migrations/versions/memory_0002_agents_state.py; kept out of the
# memory's own metadata, so a memory file carried into PostgreSQL neither brings nor compares it.
metadata = MetaData()
agents_state = Table("agents_state", metadata, *lease_columns(), Column("body", Text, nullable=False))  # "" until saved here

ROW = "desk"


def load(engine: Engine) -> str | None:
    """The saved state's JSON, or None when nothing was saved here yet."""
    with engine.connect() as conn:
        return conn.execute(select(agents_state.c.body).where(agents_state.c.name == ROW)).scalar() or None


def save(engine: Engine, body: str, lease: StoreLease | None) -> None:
    """Save as `lease`'s holder (None: no standbys); LeaseLost if another has held the lease since."""
    with engine.begin() as conn:
        fence(conn, agents_state, ROW, lease, "the agents")
        conn.execute(update(agents_state).where(agents_state.c.name == ROW).values(body=body))


def lease(engine: Engine, holder: str) -> StoreLease:
    return StoreLease(engine, agents_state, ROW, "agents", holder)
