"""Backfill: the newest stored papers a new subscription matches, queued as alerts.

`SubscriptionService.subscribe` (`bot.subscribing`) asks for at most `MAX_BACKFILL`
of them. The ingest matcher decides, so a backfill obeys the same rules as live
alerts; the papers go through the outbox like any other alert, oldest first.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.domain.matching import match_subscriptions
from bot.domain.models import Paper, Subscription, SubscriptionKind
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository

log = logging.getLogger(__name__)

MAX_BACKFILL = 10
# Backfill reads growing windows of stored candidates, because the exact matcher
# (cross-lists, replacements, given names, phrases) may drop many of them; the
# last window bounds the work for a subscription that matches almost nothing.
_BACKFILL_WINDOWS = (50, 200, 1000)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Backfiller:
    """Queues a subscription's past matches from the catalogue through the outbox."""

    def __init__(self, store: PaperRepository, outbox: DeliveryOutbox) -> None:
        self.store = store
        self.outbox = outbox

    async def queue(self, sub: Subscription, count: int, *, now: datetime) -> int:
        """Queue the `count` newest stored papers that `sub` matches (oldest posted first)."""
        chosen: list[Paper] = []
        for window in _BACKFILL_WINDOWS:
            candidates = await self._candidates(sub, window)
            # The ingest matcher decides, so a backfill obeys the same rules as live alerts.
            matched = {m.paper.id for m in match_subscriptions(candidates, [sub])}
            hits = [p for p in candidates if p.id in matched]
            chosen = sorted(hits, key=_newness, reverse=True)[:count]
            if len(chosen) == count or len(candidates) < window:
                break
        if not chosen:
            return 0
        chosen.reverse()  # the outbox posts in queue order: oldest of the batch first
        queued = await self.outbox.enqueue_backfill(
            sub.destination.id, [p.id for p in chosen], [sub.describe()], now
        )
        log.info("backfill subscription=%d queued=%d", sub.id, queued)
        return queued

    async def _candidates(self, sub: Subscription, limit: int) -> list[Paper]:
        """The `limit` newest (category, author) or best (keyword) stored papers to check."""
        store = self.store
        if sub.kind in (SubscriptionKind.PAPER, SubscriptionKind.QUERY):
            # A followed paper has no past to post, only its next versions; a query's
            # past is what its preview showed.
            return []
        if sub.kind is SubscriptionKind.CATEGORY:
            return list(await store.latest(limit=limit, category=sub.match_key))
        if sub.kind is SubscriptionKind.AUTHOR:
            return list((await store.by_author(sub.value, limit=limit, offset=0)).papers)
        hits = await store.search(sub.value, category=None, since=None, limit=limit, offset=0)
        return [hit.paper for hit in hits]


def _newness(paper: Paper) -> tuple[datetime, str]:
    return (paper.published or paper.first_seen or paper.updated or _EPOCH, paper.id)
