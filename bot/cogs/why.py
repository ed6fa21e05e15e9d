"""/why: why a paper was or was not sent to a channel, or to the caller's DMs.

Thin: the id is parsed here (a typo gets a private answer at once), the
caller's right to see the channel is checked at run time on that channel,
`WhyService` gathers the facts and `bot.domain.why` reasons about them; `why_reply`
renders the answer, escaping every arXiv- or user-controlled text. Always
ephemeral: it can show a channel's subscriptions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot import PaperbellBot
from bot.domain.errors import InvalidInputError, PermissionDeniedError
from bot.domain.ids import InvalidArxivIdError, parse_arxiv_id
from bot.domain.models import AlertEvent, Announcement, AnnounceType
from bot.domain.why import Explanation, Reason, SentAlert
from bot.embeds import CONTENT_LIMIT, link_text, safe, truncate
from bot.permissions import caller_permissions_in
from bot.why_service import WhyService

log = logging.getLogger(__name__)

MAX_ID = 200
LISTED = 10  # subscriptions named in a "no match" answer
TEXT_CHARS = 300  # per quoted piece of user or arXiv text


def _list(items: Sequence[str], limit: int = LISTED) -> str:
    shown = [truncate(safe(item), TEXT_CHARS) for item in items[:limit]]
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(shown) + more


def _announced(announcement: Announcement | None) -> str:
    if announcement is None:
        return "announced"
    kind = {
        AnnounceType.NEW: "as new",
        AnnounceType.CROSS: "as a cross-list",
        AnnounceType.REPLACE: f"as a replacement (v{announcement.version})",
        AnnounceType.REPLACE_CROSS: f"as a cross-listed replacement (v{announcement.version})",
    }[announcement.announce_type]
    return f"announced {announcement.listing_date.isoformat()} {kind}"


def _sent_line(alert: SentAlert) -> str:
    what = {
        AlertEvent.ANNOUNCED: "Alert",
        AlertEvent.VERSION: f"New version v{alert.version}",
        AlertEvent.PUBLISHED: "Publication",
    }[alert.event]
    when = discord.utils.format_dt(alert.sent_at, "f") if alert.sent_at else "at an unknown time"
    where = f" — [message]({alert.link})" if alert.link else ""
    return f"• {what} sent {when}{where}"


def why_reply(explanation: Explanation, where: str) -> str:
    """The /why answer; `where` is our own text (a channel mention or "your DMs")."""
    e = explanation
    abs_url = f"https://arxiv.org/abs/{e.paper_id}"
    title = truncate(link_text(e.title), 150) if e.title else safe(e.paper_id)
    lines = [f"**Why** [{title}]({abs_url}) **in {where}:**"]
    matched = f"It matched: {_list(e.matched)}." if e.matched else ""
    if e.reason is Reason.SENT:
        lines.append(f"Sent. {matched}".rstrip())
        lines += [_sent_line(alert) for alert in e.sent]
    elif e.reason is Reason.FILTERED and e.ranking is not None:
        score = f", score {e.ranking.score:.2f}" if e.ranking.score is not None else ""
        rule = truncate(safe(e.ranking.rule), TEXT_CHARS)
        lines.append(f"Held back by the ranking threshold here ({rule}{score}). {matched}")
    elif e.reason is Reason.PAUSED:
        cause = f" ({truncate(safe(e.paused_reason), TEXT_CHARS)})" if e.paused_reason else ""
        lines.append(f"Not sent: alerts here are paused{cause}. {matched}".rstrip())
        lines.append("It is posted when alerts here are resumed.")
    elif e.reason is Reason.QUEUED:
        lines.append(f"Queued: it will be posted shortly. {matched}".rstrip())
    elif e.reason is Reason.FAILED:
        error = truncate(safe(e.error or "unknown error"), TEXT_CHARS)
        lines.append(f"Matched, but posting it failed for good: {error}. {matched}".rstrip())
    elif e.reason is Reason.NOT_ANNOUNCED:
        lines.append(
            "Not announced yet: no arXiv listing paperbell has polled announced this paper,"
            " and only announcements send alerts."
        )
    elif e.reason in (Reason.EXCLUDED_CROSS, Reason.EXCLUDED_REPLACEMENT):
        lines.append(
            f"Not sent: {_announced(e.announcement)}, which these subscriptions exclude:"
            f" {_list(e.excluded)}."
        )
    elif e.reason is Reason.NOT_QUEUED:
        lines.append(
            f"It matches now, but no alert was queued when it was {_announced(e.announcement)}:"
            f" a new subscription only alerts papers announced after it (or its backfill)."
            f" {matched}".rstrip()
        )
    elif e.subscriptions:
        lines.append(
            f"Not sent: {_announced(e.announcement)}, but no subscription here matched it."
            f" Subscriptions here: {_list(e.subscriptions)}."
        )
    else:
        announced = f"{_announced(e.announcement)}, but " if e.announcement else ""
        lines.append(f"Not sent: {announced}there are no subscriptions here.")
    return truncate("\n".join(lines), CONTENT_LIMIT)


class Why(commands.Cog):
    """Explain alerts."""

    def __init__(self, bot: PaperbellBot) -> None:
        self.bot = bot
        papers = bot.papers
        self.service = WhyService(
            papers.papers,
            papers.announcements,
            papers.subscriptions,
            papers.outbox,
            bot.ranker.ratings,
        )

    @app_commands.command(name="why")
    @app_commands.rename(paper_id="paper")
    @app_commands.describe(
        paper_id="arXiv id or link, e.g. 2307.15771",
        channel="Channel to explain (you must be able to see it); leave out for your DMs",
    )
    async def why(
        self,
        interaction: discord.Interaction[PaperbellBot],
        paper_id: app_commands.Range[str, 1, MAX_ID],
        channel: discord.TextChannel | None = None,
    ) -> None:
        """Why a paper was or was not sent here, to a channel, or to your DMs."""
        try:
            parsed = parse_arxiv_id(paper_id[:MAX_ID])
        except InvalidArxivIdError as exc:
            raise InvalidInputError(str(exc)) from None
        if channel is None:
            where = "your DMs"
        else:
            if interaction.guild_id is None:
                raise InvalidInputError("In DMs /why explains your DMs: leave out `channel`.")
            if not caller_permissions_in(interaction, channel.id).view_channel:
                raise PermissionDeniedError("You can only ask about channels you can see.")
            where = channel.mention
        await interaction.response.defer(ephemeral=True, thinking=True)
        if channel is None:
            answer = await self.service.for_dms(parsed.id, user_id=interaction.user.id)
        else:
            assert interaction.guild_id is not None
            answer = await self.service.for_channel(
                parsed.id, guild_id=interaction.guild_id, channel_id=channel.id
            )
        await interaction.followup.send(why_reply(answer, where), ephemeral=True)


async def setup(bot: PaperbellBot) -> None:
    await bot.add_cog(Why(bot))
