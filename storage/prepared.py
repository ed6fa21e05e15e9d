"""Papers turned into their stored rows ahead of time, for the bulk import's SQLite fast path.

A snapshot import's parser processes hand the writer finished rows rather than
`Paper`s: the papers table's columns in their stored form (timestamps as the
text `UtcTimestamp` writes), the folded search-index text, the author names to
link and the categories. The writer's process, the one SQLite writer and the
import's bottleneck, then only assigns rowids and author ids and runs the
inserts. Building the rows there cost it about a third of its time
(`python -m bench.bulk_import`, see the README).

`prepare` is the one place that turns a `Paper` into these rows, and it uses
the same codecs as the ordinary path (`normalized`, `paper_values`,
`index_row`), so both store the same bytes; `tests/bot/test_bulk_fast.py`
compares the two table by table. A row whose paper is already stored goes back
to a `Paper` (`paper_of`) and through `PaperRepository.upsert_many_in`, which
merges it; two rows of one paper in a batch are merged (`merge_papers`) first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from bot.domain.merge import normalized
from bot.domain.models import Paper
from bot.domain.names import author_key
from bot.domain.timestamps import to_timestamp
from storage.paper_rows import VALUE_NAMES, index_row, paper_from_row, paper_values

log = logging.getLogger(__name__)

# (id, stored VALUE_NAMES columns, folded (title, abstract, authors), the author names
# once each, categories)
PreparedPaper = tuple[str, tuple[Any, ...], tuple[str, str, str], tuple[str, ...], tuple[str, ...]]
AuthorKeys = dict[str, tuple[str, str]]  # name -> (surname key, given key)

_TIMESTAMPS = (VALUE_NAMES.index("published"), VALUE_NAMES.index("updated"))


def prepare(paper: Paper) -> PreparedPaper:
    """`paper`'s rows as the store would write them (names and categories normalized)."""
    paper = normalized(paper)
    values = list(paper_values(paper))
    for i in _TIMESTAMPS:  # as UtcTimestamp would bind them
        if values[i] is not None:
            values[i] = to_timestamp(values[i])
    joined = ", ".join(paper.authors)
    _, title, abstract, names = index_row(0, paper.title, paper.abstract, joined)
    linked = tuple(dict.fromkeys(paper.authors))  # a name listed twice is one link
    return (paper.id, tuple(values), (title, abstract, names), linked, paper.categories)


def paper_of(row: PreparedPaper) -> Paper:
    """The `Paper` a prepared row was made from (without `first_seen`, as parsed)."""
    return paper_from_row((0, row[0], *row[1], None))


class KeyMemo:
    """Author keys worked out in a parser process, each handed over once.

    The writer needs a key only for a name it has never stored, and it stores
    every name of a batch it is handed: a name this memo has sent before is
    known there (or, after the memo was cleared, sent again). A key that does
    not arrive is worked out by the writer, so the memo only saves time.
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        self._limit = limit
        self._sent: set[str] = set()

    def new_keys(self, rows: Iterable[PreparedPaper]) -> AuthorKeys:
        keys: AuthorKeys = {}
        sent = self._sent
        for row in rows:
            for name in row[3]:
                if name not in sent and name not in keys:
                    key = author_key(name)
                    keys[name] = (key.surname, key.given_key)
        if len(sent) + len(keys) > self._limit:
            sent.clear()
        sent.update(keys)
        return keys
