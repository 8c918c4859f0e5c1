"""Alembic's entry: runs on the connection deskgate hands it (migrations/__init__.py)."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("deskgate's migrations run through `deskgate db upgrade` (or when a store opens), not the alembic command")
context.configure(connection=connection, version_table="alembic_version", transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
