"""The few SQL spellings the engines do not share, chosen by SQLAlchemy's dialect modules.

`insert_for(dialect, table)` gives the INSERT that knows `ON CONFLICT` for that
engine (SQLite and PostgreSQL spell it alike, but SQLAlchemy keeps one construct
per dialect); `chunks` keeps IN lists under SQLite's bound-parameter limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from storage.store import Dialect

T = TypeVar("T")

CHUNK = 500  # bound parameters per IN (...) list, well under SQLite's limit


def insert_for(dialect: Dialect, table: Table) -> sqlite.Insert | postgresql.Insert:
    """`INSERT INTO table` with `.on_conflict_do_nothing()` / `.on_conflict_do_update()`."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
