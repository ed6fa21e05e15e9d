"""Tests for storage.papers: idempotent batch upserts, merging, search and author look-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.domain.models import AnnounceType, Paper
from bot.domain.names import names_ambiguous
from storage.paper_rows import recent_share
from storage.papers import PaperRepository, _first_seen
from storage.search import FTS_NORMALIZER, MAX_SEARCH_TERMS, SqliteSearch, match_expression
from storage.sqlite import open_sqlite
from storage.store import Store
from tests.storage.conftest import T0, PaperFactory, build_paper, rss_listing_papers

# ---- upsert_many ------------------------------------------------------------------------


async def test_new_papers_are_reported_as_stored(db: Store, make_paper: PaperFactory) -> None:
    """Papers never seen are new, carry first_seen=now, and read back exactly as reported."""
    repo = PaperRepository(db)
    result = await repo.upsert_many([make_paper(1), make_paper(2)], now=T0)
    assert [p.id for p in result.new] == ["2411.00001", "2411.00002"]
    assert (result.updated, result.unchanged) == (0, 0)
    assert all(p.first_seen == T0 for p in result.new)
    assert await repo.get_many(["2411.00002", "2411.00001"]) == [result.new[1], result.new[0]]
    assert await repo.count() == 2


async def test_the_sqlite_writer_compiles_each_statement_once(tmp_path: Path) -> None:
    """The driver path keeps compiled statements: the same inserts again, with new
    authors and categories, add none (a bot ingests a batch every poll, for months)."""
    db = await open_sqlite(tmp_path / "store.db")
    try:
        repo = PaperRepository(db)
        await repo.upsert_many([build_paper(1)])
        compiled = repo._batches._compiled  # type: ignore[attr-defined]
        kept = len(compiled)
        for n in range(2, 6):
            paper = build_paper(n, authors=(f"Author {n}",), categories=(f"cs.X{n}",))
            await repo.upsert_many([paper])
        assert len(compiled) == kept > 0
    finally:
        await db.close()


def test_first_seen_copy_keeps_every_other_field() -> None:
    """The hand-written copy is `replace(first_seen=...)`; a new Paper field fails here."""
    full = build_paper(
        7, updated=T0, comment="c", journal_ref="j", doi="d", first_seen=T0 - timedelta(days=3)
    )
    assert all(getattr(full, f.name) not in (None, "", ()) for f in fields(Paper))
    assert _first_seen(full, T0) == replace(full, first_seen=T0)


async def test_reingesting_a_batch_changes_nothing(db: Store, make_paper: PaperFactory) -> None:
    """The same batch twice: nothing new, nothing updated, first_seen kept."""
    repo = PaperRepository(db)
    batch = [make_paper(n) for n in range(1, 6)]
    first = await repo.upsert_many(batch, now=T0)
    again = await repo.upsert_many(batch, now=T0 + timedelta(days=1))
    assert (len(again.new), again.updated, again.unchanged) == (0, 0, 5)
    assert await repo.get_many([p.id for p in batch]) == list(first.new)


async def test_replacement_updates_without_being_new(db: Store, make_paper: PaperFactory) -> None:
    """v2 of a stored paper updates version and metadata but is not new."""
    repo = PaperRepository(db)
    await repo.upsert_many([make_paper(1)], now=T0)
    v2 = make_paper(1, version=2, title="Better title", announce_type=AnnounceType.REPLACE)
    result = await repo.upsert_many([v2], now=T0 + timedelta(days=30))
    assert (result.new, result.updated, result.unchanged) == ((), 1, 0)
    stored = await repo.get("2411.00001")
    assert stored is not None
    assert (stored.version, stored.title, stored.first_seen) == (2, "Better title", T0)
    assert stored.announce_type is AnnounceType.REPLACE


async def test_version_never_goes_down(db: Store, make_paper: PaperFactory) -> None:
    """A stale v1 after v3 keeps v3's data and only fills values v3 lacked."""
    repo = PaperRepository(db)
    await repo.upsert_many([make_paper(1, version=3, title="Third", doi=None)], now=T0)
    stale = make_paper(1, version=1, title="First", doi="10.1/x")
    result = await repo.upsert_many([stale], now=T0)
    stored = await repo.get("2411.00001")
    assert stored is not None
    assert (stored.version, stored.title, stored.doi) == (3, "Third", "10.1/x")
    assert result.updated == 1


