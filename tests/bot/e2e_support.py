"""Shared pieces of the alert end-to-end tests: RSS listings, a running bot, waiting, reading.

The bot is always the production `PaperbellBot` on a real SQLite file, talking
to the local Discord emulator through the real discord.py client and to the
local arXiv server; nothing here replaces a part of paperbell.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp

from bot.config import Settings
from bot.discord_bot import PaperbellBot
from bot.discord_endpoints import configure_endpoints, current_endpoints
from bot.domain.models import AnnounceType, Paper
from bot.runner import build_bot
from storage.sqlite import open_sqlite
from tests.arxiv_server import ArxivServer
from tests.discord_emulator import DiscordEmulator, Message, running_client

ABS_URL = re.compile(r"^https://arxiv\.org/abs/(\S+)$")
EASTERN_STANDARD = timezone(timedelta(hours=-5))
DAY_ONE = datetime(2025, 1, 7, 5, 0, tzinfo=UTC)


def paper(
    paper_id: str,
    title: str,
    *,
    abstract: str = "We study a problem and report results.",
    authors: Sequence[str] = ("Nora Example",),
    categories: Sequence[str] = ("cs.LG",),
    announce: AnnounceType = AnnounceType.NEW,
    version: int = 1,
) -> Paper:
    """A paper to publish in a listing (the first category is the primary one)."""
    return Paper(
        id=paper_id,
        version=version,
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        primary_category=categories[0],
        categories=tuple(categories),
        announce_type=announce,
    )


def _rss_item(item: Paper, pub_date: str) -> str:
    announce = (item.announce_type or AnnounceType.NEW).value
    categories = "".join(f"      <category>{escape(c)}</category>\n" for c in item.categories)
    return (
        "    <item>\n"
        f"      <title>{escape(item.title)}</title>\n"
        f"      <link>https://arxiv.org/abs/{item.id}</link>\n"
        f"      <description>arXiv:{item.versioned_id} Announce Type: {announce} \n"
        f"Abstract: {escape(item.abstract)}</description>\n"
        f'      <guid isPermaLink="false">oai:arXiv.org:{item.versioned_id}</guid>\n'
        f"{categories}"
        f"      <pubDate>{pub_date}</pubDate>\n"
        f"      <arxiv:announce_type>{announce}</arxiv:announce_type>\n"
        "      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>\n"
        f"      <dc:creator>{escape(', '.join(item.authors))}</dc:creator>\n"
        "    </item>\n"
    )


def rss_listing(items: Iterable[Paper], *, built: datetime = DAY_ONE) -> bytes:
    """An rss.arxiv.org listing in the real format, announced on `built`'s day."""
    pub_date = format_datetime(
        built.astimezone(EASTERN_STANDARD).replace(hour=0, minute=0, second=0)
    )
    build = format_datetime(built.astimezone(UTC)).replace("-0000", "+0000")
    body = "".join(_rss_item(item, pub_date) for item in items)
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">\n'
        "  <channel>\n"
        "    <title>cs updates on arXiv.org</title>\n"
        "    <link>http://rss.arxiv.org/rss/cs</link>\n"
        "    <description>cs updates on the arXiv.org e-print archive.</description>\n"
        "    <language>en-us</language>\n"
        f"    <lastBuildDate>{build}</lastBuildDate>\n"
        "    <managingEditor>rss-help@arxiv.org</managingEditor>\n"
        f"    <pubDate>{pub_date}</pubDate>\n"
        f"{body}"
        "  </channel>\n"
        "</rss>\n"
    ).encode()


# ---- waiting -------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 10.0,
    what: str = "a condition",
    details: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Return once `await check()` is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            extra = f" ({await details()})" if details is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        await asyncio.sleep(0.02)


async def due_count(bot: PaperbellBot) -> int:
    """Pending deliveries of unpaused destinations (due now or later)."""
    far = datetime.now(UTC) + timedelta(days=3650)
    return len(await bot.papers.outbox.claim_due(now=far, limit=100_000))


async def wait_delivered(bot: PaperbellBot, *, timeout: float = 15.0) -> None:
    """Wait until no unpaused destination has an alert left, and no pass is running.

    A row is marked sent only after Discord answered, so from then on the
    emulator shows every message the bot will ever post for these alerts.
    """

    async def done() -> bool:
        return await due_count(bot) == 0

    async def left() -> str:
        return f"{await due_count(bot)} alerts still pending"

    await eventually(done, timeout=timeout, what="every alert delivered", details=left)
    await bot.deliverer.deliver()


# ---- reading what Discord received ----------------------------------------------------------


def alert_ids(message: Message) -> list[str]:
    """The arXiv ids of the alert embeds in one message (from their title links)."""
    ids = []
    for embed in message.embeds:
        match = ABS_URL.match(str(embed.get("url", "")))
        assert match is not None, f"an embed without an arXiv link: {embed}"
        ids.append(match.group(1))
    return ids


