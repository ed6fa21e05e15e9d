"""Choosing the backend: a SQLite file path, or a `postgresql://` URL.

Both give a `Store` (SQLAlchemy's async engine underneath); repositories take
a store and the connection its `transaction()` yields, whichever the engine.
"""

from __future__ import annotations

import logging
from pathlib import Path

from storage.migrate import latest_revision
from storage.postgres import POSTGRES_SCHEMES, is_postgres, open_postgres
from storage.sqlite import DEFAULT_BUSY_TIMEOUT, open_sqlite
from storage.store import Connection, StorageError, Store

log = logging.getLogger(__name__)

__all__ = [
    "POSTGRES_SCHEMES",
    "Connection",
    "Store",
    "is_postgres",
    "open_database",
    "open_for_reading",
]


async def open_database(
    location: str | Path,
    *,
    migrate: bool = True,
    create: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> Store:
    """Open the store at `location` (migrating it unless told not to).

    `create=False` refuses a SQLite file that does not exist yet; `busy_timeout`
    (SQLite) is how long to wait for another process's write lock.
    """
    text = str(location)
    if is_postgres(text):
        return await open_postgres(text, migrate=migrate)
    return await open_sqlite(text, migrate=migrate, create=create, busy_timeout=busy_timeout)


async def open_for_reading(location: str | Path, *, shown: str) -> Store:
    """Open an existing store at the current schema without creating or migrating anything.

    Read commands use this: on an empty or outdated database they say what to run
    instead of quietly creating tables. `shown` names the database in messages
    (without a password).
    """
    db = await open_database(location, migrate=False, create=False)
    try:
        version = await db.schema_version()
        latest = latest_revision()
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
