"""The paper store: papers, their authors and categories, kept in step with the search index.

`upsert_many` stores a batch in one transaction and is idempotent: a paper is
keyed by its versionless id, so a replacement or a cross-list of a stored paper
updates it and is never reported as new (`bot.domain.merge` says what is kept).

Papers' title, abstract and authors must only change through this repository:
it removes the old folded entry from the search index before indexing the new
one (see `storage.search`, which also answers searches and author pages).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import sqlite as sqlite_dialect

from bot.domain.merge import merge_papers, normalized
from bot.domain.models import AuthorMatch, IngestResult, Paper, SearchHit, StoreStats
from bot.domain.names import author_key
from bot.domain.timestamps import to_timestamp
from storage.author_cache import AuthorIdCache
from storage.authors import AuthorLookups
from storage.batches import batches_for, driver_connection
from storage.paper_rows import (
    FILTER_WINDOW,
    PAPER_COLUMNS,
    VALUE_NAMES,
    IndexRow,
    in_category,
    index_row,
    paper_from_row,
    paper_values,
    recent_share,
)
from storage.prepared import AuthorKeys, PreparedPaper, paper_of, prepare
from storage.schema import (
    authors,
    deliveries,
    destinations,
    paper_authors,
    paper_categories,
    papers,
    subscriptions,
)
from storage.search import (
    BM25_BUDGET,
    COMMON_CANDIDATES,
    FTS_NORMALIZER,
    MAX_SEARCH_TERMS,
    SEARCH_CANDIDATES,
    match_expression,
    search_for,
    search_tokens,
)
from storage.sql import chunks, insert_for
from storage.store import Connection, Store

log = logging.getLogger(__name__)

__all__ = [
    "FTS_NORMALIZER",
    "MAX_SEARCH_TERMS",
    "PaperRepository",
    "match_expression",
    "merge_papers",
    "search_tokens",
]

_PG_INGEST_LOCK = 0x7062696E  # "pbin": one ingest at a time assigns rowids and author ids

# One object per statement: the SQLite driver path compiles each statement once and
# keeps it by identity (`storage.batches`), so a statement built per call would be
# compiled again every batch and kept forever.
_INSERT_PAPER = insert(papers)
_INSERT_AUTHOR = insert(authors)
_INSERT_CATEGORY = insert(paper_categories)
# Run with `paper_values()` and b_rowid: the SET columns are the parameters' names.
_UPDATE_PAPER = update(papers).where(papers.c.rowid == bindparam("b_rowid"))
_UNLINK_AUTHOR = delete(paper_authors).where(
    paper_authors.c.author_id == bindparam("b_author"),
    paper_authors.c.paper_rowid == bindparam("b_rowid"),
)
_UNLINK_CATEGORIES = delete(paper_categories).where(
    paper_categories.c.paper_rowid == bindparam("b_rowid")
)


def _index_paper(rowid: int, paper: Paper) -> IndexRow:
    return index_row(rowid, paper.title, paper.abstract, ", ".join(paper.authors))


def _first_seen(p: Paper, now: datetime) -> Paper:
    """`replace(p, first_seen=now)`, without `dataclasses.replace`'s per-call field walk
    (it was a fifth of the bulk import's own Python time)."""
    return Paper(
        p.id, p.version, p.title, p.abstract, p.authors, p.primary_category, p.categories,
        p.published, p.updated, p.comment, p.journal_ref, p.doi, p.announce_type, first_seen=now,
    )  # fmt: skip


_GET_BY_ID = select(*PAPER_COLUMNS).where(papers.c.id == bindparam("id"))
_GET_BY_ID_SQLITE = str(_GET_BY_ID.compile(dialect=sqlite_dialect.dialect()))


def _sqlite_insert(statement: Any, names: Sequence[str]) -> str:
    """`statement` as SQLite text with positional parameters for the columns `names`."""
    return str(statement.compile(dialect=sqlite_dialect.dialect(), column_keys=list(names)))


# A prepared paper row's timestamps are stored text already: this skips the
# UtcTimestamp bind processing that `Batches.run` would apply to them.
_INSERT_STORED_PAPER = _sqlite_insert(_INSERT_PAPER, ("rowid", "id", *VALUE_NAMES, "first_seen"))


class PaperRepository:
    """Papers keyed by versionless arXiv id, with author, category and full-text look-ups."""

    def __init__(
        self,
        store: Store,
        *,
        search_candidates: int = SEARCH_CANDIDATES,
        common_candidates: int = COMMON_CANDIDATES,
        bm25_budget: int = BM25_BUDGET,
    ) -> None:
        self._store = store
        self._search = search_for(
            store,
            search_candidates=search_candidates,
            common_candidates=common_candidates,
            bm25_budget=bm25_budget,
        )
        self._authors = AuthorLookups(store, self._search)
        # By id, the look-up users wait on most: on SQLite straight to the driver.
        self._get_row = self._get_sqlite if store.dialect == "sqlite" else self._get_core
        self._batches = batches_for(store)  # executemany; the SQLite driver's for speed
        self._link_author = insert_for(store.dialect, paper_authors).on_conflict_do_nothing()
        # PostgreSQL: rowids and author ids are max + 1, so ingests from several
        # processes take turns. SQLite's write transaction already excludes them.
        self._ingest_lock = (
            select(func.pg_advisory_xact_lock(_PG_INGEST_LOCK)) if store.is_postgres else None
        )

    # ---- writing ----

    async def upsert_many(
        self, papers_: Sequence[Paper], *, now: datetime | None = None
    ) -> IngestResult:
        """Store a batch in one transaction; report the papers never stored before."""
        async with self._store.transaction() as conn:
            return await self.upsert_many_in(conn, papers_, now=now)

    async def upsert_many_in(
        self,
        conn: Connection,
        papers_: Sequence[Paper],
        *,
        now: datetime | None = None,
        author_ids: AuthorIdCache | None = None,
    ) -> IngestResult:
        """`upsert_many` inside the caller's open transaction (`Store.transaction()`).

        `author_ids` (optional) spares look-ups of authors met in committed batches.
        """
        now = (now or datetime.now(UTC)).astimezone(UTC)
        incoming: dict[str, Paper] = {}
        for raw in papers_:
            paper = normalized(raw)
            earlier = incoming.get(paper.id)
            incoming[paper.id] = merge_papers(earlier, paper) if earlier else paper
        if not incoming:
            return IngestResult((), 0, 0)
        if self._ingest_lock is not None:
            await conn.execute(self._ingest_lock)
        await self._search.ensure(conn)
        stored = await self._stored(conn, list(incoming))

        top = (await conn.execute(select(func.coalesce(func.max(papers.c.rowid), 0)))).scalar()
        next_rowid = int(top or 0) + 1
        inserts: list[tuple[int, Paper]] = []
        updates: list[tuple[int, Paper, Paper]] = []
        unchanged = 0
        for paper_id, paper in incoming.items():
            if paper_id in stored:
                rowid, old = stored[paper_id]
                merged = merge_papers(old, paper)
                if merged == old:
                    unchanged += 1
                else:
                    updates.append((rowid, old, merged))
            else:
                # Already normal (see above): only the first-seen time is new.
                inserts.append((next_rowid, _first_seen(paper, now)))
                next_rowid += 1

        await self._batches.run(
            conn,
            _INSERT_PAPER,
            ("rowid", "id", *VALUE_NAMES, "first_seen"),
            [(r, p.id, *paper_values(p), p.first_seen) for r, p in inserts],
        )
        await self._batches.run(
            conn,
            _UPDATE_PAPER,
            (*VALUE_NAMES, "b_rowid"),
            [(*paper_values(new), r) for r, _, new in updates],
        )
        await self._link(conn, inserts, updates, author_ids)
        text_changed = [
            (rowid, old, new)
            for rowid, old, new in updates
            if (old.title, old.abstract, old.authors) != (new.title, new.abstract, new.authors)
        ]
        await self._search.remove(conn, [_index_paper(r, old) for r, old, _ in text_changed])
        entries = [_index_paper(r, p) for r, p in inserts]
        entries += [_index_paper(r, new) for r, _, new in text_changed]
        await self._search.add(conn, entries)
        return IngestResult(tuple(p for _, p in inserts), len(updates), unchanged)

    async def upsert_prepared_in(
        self,
        conn: Connection,
        rows: Sequence[PreparedPaper],
        *,
        keys: AuthorKeys | None = None,
        now: datetime | None = None,
        author_ids: AuthorIdCache | None = None,
    ) -> tuple[int, int, int]:
        """`upsert_many_in` for rows `storage.prepared.prepare` made: (new, updated, unchanged).

        On SQLite, the rows of papers not stored yet are inserted as they are, with
        rowids in batch order; an id given twice is merged first, as `upsert_many_in`
        does. Stored papers, and every row on PostgreSQL, are merged as `Paper`s by
        `upsert_many_in`. `keys` are author keys worked out ahead, see `_author_ids`.
        """
        if self._store.is_postgres:
            result = await self.upsert_many_in(
                conn, [paper_of(r) for r in rows], now=now, author_ids=author_ids
            )
            return len(result.new), result.updated, result.unchanged
        now = (now or datetime.now(UTC)).astimezone(UTC)
        batch: dict[str, PreparedPaper] = {}
        for row in rows:
            earlier = batch.setdefault(row[0], row)
            if earlier is not row:  # rare: one paper twice in a file
                batch[row[0]] = prepare(merge_papers(paper_of(earlier), paper_of(row)))
        if not batch:
            return 0, 0, 0
        await self._search.ensure(conn)
        found = await self._batches.matching(conn, select(papers.c.id), papers.c.id, list(batch))
        stored = [paper_of(batch.pop(row.id)) for row in found]
        if batch:
            await self._insert_prepared(conn, list(batch.values()), now, keys, author_ids)
        merged = await self.upsert_many_in(conn, stored, now=now, author_ids=author_ids)
        return len(batch) + len(merged.new), merged.updated, merged.unchanged

    async def _insert_prepared(
        self,
        conn: Connection,
        rows: Sequence[PreparedPaper],
        now: datetime,
        keys: AuthorKeys | None,
        cache: AuthorIdCache | None,
    ) -> None:
        """Insert the rows of papers not stored yet (SQLite), straight through the driver."""
        top = (await conn.execute(select(func.coalesce(func.max(papers.c.rowid), 0)))).scalar()
        first = int(top or 0) + 1
        rowids = range(first, first + len(rows))
        first_seen = to_timestamp(now)
        names = {n for row in rows for n in row[3]}
        ids = await self._author_ids(conn, names, keys, cache) if names else {}
        driver = await driver_connection(conn)
        await driver.executemany(
            _INSERT_STORED_PAPER,
            [(r, row[0], *row[1], first_seen) for r, row in zip(rowids, rows, strict=True)],
        )
        # In key order, as `_link` (each name is once in row[3], see `prepare`). The
        # pairs come in rowid order, so a stable sort on the first item is enough,
        # in about half the time of comparing whole tuples.
        links = [(ids[n], r) for r, row in zip(rowids, rows, strict=True) for n in row[3]]
        links.sort(key=itemgetter(0))
        await self._batches.run(conn, self._link_author, ("author_id", "paper_rowid"), links)
        listed = [(c, r) for r, row in zip(rowids, rows, strict=True) for c in row[4]]
        listed.sort(key=itemgetter(0))
        await self._batches.run(conn, _INSERT_CATEGORY, ("category", "paper_rowid"), listed)
        await self._search.add(conn, [(r, *row[2]) for r, row in zip(rowids, rows, strict=True)])

    async def _stored(self, conn: Connection, ids: Sequence[str]) -> dict[str, tuple[int, Paper]]:
        found: dict[str, tuple[int, Paper]] = {}
        for row in await self._batches.matching(conn, select(*PAPER_COLUMNS), papers.c.id, ids):
            found[row.id] = (int(row.rowid), paper_from_row(row))
        return found

    async def _link(
        self,
        conn: Connection,
        inserts: Sequence[tuple[int, Paper]],
        updates: Sequence[tuple[int, Paper, Paper]],
        cache: AuthorIdCache | None = None,
    ) -> None:
        """Rewrite paper_authors and paper_categories for new papers and changed lists."""
        relinked = [(r, old, new) for r, old, new in updates if old.authors != new.authors]
        author_lists = list(inserts) + [(r, new) for r, _, new in relinked]
        category_lists = list(inserts) + [
            (r, new) for r, old, new in updates if old.categories != new.categories
        ]
        names = {n for _, p in author_lists for n in p.authors}
        names.update(n for _, old, _ in relinked for n in old.authors)
        ids = await self._author_ids(conn, names, cache=cache) if names else {}
        await self._batches.run(
            conn,
            _UNLINK_AUTHOR,
            ("b_author", "b_rowid"),
            [(ids[n], r) for r, old, _ in relinked for n in set(old.authors)],
        )
        await self._batches.run(
            conn,
            _UNLINK_CATEGORIES,
            ("b_rowid",),
            [(r,) for r, old, new in updates if old.categories != new.categories],
        )
        # Do nothing on conflict: one name twice in a list is one (author, paper) pair.
        # In key order: each insert lands next to the previous one in the B-tree.
        await self._batches.run(
            conn,
            self._link_author,
            ("author_id", "paper_rowid"),
            sorted({(ids[name], r) for r, p in author_lists for name in p.authors}),
        )
        await self._batches.run(
            conn,
            _INSERT_CATEGORY,
            ("category", "paper_rowid"),
            sorted((c, r) for r, p in category_lists for c in p.categories),
        )

    async def _author_ids(
        self,
        conn: Connection,
        names: Iterable[str],
        keys: AuthorKeys | None = None,
        cache: AuthorIdCache | None = None,
    ) -> dict[str, int]:
        """Ids of `names`, creating authors (with their match keys) that are not stored yet.

        `cache` (a bulk writer's, see `storage.author_cache`) answers for the names
        of committed batches; the others are looked up, and noted in it.
        """
        ids, wanted = cache.split(names) if cache is not None else ({}, list(names))
        named = select(authors.c.id, authors.c.name)
        found = {
            row.name: int(row.id)
            for row in await self._batches.matching(conn, named, authors.c.name, wanted)
        }
        missing = sorted(n for n in wanted if n not in found)  # name order: see `_link`
        created: dict[str, int] = {}
        if missing:
            # The transaction holds the write lock, so max(id) + 1... are ours to use.
            top = (await conn.execute(select(func.coalesce(func.max(authors.c.id), 0)))).scalar()
            next_id = int(top or 0) + 1
            rows: list[tuple[int, str, str, str]] = []
            known = keys or {}
            for offset, name in enumerate(missing):
                created[name] = next_id + offset
                hinted = known.get(name)
                if hinted is None:
                    key = author_key(name)
                    hinted = (key.surname, key.given_key)
                rows.append((next_id + offset, name, *hinted))
            await self._batches.run(
                conn, _INSERT_AUTHOR, ("id", "name", "surname_key", "given_key"), rows
            )
        if cache is not None:
            cache.note(found)
            cache.note(created)
        ids.update(found)
        ids.update(created)
        return ids

    # ---- reading ----

    async def compact_index(self) -> None:
        """Merge the search index after a big bulk write (see `Search.compact`)."""
        async with self._store.transaction() as conn:
            await self._search.compact(conn)

    async def get(self, paper_id: str) -> Paper | None:
        row = await self._get_row(paper_id)
        return paper_from_row(row) if row else None

    async def _get_core(self, paper_id: str) -> Sequence[Any] | None:
        return await self._store.fetchone(_GET_BY_ID, {"id": paper_id})

    async def _get_sqlite(self, paper_id: str) -> Sequence[Any] | None:
        # One hand-off to the driver: see Store.sqlite_rows for the figures.
        rows = await self._store.sqlite_rows(_GET_BY_ID_SQLITE, (paper_id,))
        return rows[0] if rows else None

    async def get_many(self, ids: Iterable[str]) -> list[Paper]:
        """The stored papers among `ids`, in the order asked, without repeats."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Paper] = {}
        for chunk in chunks(wanted):
            rows = await self._store.fetchall(select(*PAPER_COLUMNS).where(papers.c.id.in_(chunk)))
            found.update((row.id, paper_from_row(row)) for row in rows)
        return [found[i] for i in wanted if i in found]

    async def count(self) -> int:
        return int(await self._store.scalar(select(func.count()).select_from(papers)) or 0)

    async def latest(self, limit: int = 10, category: str | None = None) -> list[Paper]:
        """The most recently published papers, optionally of one class (`cs.LG`) or archive."""
        limit = max(0, limit)
        newest = select(*PAPER_COLUMNS).order_by(papers.c.published.desc(), papers.c.id)
        if category and await recent_share(self._store, category, None, None) * 100 < (
            FILTER_WINDOW
        ):
            # A rare (or unknown) category: sort its own papers rather than walk
            # every paper by date looking for it.
            return await self._search.category_latest(category, limit)
        if category:
            newest = newest.where(in_category(category, papers.c.rowid))
        rows = await self._store.fetchall(newest.limit(limit))
        return [paper_from_row(row) for row in rows]

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
        """Papers containing every word of `query` (plain text), best first.

        `since`/`until` bound `published` (inclusive/exclusive); `category` is a
        class (`cs.LG`) or a whole archive (`cs`). Never raises on odd input.
        On SQLite, searches of rare words are ranked by bm25 among the newest
        `search_candidates` matches (rank < 0, lower is better). Otherwise, among
        the newest `common_candidates` matches, papers whose title has every word
        (rank -1) come before the others (rank 0); see `SqliteSearch._plan` for
        why. Equal ranks go newest first.
        """
        return await self._search.search(
            query, category=category, since=since, until=until, limit=limit, offset=offset
        )

    async def by_author(self, query: str, *, limit: int = 25, offset: int = 0) -> AuthorMatch:
        """Papers of every stored author whose name can be `query`, newest first."""
        return await self._authors.by_author(query, limit=limit, offset=offset)

    async def author_names(self, prefix: str, limit: int = 25) -> list[str]:
        """Stored spellings for autocomplete (see `AuthorLookups.author_names`)."""
        return await self._authors.author_names(prefix, limit)

    async def stats(self) -> StoreStats:
        async def count(statement: Any) -> int:
            return int(await self._store.scalar(statement) or 0)

        def rows_of(table: Any) -> Any:
            return select(func.count()).select_from(table)

        per_category = {
            str(row.category): int(row.n)
            for row in await self._store.fetchall(
                select(paper_categories.c.category, func.count().label("n")).group_by(
                    paper_categories.c.category
                )
            )
        }
        return StoreStats(
            papers=await count(rows_of(papers)),
            authors=await count(rows_of(authors)),
            destinations=await count(rows_of(destinations)),
            subscriptions=await count(rows_of(subscriptions)),
            pending_deliveries=await count(
                rows_of(deliveries).where(deliveries.c.status == "pending")
            ),
            sent_deliveries=await count(rows_of(deliveries).where(deliveries.c.status == "sent")),
            database_bytes=await self._store.database_bytes(),
            per_category=per_category,
        )
