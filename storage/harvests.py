"""Where each OAI-PMH harvest stands (table `harvest_state`), so a harvest resumes.

A harvest is keyed by what it asks for: metadata format, set, from and until.
`advance` runs inside the transaction that stores the page's papers, so the
stored progress and the stored papers never disagree: after a crash the next
run asks for exactly the page after the last one stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from storage.schema import harvest_state
from storage.sql import insert_for
from storage.store import Connection, Store

log = logging.getLogger(__name__)

_t = harvest_state.c


@dataclass(frozen=True, slots=True)
class HarvestState:
    key: str
    metadata_prefix: str
    set_spec: str
    from_date: str
    until_date: str
    resumption_token: str | None
    cursor: int | None
    complete_list_size: int | None
    records: int
    pages: int
    restarts: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


def harvest_key(metadata_prefix: str, set_spec: str, from_date: str, until_date: str) -> str:
    return f"{metadata_prefix}|{set_spec}|{from_date}|{until_date}"


class HarvestStateRepository:
    def __init__(self, db: Store) -> None:
        self._db = db

    async def get(self, key: str) -> HarvestState | None:
        row = await self._db.fetchone(select(harvest_state).where(_t.harvest_key == key))
        if row is None:
            return None
        return HarvestState(
            key=str(row.harvest_key),
            metadata_prefix=str(row.metadata_prefix),
            set_spec=str(row.set_spec),
            from_date=str(row.from_date),
            until_date=str(row.until_date),
            resumption_token=row.resumption_token,
            cursor=None if row.cursor is None else int(row.cursor),
            complete_list_size=None
            if row.complete_list_size is None
            else int(row.complete_list_size),
            records=int(row.records),
            pages=int(row.pages),
            restarts=int(row.restarts),
            started_at=row.started_at,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
        )

    async def start(
        self,
        metadata_prefix: str,
        set_spec: str,
        from_date: str,
        until_date: str,
        *,
        now: datetime,
        restarts: int = 0,
    ) -> HarvestState:
        """(Re)start a harvest from its first page, forgetting any earlier progress."""
        key = harvest_key(metadata_prefix, set_spec, from_date, until_date)
        stmt = insert_for(self._db.dialect, harvest_state).values(
            harvest_key=key,
            metadata_prefix=metadata_prefix,
            set_spec=set_spec,
            from_date=from_date,
            until_date=until_date,
            resumption_token=None,
            cursor=None,
            complete_list_size=None,
            records=0,
            pages=0,
            restarts=restarts,
            started_at=now,
            updated_at=now,
            finished_at=None,
        )
        await self._db.execute(
            stmt.on_conflict_do_update(
                index_elements=[_t.harvest_key],
                set_={
                    "resumption_token": None,
                    "cursor": None,
                    "complete_list_size": None,
                    "records": 0,
                    "pages": 0,
                    "restarts": stmt.excluded.restarts,
                    "started_at": stmt.excluded.started_at,
                    "updated_at": stmt.excluded.updated_at,
                    "finished_at": None,
                },
            )
        )
        state = await self.get(key)
        assert state is not None
        return state

    async def advance(
        self,
        conn: Connection,
        key: str,
        *,
        token: str | None,
        cursor: int | None,
        complete_list_size: int | None,
        records: int,
        now: datetime,
    ) -> None:
        """Record a stored page inside the caller's transaction; no token: finished."""
        await conn.execute(
            update(harvest_state)
            .where(_t.harvest_key == key)
            .values(
                resumption_token=token,
                cursor=cursor,
                # A page without a size keeps the one an earlier page gave.
                complete_list_size=_t.complete_list_size
                if complete_list_size is None
                else complete_list_size,
                records=_t.records + records,
                pages=_t.pages + 1,
                updated_at=now,
                finished_at=None if token else now,
            )
        )
