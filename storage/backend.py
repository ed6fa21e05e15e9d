"""Choosing the backend: a SQLite file path, or a `postgresql://` URL.

Repositories accept either database and the connection either one's
`transaction()` yields; the few places where the engines differ branch on
`db.dialect` ("sqlite" or "postgres").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiosqlite

from storage.db import DEFAULT_BUSY_TIMEOUT, Database, StorageError, load_migrations
from storage.pg import PgConnection, PgDatabase, load_pg_migrations

log = logging.getLogger(__name__)

AnyDatabase = Database | PgDatabase
Connection = aiosqlite.Connection | PgConnection
Row = Any  # aiosqlite.Row or asyncpg.Record: both index by position and by column name


def json_ids(dialect: str) -> str:
    """A subquery of the integers in one JSON-array parameter (`IN (<this>)`)."""
    if dialect == "postgres":
        return "SELECT value::bigint FROM json_array_elements_text(CAST(? AS json))"
    return "SELECT value FROM json_each(?)"


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


async def open_database(
    location: str | Path,
    *,
    migrate: bool = True,
    create: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> AnyDatabase:
    """Open the store at `location` (migrating it unless told not to).

    `create=False` refuses a SQLite file that does not exist yet; `busy_timeout`
    (SQLite) is how long to wait for another process's write lock.
    """
    text = str(location)
    if is_postgres(text):
        return await PgDatabase.open(text, migrate=migrate)
    return await Database.open(text, migrate=migrate, create=create, busy_timeout=busy_timeout)


async def open_for_reading(location: str | Path, *, shown: str) -> AnyDatabase:
    """Open an existing store at the current schema without creating or migrating anything.

    Read commands use this: on an empty or outdated database they say what to run
    instead of quietly creating tables. `shown` names the database in messages
    (without a password).
    """
    db = await open_database(location, migrate=False, create=False)
    try:
        version = await db.schema_version()
        latest = len(load_pg_migrations() if db.dialect == "postgres" else load_migrations())
        if version == 0:
            raise StorageError(
                f"{shown} has no paperbell tables yet; run `paperbell db migrate` first"
            )
        if version < latest:
            raise StorageError(
                f"{shown} is at schema version {version}, this paperbell needs {latest}; "
                "run `paperbell db migrate`"
            )
        if version > latest:
            raise StorageError(
                f"{shown} has schema version {version}, newer than this paperbell knows "
                f"({latest}); upgrade paperbell"
            )
    except BaseException:
        await db.close()
        raise
    return db
