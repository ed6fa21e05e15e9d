"""The fast import path (parsed, folded and keyed in worker processes) stores as the plain one."""

from __future__ import annotations

import io
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
    store: Path, source: Path, *, parallel: bool
) -> dict[str, list[tuple[object, ...]]]:
    db = await open_sqlite(store)
    try:
        async with CatalogueWriter(db) as writer:
            importer = SnapshotImporter(
                writer, batch_size=150, progress_stream=io.StringIO(), live=False, parallel=parallel
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
    """Same rows in every table, same index terms, same search and author answers."""
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 60_000)  # several chunks for the two workers
    source = tmp_path / "sample.jsonl"
    source.write_bytes(b"".join(lines(600)))
    plain = await imported(tmp_path / "plain.db", source, parallel=False)
    fast = await imported(tmp_path / "fast.db", source, parallel=True)
    assert len(plain["papers"]) == 600 and len(plain["papers_fts"]) > 50_000
    assert any(row[0] for row in plain["answers"])
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
