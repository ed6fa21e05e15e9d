"""/cite: a paper's BibTeX entry; /similar: the stored papers most like a paper.

/cite answers in a code block, attached as a `.bib` file when long.
Thin: the paper comes from `PaperService.get_paper` (the store, else arXiv),
the entry from `bot.domain.cite`, the message from `bot.views.citation_message`, which
the Cite button under /paper answers shares; /similar's papers come from
`PaperService.similar`.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot import PaperbellBot
from bot.domain.cite import cite
from bot.domain.errors import InvalidInputError, UserError
from bot.domain.ids import InvalidArxivIdError, parse_arxiv_id
from bot.embeds import similar_embed
from bot.views import CitePaperButton, SimilarPaperButton, citation_message

log = logging.getLogger(__name__)

MAX_ID = 200
SIMILAR_SHOWN = 10


def _checked_id(paper_id: str) -> None:
    """A typo gets a private answer at once, before any deferral."""
    try:
        parse_arxiv_id(paper_id[:MAX_ID])
    except InvalidArxivIdError as exc:
        raise InvalidInputError(str(exc)) from None


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
        _checked_id(paper_id)
        await interaction.response.defer(thinking=True)
        try:
            paper = await self.bot.papers.get_paper(paper_id)
        except UserError as exc:
            await interaction.edit_original_response(content=str(exc))
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
        _checked_id(paper_id)
        await interaction.response.defer(thinking=True)
        try:
            found = await self.bot.papers.similar(paper_id, limit=SIMILAR_SHOWN)
        except UserError as exc:
            # As /cite: after the public deferral the answer replaces "thinking…" in place.
            await interaction.edit_original_response(content=str(exc))
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
