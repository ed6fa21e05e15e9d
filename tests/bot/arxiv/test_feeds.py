"""Tests for the feed parsers (`bot.arxiv.feeds`) on recorded and hand-written arXiv documents."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.arxiv.feeds import (
    ArxivApiError,
    FeedError,
    RateExceededError,
    clean_author_name,
    parse_atom,
    parse_document,
    parse_oai,
    parse_oai_page,
    parse_rss,
    split_author_list,
    tex_accents_to_unicode,
)
from bot.domain.models import AnnounceType, Paper

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LISTING = "rss2024_new_all-archives_2024-11-28.xml"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="module")
def listing_bytes() -> bytes:
    return fixture(LISTING)


@pytest.fixture(scope="module")
def listing(listing_bytes: bytes) -> tuple[Paper, ...]:
    return parse_rss(listing_bytes).papers


def by_id(papers: tuple[Paper, ...], paper_id: str) -> Paper:
    return next(p for p in papers if p.id == paper_id)


# ---- the recorded RSS listing -----------------------------------------------------------------


def test_listing_counts(listing_bytes: bytes) -> None:
    """The recorded daily listing yields all 1,504 items: 926 new, 569 replace, 9 cross."""
    result = parse_rss(listing_bytes)
    assert len(result.papers) == 1504
    assert result.skipped == 0
    assert Counter(p.announce_type for p in result.papers) == {
        AnnounceType.NEW: 926,
        AnnounceType.REPLACE: 569,
        AnnounceType.CROSS: 9,
    }
    assert len({p.id for p in result.papers}) == 1504


def test_listing_dates(listing_bytes: bytes) -> None:
    """build_date is the channel pubDate (the listing's day); items carry their pubDate in UTC."""
    result = parse_rss(listing_bytes)
    midnight_eastern = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
    assert result.build_date == midnight_eastern
    assert result.pub_date == midnight_eastern
    assert result.last_build_date == datetime(2024, 11, 28, 14, 47, 20, tzinfo=UTC)
    assert {p.published for p in result.papers} == {midnight_eastern}
    assert all(p.updated is None for p in result.papers)


def test_listing_first_item_fields(listing: tuple[Paper, ...]) -> None:
    """Every field of the first item comes out as arXiv wrote it, abstract without the prefix."""
    paper = listing[0]
    assert paper.id == "2411.17700"
    assert paper.version == 1
    assert paper.title.startswith("Exploring the Impact of Generative AI on Cross-Border")
    assert paper.abstract.startswith("This study investigates the influence of generative")
    assert paper.abstract.endswith("structural equations (PLS-SEM).")
    assert paper.authors == ("Jun Cui",)
    assert paper.primary_category == "cs.CY"
    assert paper.categories == ("cs.CY",)
    assert paper.announce_type is AnnounceType.NEW
    assert (paper.doi, paper.journal_ref, paper.comment) == (None, None, None)


def test_listing_versions_come_from_the_guid(listing: tuple[Paper, ...]) -> None:
    """Replacements keep their version (1401.3665v4) while the id stays versionless."""
    paper = by_id(listing, "1401.3665")
    assert paper.version == 4
    assert paper.announce_type is AnnounceType.REPLACE
    assert all("v" not in p.id for p in listing)
    assert all(p.version >= 1 for p in listing)


def test_listing_primary_category_is_the_first_element(listing: tuple[Paper, ...]) -> None:
    """primary_category is the first <category>, and categories keep the feed's order."""
    paper = by_id(listing, "2411.17705")
    assert paper.categories == ("eess.SP", "cs.AI", "cs.LG")
    assert paper.primary_category == "eess.SP"
    assert all(p.primary_category == p.categories[0] for p in listing)


def test_listing_doi_and_journal_reference(listing: tuple[Paper, ...]) -> None:
    """arxiv:DOI and arxiv:journal_reference are read where present (111 and 97 items)."""
    assert sum(p.doi is not None for p in listing) == 111
    assert sum(p.journal_ref is not None for p in listing) == 97
    paper = next(p for p in listing if p.doi == "10.1016/j.segan.2024.101477")
    assert paper.journal_ref == (
        "Sustainable Energy, Grids and Networks, Volume 39, 2024, 101477, ISSN 2352-4677"
    )


def test_listing_text_is_single_spaced(listing: tuple[Paper, ...]) -> None:
    """Titles and abstracts have no line breaks, doubled spaces or announcement prefix."""
    for paper in listing:
        for text in (paper.title, paper.abstract):
            assert "\n" not in text
            assert "  " not in text
            assert text == text.strip()
        assert "Announce Type" not in paper.abstract


def test_listing_authors_drop_affiliations(listing: tuple[Paper, ...]) -> None:
    """Affiliations in parentheses (which contain commas) are not authors."""
    paper = next(p for p in listing if "Tianliang Yan" in p.authors)
    assert paper.authors == (
        "Tianliang Yan",
        "Yubao Liu",
        "Leonid Prokhorov",
        "Jiri Smetana",
        "Haixing Miao",
        "Yiqiu Ma",
        "Vincent Boyer",
        "Denis Martynov",
    )
    assert not any("(" in a or ")" in a for p in listing for a in p.authors)


def test_listing_authors_turn_tex_accents_into_unicode(listing: tuple[Paper, ...]) -> None:
    """dc:creator's TeX (`Przemys{\\l}aw`, `\\.Zygierewicz`, `Gu\\dhmundur`) reads as Unicode."""
    paper = next(p for p in listing if "Joanna Zych" in p.authors)
    assert "Przemysław Olbratowski" in paper.authors
    assert "Jarosław Żygierewicz" in paper.authors
    assert any("Guðmundur K. Stefánsson" in p.authors for p in listing)
    assert not any("\\" in a or "{" in a for p in listing for a in p.authors)


def test_listing_large_collaboration(listing: tuple[Paper, ...]) -> None:
    """A 207-name author list with a leading collaboration keeps its order."""
    paper = next(p for p in listing if p.authors and p.authors[0] == "NOvA Collaboration")
    assert len(paper.authors) == 207
    assert paper.authors[1:3] == ("M. A. Acero", "B. Acharya")
    assert paper.authors[-1] == "R. Zwaska"
    assert "D. Dueñas Tonguino" in paper.authors


def test_empty_listing_is_valid() -> None:
    """The feed of a day without announcements is zero papers, not an error."""
    result = parse_rss(fixture("rss2024_new_empty_test-archive.xml"))
    assert result.papers == ()
    assert result.skipped == 0
    assert result.build_date == datetime(2024, 11, 28, 5, 0, tzinfo=UTC)


# ---- hand-written RSS -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def edge() -> tuple[Paper, ...]:
    return parse_rss(fixture("own_rss_edge_cases.xml")).papers


def test_replace_cross_with_doi_and_journal_reference(edge: tuple[Paper, ...]) -> None:
    """A replace-cross item keeps its type, version, DOI and journal reference."""
    paper = by_id(edge, "2310.04512")
    assert paper.announce_type is AnnounceType.REPLACE_CROSS
    assert paper.version == 3
    assert paper.doi == "10.1103/PhysRevD.110.064021"
    assert paper.journal_ref == "Phys. Rev. D 110, 064021 (2024)"
    assert paper.categories == ("gr-qc", "hep-th")
    assert paper.authors == ("Ana Kovač", "Jon Ibáñez", "Przemysław Nowak")
    assert paper.abstract == (
        "We revisit holographic renormalization for massive gravity in the presence of a "
        "boundary. The counterterms are fixed by a cut-off independent scheme."
    )


def test_title_with_mentions_is_kept_verbatim(edge: tuple[Paper, ...]) -> None:
    """`@everyone <@&123>` stays in the title: escaping is the bot's job, not the parser's."""
    assert by_id(edge, "2412.00001").title == "Please read @everyone <@&123> <#456> **now**"


def test_old_style_id_and_wrapped_title(edge: tuple[Paper, ...]) -> None:
    """An old-style guid gives `hep-th/9510017` v4; the hard-wrapped title is one line."""
    paper = by_id(edge, "hep-th/9510017")
    assert paper.version == 4
    assert paper.title == "Dirichlet Branes and Ramond-Ramond Charges, Revisited"
    assert paper.authors == ("Alice Smith", "Bob Jones", "Carol White")


def test_missing_guid_takes_the_version_from_the_description(edge: tuple[Paper, ...]) -> None:
    """Without a guid the description's `arXiv:IDvN` gives the version."""
    paper = by_id(edge, "2412.00002")
    assert paper.version == 2
    assert paper.announce_type is AnnounceType.CROSS
    assert paper.authors == ("Dana Lee", "Eve Park")


def test_unusable_item_is_skipped_and_counted() -> None:
    """An item without any arXiv id is skipped, counted, and the rest still parse."""
    result = parse_rss(fixture("own_rss_edge_cases.xml"))
    assert result.skipped == 1
    assert len(result.papers) == 5
    assert result.build_date == datetime(2024, 12, 3, 5, 0, tzinfo=UTC)


def test_absonly_counts_as_replacement_and_group_names_stay_whole(edge: tuple[Paper, ...]) -> None:
    """`absonly` is a replacement; "ATLAS and CMS Collaborations" is one author."""
    paper = by_id(edge, "math/0611800")
    assert paper.announce_type is AnnounceType.REPLACE
    assert paper.authors == ("ATLAS and CMS Collaborations", "G. Ortiz")


def test_rss_feed_error_is_an_api_error() -> None:
    """rss.arxiv.org's "Feed error for query" channel raises ArxivApiError with the reason."""
    with pytest.raises(ArxivApiError, match=r"Invalid archive specification: cs\.XX"):
        parse_rss(fixture("own_rss_feed_error.xml"))


def test_harmless_bozo_is_not_fatal() -> None:
    """A wrong encoding declaration (CharacterEncodingOverride) does not fail the parse."""
    data = fixture("own_rss_edge_cases.xml").replace(b"encoding='UTF-8'", b"encoding='us-ascii'")
    assert feedparser.parse(data).bozo
    result = parse_rss(data)
    assert len(result.papers) == 5
    assert by_id(result.papers, "2310.04512").authors[0] == "Ana Kovač"
    api = fixture("api2026_idlist_0808.05394+1707.08567.xml")
    api = api.replace(b"encoding='UTF-8'", b"encoding='us-ascii'")
    assert isinstance(feedparser.parse(api).bozo_exception, feedparser.CharacterEncodingOverride)
    assert "Dirk Wübben" in parse_atom(api).papers[0].authors


def test_leading_whitespace_and_byte_order_mark_are_tolerated() -> None:
    """A body padded with blank lines before `<?xml`, or starting with a UTF-8 BOM, parses."""
    data = fixture("own_rss_edge_cases.xml")
    assert len(parse_rss(b"\r\n\n  " + data).papers) == 5
    assert len(parse_rss(b"\xef\xbb\xbf" + data).papers) == 5


# ---- bodies that are not feeds --------------------------------------------------------------

PARSERS = (parse_rss, parse_atom, parse_oai, parse_document)


@pytest.mark.parametrize("parse", [parse_rss, parse_document])
def test_truncated_listing_raises(parse: object) -> None:
    """A listing cut off mid-download raises instead of returning the first half."""
    assert callable(parse)
    with pytest.raises(FeedError, match="truncated"):
        parse(fixture("own_rss_truncated.xml"))


@pytest.mark.parametrize("cut", [200, 1_398_802, -19, -8, -2])
def test_listing_cut_anywhere_raises(listing_bytes: bytes, cut: int) -> None:
    """Cut at any point, even after the last item or inside `</rss>`, the listing is refused."""
    with pytest.raises(FeedError):
        parse_rss(listing_bytes[:cut])


@pytest.mark.parametrize(
    "name", ["api2026_search_all-testing_max10.xml", "own_oai_listrecords.xml"]
)
def test_truncated_atom_and_oai_raise(name: str) -> None:
    """API and OAI-PMH documents cut short raise too."""
    data = fixture(name)
    with pytest.raises(FeedError, match="truncated"):
        parse_document(data[: len(data) * 2 // 3])


def test_complete_but_malformed_document_raises() -> None:
    """A well-closed document with broken XML inside is refused, not half-read."""
    data = fixture("own_rss_edge_cases.xml").replace(b"Learning Rates for", b"Learning <Rates for")
    with pytest.raises(FeedError, match="malformed XML"):
        parse_rss(data)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("body", [b"Rate exceeded.", b"Rate exceeded.\n", b"  rate exceeded."])
def test_rate_exceeded_body(parse: object, body: bytes) -> None:
    """arXiv's HTTP-200 `Rate exceeded.` body raises RateExceededError (a FeedError)."""
    assert callable(parse)
    with pytest.raises(RateExceededError):
        parse(body)
    assert fixture("own_rate_exceeded.txt").strip() == b"Rate exceeded."
    with pytest.raises(FeedError):
        parse(fixture("own_rate_exceeded.txt"))


@pytest.mark.parametrize("parse", PARSERS)
def test_html_error_page(parse: object) -> None:
    """An HTML maintenance page raises FeedError naming its title, not quoting its body."""
    assert callable(parse)
    with pytest.raises(FeedError) as caught:
        parse(fixture("own_html_error_page.html"))
    assert not isinstance(caught.value, RateExceededError)
    message = str(caught.value)
    assert "HTML page" in message
    assert "503 Service Temporarily Unavailable" in message
    assert "maintenance downtime" not in message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n\t",
        b"<html><head><title>Bad Gateway</title></head><body><p>oops</body></html>",
        b"<HTML>\n<BODY>Not Found</BODY>",
        b"Internal Server Error " * 500,
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20,
        b"<?xml version='1.0'?><!-- nothing else -->",
        b"<?xml version='1.0'?><rss",
    ],
)
def test_non_feed_bodies_raise_short_messages(body: bytes) -> None:
    """Empty, HTML, text and binary bodies raise FeedError with a one-line, short message."""
    with pytest.raises(FeedError) as caught:
        parse_document(body)
    message = str(caught.value)
    assert 0 < len(message) <= 200
    assert "\n" not in message
    assert "Internal Server Error Internal" not in message


XMLISH = st.text(alphabet="<>/?!-=\"' \nabcrsfeditmlOAIPH:&;x0123456789.v", max_size=200)
WRAPPERS = (
    "{}",
    "<rss><channel><item>{}</item></channel></rss>",
    "<rss><channel><item><guid>oai:arXiv.org:2412.00001v1</guid><title>{}</title></item>"
    "</channel></rss>",
    "<feed xmlns='http://www.w3.org/2005/Atom'><entry>{}</entry></feed>",
    "<OAI-PMH xmlns='http://www.openarchives.org/OAI/2.0/'><ListRecords>{}</ListRecords></OAI-PMH>",
)


@given(
    st.binary(max_size=300)
    | st.builds(lambda w, t: w.format(t).encode(), st.sampled_from(WRAPPERS), XMLISH)
)
def test_arbitrary_bytes_raise_nothing_but_feed_error(data: bytes) -> None:
    """Whatever the body, parse_document returns papers or raises a short FeedError."""
    try:
        parse_document(data)
    except FeedError as exc:
        assert 0 < len(str(exc)) <= 200


@pytest.mark.parametrize("encoding", [b"UTK-8", b"shift_jis", b"utf-32"])
@pytest.mark.parametrize("name", ["own_rss_edge_cases.xml", "own_author_feed_atom.xml"])
def test_unknown_or_unsupported_declared_encoding_raises(name: str, encoding: bytes) -> None:
    """An encoding expat cannot read is a FeedError, not a LookupError or ValueError."""
    data = fixture(name)
    declared = b"encoding='UTF-8'" if b"encoding='UTF-8'" in data else b"encoding='utf-8'"
    with pytest.raises(FeedError):
        parse_document(data.replace(declared, b"encoding='" + encoding + b"'", 1))


def test_feedparser_crash_becomes_feed_error() -> None:
    """feedparser's own ValueError on an odd namespace URI is reported as malformed XML."""
    data = fixture("own_api_oldstyle_wrapped.xml").replace(
        b'http://arxiv.org/schemas/atom">10.10', b'http://arxiv.or\xc2\xa0/schemas/atom">10.10'
    )
    with pytest.raises(FeedError, match="malformed XML"):
        parse_atom(data)


@pytest.mark.parametrize("parse", PARSERS)
def test_doctype_and_entities_are_refused(parse: object) -> None:
    """Documents declaring entities (billion-laughs style) are refused before expansion."""
    assert callable(parse)
    with pytest.raises(FeedError, match="DOCTYPE"):
        parse(fixture("own_doctype_entities.xml"))


def test_doctype_inside_oai_is_refused_by_the_xml_parser() -> None:
    """OAI's own XML parser refuses an entity declaration even past the sniffing step."""
    data = fixture("own_oai_getrecord.xml").replace(
        b"<OAI-PMH ", b'<!DOCTYPE OAI-PMH [<!ENTITY x "boom">]>\n<OAI-PMH ', 1
    )
    with pytest.raises(FeedError, match="DOCTYPE"):
        parse_oai(data)


def test_parsers_refuse_each_others_documents() -> None:
    """parse_rss wants RSS, parse_atom wants Atom, parse_oai wants OAI-PMH."""
    with pytest.raises(FeedError, match="expected an RSS feed"):
        parse_rss(fixture("api2026_search_all-testing_max10.xml"))
    with pytest.raises(FeedError, match="expected an Atom feed"):
        parse_atom(fixture(LISTING))
    with pytest.raises(FeedError, match="expected an OAI-PMH response"):
        parse_oai(fixture("own_author_feed_atom.xml"))


def test_unknown_xml_document_is_refused() -> None:
    """parse_document names the unexpected root element."""
    with pytest.raises(FeedError, match="root element <opml>"):
        parse_document(b"<?xml version='1.0'?><opml version='2.0'><body/></opml>")


# ---- Atom: the API ---------------------------------------------------------------------------


def test_api_search_page() -> None:
    """The recorded search answer has 10 papers and its opensearch counts."""
    result = parse_atom(fixture("api2026_search_all-testing_max10.xml"))
    assert len(result.papers) == 10
    assert (result.total_results, result.start_index, result.items_per_page) == (214881, 0, 10)
    assert result.skipped == 0
    paper = result.papers[0]
    assert (paper.id, paper.version) == ("2202.12139", 1)
    assert paper.title == (
        "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    )
    assert paper.authors == ("Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker")
    assert paper.primary_category == "cs.SE"
    assert paper.categories == ("cs.SE", "cs.LG")
    assert paper.published == datetime(2022, 2, 24, 15, 5, 19, tzinfo=UTC)
    assert paper.updated == datetime(2022, 2, 24, 15, 5, 19, tzinfo=UTC)
    assert paper.comment == "Artificial Intelligence in Software Testing 2022 workshop @ ICST 2022"
    assert paper.doi == "10.1109/ICSTW55395.2022.00035"
    assert paper.journal_ref is not None and paper.journal_ref.endswith("Workshops (ICSTW)")
    assert paper.announce_type is None


def test_api_id_list_with_34_authors() -> None:
    """The id_list answer has one paper with 34 authors in order, non-ASCII names intact."""
    result = parse_atom(fixture("api2026_idlist_0808.05394+1707.08567.xml"))
    assert [p.id for p in result.papers] == ["1707.08567"]
    paper = result.papers[0]
    assert len(paper.authors) == 34
    assert paper.authors[0] == "Kees A. Schouhamer Immink"
    assert paper.authors[-1] == "Hirosuke Yamamoto"
    assert "Dirk Wübben" in paper.authors
    assert "Peter H. N. de With" in paper.authors
    assert paper.comment is not None
    assert paper.comment.endswith("proceedings: Yanling Chen and A. J. Han Vinck")


def test_api_error_entry_raises() -> None:
    """The API's error feed raises ArxivApiError with its message, never a paper titled Error."""
    data = fixture("api2026_error_http400_idlist_abc.xml")
    for parse in (parse_atom, parse_document):
        with pytest.raises(ArxivApiError) as caught:
            parse(data)
        assert isinstance(caught.value, FeedError)
        assert str(caught.value) == "arXiv API error: incorrect id format for abc"


def test_api_old_style_ids_and_wrapped_text() -> None:
    """Old API answers: old-style ids, hard-wrapped title/summary/comment, TeX in names."""
    result = parse_atom(fixture("own_api_oldstyle_wrapped.xml"))
    assert (result.total_results, result.start_index, result.items_per_page) == (3, 0, 10)
    paper = by_id(result.papers, "hep-th/9901001")
    assert paper.version == 2
    assert paper.title == (
        "Brane Configurations and Four Dimensional Field Theories "
        "with Spontaneously Broken Supersymmetry"
    )
    assert paper.abstract.startswith("We study brane configurations in type IIA string theory that")
    assert "  " not in paper.abstract and "\n" not in paper.abstract
    assert paper.authors == ("J. L. F. Barbón", "Miguel A. Vázquez-Mozo")
    assert paper.comment == "24 pages, 5 figures; v2: references added"
    assert paper.journal_ref == "Nucl.Phys. B552 (1999) 112-140"
    assert paper.doi == "10.1016/S0550-3213(99)00123-4"
    assert paper.categories == ("hep-th", "hep-ph")


def test_api_paper_titled_error_is_a_paper() -> None:
    """A real paper titled "Error" parses; ACM/MSC codes are dropped, primary goes first."""
    papers = parse_atom(fixture("own_api_oldstyle_wrapped.xml")).papers
    paper = by_id(papers, "math/0611800")
    assert paper.title == "Error"
    assert paper.version == 3
    assert paper.primary_category == "math.CA"
    assert paper.categories == ("math.CA", "math.NA")


def test_api_entry_without_optional_elements() -> None:
    """Missing comment, DOI, journal reference and pdf link are simply None."""
    paper = by_id(parse_atom(fixture("own_api_oldstyle_wrapped.xml")).papers, "1011.2345")
    assert (paper.comment, paper.doi, paper.journal_ref) == (None, None, None)
    assert paper.authors == ("Solo Author",)


# ---- Atom: author feeds and rss.arxiv.org's Atom flavour ------------------------------------


def test_author_feed() -> None:
    """arxiv.org/a/ID.atom: no opensearch counts, offset dates in UTC, affiliations apart."""
    result = parse_atom(fixture("own_author_feed_atom.xml"))
    assert (result.total_results, result.start_index) == (None, None)
    first, second = result.papers
    assert (first.id, first.version) == ("2307.15771", 2)
    assert first.authors == ("Grégoire Delétang", "Shane Legg")
    assert first.published == datetime(2023, 7, 28, 17, 45, 12, tzinfo=UTC)
    assert first.updated == datetime(2023, 9, 18, 16, 0, 5, tzinfo=UTC)
    assert first.title == "A Placeholder Title About Agents and Their Measures of Intelligence"
    assert (first.doi, first.comment) == ("10.48550/arXiv.2307.15771", "12 pages")
    assert first.categories == ("cs.LG", "cs.AI")
    # An entry arXiv wrote without categories or abstract still counts as a paper.
    assert (second.id, second.abstract, second.categories) == ("0712.3329", "", ())
    assert second.primary_category == ""


def test_author_feed_v2_splits_the_one_string_author_list() -> None:
    """arxiv.org/a/ID.atom2 puts all authors in one <name>; they come out separately."""
    paper = parse_atom(fixture("own_author_feed_atom2.xml")).papers[0]
    assert paper.authors == ("Grégoire Delétang", "Shane Legg", "Pedro A. Ortega")


def test_announcement_atom_flavour() -> None:
    """rss.arxiv.org/atom: prefix stripped from the summary, dc:creator split, extras read."""
    paper = parse_atom(fixture("own_rss_atom_announce.xml")).papers[0]
    assert (paper.id, paper.version) == ("2412.00003", 1)
    assert paper.abstract == "Sparse attention, explained gently."
    assert paper.authors == ("Kim Lee", "René Dubois")
    assert paper.announce_type is AnnounceType.NEW
    assert paper.doi == "10.1000/xyz123"
    assert paper.journal_ref == "Journal of Tests 1 (2024) 1-2"
    assert paper.categories == ("cs.LG", "cs.CL")


# ---- OAI-PMH --------------------------------------------------------------------------------


def test_oai_list_records() -> None:
    """ListRecords in the arXiv format: papers, deleted records, resumption token."""
    page = parse_oai_page(fixture("own_oai_listrecords.xml"))
    assert [p.id for p in page.papers] == ["2307.15771", "hep-th/9901001"]
    assert (page.resumption_token, page.complete_list_size, page.cursor) == (
        "6960524|1001",
        2417,
        0,
    )
    assert (page.deleted, page.skipped) == (1, 0)
    assert parse_oai(fixture("own_oai_listrecords.xml")) == page.papers


def test_oai_record_fields() -> None:
    """Names join forenames, keyname and suffix; TeX accents become Unicode; dates are UTC."""
    new, old = parse_oai(fixture("own_oai_listrecords.xml"))
    assert new.authors == ("Grégoire Delétang", "Pedro A. Ortega", "Shane Legg")
    assert new.title == "A Placeholder Title About Agents and Their Measures of Intelligence"
    assert new.abstract.startswith("An abstract as the OAI interface serves it: hard-wrapped")
    assert new.abstract.endswith("trailing newline.")
    assert new.categories == ("cs.LG", "cs.AI", "stat.ML")
    assert new.primary_category == "cs.LG"
    assert new.published == datetime(2023, 7, 28, tzinfo=UTC)
    assert new.updated == datetime(2024, 11, 29, tzinfo=UTC)
    assert new.version == 2  # updated exists: at least v2
    assert new.comment == "12 pages, 3 figures"
    assert old.authors == ("J. L. F. Barbón", "S. James Gates Jr", "ATLAS Collaboration")
    assert old.version == 1
    assert old.updated is None
    assert old.journal_ref == "Nucl.Phys. B552 (1999) 112-140"
    assert old.doi == "10.1016/S0550-3213(99)00123-4"


def test_oai_get_record() -> None:
    """GetRecord answers parse like ListRecords, with no resumption token."""
    page = parse_oai_page(fixture("own_oai_getrecord.xml"))
    assert page.resumption_token is None
    (paper,) = page.papers
    assert (paper.id, paper.authors) == ("math/0611800", ("Jürgen Straßer",))


def test_oai_no_records_match_is_empty() -> None:
    """`noRecordsMatch` means an empty harvest window, not a failure."""
    page = parse_oai_page(fixture("own_oai_norecordsmatch.xml"))
    assert page.papers == ()
    assert page.resumption_token is None


def test_oai_error_raises() -> None:
    """Other OAI-PMH errors raise ArxivApiError with the code and message."""
    with pytest.raises(ArxivApiError, match='badArgument: Illegal argument "from"'):
        parse_oai(fixture("own_oai_error_badargument.xml"))


def test_oai_in_another_metadata_format_is_refused() -> None:
    """Records only in oai_dc cannot be read and say so instead of returning nothing."""
    data = fixture("own_oai_getrecord.xml")
    start, end = data.index(b"<metadata>"), data.index(b"</metadata>") + len(b"</metadata>")
    oai_dc = (
        b'<metadata><oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/">'
        b"</oai_dc:dc></metadata>"
    )
    with pytest.raises(FeedError, match="metadataPrefix=arXiv"):
        parse_oai(data[:start] + oai_dc + data[end:])


# ---- parse_document ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"),
    [
        (LISTING, 1504),
        ("rss2024_new_empty_test-archive.xml", 0),
        ("api2026_search_all-testing_max10.xml", 10),
        ("own_author_feed_atom.xml", 2),
        ("own_oai_listrecords.xml", 2),
    ],
)
def test_parse_document_sniffs_the_format(name: str, count: int) -> None:
    """RSS, Atom and OAI-PMH documents are told apart by their root element."""
    assert len(parse_document(fixture(name))) == count


# ---- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Jun Cui", ("Jun Cui",)),
        ("A. B, C D, E F", ("A. B", "C D", "E F")),
        ("Alice Smith, Bob Jones, and Carol White", ("Alice Smith", "Bob Jones", "Carol White")),
        ("Alice Smith, Bob Jones and Carol White", ("Alice Smith", "Bob Jones", "Carol White")),
        ("Dana Lee and Eve Park", ("Dana Lee", "Eve Park")),
        ("X Y (Univ A, Dept B), Z W (Lab (C), D)", ("X Y", "Z W")),
        (" CMS Collaboration", ("CMS Collaboration",)),
        ("ATLAS and CMS Collaborations", ("ATLAS and CMS Collaborations",)),
        ("Bill Gates Jr, Ada Lovelace", ("Bill Gates Jr", "Ada Lovelace")),
        ("A One, , B Two,", ("A One", "B Two")),
        ("A One, B Two, et al.", ("A One", "B Two")),
        ("  Spaced   Out  ,Name\nWrapped", ("Spaced Out", "Name Wrapped")),
        ("", ()),
    ],
)
def test_split_author_list(text: str, names: tuple[str, ...]) -> None:
    """One-string author lists split on commas and "and", keeping order, dropping empties."""
    assert split_author_list(text) == names


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        ("Del\\'etang", "Delétang"),
        ("Gr\\'{e}goire", "Grégoire"),
        ("{\\'E}mile", "Émile"),
        ('G\\"unther', "Günther"),
        ("Przemys{\\l}aw", "Przemysław"),
        ("Kad{\\i}o\\u{g}lu", "Kadıoğlu"),
        ("Vavry\\v{c}uk", "Vavryčuk"),
        ("Fran\\c cois", "François"),
        ("Mart\\'{\\i}nez", "Martínez"),
        ("S{\\o}ren", "Søren"),
        ("Bj\\o rn", "Bjørn"),
        ("Stra\\ss{}e", "Straße"),
        ('\\AA{}ngstr\\"om', "Ångström"),
        ("Gu\\dhmundur", "Guðmundur"),
        ("Aragon\\`es", "Aragonès"),
        ("Du\\~nas", "Duñas"),
        ("Erd\\H{o}s", "Erdős"),
        ("plain name", "plain name"),
        ("x \\alpha y", "x \\alpha y"),
    ],
)
def test_tex_accents_to_unicode(tex: str, text: str) -> None:
    """Common TeX accents and letters become their Unicode characters; the rest is kept."""
    assert tex_accents_to_unicode(tex) == text


def test_clean_author_name() -> None:
    """One name loses its affiliation, braces and extra whitespace."""
    assert clean_author_name("  Ren\\'e   Dubois (INRIA, Paris) ") == "René Dubois"
    assert clean_author_name("{ATLAS} Collaboration") == "ATLAS Collaboration"
