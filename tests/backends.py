"""The database backends the storage tests run against: a SQLite file, and PostgreSQL.

`open_test_database(kind, tmp_path)` gives a fresh, migrated database of that
kind. PostgreSQL needs `PAPERBELL_TEST_POSTGRES_URL` (CI sets it to the server
on 127.0.0.1:5432); each test gets a schema of its own, dropped afterwards.
Without the variable the PostgreSQL cases are skipped, and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from storage.postgres import open_postgres
from storage.sqlite import open_sqlite
from storage.store import Store

POSTGRES_URL_VARIABLE = "PAPERBELL_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


SKIP_REASON = f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
# Put on every test (or parameter) that needs PostgreSQL: skipped, with the reason, when unset.
needs_postgres = pytest.mark.skipif(postgres_url() is None, reason=SKIP_REASON)
POSTGRES = pytest.param("postgres", marks=needs_postgres)


def require_postgres() -> str:
    """The test server's URL; only called by tests marked `needs_postgres`."""
    url = postgres_url()
    if url is None:
        raise RuntimeError(
            f"this test uses PostgreSQL but is not marked needs_postgres: {SKIP_REASON}"
        )
    return url


@asynccontextmanager
async def open_test_database(
    kind: str, tmp_path: Path, *, migrate: bool = True
) -> AsyncIterator[Store]:
    if kind == "sqlite":
        db = await open_sqlite(tmp_path / "paperbell.sqlite3", migrate=migrate)
        try:
            yield db
        finally:
            await db.close()
        return
    url = require_postgres()
    schema = f"pbtest_{uuid.uuid4().hex[:12]}"
    pg = await open_postgres(url, schema=schema, migrate=migrate)
    try:
        yield pg
    finally:
        await pg.close()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", POSTGRES])
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh migrated database, once per backend (PostgreSQL skipped without its URL)."""
    async with open_test_database(request.param, tmp_path) as db:
        yield db
