"""A verifier's pinned principal keys and passkeys (people/pins.py): the factory and the executor each have one.

The first revision: the tables as deskgate made them before Alembic, made where missing
(migrations/baseline.py), so a data directory from before is adopted, not refused.
"""

import sqlalchemy as sa

from deskgate.migrations.baseline import table

revision = "pins_0001"
down_revision = None
branch_labels = ("pins",)
depends_on = None


def upgrade() -> None:
    table('passkey_pins',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('credential_id', sa.String(length=1400), nullable=False),
    sa.Column('record', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', 'credential_id')
    )
    table('principal_pins',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.String(length=100), nullable=False),
    sa.Column('how', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    table('superseded_keys',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('public_key', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', 'public_key')
    )

def downgrade() -> None:
    raise NotImplementedError("deskgate's schemas only move forward; restore a backup to go back")
