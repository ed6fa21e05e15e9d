"""Tests for bot.health: /healthz and /metrics over real HTTP, the bot's source, feed outages."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from bot.delivery import DeliveryReport
from bot.domain.models import DestinationKind, FeedState, SubscriptionKind
from bot.domain.schedule import missed_listing
from bot.health import (
    DEFAULT_POLL_OVERDUE_AFTER,
    BotHealthSource,
    FeedAlerts,
    HealthServer,
    long_outages,
    start_health_server,
)
from bot.metrics import Metrics
from bot.poll_report import FeedPoll, PollOutcome, PollReport
from bot.runner import build_bot
from storage.sqlite import open_sqlite
from storage.subscriptions import SubscriptionRepository
from tests.arxiv_server import ArxivServer
from tests.discord_emulator import DiscordEmulator
from tests.discord_fixtures import discord_emulator, emulated_discord, running_client

__all__ = ["discord_emulator", "emulated_discord"]  # fixtures used by name below

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LISTING = FIXTURES / "rss2024_new_all-archives_2024-11-28.xml"

FRI = datetime(2024, 11, 22, tzinfo=UTC)  # a Friday, 00:00 UTC
MON = FRI + timedelta(days=3)
START = MON + timedelta(hours=12)


class Clock:
    """A settable clock for the server under test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ScriptedSource:
    """A HealthSource whose answers the test sets."""

    connected: bool = True
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    error: Exception | None = None
    release: asyncio.Event | None = None  # when set, the store read waits for it

    def gateway_connected(self) -> bool:
        return self.connected

    def last_poll_attempt(self) -> datetime | None:
        return self.last_attempt

    async def last_successful_poll(self) -> datetime | None:
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.last_success


