"""The search interface and what both engines' implementations share.

`Search` keeps the index in step with the papers (`add`, `remove`, and a
rebuild when `FTS_NORMALIZER` changed) and answers searches, author pages and
rare-category reads; `storage.search.sqlite` and `storage.search.postgres`
implement it, `storage.search.search_for` picks one.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.domain.models import Paper, SearchHit
from bot.domain.names import keyword_tokens
from bot.domain.timestamps import to_timestamp
from storage.paper_rows import PAPER_COLUMNS, IndexRow, index_row, names_text, paper_from_row
from storage.schema import meta, papers
from storage.sql import chunks, insert_for
from storage.store import Connection, Store

log = logging.getLogger(__name__)

FTS_NORMALIZER = "fold_keyword-1"  # bump when fold_keyword changes: the index is rebuilt
MAX_SEARCH_TERMS = 32
SEARCH_CANDIDATES = 2000  # newest matches ranked by bm25
COMMON_CANDIDATES = 200  # newest matches ranked by title and recency otherwise
BM25_BUDGET = 20_000  # postings all words together may have for bm25 ranking
META_KEY = "papers_fts_normalizer"
_REBUILD_BATCH = 2000


def search_tokens(query: str) -> tuple[str, ...]:
    """The distinct folded words of a search, at most `MAX_SEARCH_TERMS` of them."""
    return tuple(dict.fromkeys(keyword_tokens(query)))[:MAX_SEARCH_TERMS]


def filters_sql(
    category: str | None,
    since: datetime | None,
    until: datetime | None,
    alias: str,
    category_alias: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """ " AND ..." clauses on paper `alias` (its rowid may be `category_alias`'s)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if category:
        rowid = f"{category_alias or alias}.rowid"
        if "." in category:
            clauses.append(
                "EXISTS (SELECT 1 FROM paper_categories pc "
                f"WHERE pc.category = :category AND pc.paper_rowid = {rowid})"
            )
        else:
            clauses.append(
                f"EXISTS (SELECT 1 FROM paper_categories pc WHERE pc.paper_rowid = {rowid} "
                "AND (pc.category = :category OR substr(pc.category, 1, :category_len) = "
                ":category_prefix))"
            )
            params.update(category_len=len(category) + 1, category_prefix=category + ".")
        params["category"] = category
    if since is not None:
        clauses.append(f"{alias}.published >= :since")
        params["since"] = to_timestamp(since)
    if until is not None:
        clauses.append(f"{alias}.published < :until")
        params["until"] = to_timestamp(until)
    return "".join(f" AND {c}" for c in clauses), params


def category_source_sql(category: str) -> tuple[str, dict[str, Any]]:
    """SQL for the rowids (`r`) of one class's papers, or of a whole archive's (no repeats)."""
    if "." in category:
        sql = "SELECT paper_rowid AS r FROM paper_categories WHERE category = :category"
        return sql, {"category": category}
    return (
        "SELECT DISTINCT paper_rowid AS r FROM paper_categories "
        "WHERE category = :category OR (category > :category_low AND category < :category_high)",
        # "cs.*" sorts between "cs." and "cs/"
        {"category": category, "category_low": category + ".", "category_high": category + "/"},
    )


class Search(ABC):
    """The search index of one store: kept up to date by the paper writer, and queried."""

    def __init__(
        self,
        store: Store,
        *,
        search_candidates: int = SEARCH_CANDIDATES,
        common_candidates: int = COMMON_CANDIDATES,
        bm25_budget: int = BM25_BUDGET,
    ) -> None:
        self._store = store
        self._search_candidates = search_candidates
        self._common_candidates = common_candidates
        self._bm25_budget = bm25_budget
        self._index_checked = False

    # ---- the index ----

    @abstractmethod
    async def add(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        """Index these (rowid, folded texts); a rowid indexed before must be `remove`d first."""

    @abstractmethod
    async def remove(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        """Unindex papers; `rows` hold the folded texts they were indexed with."""

    @abstractmethod
    async def _clear(self, conn: Connection) -> None: ...

    @abstractmethod
    async def compact(self, conn: Connection) -> None:
        """Merge the index into as few pieces as it can, after a big bulk write."""

    async def ensure(self, conn: Connection) -> None:
        """Rebuild the index inside `conn`'s transaction if another normalizer built it."""
        current = (await conn.execute(select(meta.c.value).where(meta.c.key == META_KEY))).scalar()
        if current == FTS_NORMALIZER:
            return
        log.info("rebuilding the search index normalizer=%s", FTS_NORMALIZER)
        await self._clear(conn)
        indexed, after = 0, 0
        page = (
            select(papers.c.rowid, papers.c.title, papers.c.abstract, papers.c.authors_json)
            .order_by(papers.c.rowid)
            .limit(_REBUILD_BATCH)
        )
        while batch := (await conn.execute(page.where(papers.c.rowid > after))).all():
            await self.add(conn, [index_row(r[0], r[1], r[2], names_text(r[3])) for r in batch])
            indexed += len(batch)
            after = int(batch[-1][0])
        upsert = insert_for(self._store.dialect, meta).values(key=META_KEY, value=FTS_NORMALIZER)
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[meta.c.key], set_={"value": upsert.excluded.value}
            )
        )
        log.info("rebuilt the search index papers=%d", indexed)

    async def _ensure_ready(self) -> None:
        if self._index_checked:
            return
        current = await self._store.scalar(select(meta.c.value).where(meta.c.key == META_KEY))
        if current != FTS_NORMALIZER:
            async with self._store.transaction() as conn:
                await self.ensure(conn)
        self._index_checked = True

    # ---- look-ups ----

    async def search(
        self,
        query: str,
        *,
        category: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[SearchHit]:
        """See `PaperRepository.search`."""
        tokens = search_tokens(query)
        if not tokens or limit <= 0:
            return []
        await self._ensure_ready()
        return await self._search(tokens, category, since, until, limit, max(0, offset))

    @abstractmethod
    async def _search(
        self,
        tokens: tuple[str, ...],
        category: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> list[SearchHit]: ...

    @abstractmethod
    async def author_page(self, author_ids: Sequence[int], limit: int, offset: int) -> list[Paper]:
        """Papers by any of `author_ids`, newest first, one page."""

    @abstractmethod
    async def category_latest(self, category: str, limit: int) -> list[Paper]:
        """The newest papers of a rare category, read through the category's own rows."""

    async def _by_rowid(self, rowids: Sequence[int]) -> dict[int, Paper]:
        found: dict[int, Paper] = {}
        for chunk in chunks(rowids):
            statement = select(*PAPER_COLUMNS).where(papers.c.rowid.in_(chunk))
            found.update(
                (int(row[0]), paper_from_row(row)) for row in await self._store.fetchall(statement)
            )
        return found


def index_params(rows: Sequence[IndexRow]) -> list[dict[str, Any]]:
    return [{"rowid": r, "title": t, "abstract": a, "authors": n} for r, t, a, n in rows]
