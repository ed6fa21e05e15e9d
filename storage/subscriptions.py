"""Subscriptions: what each destination (channel, DM) wants to be alerted about.

A subscription is stored with the keys the matcher looks it up by: `match_key`
(category id, author surname key, or a keyword's most selective token) and
`given_key` (author given names, or a keyword's normalized phrase). The
caller computes both (see `bot.domain.matching`), so this module never normalizes
text itself and the index and the matcher cannot drift apart.

Destinations live in `storage.destinations`; the repository here forwards their
methods so its callers keep one object. Quotas are in `storage.quota`, the
matcher's candidate lookup in `storage.candidates`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, delete, exists, func, or_, select

from bot.domain.matching import MatchKeys
from bot.domain.models import Destination, DestinationKind, Subscription, SubscriptionKind
from bot.domain.query import KeyKind
from storage.candidates import candidate_finder
from storage.destinations import DestinationRepository, destination_columns, destination_from_row
from storage.quota import (
    QuotaReachedError,
    SubscriptionQuota,
    check_quota,
    count_for_guild,
    count_for_user,
    quota_scopes,
    scope_locker,
)
from storage.schema import deliveries, destinations, subscription_query_keys, subscriptions
from storage.sql import insert_for
from storage.store import Connection, Store

__all__ = ["QuotaReachedError", "SubscriptionQuota", "SubscriptionRepository", "Usage"]

log = logging.getLogger(__name__)

_S = subscriptions.c
_D = destinations.c
_JOINED = subscriptions.join(destinations, _D.id == _S.destination_id)
_SELECT = select(
    _S.id,
    _S.kind,
    _S.value,
    _S.match_key,
    _S.given_key,
    _S.include_cross,
    _S.include_replacements,
    _S.created_by,
    _S.created_at,
    *destination_columns(),
).select_from(_JOINED)
_LIVE = _D.paused_reason.is_(None)
_CHANNEL = DestinationKind.CHANNEL.value
TOKEN_KEY = KeyKind.TOKEN.value  # the index key kind of a word (queries and keywords)
_DM = DestinationKind.DM.value


@dataclass(frozen=True, slots=True)
class Usage:
    """A guild's channels, or a user's DMs: subscriptions, paused destinations, alerts waiting."""

    subscriptions: int
    paused: int
    pending: int


def _subscription_from_row(row: Row[Any]) -> Subscription:
    return Subscription(
        id=int(row.id),
        destination=destination_from_row(row),
        kind=SubscriptionKind(row.kind),
        value=row.value,
        match_key=row.match_key,
        given_key=row.given_key,
        include_cross=bool(row.include_cross),
        include_replacements=bool(row.include_replacements),
        created_by=int(row.created_by),
        created_at=row.created_at,
    )


class SubscriptionRepository:
    """Reads and writes subscriptions (and, forwarded, destinations); one transaction each."""

    def __init__(self, db: Store) -> None:
        self.db = db
        self.destinations = DestinationRepository(db)
        self._candidates = candidate_finder(db.dialect)
        self._locker = scope_locker(db.dialect)

    # -- destinations (storage.destinations) ---------------------------------

    async def ensure_destination(
        self, kind: DestinationKind, target_id: int, guild_id: int | None
    ) -> Destination:
        """The destination for this channel or user, created on first use."""
        return await self.destinations.ensure(kind, target_id, guild_id)

    async def get_destination(self, destination_id: int) -> Destination | None:
        return await self.destinations.get(destination_id)

    async def destination_for(self, kind: DestinationKind, target_id: int) -> Destination | None:
        return await self.destinations.find(kind, target_id)

    async def remove_destination(self, destination_id: int) -> bool:
        """Forget a destination (channel deleted); its subscriptions and deliveries go with it."""
        return await self.destinations.remove(destination_id)

    async def pause_destination(
        self, destination_id: int, reason: str, at: datetime
    ) -> Destination | None:
        """Stop matching and delivering for a destination (e.g. Discord answered 403)."""
        return await self.destinations.pause(destination_id, reason, at)

    async def resume_destination(self, destination_id: int) -> Destination | None:
        return await self.destinations.resume(destination_id)

    async def set_digest(self, destination_id: int, digest: bool) -> Destination | None:
        return await self.destinations.set_digest(destination_id, digest)

    # -- subscriptions ------------------------------------------------------

    async def add(
        self,
        destination: Destination,
        kind: SubscriptionKind,
        value: str,
        match_key: str,
        given_key: str,
        *,
        include_cross: bool,
        include_replacements: bool,
        created_by: int,
        now: datetime,
        quota: SubscriptionQuota | None = None,
        index_keys: Collection[tuple[str, str]] = (),
    ) -> tuple[Subscription, bool]:
        """Subscribe `destination`; returns (subscription, created).

        An existing subscription with the same keys is returned unchanged
        (its flags included) instead of being duplicated. With `quota`, a new
        one is refused with `QuotaReachedError` when it would go over a limit;
        the counts and the insert are one transaction, serialised per quota
        scope (see `storage.quota`). `index_keys` are a query subscription's
        (key kind, key) pairs, stored with a new one; a keyword subscription is
        indexed under its match key as a `token` key.
        """
        if not match_key:
            raise ValueError(f"empty match key for {kind.value} subscription {value!r}")
        if kind is SubscriptionKind.KEYWORD:
            # Found through the token index with query subscriptions (see `candidates`).
            index_keys = {*index_keys, (TOKEN_KEY, match_key)}
        if now.tzinfo is None:  # refused here, not as a wrapped error from the bind
            raise ValueError(f"naive datetime {now!r}: paperbell stores UTC only")
        same = _SELECT.where(
            _S.destination_id == destination.id,
            _S.kind == kind.value,
            _S.match_key == match_key,
            _S.given_key == given_key,
        )
        insert = (
            insert_for(self.db.dialect, subscriptions)
            .values(
                destination_id=destination.id,
                kind=kind.value,
                value=value,
                match_key=match_key,
                given_key=given_key,
                include_cross=int(include_cross),
                include_replacements=int(include_replacements),
                created_by=created_by,
                created_at=now,
            )
            .on_conflict_do_nothing(
                index_elements=[_S.destination_id, _S.kind, _S.match_key, _S.given_key]
            )
            .returning(_S.id)
        )
        async with self.db.transaction() as conn:
            if quota is not None:
                await self._locker.lock(conn, quota_scopes(destination, kind, created_by))
                existing = (await conn.execute(same)).first()
                if existing is not None:
                    return _subscription_from_row(existing), False
                await check_quota(conn, quota, destination, kind, created_by)
            new_id = (await conn.execute(insert)).scalar()
            created = new_id is not None
            if created and index_keys:
                await conn.execute(
                    insert_for(self.db.dialect, subscription_query_keys).on_conflict_do_nothing(),
                    [
                        {"subscription_id": new_id, "kind": k, "key": v}
                        for k, v in sorted(set(index_keys))
                    ],
                )
            row = (await conn.execute(same)).first()
        if row is None:  # pragma: no cover - the row was inserted or already there
            raise LookupError(f"subscription for destination {destination.id} vanished")
        return _subscription_from_row(row), created

    async def get(self, subscription_id: int) -> Subscription | None:
        row = await self.db.fetchone(_SELECT.where(_S.id == subscription_id))
        return None if row is None else _subscription_from_row(row)

    async def remove(self, subscription_id: int) -> Subscription | None:
        """Delete one subscription; returns what was deleted, or None if it did not exist."""
        async with self.db.transaction() as conn:
            row = (await conn.execute(_SELECT.where(_S.id == subscription_id))).first()
            if row is None:
                return None
            await conn.execute(delete(subscriptions).where(_S.id == subscription_id))
        return _subscription_from_row(row)

    async def list_for_guild(self, guild_id: int) -> list[Subscription]:
        """Channel subscriptions of one guild (never another guild's, never DMs)."""
        return await self._list(
            _SELECT.where(_D.guild_id == guild_id, _D.kind == _CHANNEL).order_by(
                _D.target_id, _S.kind, _S.value, _S.id
            )
        )

    async def list_dm(self, user_id: int) -> list[Subscription]:
        return await self._list(
            _SELECT.where(_D.kind == _DM, _D.target_id == user_id).order_by(
                _S.kind, _S.value, _S.id
            )
        )

    async def list_destination(self, destination_id: int) -> list[Subscription]:
        return await self._list(
            _SELECT.where(_S.destination_id == destination_id).order_by(_S.kind, _S.value, _S.id)
        )

    async def count_for_guild(self, guild_id: int) -> int:
        """Subscriptions of all channels of a guild (for the per-guild quota)."""
        return await self._count(count_for_guild(guild_id))

    async def count_for_user(self, user_id: int) -> int:
        """Subscriptions created by a user, in any guild or DM (for the per-user quota)."""
        return await self._count(count_for_user(user_id))

    async def usage(self, *, guild_id: int | None = None, user_id: int | None = None) -> Usage:
        """What `/paperbell status` may show a caller: one guild's channels, or one user's DMs."""
        scope: ColumnElement[bool]
        if guild_id is not None and user_id is None:
            scope = and_(_D.kind == _CHANNEL, _D.guild_id == guild_id)
        elif user_id is not None and guild_id is None:
            scope = and_(_D.kind == _DM, _D.target_id == user_id)
        else:
            raise ValueError("usage() takes exactly one of guild_id and user_id")
        count = select(func.count())
        row = await self.db.fetchone(
            select(
                count.select_from(_JOINED).where(scope).scalar_subquery(),
                count.select_from(destinations)
                .where(scope, _D.paused_reason.is_not(None))
                .scalar_subquery(),
                count.select_from(
                    deliveries.join(destinations, _D.id == deliveries.c.destination_id)
                )
                .where(scope, deliveries.c.status == "pending")
                .scalar_subquery(),
            )
        )
        subs, paused, pending = (0, 0, 0) if row is None else (int(v) for v in row)
        return Usage(subscriptions=subs, paused=paused, pending=pending)

    async def all_categories(self) -> list[str]:
        """Categories some unpaused destination subscribes to: what the poller must fetch."""
        return await self._live_match_keys(SubscriptionKind.CATEGORY)

    async def followed_papers(self) -> list[str]:
        """Versionless ids of papers some unpaused destination follows."""
        return await self._live_match_keys(SubscriptionKind.PAPER)

    async def _live_match_keys(self, kind: SubscriptionKind) -> list[str]:
        rows = await self.db.fetchall(
            select(_S.match_key)
            .distinct()
            .select_from(_JOINED)
            .where(_S.kind == kind.value, _LIVE)
            .order_by(_S.match_key)
        )
        return [str(row[0]) for row in rows]

    async def followers_in(self, conn: Connection, paper_id: str) -> list[Subscription]:
        """Paper subscriptions to `paper_id` of unpaused destinations, on `conn`."""
        result = await conn.execute(
            _SELECT.where(
                _S.kind == SubscriptionKind.PAPER.value, _S.match_key == paper_id, _LIVE
            ).order_by(_S.id)
        )
        return [_subscription_from_row(row) for row in result.all()]

    async def needs_all_papers(self) -> bool:
        """Whether an unpaused destination has an author, keyword or query subscription.

        Those can match a paper of any category, so the poller must read every
        archive's listing, not only the subscribed categories.
        """
        local = [SubscriptionKind.AUTHOR, SubscriptionKind.KEYWORD, SubscriptionKind.QUERY]
        found = await self.db.scalar(
            select(
                exists().select_from(_JOINED).where(_S.kind.in_([k.value for k in local]), _LIVE)
            )
        )
        return bool(found)

    async def creators(self, destination_id: int) -> list[int]:
        """Users who created the destination's subscriptions (to tell them it was paused)."""
        rows = await self.db.fetchall(
            select(_S.created_by)
            .distinct()
            .where(_S.destination_id == destination_id)
            .order_by(_S.created_by)
        )
        return [int(row[0]) for row in rows]

    async def creators_for_feed(self, categories: Collection[str]) -> list[int]:
        """Users whose alerts a listing of `categories` feeds, to tell them when it fails.

        A category subscription is fed by its own category or its whole archive
        (`cs.LG` by `cs`); author and keyword subscriptions by any whole archive,
        since those are matched against every new paper.
        """
        wanted = sorted(set(categories))
        if not wanted:
            return []
        archives = [c for c in wanted if "." not in c]
        fed = or_(_S.match_key.in_(wanted), *(_S.match_key.like(f"{a}.%") for a in archives))
        where = and_(_S.kind == SubscriptionKind.CATEGORY.value, fed)
        if archives:
            where = or_(where, _S.kind != SubscriptionKind.CATEGORY.value)
        rows = await self.db.fetchall(
            select(_S.created_by)
            .distinct()
            .select_from(_JOINED)
            .where(_LIVE, where)
            .order_by(_S.created_by)
        )
        return [int(row[0]) for row in rows]

    async def candidates(
        self,
        conn: Connection,
        *,
        categories: Collection[str],
        surnames: Collection[str],
        keyword_tokens: Collection[str],
        paper_ids: Collection[str] = (),
        query_keys: Collection[tuple[str, str]] = (),
    ) -> list[Subscription]:
        """Subscriptions of unpaused destinations whose match key is one of the given keys
        (keyword subscriptions: one of `keyword_tokens`), and query subscriptions indexed
        under one of `query_keys` ((key kind, key) pairs).

        Runs on `conn`, the connection yielded by `Store.transaction()`, so
        the poller can look up, match and enqueue in one transaction. The
        result is a superset of what matches; `bot.domain.matching` decides.
        """
        keys = {
            SubscriptionKind.CATEGORY.value: _present(categories),
            SubscriptionKind.AUTHOR.value: _present(surnames),
            SubscriptionKind.PAPER.value: _present(paper_ids),
        }
        # Keyword subscriptions are indexed as `token` keys beside the queries' (see
        # `add`): one probe per word finds both. A listing's query keys already hold
        # its words, so adding the keyword tokens usually adds nothing.
        index_keys: dict[str, set[str]] = {}
        for kind, key in query_keys:
            index_keys.setdefault(kind, set()).add(key)
        index_keys.setdefault(TOKEN_KEY, set()).update(keyword_tokens)
        for values in index_keys.values():
            values.discard("")
        rows = await self._candidates.find(conn, keys, index_keys)
        return [_subscription_from_row(row) for row in rows]

    async def candidates_for(self, conn: Connection, keys: MatchKeys) -> list[Subscription]:
        """`candidates` under every key of a batch (`bot.domain.matching.match_keys`)."""
        return await self.candidates(
            conn,
            categories=keys.categories,
            surnames=keys.surnames,
            keyword_tokens=keys.keyword_tokens,
            paper_ids=keys.paper_ids,
            query_keys=keys.query_keys,
        )

    async def query_keys(self, subscription_id: int) -> set[tuple[str, str]]:
        """The (key kind, key) pairs a query subscription is indexed under."""
        q = subscription_query_keys.c
        rows = await self.db.fetchall(
            select(q.kind, q.key).where(q.subscription_id == subscription_id)
        )
        return {(str(row.kind), str(row.key)) for row in rows}

    async def _list(self, statement: Select[Any]) -> list[Subscription]:
        return [_subscription_from_row(row) for row in await self.db.fetchall(statement)]

    async def _count(self, count: ColumnElement[int]) -> int:
        return int(await self.db.scalar(select(count)) or 0)


def _present(values: Collection[str]) -> Collection[str]:
    """`values` once each, without the empty key (no subscription has it); a set without
    it is used as it is."""
    if isinstance(values, set | frozenset) and "" not in values:
        return values
    return {v for v in values if v}
