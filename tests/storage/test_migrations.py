"""The schema history (Alembic) on both engines: fresh stores, and stores from before Alembic.

A store an older paperbell built (tests/storage/legacy.py applies the old SQL files
with the driver alone, as storage/db.py and storage/pg.py did) is stamped at its
version and brought to the newest revision by `open_database`, its data intact;
afterwards its schema is the one a fresh store gets. Migrating again changes
nothing; a failing revision leaves the store exactly as it was.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from storage.backend import open_database, open_for_reading
from storage.migrate import latest_revision, revision_names
from storage.papers import PaperRepository
from storage.store import StorageError, Store
from tests.backends import POSTGRES, require_postgres
from tests.storage.legacy import (
    build_legacy_postgres,
    build_legacy_sqlite,
    insert_plausible_rows,
    missing_rows,
)

LATEST = latest_revision()
LAST_BEFORE_ALEMBIC = 9  # the last version an older paperbell could have left
KINDS = ["sqlite", POSTGRES]


class Location:
    """Where a test store lives: a SQLite file, or a PostgreSQL schema (dropped after)."""

    def __init__(self, kind: str, tmp_path: Path, name: str = "paperbell") -> None:
        self.kind = kind
        if kind == "sqlite":
            self.path = tmp_path / f"{name}.sqlite3"
            self.where = str(self.path)
        else:
            self.url = require_postgres()
            self.schema = f"pbmig_{uuid.uuid4().hex[:12]}"
            separator = "&" if "?" in self.url else "?"
            # The way deployments name their schema: asyncpg sends it as a setting.
            self.where = f"{self.url}{separator}search_path={self.schema}"

    async def build_legacy(self, version: int) -> None:
        if self.kind == "sqlite":
            build_legacy_sqlite(self.path, version)
        else:
            await build_legacy_postgres(self.url, self.schema, version)

    async def create_schema(self) -> None:
        if self.kind != "sqlite":
            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            finally:
                await conn.close()

    async def drop(self) -> None:
        if self.kind != "sqlite":
            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await conn.close()


@asynccontextmanager
async def location(kind: str, tmp_path: Path, name: str = "paperbell") -> AsyncIterator[Location]:
    where = Location(kind, tmp_path, name)
    try:
        yield where
    finally:
        await where.drop()


@asynccontextmanager
async def opened(where: Location, **kwargs: Any) -> AsyncIterator[Store]:
    store = await open_database(where.where, **kwargs)
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def store_at(kind: str, tmp_path: Path, revision: int) -> AsyncIterator[Store]:
    """A new store of `kind` brought to `revision` and no further (to test the next one)."""
    async with location(kind, tmp_path) as where:
        await where.create_schema()
        async with opened(where, migrate=False) as store:
            await store.migrate(target=revision)
            yield store


def _live_schema(conn: sa.Connection) -> set[tuple[str, ...]]:
    """Every table, column, index, trigger and constraint as the database describes it."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master"
            " WHERE name NOT LIKE 'sqlite_stat%'"
        )
        return {tuple(str(v) for v in row) for row in rows}
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    queries = [
        "SELECT 'column', table_name, column_name, data_type, is_nullable,"
        " coalesce(column_default, '') FROM information_schema.columns"
        " WHERE table_schema = current_schema()",
        "SELECT 'index', tablename, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = current_schema()",
        "SELECT 'constraint', c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname = current_schema()",
    ]
    found: set[tuple[str, ...]] = set()
    for query in queries:
        for row in conn.exec_driver_sql(query):
            # Index definitions name the schema, which differs from store to store.
            found.add(tuple(str(v).replace(f"{schema}.", "") for v in row))
    return found


