"""Operator commands: /paperbell status, /paperbell poll and /paperbell resume.

Discord applies `default_permissions` to top-level commands only, so the whole
`/paperbell` group is hidden from members without Manage Server by default
(server admins can open it up in Integrations). `poll` also checks the
permission at run time, because that default is only a default.
"""

from __future__ import annotations

import logging
from datetime import datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.announcements import listing_lines
from bot.cogs.subscriptions import check_channel_target
from bot.discord_bot import PaperbellBot, StatusReport
from bot.embeds import CONTENT_LIMIT, truncate
from bot.errors import InvalidInputError
from bot.services import PollOutcome, PollReport

log = logging.getLogger(__name__)

ERROR_CHARS = 150


def _when(value: datetime | None, never: str = "never") -> str:
    if value is None:
        return never
    return f"{discord.utils.format_dt(value, 'f')} ({discord.utils.format_dt(value, 'R')})"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def status_text(report: StatusReport) -> str:
    """The /paperbell status answer: feed health, store size, outbox backlog."""
    healthy = sum(1 for f in report.feeds if f.consecutive_failures == 0)
    lines = [
        "**paperbell status**",
        f"Last poll: {_when(report.last_poll)}",
        f"Next poll: {_when(report.next_poll, 'not scheduled')}",
        f"Feeds: {healthy} of {len(report.feeds)} healthy" if report.feeds else "Feeds: none yet",
    ]
    errors = [(f.last_error_at, f) for f in report.feeds if f.last_error and f.last_error_at]
    if errors:
        at, last = max(errors, key=lambda pair: pair[0])
        recovered = last.last_success is not None and last.last_success > at
        message = discord.utils.escape_markdown(truncate(last.last_error or "", ERROR_CHARS))
        state = " (recovered since)" if recovered else ""
        lines.append(f"Last error: {_when(at)}{state}: {message}")
    else:
        lines.append("Last error: none")
    lines.append(
        f"Stored: {_plural(report.papers, 'paper')} · "
        f"{_plural(report.subscriptions, 'subscription')} · "
        f"outbox backlog: {_plural(report.backlog, 'alert')}"
    )
    if report.listings:
        lines.append("Announcements of the last listings:")
        lines.extend(f"`{line}`" for line in listing_lines(report.listings))
    if report.quiet_note:
        lines.append(report.quiet_note)
    return truncate("\n".join(lines), CONTENT_LIMIT)


def poll_text(report: PollReport) -> str:
    """The /paperbell poll answer: what the poll found and queued."""
    if not report.feeds:
        return "Nothing to poll: no channel or user has a subscription yet."
    lines = [
        f"Polled {_plural(len(report.feeds), 'feed')}: {_plural(len(report.new), 'new paper')}, "
        f"{_plural(report.deliveries, 'alert')} queued."
    ]
    stale = sum(
        1 for f in report.feeds if f.outcome in (PollOutcome.STALE, PollOutcome.NOT_MODIFIED)
    )
    if stale:
        lines.append(
            f"{_plural(stale, 'feed')} still served the listing already seen "
            "(arXiv rebuilds its feeds once a day, around 05:00 UTC on weekdays)."
        )
    if report.errors:
        lines.append(
            f"{_plural(len(report.errors), 'feed')} failed; the scheduled poll will retry. "
            "See `/paperbell status`."
        )
    return "\n".join(lines)


class Admin(commands.Cog):
    """Feed health and manual polling for server admins."""

    paperbell = app_commands.Group(
        name="paperbell",
        description="paperbell's own status and maintenance.",
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: PaperbellBot) -> None:
        self.bot = bot

    @paperbell.command(name="status")
    async def status(self, interaction: discord.Interaction[PaperbellBot]) -> None:
        """Feed health: last and next poll, last error, papers stored, alerts waiting."""
        report = await self.bot.status_report()
        await interaction.response.send_message(status_text(report), ephemeral=True)

    @paperbell.command(name="poll")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def poll(self, interaction: discord.Interaction[PaperbellBot]) -> None:
        """Poll arXiv now instead of waiting for the schedule (Manage Server)."""
        # Polling waits on arXiv (3 s between requests): defer before anything else.
        await interaction.response.defer(ephemeral=True, thinking=True)
        log.info("manual poll by=%s guild=%s", interaction.user.id, interaction.guild_id)
        report = await self.bot.poll_now()
        await interaction.followup.send(poll_text(report), ephemeral=True)

    @paperbell.command(name="resume")
    @app_commands.describe(channel="The paused channel (the bot must be able to post there again)")
    async def resume(
        self, interaction: discord.Interaction[PaperbellBot], channel: discord.TextChannel
    ) -> None:
        """Resume alerts to a channel that was paused because the bot could not post there."""
        if interaction.guild_id is None:
            raise InvalidInputError("Run this in the server that owns the channel.")
        check_channel_target(interaction, channel)
        dest = await self.bot.subscriptions.resume_channel(
            guild_id=interaction.guild_id, channel_id=channel.id
        )
        await interaction.response.send_message(
            f"Alerts to {channel.mention} are running (destination #{dest.id}).", ephemeral=True
        )

    @paperbell.command(name="digest")
    @app_commands.describe(
        channel="A channel with paperbell subscriptions",
        enabled="On: several alerts at once come as one compact list; off: one embed each",
    )
    async def digest(
        self,
        interaction: discord.Interaction[PaperbellBot],
        channel: discord.TextChannel,
        enabled: bool,
    ) -> None:
        """Post a channel's alerts as a compact list when several arrive together."""
        if interaction.guild_id is None:
            raise InvalidInputError("Run this in the server that owns the channel.")
        check_channel_target(interaction, channel)
        await self.bot.subscriptions.set_digest(
            guild_id=interaction.guild_id, channel_id=channel.id, enabled=enabled
        )
        mode = "as a compact list when several arrive together" if enabled else "one embed each"
        await interaction.response.send_message(
            f"Alerts in {channel.mention} will come {mode}.", ephemeral=True
        )


async def setup(bot: PaperbellBot) -> None:
    await bot.add_cog(Admin(bot))
