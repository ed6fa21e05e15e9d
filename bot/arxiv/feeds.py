"""Parse arXiv's documents (RSS listings, API/author Atom feeds, OAI-PMH) into `Paper` records.

Bytes in, typed papers out, no I/O: fetching is `bot.arxiv.client`'s job and
storing is `storage`'s. This is the only module that imports feedparser, which
reads the Atom documents (API answers, author feeds: small, and varied enough
to want its tolerance). The daily RSS listing and OAI-PMH are read with expat
into ElementTree, which is about twenty times faster on a 1,500-item listing.

Every parser first refuses bodies that are not a complete feed: empty bodies,
arXiv's HTTP-200 `Rate exceeded.`, HTML error pages, documents with a DOCTYPE
(entity expansion is not something a feed needs) and documents cut off before
their closing root tag. A truncated listing must fail loudly; half a listing
stored as if it were whole would lose papers without anyone noticing.

Text is normalised the same way for every source: titles, abstracts and the
other free-text fields have line breaks and runs of whitespace collapsed;
author names lose their parenthesised affiliations, and TeX accents
(`Del\\'etang`, `Przemys{\\l}aw`, which the RSS feeds and OAI metadata carry)
become Unicode, so a name reads the same whichever feed it came from.

Feed text is a stranger's: every cleaner here runs in linear time (no regex
that can backtrack over a long run, no loop that rescans the text), and a
record over a size cap (`bot.arxiv.caps`), with an out-of-range date or that
trips anything else is skipped whole and reported with its reason
(`SkippedItem`), never allowed to sink the rest of the document. Parsing is
CPU work: callers on an event loop run it in a worker thread.
"""

from __future__ import annotations

import html
import io
import logging
import re
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from xml.parsers import expat

import feedparser

from bot.arxiv.caps import ItemSkippedError, check_caps, date_in_range
from bot.arxiv.ids import ArxivId, parse_arxiv_id_or_none
from storage.models import AnnounceType, Paper

log = logging.getLogger(__name__)


class FeedError(Exception):
    """The body is not a usable arXiv document; the message is short and safe to log."""


class RateExceededError(FeedError):
    """arXiv answered HTTP 200 with the body `Rate exceeded.`: back off and retry later."""


class ArxivApiError(FeedError):
    """arXiv answered with an error document: API `Error` entry, OAI-PMH `<error>`, feed error."""


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """A record left out of a parse result: its position, its id as given, and why."""

    index: int
    ref: str  # guid/id text as the document gave it, shortened; "" when it had none
    reason: str

    def __str__(self) -> str:
        ref = f" ({self.ref})" if self.ref else ""
        return f"item {self.index + 1}{ref} skipped: {self.reason}"


@dataclass(frozen=True, slots=True)
class RssListing:
    """One rss.arxiv.org listing.

    `build_date` identifies the listing: the channel `pubDate` (the announcement
    day, midnight US Eastern), falling back to `lastBuildDate`. The latter is the
    time the XML was generated and moves with every rebuild of an unchanged
    listing, so it is kept separately in `last_build_date` for information only.
    """

    papers: tuple[Paper, ...]
    build_date: datetime | None
    skipped: int = 0
    pub_date: datetime | None = None
    last_build_date: datetime | None = None
    skips: tuple[SkippedItem, ...] = ()
    items: int = 0  # <item> elements in the document, skipped ones included


@dataclass(frozen=True, slots=True)
class AtomResult:
    """One page of API results (or an author feed, which has no opensearch counts)."""

    papers: tuple[Paper, ...]
    total_results: int | None
    start_index: int | None
    items_per_page: int | None = None
    skipped: int = 0
    skips: tuple[SkippedItem, ...] = ()


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


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """The papers of any saved document (`parse_document_report`) and what was skipped."""

    papers: tuple[Paper, ...]
    skips: tuple[SkippedItem, ...] = ()


