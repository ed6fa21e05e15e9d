"""Subscription commands: /subscribe (five kinds), /unsubscribe, /subscriptions.

The cog checks Discord permissions on Discord objects (the member's Manage
Channels, the bot's own posting rights in the target channel) and passes the
outcome to `SubscriptionService`, which holds every other rule. Without a
`channel` option a subscription goes to the caller's DMs, so it needs no
permission at all; in DMs that is the only kind there is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.papers import author_autocomplete, category_autocomplete
from bot.discord_bot import PaperbellBot
from bot.domain.errors import InvalidInputError, PermissionDeniedError
from bot.domain.limits import MAX_QUERY_LENGTH
from bot.domain.models import Subscription, SubscriptionKind
from bot.embeds import CONTENT_LIMIT, code, safe, truncate
from bot.permissions import manageable_channels, viewable_channels
from bot.query_views import QuerySaveView, preview_text
from bot.subscribing import SubscribeResult, subscription_label

log = logging.getLogger(__name__)

MAX_VALUE = MAX_QUERY_LENGTH
# The help texts of the options most /subscribe subcommands share.
_OPTIONS = {
    "channel": "Channel to post in (needs Manage Channels); leave out to get DMs",
    "include_replacements": "Also new versions of papers announced earlier",
    "backfill": "Post this many recent stored papers now (0-10)",
}
# What the bot needs in a channel to post alerts there: (flag, name shown to users).
POSTING_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("embed_links", "Embed Links"),
)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def missing_posting_permissions(permissions: discord.Permissions) -> list[str]:
    """The names of the posting permissions `permissions` lacks, in a fixed order."""
    return [label for flag, label in POSTING_PERMISSIONS if not getattr(permissions, flag)]


def check_channel_target(
    interaction: discord.Interaction[PaperbellBot],
    channel: discord.TextChannel,
    *,
    action: str = "subscribe it",
) -> None:
    """Raise `PermissionDeniedError` unless the caller may, and the bot can, use `channel`."""
    member = interaction.user
    if not isinstance(member, discord.Member) or channel.guild.id != interaction.guild_id:
        raise InvalidInputError("Pick a channel of this server.")
    if not channel.permissions_for(member).manage_channels:
        raise PermissionDeniedError(
            f"You need the Manage Channels permission in {channel.mention} to {action}."
        )
    me = channel.guild.me
    if me is not None:
        mine = channel.permissions_for(me)
    elif channel.id == interaction.channel_id:
        mine = interaction.app_permissions
    else:
        raise PermissionDeniedError(
            f"I can't check my permissions in {channel.mention} right now; "
            "run the command in that channel."
        )
    missing = missing_posting_permissions(mine)
    if missing:
        raise PermissionDeniedError(
            f"I need the {_join(missing)} permission{'s' if len(missing) > 1 else ''} "
            f"in {channel.mention} to post there."
        )


def _check_target(
    interaction: discord.Interaction[PaperbellBot], channel: discord.TextChannel | None
) -> None:
    """Every /subscribe's first check: DMs subscribe only the caller; a channel is checked."""
    if channel is None:
        return
    if interaction.guild_id is None:
        raise InvalidInputError("In DMs you can only subscribe yourself: leave out `channel`.")
    check_channel_target(interaction, channel)


def describe_target(sub: Subscription) -> str:
    """`new cs.LG papers` / `new papers by **X**` / `new papers mentioning "x"`."""
    value = safe(sub.value)
    if sub.kind is SubscriptionKind.CATEGORY:
        return f"new {code(sub.value)} papers"
    if sub.kind is SubscriptionKind.AUTHOR:
        return f"new papers by **{value}**"
    if sub.kind is SubscriptionKind.PAPER:
        return f"new versions, a withdrawal or the publication of {value}"
    if sub.kind is SubscriptionKind.QUERY:
        return f"new papers matching the query {value}"
    return f"new papers mentioning “{value}”"


def subscribe_reply(result: SubscribeResult, backfill: int, channel_mention: str | None) -> str:
    """The ephemeral answer to /subscribe: what was created and what happens next."""
    sub = result.subscription
    what = describe_target(sub)
    if channel_mention is None:
        head = f"You'll get a DM for {what}"
    else:
        head = f"{channel_mention} will get {what}"
    lines = [f"{head} (subscription #{sub.id})."]
    if sub.kind in (SubscriptionKind.PAPER, SubscriptionKind.QUERY):
        pass  # nothing to backfill: a follow is about what happens next; a query was previewed
    elif backfill == 0:
        lines.append("Nothing from the past is posted (use `backfill` for recent papers).")
    elif result.backfilled:
        count = result.backfilled
        lines.append(f"{count} recent matching paper{'s are' if count > 1 else ' is'} on the way.")
    else:
        lines.append("No stored paper matched for the backfill; alerts start with new papers.")
    if result.ambiguous:
        spellings = truncate(safe(", ".join(result.matched_names)), 700)
        lines.append(
            f"Heads-up: this name matches several spellings, possibly different people: "
            f"{spellings}. Alerts come for every compatible spelling."
        )
    if channel_mention is None:
        lines.append("Make sure your privacy settings let the bot send you DMs.")
    if result.note:
        lines.append(result.note)
    return truncate("\n".join(lines), CONTENT_LIMIT)


