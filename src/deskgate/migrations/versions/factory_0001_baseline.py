"""The factory's store: evaluations, intentions, decisions, orders, fills, the book, the breaker, the outbox and the fence.

The first revision: the tables as deskgate made them before Alembic, made where missing
(migrations/baseline.py), so a data directory from before is adopted, not refused.
"""

import sqlalchemy as sa

from deskgate.migrations.baseline import index, table

revision = "factory_0001"
down_revision = None
branch_labels = ("factory",)
depends_on = None


def upgrade() -> None:
    table('breaker',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('tripped', sa.Boolean(), nullable=False),
    sa.Column('trip', sa.JSON(), nullable=True),
    sa.Column('trip_revision', sa.Integer(), nullable=True),
    sa.Column('reset_applied_for', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    table('decisions',
    sa.Column('approval_id', sa.String(length=128), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('directive_id', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.String(length=8), nullable=False),
    sa.Column('principal', sa.String(length=128), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('batch_id', sa.String(length=128), nullable=True),
    sa.Column('result', sa.String(length=32), nullable=False),
    sa.Column('result_reason', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('approval_id')
    )
    index('decisions_by_directive', 'decisions', ['directive_id'], unique=False)
    index('decisions_seq', 'decisions', ['seq'], unique=True)
    table('equity_history',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('equity_usd', sa.Float(), nullable=False),
    sa.Column('cash_usd', sa.Float(), nullable=False),
    sa.Column('gross_exposure_usd', sa.Float(), nullable=False),
    sa.Column('drawdown_pct', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    table('evaluations',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('directive_id', sa.String(length=64), nullable=True),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('primary_reason', sa.String(length=32), nullable=True),
    sa.Column('verdict', sa.LargeBinary(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('agent', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('seq')
    )
    index('evaluations_one_per_directive', 'evaluations', ['directive_id'], unique=True, sqlite_where=sa.text("decision != 'duplicate'"), postgresql_where=sa.text("decision != 'duplicate'"))
    index('evaluations_unpublished', 'evaluations', ['seq'], unique=False, sqlite_where=sa.text('published IS 0'), postgresql_where=sa.text('published IS false'))
    table('fence',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    table('fills',
    sa.Column('fill_id', sa.String(length=96), nullable=False),
    sa.Column('order_id', sa.String(length=80), nullable=False),
    sa.Column('directive_id', sa.String(length=64), nullable=False),
    sa.Column('fill', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('fill_id')
    )
    table('intentions',
    sa.Column('directive_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('asset', sa.String(length=32), nullable=False),
    sa.Column('venue', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('notional_usd', sa.Float(), nullable=False),
    sa.Column('explicit', sa.Boolean(), nullable=False),
    sa.Column('four_eyes', sa.Boolean(), nullable=False),
    sa.Column('price_at_staging', sa.Float(), nullable=False),
    sa.Column('staged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('staged', sa.LargeBinary(), nullable=False),
    sa.Column('staged_published', sa.Boolean(), nullable=False),
    sa.Column('outcome_reason', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('agent', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('directive_id')
    )
    index('intentions_state_expiry', 'intentions', ['state', 'expires_at'], unique=False)
    index('intentions_unpublished', 'intentions', ['directive_id'], unique=False, sqlite_where=sa.text('staged_published IS 0'), postgresql_where=sa.text('staged_published IS false'))
    table('ledger',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    table('orders',
    sa.Column('order_id', sa.String(length=80), nullable=False),
    sa.Column('directive_id', sa.String(length=64), nullable=False),
    sa.Column('order', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_id'),
    sa.UniqueConstraint('directive_id')
    )
    table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subject', sa.String(length=256), nullable=False),
    sa.Column('msg_id', sa.String(length=160), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    index('outbox_unpublished', 'outbox', ['id'], unique=False, sqlite_where=sa.text('published IS 0'), postgresql_where=sa.text('published IS false'))
    table('refused_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('stream', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    index('refused_once', 'refused_messages', ['stream', 'seq'], unique=True)
    table('signed_decisions',
    sa.Column('approval_id', sa.String(length=128), nullable=False),
    sa.Column('directive_id', sa.String(length=64), nullable=False),
    sa.Column('signed', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('approval_id')
    )
    index('ix_signed_decisions_directive_id', 'signed_decisions', ['directive_id'], unique=False)

def downgrade() -> None:
    raise NotImplementedError("deskgate's schemas only move forward; restore a backup to go back")
