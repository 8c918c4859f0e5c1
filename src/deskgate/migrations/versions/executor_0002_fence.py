"""The executor's fence: the lease epoch of the instance that last wrote (bus/lease.py), so
an executor that lost its lease to a standby cannot write, and so cannot send, after it.

Its one row is made here, before any executor writes: raising it is then one UPDATE that
locks the row, with no race between two first writers.
"""

import sqlalchemy as sa
from alembic import op

from deskgate.migrations.baseline import table

revision = "executor_0002"
down_revision = "executor_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table("fence",
          sa.Column("name", sa.String(length=32), nullable=False),
          sa.Column("epoch", sa.BigInteger(), nullable=False),
          sa.PrimaryKeyConstraint("name"))
    op.execute("INSERT INTO fence (name, epoch) SELECT 'executor', 0 WHERE NOT EXISTS (SELECT 1 FROM fence WHERE name = 'executor')")


def downgrade() -> None:
    raise NotImplementedError("deskgate's schemas only move forward; restore a backup to go back")
