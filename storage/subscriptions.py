"""Destinations (channels, DMs) and the subscriptions that feed them.

A subscription is stored with the keys the matcher looks it up by: `match_key`
(category id, author surname key, or a keyword's most selective token) and
`given_key` (author given names, or a keyword's normalized phrase). The
caller computes both (see `bot.domain.matching`), so this module never normalizes
text itself and the index and the matcher cannot drift apart.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.models import Destination, DestinationKind, Subscription, SubscriptionKind
from bot.domain.timestamps import from_timestamp, optional_timestamp, to_timestamp
from storage.backend import AnyDatabase, Connection, Row

log = logging.getLogger(__name__)

# Destination columns under unambiguous aliases, for queries that join them.
DESTINATION_COLUMNS = (
    "d.id AS d_id, d.kind AS d_kind, d.target_id AS d_target_id, d.guild_id AS d_guild_id, "
    "d.paused_reason AS d_paused_reason, d.paused_at AS d_paused_at, d.digest AS d_digest"
)
_SUBSCRIPTION_SELECT = (
    "SELECT s.id, s.kind, s.value, s.match_key, s.given_key, s.include_cross, "
    "s.include_replacements, s.created_by, s.created_at, "
    + DESTINATION_COLUMNS
    + " FROM subscriptions AS s JOIN destinations AS d ON d.id = s.destination_id"
)

# Candidate lookup: the batch's keys go into a TEMP table that drives the join,
# so each key is one probe of the subscriptions(kind, match_key) index. CROSS
# JOIN pins that loop order in SQLite; nothing ever scans all subscriptions.
CANDIDATES_SQL = (
    "SELECT s.id, s.kind, s.value, s.match_key, s.given_key, s.include_cross, "
    "s.include_replacements, s.created_by, s.created_at, "
    + DESTINATION_COLUMNS
    + " FROM temp.paperbell_match_keys AS k"
    " CROSS JOIN subscriptions AS s ON s.kind = k.kind AND s.match_key = k.key"
    " CROSS JOIN destinations AS d ON d.id = s.destination_id"
    " WHERE d.paused_reason IS NULL"
    " ORDER BY s.id"
)
# Query subscriptions are found through their index keys (`bot.domain.query.required_keys`):
# one probe of subscription_query_keys(kind, key) per key of the batch's papers.
_QUERY_CANDIDATES_SQL = (
    "SELECT DISTINCT s.id, s.kind, s.value, s.match_key, s.given_key, s.include_cross, "
    "s.include_replacements, s.created_by, s.created_at, "
    + DESTINATION_COLUMNS
    + " FROM temp.paperbell_match_keys AS k"
    " CROSS JOIN subscription_query_keys AS q ON q.kind = k.kind AND q.key = k.key"
    " CROSS JOIN subscriptions AS s ON s.id = q.subscription_id"
    " CROSS JOIN destinations AS d ON d.id = s.destination_id"
    " WHERE d.paused_reason IS NULL"
    " ORDER BY s.id"
)
_PG_QUERY_CANDIDATES_SQL = (
    "SELECT DISTINCT s.id, s.kind, s.value, s.match_key, s.given_key, s.include_cross, "
    "s.include_replacements, s.created_by, s.created_at, "
    + DESTINATION_COLUMNS
    + " FROM unnest(CAST(? AS text[]), CAST(? AS text[])) AS k(kind, key)"
    " CROSS JOIN LATERAL (SELECT q0.subscription_id FROM subscription_query_keys AS q0"
    " WHERE q0.kind = k.kind AND q0.key = k.key OFFSET 0) AS q"
    " JOIN subscriptions AS s ON s.id = q.subscription_id"
    " JOIN destinations AS d ON d.id = s.destination_id"
    " WHERE d.paused_reason IS NULL"
    " ORDER BY s.id"
)
_CREATE_KEYS_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS paperbell_match_keys ("
    "kind TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID"
)
# PostgreSQL: the keys arrive as two arrays; LATERAL ... OFFSET 0 keeps one probe of
# subscriptions(kind, match_key) per key (a plain join may scan every subscription),
# and no temp table means no dead rows piling up in a pooled connection's temp schema.
_PG_CANDIDATES_SQL = (
    "SELECT s.id, s.kind, s.value, s.match_key, s.given_key, s.include_cross, "
    "s.include_replacements, s.created_by, s.created_at, "
    + DESTINATION_COLUMNS
    + " FROM unnest(CAST(? AS text[]), CAST(? AS text[])) AS k(kind, key)"
    " CROSS JOIN LATERAL (SELECT * FROM subscriptions AS s0"
    " WHERE s0.kind = k.kind AND s0.match_key = k.key OFFSET 0) AS s"
    " JOIN destinations AS d ON d.id = s.destination_id"
    " WHERE d.paused_reason IS NULL"
    " ORDER BY s.id"
)


def destination_from_row(row: Row, prefix: str = "d_") -> Destination:
    """Decode a destination from columns named like `DESTINATION_COLUMNS`."""
    return Destination(
        id=int(row[f"{prefix}id"]),
        kind=DestinationKind(row[f"{prefix}kind"]),
        target_id=int(row[f"{prefix}target_id"]),
        guild_id=None if row[f"{prefix}guild_id"] is None else int(row[f"{prefix}guild_id"]),
        paused_reason=row[f"{prefix}paused_reason"],
        paused_at=optional_timestamp(row[f"{prefix}paused_at"]),
        digest=bool(row[f"{prefix}digest"]),
    )


def _subscription_from_row(row: Row) -> Subscription:
    return Subscription(
        id=int(row["id"]),
        destination=destination_from_row(row),
        kind=SubscriptionKind(row["kind"]),
        value=row["value"],
        match_key=row["match_key"],
        given_key=row["given_key"],
        include_cross=bool(row["include_cross"]),
        include_replacements=bool(row["include_replacements"]),
        created_by=int(row["created_by"]),
        created_at=from_timestamp(row["created_at"]),
    )


_DESTINATION_SELECT = "SELECT " + DESTINATION_COLUMNS + " FROM destinations AS d"

# One transaction-scoped advisory lock per quota scope (PostgreSQL); the schema is
# mixed in because advisory locks are database-wide.
_PG_SCOPE_LOCK = (
    "SELECT pg_advisory_xact_lock("
    "CAST(? AS bigint) # hashtextextended(coalesce(current_schema(), ''), 0))"
)


@dataclass(frozen=True, slots=True)
class SubscriptionQuota:
    """Limits checked in the same transaction as the insert, so concurrency cannot beat them."""

    per_guild: int
    per_user: int
    keywords_per_destination: int  # also the limit on query subscriptions per destination


@dataclass(frozen=True, slots=True)
class Usage:
    """A guild's channels, or a user's DMs: subscriptions, paused destinations, alerts waiting."""

    subscriptions: int
    paused: int
    pending: int


class QuotaReachedError(Exception):
    """A new subscription would go over a limit; `scope` is "guild", "user" or "keywords"."""

    def __init__(self, scope: str, count: int, limit: int) -> None:
        super().__init__(f"{scope} quota reached: {count} of {limit}")
        self.scope = scope
        self.count = count
        self.limit = limit


def _scope_key(scope: str, ident: int) -> int:
    """A stable signed 64-bit lock key for one quota scope (`user` 42, `guild` 7, ...)."""
    digest = hashlib.blake2b(f"paperbell-quota:{scope}:{ident}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SubscriptionRepository:
    """Reads and writes destinations and subscriptions; every change is one transaction."""

    def __init__(self, db: AnyDatabase) -> None:
        self.db = db

    # -- destinations -------------------------------------------------------

    async def ensure_destination(
        self, kind: DestinationKind, target_id: int, guild_id: int | None
    ) -> Destination:
        """The destination for this channel or user, created on first use."""
        if (kind is DestinationKind.DM) != (guild_id is None):
            raise ValueError(f"{kind.value} destination with guild_id={guild_id!r}")
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO destinations (kind, target_id, guild_id) VALUES (?, ?, ?)"
                " ON CONFLICT (kind, target_id) DO UPDATE SET guild_id = excluded.guild_id",
                (kind.value, target_id, guild_id),
            )
            row = await _fetchone(
                conn,
                _DESTINATION_SELECT + " WHERE d.kind = ? AND d.target_id = ?",
                (kind.value, target_id),
            )
        if row is None:  # pragma: no cover - just upserted under the write lock
            raise LookupError(f"destination {kind.value} {target_id} vanished")
        return destination_from_row(row)

    async def get_destination(self, destination_id: int) -> Destination | None:
        row = await self.db.fetchone(_DESTINATION_SELECT + " WHERE d.id = ?", (destination_id,))
        return None if row is None else destination_from_row(row)

    async def destination_for(self, kind: DestinationKind, target_id: int) -> Destination | None:
        row = await self.db.fetchone(
            _DESTINATION_SELECT + " WHERE d.kind = ? AND d.target_id = ?", (kind.value, target_id)
        )
        return None if row is None else destination_from_row(row)

    async def remove_destination(self, destination_id: int) -> bool:
        """Forget a destination (channel deleted); its subscriptions and deliveries go with it."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM destinations WHERE id = ?", (destination_id,))
            removed = cursor.rowcount > 0
        if removed:
            log.info("removed destination %d with its subscriptions", destination_id)
        return removed

    async def pause_destination(
        self, destination_id: int, reason: str, at: datetime
    ) -> Destination | None:
        """Stop matching and delivering for a destination (e.g. Discord answered 403)."""
        return await self._update_destination(
            destination_id,
            "paused_reason = ?, paused_at = ?",
            (reason, to_timestamp(at)),
        )

    async def resume_destination(self, destination_id: int) -> Destination | None:
        return await self._update_destination(
            destination_id, "paused_reason = NULL, paused_at = NULL", ()
        )

    async def set_digest(self, destination_id: int, digest: bool) -> Destination | None:
        return await self._update_destination(destination_id, "digest = ?", (int(digest),))

    async def _update_destination(
        self, destination_id: int, assignments: str, params: tuple[Any, ...]
    ) -> Destination | None:
        async with self.db.transaction() as conn:
            await conn.execute(
                f"UPDATE destinations SET {assignments} WHERE id = ?", (*params, destination_id)
            )
            row = await _fetchone(conn, _DESTINATION_SELECT + " WHERE d.id = ?", (destination_id,))
        return None if row is None else destination_from_row(row)

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
        the counts and the insert are one transaction (SQLite: the database's
        write lock; PostgreSQL: an advisory lock per quota scope, taken in a
        fixed order so two subscribes never deadlock). `index_keys` are a
        query subscription's (key kind, key) pairs, stored with a new one.
        """
        if not match_key:
            raise ValueError(f"empty match key for {kind.value} subscription {value!r}")
        select = (
            _SUBSCRIPTION_SELECT + " WHERE s.destination_id = ? AND s.kind = ? AND s.match_key = ?"
            " AND s.given_key = ?"
        )
        keys = (destination.id, kind.value, match_key, given_key)
        async with self.db.transaction() as conn:
            if quota is not None:
                await self._lock_scopes(conn, destination, kind, created_by)
                existing = await _fetchone(conn, select, keys)
                if existing is not None:
                    return _subscription_from_row(existing), False
                await self._check_quota(conn, quota, destination, kind, created_by)
            cursor = await conn.execute(
                "INSERT INTO subscriptions (destination_id, kind, value, match_key, given_key,"
                " include_cross, include_replacements, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (destination_id, kind, match_key, given_key) DO NOTHING",
                (
                    destination.id,
                    kind.value,
                    value,
                    match_key,
                    given_key,
                    int(include_cross),
                    int(include_replacements),
                    created_by,
                    to_timestamp(now),
                ),
            )
            created = cursor.rowcount > 0
            row = await _fetchone(conn, select, keys)
            if created and row is not None and index_keys:
                await conn.executemany(
                    "INSERT INTO subscription_query_keys (subscription_id, kind, key)"
                    " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [(int(row["id"]), k, v) for k, v in sorted(set(index_keys))],
                )
        if row is None:  # pragma: no cover - the row was inserted or already there
            raise LookupError(f"subscription for destination {destination.id} vanished")
        return _subscription_from_row(row), created

    async def _lock_scopes(
        self, conn: Connection, destination: Destination, kind: SubscriptionKind, user: int
    ) -> None:
        """PostgreSQL: serialise subscribes that share a quota scope (SQLite already is)."""
        if self.db.dialect != "postgres":
            return
        scopes = [_scope_key("user", user)]
        if destination.guild_id is not None:
            scopes.append(_scope_key("guild", destination.guild_id))
        if kind in (SubscriptionKind.KEYWORD, SubscriptionKind.QUERY):
            scopes.append(_scope_key("destination", destination.id))
        for key in sorted(set(scopes)):  # one global order: no lock cycles
            await conn.execute(_PG_SCOPE_LOCK, (key,))

    async def _check_quota(
        self,
        conn: Connection,
        quota: SubscriptionQuota,
        destination: Destination,
        kind: SubscriptionKind,
        user: int,
    ) -> None:
        checks: list[tuple[str, str, tuple[Any, ...], int]] = []
        if kind in (SubscriptionKind.KEYWORD, SubscriptionKind.QUERY):
            checks.append((
                "keywords" if kind is SubscriptionKind.KEYWORD else "queries",
                "SELECT count(*) FROM subscriptions WHERE destination_id = ? AND kind = ?",
                (destination.id, kind.value),
                quota.keywords_per_destination,
            ))  # fmt: skip
        if destination.kind is DestinationKind.CHANNEL and destination.guild_id is not None:
            checks.append(("guild", _COUNT_GUILD, (destination.guild_id,), quota.per_guild))
        checks.append(("user", _COUNT_USER, (user,), quota.per_user))
        for scope, sql, params, limit in checks:
            row = await _fetchone(conn, sql, params)
            count = int(row[0]) if row else 0
            if count >= limit:
                raise QuotaReachedError(scope, count, limit)

    async def get(self, subscription_id: int) -> Subscription | None:
        row = await self.db.fetchone(_SUBSCRIPTION_SELECT + " WHERE s.id = ?", (subscription_id,))
        return None if row is None else _subscription_from_row(row)

    async def remove(self, subscription_id: int) -> Subscription | None:
        """Delete one subscription; returns what was deleted, or None if it did not exist."""
        async with self.db.transaction() as conn:
            row = await _fetchone(
                conn, _SUBSCRIPTION_SELECT + " WHERE s.id = ?", (subscription_id,)
            )
            if row is None:
                return None
            await conn.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
        return _subscription_from_row(row)

    async def list_for_guild(self, guild_id: int) -> list[Subscription]:
        """Channel subscriptions of one guild (never another guild's, never DMs)."""
        return await self._list(
            " WHERE d.guild_id = ? AND d.kind = 'channel'"
            " ORDER BY d.target_id, s.kind, s.value, s.id",
            (guild_id,),
        )

    async def list_dm(self, user_id: int) -> list[Subscription]:
        return await self._list(
            " WHERE d.kind = 'dm' AND d.target_id = ? ORDER BY s.kind, s.value, s.id", (user_id,)
        )

    async def list_destination(self, destination_id: int) -> list[Subscription]:
        return await self._list(
            " WHERE s.destination_id = ? ORDER BY s.kind, s.value, s.id", (destination_id,)
        )

    async def count_for_guild(self, guild_id: int) -> int:
        """Subscriptions of all channels of a guild (for the per-guild quota)."""
        return await self._count(_COUNT_GUILD, (guild_id,))

    async def count_for_user(self, user_id: int) -> int:
        """Subscriptions created by a user, in any guild or DM (for the per-user quota)."""
        return await self._count(_COUNT_USER, (user_id,))

    async def usage(self, *, guild_id: int | None = None, user_id: int | None = None) -> Usage:
        """What `/paperbell status` may show a caller: one guild's channels, or one user's DMs."""
        if guild_id is not None and user_id is None:
            where, param = "d.kind = 'channel' AND d.guild_id = ?", guild_id
        elif user_id is not None and guild_id is None:
            where, param = "d.kind = 'dm' AND d.target_id = ?", user_id
        else:
            raise ValueError("usage() takes exactly one of guild_id and user_id")
        subscriptions = await self._count(
            "SELECT count(*) FROM subscriptions AS s JOIN destinations AS d"
            f" ON d.id = s.destination_id WHERE {where}",
            (param,),
        )
        paused = await self._count(
            f"SELECT count(*) FROM destinations AS d WHERE {where} AND d.paused_reason IS NOT NULL",
            (param,),
        )
        pending = await self._count(
            "SELECT count(*) FROM deliveries AS dl JOIN destinations AS d"
            f" ON d.id = dl.destination_id WHERE {where} AND dl.status = 'pending'",
            (param,),
        )
        return Usage(subscriptions=subscriptions, paused=paused, pending=pending)

    async def all_categories(self) -> list[str]:
        """Categories some unpaused destination subscribes to: what the poller must fetch."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT s.match_key FROM subscriptions AS s JOIN destinations AS d"
            " ON d.id = s.destination_id WHERE s.kind = 'category' AND d.paused_reason IS NULL"
            " ORDER BY s.match_key"
        )
        return [str(row[0]) for row in rows]

    async def followed_papers(self) -> list[str]:
        """Versionless ids of papers some unpaused destination follows."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT s.match_key FROM subscriptions AS s JOIN destinations AS d"
            " ON d.id = s.destination_id WHERE s.kind = 'paper' AND d.paused_reason IS NULL"
            " ORDER BY s.match_key"
        )
        return [str(row[0]) for row in rows]

    async def followers_in(self, conn: Connection, paper_id: str) -> list[Subscription]:
        """Paper subscriptions to `paper_id` of unpaused destinations, on `conn`."""
        async with conn.execute(
            _SUBSCRIPTION_SELECT
            + " WHERE s.kind = 'paper' AND s.match_key = ? AND d.paused_reason IS NULL"
            " ORDER BY s.id",
            (paper_id,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [_subscription_from_row(row) for row in rows]

    async def needs_all_papers(self) -> bool:
        """Whether an unpaused destination has an author or keyword subscription.

        Those can match a paper of any category, so the poller must read every
        archive's listing, not only the subscribed categories.
        """
        row = await self.db.fetchone(
            "SELECT EXISTS (SELECT 1 FROM subscriptions AS s JOIN destinations AS d"
            " ON d.id = s.destination_id WHERE s.kind IN ('author', 'keyword', 'query')"
            " AND d.paused_reason IS NULL)"
        )
        return bool(row and row[0])

    async def creators(self, destination_id: int) -> list[int]:
        """Users who created the destination's subscriptions (to tell them it was paused)."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT created_by FROM subscriptions WHERE destination_id = ?"
            " ORDER BY created_by",
            (destination_id,),
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
        clauses = ["s.match_key = ?"] * len(wanted) + ["s.match_key LIKE ?"] * len(archives)
        params: list[Any] = [*wanted, *(f"{a}.%" for a in archives)]
        where = "(s.kind = 'category' AND (" + " OR ".join(clauses) + "))"
        if archives:
            where = f"({where} OR s.kind <> 'category')"
        rows = await self.db.fetchall(
            "SELECT DISTINCT s.created_by FROM subscriptions AS s"
            " JOIN destinations AS d ON d.id = s.destination_id"
            f" WHERE d.paused_reason IS NULL AND {where} ORDER BY s.created_by",
            params,
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
        """Subscriptions of unpaused destinations whose match key is one of the given keys,
        and query subscriptions indexed under one of `query_keys` ((key kind, key) pairs).

        Runs on `conn`, the connection yielded by `Database.transaction()`, so
        the poller can look up, match and enqueue in one transaction. The
        result is a superset of what matches; `bot.domain.matching` decides.
        """
        keys = _keys(SubscriptionKind.CATEGORY, categories)
        keys += _keys(SubscriptionKind.AUTHOR, surnames)
        keys += _keys(SubscriptionKind.KEYWORD, keyword_tokens)
        keys += _keys(SubscriptionKind.PAPER, paper_ids)
        qkeys = sorted({(kind, key) for kind, key in query_keys if key})
        rows: list[Row] = []
        if self.db.dialect == "postgres":
            for sql, batch in ((_PG_CANDIDATES_SQL, keys), (_PG_QUERY_CANDIDATES_SQL, qkeys)):
                if batch:
                    params = ([kind for kind, _ in batch], [key for _, key in batch])
                    async with conn.execute(sql, params) as cursor:
                        rows += await cursor.fetchall()
            return [_subscription_from_row(row) for row in rows]
        await conn.execute(_CREATE_KEYS_TABLE)
        for sql, batch in ((CANDIDATES_SQL, keys), (_QUERY_CANDIDATES_SQL, qkeys)):
            if not batch:
                continue
            await conn.execute("DELETE FROM temp.paperbell_match_keys")
            try:
                await conn.executemany(
                    "INSERT OR IGNORE INTO temp.paperbell_match_keys (kind, key) VALUES (?, ?)",
                    batch,
                )
                async with conn.execute(sql) as cursor:
                    rows += await cursor.fetchall()
            finally:
                await conn.execute("DELETE FROM temp.paperbell_match_keys")
        return [_subscription_from_row(row) for row in rows]

    async def query_keys(self, subscription_id: int) -> set[tuple[str, str]]:
        """The (key kind, key) pairs a query subscription is indexed under."""
        rows = await self.db.fetchall(
            "SELECT kind, key FROM subscription_query_keys WHERE subscription_id = ?",
            (subscription_id,),
        )
        return {(str(row[0]), str(row[1])) for row in rows}

    async def _list(self, where: str, params: tuple[Any, ...]) -> list[Subscription]:
        rows = await self.db.fetchall(_SUBSCRIPTION_SELECT + where, params)
        return [_subscription_from_row(row) for row in rows]

    async def _count(self, sql: str, params: tuple[Any, ...]) -> int:
        row = await self.db.fetchone(sql, params)
        return int(row[0]) if row else 0


_COUNT_GUILD = (
    "SELECT count(*) FROM subscriptions AS s JOIN destinations AS d"
    " ON d.id = s.destination_id WHERE d.guild_id = ? AND d.kind = 'channel'"
)
_COUNT_USER = "SELECT count(*) FROM subscriptions WHERE created_by = ?"


def _keys(kind: SubscriptionKind, values: Iterable[str]) -> list[tuple[str, str]]:
    return [(kind.value, value) for value in set(values) if value]


async def _fetchone(conn: Connection, sql: str, params: tuple[Any, ...]) -> Row | None:
    async with conn.execute(sql, params) as cursor:
        row: Row | None = await cursor.fetchone()
    return row
