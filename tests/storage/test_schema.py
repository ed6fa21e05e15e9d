"""storage.schema's metadata against the schema the migrations really build.

A store is opened (and so migrated) the way paperbell opens it, then Alembic's
autogenerate compares the live database with `metadata`, types and server defaults
included. Only the engine-specific objects storage.schema lists may differ, plus a few
things SQLite reflection cannot express; each of those is checked another way here.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from bot.domain.timestamps import to_timestamp
from storage.backend import open_database
from storage.pg import PgDatabase
from storage.schema import (
    ENGINE_SPECIFIC_INDEXES,
    ENGINE_SPECIFIC_TABLES,
    SQLITE_ONLY_INDEXES,
    UtcTimestamp,
    metadata,
)
from tests.backends import needs_postgres, open_test_database, require_postgres

OPTIONS = {"compare_type": True, "compare_server_default": True}


def _include(dialect: str) -> Any:
    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table" and name in ENGINE_SPECIFIC_TABLES:
            return False
        if type_ == "index" and name in ENGINE_SPECIFIC_INDEXES:
            return False
        return not (dialect == "postgresql" and type_ == "index" and name in SQLITE_ONLY_INDEXES)

    return include_object


def _diff(conn: sa.Connection, target: sa.MetaData) -> list[tuple[Any, ...]]:
    """Alembic's differences, modify_* groups flattened to single operations."""
    opts = {**OPTIONS, "include_object": _include(conn.dialect.name)}
    ops: list[tuple[Any, ...]] = []
    for item in compare_metadata(MigrationContext.configure(conn, opts=opts), target):
        ops.extend(item if isinstance(item, list) else [item])
    return ops + _index_definition_differences(conn, target)


def _normalized(sql: str) -> str:
    return re.sub(r"::\w+|[\s()\"]", "", sql).lower()


def _index_definition_differences(
    conn: sa.Connection, target: sa.MetaData
) -> list[tuple[Any, ...]]:
    """What Alembic does not compare: partial indexes' WHERE and, on SQLite, DESC.

    SQLite keeps each index's CREATE statement, compared whole with the metadata's;
    PostgreSQL's reflected predicate is compared with the metadata's. Missing or extra
    indexes are Alembic's to report.
    """
    dialect = conn.dialect
    literal = {"literal_binds": True}
    live: dict[str, str] = {}
    if dialect.name == "sqlite":
        rows = conn.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
        live = {str(name): str(sql) for name, sql in rows}
    else:
        inspector = sa.inspect(conn)
        for name in target.tables:
            for reflected in inspector.get_indexes(name):
                where = reflected.get("dialect_options", {}).get("postgresql_where")
                live[str(reflected["name"])] = "" if where is None else str(where)
    differences: list[tuple[Any, ...]] = []
    for table in target.tables.values():
        for index in table.indexes:
            if index.name not in live:
                continue
            expected = str(CreateIndex(index).compile(dialect=dialect, compile_kwargs=literal))
            if dialect.name != "sqlite":  # the predicate only
                expected = expected.partition(" WHERE ")[2]
            if _normalized(live[str(index.name)]) != _normalized(expected):
                differences.append(
                    ("index_definition", index.name, live[str(index.name)], expected)
                )
    return differences


def _fk_key(fk: sa.ForeignKeyConstraint) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    return (
        fk.parent.name,
        tuple(c.name for c in fk.columns),
        fk.referred_table.name,
        tuple(e.column.name for e in fk.elements),
    )


