"""Look-up commands: /paper, /search, /author.

Thin translations: the cog parses Discord options, calls `PaperService` /
`SubscriptionService`, and renders with `bot.embeds`. Mistakes surface as
`UserError`s, which the tree's error handler answers ephemerally. The shared
autocomplete callbacks for categories and author names live here too.

/search and /author ask arXiv first when it was not asked about that query
in the last day (`bot.lookups`): the interaction is deferred while arXiv is
asked, or, when many look-ups wait for arXiv, answered at once from the store
(marked possibly incomplete) and edited when arXiv has answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.categories import autocomplete_categories, normalize_category
from bot.discord_bot import PaperbellBot
from bot.domain.errors import InvalidInputError, NotFoundError, UserError
from bot.domain.ids import InvalidArxivIdError, parse_arxiv_id
from bot.domain.limits import MAX_QUERY_LENGTH
from bot.domain.models import SearchHit
from bot.domain.names import names_ambiguous
from bot.embeds import paper_embed, paper_list_embed, safe, truncate
from bot.lookups import INCOMPLETE_NOTE, LookupPlan, RefreshState, check_query
from bot.paper_buttons import FollowPaperButton, follow_paper_view
from bot.views import AuthorPages, Paginator

log = logging.getLogger(__name__)

PAGE_SIZE = 5
MAX_QUERY = MAX_QUERY_LENGTH
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


def _italic(note: str) -> str:
    """A note of ours (plain text, no user text) in italics."""
    return f"*{note}*"


ViewFactory = Callable[[str | None, bool], Paginator]
"""Builds the answer's view: (note to show, whether arXiv is still being asked)."""


