"""Scale-out: two `paperbell run` processes, one gateway shard each, on one PostgreSQL database.

The test process hosts the Discord emulator (guilds spread over two shards) and
the local arXiv server; the bots are real `python -m bot run --shard-count 2
--shard-ids N` processes in a schema of their own (`?search_path=` in
PAPERBELL_DATABASE). Each run has its own PAPERBELL_CONTACT, so the arXiv
server tells the runs apart by User-Agent, and the outbox records which run
claimed each alert (`claimed_by` holds its pid). The test kills the poller,
publishes again, and restarts the killed shard as an orchestrator would.
A second, in-process test pins how a process that is not the poller ends its
nightly announcement cycle. Needs PAPERBELL_TEST_POSTGRES_URL; skipped, saying
so, without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest

from bot.config import Settings
from bot.domain.models import Paper, SubscriptionKind
from bot.runner import build_bot
from bot.services import PaperService
from bot.subscribing import SubscriptionService
from storage.locks import Leadership
from storage.postgres import open_postgres
from tests.arxiv_server import ArxivServer
from tests.backends import needs_postgres, require_postgres
from tests.bot.e2e_support import (
    DAY_ONE,
    eventually,
    paper,
    posted,
    rss_listing,
    settings_for,
)
from tests.bot.test_bot_process import ROOT, BotProcess, bot_environment
from tests.discord_emulator import (
    DiscordEmulator,
    Guild,
    Message,
    User,
    running_client,
    shard_for_guild,
)

pytestmark = needs_postgres  # every test here runs against PostgreSQL

pytest_plugins = ("tests.discord_fixtures",)

SHARDS = 2
GUILDS_PER_SHARD = 3
POLLER = "this process is now the arXiv poller"
TAKEOVER_TIMEOUT = 45.0  # the leadership job runs every 30 s (and every poll checks first)
DELIVERY_TIMEOUT = 20.0
START_TIMEOUT = 20.0
EXIT_TIMEOUT = 30.0

# Two days' listings of cs.LG papers, every other one cross-listed to stat.ML.
DAYS: tuple[tuple[Paper, ...], ...] = tuple(
    tuple(
        paper(
            f"2501.{day * 100 + n:05d}",
            f"Sharded day {day} paper {n}",
            categories=("cs.LG", "stat.ML") if n % 2 == 0 else ("cs.LG",),
        )
        for n in range(6)
    )
    for day in (1, 2)
)


def with_search_path(url: str, schema: str) -> str:
    """`url` plus `search_path=<schema>` (asyncpg sends unknown query keys as server settings)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"search_path": schema})) if q)
    return urlunsplit(parts._replace(query=query))


@dataclass(frozen=True)
class Destination:
    """A subscribed channel of a guild on `shard`, or the reader's DMs (delivered by shard 0)."""

    label: str
    shard: int
    category: str
    target_id: int  # channel id, or the user id for DMs
    dm: bool = False


