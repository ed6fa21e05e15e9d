"""The SQLite connection, its pragmas and the numbered migrations.

One `Database` wraps one aiosqlite connection. Writers go through
`transaction()`, which serialises them with an asyncio lock and wraps the body
in `BEGIN IMMEDIATE ... COMMIT`, so a batch is stored whole or not at all.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

READER_CACHE_KIB = -65_536  # negative: KiB, so 64 MiB of page cache for reads
READER_MMAP_BYTES = 256 * 2**20
DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a statement waits for another process's write lock
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class StorageError(Exception):
    """The database could not be opened or used; the message is safe to print."""


class StorageUnavailableError(StorageError):
    """The database server could not be reached (down, or not up yet): retry later."""


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The numbered SQL files shipped in `storage/migrations/`, in order."""
    found: list[Migration] = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise StorageError(f"migrations are not numbered 1..N without gaps: {numbers}")
    return found


class Database:
    """An open SQLite database with paperbell's schema applied."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn  # the writer; `transaction()` hands it out under the lock
        self.path = path
        self._write_lock = asyncio.Lock()
        # Reads outside a transaction use their own connection: sharing the writer
        # would let them see another coroutine's uncommitted (maybe rolled back) rows.
        self._reader: aiosqlite.Connection | None = None

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrate: bool = True,
        create: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Database:
        """Open the database at `path` and apply pending migrations.

        `create=False` refuses a missing file instead of creating an empty one (read
        commands). `busy_timeout` is how long a statement waits for another process's
        write lock before failing with `database is locked`.
        """
        path = Path(path)
        if path.is_dir():
            raise StorageError(f"database {path} is a directory; give a file path")
        if not create and not path.exists():
            raise StorageError(
                f"no database at {path} yet; `paperbell db migrate` (or import, poll) creates it"
            )
        # mode=rw: never create the file here, even if it vanished since the check above.
        target = path if create else f"{path.absolute().as_uri()}?mode=rw"
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = await _connect(target)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StorageError(f"cannot open database {path}: {reason}") from exc
        db = cls(conn, path)
        busy_ms = int(busy_timeout * 1000)
        try:
            conn.row_factory = aiosqlite.Row
            if create:
                # Persistent once set; a store opened only to be read must not be written,
                # not even its header (an empty file would become a database).
                await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            await conn.execute("PRAGMA synchronous = NORMAL")
            if migrate:
                await db.migrate()
            reader = await _connect(target)
            reader.row_factory = aiosqlite.Row
            await reader.execute(f"PRAGMA busy_timeout = {busy_ms}")
            await reader.execute("PRAGMA query_only = ON")
            # Look-ups read the FTS index and the author/paper indexes: keep them in memory.
            await reader.execute(f"PRAGMA cache_size = {READER_CACHE_KIB}")
            await reader.execute(f"PRAGMA mmap_size = {READER_MMAP_BYTES}")
            db._reader = reader
        except sqlite3.DatabaseError as exc:
            await conn.close()
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StorageUnavailableError(
                    f"database {path} is locked by another process; try again later"
                ) from exc
            raise StorageError(f"cannot use database {path}: {exc}") from exc
        return db

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        await self.conn.close()

    @property
    def reader(self) -> aiosqlite.Connection:
        """Connection for reads that must see only committed data."""
        return self._reader or self.conn

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self, target: int | None = None) -> list[str]:
        """Apply each pending migration in a transaction of its own; return their names."""
        applied: list[str] = []
        current = await self.schema_version()
        for migration in load_migrations():
            if migration.number <= current or (target is not None and migration.number > target):
                continue
            async with self._write_lock:
                # executescript would COMMIT on its own; run statements one by one
                # inside an explicit transaction so a failing migration leaves nothing.
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in split_sql(migration.sql):
                        await self.conn.execute(statement)
                    await self.conn.execute(f"PRAGMA user_version = {migration.number}")
                    await self.conn.execute("COMMIT")
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
            log.info("applied migration %s", migration.name)
            applied.append(migration.name)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Serialised write transaction; commits on success, rolls back on any error."""
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self.reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self.reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        async with self.transaction() as conn:
            await conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def database_bytes(self) -> int:
        row = await self.fetchone(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        )
        return int(row[0]) if row else 0


async def _connect(target: str | Path) -> aiosqlite.Connection:
    """aiosqlite.connect, waiting on failure until its worker thread has stopped.

    A failed connect leaves aiosqlite's thread finishing a stop request; if the event
    loop closes first, that thread prints an `Event loop is closed` traceback.
    """
    pending = aiosqlite.connect(target, isolation_level=None, uri=isinstance(target, str))
    try:
        return await pending
    except BaseException:
        thread = getattr(pending, "_thread", None)
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join, 5.0)
        raise


def split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("--")):
            continue
        buffer.append(line)
        candidate = "\n".join(buffer)
        if stripped.endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            buffer = []
    if "\n".join(buffer).strip():
        statements.append("\n".join(buffer).strip())
    return statements
