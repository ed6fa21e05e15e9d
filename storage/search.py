"""Full-text search and the planner-tuned look-ups, one implementation per engine.

`search_for(store)` picks, once, `SqliteSearch` (a contentless FTS5 table ranked
with bm25) or `PostgresSearch` (a tsvector per paper, GIN-indexed, ranked with
ts_rank). Both index `fold_for_index()` of each paper's title, abstract and
author list, written by `PaperRepository` through `add`/`remove` rather than by
triggers, so TeX accents and `ł`/`ø` fold the same in the index and in a query.
Which normalizer built the index is kept in meta; when it differs from
`FTS_NORMALIZER` the whole index is rebuilt once, in one transaction.

SQLite ranks with bm25 (title above authors above abstract) among the
`SEARCH_CANDIDATES` most recently stored matches, ties broken by recency: over
a million papers, ranking every paper that contains "learning" costs far more
than the 20 ms a search may take, and a bot announcing new papers cares about
recent ones first. See `SqliteSearch._plan` for when bm25 is skipped.

The engine-specific SQL (FTS5 MATCH/bm25, tsvector @@, join orders pinned with
SQLite's CROSS JOIN) is `text()` with named binds, inside the engine's class.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy.exc import OperationalError

from bot.domain.models import Paper, SearchHit
from bot.domain.names import keyword_tokens
from bot.domain.timestamps import to_timestamp
from storage.paper_rows import (
    FILTER_WINDOW,
    PAPER_COLUMNS,
    PAPER_COLUMNS_SQL,
    IndexRow,
    index_row,
    names_text,
    paper_from_row,
    recent_share,
)
from storage.schema import meta, papers
from storage.sql import chunks, insert_for
from storage.store import Connection, Store

log = logging.getLogger(__name__)

FTS_NORMALIZER = "fold_keyword-1"  # bump when fold_keyword changes: the index is rebuilt
MAX_SEARCH_TERMS = 32
SEARCH_CANDIDATES = 2000  # newest matches ranked by bm25
COMMON_CANDIDATES = 200  # newest matches ranked by title and recency otherwise
BM25_BUDGET = 20_000  # postings all words together may have for bm25 ranking
DENSITY_WINDOW = 2_000  # newest papers on which a word's frequency is estimated
HUGE_DENSITY = 0.2  # a word in this share of recent papers is checked, not scanned
MAX_CHECKS = 2_000  # candidates checked for such words, at most
META_KEY = "papers_fts_normalizer"
_BM25 = "bm25(papers_fts, 5.0, 1.0, 2.0)"  # title, abstract, authors_text
_REBUILD_BATCH = 2000


def search_tokens(query: str) -> tuple[str, ...]:
    """The distinct folded words of a search, at most `MAX_SEARCH_TERMS` of them."""
    return tuple(dict.fromkeys(keyword_tokens(query)))[:MAX_SEARCH_TERMS]


def _match(tokens: Sequence[str]) -> str:
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in tokens)


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression for plain user text, or None when it has no words.

    Every folded token becomes a quoted FTS5 string, ANDed: operators (`OR`,
    `NEAR`), column filters (`title:`), `*`, `-` and quotes in the input are
    only ever words. At most `MAX_SEARCH_TERMS` distinct tokens are kept.
    """
    tokens = search_tokens(query)
    return _match(tokens) if tokens else None


