"""Alert latency: from arXiv publishing a new listing to the last alert posted in Discord.

The production `PaperbellBot` runs in this process against the local Discord
emulator (Discord's 5 messages per 5 s per channel) and the local arXiv
server, which serves every RSS URL the bot asks for the matching part of the
real 2024-11-28 all-archives listing. 10 channels in 3 servers subscribe to
categories (cs.CV, cs.LG, cs.AI, ...) and a few keywords and authors, so the
bot polls all 20 archives (5 URLs) and a new day brings about 780 alerts.

The scheduler's waiting times are compressed by `--scale` (default 100):
`poll_retry_minutes`, `poll_interval_minutes`, `poll_give_up_hours`,
`delivery_interval_seconds` and `arxiv_delay` are their defaults divided by
the scale (so the 2-minute retry is 1.2 s). Work (HTTP, parsing, storing,
matching) and Discord's rate limits run in real time.

Each trial starts `PollScheduler.announcement_cycle()` while yesterday's
listing is still served, then publishes a new listing (`set_rss`, fresh ids,
next day's build date) at a random moment 1-2 retry intervals later, and
waits until every alert is posted. Reported per trial: the wait until the
poll that got the whole new listing started, that poll's duration, the
delivery time, and the total. The real-schedule figures put the measured
work back on the real clock: a poll takes its measured work plus 4 gaps of
3 s between the 5 requests, and the new listing is at worst found one retry
interval plus one poll after it appeared:
  worst = poll + retry (2 min) + poll + delivery; mean = (retry + poll) / 2 + poll + delivery.
Target: worst case under 5 minutes of real time.

    .venv/bin/python -m bench.latency [--trials 4] [--scale 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from bench._common import (  # noqa: E402
    LISTING,
    LocalBot,
    listing_for_archives,
    listing_for_day,
    local_bot,
    median,
    message_posts,
    split_items,
)
from bot.arxiv.feeds import parse_rss  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.scheduling import PollScheduler  # noqa: E402
from bot.services import FeedPoll, PollOutcome, PollReport  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import SubscriptionKind  # noqa: E402
from tests.arxiv_server import ArxivServer  # noqa: E402
from tests.discord_emulator import DiscordEmulator  # noqa: E402

# A Monday's 05:00 UTC rebuild. These listings are older than the cycles the bench starts
# (real clock), so the cycle never sees "tonight's" listing and keeps retrying: exactly the
# waiting the bench measures, but it also polls on during delivery (reported per trial).
FIRST_DAY = datetime(2026, 11, 2, 5, 0, 8, tzinfo=UTC)
ADMIN = 4242
# (server, channel, [(kind, value), ...])
SUBSCRIPTIONS: list[tuple[str, str, list[tuple[SubscriptionKind, str]]]] = [
    ("ML readers", "vision", [(SubscriptionKind.CATEGORY, "cs.CV")]),
    ("ML readers", "learning", [(SubscriptionKind.CATEGORY, "cs.LG")]),
    ("ML readers", "ai", [(SubscriptionKind.CATEGORY, "cs.AI")]),
    ("ML readers", "nlp", [(SubscriptionKind.CATEGORY, "cs.CL"),
                           (SubscriptionKind.KEYWORD, "language model")]),
    ("ML readers", "gen", [(SubscriptionKind.KEYWORD, "diffusion model")]),
    ("Physics club", "quantum", [(SubscriptionKind.CATEGORY, "quant-ph")]),
    ("Physics club", "hep", [(SubscriptionKind.CATEGORY, "hep-th"),
                             (SubscriptionKind.KEYWORD, "black hole")]),
    ("Physics club", "gr", [(SubscriptionKind.CATEGORY, "gr-qc")]),
    ("Lab", "astro", [(SubscriptionKind.CATEGORY, "astro-ph.GA"),
                      (SubscriptionKind.AUTHOR, "Banibrata Mukhopadhyay")]),
    ("Lab", "probability", [(SubscriptionKind.CATEGORY, "math.PR"),
                            (SubscriptionKind.AUTHOR, "Yang, Yang")]),
]  # fmt: skip


def empty_listing(data: bytes) -> bytes:
    head, _items, tail = split_items(data)
    return head + tail


@dataclass
class Trial:
    published_after: float  # s after the cycle started
    wait: float  # publish -> start of the poll that completed the new listing
    poll: float  # that poll, start to report
    delivery: float  # report -> last alert posted
    total: float  # publish -> last alert posted
    delivery_span: float  # first alerts queued -> last alert posted
    poll_work: float  # fetch + parse + store of the new listing, arXiv gaps left out
    polls: int  # polls that brought parts of the new listing (2 when it changed mid-poll)
    alerts: int
    messages: int
    urls: int
    later_polls: int  # polls while the alerts were being delivered


class Publisher:
    """Serves one listing per day on every URL the bot polls, split by archive."""

    def __init__(self, env: LocalBot) -> None:
        self.env = env
        self.data = LISTING.read_bytes()
        self.urls: list[str] = []

    async def discover_urls(self) -> None:
        categories = await self.env.bot.papers.poll_categories()
        self.urls = self.env.bot.arxiv.rss_urls(categories)

    def publish(self, day: int, *, empty: bool = False) -> str:
        """Serve day `day` on every URL at once; returns its build date as the poller stores it."""
        when = FIRST_DAY + timedelta(days=day)
        body = listing_for_day(self.data, when, f"{(26 + day // 12) % 100:02d}{day % 12 + 1:02d}")
        if empty:
            body = empty_listing(body)
        for url in self.urls:
            key = url.rsplit("/", 1)[1]
            self.env.arxiv.set_rss(listing_for_archives(body, key.split("+")), categories=key)
        build = parse_rss(body).build_date
        assert build is not None
        return build.isoformat()


@dataclass
class Seen:
    """A poll report of this trial and when the bench saw it."""

    at: float  # monotonic
    started: datetime  # the poll's start (wall clock, from the scheduler)
    report: PollReport


async def watch_reports(scheduler: PollScheduler, seen: list[Seen]) -> None:
    last = scheduler.last_report
    while True:
        report = scheduler.last_report
        if report is not last and report is not None and scheduler.last_poll is not None:
            seen.append(Seen(time.monotonic(), scheduler.last_poll, report))
            last = report
        await asyncio.sleep(0.002)


def fresh(report: PollReport, build: str) -> list[FeedPoll]:
    """The feeds of `report` that delivered the listing built at `build`."""
    return [
        f for f in report.feeds if f.outcome is PollOutcome.NEW_LISTING and f.build_date == build
    ]


async def trial(env: LocalBot, publisher: Publisher, day: int, rng: random.Random) -> Trial:
    bot, emu = env.bot, env.emu
    scheduler = bot.poll_scheduler
    retry = bot.settings.poll_retry_minutes * 60
    posts_before = len(message_posts(emu))
    seen: list[Seen] = []
    watcher = asyncio.create_task(watch_reports(scheduler, seen))
    cycle_started = time.monotonic()
    if scheduler.scheduler is not None and scheduler.scheduler.get_job("announcement-retry"):
        scheduler.scheduler.remove_job("announcement-retry")  # left over from the last trial
    scheduler._cycle_deadline = None  # a new evening: the cycle gets its full deadline
    await scheduler.announcement_cycle()
    await asyncio.sleep(max(0.0, cycle_started + rng.uniform(retry, 2 * retry) - time.monotonic()))
    published_wall = datetime.now(UTC)
    published = time.monotonic()
    build = publisher.publish(day)

    def mono(at: datetime) -> float:
        return published + (at - published_wall).total_seconds()

    # Wait until every URL has served the new listing (in one poll or several).
    while len({f.url for s in seen for f in fresh(s.report, build)}) < len(publisher.urls):
        await asyncio.sleep(0.005)
    day_polls = [s for s in seen if fresh(s.report, build)]
    final = day_polls[-1]
    # Then every alert posted: a delivery is marked sent once Discord confirmed it.
    while await bot.papers.outbox.pending_count():
        await asyncio.sleep(0.01)
    watcher.cancel()
    posts = [at for at, status in message_posts(emu)[posts_before:] if 200 <= status < 300]
    queued = min(s.at for s in day_polls if s.report.deliveries)
    work = sum(f.seconds for s in day_polls for f in fresh(s.report, build))
    # A cycle that ended polls no more; the safety net adds one poll per 60 (scaled) minutes.
    later_polls = sum(1 for s in seen if s.at > final.at)
    return Trial(
        published_after=published - cycle_started,
        wait=mono(final.started) - published,
        poll=final.at - mono(final.started),
        delivery=mono(max(posts)) - final.at,
        total=mono(max(posts)) - published,
        delivery_span=mono(max(posts)) - queued,
        poll_work=work - (len(publisher.urls) - 1) * bot.settings.arxiv_delay,
        polls=len(day_polls),
        alerts=sum(s.report.deliveries for s in day_polls),
        messages=len(posts),
        urls=len(publisher.urls),
        later_polls=later_polls,
    )


async def main() -> None:
    # Warnings from the bot (a global 429, a retried batch) print in line with the figures.
    logging.basicConfig(
        level=logging.WARNING, format="log: %(name)s: %(message)s", stream=sys.stdout
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--scale", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    real = Settings()
    scale = args.scale
    compressed = {
        "poll_retry_minutes": real.poll_retry_minutes / scale,
        "poll_interval_minutes": real.poll_interval_minutes / scale,
        "poll_give_up_hours": real.poll_give_up_hours / scale,
        "delivery_interval_seconds": real.delivery_interval_seconds / scale,
        "arxiv_delay": real.arxiv_delay / scale,
    }
    print(
        f"time scale 1/{scale:g}: retry {real.poll_retry_minutes:g} min -> "
        f"{compressed['poll_retry_minutes'] * 60:.2f} s, safety poll "
        f"{real.poll_interval_minutes:g} min -> {compressed['poll_interval_minutes'] * 60:.1f} s, "
        f"arXiv gap {real.arxiv_delay:g} s -> {compressed['arxiv_delay']:.3f} s, "
        f"delivery tick {real.delivery_interval_seconds:g} s -> "
        f"{compressed['delivery_interval_seconds']:.2f} s; work and Discord limits in real time"
    )
    channels: list[tuple[int, int, list[tuple[SubscriptionKind, str]]]] = []

    async def prepare(emu: DiscordEmulator, _arxiv: ArxivServer, _db: Database) -> None:
        guilds: dict[str, int] = {}
        for server, channel, subs in SUBSCRIPTIONS:
            if server not in guilds:
                guilds[server] = (await emu.create_guild(server)).id
            created = await emu.create_text_channel(guilds[server], channel)
            channels.append((guilds[server], created.id, subs))

    trials: list[Trial] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with local_bot(Path(tmp) / "latency.db", prepare=prepare, **compressed) as env:
            for guild_id, channel_id, subs in channels:
                for kind, value in subs:
                    await env.bot.subscriptions.subscribe(
                        actor_id=ADMIN, guild_id=guild_id, channel_id=channel_id,
                        kind=kind, value=value,
                    )  # fmt: skip
            publisher = Publisher(env)
            await publisher.discover_urls()
            # Day 0 is what the feeds served before the bot's first poll (no alerts).
            publisher.publish(0, empty=True)
            await env.bot.poll_scheduler.poll_once(reason="bench")
            for day in range(1, args.trials + 1):
                result = await trial(env, publisher, day, rng)
                trials.append(result)
                notes = [f"{result.alerts} alerts in {result.messages} messages"]
                if result.polls > 1:
                    notes.append(f"listing changed mid-poll: {result.polls} polls")
                if result.later_polls:
                    notes.append(f"{result.later_polls} more polls during delivery")
                print(
                    f"trial {day}: published {result.published_after:.2f}s into the cycle; "
                    f"wait {result.wait:.2f}s + poll {result.poll:.2f}s ({result.urls} URLs) + "
                    f"delivery {result.delivery:.2f}s = {result.total:.2f}s  [{'; '.join(notes)}]"
                )
    urls = trials[0].urls
    print(
        f"compressed: median {median([t.total for t in trials]):.2f}s, "
        f"max {max(t.total for t in trials):.2f}s"
    )
    retry_real = real.poll_retry_minutes * 60
    poll_real = median([t.poll_work for t in trials]) + (urls - 1) * real.arxiv_delay
    delivery = median([t.delivery_span for t in trials])
    worst = poll_real + retry_real + poll_real + delivery
    mean = (retry_real + poll_real) / 2 + poll_real + delivery
    gaps = (urls - 1) * real.arxiv_delay
    print(
        f"real schedule: poll {poll_real:.1f}s (work {poll_real - gaps:.1f}s"
        f" + {urls - 1} gaps of {real.arxiv_delay:g}s), retry {retry_real:.0f}s, "
        f"delivery {delivery:.1f}s -> mean {mean / 60:.1f} min, worst {worst / 60:.1f} min "
        f"(target < 5 min)"
    )


if __name__ == "__main__":
    asyncio.run(main())
