"""Posting alerts from the outbox to Discord, exactly once.

The outbox row is the source of truth. Before a message is sent its deliveries
are bound to a batch whose id gives the message's `nonce`; the rows are marked
sent only after Discord confirmed the message. If the process dies after the
POST but before the mark, the restart re-sends the same batch with the same
nonce and Discord answers with the message it already has (`enforce_nonce`),
so every alert appears exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import aiohttp
import discord

from bot.embeds import alert_embed, digest_embed, group_embeds
from bot.services import utcnow
from storage.models import Delivery, Destination, DestinationKind

if TYPE_CHECKING:
    from bot.discord_bot import PaperbellBot

log = logging.getLogger(__name__)

CLAIM_LIMIT = 500
DIGEST_MIN_ITEMS = 4  # digest mode only kicks in when a destination has this many waiting
MAX_BACKOFF = timedelta(hours=1)

# Discord JSON error codes that mean "this destination is not going to work".
UNKNOWN_CHANNEL = 10003
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
CANNOT_DM_USER = 50007


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    messages: int = 0
    retried: int = 0
    failed: int = 0
    paused_destinations: int = 0


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at an hour."""
    return min(timedelta(seconds=30 * 2 ** min(attempts, 10)), MAX_BACKOFF)


class Deliverer:
    """Drains the outbox; one pass at a time, woken by the scheduler or a fresh ingest."""

    def __init__(self, bot: PaperbellBot) -> None:
        self.bot = bot
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[DeliveryReport] | None = None
        self._dm_channels: dict[int, int] = {}
        self.totals = DeliveryReport()

    def kick(self) -> None:
        """Start a pass now unless one is running (then it will pick the new rows up)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run_once(), name="paperbell-delivery")
            self._task.add_done_callback(self._log_crash)

    @staticmethod
    def _log_crash(task: asyncio.Task[DeliveryReport]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery pass crashed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for the pass in flight (used at shutdown: finish it, start no other)."""
        async with self._lock:
            pass
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def _scope(self) -> tuple[list[int] | None, bool]:
        """Which deliveries this process owns: its shards' guilds, and DMs on shard 0."""
        if self.bot.shard_count is None or self.bot.shard_count <= 1:
            return None, True
        return [g.id for g in self.bot.guilds], self.bot.owns_dms

    async def run_once(self) -> DeliveryReport:
        report = DeliveryReport()
        async with self._lock:
            if self.bot.is_closed():
                return report
            while True:
                guild_ids, include_dms = self._scope()
                due = await self.bot.papers.outbox.claim_due(
                    now=utcnow(), limit=CLAIM_LIMIT, guild_ids=guild_ids, include_dms=include_dms
                )
                if not due:
                    break
                by_destination: dict[int, list[Delivery]] = defaultdict(list)
                for delivery in due:
                    by_destination[delivery.destination.id].append(delivery)
                progressed = False
                for items in by_destination.values():
                    before = report.sent
                    await self._deliver_destination(items, report)
                    progressed = progressed or report.sent > before
                if not progressed or len(due) < CLAIM_LIMIT:
                    break
        self._add_totals(report)
        if report.sent or report.failed or report.retried:
            log.info(
                "delivery pass sent=%d messages=%d retried=%d failed=%d paused=%d",
                report.sent, report.messages, report.retried, report.failed,
                report.paused_destinations,
            )  # fmt: skip
        return report

    def _add_totals(self, report: DeliveryReport) -> None:
        self.totals.sent += report.sent
        self.totals.messages += report.messages
        self.totals.retried += report.retried
        self.totals.failed += report.failed
        self.totals.paused_destinations += report.paused_destinations

    async def _batches(self, items: Sequence[Delivery]) -> list[list[Delivery]]:
        """Existing batches first (a retry must resend exactly the same group), then new ones."""
        outbox = self.bot.papers.outbox
        existing: dict[int, list[Delivery]] = defaultdict(list)
        fresh: list[Delivery] = []
        for delivery in items:
            if delivery.batch_id is not None:
                existing[delivery.batch_id].append(delivery)
            else:
                fresh.append(delivery)
        batches = [existing[key] for key in sorted(existing)]
        destination = items[0].destination
        if fresh:
            if destination.digest and len(fresh) >= DIGEST_MIN_ITEMS:
                groups = _digest_groups(fresh)
            else:
                embeds = [alert_embed(d.paper, d.matched) for d in fresh]
                groups = [[fresh[i] for i in group] for group in group_embeds(embeds)]
            for group in groups:
                await outbox.assign_batch([d.id for d in group])
                batches.append(group)
        return batches

    async def _deliver_destination(self, items: Sequence[Delivery], report: DeliveryReport) -> None:
        destination = items[0].destination
        outbox = self.bot.papers.outbox
        for batch in await self._batches(items):
            ids = [d.id for d in batch]
            nonce = f"pb{min(ids)}"
            try:
                channel = await self._channel_for(destination)
                if destination.digest and len(batch) >= DIGEST_MIN_ITEMS:
                    title = f"{len(batch)} new papers on arXiv"
                    message = await channel.send(
                        embed=digest_embed([(d.paper, d.matched) for d in batch], title=title),
                        nonce=nonce,
                        allowed_mentions=discord.AllowedMentions.none(),
                    )
                else:
                    message = await channel.send(
                        embeds=[alert_embed(d.paper, d.matched) for d in batch],
                        nonce=nonce,
                        allowed_mentions=discord.AllowedMentions.none(),
                    )
            except discord.Forbidden as exc:
                await self._pause(destination, exc)
                report.paused_destinations += 1
                return
            except discord.NotFound as exc:
                await self._gone(destination, ids, exc)
                report.failed += len(batch)
                return
            except discord.HTTPException as exc:
                if exc.status >= 500 or exc.status == 429:
                    await self._retry(batch, f"discord {exc.status}")
                    report.retried += len(batch)
                    return  # keep order within the destination: try the rest later
                log.error(
                    "discord rejected alert batch=%s status=%s code=%s", nonce, exc.status, exc.code
                )
                await outbox.mark_failed(ids, error=f"discord {exc.status} code {exc.code}")
                report.failed += len(batch)
                continue
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                await self._retry(batch, f"network: {type(exc).__name__}")
                report.retried += len(batch)
                return
            await outbox.mark_sent(ids, message_id=message.id, at=utcnow())
            report.sent += len(batch)
            report.messages += 1

    async def _channel_for(self, destination: Destination) -> discord.abc.Messageable:
        if destination.kind is DestinationKind.CHANNEL:
            return self.bot.get_partial_messageable(
                destination.target_id, guild_id=destination.guild_id
            )
        channel_id = self._dm_channels.get(destination.target_id)
        if channel_id is None:
            dm = await self.bot.create_dm(discord.Object(destination.target_id))
            channel_id = self._dm_channels[destination.target_id] = dm.id
        return self.bot.get_partial_messageable(channel_id, type=discord.ChannelType.private)

    async def _retry(self, batch: Sequence[Delivery], error: str) -> None:
        attempts = max(d.attempts for d in batch)
        await self.bot.papers.outbox.mark_retry(
            [d.id for d in batch], error=error, next_attempt_at=utcnow() + backoff(attempts)
        )
        log.warning(
            "alert batch will be retried batch=pb%d error=%s", min(d.id for d in batch), error
        )

    async def _pause(self, destination: Destination, exc: discord.HTTPException) -> None:
        if destination.kind is DestinationKind.DM:
            reason = "the user does not accept DMs from the bot"
        else:
            reason = "missing permission to post (needs View Channel, Send Messages, Embed Links)"
        await self.bot.subscriptions.pause(destination.id, reason)
        log.warning(
            "destination paused id=%d kind=%s target=%d code=%s",
            destination.id, destination.kind.value, destination.target_id, exc.code,
        )  # fmt: skip
        if destination.kind is DestinationKind.CHANNEL:
            await self.bot.notifier.channel_paused(destination, reason)

    async def _gone(
        self, destination: Destination, ids: Sequence[int], exc: discord.HTTPException
    ) -> None:
        log.warning(
            "destination gone, removing subscriptions id=%d target=%d code=%s",
            destination.id, destination.target_id, exc.code,
        )  # fmt: skip
        await self.bot.papers.outbox.mark_failed(ids, error="channel deleted")
        await self.bot.subscriptions.destination_gone(destination.id)


def _digest_groups(items: Sequence[Delivery]) -> list[list[Delivery]]:
    """Split a digest destination's backlog into messages of one compact embed each."""
    from bot.embeds import digest_capacity

    groups: list[list[Delivery]] = []
    rest = list(items)
    while rest:
        size = digest_capacity([(d.paper, d.matched) for d in rest])
        groups.append(rest[:size])
        rest = rest[size:]
    return groups
