"""A compact catalogue: integer paper keys, smaller author and category rows.

From before Alembic: runs sql/<engine>/0007_compact_catalogue.sql, as paperbell always did.
"""

from __future__ import annotations

from storage.migrations.engine_sql import run_engine_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_engine_sql("0007_compact_catalogue")


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
