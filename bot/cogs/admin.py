"""Operator commands: /paperbell status, poll, resume and digest.

Discord applies `default_permissions` to top-level commands only, so the whole
`/paperbell` group is hidden from members without Manage Server by default.
That is only a default (server admins can open it up in Integrations), so
every subcommand checks Manage Server at run time too, and `resume`/`digest`
also Manage Channels in the channel they change. By DM, `status` shows the
caller their own DM alerts and nothing else.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.subscriptions import check_channel_target
from bot.discord_bot import PaperbellBot, PersonalStatus, StatusReport
from bot.domain.announcements import listing_lines
from bot.domain.errors import InvalidInputError
from bot.domain.models import DestinationKind
from bot.embeds import CONTENT_LIMIT, safe, truncate
from bot.permissions import require_manage_guild
from bot.poll_report import PollOutcome, PollReport
from bot.ranker import MIN_RATINGS
from bot.redact import redact_urls
from storage.ratings import Tuning

log = logging.getLogger(__name__)

ERROR_CHARS = 150


def _channel_of_this_server(
    interaction: discord.Interaction[PaperbellBot],
    channel: discord.TextChannel,
    action: str,
    *,
    manage_guild: bool = True,
) -> int:
    """The prelude of the per-channel /paperbell commands; returns the server's id.

    Refuses a DM, a caller without Manage Server (unless not `manage_guild`), and a
    channel the caller may not manage or the bot cannot post in (`check_channel_target`,
    whose answer names `action`).
    """
    if interaction.guild_id is None:
        raise InvalidInputError("Run this in the server that owns the channel.")
    if manage_guild:
        require_manage_guild(interaction)
    check_channel_target(interaction, channel, action=action)
    return interaction.guild_id


def _when(value: datetime | None, never: str = "never") -> str:
    if value is None:
        return never
    return f"{discord.utils.format_dt(value, 'f')} ({discord.utils.format_dt(value, 'R')})"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def status_text(report: StatusReport) -> str:
    """The /paperbell status answer in a server: feed health, papers, this server's alerts."""
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
        message = safe(truncate(redact_urls(last.last_error or ""), ERROR_CHARS))
        state = " (recovered since)" if recovered else ""
        lines.append(f"Last error: {_when(at)}{state}: {message}")
    else:
        lines.append("Last error: none")
    lines.append(f"Stored: {_plural(report.papers, 'paper')}")
    paused = f" ({_plural(report.paused, 'paused channel')})" if report.paused else ""
    lines.append(
        f"This server: {_plural(report.subscriptions, 'subscription')}{paused} · "
        f"waiting to be posted: {_plural(report.backlog, 'alert')}"
    )
    if report.listings:
        lines.append("Announcements of the last listings:")
        lines.extend(f"`{line}`" for line in listing_lines(report.listings))
    if report.quiet_note:
        lines.append(report.quiet_note)
    return truncate("\n".join(lines), CONTENT_LIMIT)


def personal_status_text(report: PersonalStatus) -> str:
    """The /paperbell status answer by DM: the caller's own DM alerts, nothing global."""
    lines = [
        "**Your paperbell DMs**",
        f"Last poll: {_when(report.last_poll)}",
        f"Next poll: {_when(report.next_poll, 'not scheduled')}",
        f"Your DM subscriptions: {report.subscriptions:,}",
    ]
    if report.paused_reason is not None:
        reason = safe(truncate(redact_urls(report.paused_reason), ERROR_CHARS))
        lines.append(
            f"Paused {_when(report.paused_at, 'earlier')}: {reason}. Check that your privacy "
            "settings let the bot DM you, then `/subscribe` again to resume."
        )
    elif report.subscriptions:
        lines.append("Alerts by DM: running")
    lines.append(f"Waiting to be sent to you: {_plural(report.pending, 'alert')}")
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
        """Feed health and this server's alerts (Manage Server); by DM, your own alerts."""
        if interaction.guild_id is None:
            personal = await self.bot.personal_status(interaction.user.id)
            text = personal_status_text(personal)
        else:
            require_manage_guild(interaction)
            text = status_text(await self.bot.status_report(interaction.guild_id))
        await interaction.response.send_message(text, ephemeral=True)

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
        guild_id = _channel_of_this_server(interaction, channel, "resume its alerts")
        dest = await self.bot.subscriptions.resume_channel(guild_id=guild_id, channel_id=channel.id)
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
        guild_id = _channel_of_this_server(interaction, channel, "change how its alerts come")
        await self.bot.subscriptions.set_digest(
            guild_id=guild_id, channel_id=channel.id, enabled=enabled
        )
        mode = "as a compact list when several arrive together" if enabled else "one embed each"
        await interaction.response.send_message(
            f"Alerts in {channel.mention} will come {mode}.", ephemeral=True
        )

    @paperbell.command(name="tune")
    @app_commands.rename(top="top", min_score="min-score")
    @app_commands.describe(
        channel="A channel whose alerts are ranked from its 👍/👎 ratings",
        top="Post at most this many alerts a day, the best ranked",
        min_score="Post only alerts the channel's model scores at least this (0 is neutral)",
    )
    async def tune(
        self,
        interaction: discord.Interaction[PaperbellBot],
        channel: discord.TextChannel,
        top: app_commands.Range[int, 1, 100] | None = None,
        min_score: app_commands.Range[float, -10.0, 10.0] | None = None,
    ) -> None:
        """Keep only a rated channel's best alerts (no limit given: post them all again)."""
        guild_id = _channel_of_this_server(
            interaction, channel, "tune its alerts", manage_guild=False
        )
        if min_score is not None and not math.isfinite(min_score):
            raise InvalidInputError("min-score must be a number between -10 and 10.")
        dest = await self.bot.subscriptions.repo.destination_for(
            DestinationKind.CHANNEL, channel.id
        )
        if dest is None or dest.guild_id != guild_id:
            raise InvalidInputError("That channel has no paperbell subscriptions.")
        ratings = await self.bot.ranker.tune(
            dest.id, Tuning(top, min_score), user_id=interaction.user.id
        )
        if top is None and min_score is None:
            text = f"Every matching alert will be posted in {channel.mention} again."
        else:
            limits = [f"the best {top} a day"] if top is not None else []
            limits += [f"those scoring at least {min_score:g}"] if min_score is not None else []
            text = f"Alerts in {channel.mention} will keep only {' and '.join(limits)}."
            if ratings < MIN_RATINGS:
                text += (
                    f" It has {ratings} rating(s): until it has {MIN_RATINGS}, "
                    "alerts are not ranked and nothing is held back."
                )
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: PaperbellBot) -> None:
    await bot.add_cog(Admin(bot))
