"""`paperbell run`: open the resources, start the bot, stop cleanly on SIGINT/SIGTERM.

Exit codes: 0 after a clean shutdown, 2 for anything the operator must fix
(missing or rejected token, unusable database, bad shard arguments or
endpoints), 1 when Discord fails during login; always as one line on stderr
without a traceback. Until Discord can be reached at all (network not up yet,
an outage) the runner waits and retries instead of exiting (`bot.startup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

import aiohttp
import discord

from bot.arxiv.client import ArxivClient
from bot.arxiv.limiter import RequestLimiter
from bot.backup import database_lock
from bot.config import ConfigError, Settings
from bot.discord_bot import PaperbellBot
from bot.discord_endpoints import configure_endpoints
from bot.health import BotHealthSource, FeedAlerts, HealthServer, start_health_server
from bot.logs import register_secret
from bot.metrics import Metrics
from bot.ranker import Ranker
from bot.services import PaperService, utcnow
from bot.startup import describe_failure, display_host, wait_for_discord
from bot.subscribing import SubscriptionService
from bot.useragent import user_agent
from storage.backend import Store, open_database
from storage.locks import Leadership
from storage.ratings import RatingRepository

log = logging.getLogger(__name__)


def parse_shards(
    shard_count: int | None, shard_ids: str | None
) -> tuple[int | None, list[int] | None]:
    if shard_ids is not None and shard_count is None:
        raise ConfigError("--shard-ids needs --shard-count")
    if shard_count is None:
        return None, None
    if shard_count < 1:
        raise ConfigError("--shard-count must be at least 1")
    if shard_ids is None:
        return shard_count, list(range(shard_count))
    try:
        ids = sorted({int(part) for part in shard_ids.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(
            f"--shard-ids must be comma-separated numbers, got {shard_ids[:40]!r}"
        ) from None
    if not ids or any(not 0 <= i < shard_count for i in ids):
        raise ConfigError(f"--shard-ids must be between 0 and {shard_count - 1}")
    return shard_count, ids


def build_bot(
    settings: Settings,
    db: Store,
    session: aiohttp.ClientSession,
    *,
    user_agent: str,
    metrics: Metrics | None = None,
    shard_count: int | None = None,
    shard_ids: Sequence[int] | None = None,
    guild_ready_timeout: float = 2.0,
) -> PaperbellBot:
    """The composition root: build the services over `db` and `session`, then the bot."""
    metrics = metrics or Metrics()
    arxiv = ArxivClient(
        session,
        rss_url=settings.arxiv_rss_url,
        api_url=settings.arxiv_api_url,
        limiter=RequestLimiter(settings.arxiv_delay),
        user_agent=user_agent,
        timeout=settings.arxiv_timeout,
        max_retries=settings.arxiv_max_retries,
    )
    papers = PaperService(db, arxiv)
    metrics.track_backlog(papers.outbox.pending_count)
    return PaperbellBot(
        settings,
        papers,
        SubscriptionService(papers, settings),
        arxiv=arxiv,
        leadership=Leadership(db),
        metrics=metrics,
        feed_alerts=FeedAlerts(),
        ranker=Ranker(RatingRepository(db), papers.papers, clock=utcnow),
        shard_count=shard_count,
        shard_ids=shard_ids,
        guild_ready_timeout=guild_ready_timeout,
    )


async def run_bot(
    settings: Settings, *, shard_count: int | None = None, shard_ids: str | None = None
) -> int:
    token = settings.discord_token
    if not token:
        raise ConfigError(
            "DISCORD_TOKEN is not set; put the bot token in the environment or the env file"
        )
    register_secret(token)
    count, ids = parse_shards(shard_count, shard_ids)
    if count is not None and not settings.is_postgres:
        raise ConfigError(
            "--shard-count needs PostgreSQL (PAPERBELL_DATABASE=postgresql://...): only one "
            "process can use a SQLite file, and one process runs every shard without it"
        )
    try:
        configure_endpoints(settings.discord_api_url, settings.discord_gateway_url)
    except ValueError as exc:
        variable = "API" if str(exc).startswith("Discord API") else "GATEWAY"
        raise ConfigError(f"PAPERBELL_DISCORD_{variable}_URL: {exc}") from None

    with contextlib.ExitStack() as stack:
        if not settings.is_postgres:
            # One bot per SQLite file: a second one would post every alert twice.
            stack.enter_context(database_lock(settings.database, purpose="start a second bot"))
        return await _run(settings, token, count, ids)


async def _run(settings: Settings, token: str, count: int | None, ids: list[int] | None) -> int:
    metrics = Metrics()
    health: HealthServer | None = None

    db = await open_database(settings.database)
    try:
        async with aiohttp.ClientSession(trace_configs=[metrics.arxiv_trace()]) as session:
            bot = build_bot(
                settings,
                db,
                session,
                shard_count=count,
                shard_ids=ids,
                user_agent=user_agent(settings),
                metrics=metrics,
            )
            source = BotHealthSource(bot, bot.poll_scheduler, bot.papers.feeds)
            try:
                health = await start_health_server(settings, source, metrics)
            except OSError as exc:
                raise ConfigError(
                    f"PAPERBELL_HEALTH_PORT: cannot listen on {settings.health_host}:"
                    f"{settings.health_port}: {exc.strerror or exc}"
                ) from None
            loop = asyncio.get_running_loop()
            stopping = asyncio.Event()
            closing: list[asyncio.Task[None]] = []
            started = False

            def _stop(signame: str) -> None:
                if not stopping.is_set():
                    log.info("received %s, shutting down", signame)
                    stopping.set()
                    if started:  # a bot that never logged in has nothing to close
                        closing.append(loop.create_task(bot.close()))

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, _stop, sig.name)
            api_base = discord.http.Route.BASE
            host = display_host(api_base)
            try:
                # False: stopped by a signal while waiting, a clean exit like any other.
                if await wait_for_discord(api_base, stopping):
                    started = True
                    await bot.start(token)
            except discord.LoginFailure:
                sys.stderr.write(
                    "paperbell: Discord rejected DISCORD_TOKEN (401); check the token\n"
                )
                return 2
            except discord.PrivilegedIntentsRequired:
                sys.stderr.write("paperbell: Discord refused the requested gateway intents\n")
                return 2
            except discord.NotFound:
                sys.stderr.write(
                    f"paperbell: {api_base} answered 404 at login; "
                    "check PAPERBELL_DISCORD_API_URL (it must be Discord's REST base)\n"
                )
                return 2
            except discord.HTTPException as exc:
                sys.stderr.write(f"paperbell: {host} answered HTTP {exc.status} at login\n")
                return 1
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                # Not the operator's mistake as such (Discord may be down): exit 1 to be restarted.
                sys.stderr.write(f"paperbell: cannot reach {host} ({describe_failure(exc)})\n")
                return 1
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
                # bot.start() returns as soon as the gateway is closed; the signal's close()
                # may still be finishing (delivery drained, HTTP session closing).
                for task in closing:
                    await task
                if started and not bot.is_closed():
                    await bot.close()
                if health is not None:
                    await health.stop()
    finally:
        await db.close()
    log.info("stopped")
    return 0
