"""The fast import path (parsed, folded and keyed in worker processes) stores as the plain one."""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bench.snapshot_data import lines
from bot import bulk
from bot.bulk import SnapshotImporter
from bot.gc_pause import BURST_THRESHOLD
from storage.catalogue import CatalogueWriter
from storage.papers import PaperRepository
from storage.sqlite import open_sqlite

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
TABLES = {
    "papers": "SELECT * FROM papers ORDER BY rowid",
    # Author ids follow batch boundaries, which differ between the paths: compare by name.
    "authors": "SELECT name, surname_key, given_key FROM authors ORDER BY name",
    "paper_authors": "SELECT a.name, pa.paper_rowid FROM paper_authors pa "
    "JOIN authors a ON a.id = pa.author_id ORDER BY a.name, pa.paper_rowid",
    "paper_categories": "SELECT * FROM paper_categories ORDER BY category, paper_rowid",
    # Every (term, paper, column, offset) in the search index, whatever its segments.
    "papers_fts": "SELECT term, doc, col, offset FROM fts_terms ORDER BY term, doc, col, offset",
}


async def imported(
    store: Path, *sources: Path, parallel: bool
) -> dict[str, list[tuple[object, ...]]]:
    db = await open_sqlite(store)
    try:
        for source in sources:
            async with CatalogueWriter(db) as writer:
                importer = SnapshotImporter(
                    writer,
                    batch_size=150,
                    progress_stream=io.StringIO(),
                    live=False,
                    parallel=parallel,
                )
                await importer.import_file(source, now=NOW)
        tables = {}
        async with db.transaction() as conn:
            vocabulary = "fts5vocab(main, papers_fts, instance)"
            await conn.execute(text(f"CREATE VIRTUAL TABLE temp.fts_terms USING {vocabulary}"))
            for name, sql in TABLES.items():  # on the connection that made the temp table
                tables[name] = [tuple(r) for r in await conn.execute(text(sql))]
            await conn.execute(text("DROP TABLE temp.fts_terms"))
        repo = PaperRepository(db)
        words = [str(row[3]).split()[0] for row in tables["papers"][:5]]  # title words
        names = [str(row[0]) for row in tables["authors"][::500]]
        answers = [[h.paper.id for h in await repo.search(word)] for word in words]
        answers += [[p.id for p in (await repo.by_author(name)).papers] for name in names]
        tables["answers"] = [tuple(a) for a in answers]
        return tables
    finally:
        await db.close()


async def test_fast_path_stores_what_the_plain_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same rows in every table, same index terms, same search and author answers
    (the snapshot plain and gzipped)."""
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 60_000)  # several chunks for the two workers
    source = tmp_path / "sample.jsonl"
    source.write_bytes(b"".join(lines(600)))
    gzipped = tmp_path / "sample.jsonl.gz"
    gzipped.write_bytes(gzip.compress(source.read_bytes()))
    plain = await imported(tmp_path / "plain.db", source, parallel=False)
    fast = await imported(tmp_path / "fast.db", source, parallel=True)
    fast_gz = await imported(tmp_path / "fast-gz.db", gzipped, parallel=True)
    assert len(plain["papers"]) == 600 and len(plain["papers_fts"]) > 50_000
    assert any(row[0] for row in plain["answers"])
    for name in plain:
        assert fast[name] == plain[name], name
        assert fast_gz[name] == plain[name], name


def revised(line: bytes, version: int) -> bytes:
    """The same paper as `line`, as a later version with a new title and author list."""
    record = json.loads(line)
    record["title"] = f"Revised {record['title']}"
    record["authors_parsed"] = [*record["authors_parsed"][1:], ["Newcomer", "Ann", ""]]
    record["versions"].append({"version": f"v{version}", "created": "Mon, 2 Nov 2026 10:00:00 GMT"})
    return (json.dumps(record) + "\n").encode()


async def test_fast_path_merges_stored_and_repeated_papers_as_the_plain_path_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second file with later versions of stored papers, papers listed twice (one a
    later version), and new ones: the rows merged by the fast path are the plain path's."""
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 40_000)
    sample = list(lines(400))
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(sample[:250]))
    again = [revised(line, 7) if i % 3 == 0 else line for i, line in enumerate(sample[200:])]
    # Twice in one batch: a later version right after the first (stored and new papers),
    # and a repeat; then once more at the end, in another batch.
    again[101:101] = [revised(sample[301], 9)]
    again[61:61] = [revised(sample[260], 9), sample[260]]
    again[21:21] = [revised(sample[220], 9)]
    again[11:11] = [sample[210]]
    again += [revised(sample[380], 9)]
    second.write_bytes(b"".join(again))
    plain = await imported(tmp_path / "plain.db", first, second, parallel=False)
    fast = await imported(tmp_path / "fast.db", first, second, parallel=True)
    titles = {str(row[3]) for row in plain["papers"]}
    assert len(plain["papers"]) == 400 and sum(t.startswith("Revised") for t in titles) > 60
    assert any(row[0] == "Ann Newcomer" for row in plain["authors"])
    for name in plain:
        assert fast[name] == plain[name], name


async def test_import_restores_the_collector_thresholds(tmp_path: Path) -> None:
    """The import collects garbage less often while it runs, and only while it runs."""
    import gc

    source = tmp_path / "sample.jsonl"
    source.write_bytes(b"".join(lines(20)))
    saved = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    db = await open_sqlite(tmp_path / "store.db")
    try:
        async with CatalogueWriter(db) as writer:
            original = writer.store

            async def spying(*args: object, **kwargs: object) -> object:
                seen.append(gc.get_threshold())
                return await original(*args, **kwargs)  # type: ignore[arg-type]

            writer.store = spying  # type: ignore[method-assign]
            importer = SnapshotImporter(writer, progress_stream=io.StringIO(), live=False)
            await importer.import_file(source, now=NOW)
    finally:
        await db.close()
    assert seen and all(t[0] >= BURST_THRESHOLD for t in seen)
    assert gc.get_threshold() == saved


def test_parser_processes_run_below_the_writers_priority() -> None:
    """The writer sets the import's pace: the parser processes give it the CPU first."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=bulk._yield_to_the_writer) as pool:
        theirs = pool.submit(os.nice, 0).result()
    ours = os.nice(0)
    assert theirs == min(ours + bulk.WORKER_NICENESS, 19)