@dataclass
class Deployment:
    emu: DiscordEmulator
    arxiv: ArxivServer
    tmp: Path
    url: str  # what the bots get as PAPERBELL_DATABASE: the test's schema on the test server
    guilds: dict[int, list[Guild]]  # shard -> its guilds
    reader: User
    destinations: list[Destination] = field(default_factory=list)
    runs: dict[str, BotProcess] = field(default_factory=dict)

    async def start(self, shard: int, name: str) -> BotProcess:
        """`python -m bot run --shard-count 2 --shard-ids <shard>`, output in `<name>.err`."""
        env = bot_environment(
            self.emu,
            self.arxiv,
            self.tmp / "unused.db",
            PAPERBELL_DATABASE=self.url,  # replaces the SQLite path above
            PAPERBELL_CONTACT=name,  # in the User-Agent: which run asked arXiv
            PAPERBELL_POLL_INTERVAL_MINUTES="0.02",  # a safety-net poll every 1.2 s
            PAPERBELL_DELIVERY_INTERVAL_SECONDS="0.2",
            PAPERBELL_ARXIV_MAX_RETRIES="0",
        )
        stdout, stderr = self.tmp / f"{name}.out", self.tmp / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run",
                "--shard-count", str(SHARDS), "--shard-ids", str(shard),
                cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
            )  # fmt: skip
        run = self.runs[name] = BotProcess(proc, stdout, stderr)
        return run

    def messages(self, dest: Destination) -> list[Message]:
        if dest.dm:
            return self.emu.dm_messages(dest.target_id)
        return self.emu.channel_messages(dest.target_id)

    def shown(self) -> Counter[str]:
        """Every alert Discord shows, counted per (destination, paper)."""
        counts: Counter[str] = Counter()
        for dest in self.destinations:
            posts = posted(self.messages(dest))
            counts.update({f"{dest.label}:{pid}": n for pid, n in posts.items()})
        return counts

    def expected(self, days: Sequence[Sequence[Paper]], shards: set[int]) -> Counter[str]:
        """One alert per matching paper for each destination that `shards` deliver to."""
        return Counter(
            f"{dest.label}:{p.id}"
            for listing in days
            for p in listing
            for dest in self.destinations
            if dest.shard in shards and dest.category in p.categories
        )

    def rss_requests(self, since: int = 0) -> Counter[str]:
        """RSS requests the arXiv server got (from its `since`-th request on), per run: the
        contact in their User-Agent."""
        return Counter(
            r.headers.get("User-Agent", "").rpartition("contact: ")[2]
            for r in self.arxiv.requests[since:]
            if r.path.startswith("/rss/")
        )

    async def wait_polls(self, name: str, count: int, *, after: BotProcess) -> None:
        """Wait until run `name` polled `count` times since `after`'s scheduler started.

        Polls come every 1.2 s, so by then `after` has had its own safety-net poll due.
        """
        await self.wait_log(after, "scheduler started", START_TIMEOUT)
        mark = len(self.arxiv.requests)
        await self.emu.wait_for(
            lambda: self.rss_requests(mark)[name] >= count,
            timeout=START_TIMEOUT,
            what=f"{count} polls by {name}",
        )

    def logs(self) -> str:
        return "\n".join(
            f"----- {name}: pid {run.proc.pid}, exit code {run.proc.returncode} -----\n"
            + run.output()
            for name, run in self.runs.items()
        )

    async def wait_log(self, run: BotProcess, text: str, timeout: float) -> None:
        """Wait until `run` logged `text` (failing at once if it exited instead)."""
        await self.emu.wait_for(
            lambda: text in run.output() or run.proc.returncode is not None,
            timeout=timeout,
            what=f"{text!r} in the log of pid {run.proc.pid}",
        )
        assert text in run.output(), f"pid {run.proc.pid} exited with {run.proc.returncode}"

    async def wait_shown(self, want: Counter[str], timeout: float = DELIVERY_TIMEOUT) -> None:
        """Wait until Discord shows every alert of `want` (at least once)."""
        await self.emu.wait_for(
            lambda: not (want - self.shown()),
            timeout=timeout,
            what=f"{sum(want.values())} alerts",
            details=lambda: f"missing {sorted(want - self.shown())[:6]}",
        )

    async def outbox(self) -> dict[str, tuple[str, int | None]]:
        """Destination label and paper -> status of the alert, pid of the run that claimed it."""
        labels = {d.target_id: d.label for d in self.destinations}
        conn = await asyncpg.connect(self.url)
        try:
            rows = await conn.fetch(
                "SELECT d.target_id, p.id, dl.status, dl.claimed_by FROM deliveries AS dl"
                " JOIN destinations AS d ON d.id = dl.destination_id"
                " JOIN papers AS p ON p.rowid = dl.paper_rowid"
            )
        finally:
            await conn.close()
        return {
            f"{labels[row['target_id']]}:{row['id']}": (
                row["status"],
                None if row["claimed_by"] is None else int(row["claimed_by"].split(":")[-2]),
            )
            for row in rows
        }

    async def wait_recorded(self, sent: Counter[str], unsent: Counter[str]) -> dict[str, int]:
        """Wait until the outbox marks exactly `sent` as sent (Discord shows a post a moment
        before its confirmation is recorded) and holds `unsent` pending; returns who claimed
        each sent alert."""
        want = {**dict.fromkeys(sent, "sent"), **dict.fromkeys(unsent, "pending")}

        async def statuses() -> dict[str, str]:
            return {key: status for key, (status, _) in (await self.outbox()).items()}

        async def recorded() -> bool:
            return await statuses() == want

        async def differences() -> str:
            have = await statuses()
            wrong = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
            return f"{len(wrong)} differ: {[(k, have.get(k)) for k in wrong[:6]]}"

        await eventually(recorded, what="the outbox to record the posts", details=differences)
        return {
            key: pid
            for key, (status, pid) in (await self.outbox()).items()
            if pid and status == "sent"
        }


@contextlib.contextmanager
def logs_on_failure(deployment: Deployment) -> Iterator[None]:
    """Print every run's output when the block fails; pytest shows it with the failure."""
    try:
        yield
    except BaseException:
        print(deployment.logs())
        raise


