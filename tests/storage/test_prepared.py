"""Prepared rows (the bulk import's fast path): what they hold, and how the store takes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text

from bot.domain.merge import normalized
from bot.domain.models import AnnounceType
from bot.domain.names import author_key, fold_for_index
from storage.catalogue import CatalogueWriter
from storage.papers import PaperRepository
from storage.prepared import KeyMemo, paper_of, prepare
from storage.sqlite import open_sqlite
from storage.store import Store
from tests.storage.conftest import build_paper

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)


def test_a_prepared_row_decodes_to_the_normalized_paper() -> None:
    paper = build_paper(
        1,
        title="Schr\\\"odinger's  cat, revisited",
        authors=("  Ada   Lovelace ", "", "Alan Turing", "Ada Lovelace"),
        categories=("stat.ML", "cs.LG", "stat.ML"),
        published=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
        updated=None,
        comment="12 pages",
        doi="10.1000/xyz",
        announce_type=None,
    )
    row = prepare(paper)
    assert paper_of(row) == normalized(paper)
    assert row[1][6] == "2024-01-02T01:04:05.000006+00:00"  # as UtcTimestamp stores it
    assert row[2][0] == fold_for_index(paper.title)
    assert row[2][2] == fold_for_index("Ada Lovelace, Alan Turing, Ada Lovelace")
    assert row[3] == ("Ada Lovelace", "Alan Turing")  # each author linked once
    assert row[4] == ("cs.LG", "stat.ML")


def test_the_key_memo_hands_each_name_over_once_and_again_after_it_forgot() -> None:
    memo = KeyMemo(limit=3)
    first = memo.new_keys([prepare(build_paper(1, authors=("Ada Lovelace", "Alan Turing")))])
    key = author_key("Ada Lovelace")
    assert first["Ada Lovelace"] == (key.surname, key.given_key) and len(first) == 2
    second = memo.new_keys([prepare(build_paper(2, authors=("Alan Turing", "Grace Hopper")))])
    assert list(second) == ["Grace Hopper"]
    # Past its limit it starts again: names come again rather than never.
    third = memo.new_keys([prepare(build_paper(3, authors=("Ada Lovelace", "Edsger Dijkstra")))])
    assert list(third) == ["Edsger Dijkstra"]
    fourth = memo.new_keys([prepare(build_paper(4, authors=("Ada Lovelace", "Edsger Dijkstra")))])
    assert list(fourth) == ["Ada Lovelace"]


async def test_rows_without_keys_get_the_keys_the_store_works_out(db: Store) -> None:
    """A key the parser did not send (its memo had sent it before) is worked out here;
    a stored paper given again is merged, not inserted twice."""
    repo = PaperRepository(db)
    names = ("Grégoire Delétang", "Shane Legg")
    rows = [prepare(build_paper(n, authors=names)) for n in (1, 2)]
    async with db.transaction() as conn:
        assert await repo.upsert_prepared_in(conn, rows, keys={}, now=NOW) == (2, 0, 0)
    later = prepare(build_paper(1, version=2, title="A better title", authors=names))
    async with db.transaction() as conn:
        counts = await repo.upsert_prepared_in(conn, [later, rows[1]], keys={}, now=NOW)
    assert counts == (0, 1, 1)
    found = await repo.by_author("Gregoire Deletang")
    assert sorted(p.id for p in found.papers) == ["2411.00001", "2411.00002"]
    stored = await repo.get("2411.00001")
    assert stored is not None and stored.version == 2 and stored.title == "A better title"
    assert stored.first_seen == NOW
    assert [h.paper.id for h in await repo.search("better title")] == ["2411.00001"]
    assert await repo.count() == 2


async def test_the_writer_checks_foreign_keys_again_once_closed(tmp_path: Path) -> None:
    """The bulk writer skips the link tables' foreign-key checks while it is open, only."""
    db = await open_sqlite(tmp_path / "store.db")
    try:

        async def checked() -> int:
            async with db.transaction() as conn:
                return int((await conn.execute(text("PRAGMA foreign_keys"))).scalar() or 0)

        assert await checked() == 1
        async with CatalogueWriter(db) as writer:
            assert await checked() == 0
            await writer.store_prepared([prepare(build_paper(1))], keys={}, now=NOW)
        assert await checked() == 1
        try:
            async with CatalogueWriter(db):
                raise RuntimeError("the import failed")
        except RuntimeError:
            pass
        assert await checked() == 1
        paper = await PaperRepository(db).get("2411.00001")
        assert paper is not None and paper.announce_type is AnnounceType.NEW
    finally:
        await db.close()
