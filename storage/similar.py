"""Similar papers: "more like this" over the full-text index, with no model to download.

A paper's query is built from its most distinctive words: each folded word of
its title (counted twice) and abstract gets tf x idf, where tf is how often the
paper uses it and the document frequency comes from the index itself. The
best words, together within a postings budget, go into one OR query ranked by
the engine (SQLite: FTS5's bm25; PostgreSQL: ts_rank, title above abstract),
the paper itself left out, ties broken by the most recently stored first.

Why budgets: an OR query and its ranking read every posting of every word, and
counting a word's papers reads its postings too. Over a million papers a common
word has hundreds of thousands, so words in more than `TERM_CAP` papers never
drive the query (a "more like this" gains little from them anyway), counts stop
at that cap, and on SQLite a cheap first count over the `DF_WINDOW` newest
papers recognises the common words before any full count. Only title and
abstract are used on both sides: sharing an author is not being alike.

`similar_index(db)` gives the engine's implementation of `SimilarIndex`. The shared
reads are SQLAlchemy Core; the full-text queries are each engine's own SQL (`text()`).
"""

from __future__ import annotations

import functools
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Text, TextClause, func, select, text

from bot.domain.names import keyword_tokens
from storage.schema import papers
from storage.store import Connection, Store

log = logging.getLogger(__name__)

QUERY_WORDS = 96  # distinct words of the paper whose frequency is looked up, at most
MAX_TERMS = 16  # words in the OR query, at most
POSTINGS_BUDGET = 4_000  # postings all the query's words may have together
TERM_CAP = 5_000  # a word in more papers than this never drives the query
DF_WINDOW = 4_000  # SQLite: newest papers on which common words are spotted first
EXACT_COUNTS = 3 * MAX_TERMS // 2  # SQLite: words counted exactly, best estimates first
TITLE_WEIGHT = 2  # a title word counts as this many abstract words
MAX_LIMIT = 50

_WORD = re.compile(r"[^\W_]+")
# Function words and the boilerplate of abstracts: they say nothing about the topic,
# and skipping them saves a frequency look-up each.
_STOPWORDS = """a about above after again against all also although am an and any are as at be
    because been before being below between both but by can could did do does doing down
    during each either et etc few for from further had has have having here how however i
    if in into is it its itself just may might more most much must my no nor not now of
    off on once only or other our ours out over own per same shall she should since so
    some such than that the their them then there these they this those through thus to
    too under until up upon us very via was we were what when where whether which while
    who whom why will with within without would yet you your paper papers propose proposed
    show shows study studies present presents result results work approach method methods
    using use used based new novel"""
STOPWORDS = frozenset(_STOPWORDS.split())


@dataclass(frozen=True, slots=True)
class SimilarHit:
    """A stored paper like the asked one; a higher score is more alike (per engine)."""

    paper_id: str
    score: float


@dataclass(frozen=True, slots=True)
class Term:
    word: str
    tf: int
    df: int  # papers with the word in title or abstract, the asked one included
    weight: float  # tf x idf


def paper_words(title: str, abstract: str, limit: int = QUERY_WORDS) -> dict[str, int]:
    """Candidate query words with their weighted counts, most frequent first (title first on ties).

    Stop words, single letters and numbers are left out; at most `limit` words.
    """
    counts: dict[str, int] = {}
    for part, weight in ((title, TITLE_WEIGHT), (abstract, 1)):
        for word in keyword_tokens(part):
            if len(word) < 2 or word.isdigit() or word in STOPWORDS or not _WORD.fullmatch(word):
                continue
            counts[word] = counts.get(word, 0) + weight
    ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: first seen wins ties
    return dict(ranked[:limit])


def idf(df: int, total: int) -> float:
    """bm25's inverse document frequency, never negative."""
    return math.log(1.0 + (total - df + 0.5) / (df + 0.5))


def choose_terms(
    tf: Mapping[str, int],
    df: Mapping[str, int],
    total: int,
    *,
    max_terms: int = MAX_TERMS,
    budget: int = POSTINGS_BUDGET,
    cap: int = TERM_CAP,
) -> list[Term]:
    """The most distinctive words whose postings fit the budget, best first.

    `df` counts the asked paper too: a word no other paper has (df <= 1) finds
    nothing and is skipped, as are words in more than `cap` papers and words
    with no known count.
    """
    terms = [
        Term(word, count, df[word], count * idf(df[word], total))
        for word, count in tf.items()
        if word in df and 1 < df[word] <= cap
    ]
    terms.sort(key=lambda t: (-t.weight, t.df, t.word))
    chosen: list[Term] = []
    spent = 0
    for term in terms:
        if len(chosen) >= max_terms:
            break
        if spent + term.df > budget:
            continue
        chosen.append(term)
        spent += term.df
    return chosen


