"""The agents' memory: core blocks and their history, recall, archival, the memory tools'
calls, and the vectors of semantic recall.

The first revision: the tables as deskgate made them before Alembic, made where missing
(migrations/baseline.py). The full-text parts differ by backend: on SQLite, FTS5 and the
rank index (memory/store.py, ranking.py) are set up by the memory as it opens; on
PostgreSQL, the word postings this revision makes (memory/pg_words.py).
"""

import sqlalchemy as sa
from alembic import op

from deskgate.migrations.baseline import index, table

revision = "memory_0001"
down_revision = None
branch_labels = ("memory",)
depends_on = None


def upgrade() -> None:
    table('archival',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('tags', sa.String(length=1000), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    table('archival_vectors',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('entry_id', 'model')
    )
    table('core_blocks',
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('limit_chars', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('label')
    )
    table('core_history',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('op', sa.String(length=16), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=False),
    sa.Column('new_value', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    table('recall',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('ref', sa.String(length=128), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    index('recall_at', 'recall', ['at'], unique=False)
    table('recall_vectors',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('entry_id', 'model')
    )
    table('tool_calls',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=False),
    sa.Column('function', sa.String(length=32), nullable=False),
    sa.Column('tool', sa.String(length=64), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('ok', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    table('vector_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'entry_id', 'model')
    )

    if op.get_bind().dialect.name == "postgresql":
        for source in ("recall", "archival"):
            table(f"{source}_words",
            sa.Column('term', sa.String(length=64), nullable=False),
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('tf', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('term', 'id')
            )
            table(f"{source}_sizes",
            sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
            sa.Column('words', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('id')
            )


def downgrade() -> None:
    raise NotImplementedError("deskgate's schemas only move forward; restore a backup to go back")
