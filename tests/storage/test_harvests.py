"""Tests for storage.harvests: a harvest's progress is kept, restarted and finished, on both
backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from storage.harvests import HarvestStateRepository, harvest_key
from storage.store import Store

T0 = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
KEY = harvest_key("arXivRaw", "cs", "2024-11-01", "")


async def test_pages_advance_and_the_last_finishes(db: Store) -> None:
    """Each stored page moves the token on and adds its records; no token: finished."""
    states = HarvestStateRepository(db)
    assert await states.get(KEY) is None
    started = await states.start("arXivRaw", "cs", "2024-11-01", "", now=T0)
    assert (started.key, started.records, started.pages, started.finished) == (KEY, 0, 0, False)
    assert started.resumption_token is None and started.started_at == T0
    async with db.transaction() as conn:
        await states.advance(
            conn, KEY, token="t|3", cursor=0, complete_list_size=7, records=3, now=T0
        )
    later = T0 + timedelta(minutes=1, microseconds=5)
    async with db.transaction() as conn:
        # A page without a list size keeps the size an earlier page gave.
        await states.advance(
            conn, KEY, token=None, cursor=3, complete_list_size=None, records=4, now=later
        )
    state = await states.get(KEY)
    assert state is not None
    assert (state.resumption_token, state.cursor, state.complete_list_size) == (None, 3, 7)
    assert (state.records, state.pages, state.updated_at, state.finished_at) == (7, 2, later, later)
    assert state.started_at == T0 and state.updated_at.utcoffset() == timedelta(0)


async def test_restart_forgets_progress(db: Store) -> None:
    """Starting again from the first page resets token, counts and the finish, keeps the key."""
    states = HarvestStateRepository(db)
    await states.start("arXivRaw", "cs", "2024-11-01", "", now=T0)
    async with db.transaction() as conn:
        await states.advance(
            conn, KEY, token=None, cursor=0, complete_list_size=2, records=2, now=T0
        )
    later = T0 + timedelta(days=1)
    state = await states.start("arXivRaw", "cs", "2024-11-01", "", now=later, restarts=1)
    assert (state.resumption_token, state.cursor, state.complete_list_size) == (None, None, None)
    assert (state.records, state.pages, state.restarts, state.finished_at) == (0, 0, 1, None)
    assert state.started_at == state.updated_at == later


async def test_rows_older_code_wrote_still_read(db: Store) -> None:
    """Times older code stored with `isoformat()` (no microseconds) read as the same instant."""
    await db.execute(
        text(
            "INSERT INTO harvest_state (harvest_key, metadata_prefix, started_at, updated_at)"
            " VALUES (:key, 'arXivRaw', :at, :at)"
        ),
        {"key": KEY, "at": T0.isoformat()},
    )
    state = await HarvestStateRepository(db).get(KEY)
    assert state is not None and state.started_at == state.updated_at == T0
