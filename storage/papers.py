"""The paper store: papers, their authors and categories, and the full-text index over them.

`upsert_many` stores a batch in one transaction and is idempotent: a paper is
keyed by its versionless id, so a replacement or a cross-list of a stored paper
updates it and is never reported as new. Merging keeps the best of both sides:
the higher version's text and metadata win, a missing value (RSS has no
comment, no DOI) never erases a known one, a lower version only fills gaps,
and `published` keeps the *earliest* date ever seen (the API's v1 date beats a
later RSS announcement or replacement date).

The full-text index `papers_fts` is contentless and maintained here rather
than by triggers: it holds `fold_keyword()` of each paper's title, abstract and
author list, so TeX accents and `ł`/`ø` fold the same in the index and in a
query. Consequently papers' title, abstract and authors must only change
through this repository (it removes the old folded entry before indexing the
new one). Which normalizer built the index is kept in meta; when it differs
from `FTS_NORMALIZER` the whole index is rebuilt once, in one transaction.

Search ranks with bm25 (title above authors above abstract) among the
`SEARCH_CANDIDATES` most recently stored matches, ties broken by recency: over a
million papers, ranking every paper that contains "learning" costs far more
than the 20 ms a search may take, and a bot announcing new papers cares about
recent ones first.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.domain.models import (
    AnnounceType,
    AuthorMatch,
    IngestResult,
    Paper,
    SearchHit,
    StoreStats,
)
from bot.domain.names import (
    author_key,
    fold,
    fold_for_index,
    given_compatible,
    keyword_tokens,
    query_key,
)
from storage.backend import AnyDatabase, Connection, Row, json_ids

log = logging.getLogger(__name__)

FTS_NORMALIZER = "fold_keyword-1"  # bump when fold_keyword changes: the index is rebuilt
MAX_SEARCH_TERMS = 32
SEARCH_CANDIDATES = 2000  # newest matches ranked by bm25
COMMON_CANDIDATES = 200  # newest matches ranked by title and recency otherwise
BM25_BUDGET = 20_000  # postings all words together may have for bm25 ranking
DENSITY_WINDOW = 2_000  # newest papers on which a word's frequency is estimated
HUGE_DENSITY = 0.2  # a word in this share of recent papers is checked, not scanned
MAX_CHECKS = 2_000  # candidates checked for such words, at most
FILTER_WINDOW = 500  # newest papers on which the share passing the filters is estimated
_META_KEY = "papers_fts_normalizer"
_CHUNK = 500  # bound parameters per IN (...) list
_BM25 = "bm25(papers_fts, 5.0, 1.0, 2.0)"  # title, abstract, authors_text
_AUTOCOMPLETE_SCAN = 500

_COLUMNS = (
    "p.rowid, p.id, p.version, p.title, p.abstract, p.authors_json, p.primary_category, "
    "p.categories, p.published, p.updated, p.comment, p.journal_ref, p.doi, "
    "p.announce_type, p.first_seen"
)
_INSERT_PAPER = (
    "INSERT INTO papers (rowid, id, version, title, abstract, authors_json, "
    "primary_category, categories, published, updated, comment, journal_ref, doi, "
    "announce_type, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_PAPER = (
    "UPDATE papers SET version = ?, title = ?, abstract = ?, authors_json = ?, "
    "primary_category = ?, categories = ?, published = ?, updated = ?, comment = ?, "
    "journal_ref = ?, doi = ?, announce_type = ? WHERE rowid = ?"
)
_FTS_INSERT = "INSERT INTO papers_fts (rowid, title, abstract, authors_text) VALUES (?, ?, ?, ?)"
_FTS_DELETE = (
    "INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors_text) "
    "VALUES ('delete', ?, ?, ?, ?)"
)
# PostgreSQL: a tsvector per paper (title A, authors B, abstract C) over the same folded text.
_PG_FTS_INSERT = (
    "INSERT INTO papers_fts (rowid, tsv) VALUES (?, "
    "setweight(to_tsvector('simple', ?), 'A') || setweight(to_tsvector('simple', ?), 'C') "
    "|| setweight(to_tsvector('simple', ?), 'B')) "
    "ON CONFLICT (rowid) DO UPDATE SET tsv = excluded.tsv"
)
_PG_FTS_DELETE = "DELETE FROM papers_fts WHERE rowid = ?"
_PG_INGEST_LOCK = 0x7062696E  # "pbin": one ingest at a time assigns rowids and author ids
_CROSS_TYPES = frozenset({AnnounceType.CROSS, AnnounceType.REPLACE_CROSS})


# ---- encoding ---------------------------------------------------------------------------


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _announce_type(text: str | None) -> AnnounceType | None:
    try:
        return AnnounceType(text) if text else None
    except ValueError:
        log.warning("unknown announce_type %r in the store", text)
        return None


def _paper(row: Sequence[Any]) -> Paper:
    return Paper(
        id=row[1],
        version=row[2],
        title=row[3],
        abstract=row[4],
        authors=tuple(json.loads(row[5])),
        primary_category=row[6],
        categories=tuple(row[7].split()),
        published=_dt(row[8]),
        updated=_dt(row[9]),
        comment=row[10],
        journal_ref=row[11],
        doi=row[12],
        announce_type=_announce_type(row[13]),
        first_seen=_dt(row[14]),
    )


def _values(paper: Paper) -> tuple[Any, ...]:
    """The stored columns from version to announce_type, in `_UPDATE_PAPER`'s order."""
    return (
        paper.version,
        paper.title,
        paper.abstract,
        json.dumps(paper.authors, ensure_ascii=False),
        paper.primary_category,
        " ".join(paper.categories),
        _ts(paper.published),
        _ts(paper.updated),
        paper.comment,
        paper.journal_ref,
        paper.doi,
        paper.announce_type.value if paper.announce_type else None,
    )


