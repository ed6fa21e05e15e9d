"""👍/👎 buttons under alert messages, and what a click does.

The buttons are persistent (`bot.paper_buttons.PersistentButton`): their
`custom_id` (`pb:rate:<arXiv id>:<u|d>`) carries all the state and discord.py
routes clicks to `RateButton` by pattern, whenever the message was posted, with
no view kept in memory. The id is hostile input: it must match the strict
pattern in full, the paper must have been posted to the destination the click
comes from, and the rater must be able to see that channel (for DMs: be the
DM's user).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol, Self

import discord

from bot.domain.models import DestinationKind
from bot.paper_buttons import PersistentButton
from bot.ranker import MIN_RATINGS, Ranker
from bot.subscribing import SubscriptionService

log = logging.getLogger(__name__)

# New-style ids (2411.01234) and old-style ones (hep-th/9901001, math.AG/0101001).
_PAPER_ID = r"\d{4}\.\d{4,5}|[a-z][a-z-]{0,15}(?:\.[A-Z]{2})?/\d{7}"
TEMPLATE = rf"pb:rate:(?P<paper>{_PAPER_ID}):(?P<vote>[ud])"
MAX_RATED = 10  # papers with buttons per message: 2 buttons each, 4 a row, 5 rows
_PER_ROW = 4


def rate_id(paper_id: str, liked: bool) -> str:
    return f"pb:rate:{paper_id}:{'u' if liked else 'd'}"


class RateButton(PersistentButton, template=TEMPLATE):
    """One 👍 or 👎 button of one paper; the click records a rating for its destination."""

    def __init__(self, paper_id: str, liked: bool, *, label: str = "", row: int | None = None):
        super().__init__(
            discord.ui.Button(
                label=label or None,
                emoji="👍" if liked else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=rate_id(paper_id, liked),
                row=row,
            )
        )
        self.paper_id = paper_id
        self.liked = liked

    @classmethod
    def from_match(cls, interaction: discord.Interaction[Any], match: re.Match[str]) -> Self:
        return cls(match["paper"], match["vote"] == "u")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: _RatingHost = interaction.client
        await interaction.response.send_message(
            await rate(bot, interaction, self.paper_id, liked=self.liked), ephemeral=True
        )


class _RatingHost(Protocol):
    """What a click needs of the bot (`PaperbellBot`): its subscriptions and its ranker."""

    subscriptions: SubscriptionService
    ranker: Ranker


async def rate(
    bot: _RatingHost, interaction: discord.Interaction[Any], paper_id: str, *, liked: bool
) -> str:
    """Record the click's rating; returns what the rater is told."""
    if interaction.guild_id is None:
        # A DM with the bot (a user-installed app could be clicked in a group DM).
        if getattr(interaction.channel, "type", None) is not discord.ChannelType.private:
            return "Ratings are only taken in your DMs with paperbell or in a server channel."
        kind, target = DestinationKind.DM, interaction.user.id
    else:
        if interaction.channel_id is None or not interaction.permissions.view_channel:
            return "You cannot rate alerts in a channel you cannot see."
        kind, target = DestinationKind.CHANNEL, interaction.channel_id
    dest = await bot.subscriptions.repo.destination_for(kind, target)
    if dest is None or (kind is DestinationKind.CHANNEL and dest.guild_id != interaction.guild_id):
        return "This channel has no paperbell alerts to rate."
    if not await bot.ranker.ratings.was_delivered(dest.id, paper_id):
        log.info("rating refused: paper not posted to destination=%d", dest.id)
        return "That paper was not posted here, so it cannot be rated here."
    count = await bot.ranker.rate(dest.id, paper_id, interaction.user.id, liked=liked)
    where = "your DMs" if kind is DestinationKind.DM else "this channel"
    verdict = "👍" if liked else "👎"
    if count < MIN_RATINGS:
        return (
            f"{verdict} noted for {paper_id}: {count} rating(s) so far for {where}; "
            f"alerts are ranked from {MIN_RATINGS}."
        )
    return f"{verdict} noted for {paper_id}. Alerts to {where} are ranked by its {count} ratings."


def rating_view(paper_ids: Sequence[str]) -> discord.ui.View | None:
    """Buttons for the first `MAX_RATED` papers of a message (numbered when there are several).

    The view is stopped before it is sent: discord.py then keeps no copy per
    message, and clicks reach `RateButton` through its registered pattern.
    """
    ids = list(paper_ids)[:MAX_RATED]
    if not ids:
        return None
    view = discord.ui.View(timeout=None)
    numbered = len(paper_ids) > 1
    for index, paper_id in enumerate(ids):
        label = str(index + 1) if numbered else ""
        row = index * 2 // _PER_ROW
        view.add_item(RateButton(paper_id, True, label=label, row=row))
        view.add_item(RateButton(paper_id, False, label=label, row=row))
    view.stop()
    return view
