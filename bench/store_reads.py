"""What a small read costs through the Store (SQLAlchemy) against the driver alone.

A primary-key look-up in `meta` (the smallest read paperbell makes), repeated:
through `Store.fetchone` (pool checkout, SQLAlchemy compile cache, Row), and
straight on one aiosqlite / asyncpg connection with the same SQL. The
difference is the per-statement overhead every repository read pays; a hot path
whose statements are this small may go to the driver if the overhead exceeds
10 % of its time (see the repositories' comments).

    python -m bench.store_reads [--reads 5000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import asyncpg
from sqlalchemy import insert, select

from storage.postgres import open_postgres
from storage.schema import meta
from storage.sqlite import open_sqlite
from storage.store import Store

ROUNDS = 5


async def per_read(reads: int, read: Callable[[], Awaitable[object]]) -> float:
    """Median over ROUNDS of the mean microseconds per read."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(reads):
            await read()
        rounds.append((time.perf_counter() - started) / reads * 1e6)
    return statistics.median(rounds)


async def fill(store: Store) -> None:
    await store.execute(insert(meta), [{"key": f"k{i}", "value": str(i)} for i in range(100)])


async def sqlite_figures(reads: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reads.sqlite3"
        store = await open_sqlite(path)
        try:
            await fill(store)
            statement = select(meta.c.value).where(meta.c.key == "k42")
            through_store = await per_read(reads, lambda: store.fetchone(statement))
        finally:
            await store.close()
        raw = await aiosqlite.connect(path, isolation_level=None)
        try:

            async def direct() -> object:
                async with raw.execute("SELECT value FROM meta WHERE key = ?", ("k42",)) as cur:
                    return await cur.fetchone()

            through_driver = await per_read(reads, direct)
        finally:
            await raw.close()
    return through_store, through_driver


async def postgres_figures(url: str, reads: int) -> tuple[float, float]:
    schema = f"bench_reads_{uuid.uuid4().hex[:8]}"
    store = await open_postgres(url, schema=schema)
    try:
        await fill(store)
        statement = select(meta.c.value).where(meta.c.key == "k42")
        through_store = await per_read(reads, lambda: store.fetchone(statement))
        raw = await asyncpg.connect(url, server_settings={"search_path": schema})
        try:
            through_driver = await per_read(
                reads, lambda: raw.fetchrow("SELECT value FROM meta WHERE key = $1", "k42")
            )
            await raw.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await raw.close()
    finally:
        await store.close()
    return through_store, through_driver


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure as well")
    args = parser.parse_args()
    rows = [("sqlite", *await sqlite_figures(args.reads))]
    if args.postgres:
        rows.append(("postgres", *await postgres_figures(args.postgres, args.reads)))
    print(f"{'backend':<9} {'Store.fetchone':>15} {'driver':>9} {'overhead':>9}  (µs per read)")
    for backend, store_us, driver_us in rows:
        print(f"{backend:<9} {store_us:>14.1f}  {driver_us:>8.1f}  {store_us - driver_us:>8.1f}")


if __name__ == "__main__":
    asyncio.run(main())
