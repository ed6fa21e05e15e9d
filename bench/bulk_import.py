"""Bulk import benchmark: arXiv's metadata snapshot format into a fresh SQLite store.

Writes (once, cached under bench/out/) a snapshot of synthetic records shaped
like the real ones (see bench/snapshot_data.py), imports it with the code
`paperbell import` runs (search index and author index included), and prints
papers/s on the wall clock and per CPU second (this machine is shared: the CPU
figure is the one that does not move with the neighbours), the JSON's size,
the store's size and their ratio. Targets: >= 10,000 papers/s; store <= 1.5x JSON.

    .venv/bin/python -m bench.bulk_import [--papers 200000] [--keep PATH] [--reimport]

`--keep PATH` leaves the store at PATH (bench/lookups.py --store PATH measures
look-ups on it); `--reimport` imports the same file again and checks it changed nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import time
from pathlib import Path

from bench.snapshot_data import lines
from bot.services import PaperService
from storage.sqlite import open_sqlite

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "bench" / "out"


def snapshot(count: int) -> Path:
    path = OUT / f"snapshot-{count}.jsonl"
    if not path.exists():
        print(f"writing {path.name} ...", flush=True)
        partial = path.with_suffix(".tmp")
        with partial.open("wb") as out:
            for line in lines(count):
                out.write(line)
        partial.replace(path)
    return path


def remove_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_import(store: Path, source: Path) -> tuple[float, float, float, int, int]:
    """(wall s, this process's CPU s, the parser processes' CPU s, papers, new)."""
    db = await open_sqlite(store)
    try:
        service = PaperService(db, None)
        wall, cpu, worker = time.perf_counter(), time.process_time(), children_cpu()
        report = await service.import_files([source], progress_stream=io.StringIO())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        worker = children_cpu() - worker
        await db.maintain("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await db.close()
    return wall, cpu, worker, report.papers, report.new


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, help="build the store here and keep it")
    parser.add_argument("--reimport", action="store_true", help="import the file a second time")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    source = snapshot(args.papers)
    store = args.keep or OUT / f"bulk-{args.papers}.db"
    remove_store(store)
    wall, cpu, worker, papers, new = await run_import(store, source)
    json_bytes = source.stat().st_size
    db_bytes = store.stat().st_size
    print(f"records    {papers:,} ({new:,} new), JSON {json_bytes / 2**20:,.1f} MiB")
    print(
        f"import     {wall:7.1f} s wall = {papers / wall:8,.0f} papers/s  (target >= 10,000/s)\n"
        f"  CPU      store process {cpu:.1f} s = {papers / cpu:,.0f} papers/CPU-s; "
        f"parser processes {worker:.1f} s; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(
        f"store      {db_bytes / 2**20:,.1f} MiB = {db_bytes / json_bytes:.2f}x the JSON "
        f"({db_bytes / papers * 1e6 / 2**30:.2f} GiB per million papers; target <= 1.5x)"
    )
    if args.reimport:
        wall2, cpu2, _, _, new2 = await run_import(store, source)
        size2 = store.stat().st_size
        print(
            f"re-import  {wall2:7.1f} s wall, {cpu2:.1f} s CPU, {new2} new, "
            f"store {'unchanged' if size2 == db_bytes else f'{size2 - db_bytes:+,} bytes'}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS   {peak:,.0f} MiB")
    if not args.keep:
        remove_store(store)


if __name__ == "__main__":
    asyncio.run(main())
