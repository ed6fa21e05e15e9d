"""Opening a PostgreSQL store: the asyncpg pool behind SQLAlchemy, its session settings.

Several bot processes may share one database (sharded delivery); migrations
take an advisory lock (see `storage.migrate`) so they can all start at once.
"""

from __future__ import annotations

import logging
import re

import asyncpg
from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import create_async_engine

from storage.store import StorageError, StorageUnavailableError, Store, describe, host_of

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def _async_url(url: str) -> URL:
    """`postgresql://…` as SQLAlchemy's asyncpg URL (the driver name is ours to add)."""
    try:
        parsed = make_url("postgresql://" + url.split("://", 1)[1])
    except (ArgumentError, ValueError, IndexError) as exc:
        raise StorageError("cannot parse the PostgreSQL URL") from exc
    return parsed.set(drivername="postgresql+asyncpg")


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
    engine = create_async_engine(
        _async_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,  # a restarted server leaves dead connections in the pool
        connect_args={"server_settings": settings},
    )
    store = Store("postgresql", engine, schema=schema, url=url)
    try:
        if schema is not None:
            # The search_path names it already; it must exist before anything runs.
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            finally:
                await conn.close()
        if migrate:
            await store.migrate()
        else:
            async with engine.connect():
                pass  # connect now, so an unreachable server fails here
    except (OSError, TimeoutError, InterfaceError) as exc:
        await store.close()
        # The server is down or not up yet: worth retrying, unlike a refused login.
        raise StorageUnavailableError(
            f"cannot reach PostgreSQL at {host_of(url)}: {describe(exc)}"
        ) from exc
    except (asyncpg.PostgresError, DBAPIError, ValueError) as exc:
        await store.close()
        if isinstance(getattr(exc, "orig", None), OSError | TimeoutError):
            raise StorageUnavailableError(
                f"cannot reach PostgreSQL at {host_of(url)}: {describe(exc)}"
            ) from exc
        raise StorageError(f"cannot connect to PostgreSQL: {describe(exc)}") from exc
    except BaseException:
        await store.close()
        raise
    return store