def _without_sqlite_reflection_gaps(
    ops: list[tuple[Any, ...]], path: Path, target: sa.MetaData
) -> list[tuple[Any, ...]]:
    """Drop what SQLite reflection cannot show, after checking it another way.

    - `REFERENCES t (c) ON DELETE CASCADE` written on the column: SQLAlchemy reads
      ON DELETE only from table-level FOREIGN KEY clauses, so it reflects no ondelete;
      every key and its action is checked against PRAGMA foreign_key_list instead.
    - Unique constraints are unnamed in SQLite (metadata carries PostgreSQL's names):
      the same column lists must be among the live ones.
    - Identity(): SQLite's INTEGER PRIMARY KEY (the rowid alias) is its identity.
    - WITHOUT ROWID is a table option Alembic skips: compared here.
    - A PRIMARY KEY column without NOT NULL is reported nullable by SQLite (legacy: only
      INTEGER PRIMARY KEY really refuses NULL); the migrations rely on PRIMARY KEY.
    """
    # WITHOUT ROWID tables (Alembic does not compare table options).
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        inspector = sa.inspect(engine)
        with_rowid = {
            name: inspector.get_table_options(name).get("sqlite_with_rowid", True)
            for name in target.tables
        }
    finally:
        engine.dispose()
    assert with_rowid == {
        name: table.dialect_options["sqlite"]["with_rowid"] for name, table in target.tables.items()
    }
    raw = sqlite3.connect(path)
    try:
        live_fks = {
            (table, row[3], row[2], row[4], row[6])
            for table in target.tables
            for row in raw.execute(f'PRAGMA foreign_key_list("{table}")')
        }
        uniques: dict[str, set[tuple[str, ...]]] = {}
        for table in target.tables:
            uniques[table] = set()
            for idx in raw.execute(f'PRAGMA index_list("{table}")').fetchall():
                if idx[3] == "u":  # created by a UNIQUE constraint
                    cols = raw.execute(f'PRAGMA index_info("{idx[1]}")').fetchall()
                    uniques[table].add(tuple(c[2] for c in sorted(cols)))
    finally:
        raw.close()
    # Every foreign key with its ON DELETE action, as SQLite itself reports them.
    assert live_fks == {
        (
            table.name,
            fk.parent.name,
            fk.column.table.name,
            fk.column.name,
            (fk.ondelete or "NO ACTION").upper(),
        )
        for table in target.tables.values()
        for fk in table.foreign_keys
    }

    # A remove_fk/add_fk pair of one key differs only in the reflected ondelete.
    removed = {_fk_key(op[1]) for op in ops if op[0] == "remove_fk"}
    added = {_fk_key(op[1]) for op in ops if op[0] == "add_fk"}

    def explained(op: tuple[Any, ...]) -> bool:
        kind = op[0]
        if kind in ("remove_fk", "add_fk"):
            return _fk_key(op[1]) in removed & added
        if kind == "add_constraint" and isinstance(op[1], sa.UniqueConstraint):
            return tuple(c.name for c in op[1].columns) in uniques[op[1].table.name]
        if kind == "modify_default" and isinstance(op[-1], sa.Identity):
            column = target.tables[op[2]].c[op[3]]
            return bool(column.primary_key) and len(column.table.primary_key.columns) == 1
        if kind == "modify_nullable" and op[-2] is True and op[-1] is False:
            return bool(target.tables[op[2]].c[op[3]].primary_key)
        return False

    kept = [op for op in ops if not explained(op)]
    # Unique constraints both ways: the same column lists, none more, none fewer.
    assert uniques == {
        table.name: {
            tuple(c.name for c in uc.columns)
            for uc in table.constraints
            if isinstance(uc, sa.UniqueConstraint)
        }
        for table in target.tables.values()
    }
    return kept


def _copy_with_extra_column() -> sa.MetaData:
    """`metadata` plus one column no migration made: the comparison must notice it."""
    copy = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    copy.tables["meta"].append_column(sa.Column("not_migrated", sa.Text))
    return copy


async def _sqlite_diff(tmp_path: Path, target: sa.MetaData) -> list[tuple[Any, ...]]:
    path = tmp_path / "paperbell.sqlite3"
    db = await open_database(path)
    await db.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            ops = _diff(conn, target)
    finally:
        engine.dispose()
    return _without_sqlite_reflection_gaps(ops, path, target)


async def _postgres_diff(tmp_path: Path, target: sa.MetaData) -> list[tuple[Any, ...]]:
    url = require_postgres().replace("postgresql://", "postgresql+asyncpg://", 1)
    url = url.replace("postgres://", "postgresql+asyncpg://", 1)
    # open_database() has no schema argument; the test helper opens the same PgDatabase
    # (migrated) in a schema of its own, and the engine looks only there.
    async with open_test_database("postgres", tmp_path) as db:
        assert isinstance(db, PgDatabase) and db.schema is not None
        engine = create_async_engine(
            url, connect_args={"server_settings": {"search_path": db.schema}}
        )
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(sa.text("SELECT current_schema()")) == db.schema
                return await conn.run_sync(_diff, target)
        finally:
            await engine.dispose()