def _filters(
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


def _category_source(category: str) -> tuple[str, dict[str, Any]]:
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


def _has_words(words: Iterable[str], *texts: str | None) -> bool:
    """Whether the folded `texts` contain every word: what a MATCH on the index would say."""
    found: set[str] = set()
    for part in texts:
        found.update(keyword_tokens(part or ""))
    return all(w in found for w in words)


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


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one SQLite search runs; see `SqliteSearch._plan`."""

    bm25: bool  # rank with bm25, or title-has-every-word first, then newest
    tokens: tuple[str, ...]  # every word, all of which a hit contains
    scan: tuple[str, ...]  # the words whose FTS match drives the candidate scan
    check: tuple[str, ...]  # very common words, checked on each candidate's text


# Run through the driver (a hot path, see storage/batches.py): positional parameters.
_SQLITE_INSERT = "INSERT INTO papers_fts (rowid, title, abstract, authors_text) VALUES (?, ?, ?, ?)"
_SQLITE_DELETE = (
    "INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors_text) "
    "VALUES ('delete', ?, ?, ?, ?)"
)


def _index_params(rows: Sequence[IndexRow]) -> list[dict[str, Any]]:
    return [{"rowid": r, "title": t, "abstract": a, "authors": n} for r, t, a, n in rows]


class SqliteSearch(Search):
    """FTS5: a contentless `papers_fts` (title, abstract, authors_text), bm25 or a cheap plan."""

    async def add(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        if rows:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.executemany(_SQLITE_INSERT, rows)

    async def remove(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        # A contentless table forgets an entry only when given the text it indexed.
        if rows:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.executemany(_SQLITE_DELETE, rows)

    async def _clear(self, conn: Connection) -> None:
        await conn.execute(text("INSERT INTO papers_fts (papers_fts) VALUES ('delete-all')"))

    async def _search(
        self,
        tokens: tuple[str, ...],
        category: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> list[SearchHit]:
        plan = await self._plan(tokens)
        if plan.bm25:
            return await self._search_bm25(plan, category, since, until, limit, offset)
        hits = await self._ranked_by_title(plan, category, since, until)
        page = hits[offset : offset + limit]
        found = await self._by_rowid([rowid for _, rowid in page])
        return [SearchHit(found[rowid], rank) for rank, rowid in page if rowid in found]

    async def _plan(self, tokens: tuple[str, ...]) -> _Plan:
        """Choose the ranking and the words that drive the scan.

        FTS5's bm25 computes each word's IDF by walking the word's whole posting
        list on every query: over a million papers one common word costs tens of
        milliseconds. So bm25 ranks only searches whose words have few postings
        in all, counted with a LIMIT. And an FTS5 AND seeks into every word's
        posting list once per posting of the rarer words: with a word that is in
        a fifth of all papers ("model") next to rarer ones, the rarer words alone
        drive the scan and the very common word is checked on the few candidates'
        text instead. Word frequencies are estimated on the newest papers, which
        are the ones the scan reads first.
        """
        top = int(await self._store.scalar(select(func.coalesce(func.max(papers.c.rowid), 0))))
        window = min(DENSITY_WINDOW, top) or 1
        probes = ", ".join(
            f"(SELECT count(*) FROM papers_fts WHERE papers_fts MATCH :m{n} AND rowid > :floor)"
            for n in range(len(tokens))
        )
        params: dict[str, Any] = {f"m{n}": _match((t,)) for n, t in enumerate(tokens)}
        rows = await self._fts_rows(f"SELECT {probes}", {**params, "floor": top - window})
        recent = [int(v) for v in rows[0]] if rows else [0] * len(tokens)
        estimated = [count * top / window for count in recent]
        huge = tuple(
            t
            for t, count, est in zip(tokens, recent, estimated, strict=True)
            if count >= HUGE_DENSITY * window and est > self._bm25_budget
        )
        if (
            not huge
            and sum(estimated) <= 2 * self._bm25_budget
            and await self._few_postings(tokens)
        ):
            return _Plan(True, tokens, tokens, ())
        scan = tuple(t for t in tokens if t not in huge)
        if len(scan) < 2:
            # One rarer word: FTS5's own seeks (one per posting of it) beat reading
            # and checking that many candidates' text.
            return _Plan(False, tokens, tokens, ())
        return _Plan(False, tokens, scan, huge)

    async def _few_postings(self, tokens: Sequence[str]) -> bool:
        """Whether all the words together have at most `bm25_budget` postings."""
        budget = self._bm25_budget
        for token in tokens:
            rows = await self._fts_rows(
                "SELECT count(*) FROM (SELECT 1 FROM papers_fts "
                "WHERE papers_fts MATCH :match LIMIT :cap)",
                {"match": _match((token,)), "cap": budget + 1},
            )
            budget -= int(rows[0][0]) if rows else 0
            if budget < 0:
                return False
        return True

    async def _recent_matches(self, words: Sequence[str]) -> int:
        """How many of the newest `FILTER_WINDOW` papers contain all `words`."""
        rows = await self._fts_rows(
            "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH :match "
            "AND rowid > (SELECT coalesce(max(rowid), 0) FROM papers) - :window",
            {"match": _match(words), "window": FILTER_WINDOW},
        )
        return int(rows[0][0]) if rows else 0

    @staticmethod
    def _candidates_sql(
        words: Sequence[str],
        category: str | None,
        since: datetime | None,
        until: datetime | None,
        extra: str,
        *,
        below: bool = False,
    ) -> tuple[str, dict[str, Any]]:
        """Newest matches of `words` (`hit`, plus the `extra` columns) with the filters.

        Parameters besides the returned ones: `:chunk` (the LIMIT) and, with
        `below`, `:below` (the rowid to read below).
        """
        # The category is tested on the index's rowid: no need to read the paper row.
        filters, params = _filters(category, since, until, "f", "papers_fts")
        dated = since is not None or until is not None
        join = " JOIN papers f ON f.rowid = papers_fts.rowid" if dated else ""
        if below:
            filters += " AND papers_fts.rowid < :below"
        sql = f"""
            SELECT papers_fts.rowid AS hit{extra} FROM papers_fts{join}
            WHERE papers_fts MATCH :match{filters}
            ORDER BY papers_fts.rowid DESC
            LIMIT :chunk
        """
        return sql, {"match": _match(words), **params}

    async def _search_bm25(
        self,
        plan: _Plan,
        category: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> list[SearchHit]:
        candidates, params = self._candidates_sql(
            plan.scan, category, since, until, f", {_BM25} AS rank"
        )
        rows = await self._fts_rows(
            f"""
            WITH candidates AS MATERIALIZED ({candidates}),
            page AS MATERIALIZED (
                SELECT hit, rank, q.published, q.id
                FROM candidates CROSS JOIN papers q ON q.rowid = candidates.hit
                ORDER BY rank, q.published DESC, q.id DESC
                LIMIT :limit OFFSET :offset
            )
            SELECT {PAPER_COLUMNS_SQL}, page.rank
            FROM page CROSS JOIN papers p ON p.rowid = page.hit
            ORDER BY page.rank, page.published DESC, page.id DESC
            """,
            {**params, "chunk": self._search_candidates, "limit": limit, "offset": offset},
        )
        return [SearchHit(paper_from_row(row), float(row[15])) for row in rows]

    async def _ranked_by_title(
        self,
        plan: _Plan,
        category: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[tuple[float, int]]:
        """(rank, rowid) of the newest `common_candidates` hits, best first.

        The words drive the scan unless filters are given that pass far fewer
        papers than the words match (a rare category, a date range in the past):
        then the filter's index drives and the words are checked on each paper's
        text, instead of walking most of the words' matches to find a few.
        """
        filtered = bool(category or since or until)
        if filtered and await recent_share(self._store, category, since, until) * 10 < (
            await self._recent_matches(plan.tokens)
        ):
            sql, params = _filtered_rows_sql(category, since, until)
            return await self._collect(plan, plan.tokens, sql, params, offset_paging=True)
        columns = ", p.abstract, p.authors_json" if plan.check else ", NULL, NULL"
        # With words to check, read on page by page below the last rowid seen.
        candidates, params = self._candidates_sql(
            plan.scan, category, since, until, "", below=bool(plan.check)
        )
        sql = f"""
            WITH candidates AS MATERIALIZED ({candidates})
            SELECT c.hit, p.published, p.id, p.title{columns}
            FROM candidates c CROSS JOIN papers p ON p.rowid = c.hit
        """
        return await self._collect(plan, plan.check, sql, params, offset_paging=False)

    async def _collect(
        self,
        plan: _Plan,
        check: Sequence[str],
        sql: str,
        params: dict[str, Any],
        *,
        offset_paging: bool,
    ) -> list[tuple[float, int]]:
        """Read candidate rows (rowid, published, id, title, abstract, authors_json) in
        chunks, keep those containing the `check` words, and rank them."""
        cap = self._common_candidates
        words = set(plan.tokens)
        found: list[tuple[float, int, str, str]] = []
        below, read = (1 << 62), 0
        while len(found) < cap and read < MAX_CHECKS:
            chunk = cap - len(found)
            rows = await self._fts_rows(
                sql, {**params, "chunk": chunk, "read": read, "below": below}
            )
            for rowid, published, paper_id, title, abstract, authors_json in rows:
                read += 1
                if check and not _has_words(check, title, abstract, names_text(authors_json)):
                    continue
                rank = -1.0 if words <= set(keyword_tokens(title)) else 0.0
                found.append((rank, int(rowid), published or "", paper_id))
            if not check or len(rows) < chunk:
                break
            below = int(rows[-1][0])
        found.sort(key=lambda h: (h[2], h[3]), reverse=True)  # newest first...
        found.sort(key=lambda h: h[0])  # ...then, stably, full title matches first
        return [(rank, rowid) for rank, rowid, _, _ in found]

    async def _fts_rows(self, sql: str, params: dict[str, Any]) -> Sequence[Row[Any]]:
        try:
            return await self._store.fetchall(text(sql), params)
        except OperationalError as exc:
            # match_expression only emits quoted words; this is a safety net, not a path.
            if "fts5" not in str(exc.orig):
                raise
            log.warning("search expression rejected error=%s", exc.orig)
            return []

    async def author_page(self, author_ids: Sequence[int], limit: int, offset: int) -> list[Paper]:
        # The author's papers drive the join (CROSS JOIN fixes the order); scanning
        # papers by date and probing would read the whole table for a rare name. A
        # prolific name has thousands of papers: sort them on the small (rowid,
        # published, id) index, then read only the page's rows.
        rows = await self._store.fetchall(
            text(f"""
            WITH theirs AS MATERIALIZED (
                SELECT DISTINCT pa.paper_rowid AS r FROM paper_authors pa
                WHERE pa.author_id IN (SELECT value FROM json_each(:ids))
            ),
            page AS MATERIALIZED (
                SELECT q.rowid AS r, q.published, q.id
                FROM theirs CROSS JOIN papers q INDEXED BY papers_rowid_published
                    ON q.rowid = theirs.r
                ORDER BY q.published DESC, q.id DESC
                LIMIT :limit OFFSET :offset
            )
            SELECT {PAPER_COLUMNS_SQL} FROM page CROSS JOIN papers p ON p.rowid = page.r
            ORDER BY page.published DESC, page.id DESC
            """),
            {"ids": json.dumps(list(author_ids)), "limit": limit, "offset": offset},
        )
        return [paper_from_row(row) for row in rows]

    async def category_latest(self, category: str, limit: int) -> list[Paper]:
        source, params = _category_source(category)
        rows = await self._store.fetchall(
            text(
                f"SELECT {PAPER_COLUMNS_SQL} FROM ({source}) c CROSS JOIN papers p "
                "ON p.rowid = c.r ORDER BY p.published DESC, p.id LIMIT :limit"
            ),
            {**params, "limit": limit},
        )
        return [paper_from_row(row) for row in rows]


def _filtered_rows_sql(
    category: str | None, since: datetime | None, until: datetime | None
) -> tuple[str, dict[str, Any]]:
    """SQLite: papers passing the filters, newest first, read through the filter's own index.

    Parameters besides the returned ones: `:chunk` and `:read` (LIMIT and OFFSET).
    """
    dates, params = _filters(None, since, until, "p")
    columns = "p.rowid, p.published, p.id, p.title, p.abstract, p.authors_json"
    if category:
        source, source_params = _category_source(category)
        return (
            f"SELECT {columns} FROM ({source}) c CROSS JOIN papers p ON p.rowid = c.r "
            f"WHERE 1{dates} ORDER BY c.r DESC LIMIT :chunk OFFSET :read",
            {**source_params, **params},
        )
    return (
        f"SELECT {columns} FROM papers p INDEXED BY papers_published "
        f"WHERE 1{dates} ORDER BY p.published DESC, p.id LIMIT :chunk OFFSET :read",
        params,
    )


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
            await conn.execute(_PG_UPSERT, _index_params(rows))

    async def remove(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        return None  # `add` replaces the vector; deleting the paper cascades

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
        filters, params = _filters(category, since, until, "p")
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
        source, params = _category_source(category)
        rows = await self._store.fetchall(
            text(
                f"SELECT {PAPER_COLUMNS_SQL} FROM ({source}) c JOIN papers p "
                "ON p.rowid = c.r ORDER BY p.published DESC, p.id LIMIT :limit"
            ),
            {**params, "limit": limit},
        )
        return [paper_from_row(row) for row in rows]


def search_for(
    store: Store,
    *,
    search_candidates: int = SEARCH_CANDIDATES,
    common_candidates: int = COMMON_CANDIDATES,
    bm25_budget: int = BM25_BUDGET,
) -> Search:
    """The search implementation for `store`'s engine."""
    kind = PostgresSearch if store.is_postgres else SqliteSearch
    return kind(
        store,
        search_candidates=search_candidates,
        common_candidates=common_candidates,
        bm25_budget=bm25_budget,
    )
