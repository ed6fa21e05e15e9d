"""Parse any saved arXiv document (RSS listing, Atom feed, OAI-PMH answer) into `Paper` records.

One format per module: `bot.arxiv.rss` (daily listings), `bot.arxiv.atom` (API
answers and author feeds; the only user of feedparser), `bot.arxiv.oai_saved`
(OAI-PMH in the `arXiv` format), on the shared checks of `bot.arxiv.document`
and the text cleaners of `bot.arxiv.text`. This module picks the parser by the
document's root element and re-exports the parsers' public names for the
callers that read any of them.

Bytes in, typed papers out, no I/O: fetching is `bot.arxiv.client`'s job and
storing is `storage`'s. Parsing is CPU work: callers on an event loop run it
in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.arxiv.atom import AtomResult, _parse_atom_checked, parse_atom
from bot.arxiv.document import (
    ArxivApiError,
    FeedError,
    RateExceededError,
    SkippedItem,
    _prepare,
    _require_complete,
    _short,
)
from bot.arxiv.oai_saved import OaiPage, _parse_oai_checked, parse_oai, parse_oai_page
from bot.arxiv.rss import RssListing, _parse_rss_checked, parse_rss
from bot.arxiv.text import clean_author_name, split_author_list, tex_accents_to_unicode
from bot.domain.models import Paper

__all__ = [
    "ArxivApiError",
    "AtomResult",
    "FeedError",
    "OaiPage",
    "ParsedDocument",
    "RateExceededError",
    "RssListing",
    "SkippedItem",
    "clean_author_name",
    "parse_atom",
    "parse_document",
    "parse_document_report",
    "parse_oai",
    "parse_oai_page",
    "parse_rss",
    "split_author_list",
    "tex_accents_to_unicode",
]


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """The papers of any saved document (`parse_document_report`) and what was skipped."""

    papers: tuple[Paper, ...]
    skips: tuple[SkippedItem, ...] = ()


def parse_document(data: bytes) -> tuple[Paper, ...]:
    """Papers of a saved RSS listing, Atom feed or OAI-PMH response, whichever `data` is."""
    return parse_document_report(data).papers


def parse_document_report(data: bytes) -> ParsedDocument:
    """Like `parse_document`, with the records that were skipped and why."""
    data, root = _prepare(data)
    parse = _PARSERS.get(root)
    if parse is None:
        raise FeedError(f"unsupported document: root element <{_short(root, 40)}>")
    _require_complete(data, root)
    result = parse(data)
    return ParsedDocument(result.papers, result.skips)


# Each saved document's parser by its root element; each takes a complete document.
_PARSERS: dict[str, Callable[[bytes], RssListing | AtomResult | OaiPage]] = {
    "rss": _parse_rss_checked,
    "feed": _parse_atom_checked,
    "OAI-PMH": _parse_oai_checked,
}
