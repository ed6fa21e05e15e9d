"""Telling people in Discord when paperbell cannot do its job for them.

A paused channel (the bot lost its permission to post) is explained to the
people who subscribed it, by DM, since the channel itself is the one place the
bot cannot write to. Each destination is told once per pause.
"""

from __future__ import annotations

import logging

import aiohttp
import discord

from bot.domain.models import Destination
from bot.subscribing import SubscriptionService

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, client: discord.Client, subscriptions: SubscriptionService) -> None:
        self.client = client
        self.subscriptions = subscriptions

    async def channel_paused(self, destination: Destination, reason: str) -> int:
        """DM the subscribers of a paused channel; return how many were told."""
        creators = await self.subscriptions.creators(destination.id)
        text = (
            f"paperbell can no longer post in <#{destination.target_id}>: {reason}. "
            "Alerts for that channel are paused and kept. Fix the channel's permissions, "
            "then run `/subscribe` there again (or `/paperbell resume`) to resume them."
        )
        return await self._dm_all(creators, text)

    async def feed_failing(self, user_ids: list[int], url: str, since: str) -> int:
        text = (
            f"paperbell has not been able to read arXiv's listing since {since}. "
            "Alerts will resume when it recovers; nothing is lost."
        )
        return await self._dm_all(user_ids, text)

    async def _dm_all(self, user_ids: list[int], text: str) -> int:
        told = 0
        for user_id in user_ids:
            try:
                dm = await self.client.create_dm(discord.Object(user_id))
                await dm.send(text, allowed_mentions=discord.AllowedMentions.none())
                told += 1
            except discord.HTTPException as exc:
                log.info("could not notify user=%d status=%s", user_id, exc.status)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                # Best effort: the pause itself is already recorded.
                log.info("could not notify user=%d error=%s", user_id, type(exc).__name__)
        return told