async def test_sqlite_schema_matches_metadata(tmp_path: Path) -> None:
    assert await _sqlite_diff(tmp_path, metadata) == []


@needs_postgres
async def test_postgres_schema_matches_metadata(tmp_path: Path) -> None:
    assert await _postgres_diff(tmp_path, metadata) == []


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=needs_postgres)])
async def test_comparison_notices_a_column_no_migration_made(tmp_path: Path, kind: str) -> None:
    compare = _sqlite_diff if kind == "sqlite" else _postgres_diff
    ops = await compare(tmp_path, _copy_with_extra_column())
    assert len(ops) == 1, ops
    assert ops[0][:3] == ("add_column", None, "meta") and ops[0][3].name == "not_migrated"


def test_every_shared_table_is_in_metadata() -> None:
    assert set(metadata.tables) == {
        "announcements",
        "arxiv_lookups",
        "authors",
        "deliveries",
        "destinations",
        "feed_state",
        "harvest_state",
        "meta",
        "paper_authors",
        "paper_categories",
        "papers",
        "publications",
        "ranking_filtered",
        "ranking_tuning",
        "ratings",
        "subscription_query_keys",
        "subscriptions",
    }
    assert not set(metadata.tables) & ENGINE_SPECIFIC_TABLES


def test_ddl_lets_the_store_assign_paper_and_author_keys() -> None:
    """Keys the store assigns get no generator; outbox-style ids are identities.

    (Alembic ignores a SERIAL that metadata would add, so this is checked on the DDL.)
    """
    pg = postgresql.dialect()
    lite = sqlite.dialect()
    for name in ("papers", "authors"):
        ddl = str(CreateTable(metadata.tables[name]).compile(dialect=pg))
        assert "SERIAL" not in ddl and "IDENTITY" not in ddl, ddl
    for name in ("destinations", "subscriptions", "deliveries", "announcements"):
        ddl = str(CreateTable(metadata.tables[name]).compile(dialect=pg))
        assert "id BIGINT GENERATED BY DEFAULT AS IDENTITY" in ddl, ddl
        # SQLite: INTEGER (not BIGINT) so the key is the rowid alias.
        assert "id INTEGER NOT NULL" in str(
            CreateTable(metadata.tables[name]).compile(dialect=lite)
        )


def test_utc_timestamp_stores_the_one_codec_form_and_reads_aware_utc() -> None:
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("at", UtcTimestamp), sa.Column("raw", sa.Text))
    eastern = timezone(timedelta(hours=-5))
    when = datetime(2024, 11, 28, 0, 0, 1, tzinfo=eastern)
    try:
        with engine.begin() as conn:
            table.create(conn)
            conn.execute(table.insert().values(at=when))
            conn.execute(table.insert().values(at=None))
            stored: str = conn.execute(
                sa.text("SELECT at FROM t WHERE at IS NOT NULL")
            ).scalar_one()
            assert stored == "2024-11-28T05:00:01.000000+00:00" == to_timestamp(when)
            # Older rows without microseconds or offset read as UTC.
            conn.execute(sa.text("INSERT INTO t (at) VALUES ('2024-11-28T05:00:00')"))
            values: list[datetime | None] = list(
                conn.execute(sa.select(table.c.at).order_by(table.c.at)).scalars()
            )
            assert values == [
                None,
                datetime(2024, 11, 28, 5, 0, tzinfo=UTC),
                when,
            ]
            assert all(v is None or v.tzinfo is not None for v in values)
            # Bound comparisons go through the same codec.
            later = conn.execute(
                sa.select(sa.func.count()).where(table.c.at > when - timedelta(seconds=1))
            ).scalar_one()
            assert later == 1
            with pytest.raises(sa.exc.StatementError, match="naive datetime"):
                conn.execute(table.insert().values(at=datetime(2024, 11, 28, 5, 0)))  # noqa: DTZ001
    finally:
        engine.dispose()
