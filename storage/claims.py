"""What the outbox does its own way on each engine: claiming due rows, and long lists.

- SQLite: one process owns the file (the runner's lock) and one delivery worker
  in it claims, so selecting the due rows is claiming them; a row that is not
  marked stays due and is picked up again.
- PostgreSQL: several processes may share the outbox (sharded delivery). Due
  rows are locked `FOR UPDATE SKIP LOCKED` and leased to the claiming process
  for `CLAIM_LEASE`, so no alert is sent by two processes and none is lost.

Each also passes long lists as one parameter: "this id is in that list" (a
shard may hold thousands of guilds, more than an IN list should carry), and
the rows `enqueue` inserts (SQLite: a JSON array read by `json_each`;
PostgreSQL: one array per column, `unnest`), so a listing's thousands of
alerts are one INSERT ... SELECT instead of an executemany. Enqueueing 3,008
alerts (scratch A/B, medians of 7, loaded 2-core machine): executemany through
SQLAlchemy 228-285 ms on SQLite and 475-495 ms on PostgreSQL, the old
driver-level code 126-245 and 266-346 ms, this 117-136 and 316-334 ms.
`claimer(store, owner)` picks the implementation once, in the outbox.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Integer,
    Row,
    Select,
    Text,
    any_,
    cast,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.types import TypeEngine

from storage.schema import deliveries, destinations
from storage.store import Store

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)  # PostgreSQL: how long a claimed row stays with its process

_DL = deliveries.c
_OLDEST_FIRST = (_DL.created_at, _DL.id)

AlertRow = tuple[int, int, str, int, str | None, str]
"""(destination_id, paper_rowid, event, version, note, matched_json) of a new delivery."""
ALERT_COLUMNS = ("destination_id", "paper_rowid", "event", "version", "note", "matched_json")


class Claimer(Protocol):
    """One engine's way to claim due deliveries."""

    def ids_in(self, column: ColumnElement[Any], ids: Collection[int]) -> ColumnElement[bool]:
        """`column` is one of `ids`, as one bound parameter however many there are."""
        ...

    def alert_rows(self, rows: Sequence[AlertRow]) -> Select[Any]:
        """`rows` as a SELECT of `ALERT_COLUMNS`, from one bound parameter per column at most."""
        ...

    async def claim(
        self, rows: Select[Any], due: ColumnElement[bool], *, now: datetime, limit: int
    ) -> Sequence[Row[Any]]:
        """The oldest `limit` deliveries matching `due` (a condition on deliveries and
        destinations), claimed for this process, read with `rows` (a select of
        deliveries joined with destinations and papers), oldest first."""
        ...


class SqliteClaimer:
    """SQLite: the only process selects its due rows; nobody else could take them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def ids_in(self, column: ColumnElement[Any], ids: Collection[int]) -> ColumnElement[bool]:
        each = func.json_each(json.dumps(sorted(set(ids)))).table_valued("value")
        return column.in_(select(each.c.value))

    def alert_rows(self, rows: Sequence[AlertRow]) -> Select[Any]:
        value = func.json_each(json.dumps(rows)).table_valued("value").c.value
        types: tuple[TypeEngine[Any], ...] = (
            BigInteger(), BigInteger(), Text(), Integer(), Text(), Text()
        )  # fmt: skip
        fields = [
            value.op("->>", return_type=kind)(i).label(name)
            for i, (name, kind) in enumerate(zip(ALERT_COLUMNS, types, strict=True))
        ]
        # WHERE true: SQLite's grammar needs it before an upsert's ON CONFLICT.
        return select(*fields).where(true())

    async def claim(
        self, rows: Select[Any], due: ColumnElement[bool], *, now: datetime, limit: int
    ) -> Sequence[Row[Any]]:
        return await self.store.fetchall(rows.where(due).order_by(*_OLDEST_FIRST).limit(limit))


class PostgresClaimer:
    """PostgreSQL: lock due rows FOR UPDATE SKIP LOCKED and lease them to `owner`.

    Rows another process is claiming right now are skipped, not waited for;
    rows it leased stay with it until `CLAIM_LEASE` runs out (it died, or is
    slow). This owner's own leases are its to take again (its next pass).
    """

    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner

    def ids_in(self, column: ColumnElement[Any], ids: Collection[int]) -> ColumnElement[bool]:
        return column == any_(literal(sorted(set(ids)), ARRAY(BigInteger)))

    def alert_rows(self, rows: Sequence[AlertRow]) -> Select[Any]:
        types: tuple[type[TypeEngine[Any]], ...] = (
            BigInteger, BigInteger, Text, Integer, Text, Text
        )  # fmt: skip
        arrays: list[ColumnElement[Any]] = [
            cast(literal([row[i] for row in rows], ARRAY(kind)), ARRAY(kind))
            for i, kind in enumerate(types)
        ]
        source = func.unnest(*arrays).table_valued(*ALERT_COLUMNS).render_derived(name="r")
        return select(*(source.c[name] for name in ALERT_COLUMNS))

    async def claim(
        self, rows: Select[Any], due: ColumnElement[bool], *, now: datetime, limit: int
    ) -> Sequence[Row[Any]]:
        free = or_(
            _DL.claimed_until.is_(None), _DL.claimed_until <= now, _DL.claimed_by == self.owner
        )
        chosen = (
            select(_DL.id)
            .select_from(deliveries.join(destinations, destinations.c.id == _DL.destination_id))
            .where(due, free)
            .order_by(*_OLDEST_FIRST)
            .limit(limit)
            .with_for_update(of=deliveries, skip_locked=True)
        )
        lease = (
            update(deliveries)
            .where(_DL.id.in_(chosen))
            .values(claimed_until=now + CLAIM_LEASE, claimed_by=self.owner)
            .returning(_DL.id)
        )
        async with self.store.transaction() as conn:
            ids = sorted(int(i) for i in (await conn.execute(lease)).scalars())
        if not ids:
            return []
        return await self.store.fetchall(
            rows.where(self.ids_in(_DL.id, ids)).order_by(*_OLDEST_FIRST)
        )


def claimer(store: Store, owner: str) -> Claimer:
    if store.dialect == "postgresql":
        return PostgresClaimer(store, owner)
    return SqliteClaimer(store)
