"""Per-URL polling state: conditional-GET validators, the listing last seen, and feed health.

Each poll of a feed URL ends in exactly one of `record_success` (a listing was
fetched and stored), `record_not_modified` (HTTP 304) or `record_failure`.
A 304 counts as a success: the feed answered and nothing changed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select

from bot.domain.models import FeedState
from storage.schema import feed_state
from storage.sql import insert_for
from storage.store import Store

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500
_t = feed_state.c
_COLUMNS = (
    _t.url,
    _t.etag,
    _t.last_modified,
    _t.last_build,
    _t.last_success,
    _t.last_attempt,
    _t.last_error,
    _t.last_error_at,
    _t.consecutive_failures,
)


def _aware(value: datetime) -> datetime:
    # Checked before the statement: the column type would refuse it too, but wrapped
    # in SQLAlchemy's StatementError instead of the ValueError callers expect.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"feed state times must be timezone-aware, got {value!r}")
    return value


def _state(row: Row[Any]) -> FeedState:
    return FeedState(
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        last_build=row.last_build,
        last_success=row.last_success,
        last_attempt=row.last_attempt,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        consecutive_failures=int(row.consecutive_failures),
    )


class FeedStateRepository:
    """Reads and records the polling state of feed URLs."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def get(self, url: str) -> FeedState | None:
        row = await self._db.fetchone(select(*_COLUMNS).where(_t.url == url))
        return _state(row) if row else None

    async def all(self) -> list[FeedState]:
        rows = await self._db.fetchall(select(*_COLUMNS).order_by(_t.url))
        return [_state(row) for row in rows]

    async def record_success(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        build_date: str | None,
        at: datetime,
    ) -> None:
        """A listing was fetched: keep its validators and build date exactly as given.

        The previous error stays for the record (with its time); the failure count resets.
        """
        when = _aware(at)
        stmt = insert_for(self._db.dialect, feed_state).values(
            url=url,
            etag=etag,
            last_modified=last_modified,
            last_build=build_date,
            last_success=when,
            last_attempt=when,
            consecutive_failures=0,
        )
        await self._db.execute(
            stmt.on_conflict_do_update(
                index_elements=[_t.url],
                set_={
                    "etag": stmt.excluded.etag,
                    "last_modified": stmt.excluded.last_modified,
                    "last_build": stmt.excluded.last_build,
                    "last_success": stmt.excluded.last_success,
                    "last_attempt": stmt.excluded.last_attempt,
                    "consecutive_failures": 0,
                },
            )
        )

    async def record_not_modified(self, url: str, at: datetime) -> None:
        """HTTP 304: the feed is healthy and unchanged; validators and build date stay."""
        when = _aware(at)
        stmt = insert_for(self._db.dialect, feed_state).values(
            url=url, last_success=when, last_attempt=when, consecutive_failures=0
        )
        await self._db.execute(
            stmt.on_conflict_do_update(
                index_elements=[_t.url],
                set_={
                    "last_success": stmt.excluded.last_success,
                    "last_attempt": stmt.excluded.last_attempt,
                    "consecutive_failures": 0,
                },
            )
        )

    async def record_failure(self, url: str, error: str, at: datetime) -> None:
        """A failed poll: count it and keep the (truncated) error message."""
        when = _aware(at)
        stmt = insert_for(self._db.dialect, feed_state).values(
            url=url,
            last_attempt=when,
            last_error=error[:MAX_ERROR_LENGTH],
            last_error_at=when,
            consecutive_failures=1,
        )
        await self._db.execute(
            stmt.on_conflict_do_update(
                index_elements=[_t.url],
                set_={
                    "last_attempt": stmt.excluded.last_attempt,
                    "last_error": stmt.excluded.last_error,
                    "last_error_at": stmt.excluded.last_error_at,
                    "consecutive_failures": _t.consecutive_failures + 1,
                },
            )
        )
        log.debug("feed failure recorded url=%s", url)
