"""Announcements decide alerts: the rules of `bot.domain.announcements` through `PaperService`.

Real stores on both backends: a listing alerts once however often it is
polled (or by how many pollers at once), look-ups and imports never alert,
replacements reach only `include_replacements` subscriptions and followers,
once per version.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from sqlalchemy import select

from bot.domain.announcements import (
    is_withdrawn,
    listing_day,
    listing_lines,
    quiet_listing_note,
)
from bot.domain.models import (
    AlertEvent,
    AnnounceType,
    DestinationKind,
    ListingSummary,
    Paper,
    SubscriptionKind,
)
from bot.domain.recovery import missed_days, recovery_queries, submission_window
from bot.services import PaperService
from storage.schema import deliveries, papers
from storage.store import Store
from storage.subscriptions import SubscriptionRepository
from tests.backends import any_db  # noqa: F401  (fixture)

NOW = datetime(2025, 1, 7, 5, 0, tzinfo=UTC)
DAY_ONE = date(2025, 1, 7)
DAY_TWO = date(2025, 1, 8)


def listed(number: int, **changes: object) -> Paper:
    fields: dict[str, object] = {
        "id": f"2501.{number:05d}",
        "version": 1,
        "title": f"Result number {number}",
        "abstract": "We report results.",
        "authors": ("Nora Example",),
        "primary_category": "cs.LG",
        "categories": ("cs.LG",),
        "announce_type": AnnounceType.NEW,
    }
    fields.update(changes)
    return Paper(**fields)  # type: ignore[arg-type]


async def subscribe(
    db: Store,
    target: int,
    kind: SubscriptionKind,
    value: str,
    *,
    replacements: bool = False,
    cross: bool = True,
) -> int:
    repo = SubscriptionRepository(db)
    destination = await repo.ensure_destination(DestinationKind.CHANNEL, target, 1)
    await repo.add(
        destination, kind, value, value, "",
        include_cross=cross, include_replacements=replacements, created_by=7, now=NOW,
    )  # fmt: skip
    return destination.id


async def queued(db: Store) -> list[tuple[int, str, str, int]]:
    rows = await db.fetchall(
        select(deliveries.c.destination_id, papers.c.id, deliveries.c.event, deliveries.c.version)
        .join_from(deliveries, papers, papers.c.rowid == deliveries.c.paper_rowid)
        .order_by(deliveries.c.id)
    )
    return [(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


async def test_same_listing_twice_alerts_once(any_db: Store) -> None:  # noqa: F811
    """Announcing one listing twice records and queues everything once."""
    service = PaperService(any_db, None, clock=lambda: NOW)
    ml = await subscribe(any_db, 100, SubscriptionKind.CATEGORY, "cs.LG")
    batch = [listed(1), listed(2)]
    first = await service.announce(batch, listing_date=DAY_ONE)
    again = await service.announce(batch, listing_date=DAY_ONE)
    assert (first.announced, first.deliveries) == (2, 2)
    assert (again.announced, again.deliveries) == (0, 0)
    assert await queued(any_db) == [
        (ml, "2501.00001", "announced", 0),
        (ml, "2501.00002", "announced", 0),
    ]


async def test_lookups_and_imports_never_alert(any_db: Store) -> None:  # noqa: F811
    """Papers stored through `ingest` (look-ups, imports) queue nothing; their later
    announcement does."""
    service = PaperService(any_db, None, clock=lambda: NOW)
    await subscribe(any_db, 100, SubscriptionKind.CATEGORY, "cs.LG")
    outcome = await service.ingest([listed(1)])
    assert len(outcome.new) == 1 and outcome.deliveries == 0
    assert await queued(any_db) == []
    announced = await service.announce([listed(1)], listing_date=DAY_ONE)
    assert announced.deliveries == 1 and announced.new == ()


async def test_replacements_once_per_version_for_opted_in_and_followers(
    any_db: Store,  # noqa: F811
) -> None:
    """A replacement reaches include_replacements subscriptions and followers only, once per
    version even when listed again on a later day; a withdrawal is recognised."""
    service = PaperService(any_db, None, clock=lambda: NOW)
    plain = await subscribe(any_db, 100, SubscriptionKind.CATEGORY, "cs.LG")
    opted = await subscribe(any_db, 101, SubscriptionKind.CATEGORY, "cs.LG", replacements=True)
    follower = await subscribe(any_db, 102, SubscriptionKind.PAPER, "2501.00001")
    await service.announce([listed(1)], listing_date=DAY_ONE)
    v2 = listed(1, version=2, announce_type=AnnounceType.REPLACE)
    assert (await service.announce([v2], listing_date=DAY_TWO)).deliveries == 2
    assert (await service.announce([v2], listing_date=date(2025, 1, 9))).deliveries == 0
    rows = await queued(any_db)
    assert rows == [
        (plain, "2501.00001", "announced", 0),
        (opted, "2501.00001", "announced", 0),
        (opted, "2501.00001", "version", 2),
        (follower, "2501.00001", "version", 2),
    ]
    pending = await service.outbox.claim_due(now=NOW, limit=100)
    notes = {d.destination.id: d.note for d in pending if d.event is AlertEvent.VERSION}
    assert notes == {
        opted: "New version v2, announced 2025-01-08",
        follower: "New version v2, announced 2025-01-08",
    }


async def test_late_cross_list_reaches_new_destinations_only(
    any_db: Store,  # noqa: F811
) -> None:
    """A cross-list a day later reaches cs.CL subscriptions with cross-lists on, not those that
    had the paper, nor those without cross-lists."""
    service = PaperService(any_db, None, clock=lambda: NOW)
    both = await subscribe(any_db, 100, SubscriptionKind.CATEGORY, "cs.LG")
    await subscribe(any_db, 100, SubscriptionKind.CATEGORY, "cs.CL")
    cl = await subscribe(any_db, 101, SubscriptionKind.CATEGORY, "cs.CL")
    await subscribe(any_db, 102, SubscriptionKind.CATEGORY, "cs.CL", cross=False)
    await service.announce([listed(1)], listing_date=DAY_ONE)
    crossed = listed(1, categories=("cs.LG", "cs.CL"), announce_type=AnnounceType.CROSS)
    assert (await service.announce([crossed], listing_date=DAY_TWO)).deliveries == 1
    assert [(d, e) for d, _, e, _ in await queued(any_db)] == [
        (both, "announced"),
        (cl, "announced"),
    ]


async def test_two_pollers_at_once_alert_once(any_db: Store) -> None:  # noqa: F811
    """Two pollers announcing the same listing at the same moment (a takeover) queue each
    alert once."""
    ml = await subscribe(any_db, 100, SubscriptionKind.CATEGORY, "cs.LG")
    batch = [listed(n) for n in range(1, 30)]
    services = [PaperService(any_db, None, clock=lambda: NOW) for _ in range(2)]
    outcomes = await asyncio.gather(*(s.announce(batch, listing_date=DAY_ONE) for s in services))
    assert sum(o.deliveries for o in outcomes) == len(batch)
    assert sum(o.announced for o in outcomes) == len(batch)
    assert {(d, p) for d, p, _, _ in await queued(any_db)} == {(ml, p.id) for p in batch}


async def test_recent_listings_count_by_type(any_db: Store) -> None:  # noqa: F811
    """The last listings, newest first, with distinct papers counted per type."""
    service = PaperService(any_db, None, clock=lambda: NOW)
    await service.announce([listed(1), listed(2)], listing_date=DAY_ONE)
    replaced = listed(1, version=2, announce_type=AnnounceType.REPLACE)
    await service.announce(
        [replaced, listed(3, announce_type=AnnounceType.CROSS)], listing_date=DAY_TWO
    )
    summaries = await service.recent_listings(7)
    assert [s.listing_date for s in summaries] == [DAY_TWO, DAY_ONE]
    assert listing_lines(summaries) == ["2025-01-08  2: 1 cross, 1 replace", "2025-01-07  2: 2 new"]


def test_withdrawal_is_read_from_comment_or_abstract() -> None:
    """Withdrawal notices in the comment or the abstract are recognised; the word in passing
    is not."""
    assert is_withdrawn(listed(1, abstract="This paper has been withdrawn by the author."))
    assert is_withdrawn(listed(1, comment="Withdrawn: duplicate submission"))
    assert is_withdrawn(listed(1, abstract="Paper withdrawn by arXiv admin due to ..."))
    assert not is_withdrawn(listed(1, abstract="Patients withdrawn from the trial were excluded."))
    hostile = listed(1, abstract=" " * 200_000 + "has been withdrawn")
    assert not is_withdrawn(hostile)  # only the start is read, in linear time


def test_quiet_listing_note_says_why() -> None:
    """No listing today: a plain sentence naming arXiv's Friday/Saturday nights and holidays."""
    seen = [
        ListingSummary(date(2025, 1, 10), dict.fromkeys(AnnounceType, 0) | {AnnounceType.NEW: 3})
    ]
    saturday = datetime(2025, 1, 11, 15, 0, tzinfo=UTC)
    note = quiet_listing_note(seen, saturday)
    assert note is not None and "Saturday" in note and "2025-01-10" in note
    friday = datetime(2025, 1, 10, 15, 0, tzinfo=UTC)
    assert quiet_listing_note(seen, friday) is None
    empty = [ListingSummary(date(2025, 1, 10), dict.fromkeys(AnnounceType, 0))]
    assert "holidays" in (quiet_listing_note(empty, friday) or "")