@dataclass
class Served:
    server: HealthServer
    source: ScriptedSource
    clock: Clock
    metrics: Metrics
    session: aiohttp.ClientSession
    refreshes: list[int] = field(default_factory=list)

    async def get(self, path: str) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        url = f"http://127.0.0.1:{self.server.port}{path}"
        async with self.session.get(url) as resp:
            body: Any = await resp.json() if path == "/healthz" else await resp.text()
            return resp.status, body, resp.headers


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A HealthServer on 127.0.0.1 (ephemeral port) over a scripted source, started at START."""
    clock = Clock(START)
    source = ScriptedSource()
    metrics = Metrics()
    server = HealthServer(source, metrics, clock=clock, check_timeout=0.2)
    await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            yield Served(server, source, clock, metrics, session)
    finally:
        await server.stop()


# ---- /healthz ------------------------------------------------------------------------------


async def test_healthy_when_connected_and_recently_polled(served: Served) -> None:
    """Connected gateway and a poll within the limit: 200 with states and times only."""
    served.source.last_success = START - timedelta(hours=2)
    status, body, headers = await served.get("/healthz")
    assert status == 200
    assert body == {
        "status": "ok",
        "gateway": "connected",
        "poll": "ok",
        "last_successful_poll": "2024-11-25T10:00:00+00:00",
        "poll_overdue_after_seconds": 84 * 3600,
    }
    assert headers["Cache-Control"] == "no-store"


async def test_gateway_down_is_503_with_reason(served: Served) -> None:
    """A disconnected gateway makes the bot unhealthy, whatever the polls do."""
    served.source.last_success = START - timedelta(hours=2)
    served.source.connected = False
    status, body, _ = await served.get("/healthz")
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["reason"] == "gateway disconnected"
    assert body["gateway"] == "disconnected"


async def test_overdue_poll_is_503_with_reason(served: Served) -> None:
    """No successful poll within the limit, after a poll was tried: 503 naming the last one."""
    served.source.last_success = START - timedelta(days=4)
    served.source.last_attempt = START + timedelta(minutes=5)
    served.clock.now = START + timedelta(minutes=5)
    status, body, _ = await served.get("/healthz")
    assert status == 503
    assert body["reason"] == (
        "last successful poll at 2024-11-21T12:00:00+00:00 is overdue (limit 84 h)"
    )
    assert body["poll"] == "overdue"


async def test_both_problems_are_reported(served: Served) -> None:
    """Gateway and poll problems are both named in the reason."""
    served.source.connected = False
    served.source.last_attempt = START
    status, body, _ = await served.get("/healthz")
    assert status == 503
    assert body["reason"].startswith("gateway disconnected; no successful poll since start-up")


async def test_weekend_gap_does_not_flap(served: Served) -> None:
    """A poll success on Friday morning still counts on Monday before the listing (72 h gap)."""
    served.source.last_success = FRI + timedelta(hours=5, minutes=10)
    served.source.last_attempt = START
    served.clock.now = START + timedelta(hours=4)  # Monday 16:00, 82 h 50 min later
    assert (await served.get("/healthz"))[0] == 200
    served.clock.now = FRI + timedelta(hours=5, minutes=10) + DEFAULT_POLL_OVERDUE_AFTER
    assert (await served.get("/healthz"))[0] == 200
    served.clock.now += timedelta(seconds=1)
    assert (await served.get("/healthz"))[0] == 503


async def test_grace_period_until_the_first_poll(served: Served) -> None:
    """Before the first poll attempt since start-up an old or missing success is not judged."""
    served.source.last_success = START - timedelta(days=9)  # the bot was off for a week
    status, body, _ = await served.get("/healthz")
    assert status == 200
    assert body["poll"] == "waiting for the first poll"
    served.source.last_attempt = START - timedelta(days=9)  # an attempt from before start-up
    assert (await served.get("/healthz"))[0] == 200
    served.source.last_attempt = START + timedelta(minutes=1)
    served.clock.now = START + timedelta(minutes=1)
    assert (await served.get("/healthz"))[0] == 503
    served.source.last_success = START + timedelta(minutes=1)
    assert (await served.get("/healthz"))[0] == 200


async def test_grace_period_ends_without_any_poll(served: Served) -> None:
    """A scheduler that never polls is reported once the limit has passed since start-up."""
    served.clock.now = START + DEFAULT_POLL_OVERDUE_AFTER
    assert (await served.get("/healthz"))[0] == 200
    served.clock.now += timedelta(seconds=1)
    status, body, _ = await served.get("/healthz")
    assert status == 503
    assert body["reason"] == (
        "no successful poll since start-up at 2024-11-25T12:00:00+00:00 (limit 84 h)"
    )


async def test_limit_is_a_parameter() -> None:
    """poll_overdue_after changes where the verdict flips."""
    clock = Clock(START)
    source = ScriptedSource(last_success=START - timedelta(hours=27), last_attempt=START)
    server = HealthServer(source, Metrics(), clock=clock, poll_overdue_after=timedelta(hours=26))
    assert not (await server.check()).healthy
    server.poll_overdue_after = timedelta(hours=28)
    assert (await server.check()).healthy


async def test_failing_check_is_503_without_details(served: Served) -> None:
    """An error reading the store is a plain 503; its message stays in the log."""
    served.source.error = RuntimeError("database /srv/secret.db is locked")
    status, body, _ = await served.get("/healthz")
    assert status == 503
    assert body == {"status": "unhealthy", "reason": "health check failed"}


async def test_hung_check_times_out_as_503(served: Served) -> None:
    """A store read that never returns still gives the probe a 503 within the timeout."""
    served.source.release = asyncio.Event()
    try:
        status, body, _ = await served.get("/healthz")
    finally:
        served.source.release.set()
    assert status == 503
    assert body["reason"] == "health check failed"


# ---- /metrics ------------------------------------------------------------------------------


async def test_metrics_endpoint_serves_the_registry(served: Served) -> None:
    """/metrics is text format 0.0.4 with paperbell's metrics and the values observed."""
    metrics = served.metrics
    calls: list[int] = []

    async def pending() -> int:
        calls.append(1)
        return 40 + len(calls)

    metrics.track_backlog(pending)
    report = PollReport(
        (
            FeedPoll(
                "https://rss.arxiv.org/rss/cs.AI+cs.LG",
                PollOutcome.NEW_LISTING,
                items=2,
                seconds=2.0,
            ),
        ),
        ("cs.AI", "cs.LG"),
    )
    metrics.observe_poll(report, 2.0)
    metrics.observe_delivery(DeliveryReport(sent=5, messages=2, retried=1))
    metrics.discord_error(503)
    metrics.arxiv_request(False)

    status, text, headers = await served.get("/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    feed = ("feed", "cs.AI+cs.LG")
    assert values[("paperbell_polls_total", (feed, ("result", "new_listing")))] == 1
    assert values[("paperbell_poll_duration_seconds_sum", (feed,))] == 2.0
    assert values[("paperbell_alerts_sent_total", ())] == 5
    assert values[("paperbell_alerts_retried_total", ())] == 1
    assert values[("paperbell_discord_api_errors_total", (("status", "503"),))] == 1
    assert values[("paperbell_arxiv_errors_total", ())] == 1
    assert values[("paperbell_outbox_backlog", ())] == 41  # refreshed for this scrape
    for name in (
        "paperbell_papers_ingested_total",
        "paperbell_alerts_queued_total",
        "paperbell_alerts_failed_total",
        "paperbell_arxiv_requests_total",
        "paperbell_gateway_latency_seconds",
        "paperbell_destinations_paused_total",
    ):
        assert (name, ()) in values, name
    await served.get("/metrics")
    assert len(calls) == 2


# ---- starting and stopping ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_off_unless_a_port_is_configured() -> None:
    """Without PAPERBELL_HEALTH_PORT nothing listens; with it the server binds 127.0.0.1."""
    source, metrics = ScriptedSource(), Metrics()
    assert Settings().health_port is None
    assert await start_health_server(Settings(), source, metrics) is None
    port = free_port()
    server = await start_health_server(Settings(health_port=port), source, metrics)
    assert server is not None
    try:
        assert server.port == port
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as resp,
        ):
            assert resp.status == 200
    finally:
        await server.stop()


