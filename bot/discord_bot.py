"""The Discord client: resources passed in, start-up in `setup_hook`, shutdown in `close`.

`PaperbellBot` is an `AutoShardedBot` so one class serves a single process
(shard count chosen by Discord) and a sharded deployment (`--shard-count`,
`--shard-ids`). It owns no SQL and no business rules: the cogs call the
services attached here, the scheduler calls the poller and the deliverer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.arxiv.client import ArxivClient
from bot.config import Settings
from bot.delivery import Deliverer
from bot.domain.errors import UserError
from bot.domain.models import FeedState, ListingSummary
from bot.health import FeedAlerts
from bot.metrics import Metrics
from bot.notify import Notifier
from bot.poll_report import PollReport
from bot.ranker import Ranker
from bot.scheduling import PollScheduler
from bot.services import PaperService, utcnow
from bot.subscribing import SubscriptionService
from bot.views import APOLOGY, reply_ephemeral
from storage.locks import Leadership

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = (
    "bot.cogs.papers",
    "bot.cogs.subscriptions",
    "bot.cogs.admin",
    "bot.cogs.citations",
    "bot.cogs.why",
)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What `/paperbell status` shows in a server: feed health, papers stored, and that
    server's own subscriptions, paused channels and alerts waiting (never other servers')."""

    feeds: tuple[FeedState, ...]
    last_poll: datetime | None
    next_poll: datetime | None
    papers: int
    backlog: int
    subscriptions: int
    paused: int = 0
    listings: tuple[ListingSummary, ...] = ()  # last 7 listing days, newest first
    quiet_note: str | None = None  # why there is no listing today, when there is none


@dataclass(frozen=True, slots=True)
class PersonalStatus:
    """What `/paperbell status` shows by DM: the caller's own DM alerts, nothing global."""

    last_poll: datetime | None
    next_poll: datetime | None
    subscriptions: int
    pending: int
    paused_reason: str | None
    paused_at: datetime | None


