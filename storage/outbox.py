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

Claiming: with SQLite one process owns the outbox and one delivery worker in it
calls `claim_due`, so claiming is just selecting the due rows; a row that is
not marked stays due and is picked up again. The PostgreSQL version will claim
with `SELECT ... FOR UPDATE SKIP LOCKED` so that several workers can share it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.domain.models import (
    AlertEvent,
    AnnounceType,
    Delivery,
    DeliveryStatus,
    OutboxAlert,
    Paper,
)
from bot.domain.timestamps import from_timestamp, optional_timestamp, to_timestamp
from storage.backend import AnyDatabase, Connection, Row, json_ids
from storage.subscriptions import (
    DESTINATION_COLUMNS,
    destination_from_row,
)

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)  # PostgreSQL: how long a claimed row stays with its process
_CHUNK = 500  # bound parameters per IN list, well under SQLite's limit

_PAPER_COLUMNS = (
    "p.id AS p_id, p.version AS p_version, p.title AS p_title, p.abstract AS p_abstract,"
    " p.authors_json AS p_authors_json, p.primary_category AS p_primary_category,"
    " p.categories AS p_categories, p.published AS p_published, p.updated AS p_updated,"
    " p.comment AS p_comment, p.journal_ref AS p_journal_ref, p.doi AS p_doi,"
    " p.announce_type AS p_announce_type, p.first_seen AS p_first_seen"
)
_DELIVERY_SELECT = (
    "SELECT dl.id, dl.status, dl.matched_json, dl.attempts, dl.created_at,"
    " dl.next_attempt_at, dl.sent_at, dl.message_id, dl.last_error, dl.batch_id,"
    " dl.event, dl.version AS dl_version, dl.note, "
    + DESTINATION_COLUMNS
    + ", "
    + _PAPER_COLUMNS
    + " FROM deliveries AS dl"
    " JOIN destinations AS d ON d.id = dl.destination_id"
    " JOIN papers AS p ON p.rowid = dl.paper_rowid"
)

OutboxItem = tuple[int, str, Sequence[str]]
"""(destination id, versionless paper id, descriptions of the matching subscriptions)."""