def _without_legacy_bookkeeping(schema: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    return {item for item in schema if "paperbell_schema" not in item[1]}


async def _live(store: Store) -> set[tuple[str, ...]]:
    async with store.reading() as conn:
        return await conn.run_sync(_live_schema)


async def _bookkeeping(where: Location) -> tuple[str | None, int]:
    """(Alembic's revision or None, the pre-Alembic version), read with the driver alone."""
    if where.kind == "sqlite":
        conn = sqlite3.connect(where.path)
        try:
            legacy = int(conn.execute("PRAGMA user_version").fetchone()[0])
            has = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
            ).fetchone()[0]
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            return (str(revision) if has else None), legacy
        except sqlite3.OperationalError:
            return None, legacy
        finally:
            conn.close()
    pg = await asyncpg.connect(where.url, server_settings={"search_path": where.schema})
    try:
        revision = None
        if await pg.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            revision = await pg.fetchval("SELECT version_num FROM alembic_version")
        legacy = 0
        if await pg.fetchval("SELECT to_regclass('paperbell_schema') IS NOT NULL"):
            legacy = await pg.fetchval("SELECT coalesce(max(version), 0) FROM paperbell_schema")
        return revision, int(legacy)
    finally:
        await pg.close()


async def _insert_rows(where: Location) -> dict[str, dict[str, Any]]:
    async with opened(where, migrate=False) as store, store.transaction() as conn:
        inserted: dict[str, dict[str, Any]] = await conn.run_sync(insert_plausible_rows)
        return inserted


async def _missing(store: Store, inserted: dict[str, dict[str, Any]]) -> list[str]:
    async with store.reading() as conn:
        missing: list[str] = await conn.run_sync(missing_rows, inserted)
        return missing


async def _fresh_schema(kind: str, tmp_path: Path) -> set[tuple[str, ...]]:
    async with location(kind, tmp_path, "fresh") as fresh:
        await fresh.create_schema()
        async with opened(fresh) as store:
            return await _live(store)


