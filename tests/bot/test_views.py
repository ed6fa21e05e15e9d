"""Tests for the paginator and the Follow button, driven without a Discord connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest

from bot.config import Settings
from bot.domain.errors import InvalidInputError
from bot.domain.models import DestinationKind
from bot.services import PaperService
from bot.subscribing import SubscriptionService
from bot.views import APOLOGY, NOT_YOURS, AuthorPages, Paginator, follow_message
from storage.sqlite import open_sqlite

OWNER, STRANGER = 501, 502


def make_interaction(user_id: int, *, done: bool = False) -> Any:
    """A stand-in for a component or command interaction, shaped after discord.py's classes."""
    interaction = MagicMock(spec=discord.Interaction)
    interaction.user = SimpleNamespace(id=user_id)
    interaction.response = MagicMock(spec=discord.InteractionResponse)
    interaction.response.is_done.return_value = done
    interaction.response.send_message.return_value = SimpleNamespace(resource=None)
    interaction.followup = MagicMock(spec=discord.Webhook)
    interaction.original_response = AsyncMock(
        return_value=MagicMock(spec=discord.InteractionMessage)
    )
    return interaction


class Pages:
    """A loader over `total` fake pages that records which pages were asked for."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.asked: list[int] = []

    async def __call__(self, page: int) -> tuple[discord.Embed, bool]:
        self.asked.append(page)
        return discord.Embed(title=f"page {page}"), page + 1 < self.total


def sent_text(interaction: Any) -> str:
    """The text of the single ephemeral reply or follow-up the interaction got."""
    calls = interaction.response.send_message.call_args_list
    calls += interaction.followup.send.call_args_list
    assert len(calls) == 1
    args, kwargs = calls[0]
    assert kwargs.get("ephemeral") is True
    return str(args[0])


async def test_buttons_follow_the_page() -> None:
    """Prev is disabled on the first page, Next when there is no next page; the counter shows N."""
    view = Paginator(Pages(3), owner_id=OWNER)
    await view.load(0)
    assert view.previous_page.disabled and not view.next_page.disabled
    assert view.counter.label == "Page 1" and view.counter.disabled
    await view.load(2)
    assert not view.previous_page.disabled and view.next_page.disabled
    assert view.counter.label == "Page 3"
    await view.load(-4)
    assert view.page == 0


async def test_owner_turns_pages() -> None:
    """Next and Prev load the neighbouring page and edit the message in place."""
    pages = Pages(3)
    view = Paginator(pages, owner_id=OWNER)
    await view.load(0)
    click = make_interaction(OWNER)
    await view.next_page.callback(click)
    assert view.page == 1 and pages.asked == [0, 1]
    kwargs = click.response.edit_message.call_args.kwargs
    assert kwargs["embed"].title == "page 1" and kwargs["view"] is view
    await view.previous_page.callback(make_interaction(OWNER))
    assert view.page == 0 and pages.asked == [0, 1, 0]


async def test_slow_page_is_loaded_behind_a_deferral() -> None:
    """A page slower than `slow_load` (one that asks arXiv) is acknowledged first, then edited."""

    async def slow(page: int) -> tuple[discord.Embed, bool]:
        await asyncio.sleep(0.2)
        return discord.Embed(title=f"page {page}"), False

    view = Paginator(slow, owner_id=OWNER)
    view.slow_load = 0.05
    click = make_interaction(OWNER)
    await view.next_page.callback(click)
    click.response.defer.assert_awaited_once()
    click.response.edit_message.assert_not_called()
    kwargs = click.edit_original_response.call_args.kwargs
    assert kwargs["embed"].title == "page 1" and kwargs["view"] is view


async def test_others_cannot_page() -> None:
    """Someone else's click gets a private explanation and changes nothing."""
    pages = Pages(3)
    view = Paginator(pages, owner_id=OWNER)
    await view.load(0)
    click = make_interaction(STRANGER)
    await view.next_page.callback(click)
    assert sent_text(click) == NOT_YOURS
    assert view.page == 0 and pages.asked == [0]
    click.response.edit_message.assert_not_called()


