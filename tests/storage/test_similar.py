"""Similar papers over the full-text index, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from storage.papers import PaperRepository
from storage.similar import (
    SqliteSimilar,
    choose_terms,
    paper_words,
    similar_index,
)
from storage.sqlite import open_sqlite
from storage.store import Store
from tests.storage.conftest import PaperFactory, rss_listing_papers

SURFACE = (
    "Surface codes decoded by belief propagation",
    "We decode surface codes with belief propagation on qubits, so the decoder "
    "threshold of surface codes improves for noisy qubits.",
)
SURFACE_TOO = (
    "Belief propagation decoders for surface codes",
    "A decoder for surface codes using belief propagation and ordered statistics on qubits.",
)
QUBITS_ONLY = (
    "Noisy qubits in cavities",
    "We characterise noisy qubits coupled to microwave cavities.",
)
UNRELATED = (
    "Graph neural networks for molecules",
    "Message passing networks predict molecular properties from graphs.",
)


async def _store(db: Store, make_paper: PaperFactory, texts: list[tuple[str, str]]) -> None:
    papers = [make_paper(i + 1, title=t, abstract=a) for i, (t, a) in enumerate(texts)]
    await PaperRepository(db).upsert_many(papers)


async def test_most_alike_first_and_never_itself(db: Store, make_paper: PaperFactory) -> None:
    """The paper sharing the most distinctive words ranks first; the asked paper is left out."""
    await _store(db, make_paper, [SURFACE, UNRELATED, QUBITS_ONLY, SURFACE_TOO])
    hits = await similar_index(db).similar("2411.00001")
    assert hits is not None
    ids = [h.paper_id for h in hits]
    assert ids == ["2411.00004", "2411.00003"]  # the GNN paper shares no word
    assert hits[0].score > hits[1].score


async def test_unknown_and_tiny_catalogues(db: Store, make_paper: PaperFactory) -> None:
    """Unknown ids give None; a catalogue of one paper, or a paper of stop words, gives []."""
    index = similar_index(db)
    assert await index.similar("2411.00001") is None
    await _store(db, make_paper, [SURFACE])
    assert await index.similar("2411.00001") == []
    await PaperRepository(db).upsert_many(
        [make_paper(2, title="On the use of it", abstract=""), make_paper(3, title=SURFACE[0])]
    )
    assert await index.similar("2411.00002") == []
    assert [h.paper_id for h in await index.similar("2411.00003") or []] == ["2411.00001"]


async def test_ties_go_to_the_newest_and_limit_holds(db: Store, make_paper: PaperFactory) -> None:
    """Papers alike to the same degree come newest-stored first; `limit` caps the list."""
    await _store(db, make_paper, [SURFACE, UNRELATED, SURFACE_TOO, SURFACE_TOO, SURFACE_TOO])
    index = similar_index(db)
    hits = await index.similar("2411.00001")
    assert hits is not None
    assert [h.paper_id for h in hits] == ["2411.00005", "2411.00004", "2411.00003"]
    assert len({h.score for h in hits}) == 1
    assert [h.paper_id for h in await index.similar("2411.00001", limit=2) or []] == [
        "2411.00005",
        "2411.00004",
    ]
    assert await index.similar("2411.00001", limit=0) == []


async def test_authors_do_not_make_papers_alike(db: Store, make_paper: PaperFactory) -> None:
    """A word only in another paper's author list (not its title or abstract) finds nothing."""
    await PaperRepository(db).upsert_many(
        [
            make_paper(1, title="Cavity qubits", abstract="Qubits in a cavity."),
            make_paper(
                2,
                title="Graph networks",
                abstract="Message passing.",
                authors=("Cavity Qubits",),
            ),
        ]
    )
    assert await similar_index(db).similar("2411.00001") == []


async def test_real_listing_finds_the_other_ecg_paper(db: Store) -> None:
    """On the real listing, the electrocardiogram paper's closest match is the other ECG paper."""
    await PaperRepository(db).upsert_many(rss_listing_papers())
    hits = await similar_index(db).similar("2411.17702")  # Finding "Good Views" of ECG signals
    assert hits is not None and len(hits) == 10
    assert hits[0].paper_id == "2411.17711"  # AnyECG: foundational models for ECG analysis
    assert len({h.paper_id for h in hits}) == 10 and "2411.17702" not in {h.paper_id for h in hits}


async def test_sqlite_estimated_counts_pick_what_exact_counts_pick(
    tmp_path: Path, make_paper: PaperFactory
) -> None:
    """Above the window, SQLite's estimated-then-exact counts choose the same words and order."""
    db = await open_sqlite(tmp_path / "window.db")
    try:
        filler = [
            make_paper(100 + i, title=f"Common words everywhere {i}", abstract="common words")
            for i in range(300)
        ]
        await PaperRepository(db).upsert_many(filler)
        await _store(db, make_paper, [SURFACE, UNRELATED, QUBITS_ONLY, SURFACE_TOO])
        exact = SqliteSimilar(db, term_cap=100, window=10_000)
        windowed = SqliteSimilar(db, term_cap=100, window=50)
        expected = await exact.similar("2411.00001")
        assert expected and expected[0].paper_id == "2411.00004"
        assert await windowed.similar("2411.00001") == expected
        # "common" and "words" are in 300 papers: over the cap, never in the query.
        assert await windowed.similar("2411.00101") == []
    finally:
        await db.close()


def test_words_skip_stop_words_numbers_and_weigh_the_title() -> None:
    """Title words count twice; stop words, single letters and numbers are not query words."""
    words = paper_words("Surface codes: a study", "We show 2 surface codes in 3D.")
    assert words == {"surface": 3, "codes": 3, "3d": 1}


def test_choose_terms_respects_cap_budget_and_lonely_words() -> None:
    """Words only the paper has, words over the cap, and words past the budget are skipped."""
    tf = {"lonely": 5, "rare": 1, "mid": 2, "huge": 9, "late": 1}
    df = {"lonely": 1, "rare": 3, "mid": 40, "huge": 900, "late": 70}
    chosen = choose_terms(tf, df, 1000, cap=100, budget=50)
    assert [t.word for t in chosen] == ["mid", "rare"]
    assert chosen[0].weight > chosen[1].weight