@dataclass(frozen=True, slots=True)
class _Source:
    rowid: int
    title: str
    abstract: str


class SimilarIndex(ABC):
    """Papers most like a stored one, from the store's full-text index."""

    def __init__(self, db: Store, *, term_cap: int = TERM_CAP, window: int = DF_WINDOW) -> None:
        self._db = db
        self._cap = term_cap
        self._window = window

    async def similar(self, paper_id: str, *, limit: int = 10) -> list[SimilarHit] | None:
        """Up to `limit` stored papers most like stored paper `paper_id`, best first.

        None when the paper is not stored; an empty list when nothing shares a
        distinctive word with it (a tiny catalogue, an empty abstract).
        """
        limit = max(0, min(limit, MAX_LIMIT))
        p = papers.c
        # One connection for the four or five reads: a pool checkout (and its reset on
        # return) per read cost more than the reads themselves on a small catalogue.
        async with self._db.reading() as conn:
            found = await conn.execute(select(p.rowid, p.title, p.abstract).where(p.id == paper_id))
            row = found.first()
            if row is None:
                return None
            source = _Source(int(row.rowid), str(row.title or ""), str(row.abstract or ""))
            terms = await self._query_terms(conn, source)
            if not terms or limit == 0:
                return []
            return await self._ranked(conn, terms, source.rowid, limit)

    async def _query_terms(self, conn: Connection, source: _Source) -> list[Term]:
        """The words the "more like this" query for `source` is made of."""
        tf = paper_words(source.title, source.abstract)
        if not tf:
            return []
        newest = await conn.scalar(select(func.coalesce(func.max(papers.c.rowid), 0)))
        total = max(int(newest or 0), 1)
        df = await self._frequencies(conn, tf, total)
        return choose_terms(tf, df, total, cap=self._cap)

    @abstractmethod
    async def _frequencies(
        self, conn: Connection, tf: Mapping[str, int], total: int
    ) -> dict[str, int]:
        """Papers having each word in title or abstract (PostgreSQL: anywhere), exact up
        to the cap + 1. Words left out are too common, or outranked by better ones.
        """

    @abstractmethod
    async def _ranked(
        self, conn: Connection, terms: Sequence[Term], exclude: int, limit: int
    ) -> list[SimilarHit]:
        """The best `limit` papers having any of `terms`, but not paper `exclude`."""


# ---- SQLite: FTS5 ------------------------------------------------------------------------

_FTS_COLUMNS = "{title abstract}"


def _fts_word(word: str) -> str:
    return f'{_FTS_COLUMNS} : "{word}"'  # words are [^\W_]+: nothing to escape


_SQLITE_RANKED = text(
    """
    SELECT p.id, hits.score FROM (
        SELECT rowid AS hit, bm25(papers_fts, 2.0, 1.0, 0.0) AS score FROM papers_fts
        WHERE papers_fts MATCH :expression AND rowid <> :exclude
        ORDER BY score, rowid DESC
        LIMIT :limit
    ) hits CROSS JOIN papers p ON p.rowid = hits.hit
    ORDER BY hits.score, hits.hit DESC
    """
).columns(id=Text, score=Float)


@functools.cache
def _sqlite_counts(words: int) -> TextClause:
    """One statement counting `words` words, each probe capped (built once per count)."""
    probe = (
        "(SELECT count(*) FROM (SELECT 1 FROM papers_fts "
        "WHERE papers_fts MATCH :w{} AND rowid > :above LIMIT :stop))"
    )
    return text("SELECT " + ", ".join(probe.format(i) for i in range(words)))


