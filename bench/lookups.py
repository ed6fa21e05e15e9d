"""Lookup benchmark over a store of 1,000,000 papers (storage layer, warm).

Builds (once, cached under bench/out/) a SQLite store of synthetic papers with
a Zipf-distributed vocabulary and a pool of recurring authors, then measures
p50/p95 of `PaperRepository.get`, `.search` and `.by_author`, and reports the
database size on disk and the peak RSS of this process.
Targets: get p95 <= 1 ms, search p95 <= 20 ms, author p95 <= 20 ms.

    .venv/bin/python -m bench.lookups [--papers 1000000] [--queries 500] [--rebuild]
    .venv/bin/python -m bench.lookups --store bench/out/bulk-3000000.db

`--store PATH` measures a store built by `bench.bulk_import --keep PATH` (all of
arXiv's size from the snapshot format); its searches use that data's vocabulary.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.domain.models import AnnounceType, Paper
from storage.papers import PaperRepository
from storage.schema import authors as authors_table
from storage.sqlite import open_sqlite

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "bench" / "out"
SEED = 20261126
CATEGORIES = ["cs.LG", "cs.AI", "cs.CL", "cs.CV", "stat.ML", "math.OC", "hep-th", "quant-ph",
              "astro-ph.GA", "cond-mat.stat-mech", "math.PR", "physics.optics"]  # fmt: skip
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "da", "go", "hu", "ri", "zen",
             "bar", "tor", "lin", "mor", "quan", "tum", "net", "gra", "dient", "flow"]  # fmt: skip


def make_words(rng: random.Random, count: int) -> list[str]:
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Corpus:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = make_words(rng, 20_000)
        # Zipf-like weights so some terms are common and most are rare, as in real text.
        self.weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(self.words))]
        first = [w.capitalize() for w in make_words(rng, 3_000)]
        last = [w.capitalize() for w in make_words(rng, 40_000)]
        self.authors = [f"{rng.choice(first)} {rng.choice(last)}" for _ in range(300_000)]

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, self.weights, k=n))


def paper_id(index: int) -> str:
    # 10 years of months, 99,999 papers each: valid new-style ids.
    month, number = divmod(index, 99_999)
    year, mon = divmod(month, 12)
    return f"{15 + year:02d}{mon + 1:02d}.{number + 1:05d}"


def make_paper(corpus: Corpus, index: int, base: datetime) -> Paper:
    rng = corpus.rng
    cats = rng.sample(CATEGORIES, rng.randint(1, 3))
    published = base + timedelta(minutes=index * 5)
    return Paper(
        id=paper_id(index),
        version=rng.randint(1, 3),
        title=corpus.text(rng.randint(6, 14)).capitalize(),
        abstract=corpus.text(rng.randint(80, 160)),
        authors=tuple(rng.sample(corpus.authors, rng.randint(1, 6))),
        primary_category=cats[0],
        categories=tuple(cats),
        published=published,
        updated=published,
        announce_type=AnnounceType.NEW,
    )


async def build(path: Path, papers: int, corpus: Corpus) -> None:
    path.unlink(missing_ok=True)
    db = await open_sqlite(path)
    repo = PaperRepository(db)
    base = datetime(2015, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    batch_size = 20_000
    for start in range(0, papers, batch_size):
        batch = [make_paper(corpus, i, base) for i in range(start, min(papers, start + batch_size))]
        await repo.upsert_many(batch)
        done = start + len(batch)
        rate = done / (time.perf_counter() - started)
        print(f"\r  built {done:,}/{papers:,} papers ({rate:,.0f}/s)", end="", flush=True)
    print()
    await db.maintain("PRAGMA optimize")
    await db.close()


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--store", type=Path, help="measure this store (bench/bulk_import.py)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = args.store or OUT / f"lookups-{args.papers}.db"
    corpus = Corpus(random.Random(SEED))
    if args.store:
        from bench.snapshot_data import Generator

        corpus.words = Generator().words  # the bulk store's vocabulary, Zipf-ordered the same way
    elif args.rebuild or not path.exists():
        print(f"building {path.name} ...")
        await build(path, args.papers, corpus)
    db = await open_sqlite(path)
    repo = PaperRepository(db)
    count = await repo.count()
    rng = random.Random(7)
    ids = [paper_id(rng.randrange(count)) for _ in range(args.queries)]
    common = corpus.words[:200]
    mid = corpus.words[200:5_000]
    queries = [
        " ".join(rng.sample(common, 1) + rng.sample(mid, rng.randint(0, 2)))
        for _ in range(args.queries)
    ]
    stored_authors = [
        str(row.name)
        for row in await db.fetchall(
            select(authors_table.c.name).order_by(func.random()).limit(args.queries)
        )
    ]
    authors = [
        name if i % 2 else f"{name.split()[0][0]}. {name.split()[-1]}"
        for i, name in enumerate(stored_authors)
    ]
    print(f"store: {count:,} papers, {path.stat().st_size / 2**30:.2f} GiB on disk (+WAL)")
    get50, get95 = await timed(args.queries, lambda i: repo.get(ids[i]))
    s50, s95 = await timed(args.queries, lambda i: repo.search(queries[i], limit=10))
    a50, a95 = await timed(len(authors), lambda i: repo.by_author(authors[i], limit=25))
    print(f"paper ID   p50={get50:6.3f} ms  p95={get95:6.3f} ms  (target p95 <= 1 ms)")
    print(f"search     p50={s50:6.3f} ms  p95={s95:6.3f} ms  (target p95 <= 20 ms)")
    print(f"author     p50={a50:6.3f} ms  p95={a95:6.3f} ms  (target p95 <= 20 ms)")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS   {peak_mib:,.0f} MiB")
    await db.close()


if __name__ == "__main__":
    asyncio.run(main())
