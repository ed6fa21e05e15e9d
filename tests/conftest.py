"""Shared pytest fixtures. Keep each small; add yours below."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.arxiv_server import ArxivServer

# `any_db`: a fresh database per backend (SQLite, and PostgreSQL when configured);
# `discord_emulator`, `emulated_discord`: the local Discord.
pytest_plugins = ("tests.backends", "tests.discord_fixtures")


@pytest.fixture
async def arxiv_server() -> AsyncIterator[ArxivServer]:
    """A local arXiv (RSS, API, author feeds) on 127.0.0.1 with an ephemeral port."""
    async with ArxivServer() as server:
        yield server
