"""The store: paperbell's database behind SQLAlchemy Core's async engine, either engine.

Repositories are written once, in SQLAlchemy Core against the typed tables of
`storage.schema`; SQLAlchemy compiles each statement for SQLite (aiosqlite) or
PostgreSQL (asyncpg). Where the engines really differ (full-text search,
claiming outbox rows, leader locks) a small interface has one implementation
per engine, chosen once from `Store.dialect`.

Writers go through `transaction()`: on SQLite it serialises them with an
asyncio lock and opens `BEGIN IMMEDIATE`, so a batch is stored whole or not at
all; on PostgreSQL it is a plain transaction from the pool. Reads outside a
transaction use `fetchall`/`fetchone`/`scalar`, which on SQLite go to a
separate read-only connection: sharing the writer would let them see another
coroutine's uncommitted (maybe rolled back) rows. A task that holds `reading()`
and calls `fetchall` (or `reading()` again) gets the connection it holds, so
nested reads cannot wait for themselves on SQLite's one reader connection.

SQLAlchemy wraps the driver's exceptions (`DBAPIError`); `driver_error` gives
the driver's own (sqlite3's, asyncpg's) for callers that tell them apart.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Executable, Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.errors import StorageError, StorageUnavailableError
from storage.migrate import current_revision, upgrade

log = logging.getLogger(__name__)

__all__ = ["Connection", "StorageError", "StorageUnavailableError", "Store"]

Dialect = Literal["sqlite", "postgresql"]
Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
Connection = AsyncConnection
# SQLAlchemy's wrapper around any error the database driver raised.
DriverError = DBAPIError
# The reading connection the current task holds, with the task and the engine it is
# from (child tasks inherit the variable but must not share the connection).
_Held = tuple[asyncio.Task[Any] | None, AsyncEngine, AsyncConnection]
_held_reader: ContextVar[_Held | None] = ContextVar("paperbell_held_reader", default=None)


class Store:
    """An open paperbell database: a writer engine and (SQLite) a read-only one."""

    def __init__(
        self,
        dialect: Dialect,
        engine: AsyncEngine,
        reader: AsyncEngine | None = None,
        *,
        path: Path | None = None,
        schema: str | None = None,
        url: str | None = None,
    ) -> None:
        self.dialect: Dialect = dialect
        self.engine = engine
        self._reader = reader or engine
        self.path = path  # SQLite: the database file
        self.schema = schema  # PostgreSQL: the schema it lives in, when not the default
        self.url = url  # PostgreSQL: the connection URL (holds secrets: never log it)
        # SQLite allows one writer; queueing here keeps writers off the busy timeout.
        self._write_lock = asyncio.Lock() if dialect == "sqlite" else None
        # SQLite: one connection each for writing and reading, kept open for the
        # store's life and taken in turn. Checking a pooled connection out and back
        # in for every statement cost more than the statement: a primary-key read
        # took 600-650 us that way, 350 us on a kept connection, 240 us through
        # aiosqlite alone (`python -m bench.store_reads`, load average 3-5).
        self._read_lock = asyncio.Lock() if dialect == "sqlite" else None
        self._kept_writer: AsyncConnection | None = None
        self._kept_reader: AsyncConnection | None = None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def close(self) -> None:
        for kept in (self._kept_reader, self._kept_writer):
            if kept is not None and not kept.closed:
                await kept.close()
        self._kept_reader = self._kept_writer = None
        if self._reader.sync_engine.pool is not self.engine.sync_engine.pool:
            await self._reader.dispose()
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; commits on success, rolls back on any error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            conn = await self._writer()
            async with conn.begin():
                yield conn

    async def _writer(self) -> AsyncConnection:
        """The kept SQLite writer connection (under `_write_lock`), reopened if lost."""
        if self._kept_writer is None or self._kept_writer.closed or self._kept_writer.invalidated:
            self._kept_writer = await self.engine.connect()
        return self._kept_writer

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection that sees only committed data, for several reads in a row.

        Each statement sees what was committed when it started (no snapshot across
        statements). Inside, this task's `fetchall` and nested `reading()` use the
        same connection: SQLite has one reader connection, which they would
        otherwise wait for while this task holds it.
        """
        held = _held_reader.get()
        task = asyncio.current_task()
        if held is not None and held[0] is task and held[1] is self._reader:
            yield held[2]
            return
        if self._read_lock is None:
            async with self._reader.connect() as conn:
                token = _held_reader.set((task, self._reader, conn))
                try:
                    yield conn
                finally:
                    _held_reader.reset(token)
            return
        async with self._read_lock:
            kept = self._kept_reader
            if kept is None or kept.closed or kept.invalidated:
                kept = self._kept_reader = await self._reader.connect()
            token = _held_reader.set((task, self._reader, kept))
            try:
                yield kept
            finally:
                # Left "begun" in SQLAlchemy's bookkeeping: the driver is in autocommit
                # (no BEGIN is ever sent on it), so there is nothing to end, and a
                # rollback would cost a round trip per read.
                _held_reader.reset(token)

    async def sqlite_rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """SQLite only: `sql` (compiled once by the caller, `?` placeholders) on the kept
        reader, in one hand-off to aiosqlite's thread; rows as the driver gives them.

        The fast path for look-ups a user waits on: through SQLAlchemy's adapter a
        by-id read made four hand-offs and cost p50 0.89 ms against 0.02 ms for the
        query alone (3M papers, `python -m bench.lookups`); the target is p95 1 ms.
        Column types' result processing is not applied: callers decode text.
        """
        async with self.reading() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None  # the kept reader is connected
            rows = await raw.execute_fetchall(sql, tuple(params))
            return [tuple(row) for row in rows]

    async def fetchall(self, statement: Executable, params: Params = None) -> Sequence[Row[Any]]:
        async with self.reading() as conn:
            result = await conn.execute(statement, params)
            return result.all()

    async def fetchone(self, statement: Executable, params: Params = None) -> Row[Any] | None:
        async with self.reading() as conn:
            result = await conn.execute(statement, params)
            return result.first()

    async def scalar(self, statement: Executable, params: Params = None) -> Any:
        async with self.reading() as conn:
            return (await conn.execute(statement, params)).scalar()

    async def execute(self, statement: Executable, params: Params = None) -> int:
        """Run one write in a transaction of its own; returns the rows it touched."""
        async with self.transaction() as conn:
            result = await conn.execute(statement, params)
            return int(result.rowcount) if result.rowcount is not None else -1

    async def maintain(self, statement: str) -> None:
        """Run one maintenance statement that may not run inside a transaction.

        SQLite: `PRAGMA wal_checkpoint(TRUNCATE)`, `PRAGMA optimize`, `PRAGMA
        foreign_keys`, `VACUUM`, `ANALYZE`, on the writer between transactions.
        PostgreSQL: `VACUUM ...`, `ANALYZE`, in autocommit mode. The statement is
        run as written: never build it from input.
        """
        if self._write_lock is None:
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql(statement)
            return
        # Not through SQLAlchemy's execute: that would open the writer's BEGIN IMMEDIATE.
        async with self._write_lock:
            conn = await self._writer()
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None  # a pooled connection is connected
            cursor = await raw.execute(statement)
            await cursor.fetchall()
            await cursor.close()

    async def schema_version(self) -> int:
        """The Alembic revision the database is at, as its number (0: no schema)."""
        return await current_revision(self)

    async def migrate(self, target: int | None = None) -> list[str]:
        """Bring the schema to `target` (default: the newest); return what was applied."""
        return await upgrade(self, target)

    async def database_bytes(self) -> int:
        if self.is_postgres:
            value = await self.scalar(text("SELECT pg_database_size(current_database())"))
        else:
            value = await self.scalar(
                text("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
            )
        return int(value or 0)


def driver_error(exc: BaseException) -> BaseException:
    """The database driver's own exception inside SQLAlchemy's wrapper, else `exc`."""
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, BaseException):
        return exc.orig
    return exc


def host_of(url: str) -> str:
    """host:port of a connection URL, never its credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        return f"{host}:{parts.port or 5432}"
    except ValueError:
        return "the configured host"


def describe(exc: BaseException) -> str:
    """The driver's message, without any connection URL (it may hold a password)."""
    orig = driver_error(exc)
    # SQLAlchemy's asyncpg adapter prefixes asyncpg's message with its class.
    text_ = re.sub(r"^<class '[\w.]+'>: ", "", str(orig)) or type(orig).__name__
    return re.sub(r"postgres(?:ql)?(?:\+\w+)?://\S+", "postgresql://…", text_)[:200]
