"""Persistent buttons: Follow, Cite and Similar under /paper answers, and their shared base.

A persistent button works whenever its message was posted, after restarts too:
its `custom_id` carries all the state, and discord.py routes a click to the
registered class whose `template` matches it, with no view kept in memory.
`PersistentButton` is the base of every such button here and of the 👍/👎 ones
under alerts (`bot.rating_buttons`). The custom_id comes back from the client and
anyone can forge it: templates are bounded, and the per-paper buttons parse the
paper id as an arXiv id again on each click.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol, Self, TypeVar

import discord

from bot.domain.cite import Citation, cite
from bot.domain.errors import UserError
from bot.domain.ids import InvalidArxivIdError, parse_arxiv_id
from bot.domain.models import Paper, SubscriptionKind
from bot.embeds import CONTENT_LIMIT, similar_embed
from bot.subscribing import SubscriptionService
from bot.views import reply_ephemeral

log = logging.getLogger(__name__)

T = TypeVar("T")

FOLLOW_PAPER_PREFIX = "pb:follow-paper:"
CITE_PAPER_PREFIX = "pb:cite:"
SIMILAR_PAPER_PREFIX = "pb:similar:"
BAD_BUTTON = "That button is not valid any more; use /subscribe paper instead."
# The paper id a per-paper custom_id may carry: bounded, and parsed again on each click.
_PAPER = r"(?P<paper>[A-Za-z0-9./-]{1,40})"
_NEVER = r"(?!)"  # the template of a base class, which is never registered


class PersistentButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=_NEVER):
    """A button rebuilt from its custom_id on each click.

    Subclasses give their own `template` and build themselves from its match in
    `from_match`; only they are registered (`add_dynamic_items`).
    """

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls.from_match(interaction, match)

    @classmethod
    def from_match(cls, interaction: discord.Interaction[Any], match: re.Match[str]) -> Self:
        raise NotImplementedError


class PaperButton(PersistentButton, template=_NEVER):
    """A button about one paper whose id rides in the custom_id after `prefix`.

    The id is None when a forged custom_id held no valid arXiv id: the click is then
    answered with `invalid` and does nothing else.
    """

    prefix: ClassVar[str]
    label: ClassVar[str]
    emoji: ClassVar[str]
    style: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary
    invalid: ClassVar[str]  # the private answer to a click with a bad paper id

    def __init__(self, paper_id: str | None) -> None:
        custom_id = (self.prefix + (paper_id or "invalid"))[:100]
        super().__init__(
            discord.ui.Button(
                label=self.label, emoji=self.emoji, style=self.style, custom_id=custom_id
            )
        )
        self.paper_id = paper_id

    @classmethod
    def from_match(cls, interaction: discord.Interaction[Any], match: re.Match[str]) -> Self:
        return cls(_clicked_paper_id(interaction, match, cls.label.lower()))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if self.paper_id is None:
            await reply_ephemeral(interaction, self.invalid)
            return
        await self.clicked(interaction, self.paper_id)

    async def clicked(self, interaction: discord.Interaction[Any], paper_id: str) -> None:
        raise NotImplementedError


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


class _HasSubscriptions(Protocol):
    subscriptions: SubscriptionService


class _PaperLookup(Protocol):
    async def get_paper(self, raw_id: str, *, user_id: int | None = None) -> Paper: ...
    async def similar(self, raw_id: str, *, limit: int = 10) -> Any: ...


class _HasPapers(Protocol):
    papers: _PaperLookup


async def _private_answer(
    interaction: discord.Interaction[Any], look_up: Callable[[], Awaitable[T]]
) -> T | None:
    """Defer privately, then look up; a user error is the answer (and None is returned)."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        return await look_up()
    except UserError as exc:
        await interaction.followup.send(str(exc), ephemeral=True)
        return None


class FollowPaperButton(PaperButton, template=FOLLOW_PAPER_PREFIX + _PAPER):
    """🔔 Follow under a /paper answer: DM-subscribes the clicker to that paper."""

    prefix = FOLLOW_PAPER_PREFIX
    label = "Follow"
    emoji = "🔔"
    style = discord.ButtonStyle.primary
    invalid = BAD_BUTTON

    async def clicked(self, interaction: discord.Interaction[Any], paper_id: str) -> None:
        client: _HasSubscriptions = interaction.client
        try:
            result = await client.subscriptions.subscribe(
                actor_id=interaction.user.id,
                guild_id=None,
                channel_id=None,
                kind=SubscriptionKind.PAPER,
                value=paper_id,
            )
        except UserError as exc:
            await reply_ephemeral(interaction, str(exc))
            return
        await reply_ephemeral(
            interaction, follow_paper_message(paper_id, result.created, result.note)
        )


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


class CitePaperButton(PaperButton, template=CITE_PAPER_PREFIX + _PAPER):
    """Cite under a /paper answer: the paper's BibTeX, privately, to whoever clicks."""

    prefix = CITE_PAPER_PREFIX
    label = "Cite"
    emoji = "📋"
    invalid = "That button is not valid any more; use /cite."

    async def clicked(self, interaction: discord.Interaction[Any], paper_id: str) -> None:
        client: _HasPapers = interaction.client
        user_id = interaction.user.id
        paper = await _private_answer(
            interaction, lambda: client.papers.get_paper(paper_id, user_id=user_id)
        )
        if paper is None:
            return
        content, file = citation_message(cite(paper))
        if file is None:
            await interaction.followup.send(content, ephemeral=True)
        else:
            await interaction.followup.send(content, file=file, ephemeral=True)


class SimilarPaperButton(PaperButton, template=SIMILAR_PAPER_PREFIX + _PAPER):
    """Similar under a /paper answer: the stored papers most like it, privately, to the
    clicker."""

    prefix = SIMILAR_PAPER_PREFIX
    label = "Similar"
    emoji = "🔎"
    invalid = "That button is not valid any more; use /similar."

    async def clicked(self, interaction: discord.Interaction[Any], paper_id: str) -> None:
        client: _HasPapers = interaction.client
        found = await _private_answer(
            interaction, lambda: client.papers.similar(paper_id, limit=10)
        )
        if found is None:
            return
        if not found.hits:
            await interaction.followup.send(
                f"No stored paper shares distinctive words with arXiv:{paper_id} yet.",
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
