"""Every stored instant in one fixed-width form, so text order is time order.

Before the SQLAlchemy store, papers, feed state, look-ups and harvests were
written with `isoformat()`, which drops the microseconds when they are zero
(`2026-11-29T05:00:00+00:00`, 25 characters), while the outbox and everything
written now has them (`2026-11-29T05:00:00.000000+00:00`, 32). Compared as
text, an old row at exactly a bound sorted before the bound and fell out of a
`>=` filter. This pads the old form; every instant is UTC (`+00:00`). One
statement per column on both engines; on a catalogue of all of arXiv the
papers' three columns take one pass each.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Written out rather than read from storage.schema: a revision must keep meaning
# what it meant when it was written.
INSTANT_COLUMNS = {
    "announcements": ("recorded_at",),
    "arxiv_lookups": ("fetched_at",),
    "destinations": ("paused_at",),
    "feed_state": ("last_success", "last_attempt", "last_error_at"),
    "harvest_state": ("started_at", "updated_at", "finished_at"),
    "papers": ("published", "updated", "first_seen"),
    "publications": ("noted_at",),
    "deliveries": ("created_at", "next_attempt_at", "sent_at", "claimed_until"),
    "ranking_tuning": ("updated_at",),
    "ratings": ("rated_at",),
    "subscriptions": ("created_at",),
    "ranking_filtered": ("filtered_at",),
}
SHORT = len("2026-11-29T05:00:00+00:00")


def upgrade() -> None:
    for table_name, names in INSTANT_COLUMNS.items():
        table = sa.table(table_name, *(sa.column(name, sa.Text) for name in names))
        for name in names:
            column = table.c[name]
            padded = sa.func.substr(column, 1, 19) + ".000000" + sa.func.substr(column, 20)
            op.execute(
                sa.update(table)
                .where(sa.func.length(column) == SHORT)
                .where(sa.func.substr(column, 20, 1) == "+")
                .values({name: padded})
            )


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
