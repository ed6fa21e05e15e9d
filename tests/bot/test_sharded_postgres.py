"""Scale-out: two `paperbell run` processes, one gateway shard each, on one PostgreSQL database.

The test process hosts the Discord emulator (guilds spread over two shards) and
the local arXiv server; the bots are real `python -m bot run --shard-count 2
--shard-ids N` processes in a schema of their own (`?search_path=` in
PAPERBELL_DATABASE). Each run has its own PAPERBELL_CONTACT, so the arXiv
server tells the runs apart by User-Agent, and the outbox records which run
claimed each alert (`claimed_by` holds its pid). The test kills the poller,
publishes again, and restarts the killed shard as an orchestrator would.
Needs PAPERBELL_TEST_POSTGRES_URL; skipped, saying so, without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from bot.config import Settings
from bot.services import PaperService
from bot.subscribing import SubscriptionService
from storage.models import Paper, SubscriptionKind
from storage.pg import PgDatabase
from tests.arxiv_server import ArxivServer
from tests.backends import require_postgres
from tests.bot.e2e_support import DAY_ONE, paper, posted, rss_listing
from tests.bot.test_bot_process import ROOT, BotProcess, bot_environment
from tests.discord_emulator import DiscordEmulator, Guild, Message, User, shard_for_guild

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

    async def claimed_by(self) -> dict[str, int]:
        """Destination label and paper -> pid of the run that claimed (and posted) the alert."""
        labels = {d.target_id: d.label for d in self.destinations}
        conn = await asyncpg.connect(self.url)
        try:
            rows = await conn.fetch(
                "SELECT d.target_id, p.id, dl.status, dl.claimed_by FROM deliveries AS dl"
                " JOIN destinations AS d ON d.id = dl.destination_id"
                " JOIN papers AS p ON p.rowid = dl.paper_rowid WHERE dl.status = 'sent'"
            )
        finally:
            await conn.close()
        return {
            f"{labels[row['target_id']]}:{row['id']}": int(row["claimed_by"].split(":")[-2])
            for row in rows
        }

    async def unsent(self) -> int:
        conn = await asyncpg.connect(self.url)
        try:
            return int(
                await conn.fetchval("SELECT count(*) FROM deliveries WHERE status <> 'sent'")
            )
        finally:
            await conn.close()


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
    db = await PgDatabase.open(deployment.url)
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
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    base = require_postgres()
    schema = f"pbshard_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    try:
        async with DiscordEmulator() as emu, ArxivServer() as arxiv:
            guilds = {
                shard: [
                    await emu.create_guild(f"Shard {shard} guild {n}", shard=(shard, SHARDS))
                    for n in range(GUILDS_PER_SHARD)
                ]
                for shard in range(SHARDS)
            }
            reader = await emu.create_user("reader")
            found = Deployment(emu, arxiv, tmp_path, with_search_path(base, schema), guilds, reader)
            await subscribe(found)
            try:
                yield found
            finally:
                for run in found.runs.values():
                    if run.proc.returncode is None:
                        run.signal(signal.SIGKILL)
                        await run.exit_code()
    finally:
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()


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
        owners = await d.claimed_by()
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
        assert waiting and await d.unsent() == sum(waiting.values())
        assert d.shown() == survivors

        # The orchestrator restarts shard 0: its pending alerts arrive, each once; shard 1
        # stays the poller.
        restarted = await d.start(0, "shard0-restarted")
        everything = d.expected(DAYS, {0, 1})
        await d.wait_shown(everything)
        await d.wait_polls("shard1", 2, after=restarted)
        assert d.shown() == everything
        assert await d.unsent() == 0
        pids[0] = restarted.proc.pid
        owners = await d.claimed_by()
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
