"""Tests for bot.metrics: counters from real polls and deliveries, traces, scrape-time gauges."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import discord
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.arxiv.client import ArxivClient, ArxivHTTPError
from bot.arxiv.limiter import RequestLimiter
from bot.delivery import DeliveryReport
from bot.domain.models import DestinationKind, SubscriptionKind
from bot.metrics import MAX_FEED_LABEL, Metrics, feed_label
from bot.poll_report import FeedPoll, PollOutcome, PollReport
from bot.services import PaperService
from storage.db import Database
from storage.subscriptions import SubscriptionRepository
from tests.arxiv_server import ArxivServer, Scripted
from tests.discord_emulator import DiscordEmulator
from tests.discord_fixtures import discord_emulator, emulated_discord, running_client

__all__ = ["discord_emulator", "emulated_discord"]  # fixtures used by name below

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LISTING = FIXTURES / "rss2024_new_all-archives_2024-11-28.xml"
NOW = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(metrics: Metrics) -> Samples:
    """Every sample of the rendered exposition, keyed by (sample name, labels)."""
    text = metrics.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


async def no_sleep(_seconds: float) -> None:
    """Retries in these tests need no real back-off."""


@dataclass
class PollEnv:
    db: Database
    service: PaperService
    arxiv: ArxivServer
    metrics: Metrics


@pytest.fixture
async def poll_env(tmp_path: Path) -> AsyncIterator[PollEnv]:
    """A real store subscribed to cs.LG, polling the local arXiv through a traced session."""
    metrics = Metrics()
    db = await Database.open(tmp_path / "paperbell.db")
    subs = SubscriptionRepository(db)
    destination = await subs.ensure_destination(DestinationKind.CHANNEL, 1001, 77)
    await subs.add(
        destination,
        SubscriptionKind.CATEGORY,
        "cs.LG",
        "cs.LG",
        "",
        include_cross=True,
        include_replacements=False,
        created_by=5,
        now=NOW,
    )
    try:
        async with (
            ArxivServer() as arxiv,
            aiohttp.ClientSession(trace_configs=[metrics.arxiv_trace()]) as session,
        ):
            arxiv.set_rss(LISTING.read_bytes())
            client = ArxivClient(
                session,
                rss_url=arxiv.rss_url,
                api_url=arxiv.api_url,
                limiter=RequestLimiter(0),
                user_agent="paperbell-tests",
                max_retries=2,
                sleep=no_sleep,
            )
            yield PollEnv(db, PaperService(db, client), arxiv, metrics)
    finally:
        await db.close()


async def test_poll_counts_results_papers_and_alerts(poll_env: PollEnv) -> None:
    """A real poll pass is counted per feed and result, with its new papers and queued alerts."""
    metrics = poll_env.metrics
    first = await poll_env.service.poll()
    metrics.observe_poll(first, 1.5)
    second = await poll_env.service.poll()  # the local arXiv answers 304 to the same validators
    metrics.observe_poll(second, 0.25)

    assert [f.outcome for f in first.feeds] == [PollOutcome.NEW_LISTING]
    assert [f.outcome for f in second.feeds] == [PollOutcome.NOT_MODIFIED]
    assert value(metrics, "paperbell_polls_total", feed="cs.LG", result="new_listing") == 1
    assert value(metrics, "paperbell_polls_total", feed="cs.LG", result="not_modified") == 1
    assert value(metrics, "paperbell_polls_total", feed="cs.LG", result="error") is None
    ingested = value(metrics, "paperbell_papers_ingested_total")
    assert ingested == len(first.new) and ingested > 1000
    queued = value(metrics, "paperbell_alerts_queued_total")
    assert queued == first.deliveries and 0 < queued < ingested
    # Each URL's own measured time lands in the per-feed histogram.
    assert value(metrics, "paperbell_poll_duration_seconds_count", feed="cs.LG") == 2
    measured = first.feeds[0].seconds + second.feeds[0].seconds
    assert measured > 0
    assert value(metrics, "paperbell_poll_duration_seconds_sum", feed="cs.LG") == measured
    assert value(metrics, "paperbell_poll_pass_duration_seconds_count") == 2
    last = value(metrics, "paperbell_last_successful_poll_timestamp_seconds")
    assert last is not None and last > NOW.timestamp()
    assert value(metrics, "paperbell_arxiv_requests_total") == 2
    assert value(metrics, "paperbell_arxiv_errors_total") == 0


async def test_failed_poll_counts_errors_and_keeps_last_success(poll_env: PollEnv) -> None:
    """A poll whose feed failed counts result=error and arXiv errors, not a successful poll."""
    poll_env.arxiv.enqueue(*[Scripted(status=503, path="/rss") for _ in range(3)])
    report = await poll_env.service.poll()
    poll_env.metrics.observe_poll(report, 3.0)

    metrics = poll_env.metrics
    assert value(metrics, "paperbell_polls_total", feed="cs.LG", result="error") == 1
    assert value(metrics, "paperbell_arxiv_requests_total") == 3  # the first try and 2 retries
    assert value(metrics, "paperbell_arxiv_errors_total") == 3
    assert value(metrics, "paperbell_papers_ingested_total") == 0
    assert value(metrics, "paperbell_last_successful_poll_timestamp_seconds") == 0


async def test_backlog_is_read_from_the_outbox_at_scrape(poll_env: PollEnv) -> None:
    """paperbell_outbox_backlog follows the real outbox each time `refresh()` runs."""
    metrics = poll_env.metrics
    outbox = poll_env.service.outbox
    metrics.track_backlog(outbox.pending_count)
    report = await poll_env.service.poll()
    await metrics.refresh()
    assert value(metrics, "paperbell_outbox_backlog") == report.deliveries > 0

    due = await outbox.claim_due(now=datetime.now(UTC), limit=10)
    await outbox.mark_sent([d.id for d in due], message_id=1, at=datetime.now(UTC))
    await metrics.refresh()
    assert value(metrics, "paperbell_outbox_backlog") == report.deliveries - len(due)


async def test_arxiv_trace_counts_unanswered_requests(poll_env: PollEnv) -> None:
    """A request that got no answer and a 404 both count as arXiv errors."""
    client = poll_env.service.client
    assert client is not None
    poll_env.arxiv.enqueue(
        Scripted(disconnect=True, path="/rss"),
        Scripted(disconnect=True, path="/rss"),
        Scripted(status=404, path="/rss"),
    )
    with pytest.raises(ArxivHTTPError):
        await client.fetch_rss(client.rss_urls(["cs.LG"])[0])
    metrics = poll_env.metrics
    # aiohttp silently resends a GET once when the server hangs up: the first two
    # arrivals are one request to us (it failed), the 404 is our retry.
    assert len(poll_env.arxiv.requests) == 3
    assert value(metrics, "paperbell_arxiv_requests_total") == 2
    assert value(metrics, "paperbell_arxiv_errors_total") == 2


def test_observe_delivery_adds_up_passes() -> None:
    """Delivery counters add every pass's numbers."""
    metrics = Metrics()
    metrics.observe_delivery(DeliveryReport(sent=3, messages=1, retried=2, failed=1))
    metrics.observe_delivery(DeliveryReport(sent=4, messages=2, paused_destinations=1))
    assert value(metrics, "paperbell_alerts_sent_total") == 7
    assert value(metrics, "paperbell_discord_messages_sent_total") == 3
    assert value(metrics, "paperbell_alerts_retried_total") == 2
    assert value(metrics, "paperbell_alerts_failed_total") == 1
    assert value(metrics, "paperbell_destinations_paused_total") == 1