class PaperbellTree(app_commands.CommandTree["PaperbellBot"]):
    """One error handler for every slash command."""

    async def on_error(
        self, interaction: discord.Interaction[PaperbellBot], error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        if isinstance(original, UserError):
            message = str(original)
        elif isinstance(error, app_commands.CheckFailure | app_commands.TransformerError):
            message = str(error) or "You can't use that command here."
        elif isinstance(error, app_commands.CommandOnCooldown):
            message = f"Slow down: try again in {error.retry_after:.0f} s."
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error(
                "command failed command=%s guild=%s", command, interaction.guild_id,
                exc_info=original,
            )  # fmt: skip
            message = APOLOGY
        await reply_ephemeral(interaction, message)


class PaperbellBot(commands.AutoShardedBot):
    """paperbell's Discord client. `bot.runner.build_bot` builds the services it is given."""

    def __init__(
        self,
        settings: Settings,
        papers: PaperService,
        subscriptions: SubscriptionService,
        *,
        arxiv: ArxivClient,
        leadership: Leadership,
        metrics: Metrics,
        feed_alerts: FeedAlerts,
        ranker: Ranker,
        shard_count: int | None = None,
        shard_ids: Sequence[int] | None = None,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        shard_kwargs: dict[str, Any] = {"shard_count": shard_count}
        if shard_ids is not None:
            shard_kwargs["shard_ids"] = list(shard_ids)
        intents = discord.Intents.none()
        intents.guilds = True  # channels and permissions; no members, no message content
        # paperbell never joins voice: skip discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        # discord.py takes one aiohttp trace; the deliverer watches message answers through it.
        self.http_trace = aiohttp.TraceConfig()
        self.metrics = metrics
        self.metrics.attach_discord(self.http_trace)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            **shard_kwargs,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=PaperbellTree,
            help_command=None,
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
            http_trace=self.http_trace,
            # With only the guilds intent GUILD_CREATEs arrive right after READY;
            # tests shorten the wait for stragglers.
            guild_ready_timeout=guild_ready_timeout,
        )
        self.settings = settings
        self.arxiv = arxiv
        self.papers = papers
        self.subscriptions = subscriptions
        self.ranker = ranker
        self.metrics.track_gateway_latency(lambda: self.latency)
        self.owns_dms = shard_ids is None or 0 in shard_ids
        # The pieces bound to this client (they post and DM through it).
        self.notifier = Notifier(self, subscriptions)
        self.deliverer = Deliverer(
            self,
            papers.outbox,
            subscriptions,
            self.notifier,
            metrics,
            ranker=ranker,
            owns_dms=self.owns_dms,
        )
        self.deliverer.gate.attach(self.http_trace)
        self.poll_scheduler = PollScheduler(
            settings, papers, arxiv, leadership, self.deliverer, self.notifier, metrics, feed_alerts
        )

    # ---- start-up and shutdown -------------------------------------------------------

    async def setup_hook(self) -> None:
        from bot.rating_buttons import RateButton

        self.add_dynamic_items(RateButton)  # 👍/👎 under alerts, whenever they were posted
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("failed to load extension=%s", extension)
                raise
        await self.sync_commands_if_changed()
        self.poll_scheduler.start()

    async def sync_commands_if_changed(self, *, force: bool = False) -> bool:
        """Sync the slash commands only when their definition changed (sync is rate limited)."""
        guild = discord.Object(self.settings.dev_guild) if self.settings.dev_guild else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [cmd.to_dict(self.tree) for cmd in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"commands:{guild.id if guild else 'global'}"
        if not force and await self.papers.get_meta(key) == digest:
            log.info("commands unchanged, not syncing scope=%s", "guild" if guild else "global")
            return False
        synced = await self.tree.sync(guild=guild)
        await self.papers.set_meta(key, digest)
        log.info("synced commands count=%d scope=%s", len(synced), "guild" if guild else "global")
        return True

    async def close(self) -> None:
        """Finish the delivery in flight, stop the scheduler, then disconnect."""
        await self.poll_scheduler.shutdown()
        await self.papers.lookups.close()
        await self.deliverer.drain()
        await self.ranker.close()
        await super().close()

    async def on_ready(self) -> None:
        log.info("ready user=%s guilds=%d shards=%s", self.user, len(self.guilds), self.shard_ids)
        self.deliverer.kick()

    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        removed = await self.subscriptions.channel_deleted(channel.id)
        if removed:
            log.info(
                "channel deleted, removed subscriptions channel=%s count=%d", channel.id, removed
            )

    # ---- used by the admin cog -------------------------------------------------------

    async def status_report(self, guild_id: int) -> StatusReport:
        """Shared feed health and catalogue size, with this guild's own counts."""
        stats = await self.papers.stats()
        feeds = tuple(await self.papers.feed_states())
        usage = await self.subscriptions.usage(guild_id=guild_id)
        return StatusReport(
            feeds=feeds,
            last_poll=self.poll_scheduler.last_poll,
            next_poll=self.poll_scheduler.next_poll(),
            papers=stats.papers,
            backlog=usage.pending,
            subscriptions=usage.subscriptions,
            paused=usage.paused,
            listings=tuple(await self.papers.recent_listings(7)),
            quiet_note=await self.papers.no_listing_note(),
        )

    async def personal_status(self, user_id: int) -> PersonalStatus:
        """A DM caller's own alerts: their DM subscriptions, whether DMs are paused, the backlog."""
        usage = await self.subscriptions.usage(user_id=user_id)
        dest = await self.subscriptions.dm_destination(user_id)
        return PersonalStatus(
            last_poll=self.poll_scheduler.last_poll,
            next_poll=self.poll_scheduler.next_poll(),
            subscriptions=usage.subscriptions,
            pending=usage.pending,
            paused_reason=dest.paused_reason if dest is not None else None,
            paused_at=dest.paused_at if dest is not None else None,
        )

    async def poll_now(self) -> PollReport:
        """Poll arXiv immediately (admin command) and post what it found."""
        return await self.poll_scheduler.poll_once(reason="admin")

    def now(self) -> datetime:
        return utcnow()