async def test_missing_values_do_not_erase_known_ones(db: Store, make_paper: PaperFactory) -> None:
    """An RSS copy without comment/journal ref/DOI keeps what the API had stored."""
    repo = PaperRepository(db)
    api = make_paper(1, comment="12 pages", journal_ref="JMLR 1", doi="10.1/y")
    await repo.upsert_many([api], now=T0)
    rss = make_paper(1, comment=None, journal_ref=None, doi=None, abstract="")
    result = await repo.upsert_many([rss], now=T0)
    assert result.unchanged == 1
    stored = await repo.get("2411.00001")
    assert stored is not None
    assert (stored.comment, stored.journal_ref, stored.doi) == ("12 pages", "JMLR 1", "10.1/y")
    assert stored.abstract == api.abstract


async def test_published_keeps_the_earliest_date(db: Store, make_paper: PaperFactory) -> None:
    """The API's v1 date survives later announcement dates, and replaces a later one."""
    repo = PaperRepository(db)
    announced = T0
    v1_date = T0 - timedelta(days=3)
    await repo.upsert_many([make_paper(1, published=announced)], now=T0)
    await repo.upsert_many([make_paper(1, version=2, published=v1_date)], now=T0)
    await repo.upsert_many([make_paper(1, version=3, published=T0 + timedelta(days=9))], now=T0)
    stored = await repo.get("2411.00001")
    assert stored is not None
    assert (stored.version, stored.published) == (3, v1_date)


async def test_cross_list_of_stored_paper_is_not_new(db: Store, make_paper: PaperFactory) -> None:
    """The same paper seen again in another category's listing is not new, and stays "new"."""
    repo = PaperRepository(db)
    await repo.upsert_many([make_paper(1)], now=T0)
    cross = make_paper(1, announce_type=AnnounceType.CROSS)
    result = await repo.upsert_many([cross], now=T0)
    assert (result.new, result.updated, result.unchanged) == ((), 0, 1)
    stored = await repo.get("2411.00001")
    assert stored is not None and stored.announce_type is AnnounceType.NEW


async def test_duplicates_within_a_batch_are_one_paper(db: Store, make_paper: PaperFactory) -> None:
    """Two listings in one batch naming one paper store it once, merged."""
    repo = PaperRepository(db)
    batch = [make_paper(1, comment="c"), make_paper(1, version=2, announce_type=None)]
    result = await repo.upsert_many(batch, now=T0)
    assert len(result.new) == 1
    assert (result.new[0].version, result.new[0].comment) == (2, "c")
    assert result.new[0].announce_type is AnnounceType.NEW
    assert await repo.count() == 1


async def test_a_failing_batch_stores_nothing(db: Store, make_paper: PaperFactory) -> None:
    """One bad paper rolls back the whole batch."""
    repo = PaperRepository(db)
    bad = replace(make_paper(3), title=None)  # NOT NULL violation
    with pytest.raises(Exception, match=r"(?i)not.null"):
        await repo.upsert_many([make_paper(1), make_paper(2), bad], now=T0)
    assert await repo.count() == 0
    assert (await repo.stats()).authors == 0
    assert await repo.search("paper") == []


async def test_categories_are_stored_primary_first(db: Store, make_paper: PaperFactory) -> None:
    """Categories read back primary first, without repeats, whatever order they came in."""
    repo = PaperRepository(db)
    odd = make_paper(1, primary_category="cs.AI", categories=("cs.LG", "cs.AI", "cs.LG"))
    result = await repo.upsert_many([odd], now=T0)
    assert result.new[0].categories == ("cs.AI", "cs.LG")
    assert await repo.get("2411.00001") == result.new[0]


