"""Destinations: the channels and DMs alerts are posted to, and their paused/digest state.

A destination row is created on first use (`ensure`) and is the parent of its
subscriptions, deliveries and ratings (ON DELETE CASCADE). Queries of other
repositories that join it select `destination_columns()` and decode the row
with `destination_from_row`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Label, Row, delete, select, update

from bot.domain.models import Destination, DestinationKind
from storage.schema import destinations
from storage.sql import insert_for
from storage.store import Store

log = logging.getLogger(__name__)

_D = destinations.c


def destination_columns(prefix: str = "d_") -> list[Label[Any]]:
    """The destination's columns under unambiguous labels (`d_id`, ...), for joins."""
    return [
        _D.id.label(f"{prefix}id"),
        _D.kind.label(f"{prefix}kind"),
        _D.target_id.label(f"{prefix}target_id"),
        _D.guild_id.label(f"{prefix}guild_id"),
        _D.paused_reason.label(f"{prefix}paused_reason"),
        _D.paused_at.label(f"{prefix}paused_at"),
        _D.digest.label(f"{prefix}digest"),
    ]


def destination_from_row(row: Row[Any], prefix: str = "d_") -> Destination:
    """Decode a destination from columns labelled like `destination_columns(prefix)`."""
    m = row._mapping
    guild_id = m[f"{prefix}guild_id"]
    return Destination(
        id=int(m[f"{prefix}id"]),
        kind=DestinationKind(m[f"{prefix}kind"]),
        target_id=int(m[f"{prefix}target_id"]),
        guild_id=None if guild_id is None else int(guild_id),
        paused_reason=m[f"{prefix}paused_reason"],
        paused_at=m[f"{prefix}paused_at"],
        digest=bool(m[f"{prefix}digest"]),
    )


_SELECT = select(*destination_columns())


class DestinationRepository:
    """Reads and writes destinations; every change is one transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def ensure(
        self, kind: DestinationKind, target_id: int, guild_id: int | None
    ) -> Destination:
        """The destination for this channel or user, created on first use."""
        if (kind is DestinationKind.DM) != (guild_id is None):
            raise ValueError(f"{kind.value} destination with guild_id={guild_id!r}")
        insert = insert_for(self.store.dialect, destinations).values(
            kind=kind.value, target_id=target_id, guild_id=guild_id
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[_D.kind, _D.target_id], set_={"guild_id": insert.excluded.guild_id}
        )
        async with self.store.transaction() as conn:
            await conn.execute(upsert)
            result = await conn.execute(
                _SELECT.where(_D.kind == kind.value, _D.target_id == target_id)
            )
            row = result.first()
        if row is None:  # pragma: no cover - just upserted under the write lock
            raise LookupError(f"destination {kind.value} {target_id} vanished")
        return destination_from_row(row)

    async def get(self, destination_id: int) -> Destination | None:
        row = await self.store.fetchone(_SELECT.where(_D.id == destination_id))
        return None if row is None else destination_from_row(row)

    async def find(self, kind: DestinationKind, target_id: int) -> Destination | None:
        row = await self.store.fetchone(
            _SELECT.where(_D.kind == kind.value, _D.target_id == target_id)
        )
        return None if row is None else destination_from_row(row)

    async def remove(self, destination_id: int) -> bool:
        """Forget a destination (channel deleted); its subscriptions and deliveries go with it."""
        removed = await self.store.execute(delete(destinations).where(_D.id == destination_id)) > 0
        if removed:
            log.info("removed destination %d with its subscriptions", destination_id)
        return removed

    async def pause(self, destination_id: int, reason: str, at: datetime) -> Destination | None:
        """Stop matching and delivering for a destination (e.g. Discord answered 403)."""
        if at.tzinfo is None:  # refused here, not as a wrapped error from the bind
            raise ValueError(f"naive datetime {at!r}: paperbell stores UTC only")
        return await self._update(destination_id, paused_reason=reason, paused_at=at)

    async def resume(self, destination_id: int) -> Destination | None:
        return await self._update(destination_id, paused_reason=None, paused_at=None)

    async def set_digest(self, destination_id: int, digest: bool) -> Destination | None:
        return await self._update(destination_id, digest=int(digest))

    async def _update(self, destination_id: int, **values: Any) -> Destination | None:
        async with self.store.transaction() as conn:
            await conn.execute(update(destinations).where(_D.id == destination_id).values(values))
            row = (await conn.execute(_SELECT.where(_D.id == destination_id))).first()
        return None if row is None else destination_from_row(row)
