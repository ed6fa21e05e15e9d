"""Helpers shared by the bench scripts: paths, backends, the production bot on local services.

`local_bot()` runs the real `PaperbellBot` (cogs, scheduler, deliverer) in this
process against the Discord emulator and the local arXiv server from `tests/`,
the way the end-to-end tests do, so a bench measures production code paths.
Bench scripts run as modules from the repository root (`python -m bench.delivery`).

`catalogue_store(n)` is a SQLite store of n synthetic papers (bench/snapshot_data.py)
imported through the bulk path `paperbell import` runs, cached under bench/out/.

Backends: `add_backends_option()` gives a script `--backends sqlite,postgres`;
`chosen_backends()` resolves it. PostgreSQL is reached through
`PAPERBELL_BENCH_POSTGRES_URL` (or the tests' `PAPERBELL_TEST_POSTGRES_URL`);
when either is set both backends run by default, otherwise SQLite alone (with
a printed note). Bench data on PostgreSQL lives in schemas named `bench_...`.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.bulk_import import remove_store
from bench.snapshot_data import generator_key, write_parts
from bot.config import Settings
from bot.discord_bot import PaperbellBot
from bot.discord_endpoints import configure_endpoints, current_endpoints
from bot.runner import build_bot
from bot.services import PaperService
from storage.backend import Store, is_postgres
from storage.migrate import latest_revision
from storage.postgres import open_postgres
from storage.sqlite import open_sqlite
from tests.arxiv_server import ArxivServer
from tests.discord_emulator import BucketConfig, DiscordEmulator, running_client

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
FIXTURES = ROOT / "tests" / "fixtures"
LISTING = FIXTURES / "rss2024_new_all-archives_2024-11-28.xml"
MESSAGE_ROUTE = "/channels/{channel_id}/messages"
DISCORD_MESSAGE_LIMIT = BucketConfig(5, 5.0)  # per channel, as Discord documents for bots

_NEW_ID = re.compile(rb"(?<![\d.])2411\.(\d{5})")
_BUILD = re.compile(rb"<lastBuildDate>[^<]*</lastBuildDate>")
_PUB = re.compile(rb"<pubDate>[^<]*</pubDate>")


BACKENDS = ("sqlite", "postgres")
POSTGRES_URL_VARIABLES = ("PAPERBELL_BENCH_POSTGRES_URL", "PAPERBELL_TEST_POSTGRES_URL")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def load() -> str:
    """The load average, to print beside figures from this shared machine."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} (1 / 5 min) on {os.cpu_count()} cores"


def postgres_url() -> str | None:
    """The PostgreSQL server for benches, from the first of `POSTGRES_URL_VARIABLES` set."""
    for name in POSTGRES_URL_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def add_backends_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated: sqlite,postgres (default: both when "
        + " or ".join(POSTGRES_URL_VARIABLES)
        + " is set, else sqlite)",
    )


