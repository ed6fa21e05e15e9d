"""`paperbell run` as a separate OS process against the local Discord emulator.

The test process hosts the emulator and the local arXiv server; the bot is
`python -m bot run` configured only through its environment, exactly as an
operator would run it. The tests kill it mid-delivery, stop it with signals,
and break its configuration, then read what Discord received, the outbox, the
exit code and everything the process printed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings
from bot.domain.models import DeliveryStatus, DestinationKind, SubscriptionKind
from bot.services import PaperService
from bot.subscribing import SubscriptionService
from storage.sqlite import open_sqlite
from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import paper, posted
from tests.discord_emulator import BucketConfig, Channel, DiscordEmulator, Guild, User

ROOT = Path(__file__).resolve().parents[2]
WINDOW = BucketConfig(5, 2.0)  # Discord's 5 messages per channel, in a shorter window
EXIT_TIMEOUT = 30.0


@dataclass
class BotProcess:
    """One `python -m bot run`, its output going to files under the test's tmp dir."""

    proc: asyncio.subprocess.Process
    stdout: Path
    stderr: Path

    async def exit_code(self, timeout: float = EXIT_TIMEOUT) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def output(self) -> str:
        return self.stdout.read_text("utf-8") + self.stderr.read_text("utf-8")

    def stderr_lines(self) -> list[str]:
        return self.stderr.read_text("utf-8").splitlines()


def bot_environment(
    emu: DiscordEmulator, arxiv: ArxivServer, database: Path, **extra: str
) -> dict[str, str]:
    """The environment of a bot run: this machine's, minus any paperbell or token setting."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PAPERBELL_") and k != "DISCORD_TOKEN"
    }
    env.update(
        DISCORD_TOKEN=emu.token,
        PAPERBELL_DISCORD_API_URL=emu.api_url,
        PAPERBELL_DISCORD_GATEWAY_URL=emu.gateway_url,
        PAPERBELL_DATABASE=str(database),
        PAPERBELL_ARXIV_RSS_URL=arxiv.rss_url,
        PAPERBELL_ARXIV_API_URL=arxiv.api_url,
        PAPERBELL_ARXIV_DELAY="0",
        PAPERBELL_DELIVERY_INTERVAL_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


async def start_bot(env: dict[str, str], workdir: Path, name: str) -> BotProcess:
    stdout, stderr = workdir / f"{name}.out", workdir / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
        )  # fmt: skip
    return BotProcess(proc, stdout, stderr)


@dataclass
class Scene:
    emu: DiscordEmulator
    arxiv: ArxivServer
    tmp: Path
    database: Path
    guild: Guild
    busy: Channel  # 150 alerts: 15 messages, three rate-limit windows
    quiet: Channel  # 30 alerts
    reader: User  # 20 alerts by DM

    def env(self, **extra: str) -> dict[str, str]:
        return bot_environment(self.emu, self.arxiv, self.database, **extra)

    def shown(self) -> Counter[str]:
        """Every alert Discord shows, counted per (where, paper)."""
        counts: Counter[str] = Counter()
        for where, messages in (
            ("busy", self.emu.channel_messages(self.busy.id)),
            ("quiet", self.emu.channel_messages(self.quiet.id)),
            ("dm", self.emu.dm_messages(self.reader.id)),
        ):
            counts.update({f"{where}:{pid}": n for pid, n in posted(messages).items()})
        return counts

    async def wait_messages(self, channel: Channel, count: int, timeout: float = 20.0) -> None:
        await self.emu.wait_for_messages(channel.id, count, timeout=timeout)


PAPERS = [
    paper(
        f"2502.{n:05d}",
        f"Process test paper {n}",
        categories=("cs.LG", "stat.ML") if n < 30 else ("cs.LG",),
        authors=("Ada Lovelace",) if 30 <= n < 50 else ("Nora Example",),
    )
    for n in range(150)
]
EXPECTED = Counter(
    [f"busy:{p.id}" for p in PAPERS]
    + [f"quiet:{p.id}" for p in PAPERS[:30]]
    + [f"dm:{p.id}" for p in PAPERS[30:50]]
)


async def queue_alerts(scene: Scene) -> None:
    """Subscriptions and an ingested batch in the bot's database: 200 alerts waiting."""
    db = await open_sqlite(scene.database)
    try:
        papers = PaperService(db, None)
        subscriptions = SubscriptionService(papers, Settings(database=str(scene.database)))
        owner = scene.guild.owner_id
        for channel, category in ((scene.busy, "cs.LG"), (scene.quiet, "stat.ML")):
            await subscriptions.subscribe(
                actor_id=owner, guild_id=scene.guild.id, channel_id=channel.id,
                kind=SubscriptionKind.CATEGORY, value=category, include_cross=True,
            )  # fmt: skip
        await subscriptions.subscribe(
            actor_id=scene.reader.id, guild_id=None, channel_id=None,
            kind=SubscriptionKind.AUTHOR, value="Ada Lovelace",
        )  # fmt: skip
        outcome = await papers.announce(PAPERS)
        assert outcome.deliveries == 200
    finally:
        await db.close()


