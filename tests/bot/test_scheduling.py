"""The announcement cycle: poll until every listing URL has served tonight's listing, then stop;
inside the rebuild window check the waiting URLs in turn, as fast as arXiv's rules allow."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bot.discord_bot import PaperbellBot
from bot.domain.cadence import RebuildWindow, next_url
from bot.domain.models import SubscriptionKind
from bot.domain.schedule import EASTERN
from bot.poll_report import FeedPoll, PollOutcome
from bot.runner import build_bot
from bot.scheduling import PollScheduler, _is_tonights, announcement_trigger
from storage.locks import Leadership
from storage.postgres import open_postgres
from tests.arxiv_server import ArxivServer, RecordedRequest
from tests.backends import needs_postgres, require_postgres
from tests.bot.e2e_support import (
    DAY_ONE,
    eventually,
    paper,
    rss_listing,
    running_bot,
    settings_for,
)
from tests.discord_emulator import DiscordEmulator, running_client

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
        assert scheduler._cycle_started is not None  # SMALL still serves yesterday's listing

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


# ---- the rebuild window ----------------------------------------------------------------------

NIGHT = datetime(2026, 11, 3, 5, 0, 8, tzinfo=UTC)  # arXiv's rebuild: Tuesday 00:00:08 EST
MATH = ("math.AG", "math.CO", "math.NT", "math.PR")  # a third URL with BIG and SMALL
WINDOW_SETS = (BIG, MATH, SMALL)  # in the order rss_urls gives their URLs


def test_rebuild_window_follows_new_york_time_across_dst() -> None:
    """The window opens 3 minutes after each cycle start (23:58 New York time, 04:58 UTC in
    winter, 03:58 UTC in summer, on the nights the clocks change too) and lasts 32 minutes."""
    window = RebuildWindow()
    trigger = announcement_trigger()
    starts = []
    moment = datetime(2026, 3, 5, 12, tzinfo=UTC)
    while moment < datetime(2026, 11, 4, tzinfo=UTC):
        fire = trigger.get_next_fire_time(None, moment)
        assert fire is not None
        opens = window.next_start(fire)
        assert opens == fire + timedelta(minutes=3)
        assert window.bounds(opens - timedelta(seconds=1)) is None
        assert window.bounds(opens) == (opens, opens + timedelta(minutes=32))
        assert window.bounds(opens + timedelta(minutes=32, seconds=-1)) is not None
        assert window.bounds(opens + timedelta(minutes=32)) is None  # the end is outside
        starts.append(opens)
        moment = fire + timedelta(minutes=1)
        summer = opens.astimezone(EASTERN).dst() != timedelta(0)
        # In summer the window opens again at 23:58 EST (00:58 EDT): arXiv says "midnight
        # Eastern Standard Time", which may well mean 01:00 EDT.
        standard = window.bounds(opens + timedelta(hours=1))
        assert (standard == (opens + timedelta(hours=1), opens + timedelta(minutes=92))) == summer
        assert (standard is None) == (not summer)
    utc = {f"{s:%m-%d %H:%M}" for s in starts}
    assert "03-06 04:58" in utc  # Thursday 5 March, EST
    assert "03-09 03:58" in utc  # Sunday 8 March, the day clocks went forward: EDT
    assert "10-30 03:58" in utc  # Thursday 29 October, EDT
    assert "11-02 04:58" in utc  # Sunday 1 November, the day clocks went back: EST
    assert "11-03 04:58" in utc


def test_rebuild_window_off_and_elsewhere() -> None:
    """A window of 0 minutes never holds a moment; another start is read as New York time."""
    assert RebuildWindow(minutes=0).bounds(NIGHT) is None
    assert RebuildWindow(minutes=0).next_start(NIGHT) is None
    early = RebuildWindow(time(0, 5), 10)  # 00:05 EST is 05:05 UTC
    assert early.bounds(NIGHT) is None
    assert early.next_start(NIGHT) == datetime(2026, 11, 3, 5, 5, tzinfo=UTC)


def test_next_url_takes_turns() -> None:
    """Never-checked URLs go first in order, then the one checked longest ago."""
    urls = ["a", "b", "c"]
    checked: dict[str, int] = {}
    order = []
    for number in range(7):
        url = next_url(urls, checked)
        checked[url] = number
        order.append(url)
    assert order == ["a", "b", "c", "a", "b", "c", "a"]
    assert next_url(["c", "b"], {"a": 9, "b": 1, "c": 2}) == "b"


class ShiftedClock:
    """The real clock moved to another moment (the cycle's clock in these tests)."""

    def __init__(self, at: datetime) -> None:
        self.offset = at - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


async def _subscribe_all(
    bot: PaperbellBot, emu: DiscordEmulator, sets: Sequence[tuple[str, ...]]
) -> None:
    reader = await emu.create_user("reader")
    for category in (c for cats in sets for c in cats):
        await bot.subscriptions.subscribe(
            actor_id=reader.id, guild_id=None, channel_id=None,
            kind=SubscriptionKind.CATEGORY, value=category,
        )  # fmt: skip


def _rss(arxiv: ArxivServer, since: int) -> list[RecordedRequest]:
    return [r for r in arxiv.requests[since:] if r.path.startswith("/rss/")]


async def test_rebuild_window_checks_waiting_urls_in_turn_until_all_are_in(
    emulated_discord: DiscordEmulator,
    arxiv: ArxivServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In the window the cycle asks arXiv one request at a time, at least arxiv_delay apart,
    each URL again within rebuild_check_seconds, always conditionally; 304s are no error;
    a URL that served tonight's listing is asked no more, and the cycle ends when all have."""
    delay, bound = 0.05, 2.0
    for number, cats in enumerate(WINDOW_SETS, start=1):
        publish(arxiv, NIGHT - timedelta(days=1), number, cats)
    async with running_bot(
        emulated_discord, tmp_path / "window.db", arxiv,
        arxiv_delay=delay, rebuild_window_minutes=32.0, rebuild_check_seconds=bound,
    ) as bot:  # fmt: skip
        await _subscribe_all(bot, emulated_discord, WINDOW_SETS)
        scheduler: PollScheduler = bot.poll_scheduler
        scheduler.clock = ShiftedClock(NIGHT - timedelta(minutes=1))  # 23:59 New York time
        await scheduler.poll_once(reason="interval")  # yesterday's listings and their ETags
        urls = bot.arxiv.rss_urls([c for cats in WINDOW_SETS for c in cats])
        paths = ["/rss/" + "+".join(cats) for cats in WINDOW_SETS]
        assert [u.removeprefix(arxiv.url) for u in urls] == paths
        caplog.set_level(logging.WARNING)
        since = len(arxiv.requests)

        async def asked(count: int) -> bool:
            return len(_rss(arxiv, since)) >= count

        await scheduler.announcement_cycle()  # in the window: the checks start
        await eventually(lambda: asked(4 * len(urls)), what="four rounds of checks")
        assert scheduler._cycle_started is not None  # 304s: nothing is in yet

        publish(arxiv, NIGHT, 11, BIG)  # the rebuild reaches the first URL

        async def first_in() -> bool:
            return urls[0] in scheduler._cycle_fresh

        await eventually(first_in, what="the first URL to serve tonight's listing")
        first_asked = sum(1 for r in _rss(arxiv, since) if r.path == paths[0])
        checks = len(_rss(arxiv, since))
        await eventually(lambda: asked(checks + 6), what="three more rounds of the others")
        assert scheduler._cycle_started is not None
        publish(arxiv, NIGHT, 12, MATH)
        publish(arxiv, NIGHT, 13, SMALL)

        async def ended() -> bool:
            task = scheduler._rebuild_task
            return scheduler._cycle_started is None and task is not None and task.done()

        await eventually(ended, what="the cycle to end")
        window = _rss(arxiv, since)
        stored = await bot.papers.papers.get_many(["2501.00011", "2501.00012", "2501.00013"])
        assert len(stored) == 3
        await asyncio.sleep(10 * delay)  # time for several more checks, were any due
        assert len(_rss(arxiv, since)) == len(window)  # the cycle asks nothing more
        assert scheduler.scheduler is not None
        assert scheduler.scheduler.get_job("announcement-retry") is None

        # One at a time, arxiv_delay apart, each URL again within the bound, all conditional.
        assert arxiv.max_in_flight == 1
        gaps = [b.arrived - a.arrived for a, b in itertools.pairwise(window)]
        assert min(gaps) >= delay
        for path in paths:
            times = [r.arrived for r in window if r.path == path]
            assert len(times) >= 4, path  # four rounds before the rebuild
            assert max(b - a for a, b in itertools.pairwise(times)) <= bound, path
        assert all("If-None-Match" in r.headers for r in window)
        assert (
            sum(1 for r in window if r.path == paths[0]) == first_asked
        )  # not asked again once it was in
        for state in await bot.papers.feeds.all():
            assert state.consecutive_failures == 0 and state.last_error is None, state
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_cycle_before_the_window_retries_at_its_start(
    emulated_discord: DiscordEmulator, arxiv: ArxivServer, tmp_path: Path
) -> None:
    """Before the window the cycle polls every poll_retry_minutes, but the retry that would
    land after the window opens is moved to its start (23:58 New York time)."""
    publish(arxiv, NIGHT - timedelta(days=1), 1, SMALL)
    async with running_bot(
        emulated_discord, tmp_path / "early.db", arxiv, rebuild_window_minutes=32.0
    ) as bot:
        await _subscribe_all(bot, emulated_discord, [SMALL])
        scheduler: PollScheduler = bot.poll_scheduler
        assert scheduler.scheduler is not None

        def retry_in() -> float:
            assert scheduler.scheduler is not None
            job = scheduler.scheduler.get_job("announcement-retry")
            assert job is not None and job.next_run_time is not None
            return (job.next_run_time - datetime.now(UTC)).total_seconds()

        scheduler.clock = ShiftedClock(NIGHT - timedelta(minutes=5, seconds=8))  # 23:55:00
        await scheduler.announcement_cycle()
        assert 115 < retry_in() <= 120  # the 2-minute retry, at 23:57
        scheduler.clock.advance(timedelta(minutes=2))
        await scheduler.announcement_cycle()
        assert 55 < retry_in() <= 60  # at 23:58, not 23:59
        assert scheduler._rebuild_task is None  # no quick checks before the window


async def test_window_closing_hands_the_cycle_back_to_retries(
    emulated_discord: DiscordEmulator, arxiv: ArxivServer, tmp_path: Path
) -> None:
    """When the window closes before every URL served tonight's listing, the cycle polls
    all of them every poll_retry_minutes again, and ends once they have it."""
    for number, cats in enumerate((BIG, SMALL), start=1):
        publish(arxiv, NIGHT - timedelta(days=1), number, cats)
    async with running_bot(
        emulated_discord, tmp_path / "late.db", arxiv,
        arxiv_delay=0.02, rebuild_window_minutes=32.0, poll_retry_minutes=0.005,
    ) as bot:  # fmt: skip
        await _subscribe_all(bot, emulated_discord, [BIG, SMALL])
        scheduler: PollScheduler = bot.poll_scheduler
        clock = ShiftedClock(NIGHT + timedelta(minutes=29))  # 00:29 New York time
        scheduler.clock = clock
        await scheduler.poll_once(reason="interval")
        since = len(arxiv.requests)
        await scheduler.announcement_cycle()
        await eventually(lambda: _more_polls(arxiv, since + 4), what="window checks")
        assert scheduler._rebuild_task is not None and not scheduler._rebuild_task.done()
        clock.advance(timedelta(minutes=2))  # 00:31: the window has closed

        async def retrying() -> bool:
            task = scheduler._rebuild_task
            assert scheduler.scheduler is not None
            retry = scheduler.scheduler.get_job("announcement-retry")
            return task is not None and task.done() and retry is not None

        await eventually(retrying, what="the cycle to retry after the window")
        assert scheduler._cycle_started is not None
        since = len(arxiv.requests)
        await eventually(lambda: _more_polls(arxiv, since + 4), what="two retries")
        paths = [r.path for r in arxiv.requests[since : since + 4]]
        assert paths == ["/rss/" + "+".join(BIG), "/rss/stat.ML"] * 2  # whole polls
        publish(arxiv, NIGHT, 3, BIG)
        publish(arxiv, NIGHT, 4, SMALL)

        async def ended() -> bool:
            return scheduler._cycle_started is None

        await eventually(ended, what="the cycle to end")


async def test_shutdown_ends_the_window_checks(
    emulated_discord: DiscordEmulator, arxiv: ArxivServer, tmp_path: Path
) -> None:
    """A shutdown inside the window stops the checks at once: no request after it returns."""
    publish(arxiv, NIGHT - timedelta(days=1), 1, SMALL)
    async with running_bot(
        emulated_discord, tmp_path / "stop.db", arxiv, arxiv_delay=0.02, rebuild_window_minutes=32.0
    ) as bot:
        await _subscribe_all(bot, emulated_discord, [SMALL])
        scheduler: PollScheduler = bot.poll_scheduler
        scheduler.clock = ShiftedClock(NIGHT)
        since = len(arxiv.requests)
        await scheduler.announcement_cycle()
        await eventually(lambda: _more_polls(arxiv, since + 3), what="window checks")
        await asyncio.wait_for(scheduler.shutdown(), timeout=5)
        task = scheduler._rebuild_task
        assert task is not None and task.done() and not task.cancelled()
        asked = len(arxiv.requests)
        await asyncio.sleep(0.2)
        assert len(arxiv.requests) == asked


@needs_postgres
async def test_window_checks_of_a_process_that_is_not_the_poller(
    emulated_discord: DiscordEmulator,
    arxiv: ArxivServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In the window a process that is not the poller asks arXiv nothing: it looks at the
    store every rebuild_check_seconds and ends its cycle once the poller has tonight's listing."""
    base, schema = require_postgres(), f"pbwindow_{uuid.uuid4().hex[:12]}"
    db = await open_postgres(base, schema=schema)
    poller = Leadership(db)  # the poller process's lock, held by the test
    try:
        assert await poller.acquire()
        publish(arxiv, NIGHT - timedelta(days=1), 1, SMALL)
        settings = settings_for(
            tmp_path / "unused.db", arxiv, database=base, arxiv_delay=0.02,
            rebuild_window_minutes=32.0, rebuild_check_seconds=0.1,
        )  # fmt: skip
        async with aiohttp.ClientSession() as session:
            bot = build_bot(
                settings, db, session, user_agent="paperbell-e2e", guild_ready_timeout=0.1
            )
            async with running_client(bot, emulated_discord):
                await _subscribe_all(bot, emulated_discord, [SMALL])
                scheduler = bot.poll_scheduler
                scheduler.clock = ShiftedClock(NIGHT)
                await bot.papers.poll()  # the poller's poll: yesterday's listing is stored
                caplog.set_level(logging.WARNING)
                asked = len(arxiv.requests)
                await scheduler.announcement_cycle()
                await asyncio.sleep(0.5)  # several turns of looking at the store
                assert len(arxiv.requests) == asked
                assert scheduler._rebuild_task is not None
                assert not scheduler._rebuild_task.done()

                publish(arxiv, NIGHT, 2, SMALL)
                await bot.papers.poll()  # the poller gets tonight's listing
                asked = len(arxiv.requests)

                async def ended() -> bool:
                    return scheduler._cycle_started is None

                await eventually(ended, what="the cycle to end")
                assert len(arxiv.requests) == asked
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        await poller.release()
        await db.close()
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()
