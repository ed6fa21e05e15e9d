"""The OAI-PMH parser: arXivRaw and arXiv records, tokens, errors and hostile documents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.arxiv.feeds import FeedError
from bot.arxiv.oai import OaiError, is_oai_document, parse_list_records
from tests.arxiv_server import FIXTURES, oai_list_records, oai_raw_record


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_arxivraw_page() -> None:
    """arXivRaw: latest version, v1 date as published, authors split, token and counts read."""
    page = parse_list_records(fixture("own_oai_arxivraw.xml"))
    assert (page.resumption_token, page.cursor, page.complete_list_size) == (
        "6960524|1001",
        0,
        2417,
    )
    assert (page.records, page.deleted, page.skipped) == (3, 1, 0)
    first, old = page.papers
    assert first.id == "0704.0001" and first.version == 2
    assert first.published == datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    assert first.updated == datetime(2007, 7, 24, 20, 10, 27, tzinfo=UTC)
    assert first.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert first.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan")
    assert first.abstract.startswith("A fully differential calculation in perturbative")
    assert (first.journal_ref, first.doi) == (
        "Phys.Rev.D76:013009,2007",
        "10.1103/PhysRevD.76.013009",
    )
    assert first.comment == "37 pages, 15 figures; published version"
    assert old.id == "hep-th/9901001" and old.version == 1
    assert old.authors == ("J. L. F. Barbón", "S. James Gates Jr")
    assert old.categories == ("hep-th", "hep-ph") and old.primary_category == "hep-th"


def test_arxiv_format_page() -> None:
    """The `arXiv` format (keyname/forenames) is read too."""
    page = parse_list_records(fixture("own_oai_listrecords.xml"))
    assert [p.id for p in page.papers] == ["2307.15771", "hep-th/9901001"]
    assert page.papers[0].authors[0] == "Grégoire Delétang"
    assert page.resumption_token == "6960524|1001"


def test_last_page_has_no_token() -> None:
    """An empty resumptionToken ends the list."""
    body = oai_list_records(
        [oai_raw_record("2411.00001", "T", "A B")], token=None, cursor=5, complete_list_size=6
    )
    page = parse_list_records(body)
    assert page.resumption_token is None and page.cursor == 5 and len(page.papers) == 1


def test_errors() -> None:
    """`<error>` answers raise OaiError with the code; noRecordsMatch is an empty last page."""
    with pytest.raises(OaiError) as caught:
        parse_list_records(fixture("own_oai_error_badargument.xml"))
    assert caught.value.code == "badArgument" and "2024-13-01" in str(caught.value)
    empty = parse_list_records(fixture("own_oai_norecordsmatch.xml"))
    assert empty.papers == () and empty.resumption_token is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Rate exceeded.",
        b"<html><body>busy</body></html>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><OAI-PMH/>',
        b"<OAI-PMH xmlns='http://www.openarchives.org/OAI/2.0/'>" + b"<a>" * 40,
    ],
)
def test_hostile_or_broken_bodies_raise_feed_error(body: bytes) -> None:
    """Empty, rate-limited, HTML, DOCTYPE/entity and over-nested bodies are refused cleanly."""
    with pytest.raises(FeedError):
        parse_list_records(body)


def test_truncated_page_is_refused() -> None:
    """Half a page is an error, never half the records."""
    data = fixture("own_oai_arxivraw.xml")
    with pytest.raises(FeedError):
        parse_list_records(data[: len(data) * 2 // 3])


def test_deep_nesting_is_refused() -> None:
    """Nesting deeper than the cap fails fast instead of building a huge tree."""
    body = b"<OAI-PMH xmlns='http://www.openarchives.org/OAI/2.0/'>" + b"<a>" * 100 + b"</a>" * 100
    with pytest.raises(FeedError, match="nested"):
        parse_list_records(body + b"</OAI-PMH>")


def test_sniffing() -> None:
    """OAI-PMH documents are told apart from RSS and Atom by their root element."""
    assert is_oai_document(fixture("own_oai_arxivraw.xml"))
    assert not is_oai_document(fixture("own_rss_edge_cases.xml"))
    assert not is_oai_document(b'{"id": "0704.0001"}')
