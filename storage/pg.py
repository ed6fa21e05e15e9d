"""The PostgreSQL backend (asyncpg) behind the same interface as `storage.db.Database`.

Repositories are written once, in the SQL both engines share, against the
small connection API aiosqlite offers (`execute` returning a cursor with
`fetchall`/`fetchone`/`fetchmany`/`rowcount`, `executemany`). `PgConnection`
offers that API over an asyncpg connection and translates the few spellings
that differ: `?` placeholders become `$n`, `INSERT OR IGNORE` becomes
`ON CONFLICT DO NOTHING`, `temp.` becomes `pg_temp.`. Where the engines really
differ (full-text search, claiming outbox rows) the repositories branch on
`db.dialect`.

Migrations live in `storage/migrations/postgres/`, numbered like SQLite's, and
are applied under an advisory lock so several bot processes can start at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import asyncpg

from storage.db import Migration, StorageError, StorageUnavailableError

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_MIGRATION_LOCK = 0x70617065  # "pape": serialises migrations across processes
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def load_pg_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("storage.migrations.postgres").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.number)
    if [m.number for m in found] != list(range(1, len(found) + 1)):
        raise StorageError("PostgreSQL migrations are not numbered 1..N without gaps")
    return found


_PLACEHOLDER = re.compile(r"\?|'(?:[^']|'')*'")
_CROSS_JOIN_ON = re.compile(r"\bCROSS JOIN\b(?=[^()]*?\bON\b)", re.IGNORECASE)
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO", re.IGNORECASE)


def translate(sql: str) -> str:
    """SQLite spelling to PostgreSQL: placeholders, INSERT OR IGNORE, the temp schema."""
    counter = 0

    def number(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(0) != "?":
            return match.group(0)  # a string literal: leave any '?' inside alone
        counter += 1
        return f"${counter}"

    out = _PLACEHOLDER.sub(number, sql)
    # SQLite pins join order with CROSS JOIN ... ON; PostgreSQL spells that JOIN.
    out = _CROSS_JOIN_ON.sub("JOIN", out)
    if _INSERT_OR_IGNORE.match(out):
        out = _INSERT_OR_IGNORE.sub("INSERT INTO", out, count=1).rstrip().rstrip(";")
        out += " ON CONFLICT DO NOTHING"
    return out.replace("temp.", "pg_temp.")


def _returns_rows(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "WITH", "VALUES", "EXPLAIN") or " RETURNING " in sql.upper()


def _affected(status: str) -> int:
    """Row count from a command tag such as `INSERT 0 5` or `UPDATE 3`."""
    parts = status.split()
    return int(parts[-1]) if parts and parts[-1].isdigit() else -1


class PgCursor:
    """What `PgConnection.execute` returns: awaitable and an async context manager."""

    def __init__(self, conn: asyncpg.Connection, sql: str, params: Sequence[Any]) -> None:
        self._conn = conn
        self._sql = sql
        self._params = tuple(params)
        self._rows: list[asyncpg.Record] | None = None
        self._position = 0
        self.rowcount = -1

    async def _run(self) -> Self:
        if self._rows is None:
            if _returns_rows(self._sql):
                self._rows = list(await self._conn.fetch(self._sql, *self._params))
                self.rowcount = len(self._rows)
            else:
                status = await self._conn.execute(self._sql, *self._params)
                self._rows = []
                self.rowcount = _affected(status)
        return self

    def __await__(self) -> Any:
        return self._run().__await__()

    async def __aenter__(self) -> Self:
        return await self._run()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def fetchall(self) -> list[asyncpg.Record]:
        await self._run()
        assert self._rows is not None
        rows = self._rows[self._position :]
        self._position = len(self._rows)
        return rows

    async def fetchone(self) -> asyncpg.Record | None:
        await self._run()
        assert self._rows is not None
        if self._position >= len(self._rows):
            return None
        self._position += 1
        return self._rows[self._position - 1]

    async def fetchmany(self, size: int) -> list[asyncpg.Record]:
        await self._run()
        assert self._rows is not None
        rows = self._rows[self._position : self._position + size]
        self._position += len(rows)
        return rows


class PgConnection:
    """aiosqlite-shaped access to one asyncpg connection (inside a transaction or not)."""

    dialect = "postgres"

    def __init__(
        self, conn: asyncpg.Connection, parameter_types: dict[str, tuple[str, ...]] | None = None
    ) -> None:
        self.raw = conn
        # Statement -> its parameters' type names; shared by one database's connections.
        self._parameter_types = {} if parameter_types is None else parameter_types

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        return PgCursor(self.raw, translate(sql), params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        """Run `sql` once per row; `rowcount` is the total, like sqlite3's.

        A single-row `INSERT ... VALUES (?, ...)` is sent as one
        `INSERT ... SELECT ... FROM unnest(<one array per column>)`: one short
        statement and one round trip whatever the row count (a multi-row VALUES
        list costs a parse and plan of thousands of parameters per statement,
        and rewriting its placeholders in Python), and PostgreSQL reports the
        count. Anything else goes through asyncpg's pipelined executemany, which
        does not report counts, so its `rowcount` is -1.
        """
        batch = [tuple(row) for row in rows]
        cursor = PgCursor(self.raw, "", ())
        cursor._rows = []
        cursor.rowcount = 0
        if not batch:
            return cursor
        match = _SINGLE_VALUES.match(sql)
        # A multi-row upsert may not touch one row twice; keep those row by row.
        if match is None or "DO UPDATE" in sql.upper() or _has_placeholder(match.group(3)):
            await self.raw.executemany(translate(sql), batch)
            cursor.rowcount = -1
            return cursor
        if len(batch) == 1:
            status = await self.raw.execute(translate(sql), *batch[0])
            cursor.rowcount = max(_affected(status), 0)
            return cursor
        head, tuple_sql, tail = match.groups()
        types = await self._types_of(translate(sql))
        if not all(types):  # an array parameter: unnest would flatten it
            await self.raw.executemany(translate(sql), batch)
            cursor.rowcount = -1
            return cursor
        items = _TUPLE_ITEM.findall(tuple_sql)
        select: list[str] = []
        arrays: list[str] = []
        for item in items:
            if item != "?":
                select.append(item)
                continue
            arrays.append(f"${len(arrays) + 1}::{types[len(arrays)]}[]")
            select.append(f"u.c{len(arrays)}")
        names = ", ".join(f"c{i}" for i in range(1, len(arrays) + 1))
        statement = translate(
            f"{_VALUES_KEYWORD.sub('', head)} SELECT {', '.join(select)}"
            f" FROM unnest({', '.join(arrays)}) AS u({names}){tail}"
        )
        columns = [list(column) for column in zip(*batch, strict=True)]
        status = await self.raw.execute(statement, *columns)
        cursor.rowcount = max(_affected(status), 0)
        return cursor

    async def _types_of(self, statement: str) -> tuple[str, ...]:
        """Qualified type names of `statement`'s parameters ("" for an array type)."""
        known = self._parameter_types.get(statement)
        if known is None:
            prepared = await self.raw.prepare(statement)
            known = tuple(
                "" if t.kind == "array" else f'"{t.schema}"."{t.name}"'
                for t in prepared.get_parameters()
            )
            self._parameter_types[statement] = known
        return known