class Papers(commands.Cog):
    """Look up arXiv papers and authors."""

    def __init__(self, bot: PaperbellBot) -> None:
        self.bot = bot
        self._updates: set[asyncio.Task[None]] = set()  # answers to edit when arXiv answers

    async def cog_unload(self) -> None:
        for task in self._updates:
            task.cancel()

    async def _answer(
        self,
        interaction: discord.Interaction[PaperbellBot],
        plan: LookupPlan,
        make_view: ViewFactory,
    ) -> None:
        """Answer a look-up after arXiv (deferred), from the store, or now and again later."""
        if plan.task is None:
            await make_view(plan.note, False).send(interaction)
            return
        if plan.wait:
            # arXiv's turn may take a few seconds: defer (Discord's 3 s rule).
            await interaction.response.defer(thinking=True)
            refresh = await plan.settle()
            try:
                await make_view(refresh.note, False).send(interaction)
            except UserError as exc:
                # After a public deferral the answer is public too: say it in place, so
                # the "thinking" message never hangs (as /paper does).
                await interaction.edit_original_response(content=str(exc))
            return
        # Many look-ups are waiting for arXiv: the stored results now, the rest later.
        first = make_view(INCOMPLETE_NOTE, True)
        await first.send(interaction)
        task = asyncio.create_task(self._update_later(interaction, plan, first, make_view))
        self._updates.add(task)
        task.add_done_callback(self._updates.discard)

    @staticmethod
    async def _update_later(
        interaction: discord.Interaction[PaperbellBot],
        plan: LookupPlan,
        first: Paginator,
        make_view: ViewFactory,
    ) -> None:
        try:
            refresh = await plan.settle()
            first.stop()
            await make_view(refresh.note, False).replace_original(interaction)
        except UserError as exc:
            await interaction.edit_original_response(content=str(exc), embed=None, view=None)
        except discord.HTTPException as exc:
            # Deleted meanwhile, or the token expired (15 min): nothing left to update.
            log.info("could not update a look-up answer status=%s", exc.status)
        except Exception:
            # Nobody awaits this task: log here, the stored answer stays as it was.
            log.exception("updating a look-up answer failed")

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
            found = await self.bot.papers.get_paper(paper_id, user_id=interaction.user.id)
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
        """Search arXiv's papers (asking arXiv when it was not asked today), best first."""
        cleaned = check_query(query, "search query", limit=MAX_QUERY)
        cat = normalize_category(category) if category else None
        start = parse_since(since)
        papers = self.bot.papers
        title = "Search: " + truncate(safe(cleaned), 200) + (f" in {cat}" if cat else "")
        plan = await papers.lookups.plan_search(cleaned, category=cat, user_id=interaction.user.id)

        def make_view(note: str | None, pending: bool) -> Paginator:
            async def load(page: int) -> tuple[discord.Embed, bool]:
                async def read() -> list[SearchHit]:
                    return await papers.search(
                        cleaned,
                        category=cat,
                        since=start,
                        limit=PAGE_SIZE + 1,
                        offset=page * PAGE_SIZE,
                    )

                hits = await read()
                page_note = note if page == 0 else None
                if page > 0 and len(hits) <= PAGE_SIZE:  # the store ran short: arXiv may have more
                    more = await papers.lookups.more(plan.query, user_id=interaction.user.id)
                    page_note = more.note
                    if more.state is RefreshState.FETCHED:
                        hits = await read()
                if page == 0 and not hits and not pending:
                    raise NotFoundError(f"No paper matches that search. {note or ''}".strip())
                shown = [hit.paper for hit in hits[:PAGE_SIZE]]
                intro = _italic(page_note) if page_note else None
                embed = paper_list_embed(shown, title=title, page=page, intro=intro)
                return embed, len(hits) > PAGE_SIZE

            return Paginator(load, owner_id=interaction.user.id)

        await self._answer(interaction, plan, make_view)

    @app_commands.command(name="author")
    @app_commands.describe(name="Author name as on arXiv, e.g. Shane Legg or Legg, S.")
    @app_commands.autocomplete(name=author_autocomplete)
    async def author(
        self,
        interaction: discord.Interaction[PaperbellBot],
        name: app_commands.Range[str, 1, MAX_QUERY],
    ) -> None:
        """List an author's arXiv papers, newest first, with a button to follow them."""
        cleaned = check_query(name, "name", limit=MAX_QUERY)
        papers = self.bot.papers
        shown_name = truncate(safe(cleaned), 200)
        plan = await papers.lookups.plan_author(cleaned, user_id=interaction.user.id)

        def make_view(note: str | None, pending: bool) -> Paginator:
            async def load(page: int) -> tuple[discord.Embed, bool]:
                match = await papers.author(cleaned, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE)
                page_note = note if page == 0 else None
                if page > 0 and len(match.papers) <= PAGE_SIZE:  # arXiv may have more
                    more = await papers.lookups.more(plan.query, user_id=interaction.user.id)
                    page_note = more.note
                    if more.state is RefreshState.FETCHED:
                        match = await papers.author(
                            cleaned, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE
                        )
                if page == 0 and not match.papers and not pending:
                    raise NotFoundError(
                        " ".join(
                            [
                                "No paper by that name on arXiv or in the store.",
                                note or "",
                                "`/subscribe author` still works: alerts start with new papers.",
                            ]
                        ).replace("  ", " ")
                    )
                lines = [_italic(page_note)] if page_note else []
                if len(match.matched_names) > 1:
                    spellings = truncate(safe(", ".join(match.matched_names)), 600)
                    if names_ambiguous(match.matched_names):
                        lines.append(
                            f"*Matches several names, possibly different people:* {spellings}"
                        )
                    else:
                        lines.append(f"*Matched spellings:* {spellings}")
                embed = paper_list_embed(
                    match.papers[:PAGE_SIZE],
                    title=f"Papers by {shown_name}",
                    page=page,
                    intro="\n".join(lines) or None,
                    omit_authors=match.matched_names,
                )
                return embed, len(match.papers) > PAGE_SIZE

            return AuthorPages(
                load,
                owner_id=interaction.user.id,
                subscriptions=self.bot.subscriptions,
                author=cleaned,
            )

        await self._answer(interaction, plan, make_view)


async def setup(bot: PaperbellBot) -> None:
    bot.add_dynamic_items(FollowPaperButton)  # Follow buttons of earlier /paper answers too
    await bot.add_cog(Papers(bot))