class Subscriptions(commands.Cog):
    """Subscribe channels or yourself to new arXiv papers."""

    subscribe = app_commands.Group(
        name="subscribe", description="Get new arXiv papers posted in a channel or sent by DM."
    )

    def __init__(self, bot: PaperbellBot) -> None:
        self.bot = bot

    async def _subscribe(
        self,
        interaction: discord.Interaction[PaperbellBot],
        kind: SubscriptionKind,
        value: str,
        channel: discord.TextChannel | None,
        include_replacements: bool,
        backfill: int,
        *,
        include_cross: bool = True,
    ) -> None:
        """What every /subscribe but `query` does once Discord parsed its options."""
        _check_target(interaction, channel)
        result = await self.bot.subscriptions.subscribe(
            actor_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=channel.id if channel is not None else None,
            kind=kind,
            value=value,
            include_cross=include_cross,
            include_replacements=include_replacements,
            backfill=backfill,
        )
        reply = subscribe_reply(result, backfill, channel.mention if channel else None)
        if interaction.response.is_done():
            await interaction.followup.send(reply, ephemeral=True)
        else:
            await interaction.response.send_message(reply, ephemeral=True)
        if result.backfilled:
            self.bot.deliverer.kick()  # post the backfill now, not at the next interval

    @subscribe.command(name="category")
    @app_commands.describe(
        value="arXiv category, e.g. cs.LG, math.PR, or a whole archive like astro-ph",
        include_cross="Also papers cross-listed into this category from others",
        **_OPTIONS,
    )
    @app_commands.autocomplete(value=category_autocomplete)
    async def subscribe_category(
        self,
        interaction: discord.Interaction[PaperbellBot],
        value: app_commands.Range[str, 1, 100],
        channel: discord.TextChannel | None = None,
        include_cross: bool = True,
        include_replacements: bool = False,
        backfill: app_commands.Range[int, 0, 10] = 0,
    ) -> None:
        """New papers in an arXiv category."""
        await self._subscribe(
            interaction,
            SubscriptionKind.CATEGORY,
            value,
            channel,
            include_replacements,
            backfill,
            include_cross=include_cross,
        )

    @subscribe.command(name="author")
    @app_commands.describe(
        value="Author name, e.g. Shane Legg (initials like S. Legg also match)",
        **_OPTIONS,
    )
    @app_commands.autocomplete(value=author_autocomplete)
    async def subscribe_author(
        self,
        interaction: discord.Interaction[PaperbellBot],
        value: app_commands.Range[str, 1, MAX_VALUE],
        channel: discord.TextChannel | None = None,
        include_replacements: bool = False,
        backfill: app_commands.Range[int, 0, 10] = 0,
    ) -> None:
        """New papers by an author."""
        await self._subscribe(
            interaction, SubscriptionKind.AUTHOR, value, channel, include_replacements, backfill
        )

    @subscribe.command(name="keyword")
    @app_commands.describe(
        value="Word or phrase to find in titles and abstracts, e.g. diffusion model",
        **_OPTIONS,
    )
    async def subscribe_keyword(
        self,
        interaction: discord.Interaction[PaperbellBot],
        value: app_commands.Range[str, 1, MAX_VALUE],
        channel: discord.TextChannel | None = None,
        include_replacements: bool = False,
        backfill: app_commands.Range[int, 0, 10] = 0,
    ) -> None:
        """New papers whose title or abstract contains a word or phrase."""
        await self._subscribe(
            interaction, SubscriptionKind.KEYWORD, value, channel, include_replacements, backfill
        )

    @subscribe.command(name="paper")
    @app_commands.describe(
        value="arXiv id or link, e.g. 2307.15771 or arxiv.org/abs/2307.15771",
        channel=_OPTIONS["channel"],
    )
    async def subscribe_paper(
        self,
        interaction: discord.Interaction[PaperbellBot],
        value: app_commands.Range[str, 1, 200],
        channel: discord.TextChannel | None = None,
    ) -> None:
        """Follow one paper: its new versions, a withdrawal, its publication."""
        # The paper may have to be fetched from arXiv: answer within Discord's 3 s.
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self._subscribe(interaction, SubscriptionKind.PAPER, value, channel, True, 0)

    @subscribe.command(name="query")
    @app_commands.describe(
        expression='arXiv search syntax, e.g. cat:cs.LG AND ti:"length generalization"',
        channel=_OPTIONS["channel"],
        include_replacements=_OPTIONS["include_replacements"],
    )
    async def subscribe_query(
        self,
        interaction: discord.Interaction[PaperbellBot],
        expression: app_commands.Range[str, 1, MAX_QUERY_LENGTH],
        channel: discord.TextChannel | None = None,
        include_replacements: bool = False,
    ) -> None:
        """New papers matching an arXiv-style query; shows a week's matches before saving."""
        _check_target(interaction, channel)
        # A week of announcements is read and matched: answer within Discord's 3 s first.
        await interaction.response.defer(ephemeral=True, thinking=True)
        preview = await self.bot.subscriptions.preview_query(expression)
        source = preview.query.source  # validated and normalized; kept here, not in the button
        channel_id = channel.id if channel is not None else None

        async def save(press: discord.Interaction[PaperbellBot]) -> str:
            target = None
            if channel_id is not None:
                guild = press.guild
                found = guild.get_channel(channel_id) if guild is not None else None
                if not isinstance(found, discord.TextChannel):
                    raise InvalidInputError("That channel is gone.")
                check_channel_target(press, found)  # permissions as they are now
                target = found
            result = await self.bot.subscriptions.subscribe(
                actor_id=press.user.id,
                guild_id=press.guild_id,
                channel_id=channel_id,
                kind=SubscriptionKind.QUERY,
                value=source,
                include_replacements=include_replacements,
            )
            return subscribe_reply(result, 0, target.mention if target else None)

        where = channel.mention if channel is not None else "your DMs"
        view = QuerySaveView(interaction.user.id, save)
        await interaction.followup.send(preview_text(preview, where), view=view, ephemeral=True)

    @app_commands.command(name="unsubscribe")
    @app_commands.describe(subscription="The subscription to remove (start typing to pick one)")
    async def unsubscribe(
        self, interaction: discord.Interaction[PaperbellBot], subscription: int
    ) -> None:
        """Remove one of your DM subscriptions, or a channel's (Manage Channels there)."""
        removed = await self.bot.subscriptions.unsubscribe(
            actor_id=interaction.user.id,
            guild_id=interaction.guild_id,
            subscription_id=subscription,
            can_manage=manageable_channels(interaction),
            can_view=viewable_channels(interaction),
        )
        label = subscription_label(removed, _channel_name(interaction, removed))
        await interaction.response.send_message(
            f"Removed subscription #{removed.id}: {safe(label)}.", ephemeral=True
        )

    @unsubscribe.autocomplete("subscription")
    async def unsubscribe_autocomplete(
        self, interaction: discord.Interaction[PaperbellBot], current: str
    ) -> list[app_commands.Choice[int]]:
        try:
            choices = await self.bot.subscriptions.choices(
                guild_id=interaction.guild_id,
                user_id=interaction.user.id,
                can_manage=manageable_channels(interaction),
                current=current,
                channel_name=lambda channel_id: _guild_channel_name(interaction, channel_id),
            )
        except Exception:
            log.exception("unsubscribe autocomplete failed")
            return []
        return [app_commands.Choice(name=label, value=sub_id) for label, sub_id in choices]

    @app_commands.command(name="subscriptions")
    async def subscriptions(self, interaction: discord.Interaction[PaperbellBot]) -> None:
        """List the subscriptions of this server's channels you can see, and your DM ones."""
        listing = await self.bot.subscriptions.listing(
            guild_id=interaction.guild_id,
            user_id=interaction.user.id,
            can_view=viewable_channels(interaction),
        )
        sections: list[str] = []

        def name(sub: Subscription) -> str | None:
            return _channel_name(interaction, sub)

        if interaction.guild_id is not None:
            sections.append(
                subscriptions_section(
                    "This server", listing.channel, name, "No channel subscriptions."
                )
            )
        sections.append(subscriptions_section("Your DMs", listing.dm, name, "No DM subscriptions."))
        text = "\n\n".join(sections)
        if listing.channel or listing.dm:
            text += "\n\nRemove one with `/unsubscribe`."
        await interaction.response.send_message(truncate(text, CONTENT_LIMIT), ephemeral=True)


