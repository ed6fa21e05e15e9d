"""PostgreSQL's search: a tsvector per paper in `papers_fts`, GIN-indexed, ranked by ts_rank."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text

from bot.domain.models import Paper, SearchHit
from storage.paper_rows import PAPER_COLUMNS_SQL, IndexRow, paper_from_row
from storage.search.base import Search, category_source_sql, filters_sql, index_params
from storage.store import Connection

log = logging.getLogger(__name__)

# PostgreSQL: a tsvector per paper (title A, authors B, abstract C) over the same folded text.
_PG_UPSERT = text(
    "INSERT INTO papers_fts (rowid, tsv) VALUES (:rowid, "
    "setweight(to_tsvector('simple', :title), 'A') "
    "|| setweight(to_tsvector('simple', :abstract), 'C') "
    "|| setweight(to_tsvector('simple', :authors), 'B')) "
    "ON CONFLICT (rowid) DO UPDATE SET tsv = excluded.tsv"
)


class PostgresSearch(Search):
    """A `papers_fts (rowid, tsv)` table with a GIN index; ts_rank orders the hits."""

    async def add(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        if rows:  # an upsert: a re-indexed paper needs no `remove`
            await conn.execute(_PG_UPSERT, index_params(rows))

    async def remove(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        return None  # `add` replaces the vector; deleting the paper cascades

    async def compact(self, conn: Connection) -> None:
        return None  # a GIN index has no segments to merge; autovacuum tends it

    async def _clear(self, conn: Connection) -> None:
        await conn.execute(text("DELETE FROM papers_fts"))

    async def _search(
        self,
        tokens: tuple[str, ...],
        category: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> list[SearchHit]:
        """The GIN index finds papers with every word; ts_rank orders them.

        The folded words go in as one parameter to plainto_tsquery, which reads
        them as plain terms (ANDed), so no user text is ever query syntax.
        """
        filters, params = filters_sql(category, since, until, "p")
        rows = await self._store.fetchall(
            text(f"""
            WITH q AS (SELECT plainto_tsquery('simple', :words) AS q)
            SELECT {PAPER_COLUMNS_SQL}, ts_rank(f.tsv, q.q, 1) AS rank
            FROM q, papers_fts f JOIN papers p ON p.rowid = f.rowid
            WHERE f.tsv @@ q.q{filters}
            ORDER BY rank DESC, p.published DESC NULLS LAST, p.rowid DESC
            LIMIT :limit OFFSET :offset
            """),
            {**params, "words": " ".join(tokens), "limit": limit, "offset": offset},
        )
        # Lower rank is better, as with SQLite's bm25.
        return [SearchHit(paper_from_row(row), -float(row.rank)) for row in rows]

    async def author_page(self, author_ids: Sequence[int], limit: int, offset: int) -> list[Paper]:
        rows = await self._store.fetchall(
            text(f"""
            WITH theirs AS MATERIALIZED (
                SELECT DISTINCT pa.paper_rowid AS r FROM paper_authors pa
                WHERE pa.author_id = ANY(:ids)
            )
            SELECT {PAPER_COLUMNS_SQL} FROM theirs JOIN papers p ON p.rowid = theirs.r
            ORDER BY p.published DESC, p.id DESC
            LIMIT :limit OFFSET :offset
            """),
            {"ids": list(author_ids), "limit": limit, "offset": offset},
        )
        return [paper_from_row(row) for row in rows]

    async def category_latest(self, category: str, limit: int) -> list[Paper]:
        source, params = category_source_sql(category)
        rows = await self._store.fetchall(
            text(
                f"SELECT {PAPER_COLUMNS_SQL} FROM ({source}) c JOIN papers p "
                "ON p.rowid = c.r ORDER BY p.published DESC, p.id LIMIT :limit"
            ),
            {**params, "limit": limit},
        )
        return [paper_from_row(row) for row in rows]
