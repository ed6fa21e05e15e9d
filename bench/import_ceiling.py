"""How fast could a snapshot import be on this machine? The two floors under it.

`bench/bulk_import.py` measures `paperbell import`. This measures, on the same
synthetic snapshot, the two parts every import has to do:

- parsing: `bot.bulk.prepare_chunk` (JSON, the paper's fields, its stored rows with
  the folded index text, author keys) over the whole file, in this process, one core;
- SQLite: the rows the import wrote (papers, authors, author and category links,
  the FTS5 search entries), read back from a store `paperbell import` built,
  written again into a fresh store of the same schema by `executemany` straight
  through `sqlite3`, in one transaction, with no Python between the rows.

SQLite's writer is one thread; the parsing can run beside it. With perfect
overlap and nothing else to do, two cores would import at most
min(2 / (parse + SQLite), 1 / SQLite) papers per second. The SQLite floor is
fixed by the schema; the parse floor is paperbell's own Python and could get
cheaper. The real import also dedupes against the store, assigns rowids and
author ids and builds the link rows in the writer's process, and moves the
prepared rows between processes.

    .venv/bin/python -m bench.import_ceiling [--papers 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path

from bench.bulk_import import OUT, remove_store, run_import, snapshot
from bot.bulk import CHUNK_BYTES, prepare_chunk
from storage.paper_rows import index_row
from storage.sqlite import open_sqlite

TABLES = ("papers", "authors", "paper_authors", "paper_categories")


def parse_floor(source: Path) -> tuple[float, int]:
    """(CPU seconds, papers) of `prepare_chunk` over `source`, in chunks as the import cuts it."""
    papers = 0
    started = time.process_time()
    with source.open("rb") as stream:
        first = 1
        while True:
            data = stream.read(CHUNK_BYTES)
            if not data:
                break
            rest = stream.readline()  # whole lines only
            chunk = data + rest
            rows, _, _, lines = prepare_chunk(chunk, first)
            papers += len(rows)
            first += lines
    return time.process_time() - started, papers


async def empty_store(path: Path) -> None:
    """A fresh store at `path` with the current schema (migrations run), no rows."""
    remove_store(path)
    db = await open_sqlite(path)
    await db.close()


def fts_rows(built: sqlite3.Connection) -> list[tuple[int, str, str, str]]:
    """The search entries the import wrote: rebuilt from the stored papers with the same
    folding (`storage.paper_rows.index_row`), since a contentless FTS5 table keeps no text."""
    rows = []
    for rowid, title, abstract, authors_json in built.execute(
        "SELECT rowid, title, abstract, authors_json FROM papers ORDER BY rowid"
    ):
        rows.append(index_row(rowid, title, abstract, ", ".join(json.loads(authors_json))))
    return rows


def sqlite_floor(built: Path, fresh: Path) -> dict[str, float]:
    """Seconds per table to write `built`'s rows into the empty store `fresh`."""
    source = sqlite3.connect(built)
    rows = {t: source.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
    search = fts_rows(source)
    source.close()
    target = sqlite3.connect(fresh, isolation_level=None)
    target.execute("PRAGMA journal_mode = WAL")
    target.execute("PRAGMA synchronous = NORMAL")
    seconds: dict[str, float] = {}
    target.execute("BEGIN IMMEDIATE")
    for table in TABLES:
        marks = ", ".join("?" * len(rows[table][0]))
        started = time.perf_counter()
        target.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
        seconds[table] = time.perf_counter() - started
    started = time.perf_counter()
    target.executemany(
        "INSERT INTO papers_fts (rowid, title, abstract, authors_text) VALUES (?, ?, ?, ?)",
        search,
    )
    seconds["papers_fts"] = time.perf_counter() - started
    started = time.perf_counter()
    target.execute("COMMIT")
    seconds["commit"] = time.perf_counter() - started
    target.close()
    return seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    source = snapshot(args.papers)
    built, fresh = OUT / f"ceiling-built-{args.papers}.db", OUT / f"ceiling-fresh-{args.papers}.db"
    print(f"importing {source.name} with `paperbell import`'s code ...", flush=True)
    remove_store(built)
    await run_import(built, source)  # what `bench.bulk_import` times
    parses, floors = [], []
    for _ in range(args.rounds):
        cpu, papers = parse_floor(source)
        parses.append(cpu / papers)
        await empty_store(fresh)
        floors.append(sqlite_floor(built, fresh))
    remove_store(built)
    remove_store(fresh)
    parse = min(parses)
    best = min(floors, key=lambda f: sum(f.values()))
    sqlite_total = sum(best.values()) / papers
    print(f"papers        {papers:,} (best of {args.rounds}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")  # fmt: skip
    print(f"parse floor   {parse * 1e6:6.1f} µs/paper (one core) = {1 / parse:8,.0f} papers/s")
    print(f"SQLite floor  {sqlite_total * 1e6:6.1f} µs/paper (one writer) = "
          f"{1 / sqlite_total:8,.0f} papers/s")  # fmt: skip
    for table, seconds in best.items():
        print(f"  {table:<16} {seconds / papers * 1e6:6.1f} µs/paper")
    both = parse + sqlite_total
    ceiling = min(2 / both, 1 / sqlite_total)
    print(f"two-core ceiling, nothing but the two floors, perfect overlap: "
          f"{ceiling:,.0f} papers/s")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