async def subscribe(deployment: Deployment) -> None:
    """Channels on both shards and the reader's DMs subscribe, through the services."""
    emu = deployment.emu
    db = await open_postgres(deployment.url)
    try:
        service = SubscriptionService(PaperService(db, None), Settings(database=deployment.url))
        for shard, guilds in deployment.guilds.items():
            for number, guild in enumerate(guilds):
                # Every guild follows cs.LG in #ml; the first one on a shard also stat.ML.
                wanted = [("ml", "cs.LG")] + ([("stats", "stat.ML")] if number == 0 else [])
                for name, category in wanted:
                    channel = await emu.create_text_channel(guild.id, name)
                    await service.subscribe(
                        actor_id=guild.owner_id, guild_id=guild.id, channel_id=channel.id,
                        kind=SubscriptionKind.CATEGORY, value=category,
                    )  # fmt: skip
                    deployment.destinations.append(
                        Destination(f"s{shard}g{number}#{name}", shard, category, channel.id)
                    )
        await service.subscribe(
            actor_id=deployment.reader.id, guild_id=None, channel_id=None,
            kind=SubscriptionKind.CATEGORY, value="stat.ML",
        )  # fmt: skip
        deployment.destinations.append(
            Destination("dm", 0, "stat.ML", deployment.reader.id, dm=True)
        )
    finally:
        await db.close()


@pytest.fixture
async def schema_url() -> AsyncIterator[str]:
    """The test PostgreSQL URL inside a fresh schema (`?search_path=`), dropped afterwards."""
    base = require_postgres()
    schema = f"pbshard_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    try:
        yield with_search_path(base, schema)
    finally:
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()


