"""Keyword subscriptions join query subscriptions in the token index.

The matcher looks a listing's words up twice: as keyword subscriptions'
`match_key` in `subscriptions` and as query subscriptions' `token` keys in
`subscription_query_keys`, some 30,000 index probes each for a daily listing.
With each keyword subscription's match key also stored there as a `token`
key, one probe per word finds both (see `storage.candidates`). This adds the
rows for the keyword subscriptions already stored; `storage.subscriptions`
writes them for new ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written out rather than read from storage.schema: a revision must keep meaning
    # what it meant when it was written.
    subscriptions = sa.table(
        "subscriptions", sa.column("id"), sa.column("kind"), sa.column("match_key")
    )
    keys = sa.table(
        "subscription_query_keys",
        sa.column("subscription_id"),
        sa.column("kind"),
        sa.column("key"),
    )
    source = sa.select(subscriptions.c.id, sa.literal("token"), subscriptions.c.match_key).where(
        subscriptions.c.kind == "keyword", subscriptions.c.match_key != ""
    )
    existing = sa.select(keys.c.subscription_id).where(
        keys.c.subscription_id == subscriptions.c.id,
        keys.c.kind == "token",
        keys.c.key == subscriptions.c.match_key,
    )
    op.execute(
        keys.insert().from_select(
            ["subscription_id", "kind", "key"], source.where(~sa.exists(existing))
        )
    )


def downgrade() -> None:
    raise NotImplementedError("paperbell migrates forward only; restore a backup to go back")