async def test_timestamps_are_stored_as_utc(db: Store, make_paper: PaperFactory) -> None:
    """A published date in another zone reads back as the same instant in UTC."""
    repo = PaperRepository(db)
    eastern = T0.astimezone(timezone(timedelta(hours=-5)))
    await repo.upsert_many([make_paper(1, published=eastern)], now=T0)
    stored = await repo.get("2411.00001")
    assert stored is not None and stored.published == T0
    assert stored.published.utcoffset() == timedelta(0)


async def test_changed_author_list_is_relinked(db: Store, make_paper: PaperFactory) -> None:
    """A replacement's new author list replaces the old one for author look-ups."""
    repo = PaperRepository(db)
    await repo.upsert_many([make_paper(1, authors=("Shane Legg", "Marcus Hutter"))], now=T0)
    v2 = make_paper(1, version=2, authors=("Marcus Hutter", "Laurent Orseau"))
    await repo.upsert_many([v2], now=T0)
    assert (await repo.by_author("Shane Legg")).papers == ()
    assert [p.id for p in (await repo.by_author("Laurent Orseau")).papers] == ["2411.00001"]
    assert [p.id for p in (await repo.by_author("Hutter")).papers] == ["2411.00001"]


async def test_changed_text_is_reindexed(db: Store, make_paper: PaperFactory) -> None:
    """After a replacement the old title's words no longer find the paper; the new ones do."""
    repo = PaperRepository(db)
    await repo.upsert_many([make_paper(1, title="Grokking modular arithmetic")], now=T0)
    await repo.upsert_many([make_paper(1, version=2, title="Sparse autoencoders")], now=T0)
    assert await repo.search("grokking") == []
    assert [h.paper.id for h in await repo.search("autoencoders")] == ["2411.00001"]


# ---- the real RSS listing ---------------------------------------------------------------


async def test_real_listing_is_stored_whole_and_idempotently(db: Store) -> None:
    """All 1,504 items of the real all-archives listing are new once, then unchanged."""
    papers = rss_listing_papers()
    repo = PaperRepository(db)
    first = await repo.upsert_many(papers, now=T0)
    assert len(first.new) == len({p.id for p in papers}) == 1_504
    again = await repo.upsert_many(papers, now=T0)
    assert (len(again.new), again.updated, again.unchanged) == (0, 0, 1_504)
    stats = await repo.stats()
    assert stats.papers == 1_504
    assert stats.per_category["cs.LG"] == sum("cs.LG" in p.categories for p in papers)
    assert stats.authors == len({a for p in papers for a in p.authors})
    assert stats.database_bytes > 0
    sample = papers[700]
    assert await repo.get(sample.id) == replace(sample, first_seen=T0)


async def test_real_listing_search_folds_tex_accents(db: Store) -> None:
    """`Schr\\"odinger` in real RSS titles is found by "Schrödinger" and by "schrodinger"."""
    papers = rss_listing_papers()
    repo = PaperRepository(db)
    await repo.upsert_many(papers, now=T0)
    tex_titled = {p.id for p in papers if 'Schr\\"odinger' in p.title}
    assert tex_titled
    for query in ("Schrödinger", "schrodinger", 'Schr\\"odinger'):
        found = {h.paper.id for h in await repo.search(query, limit=50)}
        assert tex_titled <= found, query


async def test_real_listing_author_lookup(db: Store) -> None:
    """A TeX-accented name of the real listing is found by its ASCII spelling and in comma form."""
    papers = rss_listing_papers()
    repo = PaperRepository(db)
    await repo.upsert_many(papers, now=T0)
    expected = {p.id for p in papers if any("Olbratowski" in a for a in p.authors)}
    assert expected
    for query in ("Przemyslaw Olbratowski", "Olbratowski, P.", "olbratowski p"):
        match = await repo.by_author(query)
        assert {p.id for p in match.papers} == expected, query
        assert match.matched_names == ("Przemysław Olbratowski",)


