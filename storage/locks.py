"""Leadership between bot processes sharing one database.

On PostgreSQL a session-level advisory lock, held on a dedicated connection,
says which process polls arXiv. When that process dies its connection closes
and PostgreSQL releases the lock, so another process's next `acquire()` takes
over. The lock is per schema: deployments that share a database in schemas of
their own (`?search_path=<schema>` in the URL) each have their poller. On
SQLite only one bot may use the file (the runner's file lock), so the one
process is always the leader. The lock lives on a connection of its own, outside
SQLAlchemy's pool: a pooled connection goes back to the pool, and the lock with it.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from storage.store import Store

log = logging.getLogger(__name__)

POLL_LOCK_KEY = 0x70626C6C  # "pbll": the arXiv poller
# Advisory locks are database-wide: the schema is mixed into the key.
_TRY_LOCK = (
    "SELECT pg_try_advisory_lock($1::bigint # hashtextextended(coalesce(current_schema(), ''), 0))"
)


class Leadership:
    """`await acquire()` returns True while this process holds the lock."""

    def __init__(self, db: Store, key: int = POLL_LOCK_KEY) -> None:
        self._db = db
        self._key = key
        self._conn: asyncpg.Connection | None = None
        self._held = False
        # The leadership job and a poll may check at the same moment (the 30 s job and an
        # hourly poll coincide); one asyncpg connection runs one query at a time.
        self._busy = asyncio.Lock()

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> bool:
        """Take (or confirm) the lock without waiting; False when another process has it."""
        if not self._db.is_postgres or self._db.url is None:
            self._held = True
            return True
        async with self._busy:
            return await self._acquire(self._db, self._db.url)

    async def _acquire(self, db: Store, url: str) -> bool:
        try:
            if self._conn is None or self._conn.is_closed():
                self._held = False
                settings = {"application_name": "paperbell-leader"}
                if db.schema is not None:
                    settings["search_path"] = db.schema
                self._conn = await asyncpg.connect(url, server_settings=settings)
            if self._held:
                await self._conn.fetchval("SELECT 1")  # still connected, so still held
                return True
            self._held = bool(await self._conn.fetchval(_TRY_LOCK, self._key))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("leadership check failed error=%s", type(exc).__name__)
            await self._drop()
            return False
        if self._held:
            log.info("this process is now the arXiv poller")
        return self._held

    async def release(self) -> None:
        # Not behind `_busy`: a shutdown must not wait out a check stuck connecting; a
        # check cut off here fails and drops what is left.
        await self._drop()

    async def _drop(self) -> None:
        self._held = False
        if self._conn is not None and not self._conn.is_closed():
            try:
                await self._conn.close(timeout=5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                self._conn.terminate()
        self._conn = None