async def test_port_in_use_fails_start_and_leaves_nothing_running(served: Served) -> None:
    """A taken port raises OSError from start(); the server can start elsewhere afterwards."""
    taken = served.server.port
    other = HealthServer(ScriptedSource(), Metrics())
    with pytest.raises(OSError):
        await other.start("127.0.0.1", taken)
    with pytest.raises(RuntimeError):
        _ = other.port
    await other.start("127.0.0.1", 0)
    try:
        assert other.port != taken
    finally:
        await other.stop()


async def test_stop_closes_the_port(served: Served) -> None:
    """After stop() the port no longer accepts connections, and start() works again."""
    port = served.server.port
    await served.server.stop()
    with pytest.raises(aiohttp.ClientConnectorError):
        await served.session.get(f"http://127.0.0.1:{port}/healthz")
    await served.server.start("127.0.0.1", 0)
    assert (await served.get("/healthz"))[0] == 200


# ---- the bot's source, end to end ----------------------------------------------------------


async def test_bot_source_against_discord_and_arxiv(
    emulated_discord: DiscordEmulator, tmp_path: Path
) -> None:
    """The real bot: healthy once connected and polled, 503 when its gateway is gone."""
    emu = emulated_discord
    guild = await emu.create_guild("Readers")
    channel = await emu.create_text_channel(guild.id, "papers")
    db = await open_sqlite(tmp_path / "paperbell.db")
    subs = SubscriptionRepository(db)
    destination = await subs.ensure_destination(DestinationKind.CHANNEL, channel.id, guild.id)
    await subs.add(
        destination,
        SubscriptionKind.CATEGORY,
        "cs.LG",
        "cs.LG",
        "",
        include_cross=True,
        include_replacements=False,
        created_by=5,
        now=START,
    )
    metrics = Metrics()
    try:
        async with ArxivServer() as arxiv, aiohttp.ClientSession() as session:
            arxiv.set_rss(LISTING.read_bytes())
            settings = Settings(
                database=str(tmp_path / "paperbell.db"),
                arxiv_rss_url=arxiv.rss_url,
                arxiv_api_url=arxiv.api_url,
                arxiv_delay=0.0,
                delivery_interval_seconds=3600.0,
            )
            bot = build_bot(settings, db, session, user_agent="paperbell-tests")
            bot._connection.guild_ready_timeout = 0.1
            source = BotHealthSource(bot, bot.poll_scheduler, bot.papers.feeds)
            server = HealthServer(source, metrics)
            await server.start()
            url = f"http://127.0.0.1:{server.port}/healthz"
            try:
                async with running_client(bot, emu):
                    async with session.get(url) as resp:
                        waiting = await resp.json()
                        assert resp.status == 200
                    assert waiting["poll"] == "waiting for the first poll"
                    assert waiting["gateway"] == "connected"

                    await bot.poll_now()
                    (feed,) = await bot.papers.feeds.all()
                    assert feed.last_success is not None
                    async with session.get(url) as resp:
                        polled = await resp.json()
                        assert resp.status == 200
                    assert polled["poll"] == "ok"
                    assert polled["last_successful_poll"] == feed.last_success.isoformat()

                    await bot.close()
                    async with session.get(url) as resp:
                        closed = await resp.json()
                        assert resp.status == 503
                    assert closed["reason"] == "gateway disconnected"
                    async with session.get(f"http://127.0.0.1:{server.port}/metrics") as resp:
                        exposition = await resp.text()
            finally:
                await server.stop()
    finally:
        await db.close()
    for body in (str(waiting), str(polled), str(closed), exposition):
        assert emu.token not in body and "Emu1at" not in body


