"""Which arXiv API look-ups were made when (the 24 h look-up cache).

From before Alembic: runs sql/<engine>/0005_arxiv_lookups.sql, as paperbell always did.
"""

from __future__ import annotations

from storage.migrations.engine_sql import run_engine_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_engine_sql("0005_arxiv_lookups")


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
