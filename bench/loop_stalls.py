"""Event-loop stalls during a poll: the longest wait of a 5 ms ticker while listings are
fetched from the local arXiv server, parsed and stored by `PaperService.poll`.

Two listings, side by side: the real all-archives listing of 2024-11-28 (1,504
items) and a hostile one of about 15 MB (30 items with 280 KB author fields of
nested parentheses and spaces, 20 over the size caps, 600 ordinary ones; the
listing of tests/bot/test_poll_hostile.py). Target: longest stall < 100 ms.
Each poll runs on a fresh SQLite store; figures are the worst over `--rounds`.
For scale, the script first measures the same ticker on an idle loop: on a
shared machine the operating system alone accounts for part of each figure.

    .venv/bin/python -m bench.loop_stalls [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

import aiohttp

from bench._common import LISTING
from bot.arxiv.client import ArxivClient
from bot.arxiv.limiter import RequestLimiter
from bot.services import PaperService
from storage.db import Database
from tests.arxiv_server import RSS_CONTENT_TYPE, ArxivServer, Scripted
from tests.bot.test_poll_hostile import hostile_listing

ROOT = Path(__file__).resolve().parents[1]


async def one_poll(body: bytes) -> tuple[float, float, int]:
    """(longest stall s, poll wall time s, papers stored) for one poll of `body`."""
    async with ArxivServer() as arxiv:
        # Streamed in 16 KB writes, so the local server (on this loop) does not stall it.
        streamed = Scripted(body=body, content_type=RSS_CONTENT_TYPE, chunked=True, path="/rss/")
        arxiv.enqueue(streamed)
        with tempfile.TemporaryDirectory() as tmp:
            db = await Database.open(Path(tmp) / "stalls.db")
            try:
                async with aiohttp.ClientSession() as session:
                    client = ArxivClient(
                        session,
                        rss_url=arxiv.rss_url,
                        limiter=RequestLimiter(0),
                        user_agent="paperbell-bench",
                        timeout=60,
                    )
                    service = PaperService(db, client)
                    gaps: list[float] = []
                    done = asyncio.Event()

                    async def ticker() -> None:
                        last = time.perf_counter()
                        while not done.is_set():
                            await asyncio.sleep(0.005)
                            now = time.perf_counter()
                            gaps.append(now - last)
                            last = now

                    ticking = asyncio.create_task(ticker())
                    started = time.perf_counter()
                    report = await service.poll(["cs.LG"])
                    wall = time.perf_counter() - started
                    done.set()
                    await ticking
            finally:
                await db.close()
    return max(gaps), wall, sum(f.items for f in report.feeds)


async def idle_stall(seconds: float) -> float:
    gaps = [0.0]
    last = time.perf_counter()
    end = last + seconds
    while last < end:
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    return max(gaps)


async def run(rounds: int) -> None:
    listings = {
        "real listing (1,504 items)": LISTING.read_bytes(),
        "hostile listing (15 MB)": hostile_listing(),
    }
    idle = 0.0
    for _ in range(rounds):
        idle = max(idle, await idle_stall(1.0))
    print(f"{'listing':30} {'papers':>7} {'poll s':>8} {'longest stall ms':>17}")
    print(f"{'(idle loop, 1 s)':30} {0:7d} {1.0:8.2f} {idle * 1000:17.0f}")
    for name, body in listings.items():
        worst = wall = 0.0
        papers = 0
        for _ in range(rounds):
            stall, seconds, papers = await one_poll(body)
            worst, wall = max(worst, stall), max(wall, seconds)
        print(f"{name:30} {papers:7d} {wall:8.2f} {worst * 1000:17.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
