"""What every arXiv document parser shares: its errors, the checks that refuse bodies that are
not a complete feed, a hardened expat reader, and the record of skipped items.

Every parser first refuses bodies that are not a complete feed: empty bodies,
arXiv's HTTP-200 `Rate exceeded.`, HTML error pages, documents with a DOCTYPE
(entity expansion is not something a feed needs) and documents cut off before
their closing root tag. A truncated listing must fail loudly; half a listing
stored as if it were whole would lose papers without anyone noticing.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from xml.parsers import expat

from bot.arxiv.caps import ItemSkippedError
from bot.domain.models import Paper

log = logging.getLogger(__name__)

_Item = TypeVar("_Item")


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


def _open_document(data: bytes, root_name: str, what: str) -> bytes:
    """The start of every parser's check: `data` (leading whitespace dropped) once it is
    a complete document whose root element is `root_name`; else FeedError naming `what`."""
    data, root = _prepare(data)
    if root != root_name:
        raise FeedError(f"expected {what}, got a <{root}> document")
    _require_complete(data, root)
    return data


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


def _build_tree(
    data: bytes,
    encoding: str | None,
    *,
    max_depth: int | None = None,
    refused: str = "documents with a DOCTYPE are refused",
) -> ET.Element:
    """ElementTree from expat: a DOCTYPE or entity declaration fails as FeedError(`refused`),
    and so does nesting deeper than `max_depth`; expat's own errors are the caller's."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(encoding, namespace_separator="}")
    depth = 0

    def refuse(*_args: object) -> None:
        raise _Refused(refused)

    def on_start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if max_depth is not None and depth > max_depth:
            raise _Refused(f"nested deeper than {max_depth} elements")
        if "}" in name:
            name = "{" + name
        builder.start(name, {_qualified(k): v for k, v in attrs.items()} if attrs else {})

    def on_end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end("{" + name if "}" in name else name)

    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise FeedError(str(exc)) from None
    return builder.close()


def _skipped(index: int, ref: Any, exc: Exception) -> SkippedItem:
    if isinstance(exc, ItemSkippedError):
        reason = str(exc)
    else:  # a bug or a shape no one foresaw: say what it was, briefly
        reason = f"unreadable ({type(exc).__name__}: {_short(str(exc), 80)})"
    return SkippedItem(index, _short(ref, 60) if isinstance(ref, str) else "", reason)


def _papers_of(
    kind: str,
    items: Iterable[_Item],
    paper: Callable[[_Item], Paper],
    ref: Callable[[_Item], Any],
) -> tuple[list[Paper], list[SkippedItem], int]:
    """Each item's paper, the items skipped (logged as `kind`), and how many items there were.

    One bad item never sinks the document: whatever it raises skips it whole, with
    its reason and its `ref` (a guid or id) in the record.
    """
    papers: list[Paper] = []
    skips: list[SkippedItem] = []
    index = -1
    for index, item in enumerate(items):
        try:
            papers.append(paper(item))
        except Exception as exc:
            skips.append(_skipped(index, ref(item), exc))
    _log_skips(kind, skips)
    return papers, skips, index + 1


_LOGGED_SKIPS = 10


def _log_skips(kind: str, skips: list[SkippedItem]) -> None:
    """One warning per skipped record, the first few only: a hostile document can hold thousands."""
    for skip in skips[:_LOGGED_SKIPS]:
        log.warning("%s %s", kind, skip)
    if len(skips) > _LOGGED_SKIPS:
        log.warning("%s: %d more items skipped", kind, len(skips) - _LOGGED_SKIPS)


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
