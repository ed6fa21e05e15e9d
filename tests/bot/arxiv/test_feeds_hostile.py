"""Hostile feed text: linear-time cleaners, size caps, out-of-range dates (`bot.arxiv.feeds`)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.arxiv.atom import _HTML_TAG
from bot.arxiv.caps import CAPS
from bot.arxiv.feeds import (
    clean_author_name,
    parse_atom,
    parse_document_report,
    parse_oai_page,
    parse_rss,
    split_author_list,
    tex_accents_to_unicode,
)
from bot.arxiv.text import _strip_parenthesised
from bot.domain.names import author_key, fold, fold_for_index, keyword_tokens, query_key
from tests.bot.arxiv.hostile import OVERFLOW_DATE, pathological, rss_item, rss_listing

SIZE = 300_000

# The cleaners as they were: the reference for what stripping parentheses means.
_OLD_PARENTHESISED = re.compile(r"\s*\([^()]*\)")


def _old_strip(text: str) -> str:
    while True:
        stripped = _OLD_PARENTHESISED.sub("", text)
        if stripped == text:
            return stripped
        text = stripped


@settings(max_examples=1000)
@given(
    st.text(alphabet="() \t\nab,", max_size=60)
    | st.lists(st.sampled_from(["(", ")", "((", "))", "(((", ")))", " ", "  ", "a", "b c"])).map(
        "".join
    )
)
def test_parenthesis_stripping_means_what_it_meant(text: str) -> None:
    """The one-pass stripper removes exactly what the innermost-first regex loop removed."""
    assert _strip_parenthesised(text) == _old_strip(text)


@pytest.mark.parametrize("name", sorted(pathological(10)))
def test_cleaners_finish_on_300_kb_of_pathological_text(name: str) -> None:
    """Every cleaner gets through 300 KB built to make it backtrack (a quadratic one would take
    minutes here: the whole module runs in well under a second)."""
    text = pathological(SIZE)[name]
    _strip_parenthesised(text)
    clean_author_name(text)
    split_author_list(text)
    tex_accents_to_unicode(text)
    _HTML_TAG.sub(" ", text)
    # The store folds the same text for its author and search indexes.
    for fold_text in (fold, fold_for_index, keyword_tokens, author_key, query_key):
        fold_text(text)


def test_deeply_nested_affiliations_are_stripped_whole() -> None:
    """150,000 levels of nesting go in one pass, and the names around them stay."""
    nested = "(" * 150_000 + "Univ" + ")" * 150_000
    assert split_author_list(f"Alice Smith {nested}, Bob Jones") == ("Alice Smith", "Bob Jones")


def test_a_listing_with_300_kb_hostile_author_fields_parses() -> None:
    """Author fields just under the cap, full of nested parentheses and spaces, parse and
    their real names survive."""
    filler = "(" * 70_000 + " " * 140_000 + ")" * 70_000
    items = [
        rss_item(1, creators=f"Alice Smith {filler}, Bob Jones"),
        rss_item(2, creators=f"Carol White{' ' * 280_000}(x)"),
    ]
    listing = parse_rss(rss_listing(items))
    assert [p.authors for p in listing.papers] == [("Alice Smith", "Bob Jones"), ("Carol White",)]
    assert listing.skipped == 0


# ---- caps ----------------------------------------------------------------------------------


def _over(field: str) -> int:
    return CAPS[field] + 1


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"title": "T" * _over("title")}, "title"),
        ({"abstract": "a" * _over("abstract")}, "abstract"),
        ({"creators": "A" * _over("authors")}, "authors"),
        ({"creators": ", ".join(["A B"] * _over("author count"))}, "author count"),
        ({"categories": ("cs.LG",) * _over("category count")}, "category count"),
        ({"categories": ("x" * _over("categories"),)}, "categories"),
        ({"journal_ref": "J" * _over("journal reference")}, "journal reference"),
    ],
)
def test_an_item_over_a_cap_is_skipped_and_counted(kwargs: dict[str, object], reason: str) -> None:
    """One oversized field skips its item, with the field named; the other items stay."""
    items = [rss_item(1), rss_item(2, **kwargs), rss_item(3)]  # type: ignore[arg-type]
    listing = parse_rss(rss_listing(items))
    assert [p.id for p in listing.papers] == ["2412.00001", "2412.00003"]
    assert listing.skipped == 1 and listing.items == 3
    (skip,) = listing.skips
    assert skip.index == 1 and skip.ref == "oai:arXiv.org:2412.00002v1"
    assert skip.reason.startswith(f"{reason} ") and "over the cap" in skip.reason
    assert str(skip).startswith("item 2 (oai:arXiv.org:2412.00002v1) skipped: ")


def test_fields_at_their_caps_are_kept() -> None:
    """A field exactly at its cap is not over it."""
    item = rss_item(1, title="T" * CAPS["title"], abstract="a" * 1000)
    assert len(parse_rss(rss_listing([item])).papers) == 1


# ---- dates ---------------------------------------------------------------------------------


def test_an_item_with_an_overflowing_date_is_skipped_with_its_reason() -> None:
    """`Fri, 31 Dec 9999 23:00:00 -1200` overflows in UTC: that item is skipped, not the listing."""
    items = [rss_item(1), rss_item(2, pub_date=OVERFLOW_DATE), rss_item(3)]
    listing = parse_rss(rss_listing(items))
    assert [p.id for p in listing.papers] == ["2412.00001", "2412.00003"]
    (skip,) = listing.skips
    assert "9999" in skip.reason and "out of range" in skip.reason


@pytest.mark.parametrize(
    "date",
    [
        OVERFLOW_DATE,
        "Fri, 31 Dec 9999 23:00:00 +9999",
        "Mon, 1 Jan 99999999999999999999 00:00:00 +0000",
        "Mon, 1 Jan 2024 00:00:00 -99999999999999999999999",
        "Mon, 1 Jan 1900 00:00:00 +0000",
        "Mon, 1 Jan 2024 99:00:00 +0000",
        "not a date",
    ],
)
def test_bad_item_dates_skip_the_item(date: str) -> None:
    """Unreadable or out-of-range item dates of every kind skip the item and raise nothing."""
    listing = parse_rss(rss_listing([rss_item(1, pub_date=date), rss_item(2)]))
    assert [p.id for p in listing.papers] == ["2412.00002"]
    assert listing.skipped == 1


def test_an_overflowing_channel_date_is_unknown_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A channel pubDate of year 9999 is treated as missing (lastBuildDate identifies the
    listing then), with a log line; the items still parse."""
    with caplog.at_level(logging.WARNING, logger="bot.arxiv.rss"):
        listing = parse_rss(rss_listing([rss_item(1)], pub_date=OVERFLOW_DATE))
    assert listing.pub_date is None
    assert listing.build_date == datetime(2024, 12, 3, 5, 0, 3, tzinfo=UTC)
    assert len(listing.papers) == 1
    assert any("pubDate ignored" in r.getMessage() for r in caplog.records)

    both = parse_rss(rss_listing([rss_item(1)], pub_date=OVERFLOW_DATE, last_build=OVERFLOW_DATE))
    assert both.build_date is None and len(both.papers) == 1


