"""Choosing the backend: a SQLite file path, or a `postgresql://` URL.

Repositories accept either database and the connection either one's
`transaction()` yields; the few places where the engines differ branch on
`db.dialect` ("sqlite" or "postgres").
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiosqlite

from storage.db import Database
from storage.pg import PgConnection, PgDatabase

log = logging.getLogger(__name__)

AnyDatabase = Database | PgDatabase
Connection = aiosqlite.Connection | PgConnection

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


async def open_database(location: str | Path, *, migrate: bool = True) -> AnyDatabase:
    """Open the store at `location` (migrating it unless told not to)."""
    text = str(location)
    if is_postgres(text):
        return await PgDatabase.open(text, migrate=migrate)
    return await Database.open(text, migrate=migrate)