async def test_bot_source_counts_an_empty_poll_as_success(
    emulated_discord: DiscordEmulator, tmp_path: Path
) -> None:
    """With nothing subscribed the poll asks no feed, and the bot is still healthy."""
    db = await open_sqlite(tmp_path / "paperbell.db")
    try:
        async with aiohttp.ClientSession() as session:
            settings = Settings(database=str(tmp_path / "paperbell.db"), arxiv_delay=0.0)
            bot = build_bot(settings, db, session, user_agent="paperbell-tests")
            bot._connection.guild_ready_timeout = 0.1
            source = BotHealthSource(bot, bot.poll_scheduler, bot.papers.feeds)
            server = HealthServer(source, Metrics())
            async with running_client(bot, emulated_discord):
                assert source.gateway_connected()
                assert await source.last_successful_poll() is None
                report = await bot.poll_now()
                assert report.feeds == ()
                assert await source.last_successful_poll() == bot.poll_scheduler.last_poll
                assert (await server.check()).healthy
    finally:
        await db.close()


# ---- feed outages --------------------------------------------------------------------------

URL = "https://rss.arxiv.org/rss/cs.LG"


def failing(
    last_success: datetime | None, failures: int, last_attempt: datetime, url: str = URL
) -> FeedState:
    return FeedState(
        url=url,
        last_success=last_success,
        last_attempt=last_attempt,
        last_error="GET https://rss.arxiv.org/rss/cs.LG -> HTTP 503",
        last_error_at=last_attempt,
        consecutive_failures=failures,
    )


def test_recent_failures_are_not_an_outage() -> None:
    """Failing for less than a day is not reported."""
    now = MON + timedelta(hours=23)
    feed = failing(MON + timedelta(hours=5), 18, now)
    assert FeedAlerts().check([feed], now) == []


def test_outage_is_reported_once_then_again_after_recovery() -> None:
    """One report per outage: not repeated while it lasts, repeated for the next one."""
    alerts = FeedAlerts()
    since = MON + timedelta(hours=5)
    now = since + timedelta(hours=25)
    (outage,) = alerts.check([failing(since, 25, now)], now)
    assert outage.url == URL and outage.since == since
    for later in (now + timedelta(hours=1), now + timedelta(hours=15)):
        assert alerts.check([failing(since, 40, later)], later) == []

    recovered_at = now + timedelta(hours=16)
    healthy = replace(failing(recovered_at, 0, recovered_at), last_error=None)
    assert alerts.check([healthy], recovered_at) == []
    later = recovered_at + timedelta(hours=25)
    (again,) = alerts.check([failing(recovered_at, 25, later)], later)
    assert again.since == recovered_at