def _fts_row(rowid: int, title: str, abstract: str, authors_text: str) -> tuple[Any, ...]:
    return (rowid, fold_for_index(title), fold_for_index(abstract), fold_for_index(authors_text))


def _names_text(authors_json: str | None) -> str:
    """A stored `authors_json` list as the ", "-joined text the index holds."""
    return ", ".join(json.loads(authors_json)) if authors_json else ""


def _fts_paper(rowid: int, paper: Paper) -> tuple[Any, ...]:
    return _fts_row(rowid, paper.title, paper.abstract, ", ".join(paper.authors))


@dataclass(frozen=True, slots=True)
class IndexHints:
    """Index text and author keys worked out ahead (by a bulk import's parser process).

    `folded` maps a paper id to (title, abstract, authors text, and their folded
    forms); `keys` maps an author name to (surname key, given key). A hint is used
    only when its texts equal the paper's as stored, so a stale or wrong hint costs
    a recomputation, never a wrong index.
    """

    folded: dict[str, tuple[str, str, str, str, str, str]]
    keys: dict[str, tuple[str, str]]


def index_hints(papers: Iterable[Paper]) -> IndexHints:
    """The `IndexHints` of `papers` (as `_normalized` leaves their names)."""
    folded: dict[str, tuple[str, str, str, str, str, str]] = {}
    keys: dict[str, tuple[str, str]] = {}
    for paper in papers:
        names = [n for n in (" ".join(a.split()) for a in paper.authors) if n]
        text = ", ".join(names)
        folded[paper.id] = (
            paper.title,
            paper.abstract,
            text,
            fold_for_index(paper.title),
            fold_for_index(paper.abstract),
            fold_for_index(text),
        )
        for name in names:
            if name not in keys:
                key = author_key(name)
                keys[name] = (key.surname, key.given_key)
    return IndexHints(folded, keys)


def _fts_hinted(rowid: int, paper: Paper, hints: IndexHints | None) -> tuple[Any, ...]:
    text = ", ".join(paper.authors)
    hint = hints.folded.get(paper.id) if hints else None
    if (
        hint is not None
        and hint[0] == paper.title
        and hint[1] == paper.abstract
        and hint[2] == text
    ):
        return (rowid, hint[3], hint[4], hint[5])
    return _fts_row(rowid, paper.title, paper.abstract, text)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


# ---- merging ----------------------------------------------------------------------------


def _is_utc(value: datetime | None) -> bool:
    return value is None or value.tzinfo is UTC


def _normalized(paper: Paper, first_seen: datetime | None = None) -> Paper:
    """Names with single spaces and no blanks, categories primary-first without repeats, UTC.

    `first_seen`, when given, replaces the paper's. Already normal papers (what the
    feed parser produces) are returned as they are: this runs for every paper stored.
    """
    authors, categories, primary = paper.authors, paper.categories, paper.primary_category
    if (
        first_seen is None
        and categories
        and categories[0] == primary
        and len(set(categories)) == len(categories)
        and all(categories)
        and all(a and " ".join(a.split()) == a for a in authors)
        and _is_utc(paper.published)
        and _is_utc(paper.updated)
        and _is_utc(paper.first_seen)
    ):
        return paper
    authors = tuple(n for n in (" ".join(a.split()) for a in authors) if n)
    categories = tuple(c for c in dict.fromkeys((primary, *categories)) if c)
    first_seen = first_seen or paper.first_seen
    return Paper(
        id=paper.id,
        version=paper.version,
        title=paper.title,
        abstract=paper.abstract,
        authors=authors,
        primary_category=primary or (categories[0] if categories else ""),
        categories=categories,
        published=paper.published.astimezone(UTC) if paper.published else None,
        updated=paper.updated.astimezone(UTC) if paper.updated else None,
        comment=paper.comment,
        journal_ref=paper.journal_ref,
        doi=paper.doi,
        announce_type=paper.announce_type,
        first_seen=first_seen.astimezone(UTC) if first_seen else None,
    )


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else max(a, b)


def _merged_announce_type(old: Paper, new: Paper) -> AnnounceType | None:
    if new.announce_type is None or old.announce_type is None:
        return new.announce_type or old.announce_type
    if new.version != old.version:
        return (new if new.version > old.version else old).announce_type
    # Same version seen in two listings: the primary listing says more than the cross-list.
    if new.announce_type in _CROSS_TYPES and old.announce_type not in _CROSS_TYPES:
        return old.announce_type
    return new.announce_type


