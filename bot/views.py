"""Message components: a paginator for result lists and a Follow button for /author.

`Paginator` is generic over a page loader `(page_index) -> (embed, has_next)`,
so it never holds a whole result list in memory and knows nothing about what
it pages. Only the person who ran the command may page; the Follow button is
open to everyone who sees the message and subscribes the clicker by DM.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord

from bot.domain.cite import Citation, cite
from bot.domain.errors import UserError
from bot.domain.ids import InvalidArxivIdError, parse_arxiv_id
from bot.domain.models import Paper, SubscriptionKind
from bot.embeds import CONTENT_LIMIT, safe, similar_embed
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
        if isinstance(error, UserError):
            await reply_ephemeral(interaction, str(error))
            return
        log.error("component failed item=%s", type(item).__name__, exc_info=error)
        await reply_ephemeral(interaction, APOLOGY)


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


FOLLOW_PAPER_PREFIX = "pb:follow-paper:"
BAD_BUTTON = "That button is not valid any more; use /subscribe paper instead."


class _HasSubscriptions(Protocol):
    subscriptions: SubscriptionService


class _PaperLookup(Protocol):
    async def get_paper(self, raw_id: str, *, user_id: int | None = None) -> Paper: ...
    async def similar(self, raw_id: str, *, limit: int = 10) -> Any: ...


class _HasPapers(Protocol):
    papers: _PaperLookup


def _paper_button(
    prefix: str, paper_id: str | None, *, label: str, emoji: str, style: discord.ButtonStyle
) -> discord.ui.Button[discord.ui.View]:
    """The button of a persistent per-paper item (Follow, Cite, Similar): the paper id rides
    in the custom_id, "invalid" when a forged one could not be parsed."""
    custom_id = (prefix + (paper_id or "invalid"))[:100]
    return discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id)


def _clicked_paper_id(
    interaction: discord.Interaction[Any], match: re.Match[str], what: str
) -> str | None:
    """The paper id a per-paper button's custom_id carries, parsed again (anyone can forge
    a custom_id): the versionless id, or None for a bad one (logged)."""
    try:
        return parse_arxiv_id(match["paper"]).id
    except InvalidArxivIdError:
        log.info("%s button with a bad paper id from user=%s", what, interaction.user.id)
        return None


class FollowPaperButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pb:follow-paper:(?P<paper>[A-Za-z0-9./-]{1,40})",
):
    """🔔 Follow under a /paper answer: DM-subscribes the clicker to that paper.

    Persistent (it works after a restart): the paper id travels in the
    custom_id, which the client sends back and anyone can forge, so it is
    matched by a bounded pattern and parsed as an arXiv id again on each click.
    """

    def __init__(self, paper_id: str | None) -> None:
        super().__init__(
            _paper_button(
                FOLLOW_PAPER_PREFIX, paper_id, label="Follow", emoji="🔔",
                style=discord.ButtonStyle.primary,
            )
        )  # fmt: skip
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> FollowPaperButton:
        return cls(_clicked_paper_id(interaction, match, "follow"))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if self.paper_id is None:
            await reply_ephemeral(interaction, BAD_BUTTON)
            return
        client: _HasSubscriptions = interaction.client
        try:
            result = await client.subscriptions.subscribe(
                actor_id=interaction.user.id,
                guild_id=None,
                channel_id=None,
                kind=SubscriptionKind.PAPER,
                value=self.paper_id,
            )
        except UserError as exc:
            await reply_ephemeral(interaction, str(exc))
            return
        await reply_ephemeral(
            interaction, follow_paper_message(self.paper_id, result.created, result.note)
        )


CITE_PAPER_PREFIX = "pb:cite:"


def citation_message(citation: Citation) -> tuple[str, discord.File | None]:
    """The message text and, when the entry does not fit in a code block, the `.bib` file.

    The code block is for reading and copying; the attachment carries the exact
    entry when the block would not fit in a message or the entry holds backticks
    that would end the block.
    """
    block = f"```bibtex\n{citation.bibtex}```"
    if len(block) <= CONTENT_LIMIT and "`" not in citation.bibtex:
        return block, None
    data = io.BytesIO(citation.bibtex.encode("utf-8"))
    note = f"BibTeX for arXiv:{citation.eprint} is attached as `{citation.key}.bib`."
    return note, discord.File(data, filename=f"{citation.key}.bib")


class CitePaperButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pb:cite:(?P<paper>[A-Za-z0-9./-]{1,40})",
):
    """Cite under a /paper answer: the paper's BibTeX, privately, to whoever clicks.

    Persistent like Follow; the paper id in the custom_id is forgeable, so it is
    matched by a bounded pattern and parsed as an arXiv id again on each click.
    """

    def __init__(self, paper_id: str | None) -> None:
        super().__init__(
            _paper_button(
                CITE_PAPER_PREFIX, paper_id, label="Cite", emoji="📋",
                style=discord.ButtonStyle.secondary,
            )
        )  # fmt: skip
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> CitePaperButton:
        return cls(_clicked_paper_id(interaction, match, "cite"))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if self.paper_id is None:
            await reply_ephemeral(interaction, "That button is not valid any more; use /cite.")
            return
        client: _HasPapers = interaction.client
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            paper = await client.papers.get_paper(self.paper_id, user_id=interaction.user.id)
        except UserError as exc:
            await interaction.followup.send(str(exc), ephemeral=True)
            return
        content, file = citation_message(cite(paper))
        if file is None:
            await interaction.followup.send(content, ephemeral=True)
        else:
            await interaction.followup.send(content, file=file, ephemeral=True)


SIMILAR_PAPER_PREFIX = "pb:similar:"


class SimilarPaperButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"pb:similar:(?P<paper>[A-Za-z0-9./-]{1,40})",
):
    """Similar under a /paper answer: the stored papers most like it, privately, to the
    clicker. Persistent; the forgeable paper id is pattern-matched and parsed again."""

    def __init__(self, paper_id: str | None) -> None:
        super().__init__(
            _paper_button(
                SIMILAR_PAPER_PREFIX, paper_id, label="Similar", emoji="🔎",
                style=discord.ButtonStyle.secondary,
            )
        )  # fmt: skip
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> SimilarPaperButton:
        return cls(_clicked_paper_id(interaction, match, "similar"))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if self.paper_id is None:
            await reply_ephemeral(interaction, "That button is not valid any more; use /similar.")
            return
        client: _HasPapers = interaction.client
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            found = await client.papers.similar(self.paper_id, limit=10)
        except UserError as exc:
            await interaction.followup.send(str(exc), ephemeral=True)
            return
        if not found.hits:
            await interaction.followup.send(
                f"No stored paper shares distinctive words with arXiv:{self.paper_id} yet.",
                ephemeral=True,
            )
            return
        papers = [paper for paper, _ in found.hits]
        await interaction.followup.send(embed=similar_embed(found.paper, papers), ephemeral=True)


def follow_paper_view(paper_id: str) -> discord.ui.View:
    """The buttons under a /paper answer: 🔔 Follow, Cite and Similar (persistent)."""
    view = discord.ui.View(timeout=None)
    view.add_item(FollowPaperButton(paper_id))
    view.add_item(CitePaperButton(paper_id))
    view.add_item(SimilarPaperButton(paper_id))
    return view


def follow_paper_message(paper_id: str, created: bool, note: str | None) -> str:
    """The private answer to a paper's Follow click."""
    if not created:
        return f"You already follow {paper_id}."
    text = (
        f"You'll get a DM when {paper_id} has a new version, is withdrawn or is published. "
        "Make sure your privacy settings let the bot message you; /unsubscribe stops it."
    )
    return f"{text}\n{note}" if note else text
