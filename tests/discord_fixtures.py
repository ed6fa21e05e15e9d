"""Pytest fixtures and helpers for running discord.py against the local Discord emulator.

Load them with `pytest_plugins = ("tests.discord_fixtures",)` in a test module
or the root conftest. `emulated_discord` points discord.py's process-wide
endpoints at the emulator and restores them afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.discord_endpoints import configure_endpoints, current_endpoints
from tests.discord_emulator import DiscordEmulator, running_client

__all__ = ["discord_emulator", "emulated_discord", "running_client"]

log = logging.getLogger(__name__)


@pytest.fixture
async def discord_emulator() -> AsyncIterator[DiscordEmulator]:
    """A started emulator with Discord's default limits; stopped after the test."""
    async with DiscordEmulator() as emu:
        yield emu


@pytest.fixture
async def emulated_discord(discord_emulator: DiscordEmulator) -> AsyncIterator[DiscordEmulator]:
    """The emulator, with discord.py's REST base and gateway pointed at it for this test."""
    previous = current_endpoints()
    configure_endpoints(discord_emulator.api_url, discord_emulator.gateway_url)
    try:
        yield discord_emulator
    finally:
        configure_endpoints(*previous)
