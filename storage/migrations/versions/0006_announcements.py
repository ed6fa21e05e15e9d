"""Announcements as a stored fact; the outbox keyed by event and version.

From before Alembic: runs sql/<engine>/0006_announcements.sql, as paperbell always did.
"""

from __future__ import annotations

from storage.migrations.engine_sql import run_engine_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_engine_sql("0006_announcements")


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
