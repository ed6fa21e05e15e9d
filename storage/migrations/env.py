"""Alembic's entry point: migrate the connection `storage.migrate` hands over.

paperbell runs Alembic from code (no alembic.ini, no URL here): the caller
opens the transaction, takes the locks and passes the connection in
`config.attributes["connection"]` (and a listener for each applied revision in
`config.attributes["on_version_apply"]`). The transaction is the caller's, so
`begin_transaction()` below neither begins nor commits anything.
"""

from __future__ import annotations

from alembic import context

from storage.schema import metadata

attributes = context.config.attributes
context.configure(
    connection=attributes["connection"],
    target_metadata=metadata,
    compare_type=True,
    on_version_apply=attributes.get("on_version_apply", ()),
)
with context.begin_transaction():
    context.run_migrations()
