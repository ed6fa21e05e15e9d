"""Small key/value facts the bot keeps between runs (e.g. the synced command set's hash)."""

from __future__ import annotations

import logging

from storage.backend import AnyDatabase

log = logging.getLogger(__name__)


class MetaRepository:
    def __init__(self, db: AnyDatabase) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        row = await self.db.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
