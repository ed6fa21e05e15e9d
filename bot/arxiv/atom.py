"""Parse arXiv's Atom documents (API answers, author feeds) into `AtomResult`.

The only module that imports feedparser: these documents are small and varied
enough to want its tolerance. An entry that trips a size cap or anything else
is skipped whole and reported with its reason (`SkippedItem`).
"""

from __future__ import annotations

import html
import io
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.arxiv.caps import ItemSkippedError, check_caps, date_in_range
from bot.arxiv.document import (
    ArxivApiError,
    FeedError,
    SkippedItem,
    _int_or_none,
    _open_document,
    _papers_of,
    _short,
)
from bot.arxiv.text import (
    _ANNOUNCE_TYPES,
    _categories,
    _clean,
    _first_id,
    _optional,
    _split_description,
    clean_author_name,
    split_author_list,
)
from bot.domain.ids import parse_arxiv_id_or_none
from bot.domain.models import Paper

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AtomResult:
    """One page of API results (or an author feed, which has no opensearch counts)."""

    papers: tuple[Paper, ...]
    total_results: int | None
    start_index: int | None
    items_per_page: int | None = None
    skipped: int = 0
    skips: tuple[SkippedItem, ...] = ()


def _feedparser(data: bytes) -> Any:
    # Imported on first use: most processes never parse Atom, and feedparser costs
    # memory that `paperbell run` (at most 150 MB) is better without.
    import feedparser

    # A BytesIO, never the bytes themselves: feedparser treats a str/bytes that
    # looks like a path or URL as something to open. Sanitising and URI
    # resolution are off: they rewrite arXiv's plain text (`$1<s<2$` lost its
    # `<s`) and cost time; escaping for Discord happens where messages are built.
    try:
        parsed = feedparser.parse(
            io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as crash:  # feedparser itself trips on some broken XML (seen: ValueError)
        raise FeedError(f"malformed XML ({type(crash).__name__})") from None
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        if isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
            log.debug("feedparser warning ignored: %s", _short(str(problem)))
        else:
            raise FeedError(f"malformed XML ({_short(str(problem), 80)})")
    return parsed


def _authors_from_names(raw: Iterable[Any]) -> tuple[str, ...]:
    names: list[str] = []
    for value in raw:
        if not isinstance(value, str):
            continue
        if "," in value:  # an author feed's or rss.arxiv.org Atom's one-string list
            names.extend(split_author_list(value))
        else:
            name = clean_author_name(value)
            if name:
                names.append(name)
    return tuple(names)


# arXiv categories look like `hep-th`, `cs.AI`, `cond-mat.str-el`; the API also
# lists ACM (`I.2.6`) and MSC (`68T05`) classes as categories, which no
# subscription can name, so they are dropped.


def _tag_terms(entry: Any) -> list[Any]:
    tags = dict.get(entry, "tags") or ()
    return [tag.get("term") for tag in tags if isinstance(tag, dict)]


def _atom_date(entry: Any, key: str) -> datetime | None:
    """An entry's date in UTC or None when absent; ItemSkippedError if unreadable/out of range."""
    text = dict.get(entry, key)
    if not isinstance(text, str) or not text.strip():
        return None
    # feedparser's *_parsed values are struct_time already converted to UTC.
    value = dict.get(entry, f"{key}_parsed")
    try:
        when = datetime(*value[:6], tzinfo=UTC) if isinstance(value, time.struct_time) else None
    except (ValueError, OverflowError):  # year 10000 after conversion to UTC
        when = None
    if when is None or not date_in_range(when):
        raise ItemSkippedError(f"{key} {_short(text, 40)!r} is unreadable or out of range")
    return when


def _entry_str(entry: Any, key: str) -> str | None:
    value = dict.get(entry, key)
    return value if isinstance(value, str) else None


# ---- Atom -----------------------------------------------------------------------------------

_API_ERROR_IDS = ("http://arxiv.org/api/errors", "https://arxiv.org/api/errors")
# `[^<>]`, not `[^>]`: on a run of `<` without `>` the latter rescans to the end from each one.
_HTML_TAG = re.compile(r"<[^<>]+>")


def parse_atom(data: bytes) -> AtomResult:
    """Parse an API answer (`/api/query`) or an author feed (`arxiv.org/a/ID.atom`)."""
    return _parse_atom_checked(_open_document(data, "feed", "an Atom feed"))


def _parse_atom_checked(data: bytes) -> AtomResult:
    """A complete Atom <feed> document's entries (`_open_document` checked that)."""
    parsed = _feedparser(data)
    version = parsed.get("version") or ""
    if not version.startswith("atom"):
        raise FeedError(f"unsupported Atom flavour {version or 'unknown'!r}")
    entries = parsed.get("entries") or ()
    for entry in entries:
        _raise_if_api_error(entry)

    papers, skips, _ = _papers_of(
        "atom", entries, _atom_paper, lambda entry: _entry_str(entry, "id")
    )

    feed = parsed.get("feed") or {}
    return AtomResult(
        papers=tuple(papers),
        total_results=_int_or_none(dict.get(feed, "opensearch_totalresults")),
        start_index=_int_or_none(dict.get(feed, "opensearch_startindex")),
        items_per_page=_int_or_none(dict.get(feed, "opensearch_itemsperpage")),
        skipped=len(skips),
        skips=tuple(skips),
    )


def _raise_if_api_error(entry: Any) -> None:
    # The API reports errors as a feed with one entry titled "Error" whose id
    # points at its error docs. A real paper titled "Error" has an arXiv id.
    entry_id = _entry_str(entry, "id") or ""
    title = _clean(_entry_str(entry, "title"))
    if entry_id.startswith(_API_ERROR_IDS) or (
        title == "Error" and parse_arxiv_id_or_none(entry_id) is None
    ):
        message = _short(_entry_str(entry, "summary") or "unspecified error", 200)
        raise ArxivApiError(f"arXiv API error: {message}")


def _atom_text(entry: Any, key: str) -> str:
    value = _entry_str(entry, key) or ""
    detail = dict.get(entry, f"{key}_detail")
    if isinstance(detail, dict) and detail.get("type") in ("text/html", "application/xhtml+xml"):
        value = html.unescape(_HTML_TAG.sub(" ", value))
    return value


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _atom_paper(entry: Any) -> Paper:
    """One entry as a Paper; raises (ItemSkippedError with the reason) when it is unusable."""
    contents = dict.get(entry, "content") or ()
    names = [a.get("name") for a in dict.get(entry, "authors") or () if isinstance(a, dict)]
    terms = _tag_terms(entry)
    journal_ref = dict.get(entry, "arxiv_journal_ref") or dict.get(entry, "arxiv_journal_reference")
    check_caps(
        title=_text_len(dict.get(entry, "title")),
        abstract=_text_len(dict.get(entry, "summary"))
        + sum(_text_len(c.get("value")) for c in contents if isinstance(c, dict)),
        authors=sum(_text_len(n) for n in names),
        author_count=len(names),
        comment=_text_len(dict.get(entry, "arxiv_comment")),
        journal_reference=_text_len(journal_ref),
        doi=_text_len(dict.get(entry, "arxiv_doi")),
        categories=sum(_text_len(t) for t in terms),
        category_count=len(terms),
    )
    summary = _atom_text(entry, "summary")
    if not summary:
        summary = next((c.get("value") or "" for c in contents if isinstance(c, dict)), "")
    desc_id, desc_type, abstract = _split_description(summary)

    entry_id = _entry_str(entry, "id")
    links = [link.get("href") for link in dict.get(entry, "links") or () if isinstance(link, dict)]
    arxiv_id = _first_id(entry_id, desc_id, *links)
    title = _clean(_atom_text(entry, "title"))
    if arxiv_id is None or not title:
        raise ItemSkippedError("no arXiv id" if arxiv_id is None else "no title")
    version = arxiv_id.version or 1

    raw_type = _entry_str(entry, "arxiv_announce_type") or desc_type
    primary = dict.get(entry, "arxiv_primary_category")
    primary_term = primary.get("term") if isinstance(primary, dict) else None
    categories = _categories(terms, primary_term)
    authors = _authors_from_names(names)
    check_caps(author_count=len(authors))
    return Paper(
        id=arxiv_id.id,
        version=version,
        title=title,
        abstract=_clean(abstract),
        authors=authors,
        primary_category=categories[0] if categories else "",
        categories=categories,
        published=_atom_date(entry, "published"),
        updated=_atom_date(entry, "updated"),
        comment=_optional(dict.get(entry, "arxiv_comment")),
        journal_ref=_optional(journal_ref),
        doi=_optional(dict.get(entry, "arxiv_doi")),
        announce_type=_ANNOUNCE_TYPES.get(raw_type.strip().lower()) if raw_type else None,
    )
