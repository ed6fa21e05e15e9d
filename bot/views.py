"""Message components: a paginator for result lists and a Follow button for /author.

`Paginator` is generic over a page loader `(page_index) -> (embed, has_next)`,
so it never holds a whole result list in memory and knows nothing about what
it pages. Only the person who ran the command may page; the Follow button is
open to everyone who sees the message and subscribes the clicker by DM. The
persistent buttons under /paper answers are in `bot.paper_buttons`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.domain.errors import UserError
from bot.domain.models import SubscriptionKind
from bot.embeds import safe
from bot.subscribing import SubscriptionService

log = logging.getLogger(__name__)

PageLoader = Callable[[int], Awaitable[tuple[discord.Embed, bool]]]
"""Loads page `index` (0-based): the embed to show and whether a next page exists."""

NOT_YOURS = "Only the person who ran the command can page through these results."
APOLOGY = "Sorry, something went wrong on our side. It has been logged; please try again later."


async def reply_ephemeral(interaction: discord.Interaction[Any], message: str) -> None:
    """Answer an interaction privately, as a reply or (when already answered) a follow-up."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException as exc:
        # The token may have expired (15 min); nothing more to tell the user.
        log.warning("could not send private reply status=%s", exc.status)


async def answer_failure(
    interaction: discord.Interaction[Any],
    error: Exception,
    logger: logging.Logger,
    message: str,
    *args: object,
) -> None:
    """A component's failure, answered privately: a user error as it says; anything else
    is logged with its traceback (`message % args` on `logger`) and apologised for."""
    if isinstance(error, UserError):
        await reply_ephemeral(interaction, str(error))
        return
    logger.error(message, *args, exc_info=error)
    await reply_ephemeral(interaction, APOLOGY)


class Paginator(discord.ui.View):
    """Prev / page counter / Next over pages produced by `loader`."""

    slow_load = 2.0  # seconds: a page that takes longer is shown behind a deferral

    def __init__(self, loader: PageLoader, *, owner_id: int, timeout: float | None = 180.0) -> None:
        super().__init__(timeout=timeout)
        self.loader = loader
        self.owner_id = owner_id
        self.page = 0
        self.has_next = False
        self.message: discord.InteractionMessage | discord.WebhookMessage | None = None
        self._sync_buttons()

    async def load(self, page: int) -> discord.Embed:
        """Load `page` (clamped at 0), remember it, and update the buttons."""
        page = max(0, page)
        embed, has_next = await self.loader(page)
        self.page, self.has_next = page, has_next
        self._sync_buttons()
        return embed

    @property
    def single_page(self) -> bool:
        return self.page == 0 and not self.has_next

    def _sync_buttons(self) -> None:
        self.previous_page.disabled = self.page == 0
        self.next_page.disabled = not self.has_next
        self.counter.label = f"Page {self.page + 1}"

    async def _first_page(self) -> discord.Embed:
        """Load page 0; a result that fits on one page drops the paging buttons."""
        embed = await self.load(0)
        if self.single_page:
            # Nothing to page: drop the paging buttons, keep any others (Follow).
            for item in (self.previous_page, self.counter, self.next_page):
                self.remove_item(item)
        if not self.children:
            self.stop()
        return embed

    async def send(self, interaction: discord.Interaction[Any], *, ephemeral: bool = False) -> None:
        """Show the first page as the answer to `interaction` (a reply, or a follow-up if deferred).

        A result that fits on one page is sent without buttons.
        """
        embed = await self._first_page()
        if not self.children:
            if interaction.response.is_done():
                await interaction.followup.send(embed=embed, ephemeral=ephemeral)
            else:
                await interaction.response.send_message(embed=embed, ephemeral=ephemeral)
            return
        if interaction.response.is_done():
            self.message = await interaction.followup.send(
                embed=embed, view=self, ephemeral=ephemeral, wait=True
            )
            return
        callback = await interaction.response.send_message(
            embed=embed, view=self, ephemeral=ephemeral
        )
        if isinstance(callback.resource, discord.InteractionMessage):
            self.message = callback.resource
        else:
            self.message = await interaction.original_response()

    async def replace_original(self, interaction: discord.Interaction[Any]) -> None:
        """Show the first page in place of the interaction's answer (an earlier view's)."""
        embed = await self._first_page()
        if not self.children:
            await interaction.edit_original_response(content=None, embed=embed, view=None)
            return
        self.message = await interaction.edit_original_response(
            content=None, embed=embed, view=self
        )

    async def _turn(self, interaction: discord.Interaction[Any], delta: int) -> None:
        if interaction.user.id != self.owner_id:
            await reply_ephemeral(interaction, NOT_YOURS)
            return
        loading = asyncio.ensure_future(self.load(self.page + delta))
        done, _ = await asyncio.wait({loading}, timeout=self.slow_load)
        if done:
            await interaction.response.edit_message(embed=loading.result(), view=self)
            return
        # The page is slow (it asks arXiv): acknowledge within Discord's 3 s, then edit.
        await interaction.response.defer()
        embed = await loading
        await interaction.edit_original_response(embed=embed, view=self)

    @discord.ui.button(label="◀ Prev", style=discord.ButtonStyle.secondary)
    async def previous_page(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Paginator]
    ) -> None:
        await self._turn(interaction, -1)

    @discord.ui.button(label="Page 1", style=discord.ButtonStyle.secondary, disabled=True)
    async def counter(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Paginator]
    ) -> None:
        # Disabled: it only shows where we are. Acknowledge quietly if a client clicks anyway.
        await interaction.response.defer()

    @discord.ui.button(label="Next ▶", style=discord.ButtonStyle.secondary)
    async def next_page(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Paginator]
    ) -> None:
        await self._turn(interaction, +1)

    async def on_timeout(self) -> None:
        """Grey the buttons out so nobody clicks a dead view; the message may be gone already."""
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is None:
            return
        try:
            await self.message.edit(view=self)
        except discord.HTTPException as exc:
            log.info("could not disable paginator buttons status=%s", exc.status)

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await answer_failure(
            interaction, error, log, "component failed item=%s", type(item).__name__
        )


class FollowButton(discord.ui.Button[Paginator]):
    """Subscribes whoever clicks it to an author, by DM."""

    def __init__(self, subscriptions: SubscriptionService, author: str) -> None:
        super().__init__(label="Follow", emoji="🔔", style=discord.ButtonStyle.primary)
        self.subscriptions = subscriptions
        self.author = author

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        result = await self.subscriptions.subscribe(
            actor_id=interaction.user.id,
            guild_id=None,
            channel_id=None,
            kind=SubscriptionKind.AUTHOR,
            value=self.author,
        )
        await reply_ephemeral(interaction, follow_message(self.author, result.created, result.note))


def follow_message(author: str, created: bool, note: str | None) -> str:
    """The private answer to a Follow click."""
    shown = safe(author)
    if created:
        text = (
            f"You'll get a DM when a new paper by **{shown}** appears. "
            "Make sure your privacy settings let the bot message you; /unsubscribe stops it."
        )
    else:
        text = f"You already follow **{shown}**."
    if created and note:
        text += f"\n{note}"
    return text


class AuthorPages(Paginator):
    """An author's papers, paged, with a Follow button anyone can use."""

    def __init__(
        self,
        loader: PageLoader,
        *,
        owner_id: int,
        subscriptions: SubscriptionService,
        author: str,
        timeout: float | None = 600.0,
    ) -> None:
        super().__init__(loader, owner_id=owner_id, timeout=timeout)
        self.follow = FollowButton(subscriptions, author)
        self.add_item(self.follow)