@pytest.mark.parametrize("kind", KINDS)
async def test_fresh_store_reaches_the_newest_revision(tmp_path: Path, kind: str) -> None:
    async with location(kind, tmp_path) as where:
        await where.create_schema()
        async with opened(where, migrate=False) as store:
            assert await store.schema_version() == 0
            applied = await store.migrate()
            assert applied == [revision_names()[n] for n in range(1, LATEST + 1)]
            assert applied[0] == "0001_initial"
            assert await store.schema_version() == LATEST
        revision, legacy = await _bookkeeping(where)
        assert revision == f"{LATEST:04d}"
        # SQLite keeps user_version in step; PostgreSQL gets no paperbell_schema table.
        assert legacy == (LATEST if kind == "sqlite" else 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", range(1, LAST_BEFORE_ALEMBIC + 1))
async def test_store_from_before_alembic_upgrades_with_its_data(
    tmp_path: Path, kind: str, version: int
) -> None:
    """A store an older paperbell left at `version`, holding a row in every table, is stamped
    and upgraded by open_database; every row is still there and the schema is a fresh one's."""
    async with location(kind, tmp_path) as where:
        await where.build_legacy(version)
        inserted = await _insert_rows(where)
        assert {"papers", "subscriptions", "deliveries", "destinations"} <= set(inserted)
        assert await _bookkeeping(where) == (None, version)

        async with opened(where, migrate=False) as store:
            assert await store.schema_version() == version  # read from the old bookkeeping
            assert await store.migrate() == [
                revision_names()[n] for n in range(version + 1, LATEST + 1)
            ]
            assert await store.schema_version() == LATEST
            assert await _missing(store, inserted) == []
            upgraded = await _live(store)
        # Stamped, and the old bookkeeping kept in step for an older paperbell.
        assert await _bookkeeping(where) == (f"{LATEST:04d}", LATEST)

        async with opened(where) as store:  # as the bot opens it: nothing left to do
            assert await store.migrate() == []
            assert await _live(store) == upgraded
    assert _without_legacy_bookkeeping(upgraded) == await _fresh_schema(kind, tmp_path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", range(1, LATEST))
async def test_store_at_each_revision_upgrades_with_its_data(
    tmp_path: Path, kind: str, version: int
) -> None:
    """A store Alembic left at `version` upgrades to the newest with every row."""
    async with location(kind, tmp_path) as where:
        await where.create_schema()
        async with opened(where, migrate=False) as store:
            assert len(await store.migrate(target=version)) == version
            assert await store.schema_version() == version
        inserted = await _insert_rows(where)
        async with opened(where) as store:
            assert await store.schema_version() == LATEST
            assert await _missing(store, inserted) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_migrating_twice_changes_nothing(tmp_path: Path, kind: str) -> None:
    async with location(kind, tmp_path) as where:
        await where.create_schema()
        async with opened(where) as store:
            before = await _live(store)
            assert await store.migrate() == []
            assert await store.migrate() == []
            assert await _live(store) == before
            assert await store.schema_version() == LATEST
        async with opened(where) as store:
            assert await _live(store) == before


@pytest.mark.parametrize("kind", KINDS)
async def test_failing_revision_leaves_the_store_as_it_was(tmp_path: Path, kind: str) -> None:
    """0008 cannot create `ratings` where a table of that name exists: after 0005-0007 ran,
    the upgrade fails and everything, the stamp included, is rolled back."""
    async with location(kind, tmp_path) as where:
        await where.build_legacy(4)
        inserted = await _insert_rows(where)
        async with opened(where, migrate=False) as store:
            await store.execute(sa.text("CREATE TABLE ratings (x INTEGER)"))
            before = await _live(store)

        with pytest.raises(StorageError, match="ratings") as failed:
            await open_database(where.where)
        assert "postgresql://" not in str(failed.value)  # the URL may hold a password

        async with opened(where, migrate=False) as store:
            assert await _live(store) == before
            assert await store.schema_version() == 4
            assert await _missing(store, inserted) == []
            await store.execute(sa.text("DROP TABLE ratings"))
        assert await _bookkeeping(where) == (None, 4)

        async with opened(where) as store:  # the obstacle gone, the same upgrade succeeds
            assert await store.schema_version() == LATEST
            assert await _missing(store, inserted) == []


async def test_read_commands_neither_stamp_nor_upgrade(tmp_path: Path) -> None:
    """open_for_reading on an older store says what to run and writes nothing, also on a
    store from before Alembic at its last version (0010 came after)."""
    async with location("sqlite", tmp_path) as where:
        await where.build_legacy(4)
        with pytest.raises(StorageError, match=r"schema version 4, this paperbell needs \d+"):
            await open_for_reading(where.where, shown="the store")
        assert await _bookkeeping(where) == (None, 4)
    async with location("sqlite", tmp_path, "newest") as where:
        await where.build_legacy(LAST_BEFORE_ALEMBIC)
        with pytest.raises(StorageError, match=rf"version {LAST_BEFORE_ALEMBIC}, this paperbell"):
            await open_for_reading(where.where, shown="the store")
        assert await _bookkeeping(where) == (None, LAST_BEFORE_ALEMBIC)


async def test_newer_schema_from_before_alembic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    build_legacy_sqlite(path, LATEST)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 3}")
    with pytest.raises(StorageError, match=f"schema version {LATEST + 3}, newer than"):
        await open_database(path)
    with pytest.raises(StorageError, match="newer than this paperbell knows"):
        await open_for_reading(path, shown=str(path))


def test_each_revision_runs_its_engines_sql() -> None:
    """Revisions are numbered 1..N, each after the one before; each of the revisions from
    before Alembic has its SQL for both engines, under the same name."""
    names = revision_names()
    assert sorted(names) == list(range(1, LATEST + 1))
    versions = resources.files("storage.migrations").joinpath("versions")
    for number, name in names.items():
        source = versions.joinpath(f"{name}.py").read_text("utf-8")
        assert re.search(rf'^revision = "{number:04d}"$', source, re.MULTILINE)
        before = f'"{number - 1:04d}"' if number > 1 else "None"
        assert re.search(rf"^down_revision = {before}$", source, re.MULTILINE)
        if f'run_engine_sql("{name}")' in source:
            for engine in ("sqlite", "postgresql"):
                sql = resources.files("storage.migrations").joinpath("sql", engine, f"{name}.sql")
                assert sql.is_file(), sql
    assert LATEST >= 9


@pytest.mark.parametrize("kind", KINDS)
async def test_upgraded_paper_is_found_through_the_repository(tmp_path: Path, kind: str) -> None:
    """A paper an older paperbell stored at 0004 is read, searched (SQLite: the index 0003
    and 0007 rebuilt) and listed by author after the upgrade."""
    async with location(kind, tmp_path) as where:
        await where.build_legacy(4)
        await _insert_rows(where)
        async with opened(where) as store:
            repo = PaperRepository(store)
            paper = await repo.get("2411.17709")
            assert paper is not None and paper.authors == ("Shane Legg", "Pedro A. Ortega")
            assert [p.id for p in (await repo.by_author("legg s")).papers] == ["2411.17709"]
            if kind == "sqlite":  # PostgreSQL's search rows are the store's to write
                hits = await repo.search("grokking stability")
                assert [h.paper.id for h in hits] == ["2411.17709"]


@pytest.mark.parametrize("kind", KINDS)
async def test_old_short_timestamps_are_padded_to_the_fixed_width(
    tmp_path: Path, kind: str
) -> None:
    """0010: an instant written by `isoformat()` without microseconds (older paperbell)
    gets them, so it compares as text with the fixed-width form at the same instant."""
    short = "2026-11-29T05:00:00+00:00"
    exact = "2026-11-29T05:00:00.123456+00:00"
    async with store_at(kind, tmp_path, 9) as store:
        async with store.transaction() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO feed_state (url, last_success, last_attempt)"
                    " VALUES ('short', :short, NULL), ('exact', :exact, :short)"
                ),
                {"short": short, "exact": exact},
            )
        assert await store.migrate(target=10) == [revision_names()[10]]
        rows = await store.fetchall(
            sa.text("SELECT url, last_success, last_attempt FROM feed_state ORDER BY url")
        )
    padded = "2026-11-29T05:00:00.000000+00:00"
    assert [tuple(row) for row in rows] == [("exact", exact, padded), ("short", padded, None)]


