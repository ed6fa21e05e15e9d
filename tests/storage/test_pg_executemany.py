"""PgConnection.executemany: many-row INSERTs in one statement, counted like sqlite3 counts them."""

from __future__ import annotations

from pathlib import Path

from storage.pg import PgDatabase
from tests.backends import needs_postgres, open_test_database

pytestmark = needs_postgres  # every test here runs against PostgreSQL

_TABLE = (
    "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, note TEXT,"
    " state TEXT NOT NULL, size INTEGER, tags TEXT[])"
)


async def test_many_rows_with_literals_nulls_and_conflicts(tmp_path: Path) -> None:
    """Literals in the tuple stay literal, NULLs go in, and only the new rows are counted."""
    async with open_test_database("postgres", tmp_path) as db:
        assert isinstance(db, PgDatabase)
        await db.execute(_TABLE)
        sql = (
            "INSERT INTO items (id, name, note, state, size) VALUES (?, ?, ?, 'new?', 7)"
            " ON CONFLICT (id) DO NOTHING"
        )
        async with db.transaction() as conn:
            first = await conn.executemany(sql, [(i, f"n{i}", None) for i in range(1, 2_501)])
            again = await conn.executemany(sql, [(i, "other", "x") for i in range(2_400, 2_601)])
        assert (first.rowcount, again.rowcount) == (2_500, 100)
        rows = await db.fetchall("SELECT id, name, note, state, size FROM items ORDER BY id")
        assert len(rows) == 2_600
        assert tuple(rows[0]) == (1, "n1", None, "new?", 7)
        assert tuple(rows[2_499]) == (2_500, "n2500", None, "new?", 7)
        assert tuple(rows[2_500]) == (2_501, "other", "x", "new?", 7)


async def test_insert_or_ignore_into_a_temp_table(tmp_path: Path) -> None:
    """SQLite's `INSERT OR IGNORE INTO temp.t` skips duplicates (within the batch too)."""
    async with open_test_database("postgres", tmp_path) as db:
        async with db.transaction() as conn:
            await conn.execute("CREATE TEMP TABLE k (kind TEXT, key TEXT, PRIMARY KEY (kind, key))")
            cursor = await conn.executemany(
                "INSERT OR IGNORE INTO temp.k (kind, key) VALUES (?, ?)",
                [("a", "x"), ("a", "y"), ("a", "x"), ("b", "x")],
            )
            async with conn.execute("SELECT kind, key FROM temp.k ORDER BY kind, key") as rows:
                stored = [tuple(r) for r in await rows.fetchall()]
        assert cursor.rowcount == 3
        assert stored == [("a", "x"), ("a", "y"), ("b", "x")]


async def test_array_columns_keep_their_arrays(tmp_path: Path) -> None:
    """A row's array value is stored as that array, not spread over rows."""
    async with open_test_database("postgres", tmp_path) as db:
        await db.execute(_TABLE)
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO items (id, name, state, tags) VALUES (?, ?, 'new', ?)",
                [(1, "a", ["x", "y"]), (2, "b", [])],
            )
        rows = await db.fetchall("SELECT id, tags FROM items ORDER BY id")
        assert [(r[0], list(r[1])) for r in rows] == [(1, ["x", "y"]), (2, [])]
