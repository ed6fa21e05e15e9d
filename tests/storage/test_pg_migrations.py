"""PostgreSQL migrations: numbered like SQLite's; every earlier version upgrades with its data."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.db import load_migrations
from storage.pg import PgDatabase, load_pg_migrations, translate
from tests.backends import needs_postgres, open_test_database


def test_both_backends_have_the_same_migration_numbers() -> None:
    """Each SQLite migration has its PostgreSQL twin with the same number and name."""
    assert [m.name for m in load_pg_migrations()] == [m.name for m in load_migrations()]


@needs_postgres
@pytest.mark.parametrize("version", [m.number for m in load_pg_migrations()])
async def test_every_version_upgrades_with_its_data(tmp_path: Path, version: int) -> None:
    """A schema migrated only to `version`, holding a paper, upgrades to the latest and keeps it."""
    async with open_test_database("postgres", tmp_path, migrate=False) as db:
        assert isinstance(db, PgDatabase)
        assert await db.migrate(target=version)
        assert await db.schema_version() == version
        # 0007 dropped authors_text.
        text_column, text_value = (", authors_text", ", 'X Y'") if version < 7 else ("", "")
        await db.execute(
            f"INSERT INTO papers (rowid, id, version, title, abstract, authors_json{text_column},"
            " primary_category, categories, first_seen)"
            f" VALUES (1, '2411.00001', 1, 'T', 'A', '[\"X Y\"]'{text_value}, 'cs.LG', 'cs.LG',"
            " '2024')"
        )
        await db.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        await db.migrate()
        assert await db.schema_version() == len(load_pg_migrations())
        row = await db.fetchone("SELECT title FROM papers WHERE id = ?", ("2411.00001",))
        assert row is not None and row[0] == "T"
        assert await db.migrate() == []


def test_translation_of_sqlite_spellings() -> None:
    """Placeholders, INSERT OR IGNORE, temp. and CROSS JOIN ... ON become PostgreSQL's."""
    assert translate("SELECT * FROM t WHERE a = ? AND b = '?' AND c = ?") == (
        "SELECT * FROM t WHERE a = $1 AND b = '?' AND c = $2"
    )
    assert translate("INSERT OR IGNORE INTO temp.k (a) VALUES (?)") == (
        "INSERT INTO pg_temp.k (a) VALUES ($1) ON CONFLICT DO NOTHING"
    )
    assert translate("SELECT 1 FROM a CROSS JOIN b ON b.x = a.x") == (
        "SELECT 1 FROM a JOIN b ON b.x = a.x"
    )
