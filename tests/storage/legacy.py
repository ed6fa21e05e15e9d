"""Stores as paperbell left them before Alembic, and one plausible row in every table.

`build_legacy_sqlite` and `build_legacy_postgres` apply
`storage/migrations/sql/<engine>/0001..N` with the driver alone, the way
`storage/db.py` and `storage/pg.py` did until Alembic replaced them (see
`git show 7068dfa:storage/db.py`): SQLite records N in `PRAGMA user_version`,
PostgreSQL in its `paperbell_schema` table. Nothing of paperbell's new storage
code runs here, so these are the databases deployments really have.

`insert_plausible_rows` fills each shared table of whatever schema a store has
(reflected, parents before children) and `missing_rows` says which of those rows
a later schema lost; both are written against the live schema, so a new
revision is covered without touching this file.
"""

from __future__ import annotations

import sqlite3
from graphlib import TopologicalSorter
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from storage.migrations.engine_sql import split_sql
from storage.schema import ENGINE_SPECIFIC_TABLES

WHEN = "2024-11-28T05:00:00.000000+00:00"  # 0010 pads the short form; its own test checks that
TIME_COLUMNS = {"published", "updated", "first_seen", "last_success", "last_attempt"}
SQL = resources.files("storage.migrations").joinpath("sql")

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
    ("deliveries", "matched_json"): '["author: Shane Legg"]',
    ("deliveries", "claimed_until"): None,
    ("deliveries", "claimed_by"): None,
    ("announcements", "paper_id"): "2411.17709",
    ("announcements", "announce_type"): "replace",
    ("announcements", "listing_date"): "2024-11-28",
    ("announcements", "categories"): "cs.LG stat.ML",
    ("publications", "paper_id"): "2411.17709",
    ("meta", "key"): "migration_test",
    ("subscription_query_keys", "kind"): "surname",
    ("subscription_query_keys", "key"): "legg",
    ("ratings", "liked"): 1,
    ("ratings", "paper_id"): "2411.17709",
    ("ranking_filtered", "reason"): "top_k",
}


def migration_files(engine: str, version: int) -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of `sql/<engine>/0001..version`."""
    found = sorted(
        (int(entry.name[:4]), entry.name, entry.read_text("utf-8"))
        for entry in SQL.joinpath(engine).iterdir()
        if entry.name.endswith(".sql")
    )
    assert [n for n, _, _ in found] == list(range(1, len(found) + 1))
    return [m for m in found if m[0] <= version]


def build_legacy_sqlite(path: Path, version: int) -> None:
    """A SQLite store at `version` as storage/db.py made it: one transaction per file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA page_size = 8192")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        for number, _name, script in migration_files("sqlite", version):
            conn.execute("BEGIN IMMEDIATE")
            for statement in split_sql(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
    finally:
        conn.close()


async def build_legacy_postgres(url: str, schema: str, version: int) -> None:
    """A PostgreSQL schema at `version` as storage/pg.py made it, `paperbell_schema` and all."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path = "{schema}"')
        async with conn.transaction():
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS paperbell_schema ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for number, name, script in migration_files("postgresql", version):
                async with conn.transaction():
                    await conn.execute(script)
                    await conn.execute(
                        "INSERT INTO paperbell_schema (version, name) VALUES ($1, $2)",
                        number,
                        name,
                    )
    finally:
        await conn.close()


def shared_tables(conn: sa.Connection) -> list[sa.Table]:
    """The live shared tables, reflected, parents before children."""
    names = [
        name
        for name in sa.inspect(conn).get_table_names()
        if name not in ENGINE_SPECIFIC_TABLES and name != "alembic_version"
    ]
    live = sa.MetaData()
    live.reflect(conn, only=names)
    graph = {
        name: {fk.column.table.name for fk in live.tables[name].foreign_keys} for name in names
    }
    return [live.tables[name] for name in TopologicalSorter(graph).static_order()]


def _plausible(table: str, column: sa.Column[Any]) -> Any:
    if (table, column.name) in PLAUSIBLE:
        return PLAUSIBLE[(table, column.name)]
    if column.name.endswith("_at") or column.name in TIME_COLUMNS:
        return WHEN
    if column.name.endswith("_json"):
        return "[]"
    if isinstance(column.type, sa.Integer):
        return 3
    if isinstance(column.type, sa.Float | sa.Numeric):
        return 1.5
    return f"{table} {column.name}"


def insert_plausible_rows(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    """One plausible row per shared table, foreign keys pointing at the parents' rows."""
    inserted: dict[str, dict[str, Any]] = {}
    for table in shared_tables(conn):
        references = {fk.parent.name: fk.column for fk in table.foreign_keys}
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.name in references:
                parent = references[column.name]
                row[column.name] = inserted[parent.table.name][parent.name]
            elif column.primary_key and isinstance(column.type, sa.Integer):
                row[column.name] = 1
            else:
                row[column.name] = _plausible(table.name, column)
        conn.execute(table.insert(), row)
        inserted[table.name] = row
    return inserted


def missing_rows(conn: sa.Connection, inserted: dict[str, dict[str, Any]]) -> list[str]:
    """Tables whose inserted row is gone (compared on the columns the table still has)."""
    live = {table.name: table for table in shared_tables(conn)}
    missing = []
    for name, row in inserted.items():
        table = live.get(name)
        if table is None:
            missing.append(f"{name} (table dropped)")
            continue
        kept = [table.c[key].is_not_distinct_from(value) for key, value in row.items()
                if key in table.c]  # fmt: skip
        found = conn.execute(sa.select(sa.func.count()).select_from(table).where(*kept))
        if found.scalar_one() != 1:
            missing.append(name)
    return missing
