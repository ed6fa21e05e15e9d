"""The scheduler's poll jobs survive any exception: logged with its traceback, schedule kept."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.domain.models import SubscriptionKind
from bot.domain.schedule import EASTERN
from bot.poll_report import PollReport
from bot.scheduling import PollScheduler
from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import running_bot
from tests.discord_emulator import DiscordEmulator


@pytest.fixture
async def arxiv() -> AsyncIterator[ArxivServer]:
    async with ArxivServer() as server:
        yield server


async def test_poll_jobs_outlive_an_unexpected_exception(
    emulated_discord: DiscordEmulator,
    arxiv: ArxivServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A poll that raises something unforeseen is logged with its traceback; the announcement
    cycle still schedules its retry and the interval job stays on the schedule."""
    async with running_bot(
        emulated_discord, tmp_path / "fail.db", arxiv, poll_retry_minutes=60
    ) as bot:
        reader = await emulated_discord.create_user("reader")
        await bot.subscriptions.subscribe(
            actor_id=reader.id, guild_id=None, channel_id=None,
            kind=SubscriptionKind.CATEGORY, value="cs.LG",
        )  # fmt: skip
        scheduler: PollScheduler = bot.poll_scheduler
        # Noon US Eastern: outside the rebuild window, so the cycle polls everything itself.
        noon = datetime.now(EASTERN).replace(hour=12, minute=0, second=0, microsecond=0)
        scheduler.clock = lambda: noon.astimezone(UTC)

        async def broken_poll(*_args: object, **_kwargs: object) -> PollReport:
            raise OverflowError("date value out of range")

        monkeypatch.setattr(bot.papers, "poll", broken_poll)
        with caplog.at_level(logging.ERROR, logger="bot.scheduling"):
            await scheduler.announcement_cycle()
            await scheduler.safety_poll()
        assert scheduler.scheduler is not None
        assert scheduler.scheduler.get_job("announcement-retry") is not None
        assert scheduler.scheduler.get_job("safety") is not None
        failures = [r for r in caplog.records if r.exc_info and r.exc_info[0] is OverflowError]
        assert {r.getMessage() for r in failures} == {
            "announcement poll failed; retrying on schedule",
            "interval poll failed",
        }

        monkeypatch.undo()  # the next poll works again
        report = await scheduler.poll_once(reason="interval")
        assert report.errors == ()
