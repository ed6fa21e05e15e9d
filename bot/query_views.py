"""The preview of a query subscription: what it would have matched, and a Save button.

The pending expression stays in this view, in the bot's memory: the button's
custom_id is discord.py's random one and carries nothing the user typed, and
Save re-validates everything (the expression, the caller's permissions on the
target channel) when it is pressed. Only the person who ran the command may save.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.embeds import CONTENT_LIMIT, link_text, safe, truncate
from bot.subscribing import PREVIEW_DAYS, QueryPreview
from bot.views import answer_failure, reply_ephemeral

log = logging.getLogger(__name__)

NOT_YOURS = "Only the person who ran the command can save this query."
PREVIEW_TIMEOUT = 600.0  # seconds; Discord's interaction token lasts 15 minutes

SaveAction = Callable[[discord.Interaction[Any]], Awaitable[str]]
"""Subscribes for the clicker (re-checking permissions) and returns the answer to show."""


def preview_text(preview: QueryPreview, where: str) -> str:
    """The ephemeral preview: the query, its count over the last week, the first five."""
    count = preview.count
    lines = [
        f"Query for {where}: {safe(preview.query.source)}",
        f"It matches **{count}** of the {preview.examined} papers announced in the last "
        f"{PREVIEW_DAYS} days.",
    ]
    for paper in preview.first:
        lines.append(f"• [{truncate(link_text(paper.title) or paper.id, 150)}]({paper.abs_url})")
    if count > len(preview.first):
        lines.append(f"…and {count - len(preview.first)} more.")
    lines.append("Press **Save** to subscribe.")
    return truncate("\n".join(lines), CONTENT_LIMIT)


class QuerySaveView(discord.ui.View):
    """One Save button that runs `save` once, for the command's invoker only."""

    def __init__(self, owner_id: int, save: SaveAction, *, timeout: float = PREVIEW_TIMEOUT):
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self._save = save
        self.saved = False

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.owner_id:
            await reply_ephemeral(interaction, NOT_YOURS)
            return False
        return True

    @discord.ui.button(label="Save", emoji="💾", style=discord.ButtonStyle.success)
    async def save(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[QuerySaveView]
    ) -> None:
        if self.saved:
            await reply_ephemeral(interaction, "This query is already saved.")
            return
        reply = await self._save(interaction)
        self.saved = True
        button.disabled = True
        self.stop()
        await interaction.response.edit_message(content=reply, view=self)

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await answer_failure(interaction, error, log, "query save failed")