@pytest.mark.parametrize("kind", KINDS)
async def test_stored_keyword_subscriptions_join_the_token_index(tmp_path: Path, kind: str) -> None:
    """0011: keyword subscriptions stored before it get their `token` index row; one that
    has it already is not doubled, and a query's own rows and other kinds are left alone."""
    async with store_at(kind, tmp_path, 10) as store:
        async with store.transaction() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO destinations (id, kind, target_id, guild_id, digest)"
                    " VALUES (1, 'channel', 100, 1, 0)"
                )
            )
            for sub_id, sub_kind, key in (
                (1, "keyword", "grokking"),
                (2, "author", "legg"),
                (3, "query", "ti:grokking"),
                (4, "keyword", "positional"),
            ):
                await conn.execute(
                    sa.text(
                        "INSERT INTO subscriptions (id, destination_id, kind, value,"
                        " match_key, given_key, include_cross, include_replacements,"
                        " created_by, created_at) VALUES (:id, 1, :kind, :key, :key, '',"
                        " 1, 0, 7, '2026-11-29T05:00:00.000000+00:00')"
                    ),
                    {"id": sub_id, "kind": sub_kind, "key": key},
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO subscription_query_keys (subscription_id, kind, key)"
                    " VALUES (3, 'token', 'grokking'), (4, 'token', 'positional')"
                )
            )
        assert await store.migrate() == [revision_names()[11]]
        query = "SELECT subscription_id, kind, key FROM subscription_query_keys ORDER BY 1"
        rows = [tuple(row) for row in await store.fetchall(sa.text(query))]
    assert rows == [(1, "token", "grokking"), (3, "token", "grokking"), (4, "token", "positional")]


def test_revision_files_agree_with_alembics_chain() -> None:
    """The names read from the files (what an up-to-date open uses, without Alembic) are
    Alembic's own chain: one head, each revision after the one before."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("storage").joinpath("migrations"))
    )
    script = ScriptDirectory.from_config(config)
    chain = {int(rev.revision): Path(rev.path).stem for rev in script.walk_revisions() if rev.path}
    assert revision_names() == chain
    assert script.get_current_head() == f"{latest_revision():04d}"
    for number in chain:
        down = script.get_revision(f"{number:04d}").down_revision
        assert down == (None if number == 1 else f"{number - 1:04d}")
