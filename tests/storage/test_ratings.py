"""Tests for storage.ratings: latest rating wins, tuning, kept-back alerts, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.models import DeliveryStatus, DestinationKind
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.ratings import FILTERED_PREFIX, Filtered, RatingRepository, Tuning
from storage.store import Store
from storage.subscriptions import SubscriptionRepository
from tests.storage.test_outbox import make_paper

NOW = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)


@pytest.fixture
def db(any_db: Store) -> Store:
    """Each test runs on SQLite and on PostgreSQL (tests/backends.py)."""
    return any_db


async def test_one_rating_per_user_latest_wins(db: Store) -> None:
    """A user's second click replaces the first; other users and destinations are separate."""
    subs = SubscriptionRepository(db)
    chan = await subs.ensure_destination(DestinationKind.CHANNEL, 10, 1)
    dm = await subs.ensure_destination(DestinationKind.DM, 20, None)
    ratings = RatingRepository(db)
    await ratings.rate(chan.id, "2411.00001", 7, liked=True, now=NOW)
    await ratings.rate(chan.id, "2411.00001", 7, liked=False, now=NOW + timedelta(seconds=1))
    await ratings.rate(chan.id, "2411.00001", 8, liked=True, now=NOW + timedelta(seconds=2))
    await ratings.rate(dm.id, "2411.00002", 20, liked=True, now=NOW)
    assert await ratings.count(chan.id) == 2
    assert await ratings.rated(chan.id, 10) == [("2411.00001", False), ("2411.00001", True)]
    assert await ratings.rated(chan.id, 1) == [("2411.00001", True)]
    assert await ratings.rated(dm.id, 10) == [("2411.00002", True)]
    assert await ratings.rated_destinations(2) == [chan.id]


async def test_tuning_replaced_and_cleared(db: Store) -> None:
    """Tuning is stored per destination, replaced by the next, removed when empty."""
    chan = await SubscriptionRepository(db).ensure_destination(DestinationKind.CHANNEL, 10, 1)
    ratings = RatingRepository(db)
    assert await ratings.tuning(chan.id) is None
    await ratings.set_tuning(chan.id, Tuning(top_k=3), user_id=5, now=NOW)
    await ratings.set_tuning(chan.id, Tuning(min_score=-0.25), user_id=5, now=NOW)
    assert await ratings.tuning(chan.id) == Tuning(None, -0.25)
    await ratings.set_tuning(chan.id, Tuning(), user_id=5, now=NOW)
    assert await ratings.tuning(chan.id) is None


async def test_kept_back_alerts_leave_the_outbox_with_a_marker(db: Store) -> None:
    """A kept-back alert is no longer pending, says "filtered:", and its score is recorded;
    a delivery already sent is left alone."""
    papers = [make_paper(n) for n in (1, 2, 3)]
    await PaperRepository(db).upsert_many(papers)
    chan = await SubscriptionRepository(db).ensure_destination(DestinationKind.CHANNEL, 10, 1)
    outbox = DeliveryOutbox(db)
    async with db.transaction() as conn:
        await outbox.enqueue(conn, [(chan.id, p.id, ("category: cs.LG",)) for p in papers], now=NOW)
    due = await outbox.claim_due(now=NOW, limit=10)
    first, second, third = sorted(due, key=lambda d: d.paper.id)
    await outbox.mark_sent([first.id], message_id=99, at=NOW)
    ratings = RatingRepository(db)
    assert await ratings.was_delivered(chan.id, first.paper.id)
    assert not await ratings.was_delivered(chan.id, second.paper.id)
    assert await ratings.sent_since(chan.id, NOW - timedelta(hours=1)) == 1
    assert await ratings.sent_since(chan.id, NOW + timedelta(hours=1)) == 0
    kept = [Filtered(first.id, 0.5, "top_k"), Filtered(second.id, -1.25, "min_score")]
    assert await ratings.keep_back(kept, now=NOW) == 1
    stored = await outbox.get(second.id)
    assert stored is not None and stored.status is DeliveryStatus.FAILED
    assert (stored.last_error or "").startswith(FILTERED_PREFIX)
    assert await ratings.filtered(second.id) == Filtered(second.id, -1.25, "min_score")
    assert await ratings.filtered(first.id) is None
    assert (await outbox.get(third.id)).status is DeliveryStatus.PENDING  # type: ignore[union-attr]
