"""Merging two copies of one paper: what the store keeps when a paper arrives again.

A paper is keyed by its versionless id, so a replacement, a cross-list or an
older copy of a stored paper is merged into it. The higher version's text and
metadata win, a missing value (RSS has no comment, no DOI) never erases a known
one, a lower version only fills gaps, `published` keeps the earliest date ever
seen and `updated` the latest.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.domain.models import AnnounceType, Paper

log = logging.getLogger(__name__)

_CROSS_TYPES = frozenset({AnnounceType.CROSS, AnnounceType.REPLACE_CROSS})


def _is_utc(value: datetime | None) -> bool:
    return value is None or value.tzinfo is UTC


def _names_normal(authors: tuple[str, ...]) -> bool:
    """Whether every name is non-empty, single-spaced and trimmed, checked on all at once.

    The names joined by NUL (not whitespace to `str.split`) pass the single-space
    test together; a NUL next to a space, a doubled or an edge NUL is an untrimmed
    or empty name. A name holding NUL itself may fail here: it is then normalized,
    which leaves a normal list as it is.
    """
    if not all(authors):
        return False
    joined = "\0".join(authors)
    return (
        " ".join(joined.split()) == joined
        and " \0" not in joined
        and "\0 " not in joined
        and "\0\0" not in joined
        and not joined.startswith("\0")
        and not joined.endswith("\0")
    )


def normalized(paper: Paper, first_seen: datetime | None = None) -> Paper:
    """Names with single spaces and no blanks, categories primary-first without repeats, UTC.

    `first_seen`, when given, replaces the paper's. Already normal papers (what the
    feed parser produces) are returned as they are: this runs for every paper stored.
    """
    authors, categories, primary = paper.authors, paper.categories, paper.primary_category
    if (
        first_seen is None
        and categories
        and categories[0] == primary
        and len(set(categories)) == len(categories)
        and all(categories)
        and _names_normal(authors)
        and _is_utc(paper.published)
        and _is_utc(paper.updated)
        and _is_utc(paper.first_seen)
    ):
        return paper
    authors = tuple(n for n in (" ".join(a.split()) for a in authors) if n)
    categories = tuple(c for c in dict.fromkeys((primary, *categories)) if c)
    first_seen = first_seen or paper.first_seen
    return Paper(
        id=paper.id,
        version=paper.version,
        title=paper.title,
        abstract=paper.abstract,
        authors=authors,
        primary_category=primary or (categories[0] if categories else ""),
        categories=categories,
        published=paper.published.astimezone(UTC) if paper.published else None,
        updated=paper.updated.astimezone(UTC) if paper.updated else None,
        comment=paper.comment,
        journal_ref=paper.journal_ref,
        doi=paper.doi,
        announce_type=paper.announce_type,
        first_seen=first_seen.astimezone(UTC) if first_seen else None,
    )


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else max(a, b)


def _merged_announce_type(old: Paper, new: Paper) -> AnnounceType | None:
    if new.announce_type is None or old.announce_type is None:
        return new.announce_type or old.announce_type
    if new.version != old.version:
        return (new if new.version > old.version else old).announce_type
    # Same version seen in two listings: the primary listing says more than the cross-list.
    if new.announce_type in _CROSS_TYPES and old.announce_type not in _CROSS_TYPES:
        return old.announce_type
    return new.announce_type


def merge_papers(old: Paper, new: Paper) -> Paper:
    """What the store keeps when `new` arrives for the stored `old` (same id).

    The higher version's values win (ties go to `new`); empty or missing values
    never overwrite known ones; `published` is the earliest known date,
    `updated` the latest; `first_seen` stays `old`'s.
    """
    top, other = (new, old) if new.version >= old.version else (old, new)
    return normalized(
        Paper(
            id=old.id,
            version=max(old.version, new.version),
            title=top.title or other.title,
            abstract=top.abstract or other.abstract,
            authors=top.authors or other.authors,
            primary_category=top.primary_category or other.primary_category,
            categories=top.categories or other.categories,
            published=_earliest(old.published, new.published),
            updated=_latest(old.updated, new.updated),
            comment=top.comment or other.comment,
            journal_ref=top.journal_ref or other.journal_ref,
            doi=top.doi or other.doi,
            announce_type=_merged_announce_type(old, new),
            first_seen=old.first_seen,
        )
    )