async def test_single_page_is_sent_without_buttons() -> None:
    """A result that fits one page is sent as a plain embed and the view stops."""
    view = Paginator(Pages(1), owner_id=OWNER)
    interaction = make_interaction(OWNER)
    await view.send(interaction)
    kwargs = interaction.response.send_message.call_args.kwargs
    assert kwargs["embed"].title == "page 0" and "view" not in kwargs
    assert view.is_finished()


async def test_several_pages_are_sent_with_buttons_and_remembered() -> None:
    """A multi-page result is sent with the view, and the message is kept for the timeout edit."""
    view = Paginator(Pages(2), owner_id=OWNER)
    interaction = make_interaction(OWNER)
    await view.send(interaction)
    assert interaction.response.send_message.call_args.kwargs["view"] is view
    assert view.message is interaction.original_response.return_value
    deferred = make_interaction(OWNER, done=True)
    view2 = Paginator(Pages(2), owner_id=OWNER)
    await view2.send(deferred)
    assert deferred.followup.send.call_args.kwargs["view"] is view2
    assert view2.message is deferred.followup.send.return_value


async def test_timeout_disables_buttons_and_swallows_edit_errors() -> None:
    """On timeout every button is disabled; a failing edit (message gone) is not raised."""
    view = Paginator(Pages(3), owner_id=OWNER)
    await view.load(1)
    message = MagicMock(spec=discord.InteractionMessage)
    response = SimpleNamespace(status=404, reason="Not Found")
    message.edit.side_effect = discord.NotFound(response, "Unknown Message")  # type: ignore[arg-type]
    view.message = message
    await view.on_timeout()
    assert all(getattr(item, "disabled", False) for item in view.children)
    message.edit.assert_awaited_once_with(view=view)


async def test_errors_in_components_are_answered_privately() -> None:
    """A UserError from a click is shown as is; anything else gets a generic apology."""
    view = Paginator(Pages(2), owner_id=OWNER)
    click = make_interaction(OWNER)
    await view.on_error(click, InvalidInputError("Bad page."), view.next_page)
    assert sent_text(click) == "Bad page."
    click = make_interaction(OWNER)
    await view.on_error(click, RuntimeError("/secret/path.db locked"), view.next_page)
    assert sent_text(click) == APOLOGY


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SubscriptionService]:
    db = await open_sqlite(tmp_path / "paperbell.db")
    try:
        yield SubscriptionService(PaperService(db, None), Settings(database=str(db.path)))
    finally:
        await db.close()


async def test_follow_subscribes_the_clicker_by_dm(service: SubscriptionService) -> None:
    """Anyone may click Follow; it makes a DM author subscription for the clicker, once."""
    view = AuthorPages(Pages(1), owner_id=OWNER, subscriptions=service, author="Shane Legg")
    click = make_interaction(STRANGER)
    await view.follow.callback(click)
    assert "You'll get a DM" in sent_text(click)
    listing = await service.listing(guild_id=None, user_id=STRANGER)
    assert [(s.value, s.destination.kind) for s in listing.dm] == [
        ("Shane Legg", DestinationKind.DM)
    ]
    again = make_interaction(STRANGER)
    await view.follow.callback(again)
    assert "already follow" in sent_text(again)
    assert len((await service.listing(guild_id=None, user_id=STRANGER)).dm) == 1


async def test_author_pages_keep_follow_on_a_single_page(service: SubscriptionService) -> None:
    """With one page the paging buttons go away but the Follow button stays."""
    view = AuthorPages(Pages(1), owner_id=OWNER, subscriptions=service, author="Shane Legg")
    interaction = make_interaction(OWNER)
    await view.send(interaction)
    assert interaction.response.send_message.call_args.kwargs["view"] is view
    assert view.children == [view.follow]


def test_follow_message_escapes_markdown() -> None:
    """The author's name is echoed with markdown escaped."""
    text = follow_message("**Bold** _Name_", created=True, note="A note.")
    assert "\\*\\*Bold\\*\\*" in text and text.endswith("A note.")
    assert "A note." not in follow_message("X", created=False, note="A note.")