class DeliveryOutbox:
    """Queue of alerts to post; see the module docstring for the guarantees."""

    def __init__(self, db: AnyDatabase) -> None:
        self.db = db
        # Whose leases are whose when several processes share a PostgreSQL outbox.
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

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
        wanted = {key[1] for key in merged}
        rowids = await _paper_rowids(conn, wanted)
        missing = sorted(wanted - rowids.keys())
        if missing:
            raise LookupError(f"cannot queue deliveries for unknown papers: {missing[:10]}")
        stamp = to_timestamp(now)
        cursor = await conn.executemany(
            "INSERT INTO deliveries (destination_id, paper_rowid, event, version, note, status,"
            " matched_json, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)"
            " ON CONFLICT (destination_id, paper_rowid, event, version) DO NOTHING",
            [
                (
                    destination_id,
                    rowids[paper_id],
                    event.value,
                    version,
                    note,
                    json.dumps(matched),
                    stamp,
                    stamp,
                )
                for (destination_id, paper_id, event, version), (matched, note) in merged.items()
            ],
        )
        created = max(cursor.rowcount, 0)
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
        where = [
            "dl.status = 'pending'",
            "dl.next_attempt_at <= ?",
            "d.paused_reason IS NULL",
        ]
        params: list[Any] = [to_timestamp(now)]
        scopes: list[str] = []
        if guild_ids is None:
            scopes.append("d.kind = 'channel'")
        elif guild_ids:
            # One JSON parameter instead of an IN list: a shard may hold thousands of guilds.
            scopes.append(f"(d.kind = 'channel' AND d.guild_id IN ({json_ids(self.db.dialect)}))")
            params.append(json.dumps(sorted(set(guild_ids))))
        if include_dms:
            scopes.append("d.kind = 'dm'")
        if not scopes:
            return []
        where.append("(" + " OR ".join(scopes) + ")")
        if self.db.dialect == "postgres":
            rows = await self._claim_leased(where, params, now=now, limit=limit)
        else:
            # SQLite: one process owns the file (the runner's lock), so selecting is claiming.
            rows = await self.db.fetchall(
                _DELIVERY_SELECT
                + " WHERE "
                + " AND ".join(where)
                + " ORDER BY dl.created_at, dl.id LIMIT ?",
                [*params, limit],
            )
        deliveries = [_delivery_from_row(row) for row in rows]
        deliveries += await self._rest_of_batches(deliveries)
        groups: dict[int, list[Delivery]] = {}
        for delivery in deliveries:
            groups.setdefault(delivery.destination.id, []).append(delivery)
        return [
            delivery
            for group in groups.values()
            for delivery in sorted(group, key=lambda d: (d.created_at, d.id))
        ]

    async def _claim_leased(
        self, where: list[str], params: list[Any], *, now: datetime, limit: int
    ) -> list[Row]:
        """PostgreSQL: lock due rows FOR UPDATE SKIP LOCKED and lease them to this process.

        Rows another process is claiming right now are skipped, not waited for;
        rows it leased stay with it until `CLAIM_LEASE` runs out (it died, or
        is slow), so no alert is sent by two processes, and none is lost. This
        outbox's own leases are its to take again (its next delivery pass).
        """
        stamp = to_timestamp(now)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET claimed_until = ?, claimed_by = ? WHERE id IN ("
                " SELECT dl.id FROM deliveries AS dl"
                " JOIN destinations AS d ON d.id = dl.destination_id"
                " WHERE " + " AND ".join(where) + " AND (dl.claimed_until IS NULL"
                " OR dl.claimed_until <= ? OR dl.claimed_by = ?)"
                " ORDER BY dl.created_at, dl.id LIMIT ? FOR UPDATE OF dl SKIP LOCKED"
                ") RETURNING id",
                (to_timestamp(now + CLAIM_LEASE), self.owner, *params, stamp, self.owner, limit),
            )
            ids = sorted(int(row[0]) for row in await cursor.fetchall())
        if not ids:
            return []
        return await self.db.fetchall(
            _DELIVERY_SELECT
            + f" WHERE dl.id IN ({json_ids(self.db.dialect)}) ORDER BY dl.created_at, dl.id",
            (json.dumps(ids),),
        )

    async def release_claims(self) -> int:
        """Give back this outbox's leases on rows still pending (a clean shutdown), so a
        restarted or other process may send them at once instead of after the lease."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET claimed_until = NULL, claimed_by = NULL"
                " WHERE claimed_by = ? AND status = 'pending'",
                (self.owner,),
            )
            return max(cursor.rowcount, 0)

    async def _rest_of_batches(self, claimed: Sequence[Delivery]) -> list[Delivery]:
        """Pending members of the claimed rows' batches that the LIMIT cut off.

        A batch is resent exactly as it was first bound (same group, same
        nonce), so it is claimed whole even if that exceeds `limit` a little.
        """
        batch_ids = sorted({d.batch_id for d in claimed if d.batch_id is not None})
        if not batch_ids:
            return []
        rows = await self.db.fetchall(
            _DELIVERY_SELECT
            + f" WHERE dl.status = 'pending' AND dl.batch_id IN ({json_ids(self.db.dialect)})"
            " ORDER BY dl.created_at, dl.id",
            (json.dumps(batch_ids),),
        )
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
        changed = 0
        async with self.db.transaction() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                cursor = await conn.execute(
                    f"UPDATE deliveries SET batch_id = ? WHERE id IN ({_marks(len(chunk))})"
                    " AND status = 'pending' AND batch_id IS NULL",
                    (batch_id, *chunk),
                )
                changed += max(cursor.rowcount, 0)
        return batch_id if changed else None

    async def mark_sent(self, delivery_ids: Sequence[int], *, message_id: int, at: datetime) -> int:
        """Record that Discord confirmed `message_id` for these deliveries; returns rows changed."""
        return await self._update(
            delivery_ids,
            "status = 'sent', sent_at = ?, message_id = ?, last_error = NULL",
            (to_timestamp(at), message_id),
        )

    async def mark_retry(
        self, delivery_ids: Sequence[int], *, error: str, next_attempt_at: datetime
    ) -> int:
        """A failed attempt that may succeed later: stays pending until `next_attempt_at`."""
        return await self._update(
            delivery_ids,
            "attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claimed_until = NULL",
            (error, to_timestamp(next_attempt_at)),
        )

    async def mark_failed(self, delivery_ids: Sequence[int], *, error: str) -> int:
        """Give up on these deliveries for good (kept as `failed` for the record)."""
        changed = await self._update(
            delivery_ids,
            "status = 'failed', attempts = attempts + 1, last_error = ?",
            (error,),
        )
        if changed:
            log.warning("gave up on %d deliveries: %s", changed, error)
        return changed

    async def pending_count(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM deliveries WHERE status = 'pending'")
        return int(row[0]) if row else 0

    async def counts(self) -> dict[DeliveryStatus, int]:
        """Number of deliveries per status, every status present (zero when none)."""
        rows = await self.db.fetchall("SELECT status, count(*) FROM deliveries GROUP BY status")
        result = dict.fromkeys(DeliveryStatus, 0)
        for row in rows:
            result[DeliveryStatus(row[0])] = int(row[1])
        return result

    async def sent_for_destination(self, destination_id: int) -> list[Delivery]:
        """Deliveries already posted to one destination, in the order they were sent."""
        rows = await self.db.fetchall(
            _DELIVERY_SELECT
            + " WHERE dl.destination_id = ? AND dl.status = 'sent' ORDER BY dl.sent_at, dl.id",
            (destination_id,),
        )
        return [_delivery_from_row(row) for row in rows]

    async def for_destination_paper(self, destination_id: int, paper_id: str) -> list[Delivery]:
        """One destination's outbox rows for one paper (every event), oldest first (/why)."""
        rows = await self.db.fetchall(
            _DELIVERY_SELECT + " WHERE dl.destination_id = ? AND p.id = ? ORDER BY dl.id",
            (destination_id, paper_id),
        )
        return [_delivery_from_row(row) for row in rows]

    async def get(self, delivery_id: int) -> Delivery | None:
        row = await self.db.fetchone(_DELIVERY_SELECT + " WHERE dl.id = ?", (delivery_id,))
        return None if row is None else _delivery_from_row(row)

    async def _update(
        self,
        delivery_ids: Sequence[int],
        assignments: str,
        params: tuple[Any, ...],
    ) -> int:
        ids = list(dict.fromkeys(delivery_ids))
        if not ids:
            return 0
        # Only pending rows move: a late retry or failure report for a delivery
        # that was confirmed meanwhile must not undo "sent".
        changed = 0
        async with self.db.transaction() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                cursor = await conn.execute(
                    f"UPDATE deliveries SET {assignments}"
                    f" WHERE id IN ({_marks(len(chunk))}) AND status = 'pending'",
                    (*params, *chunk),
                )
                changed += max(cursor.rowcount, 0)
        return changed


