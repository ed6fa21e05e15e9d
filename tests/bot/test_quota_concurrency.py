"""Quotas hold under concurrency: simultaneous subscribes never pass a limit, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.domain.errors import QuotaExceededError
from bot.domain.models import DestinationKind, SubscriptionKind
from bot.services import PaperService
from bot.subscribing import SubscribeResult, SubscriptionService
from storage.store import Store

NOW = datetime(2024, 11, 28, 6, 0, tzinfo=UTC)
GUILD, CHANNEL = 1001, 11
USER = 501
WORDS = [f"topic{n:03d} model" for n in range(200)]


def service(db: Store, tmp_path: Path, **limits: int) -> SubscriptionService:
    settings = Settings(database=str(tmp_path / "unused.db"), **limits)
    return SubscriptionService(PaperService(db, None, clock=lambda: NOW), settings)


def keyword(
    subs: SubscriptionService, user: int, channel: int | None, n: int
) -> Coroutine[Any, Any, SubscribeResult]:
    """Keyword subscription number `n` by `user` for `channel` (None: the user's DMs)."""
    return subs.subscribe(
        actor_id=user,
        guild_id=None if channel is None else GUILD,
        channel_id=channel,
        kind=SubscriptionKind.KEYWORD,
        value=WORDS[n],
    )


async def outcomes(calls: list[Coroutine[Any, Any, SubscribeResult]]) -> tuple[int, int]:
    """(created, refused by a quota) among concurrent subscribes; anything else fails the test."""
    created = refused = 0
    for result in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(result, QuotaExceededError):
            refused += 1
        elif isinstance(result, BaseException):
            raise result
        else:
            created += int(result.created)
    return created, refused


async def test_concurrent_dm_subscribes_stop_at_the_user_quota(
    any_db: Store, tmp_path: Path
) -> None:
    """80 simultaneous /subscribe by DM against a per-user limit of 50 create exactly 50."""
    # One DM destination holds them all: its keyword limit is lifted out of the way.
    subs = service(
        any_db, tmp_path, max_subscriptions_per_user=50, max_keywords_per_destination=1000
    )
    calls = [keyword(subs, USER, None, n) for n in range(80)]
    assert await outcomes(calls) == (50, 30)
    assert await subs.repo.count_for_user(USER) == 50


async def test_concurrent_keywords_stop_at_the_destination_limit(
    any_db: Store, tmp_path: Path
) -> None:
    """60 simultaneous keywords on one channel, by 60 users, leave exactly 25 (the limit)."""
    subs = service(any_db, tmp_path, max_keywords_per_destination=25)
    calls = [keyword(subs, USER + n, CHANNEL, n) for n in range(60)]
    assert await outcomes(calls) == (25, 35)
    dest = await subs.repo.destination_for(DestinationKind.CHANNEL, CHANNEL)
    assert dest is not None
    assert len(await subs.repo.list_destination(dest.id)) == 25


async def test_concurrent_channel_subscribes_stop_at_the_guild_quota(
    any_db: Store, tmp_path: Path
) -> None:
    """80 simultaneous channel subscribes in one server against a limit of 50 create exactly 50."""
    subs = service(any_db, tmp_path, max_subscriptions_per_guild=50)
    calls = [keyword(subs, USER + n, CHANNEL + n, n) for n in range(80)]
    assert await outcomes(calls) == (50, 30)
    assert await subs.repo.count_for_guild(GUILD) == 50