def test_multi_url_pass_times_each_url_and_the_pass() -> None:
    """A pass over several URLs records each URL's own time and the whole pass's."""
    metrics = Metrics()
    report = PollReport(
        (
            FeedPoll("https://rss.arxiv.org/rss/cs.AI", PollOutcome.STALE, items=5, seconds=4.0),
            FeedPoll(
                "https://rss.arxiv.org/rss/math.CO",
                PollOutcome.ERROR,
                error="HTTP 503",
                seconds=5.0,
            ),
        ),
        ("cs.AI", "math.CO"),
    )
    metrics.observe_poll(report, 9.0)
    assert value(metrics, "paperbell_polls_total", feed="cs.AI", result="stale") == 1
    assert value(metrics, "paperbell_polls_total", feed="math.CO", result="error") == 1
    assert value(metrics, "paperbell_poll_duration_seconds_sum", feed="cs.AI") == 4.0
    assert value(metrics, "paperbell_poll_duration_seconds_sum", feed="math.CO") == 5.0
    assert value(metrics, "paperbell_poll_pass_duration_seconds_sum") == 9.0
    last = value(metrics, "paperbell_last_successful_poll_timestamp_seconds")
    assert last is not None and last > NOW.timestamp()  # one of the two feeds answered


def test_two_instances_do_not_clash() -> None:
    """Each Metrics has its own registry: creating several is fine and counts stay apart."""
    first, second = Metrics(), Metrics()
    first.discord_error(429)
    first.arxiv_request(True)
    assert value(first, "paperbell_discord_api_errors_total", status="429") == 1
    assert value(second, "paperbell_discord_api_errors_total", status="429") is None
    assert value(second, "paperbell_arxiv_requests_total") == 0
    assert b"paperbell_" not in generate_latest()  # the global registry stays untouched


