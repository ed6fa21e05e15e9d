"""Executemany of Core statements: through SQLAlchemy, or through the SQLite driver.

The bulk import writes hundreds of thousands of rows (papers, author and category
links, new authors) per run. SQLAlchemy builds a parameter dict per row for an
executemany: with every row through it the SQLite import fell from 6,062 to
3,357 papers per CPU second of the store process (`python -m bench.bulk_import
--papers 50000`, a shared 2-core machine at load 5-7), 45 % slower. So on SQLite
the same Core statement is compiled once and its rows go straight to the
aiosqlite connection inside the same transaction (`driver_connection`), with the
columns' own bind processing (`UtcTimestamp`) applied; PostgreSQL keeps
SQLAlchemy's executemany. With this, three paired runs gave 4,494 / 4,476 /
4,829 papers/CPU-s against 5,060 / 4,907 / 5,407 before the conversion (7-11 %
behind, within the load's noise: the unchanged parser process drifted as much).

`run(conn, statement, names, rows)`: `rows` are tuples in the order of `names`,
the statement's bind names (an INSERT's or UPDATE's columns, or its
`bindparam`s). `matching(conn, select, key, values)` reads the rows whose `key`
is among thousands of `values`: IN lists of `chunks()` through SQLAlchemy, or,
on SQLite, one JSON parameter (`IN (SELECT value FROM json_each(?))`), which
spares SQLAlchemy's rendering of the expanded IN lists.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Executable, Select, bindparam, func, select
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from storage.paper_rows import AnyRow
from storage.sql import chunks
from storage.store import Connection, Store

log = logging.getLogger(__name__)

Rows = Sequence[Sequence[Any]]


class Batches(ABC):
    """One statement, many rows, in the caller's transaction."""

    @abstractmethod
    async def run(
        self, conn: Connection, statement: Executable, names: Sequence[str], rows: Rows
    ) -> None: ...

    @abstractmethod
    async def matching(
        self,
        conn: Connection,
        statement: Select[*tuple[Any, ...]],
        key: ColumnElement[Any],
        values: Sequence[Any],
    ) -> list[AnyRow]: ...


class CoreBatches(Batches):
    """SQLAlchemy's own executemany (PostgreSQL: asyncpg's prepared executemany)."""

    async def run(
        self, conn: Connection, statement: Executable, names: Sequence[str], rows: Rows
    ) -> None:
        if rows:
            await conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])

    async def matching(
        self,
        conn: Connection,
        statement: Select[*tuple[Any, ...]],
        key: ColumnElement[Any],
        values: Sequence[Any],
    ) -> list[AnyRow]:
        found: list[AnyRow] = []
        for chunk in chunks(values):
            found.extend(await conn.execute(statement.where(key.in_(chunk))))
        return found


async def driver_connection(conn: Connection) -> Any:
    """The aiosqlite connection under `conn` (SQLite), in the same transaction."""
    raw = await conn.get_raw_connection()
    assert raw.driver_connection is not None
    return raw.driver_connection


_Compiled = tuple[str, list[int], list[Callable[[Any], Any] | None]]


class SqliteDriverBatches(Batches):
    """The statement compiled once for SQLite, its rows executed by aiosqlite directly."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[Executable, tuple[str, ...]], _Compiled] = {}

    def _compile(self, conn: Connection, statement: Executable, names: Sequence[str]) -> _Compiled:
        key = (statement, tuple(names))
        found = self._compiled.get(key)
        if found is None:
            assert isinstance(statement, ClauseElement)
            compiled = statement.compile(dialect=conn.dialect, column_keys=list(names))
            assert isinstance(compiled, SQLCompiler)
            order = list(compiled.positiontup or ())
            processors: list[Callable[[Any], Any] | None] = [
                compiled.binds[n].type.bind_processor(conn.dialect) for n in order
            ]
            found = (str(compiled), [names.index(n) for n in order], processors)
            self._compiled[key] = found
        return found

    async def run(
        self, conn: Connection, statement: Executable, names: Sequence[str], rows: Rows
    ) -> None:
        if not rows:
            return
        sql, positions, processors = self._compile(conn, statement, names)
        if positions != list(range(len(names))):
            rows = [tuple(row[i] for i in positions) for row in rows]
        converted = [(i, _repeats(process)) for i, process in enumerate(processors) if process]
        if converted:
            rows = [_processed(row, converted) for row in rows]
        await (await driver_connection(conn)).executemany(sql, rows)

    async def matching(
        self,
        conn: Connection,
        statement: Select[*tuple[Any, ...]],
        key: ColumnElement[Any],
        values: Sequence[Any],
    ) -> list[AnyRow]:
        if not values:
            return []
        listed = json.dumps(list(values), ensure_ascii=False)
        return list(await conn.execute(statement.where(key.in_(_LISTED)), {"listed": listed}))


_LISTED = select(func.json_each(bindparam("listed")).table_valued("value").c.value)


def _repeats(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, reusing its last answer for the same value again (a batch's one
    `first_seen`, say: a third of the bulk import's timestamp conversions)."""
    last: list[Any] = [object(), None]

    def processed(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return processed


def _processed(row: Sequence[Any], converted: list[tuple[int, Callable[[Any], Any]]]) -> list[Any]:
    out = list(row)
    for i, process in converted:
        out[i] = process(out[i])
    return out


def batches_for(store: Store) -> Batches:
    return CoreBatches() if store.is_postgres else SqliteDriverBatches()