# ---- search -----------------------------------------------------------------------------


@pytest.fixture
async def corpus(db: Store) -> PaperRepository:
    repo = PaperRepository(db)
    day = timedelta(days=1)
    quant = {"primary_category": "quant-ph", "categories": ("quant-ph",)}
    await repo.upsert_many(
        [
            build_paper(
                1, title="Quantum error correction", abstract="Codes for qubits.",
                published=T0 - 9 * day, **quant,
            ),
            build_paper(
                2, title="Learning to rank", abstract="Quantum methods are absent here.",
                published=T0 - 5 * day,
            ),
            build_paper(
                3, title="Quantum machine learning", abstract="Learning with qubits.",
                published=T0 - 1 * day, **{**quant, "categories": ("quant-ph", "cs.LG")},
            ),
            build_paper(
                4, title='Title: NOT a (quantum) OR classical "trick"',
                abstract="near-term devices", published=T0 - 2 * day,
            ),
            build_paper(
                5, title='Schr\\"odinger bridges', abstract="Diffusion models.",
                published=T0 - 3 * day,
            ),
        ],
        now=T0,
    )  # fmt: skip
    return repo


async def ids(repo: PaperRepository, query: str, **kwargs: object) -> list[str]:
    return [h.paper.id[-1] for h in await repo.search(query, **kwargs)]  # type: ignore[arg-type]


async def test_search_requires_every_word(corpus: PaperRepository) -> None:
    """All words must occur; title, abstract and author names are searched."""
    assert sorted(await ids(corpus, "quantum qubits")) == ["1", "3"]
    assert sorted(await ids(corpus, "Turing quantum")) == ["1", "2", "3", "4"]
    assert await ids(corpus, "quantum nonexistentword") == []


async def test_title_matches_rank_above_abstract_matches(corpus: PaperRepository) -> None:
    """With bm25, a word in the title outranks the same word only in the abstract."""
    found = await ids(corpus, "quantum")
    assert set(found) == {"1", "2", "3", "4"}
    assert found.index("2") == 3  # only paper 2 lacks "quantum" in its title


@pytest.mark.parametrize("any_db", ["sqlite"], indirect=True)  # SQLite FTS5 search plan
async def test_cheap_ranking_puts_titles_first_then_recency(db: Store) -> None:
    """Without bm25 (common words), papers whose title has every word come first, then newest."""
    repo = PaperRepository(db, bm25_budget=0)
    day = timedelta(days=1)
    await repo.upsert_many(
        [
            build_paper(1, title="Graph networks", abstract="neural", published=T0 - 3 * day),
            build_paper(2, title="Neural graph networks", abstract="x", published=T0 - 9 * day),
            build_paper(3, title="Neural fields", abstract="graph", published=T0 - 1 * day),
            build_paper(4, title="Other", abstract="graph neural", published=T0),
            build_paper(5, title="Neural graph", abstract="x", published=T0 - 1 * day),
        ],
        now=T0,
    )
    hits = await repo.search("neural graph")
    assert [h.paper.id[-1] for h in hits] == ["5", "2", "4", "3", "1"]
    assert [h.rank for h in hits] == [-1.0, -1.0, 0.0, 0.0, 0.0]
    assert [h.paper.id[-1] for h in await repo.search("neural graph", limit=2, offset=1)] == [
        "2", "4",
    ]  # fmt: skip


