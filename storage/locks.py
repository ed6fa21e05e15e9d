"""Leadership between bot processes sharing one database.

On PostgreSQL a session-level advisory lock, held on a dedicated connection,
says which process polls arXiv. When that process dies its connection closes
and PostgreSQL releases the lock, so another process's next `acquire()` takes
over. On SQLite only one bot may use the file (the runner's file lock), so the
one process is always the leader.
"""

from __future__ import annotations

import logging

import asyncpg

from storage.backend import AnyDatabase
from storage.pg import PgDatabase

log = logging.getLogger(__name__)

POLL_LOCK_KEY = 0x70626C6C  # "pbll": the arXiv poller


class Leadership:
    """`await acquire()` returns True while this process holds the lock."""

    def __init__(self, db: AnyDatabase, key: int = POLL_LOCK_KEY) -> None:
        self._db = db
        self._key = key
        self._conn: asyncpg.Connection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> bool:
        """Take (or confirm) the lock without waiting; False when another process has it."""
        if not isinstance(self._db, PgDatabase):
            self._held = True
            return True
        try:
            if self._conn is None or self._conn.is_closed():
                self._held = False
                self._conn = await asyncpg.connect(
                    self._db.url, server_settings={"application_name": "paperbell-leader"}
                )
            if self._held:
                await self._conn.fetchval("SELECT 1")  # still connected, so still held
                return True
            self._held = bool(
                await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key)
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("leadership check failed error=%s", type(exc).__name__)
            await self._drop()
            return False
        if self._held:
            log.info("this process is now the arXiv poller")
        return self._held

    async def release(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        self._held = False
        if self._conn is not None and not self._conn.is_closed():
            try:
                await self._conn.close(timeout=5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                self._conn.terminate()
        self._conn = None
