"""What the first revision of every branch does: make the tables it describes, or, on a
database from before Alembic (the tables made by an earlier deskgate), make only what is
missing and add the columns added since. Later revisions are plain Alembic operations."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def table(name: str, *columns, **kw) -> None:
    """op.create_table, or the missing columns of a table that exists."""
    bind = op.get_bind()
    insp = sa.inspect(bind)
    if not insp.has_table(name):
        op.create_table(name, *columns, **kw)
        return
    have = {c["name"] for c in insp.get_columns(name)}
    for column in columns:
        if isinstance(column, sa.Column) and column.name not in have:
            if not column.nullable and column.server_default is None:
                raise RuntimeError(f"{name}.{column.name} is missing and cannot be added to existing rows without a default")
            op.add_column(name, sa.Column(column.name, column.type, nullable=column.nullable, server_default=column.server_default))


def index(name: str, table_name: str, columns: list[str], **kw) -> None:
    """op.create_index, unless the index exists."""
    insp = sa.inspect(op.get_bind())
    if any(ix["name"] == name for ix in insp.get_indexes(table_name)):
        return
    op.create_index(name, table_name, columns, **kw)
