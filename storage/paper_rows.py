"""The papers table's row codec and the filters the paper and search queries share.

`PAPER_COLUMNS` (Core) and `PAPER_COLUMNS_SQL` (the same columns of alias `p`,
for the engine-specific `text()` queries of `storage.search`) select a paper
row in the order `paper_from_row` decodes. Timestamps read through Core arrive
as aware datetimes (`UtcTimestamp`), through `text()` as stored text; the codec
takes either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, exists, func, or_, select

from bot.domain.models import AnnounceType, Paper
from bot.domain.names import fold_for_index
from bot.domain.timestamps import from_timestamp
from storage.schema import paper_categories, papers
from storage.store import Store

log = logging.getLogger(__name__)

FILTER_WINDOW = 500  # newest papers on which the share passing the filters is estimated

# A row of any width (SQLAlchemy 2.1's Row[Any] is a row of one column).
AnyRow = Row[*tuple[Any, ...]]

# An entry of the full-text index: rowid, then folded title, abstract and author list.
IndexRow = tuple[int, str, str, str]

PAPER_COLUMNS = (
    papers.c.rowid,
    papers.c.id,
    papers.c.version,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors_json,
    papers.c.primary_category,
    papers.c.categories,
    papers.c.published,
    papers.c.updated,
    papers.c.comment,
    papers.c.journal_ref,
    papers.c.doi,
    papers.c.announce_type,
    papers.c.first_seen,
)
PAPER_COLUMNS_SQL = ", ".join(f"p.{c.name}" for c in PAPER_COLUMNS)


def _dt(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return from_timestamp(value)


def _announce_type(text: str | None) -> AnnounceType | None:
    try:
        return AnnounceType(text) if text else None
    except ValueError:
        log.warning("unknown announce_type %r in the store", text)
        return None


def paper_from_row(row: Sequence[Any]) -> Paper:
    """A `Paper` from a row whose first columns are `PAPER_COLUMNS`."""
    return Paper(
        id=row[1],
        version=row[2],
        title=row[3],
        abstract=row[4],
        authors=tuple(json.loads(row[5])),
        primary_category=row[6],
        categories=tuple(row[7].split()),
        published=_dt(row[8]),
        updated=_dt(row[9]),
        comment=row[10],
        journal_ref=row[11],
        doi=row[12],
        announce_type=_announce_type(row[13]),
        first_seen=_dt(row[14]),
    )


# The columns an update may change, in `paper_values` order.
VALUE_NAMES = (
    "version",
    "title",
    "abstract",
    "authors_json",
    "primary_category",
    "categories",
    "published",
    "updated",
    "comment",
    "journal_ref",
    "doi",
    "announce_type",
)


_encode_names = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps, minus its set-up


def paper_values(paper: Paper) -> tuple[Any, ...]:
    """The stored columns `VALUE_NAMES` of `paper`."""
    return (
        paper.version,
        paper.title,
        paper.abstract,
        _encode_names(paper.authors),
        paper.primary_category,
        " ".join(paper.categories),
        paper.published,
        paper.updated,
        paper.comment,
        paper.journal_ref,
        paper.doi,
        paper.announce_type.value if paper.announce_type else None,
    )


def names_text(authors_json: str | None) -> str:
    """A stored `authors_json` list as the ", "-joined text the index holds."""
    return ", ".join(json.loads(authors_json)) if authors_json else ""


def index_row(rowid: int, title: str, abstract: str, authors_text: str) -> IndexRow:
    return (rowid, fold_for_index(title), fold_for_index(abstract), fold_for_index(authors_text))


def in_category(category: str, rowid: ColumnElement[int]) -> ColumnElement[bool]:
    """Paper `rowid` is in `category` (a class) or, for "cs", in any cs.* class."""
    pc = paper_categories.alias("pc")
    if "." in category:
        listed: ColumnElement[bool] = pc.c.category == category
    else:
        listed = or_(
            pc.c.category == category,
            func.substr(pc.c.category, 1, len(category) + 1) == category + ".",
        )
    return exists().where(and_(pc.c.paper_rowid == rowid, listed))


def paper_filters(
    category: str | None, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    """Conditions on `papers`: in `category`, published in [since, until)."""
    where: list[ColumnElement[bool]] = []
    if category:
        where.append(in_category(category, papers.c.rowid))
    if since is not None:
        where.append(papers.c.published >= since)
    if until is not None:
        where.append(papers.c.published < until)
    return where


async def recent_share(
    store: Store, category: str | None, since: datetime | None, until: datetime | None
) -> int:
    """How many of the newest `FILTER_WINDOW` papers pass the filters."""
    top = papers.alias("top")
    floor = select(func.coalesce(func.max(top.c.rowid), 0)).scalar_subquery() - FILTER_WINDOW
    statement = (
        select(func.count())
        .select_from(papers)
        .where(papers.c.rowid > floor, *paper_filters(category, since, until))
    )
    return int(await store.scalar(statement) or 0)
