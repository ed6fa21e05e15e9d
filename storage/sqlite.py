"""Opening a SQLite store: the file, its pragmas, and sqlite3's transaction quirks.

Python 3.11's sqlite3 opens transactions on its own ("legacy transaction
control"), which breaks transactional DDL and lets a SELECT run outside the
transaction; as SQLAlchemy's SQLite documentation recommends, the driver's own
BEGIN is switched off and the writer engine emits `BEGIN IMMEDIATE` itself, so
a writer takes the lock up front instead of failing half-way with `database is
locked`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import URL, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

try:  # SQLAlchemy 2.1
    from sqlalchemy.util.concurrency import await_ as _await
except ImportError:  # SQLAlchemy 2.0
    from sqlalchemy.util.concurrency import await_only as _await

from storage.store import StorageError, StorageUnavailableError, Store, driver_error

log = logging.getLogger(__name__)

# Negative: KiB, so 40 MiB of page cache for reads. At 3M papers (`python -m
# bench.lookups`, quiet machine) 64 MiB took `paperbell run` to 164 MiB, over its
# 150 MB; 40 MiB gave 139 MiB with look-ups within target (ID p95 0.40 ms, search
# 20.1 ms, author 14.0 ms); the OS page cache still holds the file.
READER_CACHE_KIB = -40_960
# No memory map: every page a look-up touched in a mapped multi-GB catalogue stayed
# in the bot's resident memory (its RSS passed 150 MB over all of arXiv); the
# page cache above bounds it, and the OS page cache still keeps the file.
READER_MMAP_BYTES = 0
PAGE_SIZE = 8192
DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a statement waits for another process's write lock
_POOL_TIMEOUT = 300.0  # one connection each: a reader waits its turn, it never fails


def _engine(url: URL, pragmas: list[str], begin: str | None) -> AsyncEngine:
    # One connection per engine: one writer is all SQLite allows, and the reader's
    # page cache is paid once.
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=_POOL_TIMEOUT)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN from sqlite3
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    if begin is not None:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Straight to aiosqlite: one hand-off to its thread where SQLAlchemy's
            # cursor takes three (open, execute, close); a one-statement write
            # transaction went from 7 hand-offs to 5.
            driver = conn.connection.driver_connection
            _await(driver.execute(begin))

    return engine


def _probe(url: URL) -> None:
    """Connect and disconnect with sqlite3, as the engines will (same file, same mode)."""
    mode = url.query["mode"]
    assert url.database is not None
    sqlite3.connect(f"{url.database}?mode={mode}", uri=True).close()


def _failure(path: Path, exc: BaseException) -> StorageError:
    """The one-line error for `exc`; another process's write lock is worth a retry."""
    orig = driver_error(exc)
    if isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig):
        return StorageUnavailableError(
            f"database {path} is locked by another process; try again later"
        )
    if isinstance(orig, OSError):
        return StorageError(f"cannot open database {path}: {orig.strerror or orig}")
    cannot_open = getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_CANTOPEN
    return StorageError(f"cannot {'open' if cannot_open else 'use'} database {path}: {orig}")


async def open_sqlite(
    path: str | Path,
    *,
    migrate: bool = True,
    create: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> Store:
    """Open the database at `path` and apply pending migrations.

    `create=False` refuses a missing file instead of creating an empty one (read
    commands), and writes nothing, not even the file's header. `busy_timeout` is
    how long a statement waits for another process's write lock before failing
    with `database is locked`.
    """
    path = Path(path)
    if path.is_dir():
        raise StorageError(f"database {path} is a directory; give a file path")
    if not create and not path.exists():
        raise StorageError(
            f"no database at {path} yet; `paperbell db migrate` (or import, poll) creates it"
        )
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _failure(path, exc) from None
    # mode=rw: never create the file here, even if it vanished since the check above.
    url = URL.create(
        "sqlite+aiosqlite",
        database=f"file:{quote(str(path.absolute()))}",
        query={"mode": "rwc" if create else "rw", "uri": "true"},
    )
    # Opened once by sqlite3 alone first: when aiosqlite fails to connect, its worker
    # thread finishes after the call returns and, if the event loop has closed by
    # then (a CLI exiting on the error), prints an `Event loop is closed` traceback.
    try:
        await asyncio.to_thread(_probe, url)
    except (sqlite3.Error, OSError) as exc:
        raise _failure(path, exc) from None
    busy_ms = int(busy_timeout * 1000)
    writer = _engine(
        url,
        [
            "PRAGMA foreign_keys = ON",
            f"PRAGMA busy_timeout = {busy_ms}",
            "PRAGMA synchronous = NORMAL",
        ],
        "BEGIN IMMEDIATE",  # take the write lock up front, not half-way through
    )
    reader = _engine(
        url,
        [
            f"PRAGMA busy_timeout = {busy_ms}",
            "PRAGMA query_only = ON",
            # Look-ups read the FTS index and the author/paper indexes: keep them in memory.
            f"PRAGMA cache_size = {READER_CACHE_KIB}",
            f"PRAGMA mmap_size = {READER_MMAP_BYTES}",
        ],
        None,
    )
    store = Store("sqlite", writer, reader, path=path)
    try:
        async with writer.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None  # connected just now
            if create:
                # Persistent once set. Only a new, empty file takes a page size (before
                # WAL is on): 8 KiB pages hold five ~1.4 KB paper rows where 4 KiB pages
                # held two and wasted a quarter.
                for pragma in (f"PRAGMA page_size = {PAGE_SIZE}", "PRAGMA journal_mode = WAL"):
                    cursor = await raw.execute(pragma)
                    await cursor.close()
        # The reader reads the header now, so a file that is no database fails here.
        async with reader.connect() as conn:
            await conn.exec_driver_sql("PRAGMA schema_version")
        if migrate:
            await store.migrate()
    except (DBAPIError, sqlite3.Error, OSError) as exc:
        await store.close()
        raise _failure(path, exc) from exc
    except BaseException:
        await store.close()
        raise
    return store
