"""/why's data: gather what the store knows about one paper for one destination.

Shared by the cog (and any CLI that wants it): reads the catalogue, the
paper's announcements, the destination with its subscriptions and its outbox
rows for the paper, and hands them to the pure `bot.domain.why.explain`. Callers have
already checked that the caller may see the destination; this module only
makes sure a channel answer never reads another server's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.domain.models import Delivery, Destination, DestinationKind
from bot.domain.why import Explanation, RankingFilter, WhyFacts, explain
from storage.announcements import AnnouncementRepository
from storage.outbox import DeliveryOutbox
from storage.papers import PaperRepository
from storage.ratings import RatingRepository
from storage.subscriptions import SubscriptionRepository

log = logging.getLogger(__name__)


class WhyService:
    """Explains alerts from the store; see `bot.domain.why` for the reasoning."""

    def __init__(
        self,
        papers: PaperRepository,
        announcements: AnnouncementRepository,
        subscriptions: SubscriptionRepository,
        outbox: DeliveryOutbox,
        ratings: RatingRepository | None = None,
    ) -> None:
        self.papers = papers
        self.announcements = announcements
        self.subscriptions = subscriptions
        self.outbox = outbox
        self.ratings = ratings

    async def for_channel(self, paper_id: str, *, guild_id: int, channel_id: int) -> Explanation:
        """Why `paper_id` (versionless) was or was not sent to a channel of `guild_id`."""
        destination = await self.subscriptions.destination_for(DestinationKind.CHANNEL, channel_id)
        if destination is not None and destination.guild_id != guild_id:
            destination = None  # another server's channel: know nothing of it
        return await self._explain(paper_id, destination)

    async def for_dms(self, paper_id: str, *, user_id: int) -> Explanation:
        """Why `paper_id` was or was not sent to the user's DMs."""
        destination = await self.subscriptions.destination_for(DestinationKind.DM, user_id)
        return await self._explain(paper_id, destination)

    async def ranking_filter(
        self, destination: Destination, deliveries: Sequence[Delivery]
    ) -> RankingFilter | None:
        """The threshold (`/paperbell tune`) that kept one of these alerts back, if any:
        the ranking records each alert it holds back with its score and rule."""
        if self.ratings is None:
            return None
        for delivery in deliveries:
            held = await self.ratings.filtered(delivery.id)
            if held is None:
                continue
            tuning = await self.ratings.tuning(destination.id)
            if held.reason == "top_k":
                rule = f"top:{tuning.top_k}" if tuning and tuning.top_k else "top:K"
            else:
                known = tuning is not None and tuning.min_score is not None
                rule = f"min-score:{tuning.min_score:g}" if known and tuning else "min-score"
            return RankingFilter(rule, held.score)
        return None

    async def _explain(self, paper_id: str, destination: Destination | None) -> Explanation:
        paper = await self.papers.get(paper_id)
        announcements = await self.announcements.for_paper(paper_id)
        if destination is None:
            facts = WhyFacts(paper_id, paper, announcements, None, (), ())
            return explain(facts)
        deliveries = await self.outbox.for_destination_paper(destination.id, paper_id)
        facts = WhyFacts(
            paper_id,
            paper,
            announcements,
            destination,
            await self.subscriptions.list_destination(destination.id),
            deliveries,
            await self.ranking_filter(destination, deliveries),
        )
        return explain(facts)
