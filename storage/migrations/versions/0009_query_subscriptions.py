"""arXiv-style query subscriptions and their index keys.

From before Alembic: runs sql/<engine>/0009_query_subscriptions.sql, as paperbell always did.
"""

from __future__ import annotations

from storage.migrations.engine_sql import run_engine_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_engine_sql("0009_query_subscriptions")


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
