"""Prometheus metrics for paperbell, on a registry of its own.

`Metrics` never touches prometheus_client's global registry: every bot (and
every test) builds its own instance, so two bots in one process do not clash.
Counters are fed by the `observe_*` methods after a poll or a delivery pass and
by aiohttp traces (`arxiv_trace()` for the arXiv session, `attach_discord` on
the trace given to discord.py as `http_trace`); gauges that mirror the store (the outbox backlog)
are refreshed by `refresh()` right before each scrape.

No label ever holds user content: the only free-form label is the feed, and it
is the category part of the RSS URL, bounded in length.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from bot.delivery import DeliveryReport
    from bot.poll_report import PollReport

log = logging.getLogger(__name__)

# Prometheus text exposition format 0.0.4, what every scraper understands.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_FEED_LABEL = 100
# A poll is a few seconds per URL, but arXiv's Retry-After backoff can stretch it to minutes.
POLL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

Refresher = Callable[[], Awaitable[None]]


def feed_label(url: str) -> str:
    """The `feed` label of an RSS URL: its category part (`cs.AI+cs.LG`), at most 100 chars.

    A longer category set keeps its start and ends with a short digest of the
    whole, so two long URLs never share a label and the label set stays bounded.
    """
    path = urlparse(url).path.rstrip("/")
    label = path.rsplit("/", 1)[-1] or "unknown"
    if len(label) <= MAX_FEED_LABEL:
        return label
    digest = hashlib.sha256(label.encode()).hexdigest()[:8]
    return f"{label[: MAX_FEED_LABEL - 9]}~{digest}"


class Metrics:
    """paperbell's counters, gauges and histograms, and their text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.papers_ingested = Counter(
            "paperbell_papers_ingested", "New papers stored by polls.", registry=r
        )
        self.alerts_queued = Counter(
            "paperbell_alerts_queued", "Alerts queued in the outbox by polls.", registry=r
        )
        self.alerts_sent = Counter("paperbell_alerts_sent", "Alerts Discord confirmed.", registry=r)
        self.alerts_failed = Counter(
            "paperbell_alerts_failed", "Alerts given up for good.", registry=r
        )
        self.alerts_retried = Counter(
            "paperbell_alerts_retried", "Alert attempts postponed for a retry.", registry=r
        )
        self.messages_sent = Counter(
            "paperbell_discord_messages_sent", "Alert messages posted to Discord.", registry=r
        )
        self.destinations_paused = Counter(
            "paperbell_destinations_paused",
            "Destinations paused because the bot may not post there.",
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "paperbell_outbox_backlog", "Pending deliveries in the outbox.", registry=r
        )
        self.poll_duration = Histogram(
            "paperbell_poll_duration_seconds",
            "Time to poll one RSS URL (fetch, parse, store).",
            ["feed"],
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.poll_pass_duration = Histogram(
            "paperbell_poll_pass_duration_seconds",
            "Time of one whole poll pass over every URL.",
            buckets=POLL_BUCKETS,
            registry=r,
        )
        self.polls = Counter(
            "paperbell_polls",
            "Polls of one RSS URL by result (new_listing, stale, not_modified, error).",
            ["feed", "result"],
            registry=r,
        )
        self.last_successful_poll = Gauge(
            "paperbell_last_successful_poll_timestamp_seconds",
            "Unix time of the last poll pass in which some feed answered (or none was needed).",
            registry=r,
        )
        self.arxiv_requests = Counter(
            "paperbell_arxiv_requests",
            "HTTP requests sent to arXiv (retries included).",
            registry=r,
        )
        self.arxiv_errors = Counter(
            "paperbell_arxiv_errors",
            "arXiv requests answered with HTTP >= 400 or without an answer.",
            registry=r,
        )
        self.discord_api_errors = Counter(
            "paperbell_discord_api_errors",
            "Discord REST answers with HTTP >= 400, by status (`network`: no answer).",
            ["status"],
            registry=r,
        )
        self.gateway_latency = Gauge(
            "paperbell_gateway_latency_seconds",
            "Discord gateway heartbeat latency (NaN before the first heartbeat).",
            registry=r,
        )
        self.gateway_latency.set(float("nan"))
        self._refreshers: list[Refresher] = []

    # ---- events ----------------------------------------------------------------------

    def observe_poll(self, report: PollReport, seconds: float) -> None:
        """Count one poll pass (`PaperService.poll`) that took `seconds` in all."""
        self.poll_pass_duration.observe(seconds)
        for feed in report.feeds:
            label = feed_label(feed.url)
            self.polls.labels(feed=label, result=feed.outcome.value).inc()
            self.poll_duration.labels(feed=label).observe(feed.seconds)
        self.papers_ingested.inc(len(report.new))
        self.alerts_queued.inc(report.deliveries)
        if not report.feeds or len(report.errors) < len(report.feeds):
            self.last_successful_poll.set_to_current_time()

    def observe_delivery(self, report: DeliveryReport) -> None:
        """Count one delivery pass (`Deliverer.run_once`)."""
        self.alerts_sent.inc(report.sent)
        self.alerts_failed.inc(report.failed)
        self.alerts_retried.inc(report.retried)
        self.messages_sent.inc(report.messages)
        self.destinations_paused.inc(report.paused_destinations)

    def discord_error(self, status: int | None) -> None:
        """A Discord REST call answered `status` >= 400 (None: the request got no answer)."""
        self.discord_api_errors.labels(status="network" if status is None else str(status)).inc()

    def arxiv_request(self, ok: bool) -> None:
        """One HTTP request to arXiv; `ok` False for HTTP >= 400 or no answer at all."""
        self.arxiv_requests.inc()
        if not ok:
            self.arxiv_errors.inc()

    def set_backlog(self, pending: int) -> None:
        self.outbox_backlog.set(pending)

    # ---- values read at scrape time --------------------------------------------------

    def track_backlog(self, pending_count: Callable[[], Awaitable[int]]) -> None:
        """Refresh `paperbell_outbox_backlog` from `pending_count()` before every scrape."""

        async def refresh_backlog() -> None:
            self.set_backlog(await pending_count())

        self.add_refresher(refresh_backlog)

    def track_gateway_latency(self, latency: Callable[[], float]) -> None:
        """Read `paperbell_gateway_latency_seconds` from `latency()` (e.g. `bot.latency`)."""
        self.gateway_latency.set_function(latency)

    def add_refresher(self, refresher: Refresher) -> None:
        self._refreshers.append(refresher)

    async def refresh(self) -> None:
        """Run every refresher; a failing one is logged and leaves its gauge as it was."""
        for refresher in self._refreshers:
            try:
                await refresher()
            except Exception:
                log.warning("metrics refresher failed refresher=%s", refresher, exc_info=True)

    def render(self) -> bytes:
        """The registry in Prometheus text format 0.0.4 (see CONTENT_TYPE)."""
        return generate_latest(self.registry)

    # ---- aiohttp traces --------------------------------------------------------------

    def arxiv_trace(self) -> aiohttp.TraceConfig:
        """A trace for the arXiv client's session: `ClientSession(trace_configs=[...])`."""
        trace = aiohttp.TraceConfig()
        self.attach_arxiv(trace)
        return trace

    def attach_arxiv(self, trace: aiohttp.TraceConfig) -> None:
        """Count every request of the session `trace` is given to as an arXiv request.

        aiohttp's own silent resend after a server hang-up is part of one request.
        A 200 "Rate exceeded." body counts as answered: the client retries it.
        """

        async def on_end(
            _session: aiohttp.ClientSession,
            _ctx: SimpleNamespace,
            params: aiohttp.TraceRequestEndParams,
        ) -> None:
            self.arxiv_request(params.response.status < 400)

        async def on_exception(
            _session: aiohttp.ClientSession,
            _ctx: SimpleNamespace,
            _params: aiohttp.TraceRequestExceptionParams,
        ) -> None:
            self.arxiv_request(False)

        trace.on_request_end.append(on_end)
        trace.on_request_exception.append(on_exception)

    def attach_discord(self, trace: aiohttp.TraceConfig) -> None:
        """Count Discord's answers >= 400 by status, on the trace given to discord.py.

        discord.py takes a single `http_trace`, so this adds to the bot's one.
        It retries 429 and 5xx itself; each attempt's answer is counted.
        """

        async def on_end(
            _session: aiohttp.ClientSession,
            _ctx: SimpleNamespace,
            params: aiohttp.TraceRequestEndParams,
        ) -> None:
            if params.response.status >= 400:
                self.discord_error(params.response.status)

        async def on_exception(
            _session: aiohttp.ClientSession,
            _ctx: SimpleNamespace,
            _params: aiohttp.TraceRequestExceptionParams,
        ) -> None:
            self.discord_error(None)

        trace.on_request_end.append(on_end)
        trace.on_request_exception.append(on_exception)
