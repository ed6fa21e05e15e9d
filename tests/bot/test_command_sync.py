"""Slash commands are synced once per change of the command set, to the dev guild when set."""

from __future__ import annotations

from pathlib import Path

from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import running_bot
from tests.discord_emulator import DiscordEmulator

EXPECTED = {
    "paper", "search", "author", "subscribe", "unsubscribe", "subscriptions", "paperbell", "cite",
    "similar", "why",
}  # fmt: skip


async def test_global_sync_happens_once_per_command_set(
    emulated_discord: DiscordEmulator, arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """The first start syncs every command globally; a restart with the same set syncs nothing."""
    emu = emulated_discord
    db_path = tmp_path / "sync.db"
    async with running_bot(emu, db_path, arxiv_server):
        pass
    assert len(emu.command_syncs) == 1
    first = emu.command_syncs[0]
    assert first.guild_id is None and set(first.names) == EXPECTED
    async with running_bot(emu, db_path, arxiv_server):
        pass
    assert len(emu.command_syncs) == 1


async def test_dev_guild_gets_its_own_sync(
    emulated_discord: DiscordEmulator, arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """With PAPERBELL_DEV_GUILD the commands go to that guild only (instant, for development)."""
    emu = emulated_discord
    guild = await emu.create_guild("Dev")
    async with running_bot(emu, tmp_path / "dev.db", arxiv_server, dev_guild=guild.id):
        pass
    assert [(s.guild_id, set(s.names)) for s in emu.command_syncs] == [(guild.id, EXPECTED)]
