"""Where each OAI-PMH harvest stands (table `harvest_state`), so a harvest resumes.

A harvest is keyed by what it asks for: metadata format, set, from and until.
`advance` runs inside the transaction that stores the page's papers, so the
stored progress and the stored papers never disagree: after a crash the next
run asks for exactly the page after the last one stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from storage.backend import AnyDatabase, Connection

log = logging.getLogger(__name__)


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


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


_COLUMNS = (
    "harvest_key, metadata_prefix, set_spec, from_date, until_date, resumption_token, cursor, "
    "complete_list_size, records, pages, restarts, started_at, updated_at, finished_at"
)


class HarvestStateRepository:
    def __init__(self, db: AnyDatabase) -> None:
        self._db = db

    async def get(self, key: str) -> HarvestState | None:
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM harvest_state WHERE harvest_key = ?", (key,)
        )
        if row is None:
            return None
        started, updated = _dt(row[11]), _dt(row[12])
        assert started is not None and updated is not None
        return HarvestState(
            key=str(row[0]),
            metadata_prefix=str(row[1]),
            set_spec=str(row[2]),
            from_date=str(row[3]),
            until_date=str(row[4]),
            resumption_token=row[5],
            cursor=None if row[6] is None else int(row[6]),
            complete_list_size=None if row[7] is None else int(row[7]),
            records=int(row[8]),
            pages=int(row[9]),
            restarts=int(row[10]),
            started_at=started,
            updated_at=updated,
            finished_at=_dt(row[13]),
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
        stamp = now.astimezone(UTC).isoformat()
        await self._db.execute(
            f"INSERT INTO harvest_state ({_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, 0, 0, ?, ?, ?, NULL) "
            "ON CONFLICT (harvest_key) DO UPDATE SET resumption_token = NULL, cursor = NULL, "
            "complete_list_size = NULL, records = 0, pages = 0, restarts = excluded.restarts, "
            "started_at = excluded.started_at, updated_at = excluded.updated_at, "
            "finished_at = NULL",
            (key, metadata_prefix, set_spec, from_date, until_date, restarts, stamp, stamp),
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
        stamp = now.astimezone(UTC).isoformat()
        await conn.execute(
            "UPDATE harvest_state SET resumption_token = ?, cursor = ?, "
            "complete_list_size = coalesce(?, complete_list_size), records = records + ?, "
            "pages = pages + 1, updated_at = ?, finished_at = ? WHERE harvest_key = ?",
            (token, cursor, complete_list_size, records, stamp, None if token else stamp, key),
        )
