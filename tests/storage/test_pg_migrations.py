"""PostgreSQL specifics of the schema history: processes migrating at once, the URL's schema,
the bookkeeping an older paperbell reads, and connection failures in one safe line."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage.backend import open_database
from storage.migrate import MIGRATION_LOCK, latest_revision, revision_names
from storage.postgres import open_postgres
from storage.store import StorageError, StorageUnavailableError
from tests.backends import needs_postgres, require_postgres
from tests.storage.legacy import build_legacy_postgres

ROOT = Path(__file__).resolve().parents[2]
LATEST = latest_revision()

# One bot process starting: open (creating the schema, migrating), say what it applied.
_OPEN = """
import asyncio, json, sys
from storage.postgres import open_postgres

async def main() -> None:
    store = await open_postgres(sys.argv[1], schema=sys.argv[2], migrate=False)
    try:
        applied = await store.migrate()
        print(json.dumps({"applied": applied, "version": await store.schema_version()}))
    finally:
        await store.close()

asyncio.run(main())
"""


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = f"pbmig_{uuid.uuid4().hex[:12]}"
    yield name
    conn = await asyncpg.connect(require_postgres())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@needs_postgres
async def test_processes_migrating_one_schema_at_once_all_succeed(schema: str) -> None:
    """Three processes open one new schema together: the advisory lock lets one create and
    migrate it while the others wait, then find it up to date; none fails."""
    url = require_postgres()
    holder = await asyncpg.connect(url)
    try:
        # Hold the migration lock until all three wait for it, so they really collide.
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        pipe = asyncio.subprocess.PIPE
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", _OPEN, url, schema, cwd=ROOT, stdout=pipe, stderr=pipe
            )
            for _ in range(3)
        ]
        for _ in range(600):
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objid = $1",
                MIGRATION_LOCK,
            )
            if waiting >= 3:
                break
            await asyncio.sleep(0.05)
        assert waiting >= 3
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        outputs = [await process.communicate() for process in processes]
    finally:
        await holder.close()
    assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    assert sorted(len(r["applied"]) for r in results) == [0, 0, LATEST]
    assert {r["version"] for r in results} == {LATEST}


@needs_postgres
async def test_legacy_bookkeeping_is_kept_in_step(schema: str) -> None:
    """An upgraded store's paperbell_schema lists every revision, as an older paperbell wrote
    it, so that paperbell sees a newer schema instead of re-running its migrations."""
    url = require_postgres()
    await build_legacy_postgres(url, schema, 4)
    store = await open_postgres(url, schema=schema)
    await store.close()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch("SELECT version, name FROM paperbell_schema ORDER BY version")
    finally:
        await conn.close()
    assert [(r["version"], r["name"]) for r in rows] == [
        (n, f"{revision_names()[n]}.sql") for n in range(1, LATEST + 1)
    ]


@needs_postgres
async def test_url_search_path_names_the_schema(schema: str) -> None:
    """`?search_path=<schema>` in the URL (asyncpg sends it as a setting) puts the tables
    there, not in public."""
    url = require_postgres()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        store = await open_database(f"{url}{'&' if '?' in url else '?'}search_path={schema}")
        await store.close()
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = $1 AND table_name = 'papers'",
            schema,
        )
        assert tables == 1
    finally:
        await conn.close()


async def test_unreachable_server_is_worth_a_retry_and_hides_the_password() -> None:
    with pytest.raises(StorageUnavailableError) as raised:
        await open_database("postgresql://paperbell:secret@127.0.0.1:9/paperbell")
    assert str(raised.value).startswith("cannot reach PostgreSQL at 127.0.0.1:9")
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    ["postgresql://paperbell:secret@127.0.0.1:notaport/x", "postgresql://u:secret@[::1/x",
     "postgresql://u:secret@127.0.0.1/x?sslmode=sometimes"],
)  # fmt: skip
async def test_bad_url_is_a_mistake_without_the_password(url: str) -> None:
    with pytest.raises(StorageError) as raised:
        await open_database(url)
    assert not isinstance(raised.value, StorageUnavailableError)
    assert str(raised.value).startswith("cannot connect to PostgreSQL")
    assert "secret" not in str(raised.value)


@needs_postgres
async def test_refused_login_is_a_mistake() -> None:
    url = require_postgres()
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    with pytest.raises(StorageError) as raised:
        await open_database(url.replace("://postgres@", f"://{role}:secret@", 1))
    assert not isinstance(raised.value, StorageUnavailableError)
    assert f'role "{role}" does not exist' in str(raised.value)
    assert "secret" not in str(raised.value)