ATOM = """<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <id>https://arxiv.org/a/x</id>
  <title>x</title>
  <updated>2024-12-03T00:00:00Z</updated>
{entries}</feed>
"""
ATOM_ENTRY = """  <entry>
    <id>http://arxiv.org/abs/2412.0000{n}v1</id>
    <updated>2024-12-02T00:00:00Z</updated>
    <published>{published}</published>
    <title>Title {n}</title>
    <summary type="{summary_type}">{summary}</summary>
    <author><name>Alice Smith</name></author>
    <category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
"""


def _atom(*entries: dict[str, object]) -> bytes:
    defaults = {"published": "2024-12-02T00:00:00Z", "summary": "ok", "summary_type": "text"}
    text = "".join(ATOM_ENTRY.format(**{**defaults, **e}) for e in entries)
    return ATOM.format(entries=text).encode()


def test_atom_entry_with_an_overflowing_date_is_skipped() -> None:
    """An API/author-feed entry published in year 9999 (-12:00) is skipped with its reason."""
    result = parse_atom(_atom({"n": 1}, {"n": 2, "published": "9999-12-31T23:00:00-12:00"}))
    assert [p.id for p in result.papers] == ["2412.00001"]
    (skip,) = result.skips
    assert "published" in skip.reason and skip.ref.endswith("2412.00002v1")


def test_atom_html_summary_of_angle_brackets_is_linear() -> None:
    """An HTML summary of 300 KB of `<` without `>` is cleaned (tag regex cannot rescan)."""
    result = parse_atom(_atom({"n": 1, "summary": "&lt;" * 15_000, "summary_type": "html"}))
    assert len(result.papers) == 1


def test_atom_entry_over_a_cap_is_skipped() -> None:
    """An Atom summary over the abstract cap skips its entry."""
    big = "a" * (CAPS["abstract"] + 1)
    result = parse_atom(_atom({"n": 1}, {"n": 2, "summary": big}))
    assert [p.id for p in result.papers] == ["2412.00001"]
    assert result.skips[0].reason.startswith("abstract ")


OAI = """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">
  <responseDate>2024-12-03T00:00:00Z</responseDate>
  <request verb="ListRecords">https://oaipmh.arxiv.org/oai</request>
  <ListRecords>
{records}  </ListRecords>
</OAI-PMH>
"""
OAI_RECORD = """    <record>
      <header><identifier>oai:arXiv.org:2412.0000{n}</identifier>
        <datestamp>2024-12-02</datestamp></header>
      <metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/">
        <id>2412.0000{n}</id><created>{created}</created>
        <authors><author><keyname>Smith</keyname><forenames>Alice</forenames></author></authors>
        <title>Title {n}</title><categories>cs.LG</categories><abstract>ok</abstract>
      </arXiv></metadata>
    </record>
"""


def test_oai_record_with_an_out_of_range_date_is_skipped_and_reported() -> None:
    """An OAI-PMH record created in year 9999 is skipped; parse_document_report says why."""
    data = OAI.format(
        records=OAI_RECORD.format(n=1, created="2024-12-01")
        + OAI_RECORD.format(n=2, created="9999-12-31")
    ).encode()
    page = parse_oai_page(data)
    assert [p.id for p in page.papers] == ["2412.00001"]
    report = parse_document_report(data)
    assert [p.id for p in report.papers] == ["2412.00001"]
    (skip,) = report.skips
    assert skip.ref == "oai:arXiv.org:2412.00002" and "created" in skip.reason