@pytest.mark.parametrize("any_db", ["sqlite"], indirect=True)  # SQLite FTS5 search plan
async def test_very_common_words_are_checked_on_the_candidates(db: Store) -> None:
    """A word in most papers next to rare ones: hits still contain every word, newest first."""
    repo = PaperRepository(db, bm25_budget=0)
    papers = [build_paper(n, title=f"Common {n}", abstract="words") for n in range(1, 21)]
    papers[2] = build_paper(3, title="Common rare gem", abstract="words")
    papers[5] = build_paper(6, title="Rare gem only", abstract="nothing")
    await repo.upsert_many(papers, now=T0)
    search = repo._search
    assert isinstance(search, SqliteSearch)
    plan = await search._plan(("common", "rare", "gem"))  # the path under test
    assert (plan.bm25, plan.scan, plan.check) == (False, ("rare", "gem"), ("common",))

    async def numbers(query: str, **kwargs: object) -> list[int]:
        hits = await repo.search(query, **kwargs)  # type: ignore[arg-type]
        return [int(h.paper.id.split(".")[1]) for h in hits]

    assert await numbers("common rare gem") == [3]
    assert await numbers("gem rare common words") == [3]
    assert len(await repo.search("common rare gem", limit=100)) == 1
    assert await numbers("common rare") == [3]
    assert await numbers("common", category="cs.LG", limit=3) == [20, 19, 18]
    assert len(await repo.search("common words", limit=100)) == 19
    assert await numbers("nothing common") == []


async def test_equal_ranks_are_ordered_newest_first(db: Store) -> None:
    """Identical papers differ only by date: the newest comes first."""
    repo = PaperRepository(db)
    same = {"title": "Identical", "abstract": "Same words."}
    await repo.upsert_many(
        [build_paper(n, published=T0 - timedelta(days=n), **same) for n in (3, 1, 2)], now=T0
    )
    assert await ids(repo, "identical") == ["1", "2", "3"]


async def test_search_filters(corpus: PaperRepository) -> None:
    """category (class or archive), since (inclusive) and until (exclusive) narrow the hits."""
    assert sorted(await ids(corpus, "quantum", category="quant-ph")) == ["1", "3"]
    assert sorted(await ids(corpus, "quantum", category="cs.LG")) == ["2", "3", "4"]
    assert sorted(await ids(corpus, "quantum", category="cs")) == ["2", "3", "4"]
    assert sorted(await ids(corpus, "quantum", category="c")) == []
    since = T0 - timedelta(days=2)
    assert sorted(await ids(corpus, "quantum", since=since)) == ["3", "4"]
    assert sorted(await ids(corpus, "quantum", until=since)) == ["1", "2"]


@pytest.mark.parametrize("any_db", ["sqlite"], indirect=True)  # SQLite FTS5 search plan
async def test_rare_filters_drive_the_scan(db: Store) -> None:
    """A filter passing few papers (rare class, old dates) still finds every hit, newest first."""
    repo = PaperRepository(db, bm25_budget=0)  # common words: ranked by title, then recency
    day = timedelta(days=1)
    papers = [build_paper(n, title=f"Common {n}", published=T0 - n * day) for n in range(1, 41)]
    math = {"primary_category": "math.AP", "categories": ("math.AP", "math.CA")}
    papers[4] = build_paper(5, title="Common math", published=T0 - 5 * day, **math)
    papers[16] = build_paper(17, abstract="common", published=T0 - 17 * day, **math)
    await repo.upsert_many(papers, now=T0)
    search = repo._search
    assert isinstance(search, SqliteSearch)
    assert await recent_share(db, "math.AP", None, None) * 10 < await search._recent_matches(
        ("common",)
    )  # the filter-driven path is the one under test

    async def numbers(**kwargs: object) -> list[int]:
        hits = await repo.search("common", **kwargs)  # type: ignore[arg-type]
        return [int(h.paper.id.split(".")[1]) for h in hits]

    assert await numbers(category="math.AP") == [5, 17]
    assert await numbers(category="math") == [5, 17]
    assert await numbers(category="math.CA", limit=1, offset=1) == [17]
    assert await numbers(category="hep-th") == []
    assert await numbers(since=T0 + day) == []
    assert await numbers(until=T0 - 16 * day, limit=3) == [18, 19, 20]  # title matches first
    assert (await numbers(until=T0 - 16 * day, limit=100))[-1] == 17
    assert len(await numbers(until=T0 - 16 * day, limit=100)) == 24
    assert await numbers(category="math.AP", until=T0 - 6 * day) == [17]
    assert len(await numbers(category="math", limit=100)) == 2


