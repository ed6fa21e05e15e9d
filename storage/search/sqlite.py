"""SQLite's search: a contentless FTS5 table, bm25 for rare words, a cheaper plan otherwise.

The index rows go to the aiosqlite driver directly, inside the writer's
transaction: they are part of the bulk import's hot path (see storage/batches.py).
The FTS5 queries (MATCH, bm25) and the join orders SQLite must be told (CROSS
JOIN, INDEXED BY) are `text()` with named binds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from bot.domain.models import Paper, SearchHit
from bot.domain.names import keyword_tokens
from storage.batches import driver_connection
from storage.paper_rows import (
    FILTER_WINDOW,
    PAPER_COLUMNS_SQL,
    AnyRow,
    IndexRow,
    names_text,
    paper_from_row,
    recent_share,
)
from storage.schema import papers
from storage.search.base import (
    Search,
    category_source_sql,
    filters_sql,
    search_tokens,
)
from storage.store import Connection

log = logging.getLogger(__name__)

DENSITY_WINDOW = 2_000  # newest papers on which a word's frequency is estimated
HUGE_DENSITY = 0.2  # a word in this share of recent papers is checked, not scanned
MAX_CHECKS = 2_000  # candidates checked for such words, at most
_BM25 = "bm25(papers_fts, 5.0, 1.0, 2.0)"  # title, abstract, authors_text


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


def _has_words(words: Iterable[str], *texts: str | None) -> bool:
    """Whether the folded `texts` contain every word: what a MATCH on the index would say."""
    found: set[str] = set()
    for part in texts:
        found.update(keyword_tokens(part or ""))
    return all(w in found for w in words)


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


class SqliteSearch(Search):
    """FTS5: a contentless `papers_fts` (title, abstract, authors_text), bm25 or a cheap plan."""

    async def compact(self, conn: Connection) -> None:
        # A bulk import leaves FTS5 with many segments and every look-up seeks in each:
        # at 3M papers merging them (30 s) took search p95 from 20.4 to 15.6 ms and
        # author p95 from 11.8 to 9.1 ms (`python -m bench.lookups`).
        await conn.execute(text("INSERT INTO papers_fts(papers_fts) VALUES('optimize')"))

    async def add(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        if rows:
            await (await driver_connection(conn)).executemany(_SQLITE_INSERT, rows)

    async def remove(self, conn: Connection, rows: Sequence[IndexRow]) -> None:
        # A contentless table forgets an entry only when given the text it indexed.
        if rows:
            await (await driver_connection(conn)).executemany(_SQLITE_DELETE, rows)

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
        filters, params = filters_sql(category, since, until, "f", "papers_fts")
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
            for row in rows:
                rowid, published, paper_id, title, abstract, authors_json = row[:6]
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

    async def _fts_rows(self, sql: str, params: dict[str, Any]) -> Sequence[AnyRow]:
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
        source, params = category_source_sql(category)
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
    dates, params = filters_sql(None, since, until, "p")
    columns = "p.rowid, p.published, p.id, p.title, p.abstract, p.authors_json"
    if category:
        source, source_params = category_source_sql(category)
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