@pytest.fixture
async def deployment(schema_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with DiscordEmulator() as emu, ArxivServer() as arxiv:
        guilds = {
            shard: [
                await emu.create_guild(f"Shard {shard} guild {n}", shard=(shard, SHARDS))
                for n in range(GUILDS_PER_SHARD)
            ]
            for shard in range(SHARDS)
        }
        reader = await emu.create_user("reader")
        found = Deployment(emu, arxiv, tmp_path, schema_url, guilds, reader)
        await subscribe(found)
        try:
            yield found
        finally:
            for run in found.runs.values():
                if run.proc.returncode is None:
                    run.signal(signal.SIGKILL)
                    await run.exit_code()


async def test_two_shard_processes_share_one_database(deployment: Deployment) -> None:
    """Two shard processes on one PostgreSQL: each connects only its shard, exactly one polls,
    every alert is posted once by the process of its guild's shard (DMs by shard 0); after the
    poller is killed the other takes over and keeps its shard's alerts flowing, and the
    restarted shard then posts its pending alerts exactly once."""
    d = deployment
    emu = d.emu
    with logs_on_failure(d):
        for shard, guilds in d.guilds.items():
            assert {shard_for_guild(g.id, SHARDS) for g in guilds} == {shard}

        # Shard 0 starts first and becomes the poller; then shard 1 joins.
        first = await d.start(0, "shard0-first")
        await d.wait_log(first, POLLER, START_TIMEOUT)
        other = await d.start(1, "shard1")
        await emu.wait_until_connected(shard_count=SHARDS, timeout=START_TIMEOUT)
        for run in (first, other):
            await d.wait_log(run, "ready user=", START_TIMEOUT)
        await d.wait_polls("shard0-first", 2, after=other)

        # Each process opened only its own shard and got only that shard's guilds.
        sessions = emu.gateway.sessions.values()
        assert sorted((s.shard_id, s.shard_count) for s in sessions) == [(0, 2), (1, 2)]
        for shard, guilds in d.guilds.items():
            created = {int(e.data["id"]) for e in emu.sent_events("GUILD_CREATE", shard_id=shard)}
            assert created == {g.id for g in guilds}

        # Day 1: every alert once, each posted by the process of its guild's shard.
        d.arxiv.set_rss(rss_listing(DAYS[0], built=DAY_ONE))
        day_one = d.expected(DAYS[:1], {0, 1})
        await d.wait_shown(day_one)
        assert d.shown() == day_one
        pids = {0: first.proc.pid, 1: other.proc.pid}
        shard_of = {dest.label: dest.shard for dest in d.destinations}
        owners = await d.wait_recorded(day_one, Counter())
        assert owners == {key: pids[shard_of[key.split(":")[0]]] for key in day_one}
        # Only the poller asked arXiv, though both ran the 1.2 s safety-net poll.
        assert set(d.rss_requests()) == {"shard0-first"}
        assert "poll done" in first.output() and "poll done" not in other.output()
        assert POLLER not in other.output()

        # The poller dies; day 2 is published. Shard 1 takes over polling and posts its
        # guilds' alerts; shard 0's guilds and the DMs wait, since nobody serves shard 0.
        first.signal(signal.SIGKILL)
        assert await first.exit_code(EXIT_TIMEOUT) == -signal.SIGKILL
        killed_at = len(d.arxiv.requests)
        d.arxiv.set_rss(rss_listing(DAYS[1], built=DAY_ONE + timedelta(days=1)))
        await d.wait_log(other, POLLER, TAKEOVER_TIMEOUT)
        survivors = day_one + d.expected(DAYS[1:], {1})
        await d.wait_shown(survivors)
        assert set(d.rss_requests(killed_at)) == {"shard1"}
        waiting = d.expected(DAYS[1:], {0})
        assert waiting
        await d.wait_recorded(survivors, waiting)
        assert d.shown() == survivors

        # The orchestrator restarts shard 0: its pending alerts arrive, each once; shard 1
        # stays the poller.
        restarted = await d.start(0, "shard0-restarted")
        everything = d.expected(DAYS, {0, 1})
        await d.wait_shown(everything)
        await d.wait_polls("shard1", 2, after=restarted)
        assert d.shown() == everything
        owners = await d.wait_recorded(everything, Counter())
        pids[0] = restarted.proc.pid
        for key in everything - day_one:
            assert owners[key] == pids[shard_of[key.split(":")[0]]], key
        assert POLLER not in restarted.output() and "poll done" not in restarted.output()
        assert d.rss_requests()["shard0-restarted"] == 0

        # Both stop cleanly; nothing crashed along the way.
        for run in (other, restarted):
            run.signal(signal.SIGTERM)
        for run in (other, restarted):
            assert await run.exit_code(EXIT_TIMEOUT) == 0
        for run in d.runs.values():
            assert "Traceback" not in run.output() and emu.token not in run.output()


async def test_other_processes_end_the_announcement_cycle_with_the_poller(
    schema_url: str,
    emulated_discord: DiscordEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A process that is not the poller keeps its announcement cycle retrying (to take over)
    and ends it once the store shows the poller got tonight's listing: without asking arXiv
    itself and without warning that the listing never appeared."""
    caplog.set_level(logging.INFO, logger="bot.scheduling")
    now = datetime.now(UTC)
    yesterday, tonight = now - timedelta(days=2), now + timedelta(days=1)
    db = await open_postgres(schema_url)
    poller = Leadership(db)  # the poller process's lock, held by the test
    try:
        assert await poller.acquire()
        async with ArxivServer() as arxiv, aiohttp.ClientSession() as session:
            settings = settings_for(
                tmp_path / "unused.db", arxiv, database=schema_url, poll_retry_minutes=0.002
            )
            bot = build_bot(
                settings, db, session, user_agent="paperbell-e2e", guild_ready_timeout=0.1
            )
            async with running_client(bot, emulated_discord):
                reader = await emulated_discord.create_user("reader")
                await bot.subscriptions.subscribe(
                    actor_id=reader.id, guild_id=None, channel_id=None,
                    kind=SubscriptionKind.CATEGORY, value="stat.ML",
                )  # fmt: skip
                scheduler = bot.poll_scheduler
                arxiv.set_rss(rss_listing(DAYS[0][:1], built=yesterday))
                await bot.papers.poll()  # the poller's poll: yesterday's listing is stored
                asked = len(arxiv.requests)

                def retry_at() -> datetime | None:
                    job = scheduler.scheduler and scheduler.scheduler.get_job("announcement-retry")
                    return job.next_run_time if job else None

                await scheduler.announcement_cycle()
                first_retry = retry_at()
                assert first_retry is not None  # not the poller, and nothing new: it waits
                await emulated_discord.wait_for(
                    lambda: retry_at() not in (None, first_retry), what="another retry"
                )

                arxiv.set_rss(rss_listing(DAYS[1][:1], built=tonight))
                assert len(arxiv.requests) == asked  # the waiting process asked nothing
                await bot.papers.poll()  # the poller gets tonight's listing
                asked = len(arxiv.requests)
                await emulated_discord.wait_for(
                    lambda: scheduler._cycle_started is None and retry_at() is None,
                    what="the cycle to end",
                    details=lambda: f"fresh={scheduler._cycle_fresh} retry={retry_at()}",
                )
                assert len(arxiv.requests) == asked
        assert "tonight's listing is in urls=1" in caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        await poller.release()
        await db.close()
