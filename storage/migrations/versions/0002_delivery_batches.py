"""Delivery batches: a message's alerts are claimed and retried as one.

From before Alembic: runs sql/<engine>/0002_delivery_batches.sql, as paperbell always did.
"""

from __future__ import annotations

from storage.migrations.engine_sql import run_engine_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_engine_sql("0002_delivery_batches")


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
