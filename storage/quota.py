"""Subscription quotas, checked in the transaction that inserts the subscription.

The counts and the insert must not interleave with another subscribe of the
same scope, or two concurrent subscribes could both see room for one more.
SQLite already serialises writers (the database's write lock, taken by
`BEGIN IMMEDIATE`); PostgreSQL takes one transaction-scoped advisory lock per
quota scope, in a fixed order so two subscribes never deadlock.
`scope_locker(dialect)` picks the engine's way once, in the repository.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import BigInteger, ColumnElement, cast, func, literal, select

from bot.domain.models import Destination, DestinationKind, SubscriptionKind
from storage.schema import destinations, subscriptions
from storage.store import Connection, Dialect

log = logging.getLogger(__name__)

_S = subscriptions.c
_D = destinations.c


@dataclass(frozen=True, slots=True)
class SubscriptionQuota:
    """Limits checked in the same transaction as the insert, so concurrency cannot beat them."""

    per_guild: int
    per_user: int
    keywords_per_destination: int  # also the limit on query subscriptions per destination


class QuotaReachedError(Exception):
    """A new subscription would go over a limit; `scope` is "guild", "user" or "keywords"."""

    def __init__(self, scope: str, count: int, limit: int) -> None:
        super().__init__(f"{scope} quota reached: {count} of {limit}")
        self.scope = scope
        self.count = count
        self.limit = limit


def count_for_guild(guild_id: int) -> ColumnElement[int]:
    """Subscriptions of all channels of a guild (the per-guild quota's count)."""
    joined = subscriptions.join(destinations, _D.id == _S.destination_id)
    return (
        select(func.count())
        .select_from(joined)
        .where(_D.guild_id == guild_id, _D.kind == DestinationKind.CHANNEL.value)
        .scalar_subquery()
    )


def count_for_user(user_id: int) -> ColumnElement[int]:
    """Subscriptions a user created, anywhere (the per-user quota's count)."""
    return (
        select(func.count())
        .select_from(subscriptions)
        .where(_S.created_by == user_id)
        .scalar_subquery()
    )


def _count_for_destination(destination_id: int, kind: SubscriptionKind) -> ColumnElement[int]:
    return (
        select(func.count())
        .select_from(subscriptions)
        .where(_S.destination_id == destination_id, _S.kind == kind.value)
        .scalar_subquery()
    )


async def check_quota(
    conn: Connection,
    quota: SubscriptionQuota,
    destination: Destination,
    kind: SubscriptionKind,
    user: int,
) -> None:
    """Raise `QuotaReachedError` if one more subscription would pass a limit."""
    checks: list[tuple[str, ColumnElement[int], int]] = []
    if kind in (SubscriptionKind.KEYWORD, SubscriptionKind.QUERY):
        scope = "keywords" if kind is SubscriptionKind.KEYWORD else "queries"
        count = _count_for_destination(destination.id, kind)
        checks.append((scope, count, quota.keywords_per_destination))
    if destination.kind is DestinationKind.CHANNEL and destination.guild_id is not None:
        checks.append(("guild", count_for_guild(destination.guild_id), quota.per_guild))
    checks.append(("user", count_for_user(user), quota.per_user))
    # All counts in one statement: one round trip instead of up to three.
    counts = (await conn.execute(select(*(count for _, count, _ in checks)))).one()
    for (scope, _, limit), count in zip(checks, counts, strict=True):
        if int(count) >= limit:
            raise QuotaReachedError(scope, int(count), limit)


def scope_key(scope: str, ident: int) -> int:
    """A stable signed 64-bit lock key for one quota scope (`user` 42, `guild` 7, ...)."""
    digest = hashlib.blake2b(f"paperbell-quota:{scope}:{ident}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def quota_scopes(destination: Destination, kind: SubscriptionKind, user: int) -> list[int]:
    """Lock keys of the scopes a new subscription counts against, in one global order."""
    scopes = [scope_key("user", user)]
    if destination.guild_id is not None:
        scopes.append(scope_key("guild", destination.guild_id))
    if kind in (SubscriptionKind.KEYWORD, SubscriptionKind.QUERY):
        scopes.append(scope_key("destination", destination.id))
    return sorted(set(scopes))  # one global order: no lock cycles


class ScopeLocker(Protocol):
    """Serialises subscribes that share a quota scope, until the transaction ends."""

    async def lock(self, conn: Connection, scopes: list[int]) -> None: ...


class SqliteScopeLocker:
    """SQLite: the transaction already holds the database's only write lock."""

    async def lock(self, conn: Connection, scopes: list[int]) -> None:
        return None


class PostgresScopeLocker:
    """PostgreSQL: one transaction-scoped advisory lock per scope, in the given order."""

    async def lock(self, conn: Connection, scopes: list[int]) -> None:
        for key in scopes:
            await conn.execute(select(func.pg_advisory_xact_lock(_lock_id(key))))


def _lock_id(key: int) -> ColumnElement[int]:
    # The schema is mixed in because advisory locks are database-wide.
    schema_hash = func.hashtextextended(func.coalesce(func.current_schema(), ""), 0)
    return cast(literal(key, BigInteger), BigInteger).op("#", return_type=BigInteger)(schema_hash)


def scope_locker(dialect: Dialect) -> ScopeLocker:
    return PostgresScopeLocker() if dialect == "postgresql" else SqliteScopeLocker()
