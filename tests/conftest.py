"""Shared pytest fixtures. Keep each small; add yours below."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings

from tests.arxiv_server import ArxivServer

# No per-example deadline: CI machines with 2 busy cores made a 200 ms deadline fail
# property tests whose examples were fine; the examples stay random and the count
# stays hypothesis's default.
settings.register_profile("paperbell", deadline=None)
settings.load_profile("paperbell")

# `any_db`: a fresh database per backend (SQLite, and PostgreSQL when configured);
# `discord_emulator`, `emulated_discord`: the local Discord.
pytest_plugins = ("tests.backends", "tests.discord_fixtures")


@pytest.fixture
async def arxiv_server() -> AsyncIterator[ArxivServer]:
    """A local arXiv (RSS, API, author feeds) on 127.0.0.1 with an ephemeral port."""
    async with ArxivServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo what a test's in-process `paperbell` run does to logging (root handler on a
    captured stderr that pytest closes later, root and library levels), so one test's
    logging setup never silences or breaks another's."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("discord", "apscheduler")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