def subscriptions_section(
    title: str,
    subs: list[Subscription],
    channel_name: Callable[[Subscription], str | None],
    empty: str,
) -> str:
    """One section of the /subscriptions answer: a line per subscription, values escaped."""
    if not subs:
        return f"**{title}**\n{empty}"
    lines = [f"**{title}** ({len(subs)})"]
    for sub in subs:
        label = safe(subscription_label(sub, channel_name(sub)))
        extras = []
        if sub.kind is SubscriptionKind.CATEGORY and not sub.include_cross:
            extras.append("no cross-lists")
        if sub.include_replacements and sub.kind is not SubscriptionKind.PAPER:
            extras.append("with replacements")
        suffix = f" ({', '.join(extras)})" if extras else ""
        lines.append(f"`#{sub.id}` {label}{suffix}")
    return "\n".join(lines)


def _guild_channel_name(
    interaction: discord.Interaction[PaperbellBot], channel_id: int
) -> str | None:
    guild = interaction.guild
    channel = guild.get_channel(channel_id) if guild is not None else None
    return channel.name if channel is not None else None


def _channel_name(interaction: discord.Interaction[PaperbellBot], sub: Subscription) -> str | None:
    if sub.destination.guild_id is None:
        return None
    return _guild_channel_name(interaction, sub.destination.target_id)


async def setup(bot: PaperbellBot) -> None:
    await bot.add_cog(Subscriptions(bot))