class SqliteSimilar(SimilarIndex):
    """FTS5: counts by walking capped posting lists, ranking by bm25 (title above abstract)."""

    async def _frequencies(
        self, conn: Connection, tf: Mapping[str, int], total: int
    ) -> dict[str, int]:
        words = list(tf)
        top, window = total, self._window  # total is the newest rowid
        if top <= window:
            return await self._counts(conn, words, self._cap + 1, above=0)
        # In the newest papers a word of `cap` papers is expected `expected` times;
        # three times that means far too common. Counting stops there, so this is cheap.
        expected = window * self._cap / total
        stop = math.ceil(3 * expected) + 4
        recent = await self._counts(conn, words, stop, above=top - window)
        estimates = {w: max(n, 0.5) * total / window for w, n in recent.items() if n < stop}
        # Exact counts for the words that look best; the rest would not be chosen anyway.
        best = sorted(estimates, key=lambda w: (-tf[w] * idf(round(estimates[w]), total), w))
        return await self._counts(conn, best[:EXACT_COUNTS], self._cap + 1, above=0)

    async def _counts(
        self, conn: Connection, words: Sequence[str], stop: int, *, above: int
    ) -> dict[str, int]:
        """Each word's papers with rowid > `above`, counted up to `stop`."""
        if not words:
            return {}
        params: dict[str, object] = {f"w{i}": _fts_word(w) for i, w in enumerate(words)}
        params.update(above=above, stop=stop)
        row: Sequence[Any] | None = (await conn.execute(_sqlite_counts(len(words)), params)).first()
        return {w: int(n) for w, n in zip(words, row or (), strict=True)}

    async def _ranked(
        self, conn: Connection, terms: Sequence[Term], exclude: int, limit: int
    ) -> list[SimilarHit]:
        expression = _FTS_COLUMNS + " : (" + " OR ".join(f'"{t.word}"' for t in terms) + ")"
        rows = await conn.execute(
            _SQLITE_RANKED, {"expression": expression, "exclude": exclude, "limit": limit}
        )
        # bm25 is lower for better matches: negate so that higher means more alike.
        return [SimilarHit(str(r.id), -float(r.score)) for r in rows]


# ---- PostgreSQL: tsvector -----------------------------------------------------------------


def _ts_word(word: str) -> str:
    return f"'{word}':AC"  # title (A) and abstract (C), not authors (B); no quotes in words


_POSTGRES_RANKED = text(
    """
    WITH q AS (SELECT to_tsquery('simple', :query) AS q),
    scored AS (
        -- Rounded so that equal papers tie exactly, broken by rowid.
        SELECT f.rowid, round(CAST(ts_rank('{0, 0.5, 0, 1}', f.tsv, q.q) AS numeric), 9)
            AS score
        FROM papers_fts f, q
        WHERE f.tsv @@ q.q AND f.rowid <> :exclude
        ORDER BY score DESC, f.rowid DESC
        LIMIT :limit
    )
    SELECT p.id, scored.score FROM scored JOIN papers p ON p.rowid = scored.rowid
    ORDER BY scored.score DESC, scored.rowid DESC
    """
).columns(id=Text, score=Float)


@functools.cache
def _postgres_counts(words: int) -> TextClause:
    """One statement counting `words` words, each probe capped (built once per count)."""
    probe = (
        "(SELECT count(*) FROM (SELECT 1 FROM papers_fts "
        "WHERE tsv @@ CAST(:w{} AS tsquery) LIMIT :stop) AS s)"
    )
    return text("SELECT " + ", ".join(probe.format(i) for i in range(words)))


class PostgresSimilar(SimilarIndex):
    """tsvector + GIN: capped counts per word through the index; ts_rank over the OR query.

    Words are folded `[^\\W_]+` tokens, so quoting them as tsquery lexemes is safe.
    """

    async def _frequencies(
        self, conn: Connection, tf: Mapping[str, int], total: int
    ) -> dict[str, int]:
        # Counted over the whole vector (authors too): GIN keeps no weights, so a
        # weighted query would recheck every row's vector. And through the GIN
        # index: the planner deems a scan of a small table cheap, but testing each
        # row's vector for each word costs five times the index's posting look-ups.
        words = list(tf)
        params: dict[str, object] = {f"w{i}": f"'{w}'" for i, w in enumerate(words)}
        params["stop"] = self._cap + 1
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        try:
            found = await conn.execute(_postgres_counts(len(words)), params)
            row: Sequence[Any] | None = found.first()
        finally:
            # Ends the (read-only) transaction and the setting with it: the ranking
            # query that follows on this connection is planned as usual.
            await conn.rollback()
        return {w: int(n) for w, n in zip(words, row or (), strict=True)}

    async def _ranked(
        self, conn: Connection, terms: Sequence[Term], exclude: int, limit: int
    ) -> list[SimilarHit]:
        # ts_rank knows nothing of the collection; the words were chosen by idf already.
        # (Weighting each shared word's rank by its idf ranked one in a hundred top-5
        # papers better on the real listing, at twice the time.)
        query = " | ".join(_ts_word(t.word) for t in terms)
        rows = await conn.execute(
            _POSTGRES_RANKED, {"query": query, "exclude": exclude, "limit": limit}
        )
        return [SimilarHit(str(r.id), float(r.score)) for r in rows]


def similar_index(db: Store, *, term_cap: int = TERM_CAP, window: int = DF_WINDOW) -> SimilarIndex:
    """The implementation for `db`'s engine, chosen once."""
    kind = PostgresSimilar if db.is_postgres else SqliteSimilar
    return kind(db, term_cap=term_cap, window=window)