def merge_papers(old: Paper, new: Paper) -> Paper:
    """What the store keeps when `new` arrives for the stored `old` (same id).

    The higher version's values win (ties go to `new`); empty or missing values
    never overwrite known ones; `published` is the earliest known date,
    `updated` the latest; `first_seen` stays `old`'s.
    """
    top, other = (new, old) if new.version >= old.version else (old, new)
    return _normalized(
        Paper(
            id=old.id,
            version=max(old.version, new.version),
            title=top.title or other.title,
            abstract=top.abstract or other.abstract,
            authors=top.authors or other.authors,
            primary_category=top.primary_category or other.primary_category,
            categories=top.categories or other.categories,
            published=_earliest(old.published, new.published),
            updated=_latest(old.updated, new.updated),
            comment=top.comment or other.comment,
            journal_ref=top.journal_ref or other.journal_ref,
            doi=top.doi or other.doi,
            announce_type=_merged_announce_type(old, new),
            first_seen=old.first_seen,
        )
    )


# ---- search helpers ---------------------------------------------------------------------


def search_tokens(text: str) -> tuple[str, ...]:
    """The distinct folded words of a search, at most `MAX_SEARCH_TERMS` of them."""
    return tuple(dict.fromkeys(keyword_tokens(text)))[:MAX_SEARCH_TERMS]


