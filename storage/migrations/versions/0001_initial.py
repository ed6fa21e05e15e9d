"""Papers, their authors and categories, destinations, subscriptions, the outbox, feed state.

From before Alembic: runs sql/<engine>/0001_initial.sql, as paperbell always did.
"""

from __future__ import annotations

from storage.migrations.engine_sql import run_engine_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_engine_sql("0001_initial")


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
