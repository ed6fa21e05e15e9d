"""Query subscriptions end to end through discord.py: preview, Save, ANDNOT, syntax errors.

The production bot runs against the Discord emulator and the local arXiv server
on a real SQLite file; listings announce papers, and a saved query alerts only
what it matches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.discord_bot import PaperbellBot
from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import (
    DAY_ONE,
    footers,
    paper,
    pointed_at,
    posted,
    rss_listing,
    running_bot,
    wait_delivered,
)
from tests.bot.test_alerts_e2e import World, admin_poll, build_world
from tests.discord_emulator import DiscordEmulator, Message

QUERY = 'cat:cs.LG AND (ti:"length generalization" OR abs:"positional encoding") ANDNOT ti:survey'
WANTED = paper("2501.00101", "Length generalization in transformers")
BY_ABSTRACT = paper(
    "2501.00102",
    "Why models fail on long inputs",
    abstract="We revisit positional encoding schemes.",
)
SURVEY = paper("2501.00103", "A survey of length generalization")
OTHER_FIELD = paper("2501.00104", "Length generalization of parsers", categories=("cs.CL",))
UNRELATED = paper("2501.00105", "Graph rewiring")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with DiscordEmulator() as emu, ArxivServer() as arxiv, pointed_at(emu):
        yield await build_world(emu, arxiv, tmp_path / "paperbell.db")


def ephemeral(message: Message) -> bool:
    return bool(message.flags & 64)


def at(bot: PaperbellBot, day_offset: int) -> None:
    """The subscription service's clock: `day_offset` days after DAY_ONE's listing."""
    bot.subscriptions.clock = lambda: DAY_ONE + timedelta(days=day_offset, hours=12)


async def save(w: World, preview: Message, user_id: int) -> str:
    """`user_id` presses the preview's Save button; the answer they see."""
    (button,) = [
        c
        for row in preview.components
        for c in row.get("components", [])
        if c.get("label") == "Save"
    ]
    click = await w.emu.click_component(preview.id, str(button["custom_id"]), user_id)
    return (await click.wait_final()).content


async def test_query_with_andnot_keeps_out_what_it_should(world: World) -> None:
    """Saved from its preview, a query alerts the channel with its matches only (not the
    survey, not another category), saying which terms matched; the store keeps it."""
    w = world
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        preview = await w.run(w.alice, "subscribe query", {"expression": QUERY, "channel": w.ml.id})
        assert ephemeral(preview) and "matches **0**" in preview.content, preview.content
        refused = await save(w, preview, w.carol.id)
        assert "Only the person who ran the command" in refused, refused
        assert await bot.subscriptions.repo.list_for_guild(w.lab.id) == []
        reply = await save(w, preview, w.alice.id)
        assert "will get new papers matching the query" in reply, reply

        w.arxiv.set_rss(rss_listing([WANTED, BY_ABSTRACT, SURVEY, OTHER_FIELD, UNRELATED]))
        await admin_poll(w)
        await wait_delivered(bot)
        listing = await w.run(w.alice, "subscriptions")
    assert "query:" in listing.content and "ANDNOT" in listing.content, listing.content
    messages = w.emu.channel_messages(w.ml.id)
    assert posted(messages) == Counter({WANTED.id: 1, BY_ABSTRACT.id: 1})
    matched = footers(messages)
    assert 'ti:"length generalization"' in matched[WANTED.id], matched
    assert "cat:cs.LG" in matched[WANTED.id], matched
    assert 'abs:"positional encoding"' in matched[BY_ABSTRACT.id], matched
    assert "survey" not in matched[BY_ABSTRACT.id].replace("ANDNOT ti:survey", ""), matched


async def test_syntax_error_gets_a_clear_ephemeral_answer(world: World) -> None:
    """A query that does not parse is answered privately with where and what was expected,
    and nothing is stored or offered for saving."""
    w = world
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        answer = await w.run(w.alice, "subscribe query", {"expression": "cat:cs.LG AND ) @here"})
        unclosed = await w.run(w.alice, "subscribe query", {"expression": "cat:cs.LG AND (ti:x"})
        too_many = await w.run(
            w.alice, "subscribe query", {"expression": " OR ".join(f"w{i}" for i in range(30))}
        )
        assert await bot.subscriptions.repo.list_dm(w.alice.id) == []
    assert ephemeral(answer) and not answer.components
    assert "at character 15: found `)`, expected (" in answer.content, answer.content
    assert "@here" not in answer.content, answer.content
    assert ephemeral(unclosed) and "expected ) or OR at the end" in unclosed.content
    assert ephemeral(too_many) and "terms" in too_many.content, too_many.content


async def test_preview_counts_the_last_seven_days(world: World) -> None:
    """The preview counts the matching first announcements of the last 7 days (not older
    listings, not the survey), lists the first five and says how many more."""
    w = world
    old = paper("2412.00001", "Length generalization, revisited")
    fresh = [paper(f"2501.0020{i}", f"Length generalization part {i}") for i in range(7)]
    w.arxiv.set_rss(rss_listing([old], built=DAY_ONE - timedelta(days=10)))
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "category", "cs.LG", w.theory)  # so the poll reads cs.LG
        await admin_poll(w)
        assert await bot.papers.announcements.for_paper(old.id)  # announced, 10 days before
        w.arxiv.set_rss(rss_listing([*fresh, SURVEY, UNRELATED], built=DAY_ONE), etag='"day1"')
        await admin_poll(w)
        await wait_delivered(bot)
        at(bot, 1)
        preview = await w.run(w.alice, "subscribe query", {"expression": QUERY}, dm=True)
        at(bot, 30)  # a month later the week holds nothing
        later = await w.run(w.alice, "subscribe query", {"expression": QUERY}, dm=True)
        assert await bot.subscriptions.repo.list_dm(w.alice.id) == []  # nothing saved yet
    assert ephemeral(preview), preview.content
    assert "matches **7** of the 9 papers announced in the last 7 days" in preview.content
    shown = [p.id for p in fresh if p.id in preview.content]
    assert len(shown) == 5 and "…and 2 more." in preview.content, preview.content
    assert old.id not in preview.content and SURVEY.id not in preview.content
    assert "matches **0** of the 0 papers" in later.content, later.content
