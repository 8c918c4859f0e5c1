"""The executor's store: the orders it took on, the fills it owes, the messages it refused.

The first revision: the tables as deskgate made them before Alembic, made where missing
(migrations/baseline.py), so a data directory from before is adopted, not refused.
"""

import sqlalchemy as sa

from deskgate.migrations.baseline import index, table

revision = "executor_0001"
down_revision = None
branch_labels = ("executor",)
depends_on = None


def upgrade() -> None:
    table('order_fills',
    sa.Column('fill_id', sa.String(length=96), nullable=False),
    sa.Column('order_id', sa.String(length=80), nullable=False),
    sa.Column('fill', sa.JSON(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('fill_id')
    )
    index('ix_order_fills_order_id', 'order_fills', ['order_id'], unique=False)
    table('refused_orders',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    table('venue_orders',
    sa.Column('order_id', sa.String(length=80), nullable=False),
    sa.Column('directive_id', sa.String(length=64), nullable=False),
    sa.Column('answers_directive', sa.Boolean(), nullable=False),
    sa.Column('venue', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('order', sa.JSON(), nullable=False),
    sa.Column('ticket', sa.JSON(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('send_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('endpoint', sa.String(length=300), nullable=False),
    sa.Column('answered', sa.JSON(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_id')
    )
    index('ix_venue_orders_directive_id', 'venue_orders', ['directive_id'], unique=False)

def downgrade() -> None:
    raise NotImplementedError("deskgate's schemas only move forward; restore a backup to go back")