# ---- document checks ------------------------------------------------------------------------


class _RootFound(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


class _DoctypeFound(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


_SNIFF_CHUNK = 16384
_HTML_TITLE = re.compile(rb"<title[^>]*>(.{0,400}?)</title", re.IGNORECASE | re.DOTALL)


def _short(text: str, limit: int = 120) -> str:
    """One line, at most `limit` characters: safe to put in a log line or an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _html_error(data: bytes) -> FeedError:
    found = _HTML_TITLE.search(data, 0, 8192)
    title = _short(found.group(1).decode("utf-8", "replace"), 80) if found else ""
    suffix = f" (title: {title!r})" if title else ""
    return FeedError(f"got an HTML page instead of a feed{suffix}")


def _prepare(data: bytes) -> tuple[bytes, str]:
    """Leading whitespace dropped (an XML declaration must come first), and the root's name."""
    data = data.lstrip()
    return data, _sniff(data)


def _sniff(data: bytes) -> str:
    """Return the root element's local name after refusing bodies that cannot be a feed."""
    head = data[:256]
    if not head:
        raise FeedError("empty response body")
    if head.lower().startswith(b"rate exceeded"):
        raise RateExceededError("arXiv answered 'Rate exceeded.'")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00"):
        raise FeedError("UTF-16 documents are not supported")

    parser = expat.ParserCreate(namespace_separator=" ")

    def on_start(name: str, _attrs: object) -> None:
        raise _RootFound(name.rpartition(" ")[2])

    def on_doctype(name: str, *_rest: object) -> None:
        raise _DoctypeFound(name)

    parser.StartElementHandler = on_start
    parser.StartDoctypeDeclHandler = on_doctype
    try:
        # Only the prolog is parsed: the handlers stop at the root element.
        for offset in range(0, len(data), _SNIFF_CHUNK):
            parser.Parse(data[offset : offset + _SNIFF_CHUNK], False)
        parser.Parse(b"", True)
    except _RootFound as root:
        if root.name.lower() == "html":
            raise _html_error(data) from None
        return root.name
    except _DoctypeFound as doctype:
        if doctype.name.lower() == "html":
            raise _html_error(data) from None
        raise FeedError("documents with a DOCTYPE are refused") from None
    except expat.ExpatError as exc:
        if b"<html" in data[:2048].lower():
            raise _html_error(data) from None
        raise FeedError(f"not an XML document ({_short(str(exc), 80)})") from None
    except (LookupError, ValueError) as exc:  # pyexpat: unknown or multi-byte encodings
        raise FeedError(f"unreadable encoding ({_short(str(exc), 80)})") from None
    raise FeedError("no root element in the document")


def _require_complete(data: bytes, root: str) -> None:
    """Refuse a document that does not end with its root's closing tag (a cut-off download)."""
    tail = data[-4096:].rstrip()
    # Comments and processing instructions may legally follow the root element.
    while tail.endswith((b"-->", b"?>")):
        opener = b"<!--" if tail.endswith(b"-->") else b"<?"
        cut = tail.rfind(opener)
        if cut < 0:
            break
        tail = tail[:cut].rstrip()
    closing = re.search(rb"</(?:[\w.-]+:)?([\w.-]+)\s*>\Z", tail[-300:])
    if closing is None or closing.group(1).decode("ascii", "replace") != root:
        raise FeedError(f"truncated document: no closing </{root}> after {len(data)} bytes")


def _feedparser(data: bytes) -> Any:
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


class _Refused(Exception):
    pass


def _qualified(name: str) -> str:
    # expat with namespace_separator="}" reports "uri}local"; ElementTree wants "{uri}local".
    return "{" + name if "}" in name else name


_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)""")
_ENCODING_ERRORS = frozenset(
    expat.errors.codes[message]
    for message in (
        expat.errors.XML_ERROR_INVALID_TOKEN,
        expat.errors.XML_ERROR_UNKNOWN_ENCODING,
        expat.errors.XML_ERROR_INCORRECT_ENCODING,
    )
)


def _parse_xml(data: bytes) -> ET.Element:
    """ElementTree from expat, with DOCTYPE and entity declarations refused outright.

    A document whose declared encoding is wrong (UTF-8 bytes declared as
    us-ascii) is read again as UTF-8, as feedparser would, with a warning.
    """
    try:
        return _build_tree(data, None)
    except (LookupError, ValueError) as exc:
        raise FeedError(f"unreadable encoding ({_short(str(exc), 80)})") from None
    except expat.ExpatError as exc:
        declared = _DECLARED_ENCODING.match(data, 0, 200)
        name = declared.group(1).decode("ascii").lower() if declared else "utf-8"
        if exc.code not in _ENCODING_ERRORS or name in ("utf-8", "utf8"):
            raise FeedError(f"malformed XML ({_short(str(exc), 80)})") from None
    log.warning("document declares encoding %r but is not; reading it as UTF-8", name)
    try:
        return _build_tree(data, "utf-8")
    except expat.ExpatError as exc:
        raise FeedError(f"malformed XML ({_short(str(exc), 80)})") from None


def _build_tree(data: bytes, encoding: str | None) -> ET.Element:
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(encoding, namespace_separator="}")

    def refuse(*_args: object) -> None:
        raise _Refused

    def on_start(name: str, attrs: dict[str, str]) -> None:
        if "}" in name:
            name = "{" + name
        builder.start(name, {_qualified(k): v for k, v in attrs.items()} if attrs else {})

    def on_end(name: str) -> None:
        builder.end("{" + name if "}" in name else name)

    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except _Refused:
        raise FeedError("documents with a DOCTYPE are refused") from None
    return builder.close()


# ---- text helpers ---------------------------------------------------------------------------


def _clean(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _optional(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    cleaned = " ".join(text.split())
    return cleaned or None


_COMBINING_ACCENTS = {
    "'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
    ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
    "r": "\u030a", "d": "\u0323", "b": "\u0331",
}  # fmt: skip
_TEX_LETTERS = {
    "ss": "ß", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ",
    "o": "ø", "O": "Ø", "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ",
    "dh": "ð", "DH": "Ð", "th": "þ", "TH": "Þ", "dj": "đ", "DJ": "Đ", "ng": "ŋ", "NG": "Ŋ",
}  # fmt: skip
# \'e \'{e} {\'e} \'{\i} \"o ; the lettered accents (\v, \c, ...) need a brace
# or a space before their base letter: `\v{c}`, `\c c`.
_TEX_ACCENT = re.compile(
    r"""\\(?:([`'^"~=.])|([uvHckrdb])(?=[\s{]))\s*(?:\{\s*(\\[ij]|[A-Za-z])\s*\}|(\\[ij]|[A-Za-z]))"""
)
# \l \o \ss \aa ... as whole control words; TeX swallows one space after them.
# `\dh` is matched even when glued to the next word: arXiv's metadata has
# `Gu\dhmundur`, and no TeX command a name would use starts with it.
_TEX_LETTER = re.compile(
    r"\\(?:(dh|DH)|(ss|aa|AA|ae|AE|oe|OE|th|TH|dj|DJ|ng|NG|o|O|l|L|i|j)(?![A-Za-z]))"
    r"(?:\{\}|\s(?=[A-Za-z]))?"
)


def _accent(match: re.Match[str]) -> str:
    mark = _COMBINING_ACCENTS[match[1] or match[2]]
    base = match[3] or match[4]
    if base.startswith("\\"):  # \'\i: the accent replaces the dot
        base = base[1:]
    return unicodedata.normalize("NFC", base + mark)


def tex_accents_to_unicode(text: str) -> str:
    """`Del\\'etang` -> `Delétang`, `Przemys{\\l}aw` -> `Przemysław`, grouping braces dropped.

    Text without a backslash is returned unchanged; unknown macros are kept.
    """
    if "\\" not in text:
        return text
    text = _TEX_ACCENT.sub(_accent, text)
    text = _TEX_LETTER.sub(lambda m: _TEX_LETTERS[m[1] or m[2]], text)
    return unicodedata.normalize("NFC", text.replace("{", "").replace("}", ""))


_PAREN_RUN = re.compile(r"\(+|\)+")
# " and " separates authors ("A, B and C") except inside a group's own name.
_GROUP_WORDS = ("collaboration", "consortium", "team", "group", "project", "survey", "network")


def clean_author_name(name: str) -> str:
    """Strip an affiliation in parentheses, TeX accents and extra whitespace from one name."""
    if "(" in name:
        name = _strip_parenthesised(name)
    if "\\" in name or "{" in name:
        name = tex_accents_to_unicode(name).replace("{", "").replace("}", "")
    return " ".join(name.split())


def _strip_parenthesised(text: str) -> str:
    """Drop every balanced `(...)` group, nested ones included, with the whitespace before it.

    An unclosed `(` and a stray `)` stay. One pass over runs of parentheses with a
    stack of open runs: linear however deep the nesting or long the runs of spaces
    (a regex loop stripping innermost groups first was quadratic on both).
    """
    if ")" not in text:
        return text
    pieces: list[str] = []
    # [index in `pieces` of a run of "(", how many of them are still open]; the run's
    # piece is a placeholder until the end, so closing part of a long run copies nothing.
    opened: list[list[int]] = []
    pos = 0
    for run in _PAREN_RUN.finditer(text):
        start, end = run.span()
        if start > pos:
            pieces.append(text[pos:start])
        pos = end
        count = end - start
        if text[start] == "(":
            opened.append([len(pieces), count])
            pieces.append("")
            continue
        closed_run = False
        while count and opened:
            index, still_open = opened[-1]
            if still_open > count:  # the innermost `count` groups of this run close
                opened[-1][1] = still_open - count
                del pieces[index + 1 :]
                count, closed_run = 0, False
            else:
                opened.pop()
                del pieces[index:]
                count -= still_open
                closed_run = True
        if closed_run:
            # The whitespace before the group goes with it. Each piece is trimmed at
            # most once (after that it ends in a non-space), so this stays linear.
            floor = opened[-1][0] + 1 if opened else 0
            while len(pieces) > floor and (not pieces[-1] or pieces[-1][-1].isspace()):
                trimmed = pieces[-1].rstrip()
                if trimmed:
                    pieces[-1] = trimmed
                    break
                pieces.pop()
        if count:  # more ")" than open groups: the rest stay
            pieces.append(")" * count)
    pieces.append(text[pos:])
    for index, still_open in opened:
        pieces[index] = "(" * still_open
    return "".join(pieces)


def split_author_list(text: str) -> tuple[str, ...]:
    """Split arXiv's one-string author list (`dc:creator`) into names, order kept.

    Names are separated by commas (never inside a name in this field: arXiv
    writes `Bill Gates Jr`), and by "and"/", and" as people type them.
    Parenthesised affiliations, which do contain commas, are removed first.
    """
    if "(" in text:
        text = _strip_parenthesised(text)
    names: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part[:4].lower() == "and ":
            part = part[4:]
        if " and " in part and not any(word in part.lower() for word in _GROUP_WORDS):
            pieces: Iterable[str] = part.split(" and ")
        else:
            pieces = (part,)
        for piece in pieces:
            name = clean_author_name(piece)
            if name and name.lower().rstrip(".") != "et al":
                names.append(name)
    return tuple(names)


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
_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)?(?:\.[A-Za-z]+(?:-[A-Za-z]+)?)?")


def _categories(terms: Iterable[Any], primary: str | None = None) -> tuple[str, ...]:
    ordered = [primary] if primary else []
    ordered.extend(t.strip() for t in terms if isinstance(t, str))
    return tuple(dict.fromkeys(t for t in ordered if _CATEGORY.fullmatch(t)))


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


_ANNOUNCE_TYPES = {
    "new": AnnounceType.NEW,
    "cross": AnnounceType.CROSS,
    "replace": AnnounceType.REPLACE,
    "replace-cross": AnnounceType.REPLACE_CROSS,
    # arXiv's feed code also knows "absonly": a replacement of the metadata alone.
    "absonly": AnnounceType.REPLACE,
}

# rss.arxiv.org descriptions: "arXiv:2411.17700v1 Announce Type: new \nAbstract: ..."
_DESCRIPTION_PREFIX = re.compile(r"\s*arXiv:(\S+)\s+Announce Type:\s*(\S+)\s*")
_ABSTRACT_MARK = "Abstract:"


def _split_description(text: str) -> tuple[str | None, str | None, str]:
    """(id text, announce type, abstract) from an announcement description."""
    prefix = _DESCRIPTION_PREFIX.match(text)
    if prefix is None:
        return None, None, text
    rest = text[prefix.end() :]
    if rest.startswith(_ABSTRACT_MARK):
        rest = rest[len(_ABSTRACT_MARK) :]
    return prefix[1], prefix[2], rest


def _entry_str(entry: Any, key: str) -> str | None:
    value = dict.get(entry, key)
    return value if isinstance(value, str) else None


# ---- RSS ------------------------------------------------------------------------------------


def parse_rss(data: bytes) -> RssListing:
    """Parse an rss.arxiv.org listing; an empty listing (weekend, holiday) is valid."""
    data, root = _prepare(data)
    if root != "rss":
        raise FeedError(f"expected an RSS feed, got a <{root}> document")
    return _parse_rss_checked(data, root)


def _parse_rss_checked(data: bytes, root: str) -> RssListing:
    # The daily listing is big (1,500+ items) and always well-formed XML from
    # arXiv's generator, so it is read with expat into ElementTree: a twentieth
    # of feedparser's time, and just as strict about truncation.
    _require_complete(data, root)
    channel = _parse_xml(data).find("channel")
    if channel is None:
        raise FeedError("RSS document without a <channel>")
    title = _clean(channel.findtext("title"))
    if title.startswith("Feed error"):
        detail = _short(channel.findtext("description") or title)
        raise ArxivApiError(f"arXiv feed error: {detail}")

    dates: dict[str, datetime | None] = {}
    papers: list[Paper] = []
    skips: list[SkippedItem] = []
    unknown_types: set[str] = set()
    index = -1
    for index, item in enumerate(channel.iterfind("item")):
        try:
            papers.append(_rss_paper(item, dates, unknown_types))
        except Exception as exc:  # one bad item never sinks the listing
            skips.append(_skipped(index, item.findtext("guid"), exc))
    _log_skips("rss", skips)
    if unknown_types:
        log.info("rss listing has unknown announce types: %s", ", ".join(sorted(unknown_types)))

    pub_date = _channel_date(channel, "pubDate", dates)
    last_build = _channel_date(channel, "lastBuildDate", dates)
    return RssListing(
        papers=tuple(papers),
        build_date=pub_date or last_build,
        skipped=len(skips),
        pub_date=pub_date,
        last_build_date=last_build,
        skips=tuple(skips),
        items=index + 1,
    )


def _skipped(index: int, ref: Any, exc: Exception) -> SkippedItem:
    if isinstance(exc, ItemSkippedError):
        reason = str(exc)
    else:  # a bug or a shape no one foresaw: say what it was, briefly
        reason = f"unreadable ({type(exc).__name__}: {_short(str(exc), 80)})"
    return SkippedItem(index, _short(ref, 60) if isinstance(ref, str) else "", reason)


_LOGGED_SKIPS = 10


def _log_skips(kind: str, skips: list[SkippedItem]) -> None:
    """One warning per skipped record, the first few only: a hostile document can hold thousands."""
    for skip in skips[:_LOGGED_SKIPS]:
        log.warning("%s %s", kind, skip)
    if len(skips) > _LOGGED_SKIPS:
        log.warning("%s: %d more items skipped", kind, len(skips) - _LOGGED_SKIPS)


def _channel_date(
    channel: ET.Element, tag: str, cache: dict[str, datetime | None]
) -> datetime | None:
    """A channel date, or None (unknown) when it is missing, unreadable or out of range."""
    text = channel.findtext(tag)
    try:
        return _rfc822(text, cache)
    except ItemSkippedError as exc:
        log.warning("rss channel %s ignored: %s", tag, exc)
        return None


_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
_ARXIV_NS = "{http://arxiv.org/schemas/atom}"
_ANNOUNCE_TYPE = _ARXIV_NS + "announce_type"
_RSS_DOI = _ARXIV_NS + "DOI"
_RSS_JOURNAL_REF = _ARXIV_NS + "journal_reference"


def _rfc822(text: str | None, cache: dict[str, datetime | None]) -> datetime | None:
    """An RSS date in UTC, None when absent; every item of a listing shares one, so each
    string is parsed once. Raises ItemSkippedError for a date that is unreadable or out
    of range (`Fri, 31 Dec 9999 23:00:00 -1200` overflows on conversion to UTC)."""
    if not text or not text.strip():
        return None
    if text not in cache:
        try:
            parsed = parsedate_to_datetime(text.strip())
            # "-0000" means "UTC, origin unknown" and parses as naive.
            aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            when: datetime | None = aware.astimezone(UTC)
        except (TypeError, ValueError, OverflowError, IndexError):
            when = None
        cache[text] = when if when is not None and date_in_range(when) else None
    found = cache[text]
    if found is None:
        raise ItemSkippedError(f"date {_short(text, 40)!r} is unreadable or out of range")
    return found


def _rss_paper(
    item: ET.Element, dates: dict[str, datetime | None], unknown_types: set[str]
) -> Paper:
    """One item as a Paper; raises (ItemSkippedError with the reason) when it is unusable."""
    # One pass over the children instead of a find() per field.
    fields: dict[str, str | None] = {}
    terms: list[str] = []
    for child in item:
        if child.tag == "category":
            terms.append(child.text or "")
        else:
            fields[child.tag] = child.text

    guid = fields.get("guid")
    creators = fields.get(_DC_CREATOR)
    check_caps(
        title=len(fields.get("title") or ""),
        abstract=len(fields.get("description") or ""),
        authors=len(creators or ""),
        journal_reference=len(fields.get(_RSS_JOURNAL_REF) or ""),
        doi=len(fields.get(_RSS_DOI) or ""),
        categories=sum(len(t) for t in terms),
        category_count=len(terms),
    )
    desc_id, desc_type, abstract = _split_description(fields.get("description") or "")
    arxiv_id = _first_id(guid, desc_id, fields.get("link"))
    title = _clean(fields.get("title"))
    if arxiv_id is None or not title:
        raise ItemSkippedError("no arXiv id" if arxiv_id is None else "no title")

    raw_type = fields.get(_ANNOUNCE_TYPE) or desc_type
    announce = _ANNOUNCE_TYPES.get(raw_type.strip().lower()) if raw_type else None
    if raw_type and announce is None:
        unknown_types.add(_short(raw_type, 30))

    categories = _categories(terms)
    authors = split_author_list(creators) if creators else ()
    check_caps(author_count=len(authors))
    return Paper(
        id=arxiv_id.id,
        # No version anywhere (never seen from arXiv): 1 is the least it can be.
        version=arxiv_id.version or 1,
        title=title,
        abstract=_clean(abstract),
        authors=authors,
        primary_category=categories[0] if categories else "",
        categories=categories,
        published=_rfc822(fields.get("pubDate"), dates),
        journal_ref=_optional(fields.get(_RSS_JOURNAL_REF)),
        doi=_optional(fields.get(_RSS_DOI)),
        announce_type=announce,
    )


def _first_id(*candidates: str | None) -> ArxivId | None:
    """The first candidate that parses, with its version taken from a later one if it has none."""
    found = [p for p in (parse_arxiv_id_or_none(c) for c in candidates if c) if p is not None]
    if not found:
        return None
    first = found[0]
    if first.version is None:
        for other in found[1:]:
            if other.id == first.id and other.version is not None:
                return other
    return first


# ---- Atom -----------------------------------------------------------------------------------

_API_ERROR_IDS = ("http://arxiv.org/api/errors", "https://arxiv.org/api/errors")
# `[^<>]`, not `[^>]`: on a run of `<` without `>` the latter rescans to the end from each one.
_HTML_TAG = re.compile(r"<[^<>]+>")


def parse_atom(data: bytes) -> AtomResult:
    """Parse an API answer (`/api/query`) or an author feed (`arxiv.org/a/ID.atom`)."""
    data, root = _prepare(data)
    if root != "feed":
        raise FeedError(f"expected an Atom feed, got a <{root}> document")
    return _parse_atom_checked(data, root)


def _parse_atom_checked(data: bytes, root: str) -> AtomResult:
    _require_complete(data, root)
    parsed = _feedparser(data)
    version = parsed.get("version") or ""
    if not version.startswith("atom"):
        raise FeedError(f"unsupported Atom flavour {version or 'unknown'!r}")
    entries = parsed.get("entries") or ()
    for entry in entries:
        _raise_if_api_error(entry)

    papers: list[Paper] = []
    skips: list[SkippedItem] = []
    for index, entry in enumerate(entries):
        try:
            papers.append(_atom_paper(entry))
        except Exception as exc:  # one bad entry never sinks the feed
            skips.append(_skipped(index, _entry_str(entry, "id"), exc))
    _log_skips("atom", skips)

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


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text.isascii():  # int() would read `１２` and `١٢` too
        return None
    try:
        return int(text)
    except ValueError:
        return None


# ---- OAI-PMH --------------------------------------------------------------------------------

_OAI = "{http://www.openarchives.org/OAI/2.0/}"
_ARXIV = "{http://arxiv.org/OAI/arXiv/}"


def parse_oai(data: bytes) -> tuple[Paper, ...]:
    """Papers of an OAI-PMH ListRecords/GetRecord answer in arXiv's `arXiv` metadata format."""
    return parse_oai_page(data).papers


def parse_oai_page(data: bytes) -> OaiPage:
    """Like `parse_oai`, plus the resumption token a harvester needs for the next page."""
    data, root = _prepare(data)
    if root != "OAI-PMH":
        raise FeedError(f"expected an OAI-PMH response, got a <{root}> document")
    return _parse_oai_checked(data, root)


def _parse_oai_checked(data: bytes, root_name: str) -> OaiPage:
    _require_complete(data, root_name)
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


# ---- any document ---------------------------------------------------------------------------


def parse_document(data: bytes) -> tuple[Paper, ...]:
    """Papers of a saved RSS listing, Atom feed or OAI-PMH response, whichever `data` is."""
    return parse_document_report(data).papers


def parse_document_report(data: bytes) -> ParsedDocument:
    """Like `parse_document`, with the records that were skipped and why."""
    data, root = _prepare(data)
    result: RssListing | AtomResult | OaiPage
    if root == "rss":
        result = _parse_rss_checked(data, root)
    elif root == "feed":
        result = _parse_atom_checked(data, root)
    elif root == "OAI-PMH":
        result = _parse_oai_checked(data, root)
    else:
        raise FeedError(f"unsupported document: root element <{_short(root, 40)}>")
    return ParsedDocument(result.papers, result.skips)