def _match(tokens: Sequence[str], column: str | None = None, operator: str = "AND") -> str:
    expression = f" {operator} ".join('"' + t.replace('"', '""') + '"' for t in tokens)
    return f"{column} : ({expression})" if column else expression


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression for plain user text, or None when it has no words.

    Every folded token becomes a quoted FTS5 string, ANDed: operators (`OR`,
    `NEAR`), column filters (`title:`), `*`, `-` and quotes in the input are
    only ever words. At most `MAX_SEARCH_TERMS` distinct tokens are kept.
    """
    tokens = search_tokens(text)
    return _match(tokens) if tokens else None


def _category_clause(category: str, alias: str) -> tuple[str, list[Any]]:
    """SQL testing that paper `alias` is in `category` (or, for "cs", any cs.* class)."""
    if "." in category:
        return (
            "EXISTS (SELECT 1 FROM paper_categories pc "
            f"WHERE pc.category = ? AND pc.paper_rowid = {alias}.rowid)",
            [category],
        )
    return (
        "EXISTS (SELECT 1 FROM paper_categories pc WHERE pc.paper_rowid = "
        f"{alias}.rowid AND (pc.category = ? OR substr(pc.category, 1, ?) = ?))",
        [category, len(category) + 1, category + "."],
    )


def _filters(
    category: str | None,
    since: datetime | None,
    until: datetime | None,
    alias: str,
    category_alias: str | None = None,
) -> tuple[str, list[Any]]:
    """ " AND ..." clauses on paper `alias` (its rowid may be `category_alias`'s)."""
    clauses: list[str] = []
    params: list[Any] = []
    if category:
        clause, extra = _category_clause(category, category_alias or alias)
        clauses.append(clause)
        params += extra
    if since is not None:
        clauses.append(f"{alias}.published >= ?")
        params.append(_ts(since))
    if until is not None:
        clauses.append(f"{alias}.published < ?")
        params.append(_ts(until))
    return "".join(f" AND {c}" for c in clauses), params


def _next_char(c: str) -> str:
    """The code point after `c`, for half-open prefix ranges; skips the surrogate block."""
    code = ord(c) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000
    return chr(min(code, 0x10FFFF))


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix[:-1] + _next_char(prefix[-1])


def _typed_given_ok(typed: tuple[str, ...], stored: tuple[str, ...]) -> bool:
    """Autocomplete: complete typed given names compatible, the last one being typed a prefix."""
    if not typed:
        return True
    if not given_compatible(typed[:-1], stored):
        return False
    last = typed[-1]
    return any(t.startswith(last) or (len(t) == 1 and last.startswith(t)) for t in stored)


def _category_source(category: str) -> tuple[str, list[Any]]:
    """SQL for the rowids (`r`) of one class's papers, or of a whole archive's (no repeats)."""
    if "." in category:
        return "SELECT paper_rowid AS r FROM paper_categories WHERE category = ?", [category]
    return (
        "SELECT DISTINCT paper_rowid AS r FROM paper_categories "
        "WHERE category = ? OR (category > ? AND category < ?)",
        [category, category + ".", category + "/"],  # "cs.*" sorts between "cs." and "cs/"
    )


def _filtered_rows_sql(
    category: str | None, since: datetime | None, until: datetime | None
) -> tuple[str, list[Any]]:
    """Papers passing the filters, newest first, read through the filter's own index.

    Parameters: the returned ones, then LIMIT and OFFSET.
    """
    dates, params = _filters(None, since, until, "p")
    columns = "p.rowid, p.published, p.id, p.title, p.abstract, p.authors_json"
    if category:
        source, source_params = _category_source(category)
        return (
            f"SELECT {columns} FROM ({source}) c CROSS JOIN papers p ON p.rowid = c.r "
            f"WHERE 1{dates} ORDER BY c.r DESC LIMIT ? OFFSET ?",
            [*source_params, *params],
        )
    return (
        f"SELECT {columns} FROM papers p INDEXED BY papers_published "
        f"WHERE 1{dates} ORDER BY p.published DESC, p.id LIMIT ? OFFSET ?",
        params,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one search runs; see `PaperRepository._plan`."""

    bm25: bool  # rank with bm25, or title-has-every-word first, then newest
    tokens: tuple[str, ...]  # every word, all of which a hit contains
    scan: tuple[str, ...]  # the words whose FTS match drives the candidate scan
    check: tuple[str, ...]  # very common words, checked on each candidate's text


def _has_words(words: Iterable[str], *texts: str | None) -> bool:
    """Whether the folded `texts` contain every word: what a MATCH on the index would say."""
    found: set[str] = set()
    for text in texts:
        found.update(keyword_tokens(text or ""))
    return all(w in found for w in words)


# ---- the repository ---------------------------------------------------------------------


class PaperRepository:
    """Papers keyed by versionless arXiv id, with author, category and full-text look-ups."""

    def __init__(
        self,
        db: AnyDatabase,
        *,
        search_candidates: int = SEARCH_CANDIDATES,
        common_candidates: int = COMMON_CANDIDATES,
        bm25_budget: int = BM25_BUDGET,
    ) -> None:
        self._db = db
        self._search_candidates = search_candidates
        self._common_candidates = common_candidates
        self._bm25_budget = bm25_budget
        self._index_checked = False

    # ---- writing ----

    async def upsert_many(
        self, papers: Sequence[Paper], *, now: datetime | None = None
    ) -> IngestResult:
        """Store a batch in one transaction; report the papers never stored before."""
        async with self._db.transaction() as conn:
            return await self.upsert_many_in(conn, papers, now=now)

    async def upsert_many_in(
        self,
        conn: Connection,
        papers: Sequence[Paper],
        *,
        now: datetime | None = None,
        hints: IndexHints | None = None,
    ) -> IngestResult:
        """`upsert_many` inside the caller's open transaction (`Database.transaction()`).

        `hints` (optional) spare this process the index text folding and author keys.
        """
        now = (now or datetime.now(UTC)).astimezone(UTC)
        incoming: dict[str, Paper] = {}
        for raw in papers:
            paper = _normalized(raw)
            earlier = incoming.get(paper.id)
            incoming[paper.id] = merge_papers(earlier, paper) if earlier else paper
        if not incoming:
            return IngestResult((), 0, 0)
        if self._db.dialect == "postgres":
            # rowids and author ids are max + 1: serialise ingests across processes.
            await conn.execute("SELECT pg_advisory_xact_lock(?)", (_PG_INGEST_LOCK,))
        await self._ensure_index(conn)
        stored = await self._stored(conn, list(incoming))

        async with conn.execute("SELECT coalesce(max(rowid), 0) FROM papers") as cursor:
            row = await cursor.fetchone()
        next_rowid = int(row[0]) + 1 if row else 1
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
                inserts.append((next_rowid, replace(paper, first_seen=now)))
                next_rowid += 1

        if inserts:
            await conn.executemany(
                _INSERT_PAPER,
                [(rowid, p.id, *_values(p), _ts(p.first_seen)) for rowid, p in inserts],
            )
        if updates:
            await conn.executemany(_UPDATE_PAPER, [(*_values(new), r) for r, _, new in updates])
        await self._link(conn, inserts, updates, hints)
        text_changed = [
            (rowid, old, new)
            for rowid, old, new in updates
            if (old.title, old.abstract, old.authors) != (new.title, new.abstract, new.authors)
        ]
        postgres = self._db.dialect == "postgres"
        if text_changed and not postgres:  # PostgreSQL's insert below is an upsert
            await conn.executemany(_FTS_DELETE, [_fts_paper(r, old) for r, old, _ in text_changed])
        fts_rows = [_fts_hinted(r, p, hints) for r, p in inserts]
        fts_rows += [_fts_hinted(r, new, hints) for r, _, new in text_changed]
        if fts_rows:
            await conn.executemany(_PG_FTS_INSERT if postgres else _FTS_INSERT, fts_rows)
        return IngestResult(tuple(p for _, p in inserts), len(updates), unchanged)

    async def _stored(self, conn: Connection, ids: Sequence[str]) -> dict[str, tuple[int, Paper]]:
        found: dict[str, tuple[int, Paper]] = {}
        if self._db.dialect == "sqlite":
            sql = f"SELECT {_COLUMNS} FROM json_each(?) j CROSS JOIN papers p ON p.id = j.value"
            async with conn.execute(sql, (json.dumps(list(ids)),)) as cursor:
                for row in await cursor.fetchall():
                    found[row[1]] = (int(row[0]), _paper(row))
            return found
        for chunk in _chunks(ids):
            sql = f"SELECT {_COLUMNS} FROM papers p WHERE p.id IN ({_marks(len(chunk))})"
            async with conn.execute(sql, chunk) as cursor:
                for row in await cursor.fetchall():
                    found[row[1]] = (int(row[0]), _paper(row))
        return found

    async def _link(
        self,
        conn: Connection,
        inserts: Sequence[tuple[int, Paper]],
        updates: Sequence[tuple[int, Paper, Paper]],
        hints: IndexHints | None = None,
    ) -> None:
        """Rewrite paper_authors and paper_categories for new papers and changed lists."""
        relinked = [(r, old, new) for r, old, new in updates if old.authors != new.authors]
        author_lists = list(inserts) + [(r, new) for r, _, new in relinked]
        category_lists = list(inserts) + [
            (r, new) for r, old, new in updates if old.categories != new.categories
        ]
        names = {n for _, p in author_lists for n in p.authors}
        names.update(n for _, old, _ in relinked for n in old.authors)
        ids = await self._author_ids(conn, names, hints.keys if hints else {}) if names else {}
        if relinked:
            await conn.executemany(
                "DELETE FROM paper_authors WHERE author_id = ? AND paper_rowid = ?",
                [(ids[n], r) for r, old, _ in relinked for n in set(old.authors)],
            )
        recategorized = [(r,) for r, old, new in updates if old.categories != new.categories]
        if recategorized:
            await conn.executemany(
                "DELETE FROM paper_categories WHERE paper_rowid = ?", recategorized
            )
        if author_lists:
            # OR IGNORE: one name twice in a list is one (author, paper) pair.
            await conn.executemany(
                "INSERT OR IGNORE INTO paper_authors (author_id, paper_rowid) VALUES (?, ?)",
                [(ids[name], r) for r, p in author_lists for name in p.authors],
            )
        if category_lists:
            await conn.executemany(
                "INSERT INTO paper_categories (category, paper_rowid) VALUES (?, ?)",
                [(c, r) for r, p in category_lists for c in p.categories],
            )

    async def _author_ids(
        self, conn: Connection, names: Iterable[str], keys: dict[str, tuple[str, str]] | None = None
    ) -> dict[str, int]:
        """Ids of `names`, creating authors (with their match keys) that are not stored yet.

        Not cached across calls: ids handed out in a transaction that is later
        rolled back would poison a cache, and a bulk look-up per batch is cheap.
        """
        wanted = list(names)
        ids: dict[str, int] = {}
        if self._db.dialect == "sqlite":
            sql = "SELECT a.id, a.name FROM json_each(?) j CROSS JOIN authors a ON a.name = j.value"
            async with conn.execute(sql, (json.dumps(wanted, ensure_ascii=False),)) as cursor:
                ids.update((row[1], int(row[0])) for row in await cursor.fetchall())
        for chunk in _chunks(wanted) if self._db.dialect != "sqlite" else ():
            sql = f"SELECT id, name FROM authors WHERE name IN ({_marks(len(chunk))})"
            async with conn.execute(sql, chunk) as cursor:
                ids.update((row[1], int(row[0])) for row in await cursor.fetchall())
        missing = [n for n in wanted if n not in ids]
        if missing:
            # The transaction holds the write lock, so max(id) + 1... are ours to use.
            async with conn.execute("SELECT coalesce(max(id), 0) FROM authors") as cursor:
                row = await cursor.fetchone()
            next_id = int(row[0]) + 1 if row else 1
            rows = []
            known = keys or {}
            for offset, name in enumerate(missing):
                ids[name] = next_id + offset
                hinted = known.get(name)
                if hinted is None:
                    key = author_key(name)
                    hinted = (key.surname, key.given_key)
                rows.append((next_id + offset, name, *hinted))
            await conn.executemany(
                "INSERT INTO authors (id, name, surname_key, given_key) VALUES (?, ?, ?, ?)",
                rows,
            )
        return ids

    # ---- the full-text index ----

    async def _ensure_index(self, conn: Connection) -> None:
        """Rebuild papers_fts inside `conn`'s transaction if another normalizer built it."""
        async with conn.execute("SELECT value FROM meta WHERE key = ?", (_META_KEY,)) as cursor:
            row = await cursor.fetchone()
        if row is not None and row[0] == FTS_NORMALIZER:
            return
        log.info("rebuilding the search index normalizer=%s", FTS_NORMALIZER)
        postgres = self._db.dialect == "postgres"
        if postgres:
            await conn.execute("DELETE FROM papers_fts")
        else:
            await conn.execute("INSERT INTO papers_fts (papers_fts) VALUES ('delete-all')")
        indexed = 0
        async with conn.execute("SELECT rowid, title, abstract, authors_json FROM papers") as cur:
            while batch := list(await cur.fetchmany(2000)):
                await conn.executemany(
                    _PG_FTS_INSERT if postgres else _FTS_INSERT,
                    [_fts_row(r[0], r[1], r[2], _names_text(r[3])) for r in batch],
                )
                indexed += len(batch)
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_META_KEY, FTS_NORMALIZER),
        )
        log.info("rebuilt the search index papers=%d", indexed)

    async def _ensure_index_ready(self) -> None:
        if self._index_checked:
            return
        row = await self._db.fetchone("SELECT value FROM meta WHERE key = ?", (_META_KEY,))
        if row is None or row[0] != FTS_NORMALIZER:
            async with self._db.transaction() as conn:
                await self._ensure_index(conn)
        self._index_checked = True

    # ---- reading ----

    async def get(self, paper_id: str) -> Paper | None:
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM papers p WHERE p.id = ?", (paper_id,)
        )
        return _paper(row) if row else None

    async def get_many(self, ids: Iterable[str]) -> list[Paper]:
        """The stored papers among `ids`, in the order asked, without repeats."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Paper] = {}
        for chunk in _chunks(wanted):
            rows = await self._db.fetchall(
                f"SELECT {_COLUMNS} FROM papers p WHERE p.id IN ({_marks(len(chunk))})", chunk
            )
            found.update((row[1], _paper(row)) for row in rows)
        return [found[i] for i in wanted if i in found]

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM papers")
        return int(row[0]) if row else 0

    async def latest(self, limit: int = 10, category: str | None = None) -> list[Paper]:
        """The most recently published papers, optionally of one class (`cs.LG`) or archive."""
        limit = max(0, limit)
        if not category:
            rows = await self._db.fetchall(
                f"SELECT {_COLUMNS} FROM papers p ORDER BY p.published DESC, p.id LIMIT ?",
                [limit],
            )
        elif await self._recent_share(category, None, None) * 100 < FILTER_WINDOW:
            # A rare (or unknown) category: sort its own papers rather than walk
            # every paper by date looking for it.
            source, params = _category_source(category)
            rows = await self._db.fetchall(
                f"SELECT {_COLUMNS} FROM ({source}) c CROSS JOIN papers p ON p.rowid = c.r "
                "ORDER BY p.published DESC, p.id LIMIT ?",
                [*params, limit],
            )
        else:
            clause, params = _category_clause(category, "p")
            rows = await self._db.fetchall(
                f"SELECT {_COLUMNS} FROM papers p WHERE {clause} "
                "ORDER BY p.published DESC, p.id LIMIT ?",
                [*params, limit],
            )
        return [_paper(row) for row in rows]

    async def _recent_share(
        self, category: str | None, since: datetime | None, until: datetime | None
    ) -> int:
        """How many of the newest `FILTER_WINDOW` papers pass the filters."""
        filters, params = _filters(category, since, until, "p")
        row = await self._db.fetchone(
            "SELECT count(*) FROM papers p "
            f"WHERE p.rowid > (SELECT coalesce(max(rowid), 0) FROM papers) - ?{filters}",
            [FILTER_WINDOW, *params],
        )
        return int(row[0]) if row else 0

    async def _recent_matches(self, words: Sequence[str]) -> int:
        """How many of the newest `FILTER_WINDOW` papers contain all `words`."""
        rows = await self._fts_rows(
            "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ? "
            "AND rowid > (SELECT coalesce(max(rowid), 0) FROM papers) - ?",
            [_match(words), FILTER_WINDOW],
        )
        return int(rows[0][0]) if rows else 0

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
        Searches of rare words are ranked by bm25 among the newest
        `search_candidates` matches (rank < 0, lower is better). Otherwise, among
        the newest `common_candidates` matches, papers whose title has every word
        (rank -1) come before the others (rank 0); see `_plan` for why.
        Equal ranks go newest first.
        """
        tokens = search_tokens(query)
        if not tokens or limit <= 0:
            return []
        await self._ensure_index_ready()
        offset = max(0, offset)
        if self._db.dialect == "postgres":
            return await self._search_pg(tokens, category, since, until, limit, offset)
        plan = await self._plan(tokens)
        if plan.bm25:
            return await self._search_bm25(plan, category, since, until, limit, offset)
        hits = await self._ranked_by_title(plan, category, since, until)
        page = hits[offset : offset + limit]
        papers = await self._by_rowid([rowid for _, rowid in page])
        return [SearchHit(papers[rowid], rank) for rank, rowid in page if rowid in papers]

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
        row = await self._db.fetchone("SELECT coalesce(max(rowid), 0) FROM papers")
        top = int(row[0]) if row else 0
        window = min(DENSITY_WINDOW, top) or 1
        probes = ", ".join(
            "(SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ? AND rowid > ?)"
            for _ in tokens
        )
        rows = await self._fts_rows(
            f"SELECT {probes}", [x for t in tokens for x in (_match((t,)), top - window)]
        )
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
                "SELECT count(*) FROM (SELECT 1 FROM papers_fts WHERE papers_fts MATCH ? LIMIT ?)",
                (_match((token,)), budget + 1),
            )
            budget -= int(rows[0][0]) if rows else 0
            if budget < 0:
                return False
        return True

    def _candidates_sql(
        self,
        words: Sequence[str],
        category: str | None,
        since: datetime | None,
        until: datetime | None,
        extra: str,
        *,
        below: bool = False,
    ) -> tuple[str, list[Any]]:
        """Newest matches of `words` (`hit`, plus the `extra` columns) with the filters.

        Parameters: the returned ones, then (with `below`) the rowid to read
        below, then the LIMIT.
        """
        # The category is tested on the index's rowid: no need to read the paper row.
        filters, params = _filters(category, since, until, "f", "papers_fts")
        dated = since is not None or until is not None
        join = " JOIN papers f ON f.rowid = papers_fts.rowid" if dated else ""
        if below:
            filters += " AND papers_fts.rowid < ?"
        sql = f"""
            SELECT papers_fts.rowid AS hit{extra} FROM papers_fts{join}
            WHERE papers_fts MATCH ?{filters}
            ORDER BY papers_fts.rowid DESC
            LIMIT ?
        """
        return sql, [_match(words), *params]

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
                LIMIT ? OFFSET ?
            )
            SELECT {_COLUMNS}, page.rank FROM page CROSS JOIN papers p ON p.rowid = page.hit
            ORDER BY page.rank, page.published DESC, page.id DESC
            """,
            [*params, self._search_candidates, limit, offset],
        )
        return [SearchHit(_paper(row), float(row[15])) for row in rows]

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
        if filtered and await self._recent_share(category, since, until) * 10 < (
            await self._recent_matches(plan.tokens)
        ):
            sql, params = _filtered_rows_sql(category, since, until)
            return await self._collect(plan, plan.tokens, sql, params, offset_paging=True)
        text = ", p.abstract, p.authors_json" if plan.check else ", NULL, NULL"
        # With words to check, read on page by page below the last rowid seen.
        candidates, params = self._candidates_sql(
            plan.scan, category, since, until, "", below=bool(plan.check)
        )
        sql = f"""
            WITH candidates AS MATERIALIZED ({candidates})
            SELECT c.hit, p.published, p.id, p.title{text}
            FROM candidates c CROSS JOIN papers p ON p.rowid = c.hit
        """
        return await self._collect(plan, plan.check, sql, params, offset_paging=False)

    async def _collect(
        self,
        plan: _Plan,
        check: Sequence[str],
        sql: str,
        params: Sequence[Any],
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
            paging = [chunk, read] if offset_paging else [below, chunk] if check else [chunk]
            rows = await self._fts_rows(sql, [*params, *paging])
            for rowid, published, paper_id, title, abstract, authors_json in rows:
                read += 1
                if check and not _has_words(check, title, abstract, _names_text(authors_json)):
                    continue
                rank = -1.0 if words <= set(keyword_tokens(title)) else 0.0
                found.append((rank, int(rowid), published or "", paper_id))
            if not check or len(rows) < chunk:
                break
            below = int(rows[-1][0])
        found.sort(key=lambda h: (h[2], h[3]), reverse=True)  # newest first...
        found.sort(key=lambda h: h[0])  # ...then, stably, full title matches first
        return [(rank, rowid) for rank, rowid, _, _ in found]

    async def _by_rowid(self, rowids: Sequence[int]) -> dict[int, Paper]:
        if not rowids:
            return {}
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM papers p WHERE p.rowid IN ({_marks(len(rowids))})", rowids
        )
        return {int(row[0]): _paper(row) for row in rows}

    async def _search_pg(
        self,
        tokens: tuple[str, ...],
        category: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> list[SearchHit]:
        """PostgreSQL: the GIN index finds papers with every word; ts_rank orders them.

        The folded words go in as one parameter to plainto_tsquery, which reads
        them as plain terms (ANDed), so no user text is ever query syntax.
        """
        filters, params = _filters(category, since, until, "p")
        rows = await self._db.fetchall(
            f"""
            WITH q AS (SELECT plainto_tsquery('simple', ?) AS q)
            SELECT {_COLUMNS}, ts_rank(f.tsv, q.q, 1) AS rank
            FROM q, papers_fts f JOIN papers p ON p.rowid = f.rowid
            WHERE f.tsv @@ q.q{filters}
            ORDER BY rank DESC, p.published DESC NULLS LAST, p.rowid DESC
            LIMIT ? OFFSET ?
            """,
            [" ".join(tokens), *params, limit, offset],
        )
        # Lower rank is better, as with SQLite's bm25.
        return [SearchHit(_paper(row), -float(row["rank"])) for row in rows]

    async def _fts_rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        try:
            return await self._db.fetchall(sql, params)
        except sqlite3.OperationalError as exc:
            # match_expression only emits quoted words; this is a safety net, not a path.
            if "fts5" not in str(exc):
                raise
            log.warning("search expression rejected error=%s", exc)
            return []

    async def by_author(self, query: str, *, limit: int = 25, offset: int = 0) -> AuthorMatch:
        """Papers of every stored author whose name can be `query`, newest first."""
        authors = await self._matching_authors(query)
        names = tuple(sorted({name for _, name in authors}))
        if not authors or limit <= 0:
            return AuthorMatch(query, names, ())
        # The author's papers drive the join (CROSS JOIN fixes the order); scanning
        # papers by date and probing would read the whole table for a rare name.
        theirs = f"""
            WITH theirs AS MATERIALIZED (
                SELECT DISTINCT pa.paper_rowid AS r FROM paper_authors pa
                WHERE pa.author_id IN ({json_ids(self._db.dialect)})
            )"""
        params = (json.dumps([author_id for author_id, _ in authors]), limit, max(0, offset))
        if self._db.dialect == "sqlite":
            # A prolific name has thousands of papers: sort them on the small
            # (rowid, published, id) index, then read only the page's rows.
            sql = f"""{theirs},
            page AS MATERIALIZED (
                SELECT q.rowid AS r, q.published, q.id
                FROM theirs CROSS JOIN papers q INDEXED BY papers_rowid_published
                    ON q.rowid = theirs.r
                ORDER BY q.published DESC, q.id DESC
                LIMIT ? OFFSET ?
            )
            SELECT {_COLUMNS} FROM page CROSS JOIN papers p ON p.rowid = page.r
            ORDER BY page.published DESC, page.id DESC
            """
        else:
            sql = f"""{theirs}
            SELECT {_COLUMNS} FROM theirs CROSS JOIN papers p ON p.rowid = theirs.r
            ORDER BY p.published DESC, p.id DESC
            LIMIT ? OFFSET ?
            """
        rows = await self._db.fetchall(sql, params)
        return AuthorMatch(query, names, tuple(_paper(row) for row in rows))

    async def _matching_authors(self, query: str) -> list[tuple[int, str]]:
        key = query_key(query)
        if not key.surname:
            return []
        sql = "SELECT a.id, a.name, a.given_key FROM authors a WHERE a.surname_key = ?"
        params: list[Any] = [key.surname]
        if key.given:
            # Compatible given names start with the same letter (or are unknown).
            low, high = _prefix_range(key.given[0][0])
            sql += " AND (a.given_key = '' OR (a.given_key >= ? AND a.given_key < ?))"
            params += [low, high]
        sql += " AND EXISTS (SELECT 1 FROM paper_authors pa WHERE pa.author_id = a.id)"
        rows = await self._db.fetchall(sql, params)
        return [
            (int(row[0]), str(row[1]))
            for row in rows
            if given_compatible(key.given, tuple(str(row[2]).split()))
        ]

    async def author_names(self, prefix: str, limit: int = 25) -> list[str]:
        """Stored spellings for autocomplete: `Leg`, `Shane Le`, `legg s` -> `Shane Legg`, ...

        The last word is read as the start of a surname and the words before it
        as given names; with two words or more, also as `surname given...`.
        """
        tokens = tuple(fold(prefix).split())
        if not tokens or limit <= 0:
            return []
        found: dict[str, None] = {}
        readings = [(tokens[-1], True, tokens[:-1])]
        if len(tokens) > 1:
            readings.append((tokens[0], False, tokens[1:]))
        for surname, is_prefix, given in readings:
            if is_prefix:
                low, high = _prefix_range(surname)
                where, params = "a.surname_key >= ? AND a.surname_key < ?", [low, high]
            else:
                where, params = "a.surname_key = ?", [surname]
            if given:
                first = given[0][0]
                where += " AND (a.given_key = '' OR substr(a.given_key, 1, 1) = ?)"
                params.append(first)
            rows = await self._db.fetchall(
                f"""
                SELECT a.name, a.given_key FROM authors a
                WHERE {where}
                AND EXISTS (SELECT 1 FROM paper_authors pa WHERE pa.author_id = a.id)
                ORDER BY a.surname_key, a.given_key, a.name
                LIMIT ?
                """,
                [*params, _AUTOCOMPLETE_SCAN],
            )
            for row in rows:
                stored = tuple(str(row[1]).split())
                ok = (
                    given_compatible(given, stored) if is_prefix else _typed_given_ok(given, stored)
                )
                if ok:
                    found.setdefault(str(row[0]))
                    if len(found) >= limit:
                        return list(found)
        return list(found)

    async def stats(self) -> StoreStats:
        async def scalar(sql: str) -> int:
            row = await self._db.fetchone(sql)
            return int(row[0]) if row and row[0] is not None else 0

        per_category = {
            str(row[0]): int(row[1])
            for row in await self._db.fetchall(
                "SELECT category, count(*) FROM paper_categories GROUP BY category"
            )
        }
        return StoreStats(
            papers=await scalar("SELECT count(*) FROM papers"),
            authors=await scalar("SELECT count(*) FROM authors"),
            destinations=await scalar("SELECT count(*) FROM destinations"),
            subscriptions=await scalar("SELECT count(*) FROM subscriptions"),
            pending_deliveries=await scalar(
                "SELECT count(*) FROM deliveries WHERE status = 'pending'"
            ),
            sent_deliveries=await scalar("SELECT count(*) FROM deliveries WHERE status = 'sent'"),
            database_bytes=await self._db.database_bytes(),
            per_category=per_category,
        )
