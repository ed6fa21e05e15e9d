"""Look-ups that ask arXiv, end to end: discord.py against the emulator, the local arXiv API.

A fresh store (nothing polled yet) with a channel subscribed to the author:
/author asks arXiv once a day, lists what arXiv returned filtered by name,
and never posts an alert; a long queue answers at once and edits the answer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.discord_bot import PaperbellBot
from bot.domain.models import Paper
from tests.arxiv_server import ArxivServer, Scripted
from tests.bot.e2e_support import message_posts, running_bot
from tests.discord_emulator import CallbackType, Channel, DiscordEmulator, Guild, Message, User

NOW = datetime.now(UTC)
ABS_LINK = re.compile(r"\(https://arxiv\.org/abs/([^)\s]+)\)")


def api_paper(number: int, authors: tuple[str, ...], title: str) -> Paper:
    """A paper as the API serves it; larger numbers were submitted later."""
    return Paper(
        id=f"2402.{number:05d}",
        version=1,
        title=title,
        abstract="We study intelligence in machines and soils.",
        authors=authors,
        primary_category="cs.AI",
        categories=("cs.AI",),
        published=NOW - timedelta(days=400 - number),
    )


CORPUS = [
    api_paper(1, ("Shane Legg", "Marcus Hutter"), "Universal intelligence"),
    api_paper(2, ("S. Legg",), "Machine super intelligence"),
    api_paper(3, ("Sarah Legg", "Ann Other"), "Soil carbon and intelligence"),
    api_paper(4, ("Shane Lee",), "Rivers"),
    api_paper(5, ("Shane Legg", "Pedro A. Ortega"), "Safety of intelligent agents"),
]


def listed_ids(message: Message) -> list[str]:
    return ABS_LINK.findall(message.embeds[0]["description"])


@dataclass
class Fresh:
    emu: DiscordEmulator
    bot: PaperbellBot
    arxiv: ArxivServer
    guild: Guild
    general: Channel
    papers: Channel
    admin: User
    member: User

    async def author(self, user: User, name: str) -> Message:
        handle = await self.emu.invoke_command(
            self.guild.id, self.general.id, user.id, "author", {"name": name}
        )
        return await handle.wait_final(timeout=10)


@pytest.fixture
async def fresh(
    emulated_discord: DiscordEmulator, arxiv_server: ArxivServer, tmp_path: Path
) -> AsyncIterator[Fresh]:
    emu = emulated_discord
    guild = await emu.create_guild("Readers")
    general = await emu.create_text_channel(guild.id, "general")
    papers = await emu.create_text_channel(guild.id, "papers")
    admin = await emu.create_member(guild.id, "alice", admin=True)
    member = await emu.create_member(guild.id, "bob")
    arxiv_server.set_api_corpus(CORPUS)
    async with running_bot(
        emu, tmp_path / "fresh.db", arxiv_server, delivery_interval_seconds=0.05
    ) as bot:
        yield Fresh(emu, bot, arxiv_server, guild, general, papers, admin, member)


async def test_author_on_a_fresh_store_asks_arxiv_and_alerts_nobody(fresh: Fresh) -> None:
    """/author Shane Legg lists arXiv's papers filtered by name, posts nothing to the
    subscribed channel, and a second /author within a day sends no API request."""
    subscribed = await fresh.emu.invoke_command(
        fresh.guild.id, fresh.papers.id, fresh.admin.id, "subscribe author",
        {"value": "Shane Legg", "channel": fresh.papers.id},
    )  # fmt: skip
    assert "Shane Legg" in (await subscribed.wait_final(timeout=10)).content

    handle = await fresh.emu.invoke_command(
        fresh.guild.id, fresh.general.id, fresh.member.id, "author", {"name": "Shane Legg"}
    )
    assert (await handle.wait_response()).type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    message = await handle.wait_final(timeout=10)
    assert listed_ids(message) == ["2402.00005", "2402.00002", "2402.00001"]  # newest first
    description = message.embeds[0]["description"]
    assert "Soil carbon" not in description and "Rivers" not in description
    (request,) = fresh.arxiv.api_requests()
    assert request.query["search_query"] == "au:legg_s"
    assert request.query["sortBy"] == "submittedDate"

    await fresh.bot.deliverer.deliver()
    await asyncio.sleep(0.3)  # several delivery intervals
    assert message_posts(fresh.emu, fresh.papers.id) == []
    assert await fresh.bot.papers.outbox.pending_count() == 0

    again = await fresh.author(fresh.admin, "Shane Legg")
    assert listed_ids(again) == listed_ids(message)
    assert len(fresh.arxiv.api_requests()) == 1


async def test_arxiv_rate_limited_says_so_in_the_answer(fresh: Fresh) -> None:
    """arXiv's 'Rate exceeded.' gives a clear answer in place when nothing is stored."""
    fresh.arxiv.enqueue(Scripted(status=200, body=b"Rate exceeded.", path="/api/query"))
    handle = await fresh.emu.invoke_command(
        fresh.guild.id, fresh.general.id, fresh.member.id, "author", {"name": "Shane Legg"}
    )
    message = await handle.wait_final(timeout=10)
    assert "No paper by that name" in message.content
    assert "arXiv asked us to slow down" in message.content
    assert len(fresh.arxiv.api_requests()) == 1  # asked once, no retries while a user waits


