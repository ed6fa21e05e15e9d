"""Tests for storage.outbox: idempotent enqueue, claiming, state transitions and cascades."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.models import (
    AlertEvent,
    AnnounceType,
    DeliveryStatus,
    DestinationKind,
    OutboxAlert,
    Paper,
)
from storage.outbox import CLAIM_LEASE, DeliveryOutbox
from storage.papers import PaperRepository
from storage.postgres import open_postgres
from storage.store import Store
from storage.subscriptions import SubscriptionRepository
from tests.backends import POSTGRES

NOW = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
CHANNEL = DestinationKind.CHANNEL
DM = DestinationKind.DM


def make_paper(number: int, **changes: object) -> Paper:
    fields: dict[str, object] = {
        "id": f"2411.{number:05d}",
        "version": 1,
        "title": f"Paper number {number}",
        "abstract": f"We study problem {number}.",
        "authors": ("Shane Legg", "Marcus Hutter"),
        "primary_category": "cs.LG",
        "categories": ("cs.LG", "cs.AI"),
        "published": NOW - timedelta(hours=5),
        "announce_type": AnnounceType.NEW,
    }
    fields.update(changes)
    return Paper(**fields)  # type: ignore[arg-type]


@pytest.fixture
def db(any_db: Store) -> Store:
    """Each test runs on SQLite and on PostgreSQL (tests/backends.py)."""
    return any_db


@pytest.fixture
def outbox(db: Store) -> DeliveryOutbox:
    return DeliveryOutbox(db)


@pytest.fixture
def subs(db: Store) -> SubscriptionRepository:
    return SubscriptionRepository(db)


@pytest.fixture
async def papers(db: Store) -> list[Paper]:
    stored = [make_paper(n) for n in range(1, 6)]
    await PaperRepository(db).upsert_many(stored)
    return stored


async def enqueue(
    db: Store,
    outbox: DeliveryOutbox,
    items: list[tuple[int, str, tuple[str, ...]]],
    now: datetime = NOW,
) -> int:
    async with db.transaction() as conn:
        return await outbox.enqueue(conn, items, now=now)


async def test_enqueue_is_idempotent(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """Queuing the same (destination, paper) again creates nothing; repeats in a call merge."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    first = await enqueue(
        db,
        outbox,
        [
            (dest.id, papers[0].id, ("category: cs.LG",)),
            (dest.id, papers[0].id, ("author: Shane Legg", "category: cs.LG")),
            (dest.id, papers[1].id, ("category: cs.LG",)),
        ],
    )
    again = await enqueue(db, outbox, [(dest.id, papers[0].id, ("keyword: x",))])
    assert (first, again) == (2, 0)
    due = await outbox.claim_due(now=NOW, limit=10)
    assert [(d.paper.id, d.matched) for d in due] == [
        (papers[0].id, ("category: cs.LG", "author: Shane Legg")),
        (papers[1].id, ("category: cs.LG",)),
    ]


