"""Hostile arXiv text end to end: whatever a listing carries, nothing it says becomes a link,
a mention or markup in what the bot posts (alerts, digest, DMs, /paper, /search, /author,
/subscriptions), read through a model of Discord's markdown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.domain.models import Paper
from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import eventually, paper, rss_listing, running_bot
from tests.bot.markdown_oracle import render
from tests.discord_emulator import DiscordEmulator, Message

TRAPS = [
    "Zyxwv results](https://evil.example/phish) and [more",
    "Zyxwv <https://evil.example/auto> @everyone <@&123> <#456> see https://evil.example/bare",
    "Zyxwv **bold** ||spoiler|| ```code``` [x](https://evil.example/x)",
    "1. Zyxwv \\](https://evil.example/escape) > quote # head",
    "-# Zyxwv subtext [a [b] c](https://evil.example/nested)",
]
HOSTILE_AUTHORS = ("Zyxwv Phisher", "@here [me](https://evil.example/author) <@1>")
PAPERS = [
    paper(
        f"2501.{n:05d}",
        title,
        abstract=f"{title} Abstract text {title}",
        authors=HOSTILE_AUTHORS,
        categories=("cs.CR",),
    )
    for n, title in enumerate(TRAPS, start=1)
]


def check(message: Message) -> int:
    """Assert nothing in `message` links off arXiv or mentions anyone; return its link count."""
    parts = [message.content]
    for embed in message.embeds:
        parts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        parts += [str(f.get("value", "")) for f in embed.get("fields", [])]
    links = 0
    for embed in message.embeds:
        assert str(embed.get("url", "https://arxiv.org/")).startswith("https://arxiv.org/")
    for part in parts:
        seen = render(part)
        for _text, target in seen.links:
            assert target.startswith("https://arxiv.org/"), (target, part)
        assert all(m.startswith(("<t:", "<#")) and m != "<#456>" for m in seen.mentions), part
        assert seen.blocks == [], part
        links += len(seen.links)
    return links


async def test_hostile_listing_renders_literally_everywhere(
    emulated_discord: DiscordEmulator, arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """Alerts, a digest, a DM, /paper, /search, /author and /subscriptions stay literal."""
    emu = emulated_discord
    guild = await emu.create_guild("Lab")
    alerts = await emu.create_text_channel(guild.id, "alerts")
    digest = await emu.create_text_channel(guild.id, "digest")
    admin = await emu.create_member(guild.id, "alice", admin=True)
    reader = await emu.create_member(guild.id, "bob")

    async def run(user_id: int, name: str, options: dict[str, Any], where: int | None) -> Message:
        handle = (
            await emu.invoke_command(None, None, user_id, name, options)
            if where is None
            else await emu.invoke_command(guild.id, where, user_id, name, options)
        )
        message = await handle.wait_final(timeout=10)
        check(message)
        return message

    arxiv_server.set_rss(rss_listing(PAPERS))
    async with running_bot(emu, tmp_path / "hostile.db", arxiv_server) as bot:
        for channel in (alerts, digest):
            await run(
                admin.id,
                "subscribe category",
                {"value": "cs.CR", "channel": channel.id},
                channel.id,
            )
        await run(admin.id, "paperbell digest", {"channel": digest.id, "enabled": True}, digest.id)
        await run(reader.id, "subscribe keyword", {"value": TRAPS[0]}, None)
        await run(reader.id, "subscribe author", {"value": "Zyxwv Phisher"}, None)
        await run(admin.id, "paperbell poll", {}, alerts.id)

        async def all_posted() -> bool:
            shown = sum(len(m.embeds) for m in emu.channel_messages(alerts.id))
            return (
                shown == len(PAPERS)
                and len(emu.channel_messages(digest.id)) >= 1
                and len(emu.dm_messages(reader.id)) >= 1
            )

        await eventually(all_posted, what="alerts, digest and DMs posted")
        posted = (
            emu.channel_messages(alerts.id)
            + emu.channel_messages(digest.id)
            + emu.dm_messages(reader.id)
        )
        # Our own links (title, abs, pdf) survive: the escaping does not break them.
        assert sum(check(m) for m in posted) >= 3 * len(PAPERS)
        (listing,) = emu.channel_messages(digest.id)
        assert render(listing.embeds[0]["description"]).targets() == {
            f"https://arxiv.org/abs/{p.id}" for p in PAPERS
        }

        # A hostile comment and journal reference, stored as the API would give them.
        await bot.papers.ingest([
            Paper(
                id="2501.00099", version=1, title=TRAPS[1], abstract=TRAPS[2],
                authors=HOSTILE_AUTHORS, primary_category="cs.CR", categories=("cs.CR",),
                comment=TRAPS[0], journal_ref=TRAPS[3], published=datetime.now(UTC),
            )
        ])  # fmt: skip
        shown = await run(reader.id, "paper", {"id": "2501.00099"}, alerts.id)
        fields = {f["name"]: f["value"] for f in shown.embeds[0]["fields"]}
        assert "evil.example" in fields["Comment"]  # shown, as text
        assert check(shown) == 2  # [abs] and [pdf]; the title links through the embed's url
        assert shown.embeds[0]["url"] == "https://arxiv.org/abs/2501.00099"
        for options in ({"query": "Zyxwv"}, {"query": "evil example phish"}):
            await run(reader.id, "search", options, alerts.id)
        await run(reader.id, "author", {"name": "Zyxwv Phisher"}, alerts.id)
        await run(admin.id, "subscriptions", {}, alerts.id)
        await run(reader.id, "subscriptions", {}, None)