_SINGLE_VALUES = re.compile(
    r"^(\s*INSERT\s+(?:OR\s+IGNORE\s+)?INTO\s+[^()]+\([^()]*\)\s*VALUES\s*)"
    r"(\((?:\s*(?:\?|'[^']*'|NULL|[0-9]+)\s*,)*\s*(?:\?|'[^']*'|NULL|[0-9]+)\s*\))(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TUPLE_ITEM = re.compile(r"\?|'[^']*'|NULL|[0-9]+", re.IGNORECASE)
_VALUES_KEYWORD = re.compile(r"\s*VALUES\s*$", re.IGNORECASE)


def _has_placeholder(sql: str) -> bool:
    return any(m.group(0) == "?" for m in _PLACEHOLDER.finditer(sql))


class PgDatabase:
    """A PostgreSQL database with paperbell's schema, used exactly like `Database`."""

    dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool, url: str, schema: str | None) -> None:
        self.pool = pool
        self.url = url
        self.schema = schema
        self.path: Path | None = None
        self._parameter_types: dict[str, tuple[str, ...]] = {}

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, schema: str | None = None, pool_size: int = 5
    ) -> PgDatabase:
        """Connect to `url` (optionally inside `schema`, created if missing) and migrate."""
        # JIT compiling pays off for analytics, not for paperbell's short indexed queries.
        settings: dict[str, str] = {
            "application_name": "paperbell",
            "timezone": "UTC",
            "jit": "off",
        }
        if schema is not None:
            if not _IDENTIFIER.match(schema):
                raise StorageError(f"invalid schema name {schema[:40]!r}")
            settings["search_path"] = schema
        try:
            if schema is not None:
                conn = await asyncpg.connect(url)
                try:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                finally:
                    await conn.close()
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=pool_size, server_settings=settings
            )
        except (OSError, TimeoutError) as exc:
            # The server is down or not up yet: worth retrying, unlike a refused login.
            raise StorageUnavailableError(
                f"cannot reach PostgreSQL at {_host_of(url)}: {_describe(exc)}"
            ) from exc
        except (asyncpg.PostgresError, ValueError) as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {_describe(exc)}") from exc
        db = cls(pool, url, schema)
        try:
            if migrate:
                await db.migrate()
        except BaseException:
            await pool.close()
            raise
        return db

    async def close(self) -> None:
        await self.pool.close()

    async def schema_version(self) -> int:
        exists = await self.pool.fetchval("SELECT to_regclass('paperbell_schema') IS NOT NULL")
        if not exists:
            return 0
        return int(
            await self.pool.fetchval("SELECT coalesce(max(version), 0) FROM paperbell_schema")
        )

    async def migrate(self, target: int | None = None) -> list[str]:
        applied: list[str] = []
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS paperbell_schema ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM paperbell_schema")
            for migration in load_pg_migrations():
                if migration.number <= current or (
                    target is not None and migration.number > target
                ):
                    continue
                async with conn.transaction():  # a savepoint: one migration, all or nothing
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO paperbell_schema (version, name) VALUES ($1, $2)",
                        migration.number,
                        migration.name,
                    )
                log.info("applied migration %s (postgres)", migration.name)
                applied.append(migration.name)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield PgConnection(conn, self._parameter_types)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        return list(await self.pool.fetch(translate(sql), *params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.pool.fetchrow(translate(sql), *params)
        return row

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.pool.execute(translate(sql), *params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def database_bytes(self) -> int:
        row = await self.pool.fetchrow("SELECT pg_database_size(current_database())")
        return int(row[0]) if row else 0


def _host_of(url: str) -> str:
    """host:port of a connection URL, never its credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        return f"{host}:{parts.port or 5432}"
    except ValueError:
        return "the configured host"


def _describe(exc: BaseException) -> str:
    """An error message without the connection URL (it may hold a password)."""
    text = str(exc) or type(exc).__name__
    return re.sub(r"postgres(?:ql)?://\S+", "postgresql://…", text)[:200]
