"""Digest mode end to end: an admin switches a channel to compact lists, and a busy day's
alerts arrive there as one list instead of one embed each."""

from __future__ import annotations

from pathlib import Path

from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import eventually, paper, rss_listing, running_bot
from tests.discord_emulator import DiscordEmulator

PAPERS = [paper(f"2501.{n:05d}", f"Digest paper number {n}") for n in range(1, 8)]


async def test_digest_channel_gets_one_compact_list(
    emulated_discord: DiscordEmulator, arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """Seven cs.LG papers reach a digest channel as one embed listing all seven, once, while
    a normal channel of the same server gets seven embeds."""
    emu = emulated_discord
    guild = await emu.create_guild("Lab")
    digest = await emu.create_text_channel(guild.id, "digest")
    normal = await emu.create_text_channel(guild.id, "normal")
    admin = await emu.create_member(guild.id, "alice", admin=True)
    member = await emu.create_member(guild.id, "bob")

    async def run(user_id: int, name: str, options: dict[str, object], where: int) -> str:
        handle = await emu.invoke_command(guild.id, where, user_id, name, options)
        return (await handle.wait_final(timeout=10)).content

    arxiv_server.set_rss(rss_listing(PAPERS))
    async with running_bot(emu, tmp_path / "digest.db", arxiv_server):
        for channel in (digest, normal):
            reply = await run(
                admin.id,
                "subscribe category",
                {"value": "cs.LG", "channel": channel.id},
                channel.id,
            )
            assert "cs.LG" in reply
        refused = await emu.invoke_command(
            guild.id, digest.id, member.id, "paperbell digest",
            {"channel": digest.id, "enabled": True}, client_checks=False,
        )  # fmt: skip
        assert "Manage" in (await refused.wait_final(timeout=10)).content
        reply = await run(
            admin.id, "paperbell digest", {"channel": digest.id, "enabled": True}, digest.id
        )
        assert "compact list" in reply
        await run(admin.id, "paperbell poll", {}, normal.id)

        await emu.wait_for_messages(normal.id, 1, timeout=10)

        async def both_posted() -> bool:
            shown = sum(len(m.embeds) for m in emu.channel_messages(normal.id))
            return shown == len(PAPERS) and len(emu.channel_messages(digest.id)) >= 1

        await eventually(both_posted, what="alerts in both channels")
        (message,) = emu.channel_messages(digest.id)
        (embed,) = message.embeds
        listed = embed["description"]
        for item in PAPERS:
            assert listed.count(f"https://arxiv.org/abs/{item.id})") == 1
        assert str(len(PAPERS)) in embed["title"]
