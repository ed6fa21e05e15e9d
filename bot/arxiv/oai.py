"""Parse arXiv's OAI-PMH answers (`ListRecords`, `GetRecord`) into `Paper` records.

Two metadata formats are read: `arXivRaw` (authors as one string, and every
version with its date, so `published` is the v1 date and `version` the
latest) and `arXiv` (authors split into keyname/forenames/suffix, only the
`created`/`updated` days). Bytes in, typed page out, no I/O.

An answer is a stranger's XML: it is parsed with expat and refused outright
if it declares a DOCTYPE or entities (no entity expansion, no external
fetches), nesting is capped, and a page may hold at most `MAX_RECORDS`
records; text fields are cut to sane lengths. A body cut off before the
closing `</OAI-PMH>` fails, so half a page is never stored as a whole one.
OAI-PMH errors come back as `OaiError` with the protocol's code
(`badResumptionToken`, `badArgument`, ...); `noRecordsMatch` is an empty,
final page.
"""

from __future__ import annotations

import contextlib
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.parsers import expat

from bot.arxiv.document import ArxivApiError, FeedError, _build_tree, _short
from bot.arxiv.snapshot import parse_created
from bot.arxiv.text import clean_author_name, split_author_list
from bot.domain.ids import parse_arxiv_id_or_none
from bot.domain.models import Paper

log = logging.getLogger(__name__)

FORMATS = ("arXivRaw", "arXiv")
MAX_RECORDS = 10_000  # arXiv serves ~1,000 a page
MAX_DEPTH = 32
MAX_TEXT = 50_000
MAX_AUTHORS = 5_000

_OAI = "{http://www.openarchives.org/OAI/2.0/}"
_RAW = "{http://arxiv.org/OAI/arXivRaw/}"
_ARXIV = "{http://arxiv.org/OAI/arXiv/}"