def posted(messages: Iterable[Message]) -> Counter[str]:
    """How often each paper was posted in these messages."""
    return Counter(pid for message in messages for pid in alert_ids(message))


def footers(messages: Iterable[Message]) -> dict[str, str]:
    """Paper id -> the embed footer ("Matched ...") it was posted with."""
    found: dict[str, str] = {}
    for message in messages:
        for embed in message.embeds:
            match = ABS_URL.match(str(embed.get("url", "")))
            if match is not None:
                found[match.group(1)] = str((embed.get("footer") or {}).get("text", ""))
    return found


def message_posts(emu: DiscordEmulator, channel_id: int | None = None) -> list[tuple[int, int]]:
    """(channel id, HTTP status) of each message POST the emulator answered, in order."""
    found = []
    for record in emu.requests:
        if record.method != "POST" or record.route != "/channels/{channel_id}/messages":
            continue
        channel = int(record.path.split("/")[2])
        if channel_id is None or channel == channel_id:
            found.append((channel, record.status))
    return found


# ---- running the bot ------------------------------------------------------------------------


@asynccontextmanager
async def pointed_at(emu: DiscordEmulator) -> AsyncIterator[DiscordEmulator]:
    """discord.py's process-wide endpoints aimed at `emu` for the block."""
    previous = current_endpoints()
    configure_endpoints(emu.api_url, emu.gateway_url)
    try:
        yield emu
    finally:
        configure_endpoints(*previous)


def settings_for(db_path: Path, arxiv: ArxivServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database": str(db_path),
        "arxiv_rss_url": arxiv.rss_url,
        "arxiv_api_url": arxiv.api_url,
        "arxiv_delay": 0.0,
        "arxiv_max_retries": 0,
        "delivery_interval_seconds": 0.1,
        # The announcement cycle's rebuild window depends on the time of day; tests that
        # exercise it set a window and the scheduler's clock.
        "rebuild_window_minutes": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_bot(
    emu: DiscordEmulator, db_path: Path, arxiv: ArxivServer, **overrides: Any
) -> AsyncIterator[PaperbellBot]:
    """The production bot on `db_path`, connected to `emu` (endpoints already pointed there)."""
    db = await open_sqlite(db_path)
    try:
        async with aiohttp.ClientSession() as session:
            bot = build_bot(
                settings_for(db_path, arxiv, **overrides),
                db,
                session,
                user_agent="paperbell-e2e",
                guild_ready_timeout=0.1,
            )
            async with running_client(bot, emu):
                yield bot
    finally:
        await db.close()


def api_feed(items: Iterable[Paper], *, updated: datetime = DAY_ONE) -> bytes:
    """An export.arxiv.org API answer (Atom) holding `items`, as arXiv writes it.

    Each entry's `published`/`updated` are the paper's own, else `updated`.
    """

    def stamp_of(value: datetime | None) -> str:
        return (value or updated).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    stamp = stamp_of(None)
    entries = []
    for item in items:
        extra = ""
        if item.comment:
            extra += f"    <arxiv:comment>{escape(item.comment)}</arxiv:comment>\n"
        if item.journal_ref:
            extra += f"    <arxiv:journal_ref>{escape(item.journal_ref)}</arxiv:journal_ref>\n"
        if item.doi:
            extra += f"    <arxiv:doi>{escape(item.doi)}</arxiv:doi>\n"
        categories = "".join(
            f'    <category term="{escape(c)}" scheme="http://arxiv.org/schemas/atom"/>\n'
            for c in item.categories
        )
        authors = "".join(f"    <author><name>{escape(a)}</name></author>\n" for a in item.authors)
        entries.append(
            "  <entry>\n"
            f"    <id>http://arxiv.org/abs/{item.versioned_id}</id>\n"
            f"    <title>{escape(item.title)}</title>\n"
            f"    <updated>{stamp_of(item.updated)}</updated>\n"
            f"    <summary>{escape(item.abstract)}</summary>\n"
            f"{categories}"
            f"    <published>{stamp_of(item.published)}</published>\n"
            f"{extra}"
            f'    <arxiv:primary_category term="{escape(item.primary_category)}"/>\n'
            f"{authors}"
            "  </entry>\n"
        )
    count = len(entries)
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">\n'
        "  <id>https://arxiv.org/api/e2e</id>\n"
        "  <title>arXiv Query: e2e</title>\n"
        f"  <updated>{stamp}</updated>\n"
        f"  <opensearch:itemsPerPage>{count}</opensearch:itemsPerPage>\n"
        f"  <opensearch:totalResults>{count}</opensearch:totalResults>\n"
        "  <opensearch:startIndex>0</opensearch:startIndex>\n" + "".join(entries) + "</feed>\n"
    ).encode()
