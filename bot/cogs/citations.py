"""/cite: a paper's BibTeX entry, in a code block, attached as a `.bib` file when long.

Thin: the paper comes from `PaperService.get_paper` (the store, else arXiv),
the entry from `bot.cite`, the message from `bot.views.citation_message`, which
the Cite button under /paper answers shares.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.arxiv.ids import InvalidArxivIdError, parse_arxiv_id
from bot.cite import cite
from bot.discord_bot import PaperbellBot
from bot.errors import InvalidInputError, UserError
from bot.views import CitePaperButton, citation_message

log = logging.getLogger(__name__)

MAX_ID = 200


class Citations(commands.Cog):
    """Cite arXiv papers."""

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
        try:
            parse_arxiv_id(paper_id[:MAX_ID])  # a typo gets a private answer at once
        except InvalidArxivIdError as exc:
            raise InvalidInputError(str(exc)) from None
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


async def setup(bot: PaperbellBot) -> None:
    await bot.add_cog(Citations(bot))
    bot.add_dynamic_items(CitePaperButton)  # Cite buttons of earlier /paper answers too
