"""The delivery outbox: which paper goes to which destination, and whether it went.

A delivery row is created in the same transaction that stored the paper, so an
alert is never lost between "stored" and "queued". It stays `pending` until
Discord confirmed the message (`mark_sent`) or the sender gave up for good
(`mark_failed`); the UNIQUE (destination_id, paper_rowid, event, version) key
means a paper is announced to a destination at most once, each new version and
its publication at most once, whatever re-polls or backfills happen.

Before a message is posted its deliveries are bound to a batch
(`assign_batch`); a batch is always claimed whole, so a retry after a crash
resends exactly the same group under the same Discord nonce.

Claiming differs per engine (`storage.claims`): with SQLite one process owns the
outbox, so claiming is selecting the due rows; with PostgreSQL several processes
share it and claim with `FOR UPDATE SKIP LOCKED` and a lease.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, func, literal, or_, select, update

from bot.domain.models import (
    AlertEvent,
    AnnounceType,
    Delivery,
    DeliveryStatus,
    DestinationKind,
    OutboxAlert,
    Paper,
)
from storage.claims import ALERT_COLUMNS, CLAIM_LEASE, claimer
from storage.destinations import destination_columns, destination_from_row
from storage.schema import UtcTimestamp, deliveries, destinations, papers
from storage.sql import chunks, insert_for
from storage.store import Connection, Store

__all__ = ["CLAIM_LEASE", "DeliveryOutbox", "OutboxItem"]

log = logging.getLogger(__name__)

_DL = deliveries.c
_D = destinations.c
_P = papers.c
_PENDING = DeliveryStatus.PENDING.value

_SELECT = select(
    _DL.id,
    _DL.status,
    _DL.matched_json,
    _DL.attempts,
    _DL.created_at,
    _DL.next_attempt_at,
    _DL.sent_at,
    _DL.message_id,
    _DL.last_error,
    _DL.batch_id,
    _DL.event,
    _DL.version.label("dl_version"),
    _DL.note,
    *destination_columns(),
    *(column.label(f"p_{column.name}") for column in papers.c if column.name != "rowid"),
).select_from(
    deliveries.join(destinations, _D.id == _DL.destination_id).join(
        papers, _P.rowid == _DL.paper_rowid
    )
)
_OLDEST_FIRST = (_DL.created_at, _DL.id)

OutboxItem = tuple[int, str, Sequence[str]]
"""(destination id, versionless paper id, descriptions of the matching subscriptions)."""


class DeliveryOutbox:
    """Queue of alerts to post; see the module docstring for the guarantees."""

    def __init__(self, db: Store) -> None:
        self.db = db
        # Whose leases are whose when several processes share a PostgreSQL outbox.
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claims = claimer(db, self.owner)

    async def enqueue(
        self, conn: Connection, items: Sequence[OutboxItem | OutboxAlert], *, now: datetime
    ) -> int:
        """Queue deliveries inside the caller's transaction; returns how many rows were new.

        Items whose (destination, paper, event, version) is already queued, sent
        or failed are ignored: a paper is announced to a destination once, each
        new version once, its publication once. Every paper must already be
        stored: a missing one is a bug in the caller and raises `LookupError`
        (rolling back its batch). Plain tuples are first announcements.
        """
        merged: dict[tuple[int, str, AlertEvent, int], tuple[list[str], str | None]] = {}
        for item in items:
            alert = item if isinstance(item, OutboxAlert) else OutboxAlert(*item)
            key = (alert.destination_id, alert.paper_id, alert.event, alert.version)
            descriptions, _ = merged.setdefault(key, ([], alert.note))
            descriptions.extend(d for d in alert.matched if d not in descriptions)
        if not merged:
            return 0
        if now.tzinfo is None:  # refused here, not as a wrapped error from the bind
            raise ValueError(f"naive datetime {now!r}: paperbell stores UTC only")
        wanted = {key[1] for key in merged}
        rowids = await _paper_rowids(conn, wanted)
        missing = sorted(wanted - rowids.keys())
        if missing:
            raise LookupError(f"cannot queue deliveries for unknown papers: {missing[:10]}")
        rows = [
            (destination_id, rowids[paper_id], event.value, version, note, json.dumps(matched))
            for (destination_id, paper_id, event, version), (matched, note) in merged.items()
        ]
        source = self._claims.alert_rows(rows)
        stamp = literal(now, UtcTimestamp())
        source = source.add_columns(
            literal(_PENDING).label("status"),
            stamp.label("created_at"),
            stamp.label("next_attempt_at"),
        )
        # One INSERT ... SELECT from one parameter (see storage.claims); RETURNING counts
        # the new rows on both engines.
        insert = (
            insert_for(self.db.dialect, deliveries)
            .from_select([*ALERT_COLUMNS, "status", "created_at", "next_attempt_at"], source)
            .on_conflict_do_nothing(
                index_elements=[_DL.destination_id, _DL.paper_rowid, _DL.event, _DL.version]
            )
            .returning(_DL.id)
        )
        created = len((await conn.execute(insert)).all())
        log.debug("queued %d of %d deliveries", created, len(merged))
        return created

    async def enqueue_backfill(
        self,
        destination_id: int,
        paper_ids: Sequence[str],
        matched: Sequence[str],
        now: datetime,
    ) -> int:
        """Queue already-stored papers for one destination (a new subscription's backfill)."""
        async with self.db.transaction() as conn:
            return await self.enqueue(
                conn, [(destination_id, paper_id, matched) for paper_id in paper_ids], now=now
            )

    async def claim_due(
        self,
        *,
        now: datetime,
        limit: int,
        guild_ids: Collection[int] | None = None,
        include_dms: bool = True,
    ) -> list[Delivery]:
        """Pending deliveries due by `now` for unpaused destinations, at most `limit`.

        The oldest due rows are chosen; they are returned grouped by destination
        (destinations in the order of their oldest row, each group oldest first)
        so the sender can batch one destination's papers into one message.
        `guild_ids` restricts channels to those guilds (a sharded process);
        DMs are included only when `include_dms`. A claimed row's batch comes
        with all its pending members, even beyond `limit`.
        """
        if limit <= 0:
            return []
        scopes: list[ColumnElement[bool]] = []
        channel = _D.kind == DestinationKind.CHANNEL.value
        if guild_ids is None:
            scopes.append(channel)
        elif guild_ids:
            # A shard may hold thousands of guilds: one list parameter, not an IN list.
            scopes.append(and_(channel, self._claims.ids_in(_D.guild_id, guild_ids)))
        if include_dms:
            scopes.append(_D.kind == DestinationKind.DM.value)
        if not scopes:
            return []
        due = and_(
            _DL.status == _PENDING,
            _DL.next_attempt_at <= now,
            _D.paused_reason.is_(None),
            or_(*scopes),
        )
        rows = await self._claims.claim(_SELECT, due, now=now, limit=limit)
        claimed = [_delivery_from_row(row) for row in rows]
        claimed += await self._rest_of_batches(claimed)
        groups: dict[int, list[Delivery]] = {}
        for delivery in claimed:
            groups.setdefault(delivery.destination.id, []).append(delivery)
        return [
            delivery
            for group in groups.values()
            for delivery in sorted(group, key=lambda d: (d.created_at, d.id))
        ]

    async def release_claims(self) -> int:
        """Give back this outbox's leases on rows still pending (a clean shutdown), so a
        restarted or other process may send them at once instead of after the lease."""
        return await self.db.execute(
            update(deliveries)
            .where(_DL.claimed_by == self.owner, _DL.status == _PENDING)
            .values(claimed_until=None, claimed_by=None)
        )

    async def _rest_of_batches(self, claimed: Sequence[Delivery]) -> list[Delivery]:
        """Pending members of the claimed rows' batches that the LIMIT cut off.

        A batch is resent exactly as it was first bound (same group, same
        nonce), so it is claimed whole even if that exceeds `limit` a little.
        """
        batch_ids = sorted({d.batch_id for d in claimed if d.batch_id is not None})
        if not batch_ids:
            return []
        rows = await self.db.fetchall(
            _SELECT.where(_DL.status == _PENDING, self._claims.ids_in(_DL.batch_id, batch_ids))
            .order_by(*_OLDEST_FIRST)
        )  # fmt: skip
        have = {d.id for d in claimed}
        return [d for d in map(_delivery_from_row, rows) if d.id not in have]

    async def assign_batch(self, delivery_ids: Sequence[int]) -> int | None:
        """Bind pending, unbound deliveries to one batch (one Discord message); returns its id.

        The batch id is the smallest delivery id, so it is unique and stable.
        Rows already bound to a batch or no longer pending are left alone;
        None when no row was bound.
        """
        ids = sorted(set(delivery_ids))
        if not ids:
            return None
        batch_id = ids[0]
        changed = await self._update(ids, {"batch_id": batch_id}, _DL.batch_id.is_(None))
        return batch_id if changed else None

    async def mark_sent(self, delivery_ids: Sequence[int], *, message_id: int, at: datetime) -> int:
        """Record that Discord confirmed `message_id` for these deliveries; returns rows changed."""
        if at.tzinfo is None:
            raise ValueError(f"naive datetime {at!r}: paperbell stores UTC only")
        values = {
            "status": DeliveryStatus.SENT.value,
            "sent_at": at,
            "message_id": message_id,
            "last_error": None,
        }
        return await self._update(delivery_ids, values)

    async def mark_retry(
        self, delivery_ids: Sequence[int], *, error: str, next_attempt_at: datetime
    ) -> int:
        """A failed attempt that may succeed later: stays pending until `next_attempt_at`."""
        if next_attempt_at.tzinfo is None:
            raise ValueError(f"naive datetime {next_attempt_at!r}: paperbell stores UTC only")
        values = {
            "attempts": _DL.attempts + 1,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
            "claimed_until": None,
        }
        return await self._update(delivery_ids, values)

    async def mark_failed(self, delivery_ids: Sequence[int], *, error: str) -> int:
        """Give up on these deliveries for good (kept as `failed` for the record)."""
        values = {
            "status": DeliveryStatus.FAILED.value,
            "attempts": _DL.attempts + 1,
            "last_error": error,
        }
        changed = await self._update(delivery_ids, values)
        if changed:
            log.warning("gave up on %d deliveries: %s", changed, error)
        return changed

    async def pending_count(self) -> int:
        count = select(func.count()).select_from(deliveries).where(_DL.status == _PENDING)
        return int(await self.db.scalar(count) or 0)

    async def counts(self) -> dict[DeliveryStatus, int]:
        """Number of deliveries per status, every status present (zero when none)."""
        statement = select(_DL.status, func.count().label("n")).group_by(_DL.status)
        result = dict.fromkeys(DeliveryStatus, 0)
        for row in await self.db.fetchall(statement):
            result[DeliveryStatus(row.status)] = int(row.n)
        return result

    async def sent_for_destination(self, destination_id: int) -> list[Delivery]:
        """Deliveries already posted to one destination, in the order they were sent."""
        return await self._read(
            _SELECT.where(_DL.destination_id == destination_id, _DL.status == "sent").order_by(
                _DL.sent_at, _DL.id
            )
        )

    async def for_destination_paper(self, destination_id: int, paper_id: str) -> list[Delivery]:
        """One destination's outbox rows for one paper (every event), oldest first (/why)."""
        return await self._read(
            _SELECT.where(_DL.destination_id == destination_id, _P.id == paper_id).order_by(_DL.id)
        )

    async def get(self, delivery_id: int) -> Delivery | None:
        row = await self.db.fetchone(_SELECT.where(_DL.id == delivery_id))
        return None if row is None else _delivery_from_row(row)

    async def _read(self, statement: Select[Any]) -> list[Delivery]:
        return [_delivery_from_row(row) for row in await self.db.fetchall(statement)]

    async def _update(
        self,
        delivery_ids: Sequence[int],
        values: dict[str, Any],
        *conditions: ColumnElement[bool],
    ) -> int:
        ids = list(dict.fromkeys(delivery_ids))
        if not ids:
            return 0
        # Only pending rows move: a late retry or failure report for a delivery
        # that was confirmed meanwhile must not undo "sent".
        changed = 0
        async with self.db.transaction() as conn:
            for chunk in chunks(ids):
                result = await conn.execute(
                    update(deliveries)
                    .where(_DL.id.in_(chunk), _DL.status == _PENDING, *conditions)
                    .values(values)
                )
                changed += max(result.rowcount, 0)
        return changed


async def _paper_rowids(conn: Connection, paper_ids: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(sorted(paper_ids)):
        result = await conn.execute(select(_P.id, _P.rowid).where(_P.id.in_(chunk)))
        for row in result.all():
            found[str(row[0])] = int(row[1])
    return found


def _paper_from_row(row: Row[Any]) -> Paper:
    announce = row.p_announce_type
    return Paper(
        id=row.p_id,
        version=int(row.p_version),
        title=row.p_title,
        abstract=row.p_abstract,
        authors=tuple(json.loads(row.p_authors_json)),
        primary_category=row.p_primary_category,
        categories=tuple(row.p_categories.split()),
        published=row.p_published,
        updated=row.p_updated,
        comment=row.p_comment,
        journal_ref=row.p_journal_ref,
        doi=row.p_doi,
        announce_type=None if announce is None else AnnounceType(announce),
        first_seen=row.p_first_seen,
    )


def _delivery_from_row(row: Row[Any]) -> Delivery:
    return Delivery(
        id=int(row.id),
        destination=destination_from_row(row),
        paper=_paper_from_row(row),
        status=DeliveryStatus(row.status),
        matched=tuple(json.loads(row.matched_json)),
        attempts=int(row.attempts),
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        message_id=None if row.message_id is None else int(row.message_id),
        last_error=row.last_error,
        batch_id=None if row.batch_id is None else int(row.batch_id),
        event=AlertEvent(row.event),
        version=int(row.dl_version),
        note=row.note,
    )