async def outbox_counts(database: Path) -> dict[DeliveryStatus, int]:
    db = await open_sqlite(database)
    try:
        return await PaperService(db, None).outbox.counts()
    finally:
        await db.close()


async def sent_to(database: Path, channel: Channel) -> int:
    """Deliveries the outbox records as posted to `channel`."""
    db = await open_sqlite(database)
    try:
        service = PaperService(db, None)
        dest = await service.subscriptions.destination_for(DestinationKind.CHANNEL, channel.id)
        assert dest is not None
        return len(await service.outbox.sent_for_destination(dest.id))
    finally:
        await db.close()


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async with DiscordEmulator(message_rate_limit=WINDOW) as emu, ArxivServer() as arxiv:
        guild = await emu.create_guild("Process")
        busy = await emu.create_text_channel(guild.id, "busy")
        quiet = await emu.create_text_channel(guild.id, "quiet")
        reader = await emu.create_user("reader")
        scene = Scene(emu, arxiv, tmp_path, tmp_path / "paperbell.db", guild, busy, quiet, reader)
        await queue_alerts(scene)
        yield scene


async def test_killed_and_stopped_mid_delivery_every_alert_once(scene: Scene) -> None:
    """SIGKILL with a post unconfirmed, SIGTERM while posting, then a full run: each of 200
    alerts appears exactly once (the unconfirmed batch is resent under its nonce), SIGTERM
    exits 0 with every post recorded, and the token never shows in any output."""
    s = scene
    token = s.emu.token

    # 1. Killed while its first post to the busy channel is unconfirmed: Discord created the
    #    message but answered 500 (twice), and discord.py is waiting to retry it.
    s.emu.fail_next_posts(s.busy.id, status=500, after_create=True, count=2)
    first = await start_bot(s.env(), s.tmp, "killed")
    await s.emu.wait_for(lambda: s.emu.stats.injected_failures >= 1, what="the lost answer")
    first.signal(signal.SIGKILL)
    assert await first.exit_code() == -signal.SIGKILL
    assert len(s.emu.channel_messages(s.busy.id)) == 1  # Discord has it ...
    assert await sent_to(s.database, s.busy) == 0  # ... the outbox does not

    # 2. SIGTERM while posting: exits 0 once the posts in flight are answered and recorded.
    second = await start_bot(s.env(PAPERBELL_LOG_LEVEL="DEBUG"), s.tmp, "stopped")
    await s.wait_messages(s.busy, 5)
    second.signal(signal.SIGTERM)
    assert await second.exit_code() == 0, second.output()
    counts = await outbox_counts(s.database)
    assert counts[DeliveryStatus.SENT] == sum(s.shown().values())  # nothing posted unrecorded
    assert counts[DeliveryStatus.PENDING] > 0  # it stopped instead of finishing the backlog
    assert "received SIGTERM" in second.output() and "stopped" in second.output()
    # The killed run's post was resent under its nonce (answered 500 again, then retried).
    assert s.emu.stats.nonce_duplicates >= 2

    # 3. A full run delivers the rest, then stops cleanly.
    third = await start_bot(s.env(), s.tmp, "finished")
    await s.emu.wait_for(lambda: s.shown() == EXPECTED, timeout=30, what="all 200 alerts")
    third.signal(signal.SIGINT)
    assert await third.exit_code() == 0, third.output()

    assert s.shown() == EXPECTED
    final = await outbox_counts(s.database)
    assert final[DeliveryStatus.SENT] == 200 and final[DeliveryStatus.PENDING] == 0
    for run in (first, second, third):
        assert token not in run.output()
        assert "Traceback" not in run.output()


async def test_configuration_errors_are_one_line_and_exit_2(scene: Scene) -> None:
    """A missing or rejected token and an unusable database each end the run with one line
    on stderr, exit code 2, no traceback, and no token in the output."""
    s = scene
    garbage = s.tmp / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite database\n" * 200)
    wrong_token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Wrong.token-that-discord-refuses"
    cases = {
        "no-token": (s.env(DISCORD_TOKEN=""), "paperbell: DISCORD_TOKEN is not set"),
        "wrong-token": (
            s.env(DISCORD_TOKEN=wrong_token),
            "paperbell: Discord rejected DISCORD_TOKEN (401)",
        ),
        "bad-database": (
            s.env(PAPERBELL_DATABASE=str(garbage)),
            f"paperbell: cannot use database {garbage}",
        ),
    }
    runs = {name: await start_bot(env, s.tmp, name) for name, (env, _) in cases.items()}
    for name, run in runs.items():
        assert await run.exit_code() == 2, (name, run.output())
    for name, (_, expected) in cases.items():
        run = runs[name]
        errors = [line for line in run.stderr_lines() if line.startswith("paperbell:")]
        assert len(errors) == 1 and errors[0].startswith(expected), (name, run.output())
        assert "Traceback" not in run.output(), name
        assert s.emu.token not in run.output() and wrong_token not in run.output(), name
    assert s.emu.stats.messages_created == 0