async def test_latest_reads_dense_and_rare_categories(db: Store) -> None:
    """latest finds a category's newest papers whether it is most of the store or a sliver."""
    repo = PaperRepository(db)
    day = timedelta(days=1)
    papers = [build_paper(n, published=T0 - n * day) for n in range(1, 9)]
    papers[3] = build_paper(4, primary_category="hep-th", categories=("hep-th",),
                            published=T0 - 4 * day)  # fmt: skip
    await repo.upsert_many(papers, now=T0)
    assert [p.id[-1] for p in await repo.latest(3, category="cs.LG")] == ["1", "2", "3"]
    assert [p.id[-1] for p in await repo.latest(3, category="stat")] == ["1", "2", "3"]
    assert [p.id[-1] for p in await repo.latest(3, category="hep-th")] == ["4"]
    assert await repo.latest(3, category="astro-ph") == []
    assert await repo.latest(0) == []


async def test_search_pagination(corpus: PaperRepository) -> None:
    """limit/offset page through the ranked hits, filtered by category."""
    everything = await ids(corpus, "quantum", limit=10)
    pages = [await ids(corpus, "quantum", limit=2, offset=o) for o in (0, 2, 4)]
    assert pages == [everything[:2], everything[2:4], []]
    assert len(everything) == 4
    assert len(await corpus.search("quantum", category="quant-ph")) == 2
    assert await corpus.search("   ") == []
    assert await ids(corpus, "quantum", limit=0) == []


@pytest.mark.parametrize("any_db", ["sqlite"], indirect=True)  # SQLite FTS5 search plan
async def test_search_candidates_bound_the_hits(db: Store, make_paper: PaperFactory) -> None:
    """Only the newest `search_candidates` matches are ranked."""
    repo = PaperRepository(db, search_candidates=3)
    await repo.upsert_many([make_paper(n) for n in range(1, 8)], now=T0)
    assert len(await repo.search("paper", limit=10)) == 3
    assert {h.paper.id[-1] for h in await repo.search("paper")} == {"5", "6", "7"}


async def test_search_finds_tex_and_unicode_spellings(corpus: PaperRepository) -> None:
    """A TeX-accented title is found with the accent typed, without it, or in TeX."""
    for query in ("Schrödinger", "SCHRODINGER bridges", 'Schr\\"odinger'):
        assert await ids(corpus, query) == ["5"], query


SYNTAX = [
    'quantum "trick',
    '"quantum" OR "classical"',
    "NOT quantum",
    "quantum AND OR NOT NEAR",
    "NEAR(quantum classical, 2)",
    "quant*",
    "-quantum",
    "title:quantum",
    "{title}: quantum",
    "quantum)(",
    "^quantum",
    "quantum + classical",
    "'; DROP TABLE papers; --",
    "\\",
    "\x00quantum",
    "",
    "   ",
    "*",
    '"',
    "()",
    "quantum " * 2_000,
    "x" * 5_000,
    "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 100,
]


@pytest.mark.parametrize("query", SYNTAX)
async def test_search_syntax_is_plain_words(corpus: PaperRepository, query: str) -> None:
    """FTS5 operators, quotes, columns and huge inputs are only words; nothing raises."""
    await corpus.search(query)
    expression = match_expression(query)
    if expression is not None:
        assert expression.count('"') == 2 * (expression.count(" AND ") + 1)
        assert expression.count(" AND ") < MAX_SEARCH_TERMS


async def test_operators_are_searched_as_words(corpus: PaperRepository) -> None:
    """`OR`/`NOT`/`title:` do what words do: paper 4 has all of them in its title."""
    assert await ids(corpus, "quantum OR classical") == ["4"]
    assert await ids(corpus, "NOT quantum") == ["4"]
    assert await ids(corpus, "title: trick") == ["4"]
    assert await ids(corpus, "near-term") == ["4"]