def test_recovery_between_checks_is_a_new_outage() -> None:
    """A feed that recovered and broke again unseen is a new outage (its last success moved)."""
    alerts = FeedAlerts()
    first = MON + timedelta(hours=5)
    seen = first + timedelta(hours=25)
    assert len(alerts.check([failing(first, 25, seen)], seen)) == 1
    second = first + timedelta(days=2)
    now = second + timedelta(hours=25)
    (outage,) = alerts.check([failing(second, 25, now)], now)
    assert outage.since == second


def test_weekend_outage_waits_for_the_monday_listing() -> None:
    """Broken from Friday morning: nothing was missed before Monday's rebuild, so no report."""
    since = FRI + timedelta(hours=5, minutes=10)
    alerts = FeedAlerts()
    for now in (FRI + timedelta(days=2, hours=23), MON + timedelta(hours=4, minutes=59)):
        assert alerts.check([failing(since, 60, now)], now) == [], now
    now = MON + timedelta(hours=5, minutes=1)
    assert [o.since for o in alerts.check([failing(since, 61, now)], now)] == [since]


def test_quiet_weekend_is_not_an_outage() -> None:
    """No failures, only an old last success (stale weekend listings, 304s): nothing to report."""
    now = MON + timedelta(hours=12)
    quiet = FeedState(URL, last_success=FRI + timedelta(hours=5), last_attempt=now)
    assert FeedAlerts().check([quiet], now) == []


def test_few_failures_after_downtime_are_not_an_outage() -> None:
    """A bot back from days off finds an old success; it needs a few failures before a report."""
    now = MON + timedelta(hours=12)
    old = FRI + timedelta(hours=5)
    assert long_outages([failing(old, 2, now)], now) == []
    assert len(long_outages([failing(old, 3, now)], now)) == 1


def test_feed_no_longer_polled_is_not_reported() -> None:
    """A feed not attempted for over a day (unsubscribed) is not reported."""
    now = MON + timedelta(days=3)
    stale = failing(MON - timedelta(days=3), 30, now - timedelta(hours=25))
    assert long_outages([stale], now) == []


def test_never_succeeded_feed_counts_from_first_seen_failing() -> None:
    """Without a last success, the outage starts when the watcher first saw the feed failing."""
    alerts = FeedAlerts()
    seen = MON + timedelta(hours=6)
    assert alerts.check([failing(None, 3, seen)], seen) == []
    now = seen + timedelta(hours=24, minutes=30)
    (outage,) = alerts.check([failing(None, 27, now)], now)
    assert outage.since == seen
    assert long_outages([failing(None, 27, now)], now) == []  # no memory, no start


def test_feeds_are_judged_separately() -> None:
    """Only the failing feed of several is reported."""
    now = MON + timedelta(days=1, hours=6)
    good = FeedState("https://rss.arxiv.org/rss/math.CO", last_success=now, last_attempt=now)
    bad = failing(MON + timedelta(hours=5), 25, now)
    assert [o.url for o in FeedAlerts().check([good, bad], now)] == [URL]


@pytest.mark.parametrize(
    ("since", "now", "missed"),
    [
        (FRI + timedelta(hours=6), MON + timedelta(hours=4, minutes=59), False),
        (FRI + timedelta(hours=6), MON + timedelta(hours=5), True),
        (FRI + timedelta(hours=4), FRI + timedelta(hours=5), True),
        (MON + timedelta(hours=6), MON + timedelta(days=1, hours=5), True),
        (FRI - timedelta(days=8), FRI - timedelta(days=1), True),
    ],
)
def test_missed_listing(since: datetime, now: datetime, missed: bool) -> None:
    """A listing is missed when a weekday 05:00 UTC rebuild falls in (since, now]."""
    assert missed_listing(since, now) is missed
