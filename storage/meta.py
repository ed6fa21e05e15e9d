"""Small key/value facts the bot keeps between runs (e.g. the synced command set's hash)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from storage.schema import meta
from storage.sql import insert_for
from storage.store import Store

log = logging.getLogger(__name__)


class MetaRepository:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        value = await self.db.scalar(select(meta.c.value).where(meta.c.key == key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        stmt = insert_for(self.db.dialect, meta).values(key=key, value=value)
        await self.db.execute(
            stmt.on_conflict_do_update(
                index_elements=[meta.c.key], set_={"value": stmt.excluded.value}
            )
        )
