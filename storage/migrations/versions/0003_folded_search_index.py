"""The full-text index holds folded text (TeX accents, ł/ø) on both engines.

From before Alembic: runs sql/<engine>/0003_folded_search_index.sql, as paperbell always did.
"""

from __future__ import annotations

from storage.migrations.engine_sql import run_engine_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_engine_sql("0003_folded_search_index")


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
