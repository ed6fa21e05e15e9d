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
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from bot.domain.models import Announcement, AnnounceType, ListingSummary
from bot.domain.timestamps import to_timestamp
from storage.backend import AnyDatabase, Connection, Row

log = logging.getLogger(__name__)

_CHUNK = 500  # bound parameters per IN list
_COLUMNS = "paper_id, version, announce_type, listing_date, categories, withdrawn, late"


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _key(a: Announcement) -> tuple[str, int, str, str]:
    return (a.paper_id, a.version, a.announce_type.value, a.listing_date.isoformat())


def _announcement(row: Row) -> Announcement:
    return Announcement(
        paper_id=str(row[0]),
        version=int(row[1]),
        announce_type=AnnounceType(row[2]),
        listing_date=date.fromisoformat(str(row[3])),
        categories=tuple(str(row[4]).split()),
        withdrawn=bool(row[5]),
        late=bool(row[6]),
    )


class AnnouncementRepository:
    """Announcements of polled listings, and the publication facts of followed papers."""

    def __init__(self, db: AnyDatabase) -> None:
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
        for chunk in _chunks(ids):
            async with conn.execute(
                "SELECT paper_id, version, announce_type, listing_date FROM announcements"
                f" WHERE paper_id IN ({_marks(len(chunk))})",
                chunk,
            ) as cursor:
                for row in await cursor.fetchall():
                    known.add((str(row[0]), int(row[1]), str(row[2]), str(row[3])))
        fresh = [a for key, a in incoming.items() if key not in known]
        if fresh:
            stamp = to_timestamp(now)
            await conn.executemany(
                "INSERT INTO announcements (paper_id, version, announce_type, listing_date,"
                " categories, withdrawn, late, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [
                    (*_key(a), " ".join(a.categories), int(a.withdrawn), int(a.late), stamp)
                    for a in fresh
                ],
            )
        return fresh

    async def for_paper(self, paper_id: str) -> list[Announcement]:
        """A paper's announcement history, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM announcements WHERE paper_id = ?"
            " ORDER BY listing_date, version, id",
            (paper_id,),
        )
        return [_announcement(row) for row in rows]

    async def since(self, day: date, *, limit: int = 100_000) -> list[Announcement]:
        """First announcements (new, cross) of listings from `day` on, newest listing first."""
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM announcements WHERE listing_date >= ?"
            " AND announce_type IN ('new', 'cross')"
            " ORDER BY listing_date DESC, paper_id LIMIT ?",
            (day.isoformat(), limit),
        )
        return [_announcement(row) for row in rows]

    async def last_listing_before(self, day: date) -> date | None:
        """The latest listing day with announcements before `day`, if any."""
        row = await self._db.fetchone(
            "SELECT max(listing_date) FROM announcements WHERE listing_date < ?",
            (day.isoformat(),),
        )
        return date.fromisoformat(str(row[0])) if row and row[0] else None

    async def recent_listings(self, limit: int = 7) -> list[ListingSummary]:
        """The last `limit` listing days with announcements, newest first, counted by type."""
        rows = await self._db.fetchall(
            "SELECT a.listing_date, a.announce_type, count(DISTINCT a.paper_id)"
            " FROM announcements AS a WHERE a.listing_date IN ("
            " SELECT DISTINCT listing_date FROM announcements"
            " ORDER BY listing_date DESC LIMIT ?)"
            " GROUP BY a.listing_date, a.announce_type",
            (max(1, limit),),
        )
        days: dict[date, dict[AnnounceType, int]] = {}
        for row in rows:
            try:
                kind = AnnounceType(row[1])
            except ValueError:
                continue
            day = date.fromisoformat(str(row[0]))
            days.setdefault(day, dict.fromkeys(AnnounceType, 0))[kind] = int(row[2])
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
        cursor = await conn.execute(
            "INSERT INTO publications (paper_id, journal_ref, doi, noted_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (paper_id) DO NOTHING",
            (paper_id, journal_ref, doi, to_timestamp(now)),
        )
        return cursor.rowcount > 0

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
        for chunk in _chunks(wanted):
            rows = await self._db.fetchall(
                f"SELECT paper_id FROM publications WHERE paper_id IN ({_marks(len(chunk))})",
                chunk,
            )
            found.update(str(row[0]) for row in rows)
        return found
