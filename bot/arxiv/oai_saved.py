"""Parse a saved OAI-PMH answer in arXiv's `arXiv` metadata format, as `parse_document` does.

`bot.arxiv.oai` is the OAI-PMH parser that harvesting and import use (both
`arXivRaw` and `arXiv` metadata). This older one stays because
`parse_document` dispatches OAI-PMH roots to it, and it keeps that path's
caps and per-record skip reasons; merging the two is left to issue 10.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.arxiv.caps import ItemSkippedError, check_caps, date_in_range
from bot.arxiv.document import (
    ArxivApiError,
    FeedError,
    SkippedItem,
    _int_or_none,
    _log_skips,
    _open_document,
    _parse_xml,
    _short,
    _skipped,
)
from bot.arxiv.text import _categories, _clean, _optional, clean_author_name
from bot.domain.ids import parse_arxiv_id_or_none
from bot.domain.models import Paper


@dataclass(frozen=True, slots=True)
class OaiPage:
    """One OAI-PMH ListRecords/GetRecord response; `resumption_token` is None on the last page."""

    papers: tuple[Paper, ...]
    resumption_token: str | None
    complete_list_size: int | None
    cursor: int | None
    skipped: int = 0
    deleted: int = 0
    skips: tuple[SkippedItem, ...] = ()


# ---- OAI-PMH --------------------------------------------------------------------------------

_OAI = "{http://www.openarchives.org/OAI/2.0/}"
_ARXIV = "{http://arxiv.org/OAI/arXiv/}"


def parse_oai(data: bytes) -> tuple[Paper, ...]:
    """Papers of an OAI-PMH ListRecords/GetRecord answer in arXiv's `arXiv` metadata format."""
    return parse_oai_page(data).papers


def parse_oai_page(data: bytes) -> OaiPage:
    """Like `parse_oai`, plus the resumption token a harvester needs for the next page."""
    return _parse_oai_checked(_open_document(data, "OAI-PMH", "an OAI-PMH response"))


def _parse_oai_checked(data: bytes) -> OaiPage:
    """A complete OAI-PMH document's page (`_open_document` checked that)."""
    root = _parse_xml(data)
    if root.tag != f"{_OAI}OAI-PMH":
        raise FeedError("not an OAI-PMH 2.0 response")
    error = root.find(f"{_OAI}error")
    if error is not None:
        code = error.get("code") or "unknown"
        if code == "noRecordsMatch":  # a harvest window with nothing in it
            return OaiPage((), None, 0, None)
        raise ArxivApiError(f"OAI-PMH error {_short(code, 40)}: {_short(error.text or '', 160)}")
    container = root.find(f"{_OAI}ListRecords")
    if container is None:
        container = root.find(f"{_OAI}GetRecord")
    if container is None:
        raise FeedError("OAI-PMH response has neither ListRecords nor GetRecord")

    papers: list[Paper] = []
    skips: list[SkippedItem] = []
    deleted = other_format = 0
    for index, record in enumerate(container.iterfind(f"{_OAI}record")):
        header = record.find(f"{_OAI}header")
        if header is not None and header.get("status") == "deleted":
            deleted += 1
            continue
        identifier = header.findtext(f"{_OAI}identifier") if header is not None else None
        metadata = record.find(f"{_OAI}metadata/{_ARXIV}arXiv")
        try:
            if metadata is None:
                other_format += 1
                raise ItemSkippedError("no metadata in the arXiv format")
            papers.append(_oai_paper(metadata))
        except Exception as exc:  # one bad record never sinks the page
            skips.append(_skipped(index, identifier, exc))
    _log_skips("oai", skips)
    if other_format and not papers:
        raise FeedError("no OAI-PMH record in the arXiv metadata format (metadataPrefix=arXiv)")

    token = container.find(f"{_OAI}resumptionToken")
    attrs = token.attrib if token is not None else {}
    token_text = (token.text or "").strip() if token is not None else ""
    return OaiPage(
        papers=tuple(papers),
        resumption_token=token_text or None,
        complete_list_size=_int_or_none(attrs.get("completeListSize")),
        cursor=_int_or_none(attrs.get("cursor")),
        skipped=len(skips),
        deleted=deleted,
        skips=tuple(skips),
    )


def _oai_date(text: str | None, what: str) -> datetime | None:
    """A `YYYY-MM-DD` date, None when absent; ItemSkippedError when unreadable or out of range."""
    if not text or not text.strip():
        return None
    try:
        when: datetime | None = datetime.fromisoformat(text.strip()[:10]).replace(tzinfo=UTC)
    except ValueError:
        when = None
    if when is None or not date_in_range(when):
        raise ItemSkippedError(f"{what} {_short(text, 40)!r} is unreadable or out of range")
    return when


def _oai_paper(meta: ET.Element) -> Paper:
    """One record as a Paper; raises (ItemSkippedError with the reason) when it is unusable."""
    author_parts = [
        (
            author.findtext(f"{_ARXIV}forenames"),
            author.findtext(f"{_ARXIV}keyname"),
            author.findtext(f"{_ARXIV}suffix"),
        )
        for author in meta.iterfind(f"{_ARXIV}authors/{_ARXIV}author")
    ]
    raw_categories = meta.findtext(f"{_ARXIV}categories") or ""
    check_caps(
        title=len(meta.findtext(f"{_ARXIV}title") or ""),
        abstract=len(meta.findtext(f"{_ARXIV}abstract") or ""),
        authors=sum(len(p or "") for parts in author_parts for p in parts),
        author_count=len(author_parts),
        comment=len(meta.findtext(f"{_ARXIV}comments") or ""),
        journal_reference=len(meta.findtext(f"{_ARXIV}journal-ref") or ""),
        doi=len(meta.findtext(f"{_ARXIV}doi") or ""),
        categories=len(raw_categories),
    )
    arxiv_id = parse_arxiv_id_or_none(meta.findtext(f"{_ARXIV}id") or "")
    title = _clean(meta.findtext(f"{_ARXIV}title"))
    if arxiv_id is None or not title:
        raise ItemSkippedError("no arXiv id" if arxiv_id is None else "no title")
    authors: list[str] = []
    for parts in author_parts:
        name = clean_author_name(" ".join(p for p in parts if p))
        if name:
            authors.append(name)
    categories = _categories(raw_categories.split())
    created = _oai_date(meta.findtext(f"{_ARXIV}created"), "created")
    updated = _oai_date(meta.findtext(f"{_ARXIV}updated"), "updated")
    return Paper(
        id=arxiv_id.id,
        # The arXiv format names no version; `updated` only exists once there
        # is a v2, so 2 is the least the version can be then.
        version=arxiv_id.version or (2 if updated is not None else 1),
        title=title,
        abstract=_clean(meta.findtext(f"{_ARXIV}abstract")),
        authors=tuple(authors),
        primary_category=categories[0] if categories else "",
        categories=categories,
        published=created,
        updated=updated,
        comment=_optional(meta.findtext(f"{_ARXIV}comments")),
        journal_ref=_optional(meta.findtext(f"{_ARXIV}journal-ref")),
        doi=_optional(meta.findtext(f"{_ARXIV}doi")),
    )
