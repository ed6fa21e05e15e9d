"""Operations surface: the `/healthz` and `/metrics` endpoint, and feed-outage detection.

`HealthServer` is a small aiohttp app, off unless `PAPERBELL_HEALTH_PORT` is
set, bound to 127.0.0.1 unless `PAPERBELL_HEALTH_HOST` says otherwise. It asks a
`HealthSource` (for the bot: `BotHealthSource`) three questions instead of
holding the bot: is the gateway connected, when was the last poll attempt, and
when did a poll last succeed. Answers carry states and times only: no token,
no feed URL, nothing a user typed.

`/healthz` is 200 when the gateway is connected and a poll succeeded within
`poll_overdue_after`, 503 with a reason otherwise. "Succeeded" means some feed
answered (200 or 304), stale listings included, so arXiv's quiet weekends do
not count against the bot; the default limit of 3.5 days still covers a
deployment that polls only around announcements (72 h from Friday's listing to
Monday's, plus margin for a late rebuild). Until the first poll attempt after
start-up the poll is not judged (grace period), for at most that same limit.

`FeedAlerts` picks the feeds whose polls have failed for more than a day, once
per outage, so the people subscribed to them can be told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import discord
from aiohttp import web

from bot.config import Settings
from bot.domain.models import FeedState
from bot.domain.schedule import missed_listing
from bot.metrics import CONTENT_TYPE, Metrics
from bot.poll_report import PollReport
from bot.redact import redact_urls
from bot.services import utcnow
from storage.feeds import FeedStateRepository

log = logging.getLogger(__name__)

DEFAULT_POLL_OVERDUE_AFTER = timedelta(days=3, hours=12)
CHECK_TIMEOUT = 5.0  # seconds; a probe must answer even when the store hangs

FEED_ALERT_AFTER = timedelta(hours=24)
# A bot that was down over a weekend finds an old last_success; one failed poll
# after its restart is not yet an outage.
FEED_ALERT_MIN_FAILURES = 3


# ---- health ------------------------------------------------------------------------------


class HealthSource(Protocol):
    """What the health check needs to know about the running bot."""

    def gateway_connected(self) -> bool: ...

    def last_poll_attempt(self) -> datetime | None:
        """When a poll pass last ran in this process (successful or not); None before the first."""
        ...

    async def last_successful_poll(self) -> datetime | None:
        """When some feed last answered a poll (also from before a restart); None if never."""
        ...


@dataclass(frozen=True, slots=True)
class Health:
    """One health verdict; `payload()` is the JSON body of `/healthz`."""

    healthy: bool
    reasons: tuple[str, ...]
    gateway_connected: bool
    poll: str  # "ok", "waiting for the first poll" or "overdue"
    last_successful_poll: datetime | None
    poll_overdue_after: timedelta

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None

    def payload(self) -> dict[str, object]:
        body: dict[str, object] = {"status": "ok" if self.healthy else "unhealthy"}
        if self.reason:
            body["reason"] = self.reason
        last = self.last_successful_poll
        body.update(
            gateway="connected" if self.gateway_connected else "disconnected",
            poll=self.poll,
            last_successful_poll=last.isoformat() if last else None,
            poll_overdue_after_seconds=int(self.poll_overdue_after.total_seconds()),
        )
        return body


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def assess_health(
    *,
    gateway_connected: bool,
    last_success: datetime | None,
    last_attempt: datetime | None,
    started_at: datetime,
    now: datetime,
    overdue_after: timedelta = DEFAULT_POLL_OVERDUE_AFTER,
) -> Health:
    """The verdict for these facts (pure; `HealthServer` gathers the facts)."""
    reasons: list[str] = []
    if not gateway_connected:
        reasons.append("gateway disconnected")
    attempted = last_attempt is not None and last_attempt >= started_at
    if last_success is not None and now - last_success <= overdue_after:
        poll = "ok"
    elif not attempted and now - started_at <= overdue_after:
        poll = "waiting for the first poll"
    else:
        poll = "overdue"
        if last_success is not None:
            reasons.append(
                f"last successful poll at {last_success.isoformat()} is overdue"
                f" (limit {_hours(overdue_after)})"
            )
        else:
            reasons.append(
                f"no successful poll since start-up at {started_at.isoformat()}"
                f" (limit {_hours(overdue_after)})"
            )
    return Health(
        healthy=not reasons,
        reasons=tuple(reasons),
        gateway_connected=gateway_connected,
        poll=poll,
        last_successful_poll=last_success,
        poll_overdue_after=overdue_after,
    )


class HealthServer:
    """`GET /healthz` and `GET /metrics` on one aiohttp site; `start()` then `stop()`."""

    def __init__(
        self,
        source: HealthSource,
        metrics: Metrics,
        *,
        poll_overdue_after: timedelta = DEFAULT_POLL_OVERDUE_AFTER,
        clock: Callable[[], datetime] = utcnow,
        check_timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.poll_overdue_after = poll_overdue_after
        self.clock = clock
        self.check_timeout = check_timeout
        self.started_at = clock()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (useful after `start(port=0)`)."""
        if self._port is None:
            raise RuntimeError("the health server is not running")
        return self._port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("the health server is already running")
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        # No access log: probes every few seconds would drown the bot's own lines.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self.started_at = self.clock()
        log.info("health endpoint listening host=%s port=%d", host, self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._port = None

    async def check(self) -> Health:
        """The current verdict (what `/healthz` answers)."""
        return assess_health(
            gateway_connected=self.source.gateway_connected(),
            last_success=await self.source.last_successful_poll(),
            last_attempt=self.source.last_poll_attempt(),
            started_at=self.started_at,
            now=self.clock(),
            overdue_after=self.poll_overdue_after,
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(self.check_timeout):
                health = await self.check()
        except Exception:
            # The details go to the log only: the probe's answer stays free of internals.
            log.exception("health check failed")
            return _json(503, {"status": "unhealthy", "reason": "health check failed"})
        if not health.healthy:
            log.info("health check unhealthy reason=%s", health.reason)
        return _json(200 if health.healthy else 503, health.payload())

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(self.check_timeout):
                await self.metrics.refresh()
        except TimeoutError:
            log.warning("metrics refresh timed out; serving the previous values")
        return web.Response(
            body=self.metrics.render(),
            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"},
        )


def _json(status: int, body: Mapping[str, object]) -> web.Response:
    response = web.json_response(body, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def start_health_server(
    settings: Settings,
    source: HealthSource,
    metrics: Metrics,
    *,
    poll_overdue_after: timedelta = DEFAULT_POLL_OVERDUE_AFTER,
) -> HealthServer | None:
    """Start the endpoint on `settings.health_host:health_port`; None when no port is set."""
    if settings.health_port is None:
        return None
    server = HealthServer(source, metrics, poll_overdue_after=poll_overdue_after)
    await server.start(settings.health_host, settings.health_port)
    return server


class PollStatus(Protocol):
    """The part of `PollScheduler` the health check reads."""

    @property
    def last_poll(self) -> datetime | None: ...

    @property
    def last_report(self) -> PollReport | None: ...


class BotHealthSource:
    """`HealthSource` for the running bot: its gateway, its scheduler and the feed states."""

    def __init__(
        self, client: discord.Client, polls: PollStatus, feeds: FeedStateRepository
    ) -> None:
        self.client = client
        self.polls = polls
        self.feeds = feeds

    def gateway_connected(self) -> bool:
        client = self.client
        if not client.is_ready() or client.is_closed():
            return False
        if isinstance(client, discord.AutoShardedClient):
            shards = client.shards
            return bool(shards) and not any(shard.is_closed() for shard in shards.values())
        ws = client.ws
        return ws is not None and ws.open

    def last_poll_attempt(self) -> datetime | None:
        return self.polls.last_poll

    async def last_successful_poll(self) -> datetime | None:
        times = [f.last_success for f in await self.feeds.all() if f.last_success is not None]
        report = self.polls.last_report
        # With nothing subscribed a poll has no feed to ask, and that is a success.
        if report is not None and not report.feeds and self.polls.last_poll is not None:
            times.append(self.polls.last_poll)
        return max(times, default=None)


# ---- feed outages ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedOutage:
    """A feed that has not been read since `since` (its last success, or first seen failing)."""

    feed: FeedState
    since: datetime

    @property
    def url(self) -> str:
        return self.feed.url


def long_outages(
    feeds: Iterable[FeedState],
    now: datetime,
    *,
    first_failures: Mapping[str, datetime] | None = None,
    after: timedelta = FEED_ALERT_AFTER,
    min_failures: int = FEED_ALERT_MIN_FAILURES,
) -> list[FeedOutage]:
    """Feeds still being polled whose polls have failed for longer than `after`.

    An outage starts at the feed's last success; for a feed that never
    succeeded, at `first_failures[url]` (when the caller first saw it failing).
    It must also have cost a listing: a feed that broke on Friday evening is
    not reported before Monday's rebuild, when a listing was actually missed.
    Feeds not attempted within `after` are no longer polled and are skipped.
    """
    first_failures = first_failures or {}
    outages: list[FeedOutage] = []
    for feed in feeds:
        if feed.consecutive_failures < max(1, min_failures):
            continue
        if feed.last_attempt is None or now - feed.last_attempt > after:
            continue
        since = feed.last_success or first_failures.get(feed.url)
        if since is None or now - since <= after or not missed_listing(since, now):
            continue
        outages.append(FeedOutage(feed, since))
    return outages


class FeedAlerts:
    """Remembers which outages were reported, so each one is reported exactly once.

    Call `check` after every poll with all feed states. The memory is per
    process: after a restart a feed still failing is reported once more.
    """

    def __init__(
        self, *, after: timedelta = FEED_ALERT_AFTER, min_failures: int = FEED_ALERT_MIN_FAILURES
    ) -> None:
        self.after = after
        self.min_failures = min_failures
        self._first_failures: dict[str, datetime] = {}
        self._reported: dict[str, datetime] = {}  # url -> `since` of the outage reported

    def check(self, feeds: Sequence[FeedState], now: datetime) -> list[FeedOutage]:
        """The outages to report now: long ones not reported yet."""
        present = {feed.url for feed in feeds}
        for url in set(self._reported) - present:
            del self._reported[url]
        for url in set(self._first_failures) - present:
            del self._first_failures[url]
        for feed in feeds:
            if feed.consecutive_failures == 0:
                self._first_failures.pop(feed.url, None)
                self._reported.pop(feed.url, None)
            else:
                self._first_failures.setdefault(feed.url, now)
        fresh = [
            outage
            for outage in long_outages(
                feeds,
                now,
                first_failures=self._first_failures,
                after=self.after,
                min_failures=self.min_failures,
            )
            if self._reported.get(outage.url) != outage.since
        ]
        for outage in fresh:
            self._reported[outage.url] = outage.since
            log.warning(
                "feed failing url=%s since=%s failures=%d",
                redact_urls(outage.url), outage.since.isoformat(), outage.feed.consecutive_failures,
            )  # fmt: skip
        return fresh
