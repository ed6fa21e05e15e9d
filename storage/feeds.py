"""Per-URL polling state: conditional-GET validators, the listing last seen, and feed health.

Each poll of a feed URL ends in exactly one of `record_success` (a listing was
fetched and stored), `record_not_modified` (HTTP 304) or `record_failure`.
A 304 counts as a success: the feed answered and nothing changed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.domain.models import FeedState
from storage.backend import AnyDatabase

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500
_COLUMNS = (
    "url, etag, last_modified, last_build, last_success, last_attempt, last_error, "
    "last_error_at, consecutive_failures"
)


def _ts(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"feed state times must be timezone-aware, got {value!r}")
    return value.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _state(row: Sequence[Any]) -> FeedState:
    return FeedState(
        url=row[0],
        etag=row[1],
        last_modified=row[2],
        last_build=row[3],
        last_success=_dt(row[4]),
        last_attempt=_dt(row[5]),
        last_error=row[6],
        last_error_at=_dt(row[7]),
        consecutive_failures=int(row[8]),
    )


class FeedStateRepository:
    """Reads and records the polling state of feed URLs."""

    def __init__(self, db: AnyDatabase) -> None:
        self._db = db

    async def get(self, url: str) -> FeedState | None:
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM feed_state WHERE url = ?", (url,))
        return _state(row) if row else None

    async def all(self) -> list[FeedState]:
        rows = await self._db.fetchall(f"SELECT {_COLUMNS} FROM feed_state ORDER BY url")
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
        when = _ts(at)
        await self._db.execute(
            """
            INSERT INTO feed_state (url, etag, last_modified, last_build, last_success,
                                    last_attempt, consecutive_failures)
            VALUES (?, ?, ?, ?, ?, ?, 0)
            ON CONFLICT (url) DO UPDATE SET
                etag = excluded.etag,
                last_modified = excluded.last_modified,
                last_build = excluded.last_build,
                last_success = excluded.last_success,
                last_attempt = excluded.last_attempt,
                consecutive_failures = 0
            """,
            (url, etag, last_modified, build_date, when, when),
        )

    async def record_not_modified(self, url: str, at: datetime) -> None:
        """HTTP 304: the feed is healthy and unchanged; validators and build date stay."""
        when = _ts(at)
        await self._db.execute(
            """
            INSERT INTO feed_state (url, last_success, last_attempt, consecutive_failures)
            VALUES (?, ?, ?, 0)
            ON CONFLICT (url) DO UPDATE SET
                last_success = excluded.last_success,
                last_attempt = excluded.last_attempt,
                consecutive_failures = 0
            """,
            (url, when, when),
        )

    async def record_failure(self, url: str, error: str, at: datetime) -> None:
        """A failed poll: count it and keep the (truncated) error message."""
        when = _ts(at)
        message = error[:MAX_ERROR_LENGTH]
        await self._db.execute(
            """
            INSERT INTO feed_state (url, last_attempt, last_error, last_error_at,
                                    consecutive_failures)
            VALUES (?, ?, ?, ?, 1)
            ON CONFLICT (url) DO UPDATE SET
                last_attempt = excluded.last_attempt,
                last_error = excluded.last_error,
                last_error_at = excluded.last_error_at,
                consecutive_failures = feed_state.consecutive_failures + 1
            """,
            (url, when, message, when),
        )
        log.debug("feed failure recorded url=%s", url)
