"""Tests for storage.announcements: each listing item recorded once, listing history and
publication facts, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.domain.models import Announcement, AnnounceType, ListingSummary
from storage.announcements import AnnouncementRepository
from storage.store import Store

NOW = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
DAY = date(2024, 11, 28)


def item(number: int, kind: AnnounceType, day: date = DAY, version: int = 1) -> Announcement:
    return Announcement(f"2411.{number:05d}", version, kind, day, ("cs.LG", "stat.ML"))


async def test_each_item_is_recorded_once(db: Store) -> None:
    """The same listing polled twice (or an item seen twice) adds only what is new."""
    repo = AnnouncementRepository(db)
    first = [item(1, AnnounceType.NEW), item(2, AnnounceType.CROSS), item(1, AnnounceType.NEW)]
    async with db.transaction() as conn:
        assert await repo.record_in(conn, first, now=NOW) == first[:2]
    again = [*first, item(1, AnnounceType.REPLACE, version=2), item(3, AnnounceType.NEW)]
    async with db.transaction() as conn:
        assert await repo.record_in(conn, again, now=NOW) == again[3:]
        assert await repo.record_in(conn, [], now=NOW) == []
    assert await repo.for_paper("2411.00001") == [
        item(1, AnnounceType.NEW),
        item(1, AnnounceType.REPLACE, version=2),
    ]


async def test_listing_days_and_first_announcements(db: Store) -> None:
    """`since`, `last_listing_before` and `recent_listings` read the listing days back."""
    repo = AnnouncementRepository(db)
    earlier = date(2024, 11, 26)
    rows = [
        item(1, AnnounceType.NEW, earlier),
        item(2, AnnounceType.NEW, DAY),
        item(3, AnnounceType.CROSS, DAY),
        item(1, AnnounceType.REPLACE, DAY, version=2),
    ]
    async with db.transaction() as conn:
        await repo.record_in(conn, rows, now=NOW)
    assert [a.paper_id for a in await repo.since(DAY)] == ["2411.00002", "2411.00003"]
    assert [a.paper_id for a in await repo.since(earlier, limit=2)] == ["2411.00002", "2411.00003"]
    assert await repo.last_listing_before(DAY) == earlier
    assert await repo.last_listing_before(earlier) is None
    counts = dict.fromkeys(AnnounceType, 0)
    assert await repo.recent_listings(1) == [
        ListingSummary(
            DAY,
            counts | {AnnounceType.NEW: 1, AnnounceType.CROSS: 1, AnnounceType.REPLACE: 1},
        )
    ]
    assert [s.listing_date for s in await repo.recent_listings()] == [DAY, earlier]


async def test_publication_noted_once(db: Store) -> None:
    """A publication is noted the first time only; `published` says which ids have one."""
    repo = AnnouncementRepository(db)
    assert await repo.note_publication("2411.00001", journal_ref="J. 1", doi=None, now=NOW)
    assert not await repo.note_publication("2411.00001", journal_ref="J. 2", doi="x", now=NOW)
    many = [f"2411.{n:05d}" for n in range(1, 1_200)]  # more than one IN list
    assert await repo.published(many) == {"2411.00001"}