@pytest.fixture
def loop_repo(tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, PaperRepository]]:
    """A repository with a few papers on a private event loop, for hypothesis tests."""
    loop = asyncio.new_event_loop()
    db = loop.run_until_complete(open_sqlite(tmp_path / "hypothesis.sqlite3"))
    repo = PaperRepository(db)
    papers = [build_paper(n, title=f"Quantum {n} learning") for n in range(1, 20)]
    loop.run_until_complete(repo.upsert_many(papers, now=T0))
    yield loop, repo
    loop.run_until_complete(db.close())
    loop.close()


def test_search_never_raises_on_arbitrary_text(
    loop_repo: tuple[asyncio.AbstractEventLoop, PaperRepository],
) -> None:
    """Any text (hypothesis) is a valid search and author query."""
    loop, repo = loop_repo

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.text(max_size=200) | st.text(alphabet='"*():-^+ ANDORNOTEAquantum{}', max_size=60))
    def check(text: str) -> None:
        loop.run_until_complete(repo.search(text))
        loop.run_until_complete(repo.by_author(text))
        loop.run_until_complete(repo.author_names(text))

    check()


@pytest.mark.parametrize("any_db", ["sqlite"], indirect=True)  # SQLite FTS5 search plan
async def test_search_index_is_rebuilt_for_a_new_normalizer(
    db: Store, make_paper: PaperFactory
) -> None:
    """An index built by another normalizer (meta says so) is rebuilt before it is used."""
    repo = PaperRepository(db)
    await repo.upsert_many([make_paper(1, title="Grokking")], now=T0)
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO papers_fts (papers_fts) VALUES ('delete-all')"))
        await conn.execute(
            text("UPDATE meta SET value = 'old' WHERE key = 'papers_fts_normalizer'")
        )
    fresh = PaperRepository(db)
    assert [h.paper.id for h in await fresh.search("grokking")] == ["2411.00001"]
    row = await db.fetchone(text("SELECT value FROM meta WHERE key = 'papers_fts_normalizer'"))
    assert row is not None and row[0] == FTS_NORMALIZER


# ---- authors ----------------------------------------------------------------------------

SPELLINGS = {
    1: ("Grégoire Delétang", "Jordi Grau-Moya"),
    2: ("Gregoire Deletang", "Pedro A. Ortega"),
    3: ("Grégoire Déletang", "Pedro Ortega", "Shane Legg"),
    4: ("P. A. Ortega", "Jordi Grau Moya"),
    5: ("Pedro Domingos",),
    6: ("Sarah Legg", "Shane Lee"),
    7: ("Del\\'etang, Gr\\'egoire",),
}


@pytest.fixture
async def authors(db: Store) -> PaperRepository:
    repo = PaperRepository(db)
    await repo.upsert_many(
        [
            build_paper(n, authors=names, published=T0 - timedelta(days=10 - n))
            for n, names in SPELLINGS.items()
        ],
        now=T0,
    )
    return repo


async def author_papers(repo: PaperRepository, query: str) -> list[str]:
    return [p.id[-1] for p in (await repo.by_author(query)).papers]


@pytest.mark.parametrize(
    ("query", "papers"),
    [
        ("Grégoire Delétang", ["7", "3", "2", "1"]),
        ("Gregoire Deletang", ["7", "3", "2", "1"]),
        ("Delétang, Grégoire", ["7", "3", "2", "1"]),
        ("Del\\'etang", ["7", "3", "2", "1"]),
        ("Pedro A. Ortega", ["4", "3", "2"]),
        ("P. A. Ortega", ["4", "3", "2"]),
        ("Pedro Ortega", ["4", "3", "2"]),
        ("Pedro A Ortega", ["4", "3", "2"]),
        ("Shane Legg", ["3"]),
        ("legg s", ["6", "3"]),
        ("Legg, Shane", ["3"]),
        ("Jordi Grau-Moya", ["4", "1"]),
        ("Jordi Grau Moya", ["4", "1"]),
        ("Grau-Moya", ["4", "1"]),
        ("Pedro Domingos", ["5"]),
        ("Shane Lee", ["6"]),
        ("Nobody Atall", []),
        ("", []),
        ("(affiliation only)", []),
    ],
)
async def test_by_author_finds_every_spelling(
    authors: PaperRepository, query: str, papers: list[str]
) -> None:
    """Spelling variants find one person's papers, newest first; other people are left out."""
    assert await author_papers(authors, query) == papers


