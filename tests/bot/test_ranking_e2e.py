"""Feedback and ranking end to end: members rate alerts with the 👍/👎 buttons under them, and
the channel's next digest comes in the order its ratings taught; `top:K` keeps only the best."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.domain.models import DestinationKind, Paper
from bot.rating_buttons import TEMPLATE, rate_id
from storage.schema import deliveries, papers, ranking_filtered
from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import (
    DAY_ONE,
    alert_ids,
    eventually,
    footers,
    paper,
    rss_listing,
    running_bot,
    wait_delivered,
)
from tests.discord_emulator import DiscordEmulator, Message

DAY_TWO = DAY_ONE.replace(day=8)
DAY_THREE = DAY_ONE.replace(day=9)
GRAPHS = "Message passing graph neural networks on molecules"
QUANTUM = "Surface code decoders for quantum error correction"


def graph_paper(number: int) -> Paper:
    return paper(
        f"2501.{number:05d}",
        f"Graph neural networks for molecular property prediction {number}",
        abstract=f"{GRAPHS}: message passing over atoms and bonds.",
        authors=("Petar Graphson",),
    )


def quantum_paper(number: int) -> Paper:
    return paper(
        f"2501.{number:05d}",
        f"Quantum error correction with surface codes {number}",
        abstract=f"{QUANTUM}: qubits, syndromes and thresholds.",
        authors=("Qiu Bitwise",),
    )


def is_graph(paper_id: str) -> bool:
    return int(paper_id.split(".")[1]) % 2 == 0  # even numbers are graph papers here


def digest_ids(message: Message) -> list[str]:
    (embed,) = message.embeds
    return re.findall(r"\(https://arxiv\.org/abs/([^)\s]+)\)", embed["description"])


async def test_ratings_reorder_a_digest_and_top_k_keeps_the_best(
    emulated_discord: DiscordEmulator, arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """Twelve 👍/👎 clicks (graph papers liked, quantum ones not) put the next digest's graph
    papers first although they arrived last; with `top:K` only the day's best K are posted,
    each saying why it ranked, and the rest are recorded as filtered."""
    emu = emulated_discord
    guild = await emu.create_guild("Lab")
    channel = await emu.create_text_channel(guild.id, "papers")
    admin = await emu.create_member(guild.id, "alice", admin=True)
    member = await emu.create_member(guild.id, "bob")

    async def run(name: str, options: dict[str, object]) -> str:
        handle = await emu.invoke_command(guild.id, channel.id, admin.id, name, options)
        return (await handle.wait_final(timeout=10)).content

    day_one = [graph_paper(n) if n % 2 == 0 else quantum_paper(n) for n in range(1, 13)]
    arxiv_server.set_rss(rss_listing(day_one))
    async with running_bot(emu, tmp_path / "rank.db", arxiv_server) as bot:
        started = datetime.now(UTC)
        bot.ranker.clock = lambda: started  # "today" is the day the test started
        reply = await run("subscribe category", {"value": "cs.LG", "channel": channel.id})
        assert "cs.LG" in reply
        await run("paperbell poll", {})
        await wait_delivered(bot)
        first_day = emu.channel_messages(channel.id)
        shown = [pid for message in first_day for pid in alert_ids(message)]
        assert shown == [p.id for p in day_one]  # unranked: as listed

        for message in first_day:
            for pid in alert_ids(message):
                click = await emu.click_component(
                    message.id, rate_id(pid, is_graph(pid)), member.id
                )
                assert "noted" in (await click.wait_final()).content
        # A change of mind: the latest click counts, and the count stays one per person.
        flip = first_day[0]
        first = alert_ids(flip)[0]
        await (await emu.click_component(flip.id, rate_id(first, True), member.id)).wait_final()
        again = await emu.click_component(flip.id, rate_id(first, False), member.id)
        assert "ranked by its 12 ratings" in (await again.wait_final()).content

        assert "compact list" in await run(
            "paperbell digest", {"channel": channel.id, "enabled": True}
        )
        day_two = [quantum_paper(n) for n in (21, 23, 25)] + [graph_paper(n) for n in (22, 24, 26)]
        arxiv_server.set_rss(rss_listing(day_two, built=DAY_TWO))
        await run("paperbell poll", {})
        await wait_delivered(bot)
        (digest,) = emu.channel_messages(channel.id)[len(first_day) :]
        order = digest_ids(digest)
        assert sorted(order) == sorted(p.id for p in day_two)
        assert [is_graph(pid) for pid in order] == [True] * 3 + [False] * 3
        # The digest's buttons are numbered in its order and rate that line's paper.
        click = await emu.click_component(digest.id, rate_id(order[0], True), member.id)
        assert "noted" in (await click.wait_final()).content

        # 18 alerts were posted today: top 20 leaves room for the 2 best of day three.
        await run("paperbell digest", {"channel": channel.id, "enabled": False})
        reply = await run("paperbell tune", {"channel": channel.id, "top": 20})
        assert "best 20 a day" in reply
        day_three = [quantum_paper(31), quantum_paper(33), graph_paper(32)]
        day_three += [graph_paper(34), quantum_paper(35)]
        arxiv_server.set_rss(rss_listing(day_three, built=DAY_THREE))
        await run("paperbell poll", {})
        await wait_delivered(bot)

        async def settled() -> bool:
            return len(emu.channel_messages(channel.id)) == len(first_day) + 2

        await eventually(settled, what="day three's message")
        (last,) = emu.channel_messages(channel.id)[len(first_day) + 1 :]
        assert alert_ids(last) == ["2501.00032", "2501.00034"] or alert_ids(last) == [
            "2501.00034",
            "2501.00032",
        ]
        for text in footers([last]).values():
            assert "ranked for this channel because:" in text
        rows = await bot.papers.db.fetchall(
            select(papers.c.id, ranking_filtered.c.reason, deliveries.c.status,
                   deliveries.c.last_error)
            .join_from(ranking_filtered, deliveries,
                       deliveries.c.id == ranking_filtered.c.delivery_id)
            .join(papers, papers.c.rowid == deliveries.c.paper_rowid)
            .order_by(papers.c.id)
        )  # fmt: skip
        assert [(r[0], r[1], r[2]) for r in rows] == [
            (pid, "top_k", "failed") for pid in ("2501.00031", "2501.00033", "2501.00035")
        ]
        assert all(str(r[3]).startswith("filtered:") for r in rows)
        # /why names the threshold that kept a paper back, and says a kept one was sent.
        why = await run("why", {"paper": "2501.00031", "channel": channel.id})
        assert "top:20" in why, why
        sent = await run("why", {"paper": "2501.00032", "channel": channel.id})
        assert "top:20" not in sent and "discord.com/channels/" in sent, sent


async def test_tune_needs_manage_channels(
    emulated_discord: DiscordEmulator, arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """`/paperbell tune` needs Manage Channels on that channel, checked when it runs."""
    emu = emulated_discord
    guild = await emu.create_guild("Lab")
    channel = await emu.create_text_channel(guild.id, "papers")
    admin = await emu.create_member(guild.id, "alice", admin=True)
    member = await emu.create_member(guild.id, "bob")
    arxiv_server.set_rss(rss_listing([graph_paper(2)]))
    async with running_bot(emu, tmp_path / "refuse.db", arxiv_server):
        handle = await emu.invoke_command(
            guild.id, channel.id, admin.id, "subscribe category",
            {"value": "cs.LG", "channel": channel.id},
        )  # fmt: skip
        await handle.wait_final(timeout=10)
        refused = await emu.invoke_command(
            guild.id, channel.id, member.id, "paperbell tune",
            {"channel": channel.id, "top": 3}, client_checks=False,
        )  # fmt: skip
        assert "Manage Channels" in (await refused.wait_final(timeout=10)).content


def test_button_ids_are_strict() -> None:
    """Only well-formed rating ids match in full; junk, markup and overlong ids do not."""
    pattern = re.compile(TEMPLATE)
    assert pattern.fullmatch(rate_id("2501.00001", True))
    assert pattern.fullmatch(rate_id("hep-th/9901001", False))
    for forged in (
        "pb:rate:2501.00001:x",
        "pb:rate:2501.00001:u:extra",
        "pb:rate:<@1>:u",
        "pb:rate:" + "1" * 90 + ":u",
        "pb:rate:2501.0001a:d",
    ):
        assert pattern.fullmatch(forged) is None


async def test_dm_ratings_are_the_users_own(
    emulated_discord: DiscordEmulator, arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """A click under a DM alert rates it for that user's DMs, not for any channel."""
    emu = emulated_discord
    guild = await emu.create_guild("Lab")
    await emu.create_text_channel(guild.id, "papers")
    carol = await emu.create_member(guild.id, "carol")
    arxiv_server.set_rss(rss_listing([graph_paper(2), quantum_paper(3)]))
    async with running_bot(emu, tmp_path / "dm.db", arxiv_server) as bot:
        handle = await emu.invoke_command(None, None, carol.id, "subscribe category",
                                          {"value": "cs.LG"})  # fmt: skip
        assert "cs.LG" in (await handle.wait_final(timeout=10)).content
        await bot.poll_now()
        await wait_delivered(bot)
        (message,) = emu.dm_messages(carol.id)
        assert alert_ids(message) == ["2501.00002", "2501.00003"]
        click = await emu.click_component(message.id, rate_id("2501.00003", False), carol.id)
        reply = await click.wait_final()
        assert reply.flags & 64  # ephemeral
        assert "1 rating(s) so far for your DMs" in reply.content
        dest = await bot.papers.subscriptions.destination_for(DestinationKind.DM, carol.id)
        assert dest is not None
        assert await bot.ranker.ratings.rated(dest.id, 10) == [("2501.00003", False)]
