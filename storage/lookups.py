"""The look-up cache: which arXiv API queries were asked recently, so they are not asked again.

Rows are keyed by the exact `search_query` sent to arXiv (`au:legg_s`,
`all:grokking AND all:stability`), so two spellings that send the same query
share one entry. The papers themselves live in the catalogue (`papers`); this
table only says when arXiv was last asked and how much it answered. It stays
bounded: entries older than the time-to-live and the oldest beyond
`max_entries` are deleted whenever one is recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.backend import AnyDatabase

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(hours=24)
DEFAULT_MAX_ENTRIES = 20_000
MAX_QUERY_LENGTH = 1_000


def _ts(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"look-up times must be timezone-aware, got {value!r}")
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class CachedLookup:
    """When arXiv last answered `query`, with how many entries (of `total` it has)."""

    query: str
    fetched_at: datetime
    results: int
    total: int | None


class LookupCache:
    """Recent arXiv API queries, persisted so a restart does not forget them."""

    def __init__(
        self,
        db: AnyDatabase,
        *,
        ttl: timedelta = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._db = db
        self.ttl = ttl
        self.max_entries = max_entries

    async def fresh(self, query: str, *, now: datetime) -> CachedLookup | None:
        """The entry for `query` if arXiv was asked less than `ttl` before `now`."""
        if len(query) > MAX_QUERY_LENGTH:
            return None
        row = await self._db.fetchone(
            "SELECT query, fetched_at, results, total FROM arxiv_lookups "
            "WHERE query = ? AND fetched_at > ?",
            (query, _ts(now - self.ttl)),
        )
        if row is None:
            return None
        total = None if row[3] is None else int(row[3])
        return CachedLookup(str(row[0]), datetime.fromisoformat(row[1]), int(row[2]), total)

    async def record(self, query: str, *, at: datetime, results: int, total: int | None) -> None:
        """Remember that arXiv answered `query` at `at`; prune expired and excess entries."""
        if len(query) > MAX_QUERY_LENGTH:
            return  # never built by paperbell; not worth remembering
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO arxiv_lookups (query, fetched_at, results, total) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (query) DO UPDATE SET fetched_at = excluded.fetched_at, "
                "results = excluded.results, total = excluded.total",
                (query, _ts(at), results, total),
            )
            await conn.execute(
                "DELETE FROM arxiv_lookups WHERE fetched_at <= ?", (_ts(at - self.ttl),)
            )
            async with conn.execute("SELECT count(*) FROM arxiv_lookups") as cursor:
                row = await cursor.fetchone()
            excess = (int(row[0]) if row else 0) - self.max_entries
            if excess > 0:
                await conn.execute(
                    "DELETE FROM arxiv_lookups WHERE query IN ("
                    "SELECT query FROM arxiv_lookups ORDER BY fetched_at, query LIMIT ?)",
                    (excess,),
                )

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM arxiv_lookups")
        return int(row[0]) if row else 0