class OaiError(ArxivApiError):
    """An OAI-PMH `<error>` answer; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"OAI-PMH error {code}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True)
class OaiPage:
    """One ListRecords/GetRecord answer. `resumption_token` is None on the last page."""

    papers: tuple[Paper, ...]
    resumption_token: str | None
    complete_list_size: int | None = None
    cursor: int | None = None
    records: int = 0  # record elements on the page, deleted and skipped ones included
    deleted: int = 0
    skipped: int = 0


class _Refused(Exception):
    pass


def _tree(data: bytes) -> ET.Element:
    """The document as an ElementTree, DOCTYPEs/entities refused and depth capped."""
    try:
        return _build_tree(
            data,
            None,
            max_depth=MAX_DEPTH,
            refused="documents with a DOCTYPE or entities are refused",
        )
    except expat.ExpatError as exc:
        if exc.code == expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]:
            raise FeedError("truncated or empty OAI-PMH answer") from None
        raise FeedError(f"malformed XML ({_short(str(exc), 80)})") from None
    except (LookupError, ValueError) as exc:
        raise FeedError(f"unreadable encoding ({_short(str(exc), 80)})") from None


def is_oai_document(data: bytes) -> bool:
    """Whether `data` looks like an OAI-PMH answer (the root element's name, cheaply)."""
    head = data[:4096].lstrip()
    if not head.startswith(b"<"):
        return False
    found: list[str] = []
    parser = expat.ParserCreate(None, namespace_separator="}")

    def start(name: str, _attrs: object) -> None:
        found.append(name.rpartition("}")[2])
        raise _Refused

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = lambda *_: None
    with contextlib.suppress(_Refused, expat.ExpatError, LookupError, ValueError):
        parser.Parse(head, False)
    return found[:1] == ["OAI-PMH"]


def _text(element: ET.Element | None, limit: int = MAX_TEXT) -> str:
    if element is None or not element.text:
        return ""
    return " ".join(element.text[:limit].split())


def _int(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or len(value) > 12:
        return None
    return int(value)


def _day(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)
    except ValueError:
        return None


def _categories(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in text.split() if len(c) <= 40))


def _raw_paper(meta: ET.Element) -> Paper | None:
    """A record in the `arXivRaw` format."""
    arxiv_id = parse_arxiv_id_or_none(_text(meta.find(f"{_RAW}id"), 200))
    title = _text(meta.find(f"{_RAW}title"))
    if arxiv_id is None or not title:
        return None
    version = 0
    first: datetime | None = None
    last: datetime | None = None
    for item in meta.iterfind(f"{_RAW}version"):
        label = item.get("version") or ""
        number = int(label[1:]) if label[:1] == "v" and label[1:].isdigit() else 0
        created = parse_created(_text(item.find(f"{_RAW}date"), 64))
        if created is not None:
            first = created if first is None or created < first else first
            if number >= version:
                last = created
        version = max(version, number)
    categories = _categories(_text(meta.find(f"{_RAW}categories"), 2_000))
    authors = split_author_list(_text(meta.find(f"{_RAW}authors"), 200_000))[:MAX_AUTHORS]
    return Paper(
        id=arxiv_id.id,
        version=max(version, arxiv_id.version or 1),
        title=title,
        abstract=_text(meta.find(f"{_RAW}abstract")),
        authors=authors,
        primary_category=categories[0] if categories else "",
        categories=categories,
        published=first,
        updated=last,
        comment=_text(meta.find(f"{_RAW}comments"), 2_000) or None,
        journal_ref=_text(meta.find(f"{_RAW}journal-ref"), 2_000) or None,
        doi=_text(meta.find(f"{_RAW}doi"), 2_000) or None,
    )


def _arxiv_paper(meta: ET.Element) -> Paper | None:
    """A record in the `arXiv` format (no version history: `updated` implies a v2)."""
    arxiv_id = parse_arxiv_id_or_none(_text(meta.find(f"{_ARXIV}id"), 200))
    title = _text(meta.find(f"{_ARXIV}title"))
    if arxiv_id is None or not title:
        return None
    authors: list[str] = []
    for author in meta.iterfind(f"{_ARXIV}authors/{_ARXIV}author"):
        parts = (
            _text(author.find(f"{_ARXIV}forenames"), 300),
            _text(author.find(f"{_ARXIV}keyname"), 300),
            _text(author.find(f"{_ARXIV}suffix"), 50),
        )
        name = clean_author_name(" ".join(p for p in parts if p))
        if name:
            authors.append(name)
        if len(authors) >= MAX_AUTHORS:
            break
    categories = _categories(_text(meta.find(f"{_ARXIV}categories"), 2_000))
    updated = _day(_text(meta.find(f"{_ARXIV}updated"), 40))
    return Paper(
        id=arxiv_id.id,
        version=arxiv_id.version or (2 if updated is not None else 1),
        title=title,
        abstract=_text(meta.find(f"{_ARXIV}abstract")),
        authors=tuple(authors),
        primary_category=categories[0] if categories else "",
        categories=categories,
        published=_day(_text(meta.find(f"{_ARXIV}created"), 40)),
        updated=updated,
        comment=_text(meta.find(f"{_ARXIV}comments"), 2_000) or None,
        journal_ref=_text(meta.find(f"{_ARXIV}journal-ref"), 2_000) or None,
        doi=_text(meta.find(f"{_ARXIV}doi"), 2_000) or None,
    )


def parse_list_records(data: bytes) -> OaiPage:
    """One OAI-PMH answer (ListRecords or GetRecord, `arXivRaw` or `arXiv` metadata)."""
    data = data.lstrip()
    if not data:
        raise FeedError("empty response body")
    if data[:13].lower().startswith(b"rate exceeded"):
        raise FeedError("arXiv answered 'Rate exceeded.'")
    root = _tree(data)
    if root.tag != f"{_OAI}OAI-PMH":
        raise FeedError(f"expected an OAI-PMH answer, got <{_short(root.tag, 80)}>")
    error = root.find(f"{_OAI}error")
    if error is not None:
        code = _short(error.get("code") or "unknown", 40)
        if code == "noRecordsMatch":  # a harvest window with nothing in it
            return OaiPage((), None, 0, None)
        raise OaiError(code, _short(error.text or "", 160))
    container = root.find(f"{_OAI}ListRecords")
    if container is None:
        container = root.find(f"{_OAI}GetRecord")
    if container is None:
        raise FeedError("OAI-PMH answer has neither ListRecords nor GetRecord")

    papers: list[Paper] = []
    records = deleted = skipped = 0
    for record in container.iterfind(f"{_OAI}record"):
        records += 1
        if records > MAX_RECORDS:
            raise FeedError(f"more than {MAX_RECORDS:,} records on one page")
        header = record.find(f"{_OAI}header")
        if header is not None and header.get("status") == "deleted":
            deleted += 1
            continue
        raw = record.find(f"{_OAI}metadata/{_RAW}arXivRaw")
        meta = raw if raw is not None else record.find(f"{_OAI}metadata/{_ARXIV}arXiv")
        paper = None
        if meta is not None:
            paper = _raw_paper(meta) if raw is not None else _arxiv_paper(meta)
        if paper is None:
            skipped += 1
            identifier = header.findtext(f"{_OAI}identifier") if header is not None else None
            log.warning("oai record skipped identifier=%r", _short(identifier or "", 60))
        else:
            papers.append(paper)
    if skipped and not papers:
        raise FeedError("no record in the arXivRaw or arXiv metadata format on the page")

    token = container.find(f"{_OAI}resumptionToken")
    text = (token.text or "").strip()[:2_000] if token is not None else ""
    return OaiPage(
        papers=tuple(papers),
        resumption_token=text or None,
        complete_list_size=_int(token.get("completeListSize")) if token is not None else None,
        cursor=_int(token.get("cursor")) if token is not None else None,
        records=records,
        deleted=deleted,
        skipped=skipped,
    )