async def test_cooldown_answers_from_the_store_with_a_clear_note(fresh: Fresh) -> None:
    """A user's second uncached look-up within the cooldown gets stored results and why."""
    await fresh.author(fresh.member, "Shane Legg")
    message = await fresh.author(fresh.member, "Legg")  # au:legg: not asked yet
    assert "you can ask again in" in message.embeds[0]["description"]
    assert "possibly different people" in message.embeds[0]["description"]
    assert len(fresh.arxiv.api_requests()) == 1


async def test_long_queue_answers_at_once_and_edits_when_arxiv_answers(fresh: Fresh) -> None:
    """With look-ups queued for arXiv, /author answers from the store marked possibly
    incomplete, then the same message shows arXiv's papers."""
    fresh.bot.papers.lookups.gate.wait_limit = 0  # every look-up counts as behind a queue
    fresh.arxiv.enqueue(Scripted(delay=0.5, passthrough=True, path="/api/query"))
    handle = await fresh.emu.invoke_command(
        fresh.guild.id, fresh.general.id, fresh.member.id, "author", {"name": "Shane Legg"}
    )
    assert (await handle.wait_response()).type == CallbackType.CHANNEL_MESSAGE
    first = await handle.wait_final()
    assert "Possibly incomplete" in first.embeds[0]["description"]
    assert listed_ids(first) == []

    def edited() -> bool:
        current = fresh.emu.get_message(first.id)
        return current is not None and bool(listed_ids(current))

    await fresh.emu.wait_for(edited, timeout=10, what="the answer edited with arXiv's papers")
    final = fresh.emu.get_message(first.id)
    assert final is not None
    assert listed_ids(final) == ["2402.00005", "2402.00002", "2402.00001"]
    assert "Possibly incomplete" not in final.embeds[0]["description"]


async def test_search_on_a_fresh_store_asks_arxiv_words_only(fresh: Fresh) -> None:
    """/search on a fresh store sends all: words (operators typed are words) and lists
    what arXiv returned."""
    options = {"query": 'intelligence") OR (au:x', "category": "cs.AI"}
    handle = await fresh.emu.invoke_command(
        fresh.guild.id, fresh.general.id, fresh.member.id, "search", options
    )
    message = await handle.wait_final(timeout=10)
    (request,) = fresh.arxiv.api_requests()
    assert request.query["search_query"] == (
        "all:intelligence AND all:or AND all:au AND all:x AND cat:cs.AI"
    )
    assert message.content == "No paper matches that search."  # none has "or", "au", "x"
    plain = await fresh.emu.invoke_command(
        fresh.guild.id, fresh.general.id, fresh.admin.id, "search",
        {"query": "universal", "category": "cs.AI"},
    )  # fmt: skip
    found = await plain.wait_final(timeout=10)
    assert listed_ids(found) == ["2402.00001"]
    assert [r.query["search_query"] for r in fresh.arxiv.api_requests()][1:] == [
        "all:universal AND cat:cs.AI"
    ]
