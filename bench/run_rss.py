"""Memory of `paperbell run` over a big store while it answers look-ups.

Starts the real bot (`python -m bot run`, its own process) on a store built by
`bench/bulk_import.py --keep PATH` against the local Discord emulator and arXiv
server, sends it `/search`, `/author` and `/paper` commands one after another
through the emulator, waits for each answer, and samples the bot's resident
memory (VmRSS, and the kernel's peak VmHWM) from /proc. Target: <= 150 MB.

    .venv/bin/python -m bench.run_rss --store bench/out/bulk-3000000.db [--commands 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from bench.snapshot_data import Generator
from tests.arxiv_server import ArxivServer
from tests.discord_emulator import DiscordEmulator

ROOT = Path(__file__).resolve().parents[1]


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of process `pid`, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def environment(emu: DiscordEmulator, arxiv: ArxivServer, store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBELL_", "DISCORD_"))}
    env.update(
        DISCORD_TOKEN=emu.token,
        PAPERBELL_DISCORD_API_URL=emu.api_url,
        PAPERBELL_DISCORD_GATEWAY_URL=emu.gateway_url,
        PAPERBELL_DATABASE=str(store),
        PAPERBELL_ARXIV_RSS_URL=arxiv.rss_url,
        PAPERBELL_ARXIV_API_URL=arxiv.api_url,
        PAPERBELL_ARXIV_DELAY="0",
        PAPERBELL_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def sample_queries(store: Path, count: int) -> list[tuple[str, dict[str, str]]]:
    rng = random.Random(11)
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        top = conn.execute("SELECT max(rowid) FROM papers").fetchone()[0]
        rowids = [rng.randint(1, top) for _ in range(count)]
        marks = ",".join("?" * len(rowids))
        ids = [
            str(r[0])
            for r in conn.execute(f"SELECT id FROM papers WHERE rowid IN ({marks})", rowids)
        ]
        names = [
            str(r[0])
            for r in conn.execute("SELECT name FROM authors ORDER BY random() LIMIT ?", (count,))
        ]
    words = Generator().words
    commands: list[tuple[str, dict[str, str]]] = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            query = " ".join([rng.choice(words[:200]), *rng.sample(words[200:5000], 1)])
            commands.append(("search", {"query": query}))
        elif kind == 1:
            commands.append(("author", {"name": names[i % len(names)]}))
        else:
            commands.append(("paper", {"id": ids[i % len(ids)]}))
    return commands


async def measure(store: Path, count: int) -> None:
    """Run the bot on `store`, send it `count` look-ups and print its memory."""
    commands = sample_queries(store, count)
    with sqlite3.connect(store) as conn:
        # Each run's emulator is new: make the bot sync its commands to it again.
        conn.execute("DELETE FROM meta WHERE key LIKE 'commands:%'")
    async with DiscordEmulator() as emu, ArxivServer() as arxiv:
        guild = await emu.create_guild("Bench")
        channel = await emu.create_text_channel(guild.id, "general")
        user = await emu.create_user("reader")
        await emu.add_member(guild.id, user.id)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=ROOT, env=environment(emu, arxiv, store),
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await emu.wait_until_connected(timeout=60)
            await emu.wait_for_command_syncs(1, timeout=60)
            start_rss, _ = memory_kib(proc.pid)
            samples: list[int] = []
            latencies: list[float] = []
            failures = 0
            for name, options in commands:
                started = time.perf_counter()
                handle = await emu.invoke_command(guild.id, channel.id, user.id, name, options)
                try:
                    await handle.wait_final(timeout=20)
                except Exception:
                    failures += 1
                latencies.append((time.perf_counter() - started) * 1000)
                samples.append(memory_kib(proc.pid)[0])
            rss, peak = memory_kib(proc.pid)
        finally:
            proc.terminate()
            await proc.wait()
    papers = sqlite3.connect(store).execute("SELECT count(*) FROM papers").fetchone()[0]
    print(f"store      {papers:,} papers, {store.stat().st_size / 2**30:.2f} GiB")
    print(
        f"commands   {len(commands)} (/search, /author, /paper in turn), {failures} unanswered; "
        f"answer p50={statistics.median(latencies):.0f} ms"
    )
    print(
        f"RSS        after start {start_rss / 1024:.0f} MiB, at the end {rss / 1024:.0f} MiB, "
        f"max sampled {max(samples) / 1024:.0f} MiB, kernel peak (VmHWM) {peak / 1024:.0f} MiB"
        "  (target <= 150 MB = 143 MiB)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--commands", type=int, default=300)
    args = parser.parse_args()
    await measure(args.store, args.commands)


if __name__ == "__main__":
    asyncio.run(main())
