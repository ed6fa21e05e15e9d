"""Delivery benchmark: alerts from the outbox to Discord channels under Discord's rate limits.

The production `PaperbellBot` runs in this process against the local Discord
emulator, which enforces Discord's per-channel limit of 5 messages per 5 s
(with real rate-limit headers and 429 answers). Papers of the real 2024-11-28
listing are queued in the outbox (as a category subscription's backfill would
queue them), then one `Deliverer.run_once()` pass is timed until it returns.

The minimum the limits allow is computed from the messages the deliverer will
send: alerts are grouped like `Deliverer._batches` does (`group_embeds` over
`alert_embed`, at most 10 embeds and 6,000 characters a message), and a
channel with m messages needs ceil(m / 5) - 1 extra windows of 5 s. Channels
are independent, so the minimum is the largest channel's; a sender that serves
one channel at a time needs the sum. Scenarios:

- 500 alerts to 50 channels: 10 alerts, so 1 message per channel (minimum 0 s:
  this measures the throughput of the pass, not the limiter);
- 500 alerts to 5 channels: 100 alerts, 10 messages per channel (minimum 5 s).

Each scenario runs twice: with the per-channel limit alone, and with
Discord's global limit of 50 requests per second as well (which the emulator
enforces over all routes, 429 with `"global": true`); with it the minimum is
also at least ceil(messages / 50) - 1 seconds.

Targets: elapsed <= 1.2 x the minimum; 429 answers only at bucket discovery
(before the channel's first answer told discord.py its limits).

Backends: every scenario runs with the bot's database on SQLite and on
PostgreSQL (`--backends`, see `bench/_common.py`; both by default when a
PostgreSQL URL is set; each PostgreSQL run gets a fresh schema, dropped
afterwards), and a side-by-side table closes the output.

    PAPERBELL_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python -m bench.delivery [--rounds 1] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench._common import (
    LISTING,
    MESSAGE_ROUTE,
    LocalBot,
    add_backends_option,
    chosen_backends,
    local_bot,
)
from bot.arxiv.feeds import parse_rss
from bot.delivery import CLAIM_LIMIT
from bot.domain.models import Delivery, DestinationKind
from bot.embeds import alert_embed, group_embeds
from bot.services import PaperService
from storage.store import Store
from storage.subscriptions import SubscriptionRepository
from tests.arxiv_server import ArxivServer
from tests.discord_emulator import DiscordEmulator

ROOT = Path(__file__).resolve().parents[1]

WINDOW = 5.0  # seconds per bucket window
PER_WINDOW = 5  # messages per window per channel
GLOBAL_PER_SECOND = 50  # Discord's global limit for a bot
CHANNELS_PER_GUILD = 10
_CHANNEL_ID = re.compile(r"/channels/(\d+)/messages")


@dataclass
class Outcome:
    elapsed: float
    minimum: float
    sequential_minimum: float
    messages: int
    expected_messages: int
    per_channel: tuple[int, int]  # fewest and most messages a channel gets
    sent: int
    discovery_429: int
    late_429: int
    global_429: int


def minimum_seconds(
    messages_per_channel: list[int], global_limit: int | None
) -> tuple[float, float]:
    """(concurrent, one-channel-at-a-time) minimum that the limits allow."""
    windows = [max(0, math.ceil(m / PER_WINDOW) - 1) for m in messages_per_channel]
    floor = 0.0
    if global_limit is not None:
        floor = max(0, math.ceil(sum(messages_per_channel) / global_limit) - 1) * 1.0
    return max(max(windows, default=0) * WINDOW, floor), max(sum(windows) * WINDOW, floor)


def planned_messages(due: list[Delivery]) -> dict[int, int]:
    """Messages per destination, grouped exactly as the deliverer groups fresh alerts."""
    by_destination: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in due:
        by_destination[delivery.destination.id].append(delivery)
    return {
        destination: len(group_embeds([alert_embed(d.paper, d.matched) for d in items]))
        for destination, items in by_destination.items()
    }


def classify_429s(emu: DiscordEmulator) -> tuple[int, int, int]:
    """429s on message posts: (per-channel before the channel's first successful post,
    per-channel after it, global).

    A 429 for a channel that had fewer than 5 successful posts in the 5 s before
    cannot come from its own bucket, so it is the global limit's.
    """
    successes: dict[str, list[datetime]] = defaultdict(list)
    discovery = late = global_ = 0
    for record in emu.requests:
        if record.method != "POST" or record.route != MESSAGE_ROUTE:
            continue
        match = _CHANNEL_ID.search(record.path)
        channel = match.group(1) if match else record.path
        if record.status == 429:
            recent = [t for t in successes[channel] if (record.at - t).total_seconds() < WINDOW]
            if len(recent) < PER_WINDOW:
                global_ += 1
            elif successes[channel]:
                late += 1
            else:
                discovery += 1
        elif 200 <= record.status < 300:
            successes[channel].append(record.at)
    return discovery, late, global_


async def scenario(
    alerts: int, channels: int, global_limit: int | None, database: str | Path
) -> Outcome:
    """One timed delivery pass; `database` is a SQLite file or a PostgreSQL URL."""
    papers = parse_rss(LISTING.read_bytes()).papers
    per_channel = alerts // channels
    channel_ids: list[tuple[int, int]] = []  # (guild id, channel id)

    async def prepare(emu: DiscordEmulator, _arxiv: ArxivServer, db: Store) -> None:
        await PaperService(db, None).announce(papers)
        for g in range(math.ceil(channels / CHANNELS_PER_GUILD)):
            guild = await emu.create_guild(f"Readers {g}")
            for c in range(min(CHANNELS_PER_GUILD, channels - len(channel_ids))):
                channel = await emu.create_text_channel(guild.id, f"papers-{c}")
                channel_ids.append((guild.id, channel.id))

    # Deliveries happen only in the pass timed below, not on the scheduler's interval.
    async with local_bot(
        database,
        prepare=prepare,
        global_rate_limit=global_limit,
        delivery_interval_seconds=3600.0,
    ) as env:
        await queue_alerts(env, channel_ids, [p.id for p in papers], per_channel)
        due = await env.bot.papers.outbox.claim_due(now=datetime.now(UTC), limit=CLAIM_LIMIT)
        plan = planned_messages(due)
        minimum, sequential = minimum_seconds(list(plan.values()), global_limit)
        before = env.emu.stats.messages_created
        started = time.perf_counter()
        report = await env.bot.deliverer.run_once()
        elapsed = time.perf_counter() - started
        discovery, late, global_ = classify_429s(env.emu)
        return Outcome(
            elapsed=elapsed,
            minimum=minimum,
            sequential_minimum=sequential,
            messages=env.emu.stats.messages_created - before,
            expected_messages=sum(plan.values()),
            per_channel=(min(plan.values()), max(plan.values())),
            sent=report.sent,
            discovery_429=discovery,
            late_429=late,
            global_429=global_,
        )


async def queue_alerts(
    env: LocalBot, channel_ids: list[tuple[int, int]], paper_ids: list[str], per_channel: int
) -> None:
    """Queue `per_channel` different papers for each channel, as a backfill would."""
    subscriptions = SubscriptionRepository(env.db)
    now = datetime.now(UTC)
    for index, (guild_id, channel_id) in enumerate(channel_ids):
        destination = await subscriptions.ensure_destination(
            DestinationKind.CHANNEL, channel_id, guild_id
        )
        start = (index * per_channel) % (len(paper_ids) - per_channel)
        await env.bot.papers.outbox.enqueue_backfill(
            destination.id, paper_ids[start : start + per_channel], ["category: cs.LG"], now
        )


SCENARIOS = (
    (500, 50, None),
    (500, 50, GLOBAL_PER_SECOND),
    (500, 5, None),
    (500, 5, GLOBAL_PER_SECOND),
)


def describe(alerts: int, channels: int, global_limit: int | None) -> str:
    limits = "per-channel + global 50/s" if global_limit else "per-channel only"
    return f"{alerts} alerts -> {channels:>2} channels, {limits}"


def summary(out: Outcome) -> str:
    """elapsed vs minimum and 429s, for the side-by-side table."""
    ratio = f"{out.elapsed / out.minimum:.2f}x" if out.minimum else "  n/a"
    return (
        f"{out.elapsed:6.2f}s / {out.minimum:4.1f}s {ratio:>6}  "
        f"429s {out.discovery_429}/{out.late_429}/{out.global_429}"
    )


async def main() -> None:
    # Warnings from the bot (a global 429, a retried batch) print in line with the figures.
    logging.basicConfig(
        level=logging.WARNING, format="log: %(name)s: %(message)s", stream=sys.stdout
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    add_backends_option(parser)
    args = parser.parse_args()
    backends, url = chosen_backends(args.backends)
    outcomes: dict[tuple[int, int, int | None], dict[str, list[Outcome]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for alerts, channels, global_limit in SCENARIOS:
            for run in range(args.rounds):
                for backend in backends:
                    database: str | Path
                    if backend == "postgres":
                        assert url is not None
                        database = url
                    else:
                        database = (
                            Path(tmp) / f"run{run}-delivery-{alerts}-{channels}-{global_limit}.db"
                        )
                    out = await scenario(alerts, channels, global_limit, database)
                    key = (alerts, channels, global_limit)
                    outcomes.setdefault(key, {}).setdefault(backend, []).append(out)
                    ratio = f"{out.elapsed / out.minimum:.2f}" if out.minimum else "n/a (minimum 0)"
                    low, high = out.per_channel
                    spread = str(low) if low == high else f"{low}-{high}"
                    print(
                        f"[{backend}] {describe(alerts, channels, global_limit)}: sent={out.sent} "
                        f"messages={out.messages}/{out.expected_messages} "
                        f"({spread} per channel)  elapsed={out.elapsed:.2f}s  "
                        f"minimum={out.minimum:.1f}s (one channel at a time: "
                        f"{out.sequential_minimum:.1f}s)  ratio={ratio} (target <= 1.2)  "
                        f"429s: {out.discovery_429} at bucket discovery, {out.late_429} later "
                        f"(target 0), {out.global_429} global"
                    )
    print()
    print("side by side: elapsed / minimum  ratio  429s at discovery/later/global"
          + ("" if args.rounds == 1 else " (each run)"))  # fmt: skip
    width = max(len(describe(*key)) for key in outcomes)
    print(f"{'scenario':<{width}}" + "".join(f"   {b:<35}" for b in backends).rstrip())
    for key, by_backend in outcomes.items():
        for run in range(args.rounds):
            label = describe(*key) if run == 0 else ""
            cells = "".join(f"   {summary(by_backend[b][run]):<35}" for b in backends)
            print(f"{label:<{width}}{cells}".rstrip())


if __name__ == "__main__":
    asyncio.run(main())