def chosen_backends(option: str | None) -> tuple[list[str], str | None]:
    """(backends to run, PostgreSQL URL or None) for a `--backends` value (None: the default)."""
    url = postgres_url()
    if option is None:
        if url is None:
            print(
                "note: PostgreSQL skipped; set PAPERBELL_BENCH_POSTGRES_URL (e.g. "
                "postgresql://postgres@127.0.0.1:5432/test) to run it side by side with SQLite"
            )
            return ["sqlite"], None
        return list(BACKENDS), url
    chosen = [b.strip() for b in option.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown or not chosen:
        raise SystemExit(f"--backends: choose from {','.join(BACKENDS)} (got {option!r})")
    if "postgres" in chosen and url is None:
        raise SystemExit(f"--backends postgres needs {' or '.join(POSTGRES_URL_VARIABLES)}")
    return list(dict.fromkeys(chosen)), url


async def schema_exists(url: str, schema: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
        return found is not None
    finally:
        await conn.close()


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def rename_schema(url: str, old: str, new: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'ALTER SCHEMA "{old}" RENAME TO "{new}"')
    finally:
        await conn.close()


def _catalogue_path(papers: int) -> Path:
    # Named by the generator's digest and the schema revision: a store from other
    # data or an older schema is never picked up.
    return OUT / f"catalogue-{generator_key()}-r{latest_revision()}-{papers}.db"


async def catalogue_store(papers: int) -> Path:
    """A cached SQLite store of the first `papers` synthetic snapshot records.

    Built with `PaperService.import_files` (what `paperbell import` runs), from a copy
    of the largest smaller cached store when there is one (the records are a prefix
    of the same stream), under a temporary name renamed once the import is complete
    and checkpointed, so an interrupted build is never reused.
    """
    path = _catalogue_path(papers)
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    smaller: list[int] = []
    prefix = _catalogue_path(0).name.removesuffix("0.db")
    for found in OUT.glob(prefix + "*.db"):
        count = found.name.removeprefix(prefix).removesuffix(".db")
        if count.isdigit() and int(count) < papers:
            smaller.append(int(count))
    start = max(smaller, default=0)
    (part,) = write_parts(OUT, [start, papers])
    partial = path.with_suffix(".partial")
    remove_store(partial)
    if start:
        shutil.copyfile(_catalogue_path(start), partial)
    print(f"building {path.name}: importing {part.name} ...", flush=True)
    started = time.perf_counter()
    db = await open_sqlite(partial)
    try:
        report = await PaperService(db, None).import_files([part], progress_stream=sys.stderr)
        await db.maintain("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await db.close()
    if report.errors or report.bad_lines or report.papers != papers - start:
        raise SystemExit(f"import of {part.name} incomplete: {report}")
    seconds = time.perf_counter() - started
    print(f"  {report.papers:,} papers in {seconds:,.0f} s ({report.papers / seconds:,.0f}/s)")
    wal = Path(f"{partial}-wal")
    if wal.exists() and wal.stat().st_size:
        raise SystemExit(f"{wal} still holds pages after the checkpoint")
    wal.unlink(missing_ok=True)
    Path(f"{partial}-shm").unlink(missing_ok=True)
    partial.rename(path)
    return path


@asynccontextmanager
async def open_bench_database(location: str | Path) -> AsyncIterator[Store]:
    """A fresh migrated store: a SQLite file, or a `bench_...` schema of its own on a
    PostgreSQL URL (dropped afterwards)."""
    if not is_postgres(str(location)):
        db = await open_sqlite(location)
        try:
            yield db
        finally:
            await db.close()
        return
    url = str(location)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    pg = await open_postgres(url, schema=schema)
    try:
        yield pg
    finally:
        await pg.close()
        await drop_schema(url, schema)


def listing_for_day(data: bytes, day: datetime, yymm: str) -> bytes:
    """The fixture listing re-dated to `day` (an aware UTC datetime) with ids moved to `yymm`.

    Each day gets fresh paper ids (so they are new to the store) and a new
    build date (so the poller sees a new listing, not the previous one).
    """
    prefix = yymm.encode()
    body = _NEW_ID.sub(lambda m: prefix + b"." + m.group(1), data)
    stamp = format_datetime(day, usegmt=False).replace("-0000", "+0000").encode()
    body = _BUILD.sub(b"<lastBuildDate>" + stamp + b"</lastBuildDate>", body, count=1)
    return _PUB.sub(b"<pubDate>" + stamp + b"</pubDate>", body)


def split_items(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(head, items, tail) of an RSS document, each item with its tags."""
    if b"<item>" not in data:
        head, tail = data.rsplit(b"</channel>", 1)
        return head, [], b"</channel>" + tail
    head, rest = data.split(b"<item>", 1)
    body, tail = (b"<item>" + rest).rsplit(b"</item>", 1)
    items = [b"<item>" + chunk for chunk in body.split(b"<item>") if chunk.strip()]
    items = [item if item.rstrip().endswith(b"</item>") else item + b"</item>" for item in items]
    return head, items, tail


_CATEGORY = re.compile(rb"<category>([^<]+)</category>")


def listing_for_archives(data: bytes, archives: Sequence[str]) -> bytes:
    """The items of an all-archives listing that a `rss/A+B+...` request would list."""
    head, items, tail = split_items(data)

    def wanted(item: bytes) -> bool:
        for raw in _CATEGORY.findall(item):
            category = raw.decode()
            if any(category == a or category.startswith(a + ".") for a in archives):
                return True
        return False

    return head + b"".join(i for i in items if wanted(i)) + tail


@dataclass
class LocalBot:
    emu: DiscordEmulator
    arxiv: ArxivServer
    bot: PaperbellBot
    db: Store


@asynccontextmanager
async def local_bot(
    database: str | Path,
    *,
    message_rate_limit: BucketConfig | None = DISCORD_MESSAGE_LIMIT,
    global_rate_limit: int | None = None,
    prepare: Callable[[DiscordEmulator, ArxivServer, Store], Awaitable[None]] | None = None,
    **settings: Any,
) -> AsyncIterator[LocalBot]:
    """The production bot, connected to a fresh Discord emulator and local arXiv server.

    `database` is a SQLite file path, or a PostgreSQL URL (the bot then gets a
    fresh schema of its own, dropped afterwards).
    `global_rate_limit` (requests per second, all routes) adds Discord's global limit.
    `prepare` runs before the bot connects (guilds, channels, stored papers);
    `settings` override `Settings` fields (the arXiv URLs point at the local server).
    """
    previous = current_endpoints()
    async with open_bench_database(database) as db:
        try:
            async with (
                DiscordEmulator(
                    message_rate_limit=message_rate_limit, global_rate_limit=global_rate_limit
                ) as emu,
                ArxivServer() as arxiv,
                aiohttp.ClientSession() as session,
            ):
                configure_endpoints(emu.api_url, emu.gateway_url)
                if prepare is not None:
                    await prepare(emu, arxiv, db)
                config = Settings(
                    database=str(database),
                    arxiv_rss_url=arxiv.rss_url,
                    arxiv_api_url=arxiv.api_url,
                    **settings,
                )
                bot = build_bot(config, db, session, user_agent="paperbell-bench")
                bot._connection.guild_ready_timeout = 0.1  # on_ready waits this after the guilds
                async with running_client(bot, emu):
                    yield LocalBot(emu, arxiv, bot, db)
        finally:
            configure_endpoints(*previous)


def message_posts(emu: DiscordEmulator) -> list[tuple[datetime, int]]:
    """(time, status) of every message POST the emulator answered, in order."""
    return [
        (r.at, r.status) for r in emu.requests if r.method == "POST" and r.route == MESSAGE_ROUTE
    ]
