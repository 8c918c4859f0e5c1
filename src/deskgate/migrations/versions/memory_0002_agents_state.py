"""The agents' state and lease in the shared store (agents/shared_state.py, store_lease.py): one
row, holding the state the lease holder last saved, the holder, its expiry and its epoch, so a
standby takes over from the last holder's state and an instance that lost its lease cannot save
over it.

The row is made here, empty and free, before any agents service starts: taking the lease and
saving are then each one UPDATE that locks the row, with no race between two first takers. On a
SQLite memory file the table is made too, and stays unused: the agents keep their state file there.
"""

import sqlalchemy as sa
from alembic import op

from deskgate.migrations.baseline import table

revision = "memory_0002"
down_revision = "memory_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table("agents_state",
          sa.Column("name", sa.String(length=32), nullable=False),
          sa.Column("epoch", sa.BigInteger(), nullable=False),
          sa.Column("holder", sa.String(length=200), nullable=False),
          sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
          sa.Column("body", sa.Text(), nullable=False),
          sa.PrimaryKeyConstraint("name"))
    op.execute("INSERT INTO agents_state (name, epoch, holder, body) SELECT 'desk', 0, '', '' "
               "WHERE NOT EXISTS (SELECT 1 FROM agents_state WHERE name = 'desk')")


def downgrade() -> None:
    raise NotImplementedError("deskgate's schemas only move forward; restore a backup to go back")
