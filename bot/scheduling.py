"""When paperbell polls arXiv and drains the outbox (APScheduler, on the bot's event loop).

arXiv announces new papers Sunday to Thursday at 20:00 US Eastern on its web
pages, but the RSS listings are rebuilt later, at midnight US Eastern. So the
announcement cycle starts at 23:55 America/New_York (Sunday to Thursday
evening, DST rules included) and runs until every listing URL has served
tonight's listing: a feed still serving the previous batch is not "no new
papers". Inside the rebuild window (23:58 to 00:30 by default, see
`bot.domain.cadence`) it checks the URLs still waiting one at a time, as fast as the
shared arXiv limiter allows (one request at a time, 3 s apart): conditional
GETs, so a URL that has not changed costs arXiv a 304. Outside the window it
polls everything every `poll_retry_minutes`, until `poll_give_up_hours`. A
slow interval poll is the safety net for holidays and late rebuilds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.arxiv.client import ArxivClient
from bot.config import Settings
from bot.delivery import Deliverer
from bot.domain.cadence import RebuildWindow, check_round, next_url
from bot.domain.errors import UpstreamError, UserError
from bot.domain.schedule import CYCLE_START, EASTERN
from bot.health import FeedAlerts
from bot.metrics import Metrics
from bot.notify import Notifier
from bot.poll_report import FeedPoll, PollOutcome, PollReport
from bot.services import PaperService, utcnow
from storage.locks import Leadership

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 15 * 60}
# A poll can wait minutes on arXiv's Retry-After; a shutdown (systemd allows 30 s) waits
# this long for it, then cancels it: its store transaction rolls back and nothing is lost.
POLL_SHUTDOWN_GRACE = 8.0
LEADERSHIP_INTERVAL = 30  # seconds: a dead poller is replaced within a minute
LISTING_DATE_TOLERANCE = timedelta(hours=6)


def announcement_trigger() -> CronTrigger:
    return CronTrigger(timezone=EASTERN, **CYCLE_START)


class PollScheduler:
    """Owns the AsyncIOScheduler; created in `setup_hook` so it binds the running loop."""

    def __init__(
        self,
        settings: Settings,
        papers: PaperService,
        arxiv: ArxivClient,
        leadership: Leadership,
        deliverer: Deliverer,
        notifier: Notifier,
        metrics: Metrics,
        feed_alerts: FeedAlerts,
    ) -> None:
        self.settings = settings
        self.papers = papers
        self.arxiv = arxiv
        self.deliverer = deliverer
        self.notifier = notifier
        self.metrics = metrics
        self.feed_alerts = feed_alerts
        self.scheduler: AsyncIOScheduler | None = None
        self.last_poll: datetime | None = None
        self.last_report: PollReport | None = None
        self._poll_lock = asyncio.Lock()
        self._poll_task: asyncio.Task[object] | None = None
        self._closing = False
        self.shutdown_grace = POLL_SHUTDOWN_GRACE
        self._cycle_deadline: datetime | None = None
        self._cycle_started: datetime | None = None
        self._cycle_fresh: set[str] = set()  # URLs that served tonight's listing this cycle
        self._cycle_checks: dict[str, int] = {}  # URL -> number of its latest window check
        self._checks = 0
        self._rebuild_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # set at shutdown: ends the rebuild checks' pauses
        self.window = RebuildWindow(settings.rebuild_window_start, settings.rebuild_window_minutes)
        # The cycle's clock (windows, deadlines); the latency bench shifts it to a rebuild night.
        self.clock: Callable[[], datetime] = utcnow
        self.leadership = leadership

    def start(self) -> None:
        settings = self.settings
        scheduler = AsyncIOScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
        scheduler.add_job(
            self.announcement_cycle, announcement_trigger(), id="announcement", name="announcement"
        )
        scheduler.add_job(
            self.safety_poll,
            IntervalTrigger(minutes=settings.poll_interval_minutes),
            id="safety",
            name="safety-net poll",
        )
        scheduler.add_job(
            self.check_leadership,
            IntervalTrigger(seconds=LEADERSHIP_INTERVAL),
            id="leadership",
            name="poller leadership",
            next_run_time=utcnow(),
        )
        scheduler.add_job(
            self.deliver,
            IntervalTrigger(seconds=settings.delivery_interval_seconds),
            id="deliver",
            name="deliver",
        )
        scheduler.start()
        self.scheduler = scheduler
        announcement = scheduler.get_job("announcement")
        log.info(
            "scheduler started next_announcement=%s next_poll=%s",
            announcement.next_run_time if announcement is not None else None,
            self.next_poll(),
        )

    async def shutdown(self) -> None:
        """Stop the jobs; let a poll in flight finish (at most `shutdown_grace` s) before
        the database closes, and start no other."""
        timeout = self.shutdown_grace
        self._closing = True
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        poll = self._poll_task
        if poll is not None and not poll.done():
            _done, pending = await asyncio.wait({poll}, timeout=timeout)
            if pending:
                log.warning("poll still running after %.0f s at shutdown; cancelling", timeout)
                poll.cancel()
                await asyncio.wait({poll})
        checks = self._rebuild_task
        if checks is not None and not checks.done():
            self._wake.set()
            _done, pending = await asyncio.wait({checks}, timeout=timeout)
            if pending:
                checks.cancel()
                await asyncio.wait({checks})
        async with self._poll_lock:
            pass
        await self.leadership.release()

    def next_poll(self) -> datetime | None:
        if self.scheduler is None:
            return None
        times = [
            job.next_run_time
            for job in self.scheduler.get_jobs()
            if job.id not in ("deliver", "leadership") and job.next_run_time is not None
        ]
        return min(times) if times else None

    async def deliver(self) -> None:
        # Only start a pass: one that outlives the interval (rate limits) must not make
        # APScheduler skip and warn at every tick.
        self.deliverer.kick()

    async def check_leadership(self) -> bool:
        """Take over polling when no process holds it (the holder died); see storage.locks."""
        was = self.leadership.held
        held = await self.leadership.acquire()
        if held != was:
            log.info("poller leadership %s", "acquired" if held else "lost")
        return held

    async def poll_once(self, *, reason: str, urls: Sequence[str] | None = None) -> PollReport:
        """One poll pass (over `urls` only, when given); concurrent callers wait for each
        other instead of doubling requests.

        Only the process holding the poller leadership polls (one process per
        SQLite file always does; on PostgreSQL one of the shards' processes).
        """
        async with self._poll_lock:
            if self._closing:
                raise UpstreamError("paperbell is shutting down; poll again once it is back.")
            if not await self.check_leadership():
                raise NotLeaderError(
                    "Another paperbell process polls arXiv for this deployment; "
                    "it runs on schedule."
                )
            started = utcnow()
            self._poll_task = asyncio.current_task()
            try:
                if urls is None:
                    report = await self.papers.poll()
                else:
                    report = await self.papers.poll_urls(urls)
            except UserError as exc:
                log.warning("poll skipped reason=%s error=%s", reason, exc)
                raise
            finally:
                self._poll_task = None
            self.last_poll = started
            self.last_report = report
            self.metrics.observe_poll(report, (utcnow() - started).total_seconds())
            if self._cycle_started is not None:
                self._cycle_fresh.update(
                    f.url for f in report.feeds if _is_tonights(f, self._cycle_started)
                )
            # The rebuild window's checks come every few seconds: only news is worth a line.
            quiet = urls is not None and not report.new and not report.errors
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "poll done reason=%s feeds=%d new=%d deliveries=%d errors=%d seconds=%.2f",
                reason, len(report.feeds), len(report.new), report.deliveries,
                len(report.errors), (utcnow() - started).total_seconds(),
            )  # fmt: skip
        if report.deliveries:
            self.deliverer.kick()
        if urls is not None:  # a check of a few URLs; the full polls watch for outages
            return report
        try:
            await self.notify_feed_outages()
        except Exception:  # telling people must never break polling
            log.exception("feed outage notification failed")
        return report

    async def notify_feed_outages(self) -> None:
        """DM the subscribers of feeds that have failed for over a day, once per outage."""
        outages = self.feed_alerts.check(await self.papers.feed_states(), utcnow())
        for outage in outages:
            categories = outage.url.rstrip("/").rsplit("/", 1)[-1].split("+")
            users = await self.papers.creators_for_feed(categories)
            since = discord.utils.format_dt(outage.since, "f")
            told = await self.notifier.feed_failing(users, outage.url, since)
            log.warning(
                "feed failing for over a day url=%s since=%s told=%d",
                outage.url,
                outage.since.isoformat(),
                told,
            )

    async def safety_poll(self) -> None:
        try:
            with contextlib.suppress(UserError):  # already logged by poll_once
                await self.poll_once(reason="interval")
        except Exception:  # the job and its schedule outlive any failure
            log.exception("interval poll failed")

    async def announcement_cycle(self) -> None:
        """Poll until every feed has served tonight's listing: inside the rebuild window
        URL by URL back to back (`_rebuild_checks`), outside it every few minutes.

        A URL counts once it served a listing new to the store and dated from
        this cycle on, in any poll of the cycle (an interval or admin poll
        included): a URL that got it early answers 304 in later polls. The
        store's feed state counts too, so the other processes of a sharded
        deployment end their cycle once the poller has tonight's listing, and
        a process that takes over polling mid-cycle knows what its
        predecessor already got. They keep retrying meanwhile, since their
        retry is what takes over when the poller dies.
        """
        now = self.clock()
        if self._cycle_deadline is None or now >= self._cycle_deadline:
            self._cycle_deadline = now + timedelta(hours=self.settings.poll_give_up_hours)
            self._cycle_started = now
            self._cycle_fresh = set()
            self._cycle_checks = {}
        if self.window.bounds(now) is not None:
            if self._rebuild_task is None or self._rebuild_task.done():
                self._rebuild_task = asyncio.create_task(
                    self._rebuild_checks(), name="paperbell-rebuild-checks"
                )
            return
        try:
            with contextlib.suppress(UserError):  # already logged by poll_once
                await self.poll_once(reason="announcement")
        except Exception:  # a failed poll must not end the night's retries
            log.exception("announcement poll failed; retrying on schedule")
        urls = await self._tonights_urls()
        if urls is not None and all(url in self._cycle_fresh for url in urls):
            self._listing_in(urls)
            return
        now = self.clock()
        retry_at = now + timedelta(minutes=self.settings.poll_retry_minutes)
        window_start = self.window.next_start(now)
        if window_start is not None:  # the quick checks begin with the window, not after it
            retry_at = min(retry_at, window_start)
        if retry_at > self._cycle_deadline:
            self._give_up()
            return
        self._retry_in(retry_at - now)

    async def _rebuild_checks(self) -> None:
        """Inside the rebuild window: check the URLs still waiting for tonight's listing, the
        one checked longest ago first, each check one conditional GET.

        The shared limiter spaces the checks (one request at a time, `arxiv_delay`
        apart, whatever else asks arXiv meanwhile), so N waiting URLs are each
        checked every N * `arxiv_delay` seconds; a URL that served tonight's
        listing is checked no more. Ends with the cycle when every URL has it;
        when the window closes first the cycle goes back to its retries.
        A process that is not the poller looks at the store every
        `rebuild_check_seconds` instead, ready to take over.
        """
        settings = self.settings
        warned = False
        while not self._closing:
            now = self.clock()
            if self._cycle_deadline is None:  # the cycle ended meanwhile
                return
            if now >= self._cycle_deadline:
                self._give_up()
                return
            if self.window.bounds(now) is None:
                log.info("rebuild window over; tonight's listing is not in yet")
                self._retry_in(timedelta(0))
                return
            checked = False
            try:
                urls = await self._tonights_urls()
                pending = [u for u in urls if u not in self._cycle_fresh] if urls else []
                if urls is not None and not pending:
                    self._listing_in(urls)
                    return
                if pending:
                    every = check_round(len(pending), settings.arxiv_delay)
                    if not warned and every > settings.rebuild_check_seconds:
                        warned = True
                        log.warning(
                            "%d listing URLs %.0f s apart: each is checked every %.0f s, "
                            "not every %.0f s", len(pending), settings.arxiv_delay, every,
                            settings.rebuild_check_seconds,
                        )  # fmt: skip
                    url = next_url(pending, self._cycle_checks)
                    self._checks += 1
                    self._cycle_checks[url] = self._checks
                    await self.poll_once(reason="rebuild", urls=[url])
                    checked = True
            except UserError:  # not the poller, or shutting down; poll_once logged it
                pass
            except Exception:  # the store or a parser failed; the next turn tries again
                log.exception("rebuild window check failed")
            if not checked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), settings.rebuild_check_seconds)

    def _retry_in(self, delay: timedelta) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.add_job(
                self.announcement_cycle,
                DateTrigger(run_date=utcnow() + delay),
                id="announcement-retry",
                name="announcement retry",
                replace_existing=True,
            )

    def _listing_in(self, urls: Sequence[str]) -> None:
        log.info("tonight's listing is in urls=%d", len(urls))
        self._end_cycle()

    def _give_up(self) -> None:
        # Every process gets here on such a night; the poller says so once.
        log.log(
            logging.WARNING if self.leadership.held else logging.INFO,
            "new listing did not appear before the deadline; waiting for the next cycle",
        )
        self._end_cycle()

    async def _tonights_urls(self) -> list[str] | None:
        """The listing URLs the cycle waits for (the poller's), after adding to the fresh ones
        those whose stored listing (fetched by any process) is tonight's; None when that is
        unknown now."""
        try:
            categories = await self.papers.poll_categories()
            urls = self.arxiv.rss_urls(categories) if categories else []
            started = self._cycle_started
            if started is not None and urls:
                stored = {state.url: state for state in await self.papers.feed_states()}
                self._cycle_fresh.update(
                    url
                    for url in urls
                    if url in stored and _built_since(stored[url].last_build, started)
                )
        except Exception:  # the store is unreachable: decide at the next retry
            log.exception("cannot tell whether tonight's listing is in")
            return None
        return urls

    def _end_cycle(self) -> None:
        self._cycle_deadline = None
        self._cycle_started = None
        self._cycle_fresh = set()
        self._cycle_checks = {}


class NotLeaderError(UpstreamError):
    """Another process of a sharded deployment is the poller."""


def _built_in_cycle(build_date: str | None, cycle_started: datetime) -> bool | None:
    """Whether a listing build date (ISO text) is from this cycle on; None when it is unknown
    or unreadable, for the caller to decide."""
    if build_date is None:
        return None
    try:
        built = datetime.fromisoformat(build_date)
    except ValueError:
        return None
    return built >= cycle_started - LISTING_DATE_TOLERANCE


def _built_since(build_date: str | None, cycle_started: datetime) -> bool:
    """Whether a stored listing build date is from this cycle on (unknown dates are not)."""
    return _built_in_cycle(build_date, cycle_started) is True


def _is_tonights(feed: FeedPoll, cycle_started: datetime) -> bool:
    """Whether `feed` served a listing new to the store and not older than this cycle.

    arXiv dates a listing (channel pubDate) at midnight US Eastern of its day,
    minutes after the cycle starts; an older one (the bot was down for a day)
    is ingested but does not end tonight's wait.
    """
    if feed.outcome is not PollOutcome.NEW_LISTING:
        return False
    # A new listing whose date is unknown counts as tonight's.
    return _built_in_cycle(feed.build_date, cycle_started) is not False
