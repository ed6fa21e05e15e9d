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

from storage.db import Database
from storage.pg import PgConnection, PgDatabase

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


async def open_database(location: str | Path, *, migrate: bool = True) -> AnyDatabase:
    """Open the store at `location` (migrating it unless told not to)."""
    text = str(location)
    if is_postgres(text):
        return await PgDatabase.open(text, migrate=migrate)
    return await Database.open(text, migrate=migrate)
