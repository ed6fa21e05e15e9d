"""BibTeX citations in arXiv's style, checked by parsing them with bibtexparser."""

from __future__ import annotations

from datetime import UTC, datetime

import bibtexparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.cite import citation_key, cite, paper_year
from bot.domain.models import Paper


def paper(**changes: object) -> Paper:
    fields: dict[str, object] = {
        "id": "2307.15771",
        "version": 2,
        "title": "Hydra Effect: Emergent Self-repair in Language Model Computations",
        "abstract": "...",
        "authors": (
            "Tom McGrath",
            "Matthew Rahtz",
            "János Kramár",
            "Vladimir Mikulik",
            "Shane Legg",
        ),
        "primary_category": "cs.LG",
        "categories": ("cs.LG", "cs.AI"),
        "published": datetime(2023, 7, 28, tzinfo=UTC),
    }
    fields.update(changes)
    return Paper(**fields)  # type: ignore[arg-type]


def parse(text: str) -> dict[str, str]:
    database = bibtexparser.loads(text)
    assert len(database.entries) == 1, text
    entry: dict[str, str] = database.entries[0]
    return entry


def test_misc_entry_in_arxivs_style() -> None:
    """A preprint is `@misc` with eprint, archivePrefix, primaryClass, url; authors and-joined."""
    citation = cite(paper())
    entry = parse(citation.bibtex)
    assert entry["ENTRYTYPE"] == "misc"
    assert entry["ID"] == citation.key == "mcgrath2023hydra"
    assert entry["title"] == "Hydra Effect: Emergent Self-repair in Language Model Computations"
    assert entry["author"].split(" and ") == list(paper().authors)
    assert entry["year"] == "2023"
    assert entry["eprint"] == "2307.15771"
    assert entry["archiveprefix"] == "arXiv"
    assert entry["primaryclass"] == "cs.LG"
    assert entry["url"] == "https://arxiv.org/abs/2307.15771"
    assert "doi" not in entry and "journal" not in entry


def test_published_paper_is_an_article_with_journal_and_doi() -> None:
    """With a DOI and a journal reference the entry becomes `@article` carrying both."""
    entry = parse(cite(paper(doi="10.1000/xyz123", journal_ref="Nature 123 (2024) 45-67")).bibtex)
    assert entry["ENTRYTYPE"] == "article"
    assert entry["journal"] == "Nature 123 (2024) 45-67"
    assert entry["doi"] == "10.1000/xyz123"
    assert entry["eprint"] == "2307.15771"
    # A DOI alone (no journal reference) is still a preprint.
    assert parse(cite(paper(doi="10.1000/xyz123")).bibtex)["ENTRYTYPE"] == "misc"


def test_tex_is_kept_and_keys_are_ascii() -> None:
    """TeX in titles stays TeX; the key folds accents (`Delétang`, `Del\\'etang` -> deletang)."""
    p = paper(
        title=r"Neural Networks and the Chomsky Hierarchy: $\alpha$ {RNN}s",
        authors=(r"Gr\'egoire Del\'etang", "Anian Ruoss"),
        published=datetime(2022, 7, 5, tzinfo=UTC),
    )
    entry = parse(cite(p).bibtex)
    assert entry["title"] == r"Neural Networks and the Chomsky Hierarchy: $\alpha$ {RNN}s"
    assert entry["ID"] == "deletang2022neural"
    assert citation_key(paper(authors=("Grégoire Delétang",))).startswith("deletang2023")


def test_collaborations_are_braced() -> None:
    """`ATLAS Collaboration` and names containing `and` stay one author."""
    entry = parse(cite(paper(authors=("ATLAS Collaboration", "Smith and Jones Group"))).bibtex)
    assert entry["author"] == "{ATLAS Collaboration} and {Smith and Jones Group}"


@pytest.mark.parametrize(
    "title",
    [
        "Evil}, author={Mallory",
        "Unclosed {brace",
        "}}}}@misc{x,",
        "Trailing backslash \\",
        "Nested {{ok}} but } extra",
    ],
)
def test_hostile_braces_cannot_escape_their_field(title: str) -> None:
    """A title with unbalanced braces is escaped: still one entry, no injected fields."""
    text = cite(paper(title=title)).bibtex
    entry = parse(text)
    assert set(entry) == {
        "ENTRYTYPE", "ID", "title", "author", "year", "eprint", "archiveprefix",
        "primaryclass", "url",
    }  # fmt: skip
    assert "Mallory" not in entry["author"]


def test_year_from_id_when_no_date() -> None:
    """Without a v1 date the year comes from the id, for both id styles."""
    assert paper_year(paper(published=None)) == 2023
    assert paper_year(paper(id="hep-th/9901001", published=None)) == 1999
    assert paper_year(paper(id="math/0611800", published=None)) == 2006


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=200),
    st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=5),
)
def test_any_text_gives_one_parseable_entry(title: str, authors: list[str]) -> None:
    """Whatever arXiv sends, the result parses as exactly one entry with the right eprint."""
    entry = parse(cite(paper(title=title or "x", authors=tuple(authors))).bibtex)
    assert entry["eprint"] == "2307.15771"
    assert entry["ENTRYTYPE"] == "misc"
