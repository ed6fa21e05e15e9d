"""The announcement cycle: poll until every listing URL has served tonight's listing, then stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.scheduling import PollScheduler, _is_tonights, announcement_trigger
from bot.services import FeedPoll, PollOutcome
from storage.models import SubscriptionKind
from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import DAY_ONE, eventually, paper, rss_listing, running_bot
from tests.discord_emulator import DiscordEmulator

BIG = ("cs.AI", "cs.CL", "cs.CV", "cs.LG")  # one RSS URL (four categories at most per URL)
SMALL = ("stat.ML",)  # a second URL
CYCLE_START = DAY_ONE + timedelta(days=1) - timedelta(hours=5, minutes=5)  # 23:55 ET


def test_announcement_runs_sunday_to_thursday_evenings_eastern() -> None:
    """The cycle starts at 23:55 America/New_York Sunday to Thursday, DST rules included."""
    trigger = announcement_trigger()
    fires = []
    moment = datetime(2026, 3, 5, 12, tzinfo=UTC)  # Thursday morning, before the DST change
    for _ in range(7):
        moment = trigger.get_next_fire_time(None, moment)
        fires.append(moment)
        moment += timedelta(minutes=1)
    names = [f.strftime("%a %H:%M %z") for f in fires]
    assert names == [
        "Thu 23:55 -0500",
        "Sun 23:55 -0400",  # 8 March 2026: clocks went forward
        "Mon 23:55 -0400",
        "Tue 23:55 -0400",
        "Wed 23:55 -0400",
        "Thu 23:55 -0400",
        "Sun 23:55 -0400",
    ]


def test_tonights_listing_is_new_and_not_older_than_the_cycle() -> None:
    """Only a NEW_LISTING dated from (about) the cycle's start ends the wait for its URL."""
    url = "https://rss.arxiv.org/rss/cs.LG"
    tonight = (CYCLE_START + timedelta(minutes=5)).isoformat()
    two_days_ago = (CYCLE_START - timedelta(days=2)).isoformat()
    assert _is_tonights(FeedPoll(url, PollOutcome.NEW_LISTING, build_date=tonight), CYCLE_START)
    assert not _is_tonights(FeedPoll(url, PollOutcome.STALE, build_date=tonight), CYCLE_START)
    assert not _is_tonights(FeedPoll(url, PollOutcome.NOT_MODIFIED), CYCLE_START)
    assert not _is_tonights(
        FeedPoll(url, PollOutcome.NEW_LISTING, build_date=two_days_ago), CYCLE_START
    )


@pytest.fixture
async def arxiv() -> AsyncIterator[ArxivServer]:
    async with ArxivServer() as server:
        yield server


def publish(arxiv: ArxivServer, day: datetime, number: int, categories: tuple[str, ...]) -> None:
    items = [paper(f"2501.{number:05d}", f"Paper {number}", categories=(categories[0],))]
    arxiv.set_rss(rss_listing(items, built=day), categories="+".join(categories))


async def test_cycle_waits_for_every_url_even_if_one_got_it_in_another_poll(
    emulated_discord: DiscordEmulator, arxiv: ArxivServer, tmp_path: Path
) -> None:
    """A URL whose new listing came in an interval poll (then 304s) still counts; the cycle
    retries while any URL serves yesterday's listing and stops once all have tonight's."""
    # The cycle starts now; tonight's listing is dated the coming midnight (US Eastern), the
    # previous one two days back, so the test means the same whatever the time of day.
    now = datetime.now(UTC)
    yesterday, tonight = now - timedelta(days=2), now + timedelta(days=1)
    publish(arxiv, yesterday, 1, BIG)
    publish(arxiv, yesterday, 2, SMALL)
    async with running_bot(
        emulated_discord, tmp_path / "cycle.db", arxiv, poll_retry_minutes=0.002
    ) as bot:
        reader = await emulated_discord.create_user("reader")
        for category in (*BIG, *SMALL):
            await bot.subscriptions.subscribe(
                actor_id=reader.id, guild_id=None, channel_id=None,
                kind=SubscriptionKind.CATEGORY, value=category,
            )  # fmt: skip
        scheduler: PollScheduler = bot.poll_scheduler
        await scheduler.poll_once(reason="interval")  # yesterday's listings are stored

        def retry_pending() -> bool:
            return (
                scheduler.scheduler is not None
                and scheduler.scheduler.get_job("announcement-retry") is not None
            )

        polls_before = len(arxiv.requests)
        await scheduler.announcement_cycle()  # nothing new yet: a retry is scheduled
        assert retry_pending()

        publish(arxiv, tonight, 3, BIG)
        await scheduler.poll_once(reason="interval")  # BIG arrives outside the cycle's polls
        await eventually(
            lambda: _more_polls(arxiv, polls_before + 6), what="the cycle to keep retrying"
        )
        assert retry_pending()  # SMALL still serves yesterday's listing

        publish(arxiv, tonight, 4, SMALL)

        async def finished() -> bool:
            return not retry_pending() and scheduler._cycle_started is None

        async def state() -> str:
            fresh = scheduler._cycle_fresh
            return f"retry={retry_pending()} fresh={fresh} polls={len(arxiv.requests)}"

        await eventually(finished, what="the cycle to end", details=state)
        stored = {p.id for p in await bot.papers.papers.get_many(["2501.00003", "2501.00004"])}
        assert stored == {"2501.00003", "2501.00004"}
        settled = len(arxiv.requests)
        await scheduler.deliver()
        assert len(arxiv.requests) == settled  # no more polling after the cycle ended


async def _more_polls(arxiv: ArxivServer, count: int) -> bool:
    return len(arxiv.requests) >= count
