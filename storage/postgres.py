"""Opening a PostgreSQL store: the asyncpg pool behind SQLAlchemy, its session settings.

asyncpg itself reads the URL (as it always did, before SQLAlchemy): its query
keys such as `sslmode`, and any key it does not know, like `search_path=<schema>`,
which it sends as a server setting. SQLAlchemy's own URL handling would hand
those to `asyncpg.connect` as keyword arguments and fail.

Several bot processes may share one database (sharded delivery); migrations and
schema creation take an advisory lock (see `storage.migrate`) so they can all
start at once.
"""

from __future__ import annotations

import logging
import re

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import MIGRATION_LOCK
from storage.store import (
    StorageError,
    StorageUnavailableError,
    Store,
    describe,
    driver_error,
    host_of,
)

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# A pool never refuses a caller: a checkout waits for a connection to come back
# (asyncpg's own pool, used before SQLAlchemy, waited without limit).
_POOL_TIMEOUT = 300.0


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


_GONE = (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError)


def _unreachable(exc: BaseException) -> bool:
    """Down, not up yet, or gone: worth retrying, unlike a refused login or a bad URL."""
    orig = driver_error(exc)
    # SQLAlchemy's asyncpg adapter raises its own class from asyncpg's exception.
    return isinstance(orig, _GONE) or isinstance(orig.__cause__, _GONE)


async def _create_schema(url: str, schema: str) -> None:
    """`CREATE SCHEMA IF NOT EXISTS`, which two processes may not run at the same moment."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()


async def open_postgres(
    url: str, *, migrate: bool = True, schema: str | None = None, pool_size: int = 5
) -> Store:
    """Connect to `url` (optionally inside `schema`, created if missing) and migrate."""
    # JIT compiling pays off for analytics, not for paperbell's short indexed queries.
    settings: dict[str, str] = {"application_name": "paperbell", "timezone": "UTC", "jit": "off"}
    if schema is not None:
        if not _IDENTIFIER.match(schema):
            raise StorageError(f"invalid schema name {schema[:40]!r}")
        settings["search_path"] = schema

    async def connect() -> asyncpg.Connection:
        # Settings given here win over the URL's; the URL's `search_path` is kept.
        return await asyncpg.connect(url, server_settings=settings)

    # No pre-ping: it cost a round trip per statement (bench/store_reads.py). After a
    # server restart one statement fails; SQLAlchemy then drops every pooled connection.
    engine = create_async_engine(
        "postgresql+asyncpg://",
        async_creator=connect,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=_POOL_TIMEOUT,
    )
    # Reads outside a transaction in autocommit, as asyncpg's pool ran them: no BEGIN and
    # ROLLBACK round trips around each one. Same pool as the writer's transactions.
    reader = engine.execution_options(isolation_level="AUTOCOMMIT")
    store = Store("postgresql", engine, reader, schema=schema, url=url)
    try:
        if schema is not None:
            # The search_path names it already; it must exist before anything runs.
            await _create_schema(url, schema)
        async with engine.connect():
            pass  # connect now, so an unreachable server or a refused login fails here
    except BaseException as exc:
        await store.close()
        if _unreachable(exc):
            raise StorageUnavailableError(
                f"cannot reach PostgreSQL at {host_of(url)}: {describe(exc)}"
            ) from exc
        if isinstance(exc, asyncpg.PostgresError | DBAPIError | InterfaceError | ValueError):
            # ValueError: asyncpg could not make sense of the URL.
            raise StorageError(f"cannot connect to PostgreSQL: {describe(exc)}") from exc
        raise
    if migrate:
        try:
            await store.migrate()
        except BaseException as exc:
            await store.close()
            if _unreachable(exc):
                raise StorageUnavailableError(
                    f"lost PostgreSQL at {host_of(url)} while migrating: {describe(exc)}"
                ) from exc
            if isinstance(exc, DBAPIError):
                raise StorageError(
                    f"cannot migrate the PostgreSQL database: {describe(exc)}"
                ) from exc
            raise
    return store
