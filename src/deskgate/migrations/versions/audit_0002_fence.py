"""The audit log's lease and fence (store_lease.py): which audit service may append, its epoch and
expiry, so an instance that lost its lease to a standby cannot append after it and fork the chain.
Held in the store, not the bus: the audit service's observer role writes nothing there.

Its one row is made here, free, before any audit service starts: taking the lease and fencing an
append are then each one UPDATE that locks the row, with no race between two first takers. The table has the `audit_` prefix of the
log's others (they shared one schema with the factory's before stores had schemas of their own).
"""

import sqlalchemy as sa
from alembic import op

from deskgate.migrations.baseline import table

revision = "audit_0002"
down_revision = "audit_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table("audit_fence",
          sa.Column("name", sa.String(length=32), nullable=False),
          sa.Column("epoch", sa.BigInteger(), nullable=False),
          sa.Column("holder", sa.String(length=200), nullable=False),
          sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
          sa.PrimaryKeyConstraint("name"))
    op.execute("INSERT INTO audit_fence (name, epoch, holder) SELECT 'audit', 0, '' "
               "WHERE NOT EXISTS (SELECT 1 FROM audit_fence WHERE name = 'audit')")


def downgrade() -> None:
    raise NotImplementedError("deskgate's schemas only move forward; restore a backup to go back")
