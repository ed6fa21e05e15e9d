"""Tests for storage.feeds: conditional-GET validators, build dates and feed health."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.domain.models import FeedState
from storage.feeds import MAX_ERROR_LENGTH, FeedStateRepository
from storage.store import Store
from tests.storage.conftest import T0

URL = "https://rss.arxiv.org/rss/cs.LG"
BUILD = "2024-11-28T05:00:00+00:00"


async def test_unknown_feed_has_no_state(db: Store) -> None:
    """A URL never polled reads as None and is not listed."""
    feeds = FeedStateRepository(db)
    assert await feeds.get(URL) is None
    assert await feeds.all() == []


async def test_success_stores_validators_and_build_date(db: Store) -> None:
    """A fetched listing records its ETag, Last-Modified and build date, and resets failures."""
    feeds = FeedStateRepository(db)
    await feeds.record_failure(URL, "HTTP 503", at=T0)
    later = T0 + timedelta(minutes=5)
    await feeds.record_success(
        URL, etag='"abc"', last_modified="Thu, 28 Nov 2024 05:00:01 GMT", build_date=BUILD, at=later
    )
    assert await feeds.get(URL) == FeedState(
        url=URL,
        etag='"abc"',
        last_modified="Thu, 28 Nov 2024 05:00:01 GMT",
        last_build=BUILD,
        last_success=later,
        last_attempt=later,
        last_error="HTTP 503",
        last_error_at=T0,
        consecutive_failures=0,
    )


async def test_success_replaces_validators_as_given(db: Store) -> None:
    """A later listing without an ETag clears the old one rather than resending it."""
    feeds = FeedStateRepository(db)
    await feeds.record_success(URL, etag='"a"', last_modified="x", build_date=BUILD, at=T0)
    await feeds.record_success(URL, etag=None, last_modified="y", build_date=None, at=T0)
    state = await feeds.get(URL)
    assert state is not None
    assert (state.etag, state.last_modified, state.last_build) == (None, "y", None)


async def test_not_modified_keeps_validators(db: Store) -> None:
    """A 304 is a healthy poll: validators and build date stay, times move, failures reset."""
    feeds = FeedStateRepository(db)
    await feeds.record_success(URL, etag='"a"', last_modified="x", build_date=BUILD, at=T0)
    await feeds.record_failure(URL, "timeout", at=T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=2)
    await feeds.record_not_modified(URL, at=later)
    state = await feeds.get(URL)
    assert state is not None
    assert (state.etag, state.last_modified, state.last_build) == ('"a"', "x", BUILD)
    assert (state.last_success, state.last_attempt, state.consecutive_failures) == (later, later, 0)


async def test_not_modified_for_a_new_url(db: Store) -> None:
    """A 304 on a URL with no row yet creates a healthy row without validators."""
    feeds = FeedStateRepository(db)
    await feeds.record_not_modified(URL, at=T0)
    assert await feeds.get(URL) == FeedState(url=URL, last_success=T0, last_attempt=T0)


async def test_failures_count_up_and_truncate(db: Store) -> None:
    """Each failure increments the count; the error keeps at most 500 characters."""
    feeds = FeedStateRepository(db)
    for n in range(3):
        await feeds.record_failure(URL, f"error {n} " + "x" * 1_000, at=T0 + timedelta(minutes=n))
    state = await feeds.get(URL)
    assert state is not None
    assert state.consecutive_failures == 3
    assert state.last_error is not None and len(state.last_error) == MAX_ERROR_LENGTH == 500
    assert state.last_error.startswith("error 2 ")
    assert state.last_error_at == state.last_attempt == T0 + timedelta(minutes=2)
    assert state.last_success is None


async def test_all_lists_feeds_by_url(db: Store) -> None:
    """all() returns every polled URL, sorted."""
    feeds = FeedStateRepository(db)
    for url in ("https://b.example/rss", "https://a.example/rss"):
        await feeds.record_not_modified(url, at=T0)
    assert [s.url for s in await feeds.all()] == ["https://a.example/rss", "https://b.example/rss"]


async def test_times_are_stored_in_utc(db: Store) -> None:
    """A time in another zone reads back as the same instant in UTC."""
    feeds = FeedStateRepository(db)
    await feeds.record_not_modified(URL, at=T0.astimezone(timezone(timedelta(hours=-5))))
    state = await feeds.get(URL)
    assert state is not None and state.last_success == T0
    assert state.last_success.utcoffset() == timedelta(0)


async def test_naive_times_are_refused(db: Store) -> None:
    """A naive datetime is a bug upstream and fails loudly instead of being stored."""
    feeds = FeedStateRepository(db)
    with pytest.raises(ValueError, match="timezone-aware"):
        await feeds.record_failure(URL, "x", at=datetime(2024, 11, 28, 5, 0))  # noqa: DTZ001
    assert await feeds.get(URL) is None
