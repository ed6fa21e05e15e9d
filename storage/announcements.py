"""What arXiv announced: one row per item of a polled listing, and publication facts.

The catalogue (`papers`) is filled from any source; announcements only from
listings, and only they may alert. An announcement is keyed by (paper, version,
type, listing day): the same listing polled twice, or the same item seen through
two feed URLs, is recorded once, and `record_in` reports only the rows it added,
so the caller matches each announcement exactly once. `record_in` runs inside
the transaction that stores the papers and queues the alerts; on PostgreSQL that
transaction holds the ingest lock, so two pollers cannot both add one row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, func, select

from bot.domain.models import Announcement, AnnounceType, ListingSummary
from storage.schema import announcements as announcements_table
from storage.schema import publications
from storage.sql import chunks, insert_for
from storage.store import Connection, Store

log = logging.getLogger(__name__)

_a = announcements_table.c
_COLUMNS = (
    _a.paper_id,
    _a.version,
    _a.announce_type,
    _a.listing_date,
    _a.categories,
    _a.withdrawn,
    _a.late,
)


def _key(a: Announcement) -> tuple[str, int, str, str]:
    return (a.paper_id, a.version, a.announce_type.value, a.listing_date.isoformat())


def _announcement(row: Row[Any]) -> Announcement:
    return Announcement(
        paper_id=str(row.paper_id),
        version=int(row.version),
        announce_type=AnnounceType(row.announce_type),
        listing_date=date.fromisoformat(str(row.listing_date)),
        categories=tuple(str(row.categories).split()),
        withdrawn=bool(row.withdrawn),
        late=bool(row.late),
    )


class AnnouncementRepository:
    """Announcements of polled listings, and the publication facts of followed papers."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def record_in(
        self, conn: Connection, announcements: Sequence[Announcement], *, now: datetime
    ) -> list[Announcement]:
        """Record `announcements` in the caller's transaction; return those not seen before."""
        incoming: dict[tuple[str, int, str, str], Announcement] = {}
        for item in announcements:
            incoming.setdefault(_key(item), item)
        if not incoming:
            return []
        known: set[tuple[str, int, str, str]] = set()
        ids = sorted({a.paper_id for a in incoming.values()})
        for chunk in chunks(ids):
            result = await conn.execute(
                select(_a.paper_id, _a.version, _a.announce_type, _a.listing_date).where(
                    _a.paper_id.in_(chunk)
                )
            )
            for row in result:
                known.add(
                    (
                        str(row.paper_id),
                        int(row.version),
                        str(row.announce_type),
                        str(row.listing_date),
                    )
                )
        fresh = [a for key, a in incoming.items() if key not in known]
        if fresh:
            await conn.execute(
                insert_for(self._db.dialect, announcements_table).on_conflict_do_nothing(),
                [
                    {
                        "paper_id": a.paper_id,
                        "version": a.version,
                        "announce_type": a.announce_type.value,
                        "listing_date": a.listing_date.isoformat(),
                        "categories": " ".join(a.categories),
                        "withdrawn": int(a.withdrawn),
                        "late": int(a.late),
                        "recorded_at": now,
                    }
                    for a in fresh
                ],
            )
        return fresh

    async def for_paper(self, paper_id: str) -> list[Announcement]:
        """A paper's announcement history, oldest first."""
        rows = await self._db.fetchall(
            select(*_COLUMNS)
            .where(_a.paper_id == paper_id)
            .order_by(_a.listing_date, _a.version, _a.id)
        )
        return [_announcement(row) for row in rows]

    async def since(self, day: date, *, limit: int = 100_000) -> list[Announcement]:
        """First announcements (new, cross) of listings from `day` on, newest listing first."""
        rows = await self._db.fetchall(
            select(*_COLUMNS)
            .where(
                _a.listing_date >= day.isoformat(),
                _a.announce_type.in_([AnnounceType.NEW.value, AnnounceType.CROSS.value]),
            )
            .order_by(_a.listing_date.desc(), _a.paper_id)
            .limit(limit)
        )
        return [_announcement(row) for row in rows]

    async def last_listing_before(self, day: date) -> date | None:
        """The latest listing day with announcements before `day`, if any."""
        value = await self._db.scalar(
            select(func.max(_a.listing_date)).where(_a.listing_date < day.isoformat())
        )
        return date.fromisoformat(str(value)) if value else None

    async def recent_listings(self, limit: int = 7) -> list[ListingSummary]:
        """The last `limit` listing days with announcements, newest first, counted by type."""
        days_wanted = (
            select(_a.listing_date).distinct().order_by(_a.listing_date.desc()).limit(max(1, limit))
        )
        rows = await self._db.fetchall(
            select(
                _a.listing_date,
                _a.announce_type,
                func.count(_a.paper_id.distinct()).label("papers"),
            )
            .where(_a.listing_date.in_(days_wanted))
            .group_by(_a.listing_date, _a.announce_type)
        )
        days: dict[date, dict[AnnounceType, int]] = {}
        for row in rows:
            try:
                kind = AnnounceType(row.announce_type)
            except ValueError:
                continue
            day = date.fromisoformat(str(row.listing_date))
            days.setdefault(day, dict.fromkeys(AnnounceType, 0))[kind] = int(row.papers)
        return [ListingSummary(day, days[day]) for day in sorted(days, reverse=True)]

    async def note_publication_in(
        self,
        conn: Connection,
        paper_id: str,
        *,
        journal_ref: str | None,
        doi: str | None,
        now: datetime,
    ) -> bool:
        """Record that `paper_id` is published; False when that was already noted."""
        stmt = insert_for(self._db.dialect, publications).values(
            paper_id=paper_id, journal_ref=journal_ref, doi=doi, noted_at=now
        )
        result = await conn.execute(
            stmt.on_conflict_do_nothing(index_elements=[publications.c.paper_id])
        )
        return (result.rowcount or 0) > 0

    async def note_publication(
        self, paper_id: str, *, journal_ref: str | None, doi: str | None, now: datetime
    ) -> bool:
        async with self._db.transaction() as conn:
            return await self.note_publication_in(
                conn, paper_id, journal_ref=journal_ref, doi=doi, now=now
            )

    async def published(self, paper_ids: Sequence[str]) -> set[str]:
        """Which of `paper_ids` have a publication noted."""
        found: set[str] = set()
        wanted = sorted(set(paper_ids))
        for chunk in chunks(wanted):
            rows = await self._db.fetchall(
                select(publications.c.paper_id).where(publications.c.paper_id.in_(chunk))
            )
            found.update(str(row.paper_id) for row in rows)
        return found