def test_discord_errors_are_labelled_by_status() -> None:
    """Each status gets its own series; a request without an answer is `network`."""
    metrics = Metrics()
    metrics.discord_error(403)
    metrics.discord_error(403)
    metrics.discord_error(None)
    assert value(metrics, "paperbell_discord_api_errors_total", status="403") == 2
    assert value(metrics, "paperbell_discord_api_errors_total", status="network") == 1


def test_feed_label_is_the_category_part_and_bounded() -> None:
    """The feed label is the URL's category set; long sets are cut but stay distinct."""
    assert feed_label("https://rss.arxiv.org/rss/cs.AI+cs.LG") == "cs.AI+cs.LG"
    assert feed_label("http://127.0.0.1:8080/rss/math.CO/") == "math.CO"
    assert feed_label("https://rss.arxiv.org/") == "unknown"
    long_a = "https://rss.arxiv.org/rss/" + "+".join(f"cs.X{i}" for i in range(40))
    long_b = long_a + "+stat.ML"
    a, b = feed_label(long_a), feed_label(long_b)
    assert len(a) == len(b) == MAX_FEED_LABEL
    assert a != b and a.startswith("cs.X0+cs.X1+")


async def test_refresh_survives_a_failing_refresher() -> None:
    """One broken refresher is logged; the others still run and the scrape still renders."""
    metrics = Metrics()

    async def broken() -> None:
        raise RuntimeError("store closed")

    async def pending() -> int:
        return 12

    metrics.add_refresher(broken)
    metrics.track_backlog(pending)
    await metrics.refresh()
    assert value(metrics, "paperbell_outbox_backlog") == 12


def test_gateway_latency_is_read_at_scrape() -> None:
    """The latency gauge is NaN until tracked, then reads the callable on every render."""
    metrics = Metrics()
    before = value(metrics, "paperbell_gateway_latency_seconds")
    assert before is not None and math.isnan(before)
    latencies = iter([0.042, 0.5])
    metrics.track_gateway_latency(lambda: next(latencies))
    assert value(metrics, "paperbell_gateway_latency_seconds") == 0.042
    assert value(metrics, "paperbell_gateway_latency_seconds") == 0.5


async def test_discord_trace_counts_rest_errors(emulated_discord: DiscordEmulator) -> None:
    """discord.py's `http_trace` hook counts Discord's error answers by status."""
    emu = emulated_discord
    guild = await emu.create_guild("Readers")
    channel = await emu.create_text_channel(guild.id, "papers")
    metrics = Metrics()
    trace = aiohttp.TraceConfig()  # the bot's single http_trace, shared with its SendGate
    metrics.attach_discord(trace)
    client = discord.Client(
        intents=discord.Intents.none(), http_trace=trace, guild_ready_timeout=0.1
    )
    async with running_client(client, emu):
        emu.fail_next_posts(channel.id, status=403)
        emu.fail_next_posts(channel.id, status=404)
        target = client.get_partial_messageable(channel.id, guild_id=guild.id)
        with pytest.raises(discord.Forbidden):
            await target.send("one")
        with pytest.raises(discord.NotFound):
            await target.send("two")
        await target.send("three")
    assert value(metrics, "paperbell_discord_api_errors_total", status="403") == 1
    assert value(metrics, "paperbell_discord_api_errors_total", status="404") == 1
    assert value(metrics, "paperbell_discord_api_errors_total", status="200") is None
