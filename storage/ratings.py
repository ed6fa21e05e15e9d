"""👍/👎 ratings of alerts, a destination's ranking tuning, and the alerts tuning kept back.

A rating is keyed by (destination, paper, user): a user's later click replaces
the earlier one. Alerts that `top:K` or `min-score` kept back leave the outbox
as `failed` with an error starting "filtered:" and get a `ranking_filtered` row
(score and reason) in the same transaction, so `/why` can tell them apart from
real failures.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.timestamps import to_timestamp
from storage.backend import AnyDatabase

log = logging.getLogger(__name__)

FILTERED_PREFIX = "filtered:"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Tuning:
    """`top_k` alerts a UTC day at most, and/or only alerts scoring at least `min_score`."""

    top_k: int | None = None
    min_score: float | None = None


@dataclass(frozen=True, slots=True)
class Filtered:
    """One alert kept back by tuning: its delivery, its score, why ('top_k' or 'min_score')."""

    delivery_id: int
    score: float
    reason: str


class RatingRepository:
    """Ratings, tuning and kept-back alerts of destinations."""

    def __init__(self, db: AnyDatabase) -> None:
        self.db = db

    async def rate(
        self, destination_id: int, paper_id: str, user_id: int, *, liked: bool, now: datetime
    ) -> None:
        """Record a user's rating of a paper for a destination; a later one replaces it."""
        await self.db.execute(
            "INSERT INTO ratings (destination_id, paper_id, user_id, liked, rated_at)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (destination_id, paper_id, user_id)"
            " DO UPDATE SET liked = excluded.liked, rated_at = excluded.rated_at",
            (destination_id, paper_id, user_id, int(liked), to_timestamp(now)),
        )

    async def rated(self, destination_id: int, limit: int) -> list[tuple[str, bool]]:
        """The destination's `limit` latest ratings as (paper id, liked), oldest first."""
        rows = await self.db.fetchall(
            "SELECT paper_id, liked FROM ratings WHERE destination_id = ?"
            " ORDER BY rated_at DESC, paper_id DESC, user_id DESC LIMIT ?",
            (destination_id, limit),
        )
        return [(str(row[0]), bool(row[1])) for row in reversed(rows)]

    async def count(self, destination_id: int) -> int:
        row = await self.db.fetchone(
            "SELECT count(*) FROM ratings WHERE destination_id = ?", (destination_id,)
        )
        return int(row[0]) if row else 0

    async def rated_destinations(self, minimum: int) -> list[int]:
        """Destinations with at least `minimum` ratings (those that get a model)."""
        rows = await self.db.fetchall(
            "SELECT destination_id FROM ratings GROUP BY destination_id HAVING count(*) >= ?",
            (minimum,),
        )
        return [int(row[0]) for row in rows]

    async def was_delivered(self, destination_id: int, paper_id: str) -> bool:
        """Whether this paper was posted to this destination (only those can be rated)."""
        row = await self.db.fetchone(
            "SELECT 1 FROM deliveries AS dl JOIN papers AS p ON p.rowid = dl.paper_rowid"
            " WHERE dl.destination_id = ? AND p.id = ? AND dl.status = 'sent' LIMIT 1",
            (destination_id, paper_id),
        )
        return row is not None

    async def set_tuning(
        self, destination_id: int, tuning: Tuning, *, user_id: int, now: datetime
    ) -> None:
        """Replace the destination's tuning; no limit at all removes it."""
        if tuning.top_k is None and tuning.min_score is None:
            await self.db.execute(
                "DELETE FROM ranking_tuning WHERE destination_id = ?", (destination_id,)
            )
            return
        await self.db.execute(
            "INSERT INTO ranking_tuning (destination_id, top_k, min_score, updated_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (destination_id) DO UPDATE SET top_k = excluded.top_k,"
            " min_score = excluded.min_score, updated_by = excluded.updated_by,"
            " updated_at = excluded.updated_at",
            (destination_id, tuning.top_k, tuning.min_score, user_id, to_timestamp(now)),
        )

    async def tuning(self, destination_id: int) -> Tuning | None:
        row = await self.db.fetchone(
            "SELECT top_k, min_score FROM ranking_tuning WHERE destination_id = ?",
            (destination_id,),
        )
        if row is None:
            return None
        return Tuning(
            None if row[0] is None else int(row[0]), None if row[1] is None else float(row[1])
        )

    async def sent_since(self, destination_id: int, since: datetime) -> int:
        """Alerts posted to the destination since `since` (what today's `top:K` has used)."""
        row = await self.db.fetchone(
            "SELECT count(*) FROM deliveries"
            " WHERE destination_id = ? AND status = 'sent' AND sent_at >= ?",
            (destination_id, to_timestamp(since)),
        )
        return int(row[0]) if row else 0

    async def keep_back(self, filtered: Sequence[Filtered], *, now: datetime) -> int:
        """Take pending alerts out of the outbox as kept back by tuning; returns rows changed."""
        changed = 0
        stamp = to_timestamp(now)
        async with self.db.transaction() as conn:
            for start in range(0, len(filtered), _CHUNK):
                chunk = filtered[start : start + _CHUNK]
                for item in chunk:
                    cursor = await conn.execute(
                        "UPDATE deliveries SET status = 'failed', last_error = ?"
                        " WHERE id = ? AND status = 'pending'",
                        (
                            f"{FILTERED_PREFIX} {item.reason} (score {item.score:.3f})",
                            item.delivery_id,
                        ),
                    )
                    if max(cursor.rowcount, 0) == 0:
                        continue
                    changed += 1
                    await conn.execute(
                        "INSERT INTO ranking_filtered (delivery_id, score, reason, filtered_at)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING",
                        (item.delivery_id, item.score, item.reason, stamp),
                    )
        return changed

    async def filtered(self, delivery_id: int) -> Filtered | None:
        """Why an alert was kept back, if it was (for /why)."""
        row = await self.db.fetchone(
            "SELECT delivery_id, score, reason FROM ranking_filtered WHERE delivery_id = ?",
            (delivery_id,),
        )
        return None if row is None else Filtered(int(row[0]), float(row[1]), str(row[2]))
