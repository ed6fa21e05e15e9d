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

from sqlalchemy import delete, func, select, update

from storage.schema import deliveries, papers, ranking_filtered, ranking_tuning, ratings
from storage.sql import insert_for
from storage.store import Store

log = logging.getLogger(__name__)

FILTERED_PREFIX = "filtered:"


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

    def __init__(self, db: Store) -> None:
        self.db = db

    async def rate(
        self, destination_id: int, paper_id: str, user_id: int, *, liked: bool, now: datetime
    ) -> None:
        """Record a user's rating of a paper for a destination; a later one replaces it."""
        stmt = insert_for(self.db.dialect, ratings).values(
            destination_id=destination_id,
            paper_id=paper_id,
            user_id=user_id,
            liked=int(liked),
            rated_at=now,
        )
        await self.db.execute(
            stmt.on_conflict_do_update(
                index_elements=[ratings.c.destination_id, ratings.c.paper_id, ratings.c.user_id],
                set_={"liked": stmt.excluded.liked, "rated_at": stmt.excluded.rated_at},
            )
        )

    async def rated(self, destination_id: int, limit: int) -> list[tuple[str, bool]]:
        """The destination's `limit` latest ratings as (paper id, liked), oldest first."""
        r = ratings.c
        rows = await self.db.fetchall(
            select(r.paper_id, r.liked)
            .where(r.destination_id == destination_id)
            .order_by(r.rated_at.desc(), r.paper_id.desc(), r.user_id.desc())
            .limit(limit)
        )
        return [(str(row.paper_id), bool(row.liked)) for row in reversed(rows)]

    async def count(self, destination_id: int) -> int:
        value = await self.db.scalar(
            select(func.count())
            .select_from(ratings)
            .where(ratings.c.destination_id == destination_id)
        )
        return int(value or 0)

    async def rated_destinations(self, minimum: int) -> list[int]:
        """Destinations with at least `minimum` ratings (those that get a model)."""
        rows = await self.db.fetchall(
            select(ratings.c.destination_id)
            .group_by(ratings.c.destination_id)
            .having(func.count() >= minimum)
        )
        return [int(row.destination_id) for row in rows]

    async def was_delivered(self, destination_id: int, paper_id: str) -> bool:
        """Whether this paper was posted to this destination (only those can be rated)."""
        d = deliveries.c
        row = await self.db.fetchone(
            select(d.id)
            .join_from(deliveries, papers, papers.c.rowid == d.paper_rowid)
            .where(d.destination_id == destination_id, papers.c.id == paper_id, d.status == "sent")
            .limit(1)
        )
        return row is not None

    async def set_tuning(
        self, destination_id: int, tuning: Tuning, *, user_id: int, now: datetime
    ) -> None:
        """Replace the destination's tuning; no limit at all removes it."""
        if tuning.top_k is None and tuning.min_score is None:
            await self.db.execute(
                delete(ranking_tuning).where(ranking_tuning.c.destination_id == destination_id)
            )
            return
        stmt = insert_for(self.db.dialect, ranking_tuning).values(
            destination_id=destination_id,
            top_k=tuning.top_k,
            min_score=tuning.min_score,
            updated_by=user_id,
            updated_at=now,
        )
        await self.db.execute(
            stmt.on_conflict_do_update(
                index_elements=[ranking_tuning.c.destination_id],
                set_={
                    "top_k": stmt.excluded.top_k,
                    "min_score": stmt.excluded.min_score,
                    "updated_by": stmt.excluded.updated_by,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )

    async def tuning(self, destination_id: int) -> Tuning | None:
        t = ranking_tuning.c
        row = await self.db.fetchone(
            select(t.top_k, t.min_score).where(t.destination_id == destination_id)
        )
        if row is None:
            return None
        return Tuning(
            None if row.top_k is None else int(row.top_k),
            None if row.min_score is None else float(row.min_score),
        )

    async def sent_since(self, destination_id: int, since: datetime) -> int:
        """Alerts posted to the destination since `since` (what today's `top:K` has used)."""
        # sent_at is compared as text: the outbox has always written it at fixed width.
        d = deliveries.c
        value = await self.db.scalar(
            select(func.count())
            .select_from(deliveries)
            .where(d.destination_id == destination_id, d.status == "sent", d.sent_at >= since)
        )
        return int(value or 0)

    async def keep_back(self, filtered: Sequence[Filtered], *, now: datetime) -> int:
        """Take pending alerts out of the outbox as kept back by tuning; returns rows changed."""
        changed = 0
        d = deliveries.c
        record = insert_for(self.db.dialect, ranking_filtered).on_conflict_do_nothing(
            index_elements=[ranking_filtered.c.delivery_id]
        )
        async with self.db.transaction() as conn:
            for item in filtered:
                result = await conn.execute(
                    update(deliveries)
                    .where(d.id == item.delivery_id, d.status == "pending")
                    .values(
                        status="failed",
                        last_error=f"{FILTERED_PREFIX} {item.reason} (score {item.score:.3f})",
                    )
                )
                if max(result.rowcount or 0, 0) == 0:
                    continue  # sent, failed or gone meanwhile: not ours to keep back
                changed += 1
                await conn.execute(
                    record,
                    {
                        "delivery_id": item.delivery_id,
                        "score": item.score,
                        "reason": item.reason,
                        "filtered_at": now,
                    },
                )
        return changed

    async def filtered(self, delivery_id: int) -> Filtered | None:
        """Why an alert was kept back, if it was (for /why)."""
        f = ranking_filtered.c
        row = await self.db.fetchone(
            select(f.delivery_id, f.score, f.reason).where(f.delivery_id == delivery_id)
        )
        return (
            None
            if row is None
            else Filtered(int(row.delivery_id), float(row.score), str(row.reason))
        )
