"""Look-ups over 3,000,000 papers (storage layer, warm) and `paperbell run`'s memory.

Builds (once, cached under bench/out/, see `bench._common.catalogue_store`) a
SQLite store of synthetic snapshot records (bench/snapshot_data.py) imported
through the bulk path `paperbell import` runs, then measures p50/p95 of
`PaperRepository.get`, `.search` and `.by_author`, and reports the database
size on disk and the peak RSS of this process. Then runs the bot on the store
(bench/run_rss.py) and prints its memory while it answers `/search`, `/author`
and `/paper`. Targets: get p95 <= 1 ms, search and author p95 <= 20 ms,
`paperbell run` <= 150 MB.

    .venv/bin/python -m bench.lookups [--papers 3000000] [--queries 500] [--commands 300]
    .venv/bin/python -m bench.lookups --store bench/out/bulk-3000000.db

`--store PATH` measures a store built by `bench.bulk_import --keep PATH` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import func, select

from bench import run_rss
from bench._common import catalogue_store, load
from bench.snapshot_data import Generator, paper_id_for
from storage.papers import PaperRepository
from storage.schema import authors as authors_table
from storage.sqlite import open_sqlite


async def timed(samples: int, call: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    for i in range(min(50, samples)):  # warm-up
        await call(i)
    times: list[float] = []
    for i in range(samples):
        started = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


async def measure(path: Path, queries: int) -> None:
    db = await open_sqlite(path)
    repo = PaperRepository(db)
    count = await repo.count()
    rng = random.Random(7)
    ids = [paper_id_for(rng.randrange(count)) for _ in range(queries)]
    words = Generator().words  # the snapshot's vocabulary, in its Zipf order
    common = words[:200]
    mid = words[200:5_000]
    texts = [
        " ".join(rng.sample(common, 1) + rng.sample(mid, rng.randint(0, 2))) for _ in range(queries)
    ]
    stored_authors = [
        str(row.name)
        for row in await db.fetchall(
            select(authors_table.c.name).order_by(func.random()).limit(queries)
        )
    ]
    authors = [
        name if i % 2 else f"{name.split()[0][0]}. {name.split()[-1]}"
        for i, name in enumerate(stored_authors)
    ]
    print(f"store: {count:,} papers, {path.stat().st_size / 2**30:.2f} GiB on disk (+WAL)")
    print(f"before: {load()}")
    get50, get95 = await timed(queries, lambda i: repo.get(ids[i]))
    s50, s95 = await timed(queries, lambda i: repo.search(texts[i], limit=10))
    a50, a95 = await timed(len(authors), lambda i: repo.by_author(authors[i], limit=25))
    print(f"paper ID   p50={get50:6.3f} ms  p95={get95:6.3f} ms  (target p95 <= 1 ms)")
    print(f"search     p50={s50:6.3f} ms  p95={s95:6.3f} ms  (target p95 <= 20 ms)")
    print(f"author     p50={a50:6.3f} ms  p95={a95:6.3f} ms  (target p95 <= 20 ms)")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS   {peak_mib:,.0f} MiB (this process)")
    print(f"after: {load()}")
    await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=3_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument(
        "--commands", type=int, default=300, help="look-ups sent to `paperbell run` (0: skip)"
    )
    parser.add_argument("--store", type=Path, help="measure this store (bench/bulk_import.py)")
    args = parser.parse_args()
    path = args.store or await catalogue_store(args.papers)
    await measure(path, args.queries)
    if args.commands:
        print(f"paperbell run on {path.name}: {load()}")
        await run_rss.measure(path, args.commands)
        print(f"after: {load()}")


if __name__ == "__main__":
    asyncio.run(main())
