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
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from storage.schema import arxiv_lookups
from storage.sql import insert_for
from storage.store import Store

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(hours=24)
DEFAULT_MAX_ENTRIES = 20_000
MAX_QUERY_LENGTH = 1_000
_t = arxiv_lookups.c


def _aware(value: datetime) -> datetime:
    # Checked up front: the column type refuses it too, but inside SQLAlchemy's StatementError.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"look-up times must be timezone-aware, got {value!r}")
    return value


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
        db: Store,
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
            select(_t.query, _t.fetched_at, _t.results, _t.total).where(_t.query == query)
        )
        # Compared as datetimes, not as stored text: rows written before the fixed-width
        # timestamps lack microseconds, and text order is only time order at one width.
        if row is None or row.fetched_at <= _aware(now) - self.ttl:
            return None
        total = None if row.total is None else int(row.total)
        return CachedLookup(str(row.query), row.fetched_at, int(row.results), total)

    async def record(self, query: str, *, at: datetime, results: int, total: int | None) -> None:
        """Remember that arXiv answered `query` at `at`; prune expired and excess entries."""
        if len(query) > MAX_QUERY_LENGTH:
            return  # never built by paperbell; not worth remembering
        at = _aware(at)
        upsert = insert_for(self._db.dialect, arxiv_lookups).values(
            query=query, fetched_at=at, results=results, total=total
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=[_t.query],
            set_={
                "fetched_at": upsert.excluded.fetched_at,
                "results": upsert.excluded.results,
                "total": upsert.excluded.total,
            },
        )
        async with self._db.transaction() as conn:
            await conn.execute(upsert)
            # Compared as text. Older rows were written by `isoformat()`, which drops zero
            # microseconds ("...:00+00:00"); "+" sorts before the fixed width's ".", so such
            # a row sorts as the instant it is, or just below the same instant written in
            # full: `<=` (and the age order below) stays right for it.
            await conn.execute(delete(arxiv_lookups).where(_t.fetched_at <= at - self.ttl))
            count = (await conn.execute(select(func.count()).select_from(arxiv_lookups))).scalar()
            excess = int(count or 0) - self.max_entries
            if excess > 0:
                oldest = select(_t.query).order_by(_t.fetched_at, _t.query).limit(excess)
                await conn.execute(delete(arxiv_lookups).where(_t.query.in_(oldest)))

    async def count(self) -> int:
        return int(await self._db.scalar(select(func.count()).select_from(arxiv_lookups)) or 0)
