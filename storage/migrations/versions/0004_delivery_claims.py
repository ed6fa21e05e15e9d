"""Outbox claims with leases, so several PostgreSQL processes can share it.

From before Alembic: runs sql/<engine>/0004_delivery_claims.sql, as paperbell always did.
"""

from __future__ import annotations

from storage.migrations.engine_sql import run_engine_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_engine_sql("0004_delivery_claims")


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
