"""Tests for the look-up cache: fresh for 24 hours, persisted, bounded, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.lookups import LookupCache
from storage.sqlite import open_sqlite
from storage.store import Store

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


async def test_fresh_for_the_ttl_then_stale(db: Store) -> None:
    """An answered query is fresh until 24 h have passed, then it is asked again."""
    cache = LookupCache(db)
    assert await cache.fresh("au:legg_s", now=T0) is None
    await cache.record("au:legg_s", at=T0, results=7, total=7)
    hit = await cache.fresh("au:legg_s", now=T0 + timedelta(hours=23, minutes=59))
    assert hit is not None and (hit.results, hit.total, hit.fetched_at) == (7, 7, T0)
    assert await cache.fresh("au:legg_s", now=T0 + timedelta(hours=24)) is None
    assert await cache.fresh("au:legg", now=T0) is None  # keyed by the exact query


async def test_record_again_refreshes(db: Store) -> None:
    """Asking arXiv again replaces the entry's time and counts."""
    cache = LookupCache(db)
    await cache.record("all:grokking", at=T0, results=3, total=None)
    later = T0 + timedelta(hours=30)
    await cache.record("all:grokking", at=later, results=5, total=120)
    hit = await cache.fresh("all:grokking", now=later)
    assert hit is not None and (hit.results, hit.total, hit.fetched_at) == (5, 120, later)
    assert await cache.count() == 1


async def test_bounded_by_age_and_count(db: Store) -> None:
    """Expired entries and the oldest beyond max_entries are deleted when one is recorded."""
    cache = LookupCache(db, max_entries=3)
    await cache.record("au:old", at=T0 - timedelta(days=2), results=1, total=1)
    for n in range(5):
        await cache.record(f"au:n{n}", at=T0 + timedelta(minutes=n), results=n, total=n)
    assert await cache.count() == 3
    now = T0 + timedelta(minutes=10)
    kept = [q for q in ("au:old", "au:n0", "au:n1", "au:n2", "au:n3", "au:n4")
            if await cache.fresh(q, now=now)]  # fmt: skip
    assert kept == ["au:n2", "au:n3", "au:n4"]


async def test_survives_a_restart(tmp_path: Path) -> None:
    """The cache lives in the database: a reopened store still knows the query."""
    path = tmp_path / "store.db"
    db = await open_sqlite(path)
    await LookupCache(db).record("au:legg_s", at=T0, results=2, total=2)
    await db.close()
    db = await open_sqlite(path)
    try:
        assert await LookupCache(db).fresh("au:legg_s", now=T0 + timedelta(hours=1)) is not None
    finally:
        await db.close()


async def test_naive_times_are_refused(db: Store) -> None:
    """Times must be timezone-aware UTC at the storage boundary."""
    with pytest.raises(ValueError):
        await LookupCache(db).record("au:x", at=datetime(2026, 1, 1), results=0, total=0)  # noqa: DTZ001


async def test_rows_older_code_wrote_expire_on_time(db: Store) -> None:
    """Entries stored as `isoformat()` without microseconds are fresh and pruned by instant."""
    for query, at in (("au:old_a", T0), ("au:old_b", T0 + timedelta(hours=1))):
        await db.execute(
            text("INSERT INTO arxiv_lookups (query, fetched_at, results) VALUES (:q, :at, 1)"),
            {"q": query, "at": at.isoformat()},
        )
    cache = LookupCache(db)
    hit = await cache.fresh("au:old_a", now=T0 + timedelta(hours=23))
    assert hit is not None and hit.fetched_at == T0
    assert await cache.fresh("au:old_a", now=T0 + timedelta(hours=24)) is None
    # Exactly 24 h after au:old_a: it expires, au:old_b (an hour younger) stays.
    await cache.record("au:new", at=T0 + timedelta(hours=24), results=0, total=0)
    assert await cache.count() == 2
    assert await cache.fresh("au:old_b", now=T0 + timedelta(hours=24)) is not None