async def test_by_author_reports_the_matched_spellings(authors: PaperRepository) -> None:
    """matched_names lists the distinct stored spellings, sorted; homonyms are ambiguous."""
    ortega = await authors.by_author("Pedro Ortega")
    assert ortega.matched_names == ("P. A. Ortega", "Pedro A. Ortega", "Pedro Ortega")
    assert not names_ambiguous(ortega.matched_names)
    deletang = await authors.by_author("Deletang")
    assert len(deletang.matched_names) == 4
    assert not names_ambiguous(deletang.matched_names)
    legg = await authors.by_author("S. Legg")
    assert legg.matched_names == ("Sarah Legg", "Shane Legg")
    assert legg.ambiguous and names_ambiguous(legg.matched_names)
    exact = await authors.by_author("Shane Legg")
    assert exact.matched_names == ("Shane Legg",) and not exact.ambiguous


async def test_by_author_pages(db: Store, make_paper: PaperFactory) -> None:
    """limit/offset page through an author's papers newest first."""
    repo = PaperRepository(db)
    await repo.upsert_many(
        [make_paper(n, published=T0 - timedelta(days=n)) for n in range(1, 8)], now=T0
    )
    first = await repo.by_author("Ada Lovelace", limit=3)
    second = await repo.by_author("Ada Lovelace", limit=3, offset=3)
    assert [p.id[-1] for p in first.papers + second.papers] == list("123456")
    assert (await repo.by_author("Ada Lovelace", limit=0)).papers == ()


async def test_author_names_autocomplete(authors: PaperRepository) -> None:
    """Surname prefixes, given-name-first and surname-first prefixes suggest stored spellings."""
    assert await authors.author_names("Leg") == ["Sarah Legg", "Shane Legg"]
    assert await authors.author_names("shane l") == ["Shane Lee", "Shane Legg"]
    assert await authors.author_names("legg sh") == ["Shane Legg"]
    ortegas = ["P. A. Ortega", "Pedro Ortega", "Pedro A. Ortega"]  # by given key: "p a", "pedro"...
    assert await authors.author_names("Ortega") == ortegas
    assert await authors.author_names("Ortega", limit=1) == ["P. A. Ortega"]
    assert await authors.author_names("") == []
    assert await authors.author_names("zz") == []


async def test_latest_by_category(corpus: PaperRepository) -> None:
    """latest lists newest first, optionally one class or archive."""
    assert [p.id[-1] for p in await corpus.latest(3)] == ["3", "4", "5"]
    assert [p.id[-1] for p in await corpus.latest(10, category="quant-ph")] == ["3", "1"]
    assert [p.id[-1] for p in await corpus.latest(10, category="quant")] == []


async def test_get_unknown_paper(db: Store) -> None:
    """Unknown ids read as None / are skipped."""
    repo = PaperRepository(db)
    assert await repo.get("2411.99999") is None
    assert await repo.get_many(["2411.99999"]) == []


async def test_stats_of_empty_store(db: Store) -> None:
    """An empty store has zero counts and a positive size."""
    stats = await PaperRepository(db).stats()
    assert (stats.papers, stats.authors, stats.pending_deliveries, stats.per_category) == (
        0, 0, 0, {},
    )  # fmt: skip
    assert stats.database_bytes > 0


def test_paper_factory_is_valid() -> None:
    """The factory builds the paper the tests assume (guards against silent drift)."""
    paper: Paper = build_paper(7)
    assert (paper.id, paper.primary_category) == ("2411.00007", "cs.LG")
    assert paper.categories[0] == paper.primary_category
