"""/cite: a paper's BibTeX entry; /similar: the stored papers most like a paper.

/cite answers in a code block, attached as a `.bib` file when long.
Thin: the paper comes from `PaperService.get_paper` (the store, else arXiv),
the entry from `bot.domain.cite`, the message from
`bot.paper_buttons.citation_message`, which the Cite button under /paper answers
shares; /similar's papers come from `PaperService.similar`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot import PaperbellBot
from bot.domain.cite import cite
from bot.domain.errors import InvalidInputError, UserError
from bot.domain.ids import InvalidArxivIdError, parse_arxiv_id
from bot.embeds import similar_embed
from bot.paper_buttons import CitePaperButton, SimilarPaperButton, citation_message

log = logging.getLogger(__name__)

MAX_ID = 200
SIMILAR_SHOWN = 10

T = TypeVar("T")


async def _answer(
    interaction: discord.Interaction[PaperbellBot],
    paper_id: str,
    look_up: Callable[[], Awaitable[T]],
) -> T | None:
    """The prelude /cite and /similar share: check the id, defer publicly, look up.

    A typo gets a private answer at once, before any deferral; a user error from the
    look-up replaces "thinking…" in place and None is returned.
    """
    try:
        parse_arxiv_id(paper_id[:MAX_ID])
    except InvalidArxivIdError as exc:
        raise InvalidInputError(str(exc)) from None
    await interaction.response.defer(thinking=True)
    try:
        return await look_up()
    except UserError as exc:
        await interaction.edit_original_response(content=str(exc))
        return None


class Citations(commands.Cog):
    """Cite arXiv papers and find papers like them."""

    def __init__(self, bot: PaperbellBot) -> None:
        self.bot = bot

    @app_commands.command(name="cite")
    @app_commands.rename(paper_id="paper")
    @app_commands.describe(paper_id="arXiv id or link, e.g. 2307.15771")
    async def cite(
        self,
        interaction: discord.Interaction[PaperbellBot],
        paper_id: app_commands.Range[str, 1, MAX_ID],
    ) -> None:
        """A BibTeX entry for a paper, in arXiv's style (an @article once it is published)."""
        paper = await _answer(interaction, paper_id, lambda: self.bot.papers.get_paper(paper_id))
        if paper is None:
            return
        content, file = citation_message(cite(paper))
        if file is None:
            await interaction.followup.send(content)
        else:
            await interaction.followup.send(content, file=file)

    @app_commands.command(name="similar")
    @app_commands.rename(paper_id="paper")
    @app_commands.describe(paper_id="arXiv id or link, e.g. 2307.15771")
    async def similar(
        self,
        interaction: discord.Interaction[PaperbellBot],
        paper_id: app_commands.Range[str, 1, MAX_ID],
    ) -> None:
        """Up to 10 stored papers most like a paper, by the words of titles and abstracts."""
        found = await _answer(
            interaction, paper_id, lambda: self.bot.papers.similar(paper_id, limit=SIMILAR_SHOWN)
        )
        if found is None:
            return
        if not found.hits:
            await interaction.edit_original_response(
                content=f"No stored paper shares distinctive words with arXiv:{found.paper.id} yet."
            )
            return
        papers = [paper for paper, _ in found.hits]
        await interaction.followup.send(embed=similar_embed(found.paper, papers))


async def setup(bot: PaperbellBot) -> None:
    await bot.add_cog(Citations(bot))
    # Cite and Similar buttons of earlier /paper answers too.
    bot.add_dynamic_items(CitePaperButton, SimilarPaperButton)