async def test_enqueue_rolls_back_with_callers_transaction(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """Deliveries queued in a transaction that fails are not left behind."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await outbox.enqueue(conn, [(dest.id, papers[0].id, ("c",))], now=NOW)
            raise RuntimeError("ingest failed after enqueue")
    assert await outbox.pending_count() == 0


async def test_enqueue_unknown_paper_raises(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """A delivery for a paper that was never stored is a caller bug and queues nothing."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    with pytest.raises(LookupError, match=r"9999\.99999"):
        await enqueue(db, outbox, [(dest.id, papers[0].id, ()), (dest.id, "9999.99999", ())])
    assert await outbox.pending_count() == 0


async def test_claim_due_oldest_first_grouped_by_destination(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """The oldest due rows are claimed, each destination's rows adjacent and in order."""
    a = await subs.ensure_destination(CHANNEL, 100, 1)
    b = await subs.ensure_destination(CHANNEL, 200, 1)
    await enqueue(db, outbox, [(b.id, papers[0].id, ())], now=NOW - timedelta(minutes=5))
    await enqueue(db, outbox, [(a.id, papers[1].id, ())], now=NOW - timedelta(minutes=4))
    await enqueue(db, outbox, [(b.id, papers[2].id, ())], now=NOW - timedelta(minutes=3))
    await enqueue(db, outbox, [(a.id, papers[3].id, ())], now=NOW - timedelta(minutes=2))
    await enqueue(db, outbox, [(a.id, papers[4].id, ())], now=NOW - timedelta(minutes=1))
    due = await outbox.claim_due(now=NOW, limit=4)
    assert [(d.destination.id, d.paper.id) for d in due] == [
        (b.id, papers[0].id),
        (b.id, papers[2].id),
        (a.id, papers[1].id),
        (a.id, papers[3].id),
    ]
    assert await outbox.claim_due(now=NOW, limit=0) == []


async def test_claim_due_loads_paper_and_destination(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository
) -> None:
    """A claimed delivery carries the stored paper and its destination, fields intact."""
    paper = make_paper(
        42,
        version=3,
        authors=("Grégoire Delétang", "ATLAS Collaboration"),
        categories=("cs.LG", "stat.ML", "cs.AI"),
        updated=NOW - timedelta(hours=1),
        comment="12 pages",
        journal_ref="JMLR 1 (2024)",
        doi="10.1000/xyz",
        announce_type=AnnounceType.REPLACE_CROSS,
    )
    await PaperRepository(db).upsert_many([paper])
    dest = await subs.ensure_destination(DM, 7, None)
    await enqueue(db, outbox, [(dest.id, paper.id, ("author: G. Deletang",))])
    [delivery] = await outbox.claim_due(now=NOW, limit=5)
    assert delivery.destination == dest
    assert delivery.paper.first_seen is not None
    assert delivery.paper == replace(paper, first_seen=delivery.paper.first_seen)
    assert (delivery.status, delivery.attempts, delivery.matched) == (
        DeliveryStatus.PENDING,
        0,
        ("author: G. Deletang",),
    )
    assert delivery.created_at == NOW and delivery.next_attempt_at == NOW
    assert delivery.batch_id is None and delivery.sent_at is None


async def test_claim_due_skips_future_and_paused(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """Rows not yet due and rows of paused destinations are not claimed."""
    live = await subs.ensure_destination(CHANNEL, 100, 1)
    paused = await subs.ensure_destination(CHANNEL, 200, 1)
    await enqueue(db, outbox, [(live.id, papers[0].id, ()), (paused.id, papers[0].id, ())])
    await enqueue(db, outbox, [(live.id, papers[1].id, ())], now=NOW + timedelta(seconds=1))
    await subs.pause_destination(paused.id, "403", NOW)
    due = await outbox.claim_due(now=NOW, limit=10)
    assert [(d.destination.id, d.paper.id) for d in due] == [(live.id, papers[0].id)]
    await subs.resume_destination(paused.id)
    due = await outbox.claim_due(now=NOW + timedelta(seconds=1), limit=10)
    assert len(due) == 3


async def test_claim_due_filters_guilds_and_dms(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """guild_ids restricts channels to those guilds; include_dms toggles DMs."""
    g1 = await subs.ensure_destination(CHANNEL, 100, 1)
    g2 = await subs.ensure_destination(CHANNEL, 200, 2)
    dm = await subs.ensure_destination(DM, 7, None)
    await enqueue(db, outbox, [(d.id, papers[0].id, ()) for d in (g1, g2, dm)])

    async def claimed(**kwargs: object) -> set[int]:
        return {d.destination.id for d in await outbox.claim_due(now=NOW, limit=10, **kwargs)}  # type: ignore[arg-type]

    assert await claimed() == {g1.id, g2.id, dm.id}
    assert await claimed(include_dms=False) == {g1.id, g2.id}
    assert await claimed(guild_ids=[2]) == {g2.id, dm.id}
    assert await claimed(guild_ids={1, 3}, include_dms=False) == {g1.id}
    assert await claimed(guild_ids=[]) == {dm.id}
    assert await claimed(guild_ids=[], include_dms=False) == set()


async def test_mark_sent_records_message_and_stops_claiming(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """Sent deliveries keep the Discord message id and are never claimed again."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    await enqueue(db, outbox, [(dest.id, p.id, ()) for p in papers[:3]])
    first, second, third = await outbox.claim_due(now=NOW, limit=10)
    sent_at = NOW + timedelta(seconds=2)
    assert await outbox.mark_sent([first.id, second.id], message_id=555, at=sent_at) == 2
    assert [d.id for d in await outbox.claim_due(now=NOW, limit=10)] == [third.id]
    sent = await outbox.sent_for_destination(dest.id)
    assert [(d.id, d.message_id, d.sent_at, d.status) for d in sent] == [
        (first.id, 555, sent_at, DeliveryStatus.SENT),
        (second.id, 555, sent_at, DeliveryStatus.SENT),
    ]
    # A late retry or failure report must not undo a confirmed send.
    assert await outbox.mark_retry([first.id], error="late", next_attempt_at=NOW) == 0
    assert await outbox.mark_failed([first.id], error="late") == 0
    assert (await outbox.get(first.id)) == sent[0]


async def test_mark_retry_postpones_and_counts_attempts(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """A retried delivery stays pending, counts the attempt and is due again only later."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    await enqueue(db, outbox, [(dest.id, papers[0].id, ())])
    [delivery] = await outbox.claim_due(now=NOW, limit=10)
    later = NOW + timedelta(minutes=10)
    assert await outbox.mark_retry([delivery.id], error="503", next_attempt_at=later) == 1
    assert await outbox.claim_due(now=later - timedelta(microseconds=1), limit=10) == []
    [again] = await outbox.claim_due(now=later, limit=10)
    assert (again.id, again.attempts, again.last_error, again.status) == (
        delivery.id,
        1,
        "503",
        DeliveryStatus.PENDING,
    )
    assert again.next_attempt_at == later
    await outbox.mark_retry([delivery.id], error="503 again", next_attempt_at=later)
    retried = await outbox.get(delivery.id)
    assert retried is not None and retried.attempts == 2


async def test_mark_failed_is_final(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """A failed delivery is kept with its error, never claimed, and never re-queued."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    await enqueue(db, outbox, [(dest.id, papers[0].id, ())])
    [delivery] = await outbox.claim_due(now=NOW, limit=10)
    assert await outbox.mark_failed([delivery.id], error="403 Missing Access") == 1
    failed = await outbox.get(delivery.id)
    assert failed is not None
    assert (failed.status, failed.last_error, failed.attempts) == (
        DeliveryStatus.FAILED,
        "403 Missing Access",
        1,
    )
    assert await outbox.claim_due(now=NOW + timedelta(days=1), limit=10) == []
    assert await enqueue(db, outbox, [(dest.id, papers[0].id, ())]) == 0
    assert await outbox.mark_sent([delivery.id], message_id=1, at=NOW) == 0


async def test_counts_by_status(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """counts() reports every status, pending_count() the pending ones."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    assert await outbox.counts() == {s: 0 for s in DeliveryStatus}
    await enqueue(db, outbox, [(dest.id, p.id, ()) for p in papers])
    ids = [d.id for d in await outbox.claim_due(now=NOW, limit=10)]
    await outbox.mark_sent(ids[:2], message_id=1, at=NOW)
    await outbox.mark_failed(ids[2:3], error="gone")
    assert await outbox.counts() == {
        DeliveryStatus.PENDING: 2,
        DeliveryStatus.SENT: 2,
        DeliveryStatus.FAILED: 1,
    }
    assert await outbox.pending_count() == 2


async def test_remove_destination_drops_its_deliveries(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """A deleted channel's pending deliveries go with it; other destinations keep theirs."""
    gone = await subs.ensure_destination(CHANNEL, 100, 1)
    kept = await subs.ensure_destination(CHANNEL, 200, 1)
    await enqueue(db, outbox, [(gone.id, papers[0].id, ()), (kept.id, papers[0].id, ())])
    await subs.remove_destination(gone.id)
    assert [d.destination.id for d in await outbox.claim_due(now=NOW, limit=10)] == [kept.id]
    assert await outbox.pending_count() == 1


async def test_enqueue_backfill_queues_stored_papers_once(
    outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """A backfill queues the given stored papers for one destination, skipping queued ones."""
    dest = await subs.ensure_destination(DM, 7, None)
    ids = [p.id for p in papers[:3]]
    assert await outbox.enqueue_backfill(dest.id, ids, ["author: S. Legg"], NOW) == 3
    assert await outbox.enqueue_backfill(dest.id, [papers[3].id, *ids], ["x"], NOW) == 1
    due = await outbox.claim_due(now=NOW, limit=10)
    assert [d.paper.id for d in due] == [*ids, papers[3].id]
    assert due[0].matched == ("author: S. Legg",)


async def test_assign_batch_binds_pending_unbound_rows_once(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """A batch takes the smallest delivery id; bound or finished rows are not rebound."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    await enqueue(db, outbox, [(dest.id, p.id, ()) for p in papers[:4]])
    d1, d2, d3, d4 = await outbox.claim_due(now=NOW, limit=10)
    await outbox.mark_sent([d4.id], message_id=9, at=NOW)
    assert await outbox.assign_batch([d3.id, d2.id]) == d2.id
    assert await outbox.assign_batch([d2.id, d3.id]) is None
    assert await outbox.assign_batch([d4.id]) is None
    assert await outbox.assign_batch([]) is None
    assert await outbox.assign_batch([d1.id, d2.id]) == d1.id  # only d1 was still unbound
    batches = {d.id: d.batch_id for d in await outbox.claim_due(now=NOW, limit=10)}
    assert batches == {d1.id: d1.id, d2.id: d2.id, d3.id: d2.id}


async def test_claim_due_keeps_batches_whole(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """A claimed row brings its whole batch along, even past the limit."""
    dest = await subs.ensure_destination(CHANNEL, 100, 1)
    await enqueue(db, outbox, [(dest.id, p.id, ()) for p in papers])
    ids = [d.id for d in await outbox.claim_due(now=NOW, limit=10)]
    await outbox.assign_batch(ids[:3])
    later = NOW + timedelta(minutes=1)
    await outbox.mark_retry(ids[:3], error="503", next_attempt_at=later)
    assert [d.id for d in await outbox.claim_due(now=later, limit=1)] == ids[:3]
    assert [d.id for d in await outbox.claim_due(now=NOW, limit=1)] == [ids[3]]


@pytest.mark.parametrize("any_db", [POSTGRES], indirect=True)  # leases are PostgreSQL's
async def test_concurrent_claims_on_postgres_are_disjoint(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository
) -> None:
    """Two processes claiming at once (SKIP LOCKED + lease) never get the same delivery."""
    stored = [make_paper(n) for n in range(10, 70)]
    await PaperRepository(db).upsert_many(stored)
    dest = await subs.ensure_destination(DM, 555, None)
    await enqueue(db, outbox, [(dest.id, p.id, ("keyword: x",)) for p in stored])
    assert db.is_postgres and db.url is not None
    other_db = await open_postgres(db.url, schema=db.schema)
    try:
        # Four "processes": two outboxes on each of two connection pools.
        boxes = [DeliveryOutbox(d) for d in (db, other_db, db, other_db)]
        results = await asyncio.gather(*(box.claim_due(now=NOW, limit=7) for box in boxes))
        claimed = [d.id for batch in results for d in batch]
        assert len(claimed) == len(set(claimed)) == 28
        # Leased rows stay with their claimer until the lease runs out...
        other = DeliveryOutbox(other_db)
        rest = await other.claim_due(now=NOW, limit=100)
        assert {d.id for d in rest}.isdisjoint(claimed) and len(rest) == 32
        # A claimer may always take its own leased rows again (its next pass).
        again = await boxes[0].claim_due(now=NOW, limit=100)
        assert {d.id for d in again} == {d.id for d in results[0]}
        # ...and then another process may take them over (its owner died).
        later = await DeliveryOutbox(db).claim_due(
            now=NOW + CLAIM_LEASE + timedelta(seconds=1), limit=100
        )
        assert {d.id for d in later} == set(claimed) | {d.id for d in rest}
        # A clean shutdown gives its leases back: others may send those rows at once.
        mine = {d.id for d in await boxes[1].claim_due(now=NOW + 3 * CLAIM_LEASE, limit=5)}
        assert len(mine) == 5 and await boxes[1].release_claims() == 5
        assert mine <= {
            d.id for d in await boxes[2].claim_due(now=NOW + 3 * CLAIM_LEASE, limit=100)
        }
    finally:
        await other_db.close()


async def test_for_destination_paper_reads_one_destination_and_one_paper(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """/why's read: every event of one paper for one destination, nothing of others."""
    mine = await subs.ensure_destination(CHANNEL, 100, 1)
    other = await subs.ensure_destination(CHANNEL, 200, 2)
    target = papers[0].id
    await enqueue(db, outbox, [(mine.id, target, ("category: cs.LG",)),
                               (mine.id, papers[1].id, ()), (other.id, target, ())])  # fmt: skip
    async with db.transaction() as conn:
        version = OutboxAlert(mine.id, target, ("paper: x",), AlertEvent.VERSION, 2, "v2")
        await outbox.enqueue(conn, [version], now=NOW)
    first = (await outbox.for_destination_paper(mine.id, target))[0]
    await outbox.mark_sent([first.id], message_id=77, at=NOW)
    rows = await outbox.for_destination_paper(mine.id, target)
    assert [(d.paper.id, d.event, d.version, d.status, d.message_id) for d in rows] == [
        (target, AlertEvent.ANNOUNCED, 0, DeliveryStatus.SENT, 77),
        (target, AlertEvent.VERSION, 2, DeliveryStatus.PENDING, None),
    ]
    assert rows[0].matched == ("category: cs.LG",)
    assert await outbox.for_destination_paper(mine.id, "2411.99999") == []


async def test_enqueue_keeps_hostile_text_verbatim(
    db: Store, outbox: DeliveryOutbox, subs: SubscriptionRepository, papers: list[Paper]
) -> None:
    """Descriptions and notes with quotes, backslashes and non-ASCII read back unchanged."""
    dest = await subs.ensure_destination(DM, 7, None)
    matched = ('keyword: "a\\b"', "author: Grégoire Delétang", "[1, 2]")
    note = "v2 'notes' \"quoted\" ü"
    async with db.transaction() as conn:
        alert = OutboxAlert(dest.id, papers[0].id, matched, AlertEvent.VERSION, 2, note)
        assert await outbox.enqueue(conn, [alert], now=NOW) == 1
    [delivery] = await outbox.claim_due(now=NOW, limit=5)
    assert (delivery.matched, delivery.note, delivery.version) == (matched, note, 2)
