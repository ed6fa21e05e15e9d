"""Look-up commands: /paper, /search, /author.

Thin translations: the cog parses Discord options, calls `PaperService` /
`SubscriptionService`, and renders with `bot.embeds`. Mistakes surface as
`UserError`s, which the tree's error handler answers ephemerally. The shared
autocomplete callbacks for categories and author names live here too.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.arxiv.ids import InvalidArxivIdError, parse_arxiv_id
from bot.categories import autocomplete_categories, normalize_category
from bot.discord_bot import PaperbellBot
from bot.embeds import paper_embed, paper_list_embed, safe, truncate
from bot.errors import InvalidInputError, NotFoundError, UserError
from bot.views import AuthorPages, FollowPaperButton, Paginator, follow_paper_view
from storage.names import names_ambiguous

log = logging.getLogger(__name__)

PAGE_SIZE = 5
MAX_QUERY = 300
MAX_ID = 200


def parse_since(text: str | None) -> datetime | None:
    """`YYYY-MM-DD` as the start of that UTC day; None when not given."""
    if text is None or not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError("`since` must be a date like 2024-11-28 (YYYY-MM-DD).") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def category_autocomplete(
    interaction: discord.Interaction[PaperbellBot], current: str
) -> list[app_commands.Choice[str]]:
    """arXiv categories whose id starts with, or whose name contains the words of, `current`."""
    return [
        app_commands.Choice(name=label, value=value)
        for label, value in autocomplete_categories(current[:100])
    ]


async def author_autocomplete(
    interaction: discord.Interaction[PaperbellBot], current: str
) -> list[app_commands.Choice[str]]:
    """Author spellings paperbell has stored, starting like `current`."""
    try:
        names = await interaction.client.subscriptions.author_suggestions(current)
    except Exception:
        # Autocomplete must answer within 3 s; an empty list beats an error.
        log.exception("author autocomplete failed")
        return []
    return [app_commands.Choice(name=name, value=name) for name in names]


class Papers(commands.Cog):
    """Look up arXiv papers and authors."""

    def __init__(self, bot: PaperbellBot) -> None:
        self.bot = bot

    @app_commands.command(name="paper")
    @app_commands.rename(paper_id="id")
    @app_commands.describe(
        paper_id="arXiv id or link, e.g. 2307.15771 or arxiv.org/abs/hep-th/9901001"
    )
    async def paper(
        self,
        interaction: discord.Interaction[PaperbellBot],
        paper_id: app_commands.Range[str, 1, MAX_ID],
    ) -> None:
        """Show an arXiv paper: title, authors, abstract and links."""
        if len(paper_id) > MAX_ID:
            raise InvalidInputError(f"That is not an arXiv id (longer than {MAX_ID} characters).")
        try:
            parse_arxiv_id(paper_id)  # cheap check first: a typo gets a private answer at once
        except InvalidArxivIdError as exc:
            raise InvalidInputError(str(exc)) from None
        # The store may miss it and arXiv may be slow: defer (Discord's 3 s rule).
        await interaction.response.defer(thinking=True)
        try:
            found = await self.bot.papers.get_paper(paper_id)
        except UserError as exc:
            # The first follow-up after a deferral inherits its (public) visibility, so an
            # "ephemeral" error would not be; answer in place, and the thinking never hangs.
            await interaction.edit_original_response(content=str(exc))
            return
        await interaction.followup.send(embed=paper_embed(found), view=follow_paper_view(found.id))

    @app_commands.command(name="search")
    @app_commands.describe(
        query="Words to look for in titles, abstracts and author names",
        category="Only papers in this arXiv category, e.g. cs.LG",
        since="Only papers announced on or after this day (YYYY-MM-DD)",
    )
    @app_commands.autocomplete(category=category_autocomplete)
    async def search(
        self,
        interaction: discord.Interaction[PaperbellBot],
        query: app_commands.Range[str, 1, MAX_QUERY],
        category: app_commands.Range[str, 1, 100] | None = None,
        since: app_commands.Range[str, 1, 10] | None = None,
    ) -> None:
        """Search the papers paperbell has stored, newest matches first."""
        cat = normalize_category(category) if category else None
        start = parse_since(since)
        papers = self.bot.papers
        title = "Search: " + truncate(safe(query), 200) + (f" in {cat}" if cat else "")

        async def load(page: int) -> tuple[discord.Embed, bool]:
            hits = await papers.search(
                query, category=cat, since=start, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE
            )
            if page == 0 and not hits:
                raise NotFoundError("No stored paper matches that search.")
            shown = [hit.paper for hit in hits[:PAGE_SIZE]]
            return paper_list_embed(shown, title=title, page=page), len(hits) > PAGE_SIZE

        await Paginator(load, owner_id=interaction.user.id).send(interaction)

    @app_commands.command(name="author")
    @app_commands.describe(name="Author name as on arXiv, e.g. Shane Legg or Legg, S.")
    @app_commands.autocomplete(name=author_autocomplete)
    async def author(
        self,
        interaction: discord.Interaction[PaperbellBot],
        name: app_commands.Range[str, 1, MAX_QUERY],
    ) -> None:
        """List an author's stored papers, newest first, with a button to follow them."""
        papers = self.bot.papers
        shown_name = truncate(safe(name), 200)

        async def load(page: int) -> tuple[discord.Embed, bool]:
            match = await papers.author(name, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE)
            if page == 0 and not match.papers:
                raise NotFoundError(
                    "No stored paper by that name yet. `/subscribe author` still works: "
                    "alerts start with new papers."
                )
            intro = None
            if len(match.matched_names) > 1:
                spellings = truncate(safe(", ".join(match.matched_names)), 600)
                if names_ambiguous(match.matched_names):
                    intro = f"*Matches several names, possibly different people:* {spellings}"
                else:
                    intro = f"*Matched spellings:* {spellings}"
            embed = paper_list_embed(
                match.papers[:PAGE_SIZE],
                title=f"Papers by {shown_name}",
                page=page,
                intro=intro,
                omit_authors=match.matched_names,
            )
            return embed, len(match.papers) > PAGE_SIZE

        view = AuthorPages(
            load,
            owner_id=interaction.user.id,
            subscriptions=self.bot.subscriptions,
            author=" ".join(name.split()),
        )
        await view.send(interaction)


async def setup(bot: PaperbellBot) -> None:
    bot.add_dynamic_items(FollowPaperButton)  # Follow buttons of earlier /paper answers too
    await bot.add_cog(Papers(bot))
