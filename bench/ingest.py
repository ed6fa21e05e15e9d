"""Ingest benchmark: full ingest (parse + store + index) vs `feedparser.parse` alone.

Measured side by side in one run (alternating, median of the rounds) on the
real 1,504-item all-archives listing and on the same items repeated, with
fresh ids, to 20,000. Target: full / feedparser <= 1.5.

    .venv/bin/python -m bench.ingest [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

import feedparser

from bot.arxiv.feeds import parse_rss
from bot.services import PaperService
from storage.sqlite import open_sqlite

ROOT = Path(__file__).resolve().parents[1]

FIXTURE = ROOT / "tests" / "fixtures" / "rss2024_new_all-archives_2024-11-28.xml"
NEW_ID = re.compile(rb"(?<![\d.])2411\.(\d{5})")


def repeated_listing(data: bytes, target_items: int) -> bytes:
    """The listing's items repeated with fresh ids (other months) until `target_items`."""
    head, rest = data.split(b"<item>", 1)
    body, tail = (b"<item>" + rest).rsplit(b"</item>", 1)
    items = [b"<item>" + chunk for chunk in body.split(b"<item>") if chunk.strip()]
    items[-1] += b"</item>"
    out: list[bytes] = []
    copy = 0
    while len(out) < target_items:
        year, month = divmod(copy, 12)
        yymm = f"{15 + year:02d}{month + 1:02d}".encode()
        for item in items:
            if len(out) == target_items:
                break
            out.append(NEW_ID.sub(lambda m, p=yymm: p + b"." + m.group(1), item))
        copy += 1
    return head + b"".join(out) + tail


async def full_ingest(data: bytes, workdir: Path, run: int) -> tuple[float, int, int]:
    db = await open_sqlite(workdir / f"ingest-{run}.db")
    try:
        service = PaperService(db, None)
        started = time.perf_counter()
        listing = parse_rss(data)
        outcome = await service.announce(listing.papers)
        elapsed = time.perf_counter() - started
    finally:
        await db.close()
    return elapsed, len(listing.papers), len(outcome.new)


def feedparser_only(data: bytes) -> float:
    started = time.perf_counter()
    feedparser.parse(data)
    return time.perf_counter() - started


async def measure(label: str, data: bytes, rounds: int, workdir: Path) -> float:
    fp_times: list[float] = []
    full_times: list[float] = []
    items = new = 0
    for run in range(rounds):
        fp_times.append(feedparser_only(data))
        elapsed, items, new = await full_ingest(data, workdir, hash((label, run)) & 0xFFFF)
        full_times.append(elapsed)
    fp, full = statistics.median(fp_times), statistics.median(full_times)
    ratio = full / fp
    print(
        f"{label:<22} items={items:>6} new={new:>6}  feedparser={fp:7.3f}s  "
        f"full ingest={full:7.3f}s  "
        f"ratio={ratio:.2f}  (target <= 1.5)"
    )
    return ratio


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = FIXTURE.read_bytes()
    big = repeated_listing(data, 20_000)
    with tempfile.TemporaryDirectory() as tmp:
        await measure("daily listing (1,504)", data, args.rounds, Path(tmp))
        await measure("repeated to 20,000", big, max(1, args.rounds - 1), Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
