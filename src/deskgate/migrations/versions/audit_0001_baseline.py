"""The audit log: hash-chained entries and signed checkpoints.

The first revision: the tables as deskgate made them before Alembic, made where missing
(migrations/baseline.py), so a data directory from before is adopted, not refused.
"""

import sqlalchemy as sa

from deskgate.migrations.baseline import index, table

revision = "audit_0001"
down_revision = None
branch_labels = ("audit",)
depends_on = None


def upgrade() -> None:
    table('audit_checkpoints',
    sa.Column('size', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('root', sa.String(length=64), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('signer', sa.String(length=80), nullable=False),
    sa.Column('signature', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('size')
    )
    table('audit_cursors',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    table('audit_entries',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('ref', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', sa.String(length=40), nullable=False),
    sa.Column('signer', sa.String(length=80), nullable=True),
    sa.Column('signature', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('source')
    )
    index('ix_audit_entries_ref', 'audit_entries', ['ref'], unique=False)

def downgrade() -> None:
    raise NotImplementedError("deskgate's schemas only move forward; restore a backup to go back")