def _marks(count: int) -> str:
    return ", ".join("?" * count)


async def _paper_rowids(conn: Connection, paper_ids: set[str]) -> dict[str, int]:
    ordered = sorted(paper_ids)
    found: dict[str, int] = {}
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        async with conn.execute(
            f"SELECT id, rowid FROM papers WHERE id IN ({_marks(len(chunk))})", chunk
        ) as cursor:
            for row in await cursor.fetchall():
                found[str(row[0])] = int(row[1])
    return found


def _paper_from_row(row: Row) -> Paper:
    announce = row["p_announce_type"]
    return Paper(
        id=row["p_id"],
        version=int(row["p_version"]),
        title=row["p_title"],
        abstract=row["p_abstract"],
        authors=tuple(json.loads(row["p_authors_json"])),
        primary_category=row["p_primary_category"],
        categories=tuple(row["p_categories"].split()),
        published=optional_timestamp(row["p_published"]),
        updated=optional_timestamp(row["p_updated"]),
        comment=row["p_comment"],
        journal_ref=row["p_journal_ref"],
        doi=row["p_doi"],
        announce_type=None if announce is None else AnnounceType(announce),
        first_seen=optional_timestamp(row["p_first_seen"]),
    )


def _delivery_from_row(row: Row) -> Delivery:
    return Delivery(
        id=int(row["id"]),
        destination=destination_from_row(row),
        paper=_paper_from_row(row),
        status=DeliveryStatus(row["status"]),
        matched=tuple(json.loads(row["matched_json"])),
        attempts=int(row["attempts"]),
        created_at=from_timestamp(row["created_at"]),
        next_attempt_at=from_timestamp(row["next_attempt_at"]),
        sent_at=optional_timestamp(row["sent_at"]),
        message_id=None if row["message_id"] is None else int(row["message_id"]),
        last_error=row["last_error"],
        batch_id=None if row["batch_id"] is None else int(row["batch_id"]),
        event=AlertEvent(row["event"]),
        version=int(row["dl_version"]),
        note=row["note"],
    )
