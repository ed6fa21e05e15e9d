"""Author look-ups: the stored authors a name can be, and autocomplete of names.

`PaperRepository.by_author` and `author_names` answer through this. A name is
matched by its folded surname key and compatible given names (`bot.domain.names`),
so "P. A. Ortega" finds Pedro A. Ortega and not Pedro Domingos; the author's
papers, newest first, come from the engine's `Search.author_page`.
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, func, select

from bot.domain.models import AuthorMatch
from bot.domain.names import fold, given_compatible, query_key
from storage.schema import authors, paper_authors
from storage.search import Search
from storage.store import Store

log = logging.getLogger(__name__)

_AUTOCOMPLETE_SCAN = 500


def _next_char(c: str) -> str:
    """The code point after `c`, for half-open prefix ranges; skips the surrogate block."""
    code = ord(c) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000
    return chr(min(code, 0x10FFFF))


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix[:-1] + _next_char(prefix[-1])


def _typed_given_ok(typed: tuple[str, ...], stored: tuple[str, ...]) -> bool:
    """Autocomplete: complete typed given names compatible, the last one being typed a prefix."""
    if not typed:
        return True
    if not given_compatible(typed[:-1], stored):
        return False
    last = typed[-1]
    return any(t.startswith(last) or (len(t) == 1 and last.startswith(t)) for t in stored)


def _has_papers(author_id: ColumnElement[int]) -> ColumnElement[bool]:
    return select(paper_authors.c.author_id).where(paper_authors.c.author_id == author_id).exists()


class AuthorLookups:
    """Stored authors by name, for author pages and autocomplete."""

    def __init__(self, store: Store, search: Search) -> None:
        self._store = store
        self._search = search

    async def by_author(self, query: str, *, limit: int = 25, offset: int = 0) -> AuthorMatch:
        """Papers of every stored author whose name can be `query`, newest first."""
        found = await self._matching_authors(query)
        names = tuple(sorted({name for _, name in found}))
        if not found or limit <= 0:
            return AuthorMatch(query, names, ())
        page = await self._search.author_page([i for i, _ in found], limit, max(0, offset))
        return AuthorMatch(query, names, tuple(page))

    async def _matching_authors(self, query: str) -> list[tuple[int, str]]:
        key = query_key(query)
        if not key.surname:
            return []
        statement = select(authors.c.id, authors.c.name, authors.c.given_key).where(
            authors.c.surname_key == key.surname, _has_papers(authors.c.id)
        )
        if key.given:
            # Compatible given names start with the same letter (or are unknown).
            low, high = _prefix_range(key.given[0][0])
            statement = statement.where(
                (authors.c.given_key == "")
                | ((authors.c.given_key >= low) & (authors.c.given_key < high))
            )
        rows = await self._store.fetchall(statement)
        return [
            (int(row.id), str(row.name))
            for row in rows
            if given_compatible(key.given, tuple(str(row.given_key).split()))
        ]

    async def author_names(self, prefix: str, limit: int = 25) -> list[str]:
        """Stored spellings for autocomplete: `Leg`, `Shane Le`, `legg s` -> `Shane Legg`, ...

        The last word is read as the start of a surname and the words before it
        as given names; with two words or more, also as `surname given...`.
        """
        tokens = tuple(fold(prefix).split())
        if not tokens or limit <= 0:
            return []
        found: dict[str, None] = {}
        readings = [(tokens[-1], True, tokens[:-1])]
        if len(tokens) > 1:
            readings.append((tokens[0], False, tokens[1:]))
        for surname, is_prefix, given in readings:
            statement = (
                select(authors.c.name, authors.c.given_key)
                .where(_has_papers(authors.c.id))
                .order_by(authors.c.surname_key, authors.c.given_key, authors.c.name)
                .limit(_AUTOCOMPLETE_SCAN)
            )
            if is_prefix:
                low, high = _prefix_range(surname)
                statement = statement.where(
                    authors.c.surname_key >= low, authors.c.surname_key < high
                )
            else:
                statement = statement.where(authors.c.surname_key == surname)
            if given:
                statement = statement.where(
                    (authors.c.given_key == "")
                    | (func.substr(authors.c.given_key, 1, 1) == given[0][0])
                )
            for row in await self._store.fetchall(statement):
                stored = tuple(str(row.given_key).split())
                ok = (
                    given_compatible(given, stored) if is_prefix else _typed_given_ok(given, stored)
                )
                if ok:
                    found.setdefault(str(row.name))
                    if len(found) >= limit:
                        return list(found)
        return list(found)
