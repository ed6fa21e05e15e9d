"""Tests for the numbered migrations: every schema version upgrades to the latest with its data.

Written against the schema itself (sqlite_master, table_xinfo, foreign keys), so a
new migration is covered without touching this file. A new column with a CHECK
constraint may need an entry in PLAUSIBLE below.
"""

from __future__ import annotations

from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database, load_migrations
from storage.papers import PaperRepository

MIGRATIONS = load_migrations()
LATEST = MIGRATIONS[-1].number
WHEN = "2024-11-28T05:00:00+00:00"
TIME_COLUMNS = {"published", "updated", "first_seen", "last_success", "last_attempt"}

# Values that make one row of each table look like real data (and satisfy CHECKs).
PLAUSIBLE: dict[tuple[str, str], Any] = {
    ("papers", "id"): "2411.17709",
    ("papers", "version"): 2,
    ("papers", "title"): "Grokking at the edge of numerical stability",
    ("papers", "abstract"): "We study grokking in deep networks.",
    ("papers", "authors_json"): '["Shane Legg", "Pedro A. Ortega"]',
    ("papers", "authors_text"): "Shane Legg, Pedro A. Ortega",
    ("papers", "primary_category"): "cs.LG",
    ("papers", "categories"): "cs.LG stat.ML",
    ("papers", "announce_type"): "new",
    ("papers", "doi"): None,
    ("authors", "name"): "Shane Legg",
    ("authors", "surname_key"): "legg",
    ("authors", "given_key"): "shane",
    ("paper_authors", "position"): 0,
    ("paper_categories", "category"): "cs.LG",
    ("feed_state", "url"): "https://rss.arxiv.org/rss/cs.LG",
    ("feed_state", "consecutive_failures"): 2,
    ("destinations", "kind"): "channel",
    ("destinations", "target_id"): 1_234_567_890_123_456_789,
    ("destinations", "guild_id"): 987_654_321_098_765_432,
    ("destinations", "paused_reason"): None,
    ("subscriptions", "kind"): "author",
    ("subscriptions", "value"): "Shane Legg",
    ("subscriptions", "match_key"): "legg",
    ("subscriptions", "given_key"): "shane",
    ("deliveries", "status"): "pending",
    ("deliveries", "event"): "announced",
    ("deliveries", "version"): 0,
    ("announcements", "paper_id"): "2411.17709",
    ("announcements", "announce_type"): "replace",
    ("announcements", "listing_date"): "2024-11-28",
    ("announcements", "categories"): "cs.LG stat.ML",
    ("publications", "paper_id"): "2411.17709",
    ("deliveries", "matched_json"): '["author: Shane Legg"]',
    ("meta", "key"): "migration_test",
    ("subscription_query_keys", "kind"): "surname",
    ("subscription_query_keys", "key"): "legg",
    ("ratings", "liked"): 1,
    ("ratings", "paper_id"): "2411.17709",
    ("ranking_filtered", "reason"): "top_k",
}


def plausible(table: str, column: str, declared: str) -> Any:
    if (table, column) in PLAUSIBLE:
        return PLAUSIBLE[(table, column)]
    if column.endswith("_at") or column in TIME_COLUMNS:
        return WHEN
    if column.endswith("_json"):
        return "[]"
    if "INT" in declared.upper():
        return 3
    if any(t in declared.upper() for t in ("REAL", "FLOA", "DOUB")):
        return 1.5
    return f"{table} {column}"


async def data_tables(db: Database) -> list[str]:
    """Ordinary tables, parents before children; virtual tables and their shadows skipped."""
    rows = await db.fetchall(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    virtual = [r[0] for r in rows if str(r[1]).upper().startswith("CREATE VIRTUAL TABLE")]
    tables = [
        r[0]
        for r in rows
        if r[0] not in virtual and not any(r[0].startswith(f"{v}_") for v in virtual)
    ]
    graph = {
        t: {str(fk[2]) for fk in await db.fetchall(f"PRAGMA foreign_key_list({t})")} for t in tables
    }
    return list(TopologicalSorter(graph).static_order())


async def insert_plausible_rows(db: Database) -> dict[str, dict[str, Any]]:
    """One plausible row per table, foreign keys pointing at the parents' rows."""
    inserted: dict[str, dict[str, Any]] = {}
    for table in await data_tables(db):
        columns = await db.fetchall(f"PRAGMA table_xinfo({table})")
        foreign = {
            str(fk[3]): (str(fk[2]), fk[4])
            for fk in await db.fetchall(f"PRAGMA foreign_key_list({table})")
        }
        row: dict[str, Any] = {}
        for _cid, name, declared, _notnull, _default, pk, hidden in columns:
            if hidden:
                continue
            if name in foreign:
                parent, parent_column = foreign[name]
                parent_row = inserted[parent]
                row[name] = parent_row[parent_column or next(iter(parent_row))]
            elif pk and "INT" in str(declared).upper():
                row[name] = 1
            else:
                row[name] = plausible(table, name, str(declared))
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        await db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))
        inserted[table] = row
    return inserted


async def schema(db: Database) -> set[tuple[str, str, str]]:
    rows = await db.fetchall("SELECT type, name, coalesce(sql, '') FROM sqlite_master")
    return {(str(r[0]), str(r[1]), str(r[2])) for r in rows}


@pytest.mark.parametrize("version", [m.number for m in MIGRATIONS])
async def test_every_version_upgrades_with_its_data(tmp_path: Path, version: int) -> None:
    """A store left at schema `version`, holding data, opens at the latest schema with the data."""
    path = tmp_path / f"v{version}.sqlite3"
    old = await Database.open(path, migrate=False)
    await old.migrate(target=version)
    assert await old.schema_version() == version
    inserted = await insert_plausible_rows(old)
    await old.close()

    db = await Database.open(path)
    try:
        assert await db.schema_version() == LATEST
        for table, row in inserted.items():
            current = {str(c[1]) for c in await db.fetchall(f"PRAGMA table_xinfo({table})")}
            kept = {k: v for k, v in row.items() if k in current}
            where = " AND ".join(f"{k} IS ?" for k in kept)
            found = await db.fetchone(
                f"SELECT count(*) FROM {table} WHERE {where}", list(kept.values())
            )
            assert found is not None and found[0] == 1, f"{table} lost its row after upgrade"

        fresh = await Database.open(tmp_path / "fresh.sqlite3")
        try:
            assert await schema(db) == await schema(fresh)
        finally:
            await fresh.close()

        # The upgraded paper is still found through the repository.
        repo = PaperRepository(db)
        paper = await repo.get("2411.17709")
        assert paper is not None and paper.authors == ("Shane Legg", "Pedro A. Ortega")
        assert [h.paper.id for h in await repo.search("grokking stability")] == ["2411.17709"]
        assert [p.id for p in (await repo.by_author("legg s")).papers] == ["2411.17709"]
    finally:
        await db.close()


async def test_reopening_applies_nothing(tmp_path: Path) -> None:
    """A store at the latest version is left alone when opened again."""
    db = await Database.open(tmp_path / "x.sqlite3")
    assert await db.migrate() == []
    assert await db.schema_version() == LATEST
    await db.close()


def test_migrations_are_numbered_without_gaps() -> None:
    """Migration files run 1..N (load_migrations refuses gaps) and the store knows them all."""
    assert [m.number for m in MIGRATIONS] == list(range(1, LATEST + 1))
    assert LATEST >= 3