def test_listing_day_is_the_eastern_date() -> None:
    """arXiv's `pubDate` midnight Eastern is that Eastern day, in winter and in summer."""
    assert listing_day(datetime(2025, 1, 7, 5, 0, tzinfo=UTC), fallback=NOW) == DAY_ONE
    assert listing_day(datetime(2025, 7, 7, 4, 0, tzinfo=UTC), fallback=NOW) == date(2025, 7, 7)


def test_missed_days_and_windows_follow_arxivs_week() -> None:
    """Missed announcement days skip weekends; a listing's window runs between the 14:00
    Eastern cutoffs of the two announcement days before it (winter and summer time)."""
    tuesday, thursday, monday = date(2025, 1, 7), date(2025, 1, 9), date(2025, 1, 13)
    assert missed_days(tuesday, thursday) == [date(2025, 1, 8)]
    assert missed_days(date(2025, 1, 10), monday) == []  # Friday to Monday: nothing missed
    assert missed_days(tuesday, monday) == [date(2025, 1, 8), date(2025, 1, 9), date(2025, 1, 10)]
    assert submission_window(tuesday) == (
        datetime(2025, 1, 3, 19, 0, tzinfo=UTC),  # Friday 14:00 EST
        datetime(2025, 1, 6, 19, 0, tzinfo=UTC),  # Monday 14:00 EST
    )
    assert submission_window(date(2025, 7, 8))[1] == datetime(2025, 7, 7, 18, 0, tzinfo=UTC)
    start, end = datetime(2025, 1, 6, 19, 0, tzinfo=UTC), datetime(2025, 1, 7, 19, 0, tzinfo=UTC)
    window = "submittedDate:[202501061900 TO 202501071900]"
    assert recovery_queries(["cs.LG", "cs.AI"], start, end) == [
        f"(cat:cs.AI OR cat:cs.LG) AND {window}"
    ]
    assert recovery_queries(["cs", "hep-th"], start, end) == [window]
    assert recovery_queries(["hep-th"], start, end) == [f"cat:hep-th AND {window}"]
