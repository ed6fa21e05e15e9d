"""The catalogue writer merges the search index after a big bulk write (SQLite's FTS5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

import storage.catalogue
from storage.catalogue import CatalogueWriter
from storage.papers import PaperRepository
from storage.sqlite import open_sqlite
from tests.storage.conftest import build_paper

SEGMENTS = text("SELECT count(DISTINCT segid) FROM papers_fts_idx")


async def _import_three_batches(path: Path) -> tuple[int, list[str]]:
    """Three batches of 20 new papers, each its own transaction (so its own FTS5 segment)."""
    db = await open_sqlite(path)
    try:
        async with CatalogueWriter(db) as writer:
            for start in (0, 20, 40):
                papers = [
                    build_paper(n, title=f"Segment merging study {n}")
                    for n in range(start + 1, start + 21)
                ]
                await writer.store(papers)
        segments = int(await db.scalar(SEGMENTS))
        hits = await PaperRepository(db).search("segment merging", limit=100)
        return segments, sorted(hit.paper.id for hit in hits)
    finally:
        await db.close()


async def test_big_import_merges_the_index_and_search_still_finds_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage.catalogue, "COMPACT_AFTER_NEW", 60)
    segments, found = await _import_three_batches(tmp_path / "big.db")
    assert segments == 1
    assert found == [f"2411.{n:05d}" for n in range(1, 61)]


async def test_small_import_leaves_the_index_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage.catalogue, "COMPACT_AFTER_NEW", 61)
    segments, found = await _import_three_batches(tmp_path / "small.db")
    assert segments > 1  # one per batch: merging them would cost a big store seconds
    assert len(found) == 60
