"""Alembic's entry point: migrate the connection `storage.migrate` hands over.

paperbell runs Alembic from code (no alembic.ini, no URL here): the caller
opens the transaction, takes the locks and passes the connection in
`config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context

from storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
